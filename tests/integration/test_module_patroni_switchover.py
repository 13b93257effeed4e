"""pgha.cluster.patroni_switchover against real Patroni 4.1 + PostgreSQL 15 nodes registered in the TLS + RBAC
etcd (scope demo), with the REST API's unsafe endpoints behind basic auth.

The module reads etcd as the read-only lb-demo user: everything it changes goes through Patroni. What it
did is checked independently: the leader key with the real etcdctl, the roles with each node's REST API.
One cluster serves the whole file; each test starts from whichever node leads.
"""

import datetime
import json

import pytest

from module_runner import connection_args, run_module


@pytest.fixture(scope='module')
def cluster(demo_cluster):
    return demo_cluster


def switchover(cluster, check_mode=False, **options):
    args = connection_args(cluster.etcd, user='lb-demo')
    args.update(scope='demo', rest_username=cluster.restapi_user, rest_password=cluster.restapi_password,
                wait_timeout=60)
    args.update(options)
    return run_module('patroni_switchover', args, check_mode=check_mode)


def ok(result, changed):
    assert not result.get('failed'), result
    assert result['changed'] is changed, result
    return result


def etcd_value(cluster, name):
    """A key of the scope as the real etcdctl reads it (root), '' when absent."""
    return cluster.etcd.etcdctl('get', cluster.prefix + name, '--print-value-only').strip()


def roles(cluster):
    """{node name: role} as each node's own REST API says (GET /patroni)."""
    return dict((n.name, (n.status() or {}).get('role')) for n in cluster.nodes)


def settled(cluster):
    """(leader node, other node) once the cluster leads and streams, and etcd shows no request in flight."""
    leader = cluster.wait_leader(timeout=60)
    cluster.wait_running(timeout=60)
    other = [n for n in cluster.nodes if n is not leader][0]
    assert etcd_value(cluster, 'leader') == leader.name
    return leader, other


def assert_leads(cluster, node):
    assert etcd_value(cluster, 'leader') == node.name
    assert roles(cluster)[node.name] == 'primary'


def test_check_mode_and_refused_requests_change_nothing(cluster):
    leader, other = settled(cluster)
    history = etcd_value(cluster, 'history')

    result = ok(switchover(cluster, check_mode=True, candidate=other.name), changed=True)
    assert (result['action'], result['previous_leader'], result['leader'], result['candidate']) == (
        'switchover', leader.name, leader.name, other.name)
    assert result['message'] == 'would request a switchover from %s to %s' % (leader.name, other.name)

    result = switchover(cluster, candidate='demo-9')
    assert result['failed'] is True
    why = {leader.name: 'it holds the leader key', other.name: 'eligible'}
    assert result['msg'] == 'candidate demo-9 is not a member of cluster demo; members: %s; nothing was sent' % (
        '; '.join('%s: %s' % (name, why[name]) for name in sorted(why)))
    assert result['members'] == {leader.name: ['it holds the leader key'], other.name: []}

    result = switchover(cluster, leader=other.name)
    assert result['failed'] is True
    assert result['msg'] == 'the expected leader is %s but the leader key names %s; nothing was sent' % (
        other.name, leader.name)

    result = switchover(cluster, candidate=leader.name, mode='failover')
    assert ok(result, changed=False)['action'] == 'none'  # the candidate already leads

    result = switchover(cluster, candidate=other.name, rest_password='not-the-password')
    assert result['failed'] is True, result
    assert result['msg'] == ('Patroni REST API at %s/switchover refused the request (HTTP 401): check rest_username '
                             'and rest_password' % leader.api_url)
    assert 'not-the-password' not in json.dumps(result)

    result = switchover(cluster, candidate=other.name, scheduled_at='2001-01-01T00:00:00+00:00')
    assert result['failed'] is True and 'is in the past' in result['msg']

    # Nothing moved: same leader in etcd and on the REST APIs, no request pending, no new timeline.
    assert_leads(cluster, leader)
    assert roles(cluster)[other.name] == 'replica'
    assert etcd_value(cluster, 'failover') in ('', '{}')
    assert etcd_value(cluster, 'history') == history


def test_switchover_to_a_candidate_and_back(cluster):
    leader, other = settled(cluster)

    result = ok(switchover(cluster, leader=leader.name, candidate=other.name), changed=True)
    assert (result['action'], result['previous_leader'], result['leader'], result['candidate']) == (
        'switchover', leader.name, other.name, other.name)
    assert result['message'] == 'Successfully switched over to "%s"' % other.name
    assert 0 < result['elapsed'] < 60
    assert result['cluster']['primary'] == other.name
    assert_leads(cluster, other)

    # The same task again: the candidate leads already, nothing is sent.
    again = ok(switchover(cluster, leader=leader.name, candidate=other.name), changed=False)
    assert (again['action'], again['leader'], again['elapsed']) == ('none', other.name, None)

    leader.wait_running(timeout=60)  # the old primary rejoins as a replica
    back = ok(switchover(cluster, candidate=leader.name), changed=True)
    assert (back['previous_leader'], back['leader']) == (other.name, leader.name)
    assert_leads(cluster, leader)
    assert cluster.wait_leader(timeout=10) is leader


def test_switchover_without_candidate_and_failover_mode(cluster):
    leader, other = settled(cluster)
    result = ok(switchover(cluster), changed=True)
    assert (result['action'], result['candidate'], result['previous_leader'], result['leader']) == (
        'switchover', None, leader.name, other.name)
    assert_leads(cluster, other)

    leader, other = settled(cluster)
    # A failover to a named replica works with a healthy leader too (POST /failover, no leader sent).
    result = ok(switchover(cluster, mode='failover', candidate=other.name), changed=True)
    assert (result['action'], result['previous_leader'], result['leader']) == ('failover', leader.name, other.name)
    assert_leads(cluster, other)


def test_scheduled_switchover_is_pending_in_etcd_and_absent_cancels_it(cluster):
    leader, other = settled(cluster)
    when = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)).replace(microsecond=0)
    scheduled_at = when.isoformat()

    result = ok(switchover(cluster, candidate=other.name, scheduled_at=scheduled_at), changed=True)
    assert (result['action'], result['leader'], result['message']) == (
        'switchover', leader.name, 'Switchover scheduled')
    pending = json.loads(etcd_value(cluster, 'failover'))
    assert pending == {'leader': leader.name, 'member': other.name, 'scheduled_at': scheduled_at}
    assert result['scheduled_at'] == scheduled_at

    # The same request in another notation of the same instant: already pending, nothing sent.
    same = when.astimezone(datetime.timezone(datetime.timedelta(hours=2))).isoformat()
    ok(switchover(cluster, candidate=other.name, scheduled_at=same), changed=False)
    other_request = switchover(cluster, candidate=other.name, scheduled_at=(when + datetime.timedelta(hours=1))
                               .isoformat())
    assert other_request['failed'] is True and 'already pending' in other_request['msg'], other_request

    result = ok(switchover(cluster, state='absent', check_mode=True), changed=True)
    assert result['action'] == 'cancel'
    assert json.loads(etcd_value(cluster, 'failover')) == pending

    result = ok(switchover(cluster, state='absent'), changed=True)
    assert (result['action'], result['message'], result['scheduled_at']) == (
        'cancel', 'scheduled switchover deleted', scheduled_at)
    assert json.loads(etcd_value(cluster, 'failover') or '{}') == {}
    assert ok(switchover(cluster, state='absent'), changed=False)['action'] == 'none'
    assert_leads(cluster, leader)
