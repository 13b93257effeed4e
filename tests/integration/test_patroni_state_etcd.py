"""read_cluster_state against a real etcd: Patroni's real key sets written with our client, read back.

What is read from etcd must parse exactly as the same keys parsed directly,
plus what only etcd knows (leases, revisions). On the TLS + RBAC cluster the
keys are written as ``patroni-demo`` (readwrite on /service/demo/ only) and
read as ``lb-demo`` (read-only), as Patroni and the LB agent will.
"""

import json
import os

import pytest

from ansible_collections.pgha.cluster.plugins.module_utils.etcd_errors import EtcdNotFound
from ansible_collections.pgha.cluster.plugins.module_utils.patroni_state import (
    cluster_prefix,
    parse_cluster_state,
    read_cluster_state,
)
from collection_client import client_for

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES_DIR = os.environ.get('PGHA_FIXTURES_DIR') or os.path.join(REPO_ROOT, '..', 'shared', 'fixtures')

FIXTURES = [
    # (file, scope the keys were written under)
    ('patroni-4.1.5-etcd3-keys.json', 'anchor'),
    ('patroni-4.1.5-etcd3-keys-sync.json', 'anchor'),
    ('patroni-3.0.2-etcd3-keys.json', 'legacy'),
]


def fixture_keys(name, scope, namespace, new_scope):
    """The fixture's keys moved from /service/<scope>/ to /<namespace>/<new_scope>/."""
    path = os.path.join(FIXTURES_DIR, name)
    if not os.path.isfile(path):
        pytest.skip('Patroni fixture %s not found: set PGHA_FIXTURES_DIR to the directory holding %s'
                    % (os.path.normpath(path), name))
    with open(path, encoding='utf-8') as handle:
        keys = json.load(handle)['keys']
    old, new = cluster_prefix('/service', scope), cluster_prefix(namespace, new_scope)
    assert all(k.startswith(old) for k in keys)
    return dict((new + k[len(old):], v) for k, v in keys.items())


def without_etcd_metadata(data):
    """A parsed state's dict without what only etcd knows (leases, revisions)."""
    data = dict(data, leader_lease=None)
    data['members'] = [dict(m, lease=None, mod_revision=None) for m in data['members']]
    return data


@pytest.mark.parametrize('name, scope', FIXTURES)
def test_read_from_etcd_equals_direct_parse(etcd_plain, unique_prefix, name, scope):
    namespace = unique_prefix.rstrip('/')
    keys = fixture_keys(name, scope, namespace, scope)
    with client_for(etcd_plain) as client:
        for key, value in keys.items():
            client.put(key, value)
        # A neighbouring scope whose name starts like this one must stay out of the read.
        client.put(cluster_prefix(namespace, scope + '2') + 'leader', 'intruder')
        try:
            state = read_cluster_state(client, namespace, scope)
        finally:
            client.delete_prefix(unique_prefix)
    expected = parse_cluster_state(keys, namespace, scope)
    assert without_etcd_metadata(state.to_dict()) == without_etcd_metadata(expected.to_dict())
    assert state.primary().name == expected.primary().name and state.warnings == []
    # Written without leases: etcd reports lease 0, and each key's revision.
    assert state.leader_lease == 0
    assert all(m.lease == 0 and m.mod_revision > 0 for m in state.members)


def test_leases_are_carried_and_expiry_removes_the_leader(etcd_plain, unique_prefix):
    namespace = unique_prefix.rstrip('/')
    keys = fixture_keys('patroni-4.1.5-etcd3-keys.json', 'anchor', namespace, 'anchor')
    prefix = cluster_prefix(namespace, 'anchor')
    with client_for(etcd_plain) as client:
        leader_lease = client.lease_grant(60).id
        replica_lease = client.lease_grant(60).id
        try:
            for key, value in keys.items():
                # As Patroni does: the leader key and each member key live on the writer's lease.
                lease = {'leader': leader_lease, 'members/anc3': leader_lease,
                         'members/anc1': replica_lease}.get(key[len(prefix):], 0)
                client.put(key, value, lease=lease)
            state = read_cluster_state(client, namespace, 'anchor')
            assert state.leader_lease == leader_lease
            assert [(m.name, m.lease) for m in state.members] == [
                ('anc1', replica_lease), ('anc2', 0), ('anc3', leader_lease)]

            # The old leader's lease ends (Patroni stopped, its ttl ran out): no leader, no primary.
            client.lease_revoke(leader_lease)
            state = read_cluster_state(client, namespace, 'anchor')
            assert state.leader is None and state.primary() is None and state.member('anc3') is None
            assert [m.name for m in state.replicas()] == ['anc1', 'anc2']
            assert state.lag_reference == 'status' and state.warnings[0].startswith('no leader key')
        finally:
            client.delete_prefix(unique_prefix)
            for lease in (leader_lease, replica_lease):
                try:
                    client.lease_revoke(lease)
                except EtcdNotFound:
                    pass  # revoked by the test already


def test_rbac_users_write_and_read_a_scope(etcd_tls, demo_scope):
    keys = fixture_keys('patroni-4.1.5-etcd3-keys-sync.json', 'anchor', '/service', 'demo')
    lease = demo_scope.lease_grant(60).id
    try:
        for key, value in keys.items():
            demo_scope.put(key, value, lease=lease if key.endswith(('/leader', '/members/anc3')) else 0)
        expected = parse_cluster_state(keys, '/service', 'demo')
        as_patroni = read_cluster_state(demo_scope, '/service', 'demo')
        with client_for(etcd_tls, user='lb-demo') as lb:
            as_lb = read_cluster_state(lb, '/service', 'demo')
    finally:
        demo_scope.lease_revoke(lease)
    assert as_lb == as_patroni
    assert without_etcd_metadata(as_lb.to_dict()) == without_etcd_metadata(expected.to_dict())
    assert (as_lb.scope, as_lb.prefix, as_lb.leader, as_lb.leader_lease) == ('demo', '/service/demo/', 'anc3', lease)
    assert as_lb.primary().name == 'anc3' and as_lb.sync.sync_standby == ['anc2']
    assert [m.lease for m in as_lb.members] == [0, 0, lease]
