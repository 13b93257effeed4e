"""KV, transactions and leases of our client against a real etcd, cross-checked with etcd3."""

import time

import pytest

from ansible_collections.pgha.cluster.plugins.module_utils.etcd_client import Compare, Op
from ansible_collections.pgha.cluster.plugins.module_utils.etcd_errors import (
    EtcdCompacted,
    EtcdInvalidArgument,
    EtcdNotFound,
)
from collection_client import client_for


@pytest.fixture(params=['plain', 'tls'])
def cluster(request):
    """Every KV test runs on the plain node and on the TLS + RBAC cluster."""
    return request.getfixturevalue('etcd_plain' if request.param == 'plain' else 'etcd_tls')


@pytest.fixture
def client(cluster):
    with client_for(cluster) as c:
        yield c


def test_put_get_roundtrip_seen_by_etcd3(cluster, client, etcd3_lib, unique_prefix):
    key = unique_prefix + 'leader'
    first = client.put(key, 'node-1')
    assert first.prev_kv is None and first.revision > 0
    second = client.put(key, 'node-2', prev_kv=True)
    assert second.prev_kv.value == b'node-1' and second.revision > first.revision
    kv = client.get(key)
    assert (kv.key, kv.value, kv.version, kv.create_revision, kv.mod_revision) == (
        key.encode(), b'node-2', 2, first.revision, second.revision)
    value, meta = etcd3_lib(cluster).get(key)
    assert value == b'node-2' and meta.mod_revision == second.revision


def test_binary_and_unicode_values_are_preserved(cluster, client, etcd3_lib, unique_prefix):
    lib = etcd3_lib(cluster)
    blob = bytes(range(256))
    client.put(unique_prefix + 'bin', blob)
    client.put(unique_prefix + 'ünï', 'grüße ✓')
    assert lib.get(unique_prefix + 'bin')[0] == blob
    assert lib.get(unique_prefix + 'ünï')[0] == 'grüße ✓'.encode('utf-8')
    lib.put(unique_prefix + 'from-lib', b'\x00\xff')
    assert client.get(unique_prefix + 'from-lib').value == b'\x00\xff'
    assert client.get(unique_prefix + 'ünï').value_text == 'grüße ✓'


def test_missing_key(client, unique_prefix):
    assert client.get(unique_prefix + 'absent') is None
    with pytest.raises(EtcdNotFound, match='absent'):
        client.get(unique_prefix + 'absent', must_exist=True)


def test_prefix_read_is_exact_and_paginated(cluster, client, etcd3_lib, unique_prefix):
    lib = etcd3_lib(cluster)
    for i in range(25):
        lib.put('%sm/%03d' % (unique_prefix, i), 'v%d' % i)
    # Neighbours that a sloppy range_end would include.
    lib.put(unique_prefix + 'm', 'not-under-prefix')
    lib.put(unique_prefix + 'm0', 'not-under-prefix')
    lib.put(unique_prefix + 'n/1', 'not-under-prefix')
    expected = sorted(meta.key for value, meta in lib.get_prefix(unique_prefix + 'm/'))
    assert len(expected) == 25
    for page_size in (1, 7, 25, 1000):
        kvs = client.get_prefix(unique_prefix + 'm/', page_size=page_size)
        assert [kv.key for kv in kvs] == expected
        assert [kv.value_text for kv in kvs] == ['v%d' % i for i in range(25)]
    keys_only = client.get_prefix(unique_prefix + 'm/', keys_only=True, page_size=10)
    assert [kv.key for kv in keys_only] == expected and all(kv.value == b'' for kv in keys_only)
    page = client.range(unique_prefix + 'm/', prefix=True, limit=10)
    assert len(page.kvs) == 10 and page.more and page.count == 25
    counted = client.range(unique_prefix + 'm/', prefix=True, count_only=True)
    assert counted.count == 25 and counted.kvs == []
    newest = client.range(unique_prefix + 'm/', prefix=True, limit=1, sort_order='descend', sort_target='mod')
    assert newest.kvs[0].key == expected[-1]


def test_paginated_read_is_one_snapshot(client, unique_prefix):
    for i in range(10):
        client.put('%s%02d' % (unique_prefix, i), 'old')
    pages = client.iter_prefix(unique_prefix, page_size=3)
    first = [next(pages), next(pages), next(pages)]
    # Changes after the first page must not show up in later pages.
    for i in range(10):
        client.put('%s%02d' % (unique_prefix, i), 'new')
    client.put(unique_prefix + '99', 'added-later')
    rest = list(pages)
    assert [kv.value for kv in first + rest] == [b'old'] * 10
    assert len(client.get_prefix(unique_prefix)) == 11


def test_read_at_past_revision_and_compaction(etcd_plain, unique_prefix):
    # Compaction affects the whole keyspace, so only on the plain node.
    with client_for(etcd_plain) as client:
        old = client.put(unique_prefix + 'k', 'v1').revision
        client.put(unique_prefix + 'k', 'v2')
        assert client.get(unique_prefix + 'k', revision=old).value == b'v1'
        client.compact(old + 1, physical=True)
        with pytest.raises(EtcdCompacted, match='compacted'):
            client.get(unique_prefix + 'k', revision=old)


def test_delete_single_and_prefix(cluster, client, etcd3_lib, unique_prefix):
    for name in ('a', 'b', 'c'):
        client.put(unique_prefix + 'd/' + name, name)
    client.put(unique_prefix + 'keep', 'x')
    single = client.delete(unique_prefix + 'd/a', prev_kv=True)
    assert single.deleted == 1 and single.prev_kvs[0].value == b'a'
    assert client.delete(unique_prefix + 'd/a').deleted == 0
    gone = client.delete_prefix(unique_prefix + 'd/', prev_kv=True)
    assert gone.deleted == 2 and sorted(kv.value for kv in gone.prev_kvs) == [b'b', b'c']
    lib = etcd3_lib(cluster)
    assert list(lib.get_prefix(unique_prefix + 'd/')) == []
    assert lib.get(unique_prefix + 'keep')[0] == b'x'


def test_transactions_compare_and_swap(cluster, client, etcd3_lib, unique_prefix):
    key = unique_prefix + 'leader'
    assert client.put_if_absent(key, 'node-1') is True
    assert client.put_if_absent(key, 'node-2') is False
    assert client.compare_and_swap(key, 'node-9', 'node-3') is False
    assert client.compare_and_swap(key, 'node-1', 'node-3') is True
    kv = client.get(key)
    assert kv.value == b'node-3'

    stale = client.txn([Compare.mod_revision(key, '==', kv.mod_revision - 1)], [Op.delete(key)],
                       [Op.get(key)])
    assert not stale.succeeded and stale.responses[0].kvs[0].value == b'node-3'

    res = client.txn(
        [Compare.mod_revision(key, '==', kv.mod_revision), Compare.version(key, '>', 1),
         Compare.create_revision(key, '<', kv.mod_revision + 1), Compare.value(key, '!=', 'x')],
        [Op.put(key, 'node-4', prev_kv=True), Op.put(unique_prefix + 'history', 'h'),
         Op.get(unique_prefix, prefix=True, keys_only=True)],
        [])
    assert res.succeeded
    assert res.responses[0].prev_kv.value == b'node-3'
    assert sorted(kv.key for kv in res.responses[2].kvs) == [(unique_prefix + k).encode() for k in ('history', 'leader')]
    assert etcd3_lib(cluster).get(key)[0] == b'node-4'

    deleted = client.txn([Compare.value(key, '==', 'node-4')], [Op.delete(unique_prefix, prefix=True, prev_kv=True)])
    assert deleted.succeeded and deleted.responses[0].deleted == 2
    assert client.get_prefix(unique_prefix) == []


def test_txn_on_lease(client, unique_prefix):
    lease = client.lease_grant(30)
    client.put(unique_prefix + 'member', 'x', lease=lease.id)
    assert client.txn([Compare.lease(unique_prefix + 'member', '==', lease.id)]).succeeded
    client.lease_revoke(lease.id)


def test_invalid_requests_fail_before_sending(client):
    with pytest.raises(EtcdInvalidArgument, match='compare operator'):
        Compare.value('/k', '=~', 'v')
    with pytest.raises(EtcdInvalidArgument, match='must not be empty'):
        client.put('', 'v')
    with pytest.raises(EtcdInvalidArgument, match='sort_order'):
        client.range('/k', sort_order='sideways')
    with pytest.raises(EtcdInvalidArgument, match='page_size'):
        client.get_prefix('/k/', page_size=0)


def test_server_rejects_duplicate_key_in_txn(client, unique_prefix):
    with pytest.raises(EtcdInvalidArgument, match='duplicate key'):
        client.txn([], [Op.put(unique_prefix + 'k', '1'), Op.put(unique_prefix + 'k', '2')])


def test_lease_lifecycle(cluster, client, etcd3_lib, unique_prefix):
    lease = client.lease_grant(30)
    assert lease.id > 0 and lease.ttl == 30
    client.put(unique_prefix + 'member', 'alive', lease=lease.id)
    info = client.lease_ttl(lease.id, keys=True)
    assert info.granted_ttl == 30 and 0 < info.ttl <= 30
    assert info.keys == [(unique_prefix + 'member').encode()]
    assert lease.id in client.leases()
    assert client.get(unique_prefix + 'member').lease == lease.id
    assert client.lease_keepalive(lease.id) == 30
    client.lease_revoke(lease.id)
    assert etcd3_lib(cluster).get(unique_prefix + 'member')[0] is None
    with pytest.raises(EtcdNotFound):
        client.lease_keepalive(lease.id)
    with pytest.raises(EtcdNotFound):
        client.lease_ttl(lease.id)
    with pytest.raises(EtcdNotFound, match='lease not found'):
        client.lease_revoke(lease.id)


def test_lease_expiry_removes_keys_and_keepalive_extends(etcd_plain, unique_prefix):
    with client_for(etcd_plain) as client:
        kept = client.lease_grant(2)
        dropped = client.lease_grant(2)
        client.put(unique_prefix + 'kept', 'x', lease=kept.id)
        client.put(unique_prefix + 'dropped', 'x', lease=dropped.id)
        deadline = time.monotonic() + 4.5
        while time.monotonic() < deadline:
            client.lease_keepalive(kept.id)
            time.sleep(0.5)
        assert client.get(unique_prefix + 'dropped') is None
        assert client.get(unique_prefix + 'kept') is not None
        client.lease_revoke(kept.id)


def test_lease_with_chosen_id(client):
    wanted = 0x7065_6761_0001 + int(time.time() * 1000) % 100000
    lease = client.lease_grant(10, lease_id=wanted)
    assert lease.id == wanted
    client.lease_revoke(wanted)


def test_connection_is_reused(cluster, unique_prefix):
    with client_for(cluster) as client:
        for i in range(50):
            client.put(unique_prefix + str(i), 'x')
            client.get(unique_prefix + str(i))
        # One connection for 100 requests (plus re-authentications on the short-TTL cluster).
        assert client.transport.connects == 1
    with client_for(cluster, keep_alive=False) as client:
        for i in range(5):
            client.get(unique_prefix + str(i))
        assert client.transport.connects >= 5
