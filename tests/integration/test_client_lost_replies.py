"""Lost replies against real etcd: a member applies a request, its reply never reaches the client, and the client
resends the request to the next endpoint. And watch streams that break as soon as they open.

The first endpoint is a TCP proxy (tcp_proxy) in front of the member that drops the reply to one request; the
second is the same member directly, so the resend meets the state the first attempt left.
"""

import os
import sys

import pytest
from ansible.module_utils import basic

from ansible_collections.pgha.cluster.plugins.module_utils.etcd_client import EtcdClient
from ansible_collections.pgha.cluster.plugins.module_utils.etcd_errors import EtcdError, EtcdUnreachable
from module_runner import run_module
from tcp_proxy import TcpProxy

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'lib'))
from watch_thread import next_in_thread  # noqa: E402  pylint: disable=wrong-import-position


@pytest.fixture(autouse=True)
def module_profile(monkeypatch):
    """ansible-core 2.19's AnsibleModule also needs a serialization profile next to its arguments."""
    if getattr(basic, '_ANSIBLE_PROFILE', 'legacy') is None:
        monkeypatch.setattr(basic, '_ANSIBLE_PROFILE', 'legacy')


@pytest.fixture
def member(etcd_cluster_factory):
    """One plain member, authentication off (users and roles can be made without credentials)."""
    return etcd_cluster_factory(size=1, tls=False, auth=False, jwt=True, name='lost').member(0)


def losing(member, *markers, **kwargs):
    """A proxy to ``member`` that drops the reply to the first request holding each of ``markers``."""
    return TcpProxy((member.ip, member.client_port), lose_reply_to=markers, **kwargs)


def module(module_name, member, proxy, **args):
    return run_module(module_name, dict(endpoints=[proxy.url, member.client_url], timeout=3, **args))


def test_a_user_whose_creation_reply_was_lost_is_created(member):
    with client_for_member(member) as client:
        client.role_add('lost-reader')
    with losing(member, b'/v3/auth/user/add') as proxy:
        result = module('etcd_user', member, proxy, name='lost-user', user_password='lost-pw', roles=['lost-reader'])
        assert proxy.lost == [b'/v3/auth/user/add'], 'the reply was not dropped: the test proves nothing'
    assert not result.get('failed'), result['msg']
    assert result['changed'] is True and result['roles'] == ['lost-reader'] and result['password_changed'] is True
    with client_for_member(member) as client:
        assert client.user_get('lost-user') == ['lost-reader']
        # The password is the one asked for (auth is off: etcd checks it once enabled; the hash is there).
        assert 'lost-user' in client.user_list()


def test_a_role_whose_creation_reply_was_lost_is_created(member):
    with losing(member, b'/v3/auth/role/add') as proxy:
        result = module('etcd_role', member, proxy, name='lost-role',
                        permissions=[{'key': '/service/lost/', 'prefix': True, 'type': 'readwrite'}])
        assert proxy.lost == [b'/v3/auth/role/add']
    assert not result.get('failed'), result['msg']
    assert result['changed'] is True
    with client_for_member(member) as client:
        assert [p.perm_type for p in client.role_get('lost-role')] == ['READWRITE']


def test_a_lease_grant_whose_reply_was_lost_leaves_one_lease(member):
    with client_for_member(member) as direct:
        before = set(direct.leases())
        with losing(member, b'/v3/lease/grant') as proxy:
            with client_for_member(member, endpoints=[proxy.url, member.client_url]) as client:
                lease = client.lease_grant(120)
            assert proxy.lost == [b'/v3/lease/grant']
        assert set(direct.leases()) - before == {lease.id}, 'a second lease was granted for one request'
        assert direct.lease_ttl(lease.id).granted_ttl == 120


def test_etcd_key_with_a_lease_and_a_lost_reply_writes_once_and_deletes_nothing(member, unique_prefix):
    key = unique_prefix + 'leased'
    with client_for_member(member) as direct:
        leases_before = set(direct.leases())
        revision_before = direct.range(key).revision
        with losing(member, b'/v3/lease/grant', b'/v3/kv/txn') as proxy:
            result = module('etcd_key', member, proxy, key=key, value='v1', lease_ttl=120)
            assert sorted(proxy.lost) == [b'/v3/kv/txn', b'/v3/lease/grant']
        assert not result.get('failed'), result['msg']
        assert result['changed'] is True
        kv = direct.get(key)
        assert kv.value == b'v1' and kv.lease == result['lease']
        # One write and nothing else: before, the resent transaction's failed comparison made the module
        # revoke its lease, which deleted the key it had just written, and write it again with a new lease.
        assert kv.create_revision == kv.mod_revision == revision_before + 1 and kv.version == 1
        assert direct.range(key).revision == revision_before + 1
        assert set(direct.leases()) - leases_before == {result['lease']}


def client_for_member(member, endpoints=None):
    return EtcdClient(endpoints or [member.client_url], timeout=3)


def test_a_watch_whose_streams_break_as_they_open_gives_up_after_reconnect_timeout(member, unique_prefix):
    with TcpProxy((member.ip, member.client_port), cut_after_reply=True) as proxy:
        with client_for_member(member, endpoints=[proxy.url]) as client:
            watch = client.watch(unique_prefix, prefix=True, reconnect_timeout=2.0)
            value, seconds = next_in_thread(watch, timeout=20)
        assert isinstance(value, EtcdUnreachable), repr(value)
        assert 2.0 <= seconds < 8
        assert proxy.connections <= 15, '%d streams opened in %.1fs' % (proxy.connections, seconds)


def test_a_watch_resumes_through_streams_that_break_once(member, unique_prefix):
    """The bound on re-opening does not cost events: a stream cut after it opened is resumed where it was."""
    with TcpProxy((member.ip, member.client_port)) as proxy:
        with client_for_member(member, endpoints=[proxy.url, member.client_url]) as client:
            client.put(unique_prefix + 'a', '1')
            start = client.range(unique_prefix + 'a').revision
            watch = client.watch(unique_prefix, prefix=True, start_revision=start, reconnect_timeout=5)
            first, dummy = next_in_thread(watch, timeout=10)
            proxy.close()  # the stream breaks; the watch goes on at the member itself
            client.put(unique_prefix + 'b', '2')
            second, dummy = next_in_thread(watch, timeout=10)
            watch.close()
    assert not isinstance(first, EtcdError) and not isinstance(second, EtcdError), (first, second)
    keys = [e.kv.key for e in first.events + second.events]
    assert keys == [(unique_prefix + 'a').encode(), (unique_prefix + 'b').encode()]


def test_etcd_key_deleting_with_a_lost_reply_reports_the_deletion(member, unique_prefix):
    key = unique_prefix + 'doomed'
    with client_for_member(member) as direct:
        direct.put(key, 'v')
        with losing(member, b'/v3/kv/txn') as proxy:
            result = module('etcd_key', member, proxy, key=key, state='absent')
            assert proxy.lost == [b'/v3/kv/txn']
        assert not result.get('failed'), result['msg']
        assert direct.get(key) is None
        assert result['changed'] is True and result['deleted'] == 1 and result['previous'] == 'v'
