"""Lost replies: a request etcd applied whose reply never came back, resent by the transport to the next endpoint.

The real Transport and EtcdClient run over etcd_fakes (a scripted gateway); the same paths are taken against real
etcd members behind a proxy that drops replies in tests/integration/test_client_lost_replies.py.
"""

import pytest

from ansible_collections.pgha.cluster.plugins.module_utils import etcd_client as etcd_client_module
from ansible_collections.pgha.cluster.plugins.module_utils.etcd_errors import (
    EtcdLeaseExists,
    EtcdNotFound,
    EtcdRoleExists,
    EtcdUserExists,
)
from etcd_fakes import FakeEtcd, fake_client

A, B = 'http://127.0.0.1:2379', 'http://127.0.0.2:2379'


def test_a_user_whose_creation_reply_was_lost_is_created_once():
    etcd = FakeEtcd()
    client = fake_client([A, B], etcd, lose=[(A, '/v3/auth/user/add')])
    client.user_add('patroni-main', 's3cret')
    assert etcd.users == {'patroni-main': 's3cret'}
    # The request went to both members: the first applied it and lost the reply, the second said "exists".
    assert [(url, path) for url, path, dummy, dummy in etcd.requests] == [(A, '/v3/auth/user/add'),
                                                                          (B, '/v3/auth/user/add')]


def test_a_user_someone_else_created_is_still_an_error():
    etcd = FakeEtcd()
    etcd.users['patroni-main'] = 'theirs'
    client = fake_client([A, B], etcd)
    with pytest.raises(EtcdUserExists) as caught:
        client.user_add('patroni-main', 's3cret')
    assert caught.value.resent is False
    assert etcd.users == {'patroni-main': 'theirs'}


def test_a_role_whose_creation_reply_was_lost_is_created_once():
    etcd = FakeEtcd()
    client = fake_client([A, B], etcd, lose=[(A, '/v3/auth/role/add')])
    client.role_add('patroni-main')
    assert etcd.roles == {'patroni-main'}
    etcd.roles.add('other')
    with pytest.raises(EtcdRoleExists):
        fake_client([A, B], etcd).role_add('other')


def test_a_delete_whose_reply_was_lost_is_done():
    etcd = FakeEtcd()
    etcd.users['old'] = 'x'
    client = fake_client([A, B], etcd, lose=[(A, '/v3/auth/user/delete')])
    client.user_delete('old')
    assert etcd.users == {}


def test_a_resent_lease_grant_leaves_one_lease():
    etcd = FakeEtcd()
    client = fake_client([A, B], etcd, lose=[(A, '/v3/lease/grant')])
    lease = client.lease_grant(30)
    assert list(etcd.leases) == [lease.id], 'a second lease was granted for one request'
    assert lease.ttl == 30
    # Both attempts asked for the same ID, chosen by the client.
    ids = [body['ID'] for dummy, path, body, dummy in etcd.requests if path == '/v3/lease/grant']
    assert ids == [str(lease.id)] * 2


def test_a_lease_id_someone_else_holds_is_replaced_by_another(monkeypatch):
    etcd = FakeEtcd()
    etcd.leases[42] = 60
    picks = iter([42, 43])

    class Picker(object):
        def randint(self, low, high):
            return next(picks)

    monkeypatch.setattr(etcd_client_module.random, 'SystemRandom', Picker)
    lease = fake_client([A], etcd).lease_grant(10)
    assert lease.id == 43 and etcd.leases == {42: 60, 43: 10}


def test_an_explicit_lease_id_that_exists_is_an_error():
    etcd = FakeEtcd()
    etcd.leases[42] = 60
    with pytest.raises(EtcdLeaseExists):
        fake_client([A], etcd).lease_grant(10, lease_id=42)


def test_a_revoke_whose_reply_was_lost_is_done_and_a_missing_lease_is_an_error():
    etcd = FakeEtcd()
    etcd.leases[42] = 60
    fake_client([A, B], etcd, lose=[(A, '/v3/lease/revoke')]).lease_revoke(42)
    assert etcd.leases == {}
    with pytest.raises(EtcdNotFound):
        fake_client([A, B], etcd).lease_revoke(42)


def test_errors_say_whether_the_request_was_resent():
    etcd = FakeEtcd()
    etcd.users['u'] = 'x'
    with pytest.raises(EtcdUserExists) as direct:
        fake_client([A, B], etcd).transport.request('/v3/auth/user/add', {'name': 'u', 'password': 'y'})
    assert direct.value.resent is False
    client = fake_client([A, B], etcd, lose=[(A, '/v3/auth/user/add')])
    with pytest.raises(EtcdUserExists) as after_failover:
        client.transport.request('/v3/auth/user/add', {'name': 'v', 'password': 'y'})
    assert after_failover.value.resent is True and etcd.users['v'] == 'y'
