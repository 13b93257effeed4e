"""The Patroni harness itself: real Patroni 4.1 + PostgreSQL 15 nodes registered in real etcd.

What Patroni writes to etcd is read back with the collection's own parser
(``read_cluster_state`` over our EtcdClient), so these tests also show that
the parser agrees with a live Patroni, not only with recorded fixtures.
"""

import time

import pytest

from ansible_collections.pgha.cluster.plugins.module_utils.patroni_state import (
    cluster_prefix,
    read_cluster_state,
)
from collection_client import client_for


def wait_for(check, timeout=15.0, interval=0.2):
    """``check()``'s first truthy result; its last result fails the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            assert result, "still not true after %.0fs" % timeout
            return result
        time.sleep(interval)


def state_of(etcd, cluster, user=None):
    options = {} if user is None else {'user': user}
    with client_for(etcd, **options) as client:
        return read_cluster_state(client, cluster.namespace, cluster.scope)


def test_one_node_bootstraps_into_etcd(etcd_plain, patroni_cluster_factory):
    cluster = patroni_cluster_factory(etcd_plain, size=1)
    node = cluster.node(0)
    assert cluster.wait_leader() is node
    status = node.status()
    assert (status['role'], status['state'], status['patroni']['version']) == ('primary', 'running', '4.1.5')

    keys = etcd_plain.etcdctl('get', '--prefix', '--keys-only', cluster.prefix).split()
    for key in ('leader', 'members/' + node.name, 'config', 'initialize'):
        assert cluster.prefix + key in keys

    state = state_of(etcd_plain, cluster)
    assert state.prefix == cluster_prefix('/service', cluster.scope) == cluster.prefix
    assert state.leader == node.name and state.leader_lease
    assert state.initialize == status['database_system_identifier']
    member = state.member(node.name)
    assert (member.role, member.state, member.is_leader, member.running) == ('primary', 'running', True, True)
    assert (member.host, member.port) == (node.ip, node.pg_port)
    assert (member.api_host, member.api_port) == (node.ip, node.api_port)
    assert state.primary().name == node.name and state.replicas() == []
    assert (state.config.ttl, state.config.loop_wait, state.config.retry_timeout) == (
        cluster.ttl, cluster.loop_wait, cluster.retry_timeout)
    assert state.warnings == []
    assert node.execute('SELECT pg_is_in_recovery()') == [(False,)]
    assert node.psql('SHOW port').strip() == str(node.pg_port)

    # A crash (Patroni and postgres SIGKILLed), then the same node again: its
    # leader key has not expired, so it takes the cluster back at once.
    postmaster = node.postmaster_pid
    node.kill()
    assert not node.is_running and node.postmaster_pid is None
    with pytest.raises(OSError):
        node.rest('/patroni', timeout=1.0)
    assert state_of(etcd_plain, cluster).leader == node.name
    t0 = time.monotonic()
    node.start()
    assert cluster.wait_leader() is node and node.postmaster_pid not in (None, postmaster)
    restart_seconds = time.monotonic() - t0

    # A graceful stop gives the leader key up.
    cluster.stop()
    assert state_of(etcd_plain, cluster).leader is None
    print('startup %.2fs, restart after kill %.2fs' % (cluster.startup_seconds, restart_seconds))


def test_three_nodes_replicate(etcd_plain, patroni_cluster_factory):
    cluster = patroni_cluster_factory(etcd_plain, size=3)
    leader = cluster.wait_leader()
    assert leader is cluster.node(0)
    replicas = cluster.nodes[1:]
    for node in replicas:
        status = node.status()
        assert (status['role'], status['state'], status['replication_state']) == ('replica', 'running', 'streaming')
    assert sorted(r['application_name'] for r in leader.status()['replication']) == [n.name for n in replicas]

    # Members refresh their key every loop_wait: wait for the replicas' first "streaming".
    def settled():
        state = state_of(etcd_plain, cluster)
        streaming = [m.name for m in state.members if m.replication_state == 'streaming']
        return state if streaming == [n.name for n in replicas] else None

    state = wait_for(settled, timeout=3 * cluster.loop_wait + 5)
    assert state.leader == leader.name and state.primary().name == leader.name
    assert [m.name for m in state.replicas()] == [n.name for n in replicas]
    for node in replicas:
        member = state.member(node.name)
        assert (member.role, member.state, member.is_leader) == ('replica', 'running', False)
        assert member.lag is not None and member.lag >= 0

    leader.execute('CREATE TABLE harness_check (id int PRIMARY KEY, note text)')
    leader.execute('INSERT INTO harness_check VALUES (%s, %s)', (1, 'written on the primary'))
    cluster.wait_caught_up()
    for node in replicas:
        assert node.execute('SELECT pg_is_in_recovery()') == [(True,)]
        assert node.execute('SELECT id, note FROM harness_check') == [(1, 'written on the primary')]
    print('startup of 3 nodes %.2fs' % cluster.startup_seconds)


def test_one_node_over_tls_and_rbac(etcd_tls, demo_scope, patroni_cluster_factory):
    cluster = patroni_cluster_factory(etcd_tls, scope='demo', size=1)
    assert cluster.etcd_user == 'patroni-demo'
    conf = cluster.etcd_config()
    assert conf['protocol'] == 'https' and conf['username'] == 'patroni-demo'
    node = cluster.wait_leader()
    # Read as the LB's read-only user, as the load balancer agent will.
    state = state_of(etcd_tls, cluster, user='lb-demo')
    assert state.prefix == cluster_prefix('/service', 'demo')
    assert state.leader == node.name == 'demo-1' and state.leader_lease
    member = state.member('demo-1')
    assert (member.role, member.state, member.is_leader) == ('primary', 'running', True)
    assert state.initialize == node.status()['database_system_identifier']
    print('startup over TLS + RBAC %.2fs' % cluster.startup_seconds)
