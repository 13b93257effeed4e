"""pgha.cluster.patroni_restart against real Patroni 4.1 + PostgreSQL 15 nodes registered in the TLS + RBAC
etcd (scope demo), with POST /restart behind the REST API's basic auth.

The module reads etcd as the read-only lb-demo user. A setting that needs a restart is changed with
patroni_config (as the role does), then the module restarts the members; what PostgreSQL runs with is
checked on each node with SQL, and when each postmaster started. One cluster serves the whole file.
"""

import pytest

from module_runner import connection_args, run_module


@pytest.fixture(scope='module')
def cluster(demo_cluster):
    return demo_cluster


def module(cluster, name, check_mode=False, **options):
    args = connection_args(cluster.etcd, user='lb-demo')
    args.update(scope='demo', rest_username=cluster.restapi_user, rest_password=cluster.restapi_password)
    args.update(options)
    return run_module(name, args, check_mode=check_mode)


def ok(result, changed):
    assert not result.get('failed'), result
    assert result['changed'] is changed, result
    return result


def set_max_connections(cluster, value):
    ok(module(cluster, 'patroni_config', settings={'postgresql': {'parameters': {'max_connections': value}}}),
       changed=True)


def running_with(cluster):
    """{node name: (max_connections, postmaster start time)} as each node's PostgreSQL says."""
    return dict((n.name, tuple(str(v) for v in n.execute(
        'SELECT current_setting(\'max_connections\'), pg_postmaster_start_time()')[0])) for n in cluster.nodes)


def pending_in_etcd(cluster):
    info = ok(module(cluster, 'patroni_info'), changed=False)
    return sorted(m['name'] for m in info['cluster']['members'] if m['pending_restart'])


def test_nothing_pending_restarts_nothing(cluster):
    cluster.wait_running(timeout=60)
    before = running_with(cluster)
    result = ok(module(cluster, 'patroni_restart'), changed=False)
    assert result['pending'] == [] and result['restarted'] == []
    assert running_with(cluster) == before


def test_raising_a_setting_restarts_the_replica_then_the_leader(cluster):
    leader = cluster.wait_leader()
    replica = [n for n in cluster.nodes if n is not leader][0]
    before = running_with(cluster)
    assert before[leader.name][0] == '30'
    set_max_connections(cluster, 40)

    # Right after the change: the module waits until both members have applied it before it looks.
    preview = ok(module(cluster, 'patroni_restart', check_mode=True), changed=True)
    assert preview['pending'] == sorted([leader.name, replica.name])
    assert preview['restarted'] == [replica.name, leader.name]
    assert running_with(cluster) == before  # check mode restarted nothing

    result = ok(module(cluster, 'patroni_restart'), changed=True)
    assert result['restarted'] == [replica.name, leader.name]
    after = running_with(cluster)
    for node in cluster.nodes:
        assert after[node.name][0] == '40'
        assert after[node.name][1] != before[node.name][1]  # restarted once ...
    assert pending_in_etcd(cluster) == []
    assert cluster.wait_leader() is leader  # ... and the leader kept its role

    again = ok(module(cluster, 'patroni_restart'), changed=False)
    assert again['restarted'] == [] and running_with(cluster) == after


def test_lowering_a_setting_restarts_the_replica_again_after_the_leader(cluster):
    leader = cluster.wait_leader()
    replica = [n for n in cluster.nodes if n is not leader][0]
    set_max_connections(cluster, 30)

    result = ok(module(cluster, 'patroni_restart'), changed=True)
    # The replica keeps the leader's 40 until it has replayed the leader's restart: a second restart.
    assert result['restarted'] == [replica.name, leader.name, replica.name]
    assert set(v[0] for v in running_with(cluster).values()) == {'30'}
    assert pending_in_etcd(cluster) == []


def test_a_wrong_rest_password_fails_with_a_clear_message(cluster):
    set_max_connections(cluster, 35)
    result = module(cluster, 'patroni_restart', rest_password='not-the-password')
    assert result['failed'] is True and result['restarted'] == []
    assert result['msg'].endswith('/restart refused the request (HTTP 401): check rest_username and rest_password')
    assert 'not-the-password' not in str(result)
    ok(module(cluster, 'patroni_restart'), changed=True)


def test_a_scope_without_a_cluster_fails_and_names_the_key(cluster):
    args = connection_args(cluster.etcd, user='root')
    result = run_module('patroni_restart', dict(args, scope='nothing'))
    assert result['failed'] is True
    assert result['msg'] == '/service/nothing/config in etcd does not exist'
