"""Endpoint failover and connection recovery when real members die, with no acknowledged write lost."""

import pytest

from collection_client import client_for


def _serving_member(cluster, client):
    url = client.transport.ordered_endpoints()[0].url
    return next(m for m in cluster.members if m.client_url == url)


def test_writes_continue_when_the_serving_member_is_killed(etcd_tls_restored, etcd3_lib, unique_prefix):
    cluster = etcd_tls_restored
    acked = {}
    with client_for(cluster, timeout=2) as client:
        for i in range(40):
            key = '%s%03d' % (unique_prefix, i)
            client.put(key, str(i))
            acked[key] = str(i)
        victim = _serving_member(cluster, client)
        victim.kill()
        for i in range(40, 120):
            key = '%s%03d' % (unique_prefix, i)
            client.put(key, str(i))
            acked[key] = str(i)
        assert _serving_member(cluster, client) is not victim
        assert client.transport.connects >= 2
    cluster.wait_healthy(only_running=True)
    stored = {m.key.decode(): v.decode() for v, m in etcd3_lib(cluster).get_prefix(unique_prefix)}
    assert stored == acked


def test_kept_alive_connection_survives_member_restart(etcd_tls_restored, unique_prefix):
    cluster = etcd_tls_restored
    only = cluster.member(1)
    with client_for(cluster, endpoints=[only.client_url], timeout=3) as client:
        client.put(unique_prefix + 'k', 'before')
        assert client.transport.connects == 1
        only.kill()
        only.start()
        cluster.wait_healthy()
        # The pooled connection is dead; the client notices and reconnects by itself.
        client.put(unique_prefix + 'k', 'after')
        assert client.get(unique_prefix + 'k').value == b'after'
        assert client.transport.connects == 2


def test_every_member_down_then_back(etcd_tls_restored, unique_prefix):
    cluster = etcd_tls_restored
    with client_for(cluster, timeout=1) as client:
        client.put(unique_prefix + 'k', 'v')
        for m in cluster.members:
            m.kill()
        from ansible_collections.pgha.cluster.plugins.module_utils.etcd_errors import EtcdUnreachable
        with pytest.raises(EtcdUnreachable) as err:
            client.get(unique_prefix + 'k')
        assert all(ep in str(err.value) for ep in cluster.endpoints)
        cluster.ensure_all_running()
        assert client.get(unique_prefix + 'k').value == b'v'
