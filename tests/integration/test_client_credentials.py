"""Credentials never cross the network in clear, against real etcd and a real Patroni REST API.

A recording TCP proxy (tcp_proxy) on a non-loopback address of this host stands for "another machine reached
over plain HTTP": whatever the clients send through it is kept, so the tests see exactly what would have been
on the wire. Plain HTTP on the loopback interface stays allowed (tests, a local development setup).
"""

import socket

import pytest
from ansible.module_utils import basic
from ansible.module_utils.common import warnings as module_warnings

from ansible_collections.pgha.cluster.plugins.module_utils.etcd_errors import EtcdConfigError
from ansible_collections.pgha.cluster.plugins.module_utils.patroni_rest import PatroniRestClient, PatroniRestError
from collection_client import client_for
from module_runner import connection_args, run_module
from tcp_proxy import TcpProxy


@pytest.fixture(autouse=True)
def module_profile(monkeypatch):
    """ansible-core 2.19's AnsibleModule also needs a serialization profile next to its arguments."""
    if getattr(basic, '_ANSIBLE_PROFILE', 'legacy') is None:
        monkeypatch.setattr(basic, '_ANSIBLE_PROFILE', 'legacy')


def outside_address():
    """An address of this host that is not on the loopback interface (the one its default route uses)."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(('192.0.2.123', 9))  # UDP connect sends nothing: it only picks the source address
        address = probe.getsockname()[0]
    except OSError:
        address = None
    finally:
        probe.close()
    if not address or address.startswith('127.'):
        pytest.skip('this host has no address outside the loopback interface')
    return address


@pytest.fixture
def plain_auth(etcd_cluster_factory):
    """One plain-HTTP member with authentication on (root and the harness users)."""
    return etcd_cluster_factory(size=1, tls=False, auth=True, token_ttl=30, name='plainauth')


def test_etcd_credentials_are_never_sent_over_plain_http_to_another_host(plain_auth):
    member = plain_auth.member(0)
    password = plain_auth.root_password
    with TcpProxy((member.ip, member.client_port), listen_ip=outside_address()) as proxy:
        with pytest.raises(EtcdConfigError, match='refusing to send etcd credentials') as caught:
            client = client_for(plain_auth, endpoints=[proxy.url])
            client.put('/pgha-test/credentials', 'x')  # reached only if the client accepted the endpoint
        assert proxy.url in str(caught.value)

        result = run_module('etcd_key', dict(connection_args(plain_auth, endpoints=[proxy.url]),
                                             key='/pgha-test/credentials', value='x'))
        assert result['failed'] and result['error_type'] == 'EtcdConfigError' and proxy.url in result['msg']

        # Without credentials of its own, a module still must not carry a new user's password there.
        result = run_module('etcd_user', dict(connection_args(plain_auth, user=None, endpoints=[proxy.url]),
                                              name='newcomer', user_password='newcomer-s3cret'))
        assert result['failed'] and 'refusing to send etcd credentials' in result['msg']
        # (It asked /v3/auth/status through the proxy, which carries nothing secret.)
        assert password.encode() not in proxy.received and b'newcomer-s3cret' not in proxy.received
        assert b'/v3/auth/authenticate' not in proxy.received and b'/v3/auth/user/add' not in proxy.received


def test_etcd_credentials_over_plain_http_on_the_loopback_interface_still_work(plain_auth):
    member = plain_auth.member(0)
    with TcpProxy((member.ip, member.client_port), listen_ip='127.0.0.1') as proxy:
        with client_for(plain_auth, endpoints=[proxy.url]) as client:
            client.put('/service/demo/credentials', 'x')
            assert client.get('/service/demo/credentials').value == b'x'
            assert client.authentications == 1
        assert plain_auth.root_password.encode() in proxy.received


def unverified_warnings(monkeypatch, cluster, **options):
    """The validate_certs warnings an etcd_info run gives (the warnings kept by Ansible are reset first)."""
    monkeypatch.setattr(module_warnings, '_global_warnings', {})
    result = run_module('etcd_info', connection_args(cluster, **options))
    assert not result.get('failed'), result
    return [w for w in module_warnings.get_warning_messages() if 'validate_certs is false' in w]


def test_unverified_etcd_certificates_are_a_module_warning(monkeypatch, etcd_tls):
    warnings = unverified_warnings(monkeypatch, etcd_tls, validate_certs=False)
    assert len(warnings) == 1 and etcd_tls.endpoints[0] in warnings[0]
    assert unverified_warnings(monkeypatch, etcd_tls) == []


@pytest.fixture
def rest_node(etcd_plain, patroni_cluster_factory):
    """One Patroni node whose REST API asks for credentials on its unsafe endpoints."""
    cluster = patroni_cluster_factory(etcd_plain, size=1, restapi_auth=True)
    return cluster, cluster.wait_leader()


def test_patroni_rest_credentials_go_only_with_unsafe_requests_and_never_over_plain_http(rest_node):
    cluster, node = rest_node
    client = PatroniRestClient(username=cluster.restapi_user, password=cluster.restapi_password)
    secret = cluster.restapi_auth_header.split()[1].encode()
    with TcpProxy((node.ip, node.api_port), listen_ip='127.0.0.1') as local:
        # Patroni answers GETs without credentials: none are sent.
        assert client.patroni(local.url)['role'] in ('primary', 'master')
        assert secret not in local.received
        # PATCH /config is checked by Patroni: the credentials go with it, and it is accepted.
        answer = client.request(local.url, 'PATCH', '/config', body={'loop_wait': cluster.loop_wait})
        assert answer.status == 200 and secret in local.received
    with TcpProxy((node.ip, node.api_port), listen_ip=outside_address()) as outside:
        assert client.patroni(outside.url)['role'] in ('primary', 'master')
        with pytest.raises(PatroniRestError, match='refusing to send rest_username/rest_password'):
            client.request(outside.url, 'PATCH', '/config', body={'loop_wait': cluster.loop_wait})
        assert secret not in outside.received and outside.connections == 1  # the GET only
    # Without credentials Patroni refuses the PATCH: the credentials were needed, not just sent.
    with pytest.raises(PatroniRestError, match='HTTP 401'):
        PatroniRestClient().request(node.api_url, 'PATCH', '/config', body={'loop_wait': cluster.loop_wait})
