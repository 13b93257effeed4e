"""pgha.cluster.etcd_info against real etcd: what it reports must match etcdctl, a dead member is
reported (not fatal), and only "no endpoint answers" fails the module."""

import json
import socket

import pytest

from ansible_collections.pgha.cluster.plugins.module_utils.etcd_errors import EtcdError
from module_runner import connection_args, run_module
from collection_client import client_for
from playbook_runner import run_playbook

ETCD_VERSION = '3.4.23'


def info(cluster, user='root', check_mode=False, **options):
    return run_module('etcd_info', connection_args(cluster, user=user, **options), check_mode=check_mode)


def ok(result):
    assert not result.get('failed'), result
    assert result['changed'] is False
    return result


def etcdctl_members(cluster):
    return json.loads(cluster.etcdctl('member', 'list', '-w', 'json'))['members']


def etcdctl_status(cluster):
    """{endpoint: status dict} from etcdctl endpoint status, for the running members."""
    return {s['Endpoint']: s['Status'] for s in cluster.status()}


def closed_port(ip='127.0.0.1'):
    s = socket.socket()
    s.bind((ip, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_tls_cluster_matches_etcdctl(etcd_tls):
    result = ok(info(etcd_tls))

    ctl_members = etcdctl_members(etcd_tls)
    expected = sorted(({'id': '%x' % m['ID'], 'name': m['name'], 'peer_urls': m['peerURLs'],
                        'client_urls': m['clientURLs'], 'is_learner': bool(m.get('isLearner'))}
                       for m in ctl_members), key=lambda m: m['id'])
    assert sorted(result['members'], key=lambda m: m['id']) == expected

    ctl_status = etcdctl_status(etcd_tls)
    leader_ids = {s['leader'] for s in ctl_status.values()}
    assert len(leader_ids) == 1
    leader_id = leader_ids.pop()
    leader_name = next(m['name'] for m in ctl_members if m['ID'] == leader_id)
    assert result['leader'] == {'id': '%x' % leader_id, 'name': leader_name}

    assert [e['endpoint'] for e in result['endpoints']] == etcd_tls.endpoints
    for entry in result['endpoints']:
        ctl = ctl_status[entry['endpoint']]
        assert entry['healthy'] is True and entry['reason'] == '' and entry['error'] is None, entry
        assert entry['member_id'] == '%x' % ctl['header']['member_id']
        assert entry['leader'] == '%x' % leader_id
        assert entry['version'] == ETCD_VERSION == ctl['version']
        assert entry['raft_term'] == ctl['raftTerm']
        assert entry['raft_index'] >= 1 and entry['db_size'] > 0 and 0 < entry['db_size_in_use'] <= entry['db_size']
        assert entry['is_learner'] is False

    assert result['cluster_version'] == '3.4.0'
    assert result['auth_enabled'] is True
    assert result['alarms'] == []
    assert result['healthy'] is True


def test_plain_node(etcd_plain):
    result = ok(info(etcd_plain))
    (member,) = etcdctl_members(etcd_plain)
    assert result['members'] == [{'id': '%x' % member['ID'], 'name': member['name'],
                                  'peer_urls': member['peerURLs'], 'client_urls': member['clientURLs'],
                                  'is_learner': False}]
    assert result['leader'] == {'id': '%x' % member['ID'], 'name': 'plain-1'}
    assert result['auth_enabled'] is False
    assert result['healthy'] is True and len(result['endpoints']) == 1


def test_check_mode_reports_the_same(etcd_plain):
    result = ok(info(etcd_plain, check_mode=True))
    assert result['healthy'] is True and result['members']


def test_status_of_members_queries_the_advertised_urls(etcd_tls):
    # Only one configured endpoint: the member list tells where the others are.
    result = ok(info(etcd_tls, endpoints=etcd_tls.endpoints[:1], status_of='members'))
    advertised = sorted(url for m in result['members'] for url in m['client_urls'])
    assert sorted(e['endpoint'] for e in result['endpoints']) == advertised
    assert len(advertised) == 3 and result['healthy'] is True
    assert len(ok(info(etcd_tls, endpoints=etcd_tls.endpoints[:1]))['endpoints']) == 1


def test_member_that_has_not_started(etcd_cluster_factory):
    # A learner added through the API but never started has no name and no client URLs yet.
    cluster = etcd_cluster_factory(size=1, tls=False, extra_args=('--strict-reconfig-check=false',))
    with client_for(cluster) as client:
        added = client.member_add('http://127.0.0.10:%d' % closed_port('127.0.0.10'), is_learner=True)[0]
    result = ok(info(cluster, status_of='members'))
    new = next(m for m in result['members'] if m['id'] == '%x' % added.id)
    assert new['name'] == '' and new['client_urls'] == [] and new['is_learner'] is True
    unstarted = next(e for e in result['endpoints'] if e['endpoint'] is None)
    assert unstarted['member_id'] == new['id'] and unstarted['healthy'] is False
    assert 'has not started yet' in unstarted['error']
    assert result['healthy'] is False
    assert ok(info(cluster))['healthy'] is True  # the configured endpoint alone is fine


def test_killed_member_is_reported_not_fatal(etcd_tls_restored):
    cluster = etcd_tls_restored
    leader = cluster.leader()
    victim = next(m for m in cluster.members if m is not leader)
    victim.kill()

    result = ok(info(cluster))
    by_url = {e['endpoint']: e for e in result['endpoints']}
    dead = by_url[victim.client_url]
    assert dead['healthy'] is False
    assert 'unreachable' in dead['error'] and 'connection refused' in dead['error'], dead
    assert dead['member_id'] is None and dead['leader'] is None
    for m in cluster.members:
        if m is not victim:
            assert by_url[m.client_url]['healthy'] is True, by_url[m.client_url]
    assert result['healthy'] is False
    assert result['leader']['name'] == leader.name
    assert len(result['members']) == 3  # still a member, just down


@pytest.mark.parametrize('user', ['lb-demo', None])
def test_any_user_gets_the_facts(etcd_tls, user):
    # lb-demo may only read /service/demo/, and None sends no credentials at all.
    result = ok(info(etcd_tls, user=user))
    assert len(result['members']) == 3 and result['auth_enabled'] is True
    assert result['alarms'] == [] and result['healthy'] is True


def test_nospace_alarm(etcd_cluster_factory):
    cluster = etcd_cluster_factory(size=1, tls=False, extra_args=('--quota-backend-bytes=100000',))
    with client_for(cluster) as client:
        with pytest.raises(EtcdError, match='database space exceeded'):
            for n in range(1000):
                client.put('/fill/%d' % n, 'x' * 20000)
    result = ok(info(cluster))
    (member,) = result['members']
    assert result['alarms'] == [{'member_id': member['id'], 'alarm': 'NOSPACE'}]
    (entry,) = result['endpoints']
    assert entry['healthy'] is False and entry['member_id'] == member['id']
    assert 'alarm:NOSPACE' in entry['error'] and 'alarm:NOSPACE' in entry['reason']
    assert result['healthy'] is False
    assert 'NOSPACE' in cluster.etcdctl('alarm', 'list')


def test_no_endpoint_answers():
    endpoints = ['http://127.0.0.1:%d' % closed_port(), 'http://127.0.0.1:%d' % closed_port()]
    result = run_module('etcd_info', {'endpoints': endpoints, 'timeout': 2})
    assert result['failed'] is True
    assert 'no etcd endpoint could serve the request' in result['msg']
    assert all(ep in result['msg'] for ep in endpoints) and 'connection refused' in result['msg']


def test_wrong_password(etcd_tls):
    result = info(etcd_tls, user='root', password='not-the-password')
    assert result['failed'] is True and 'wrong username or password' in result['msg']


def test_wrong_ca(etcd_tls):
    result = info(etcd_tls, ca_cert=etcd_tls.wrong_ca_cert)
    assert result['failed'] is True and 'TLS verification' in result['msg']


def test_playbook_hides_the_password(etcd_tls):
    task_args = connection_args(etcd_tls)
    password = task_args['password']  # written literally into the playbook
    plays = [{'name': 'etcd_info', 'hosts': 'localhost', 'connection': 'local', 'gather_facts': False,
              'tasks': [{'name': 'Read etcd', 'pgha.cluster.etcd_info': task_args, 'register': 'etcd'},
                        {'name': 'Check', 'ansible.builtin.assert': {
                            'that': ['etcd.healthy', 'etcd.members | length == 3', 'etcd is not changed']}}]}]
    run = run_playbook(plays, check=True, diff=True, verbosity=3)
    assert run.rc == 0, run.output
    assert run.recap['localhost'] == dict(ok=2, changed=0, unreachable=0, failed=0, skipped=0)
    assert '"cluster_version": "3.4.0"' in run.stdout
    assert password not in run.output
    assert 'VALUE_SPECIFIED_IN_NO_LOG_PARAMETER' in run.stdout
