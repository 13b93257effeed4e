"""TLS, authentication and reachability failures give the right exception and a message a user can act on."""

import socket
import ssl
import threading
import time

import pytest

from ansible_collections.pgha.cluster.plugins.module_utils.etcd_client import EtcdClient
from ansible_collections.pgha.cluster.plugins.module_utils.etcd_errors import (
    EtcdAuthError,
    EtcdConnectionError,
    EtcdPermissionDenied,
    EtcdTLSError,
    EtcdUnreachable,
)
from collection_client import client_for


def _closed_port(ip='127.0.0.1'):
    s = socket.socket()
    s.bind((ip, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_token_expiry_triggers_one_relogin(etcd_tls, unique_prefix):
    with client_for(etcd_tls) as client:
        client.put(unique_prefix + 'k', 'v1')
        assert client.authentications == 1
        time.sleep(etcd_tls.token_ttl + 1.0)  # the JWT is now expired
        client.put(unique_prefix + 'k', 'v2')
        assert client.get(unique_prefix + 'k').value == b'v2'
        assert client.authentications == 2


def test_wrong_password(etcd_tls):
    with pytest.raises(EtcdAuthError, match='wrong username or password') as err:
        client_for(etcd_tls, user='patroni-demo', password='not-the-password').get('/service/demo/x')
    assert err.value.endpoint in etcd_tls.endpoints


def test_unknown_user(etcd_tls):
    with pytest.raises(EtcdAuthError, match='wrong username or password'):
        client_for(etcd_tls, user='nobody', password='x').get('/service/demo/x')


def test_missing_credentials_on_auth_cluster(etcd_tls):
    with pytest.raises(EtcdPermissionDenied, match='no username was given.*set username and password'):
        client_for(etcd_tls, user=None).get('/service/demo/x')


def test_user_limited_to_prefix(etcd_tls, etcd3_lib):
    with client_for(etcd_tls, user='patroni-demo') as patroni:
        patroni.put('/service/demo/leader', 'node-1')
        assert etcd3_lib(etcd_tls).get('/service/demo/leader')[0] == b'node-1'
        with pytest.raises(EtcdPermissionDenied, match='permission denied') as err:
            patroni.put('/service/other/leader', 'node-1')
        assert err.value.endpoint in etcd_tls.endpoints
        with pytest.raises(EtcdPermissionDenied):
            patroni.get('/service/other/leader')
    with client_for(etcd_tls, user='lb-demo') as lb:
        assert lb.get('/service/demo/leader').value == b'node-1'
        with pytest.raises(EtcdPermissionDenied):
            lb.put('/service/demo/leader', 'node-2')
    assert etcd3_lib(etcd_tls).get('/service/demo/leader')[0] == b'node-1'


def test_wrong_ca(etcd_tls):
    client = client_for(etcd_tls, ca_cert=etcd_tls.wrong_ca_cert)
    with pytest.raises(EtcdTLSError, match='TLS verification of etcd at https://.* failed') as err:
        client.get('/x')
    # Every endpoint was tried and is named.
    assert all(ep in str(err.value) for ep in etcd_tls.endpoints)
    assert 'ca_cert' in str(err.value)


def test_validate_certs_false_skips_verification(etcd_tls):
    with client_for(etcd_tls, ca_cert=etcd_tls.wrong_ca_cert, validate_certs=False) as client:
        assert client.get('/service/demo/never-written') is None


# Under TLS 1.3 the server refuses a client certificate after the client's side
# of the handshake is done: the client sees either the server's alert
# (EtcdTLSError) or, when the reset overtakes it, an EOF (EtcdUnreachable).
# Both messages must point at the client certificate.
def test_missing_client_certificate(etcd_tls):
    client = client_for(etcd_tls, cert=None, key=None)
    with pytest.raises(EtcdConnectionError, match='client certificate it trusts.*client_cert and client_key'):
        client.get('/x')


def test_client_certificate_from_another_ca(etcd_tls):
    client = client_for(etcd_tls, cert=etcd_tls.wrong_ca_client_cert, key=etcd_tls.wrong_ca_client_key)
    with pytest.raises(EtcdConnectionError, match='client certificate it trusts.*client_cert and client_key'):
        client.get('/x')


def test_client_certificate_with_common_name_is_refused_by_gateway(etcd_tls):
    client = client_for(etcd_tls, cert=etcd_tls.cn_client_cert, key=etcd_tls.cn_client_key)
    with pytest.raises(EtcdTLSError, match='client certificate without a CN'):
        client.get('/x')


def test_plain_http_to_tls_member(etcd_tls):
    http_endpoints = [ep.replace('https://', 'http://') for ep in etcd_tls.endpoints]
    # etcd's TLS-only listener hangs up on plain HTTP without answering.
    with pytest.raises(EtcdUnreachable, match='closed the connection.*use an https:// endpoint and set ca_cert'):
        EtcdClient(http_endpoints[:1]).get('/x')


def test_tls_to_plain_member(etcd_plain, etcd_tls):
    https = etcd_plain.endpoints[0].replace('http://', 'https://')
    # The plain listener drops the TLS hello: seen as an EOF or as a reset, depending on timing.
    with pytest.raises(EtcdUnreachable, match='closed the (TLS )?connection.*use an http:// endpoint'):
        EtcdClient([https], ca_cert=etcd_tls.ca_cert).get('/x')


def test_server_certificate_for_another_name(etcd_tls, tmp_path):
    # A TLS listener with a certificate from the right CA but for other names:
    # only hostname verification can reject it.
    pair = etcd_tls.pki.issue_server_cert('elsewhere', 'elsewhere', dns_names=('elsewhere.invalid',),
                                          ips=('127.0.0.99',))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pair[0], pair[1])
    listener = socket.socket()
    listener.bind(('127.0.0.1', 0))
    listener.listen(4)
    port = listener.getsockname()[1]

    def serve():
        try:
            conn = listener.accept()[0]
            try:
                ctx.wrap_socket(conn, server_side=True)
            except (ssl.SSLError, OSError):
                pass
            conn.close()
        except OSError:
            pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        with pytest.raises(EtcdTLSError, match="does not list '127.0.0.1'"):
            EtcdClient(['https://127.0.0.1:%d' % port], ca_cert=etcd_tls.ca_cert).get('/x')
    finally:
        listener.close()
        thread.join(5)


def test_dead_endpoints_are_all_named(etcd_tls):
    dead = ['127.0.0.1:%d' % _closed_port(), '127.0.0.1:%d' % _closed_port()]
    client = EtcdClient(dead, ca_cert=etcd_tls.ca_cert, timeout=1)
    with pytest.raises(EtcdUnreachable, match='connection refused') as err:
        client.get('/x')
    assert 'no etcd endpoint could serve the request' in str(err.value)
    assert all(d in str(err.value) for d in dead)


def test_silent_endpoint_times_out(etcd_plain):
    # A socket that accepts connections but never answers.
    silent = socket.socket()
    silent.bind(('127.0.0.1', 0))
    silent.listen(8)
    try:
        client = EtcdClient(['127.0.0.1:%d' % silent.getsockname()[1]], timeout=0.5)
        start = time.monotonic()
        with pytest.raises(EtcdUnreachable, match='timed out'):
            client.get('/x')
        assert time.monotonic() - start < 5
        # With a live endpoint behind it, the request succeeds there.
        both = EtcdClient(['127.0.0.1:%d' % silent.getsockname()[1]] + etcd_plain.endpoints, timeout=0.5)
        assert both.get('/pgha-test/never-written') is None
        assert both.transport.ordered_endpoints()[0].url == etcd_plain.endpoints[0]
    finally:
        silent.close()


def test_dead_first_endpoint_fails_over(etcd_tls, unique_prefix):
    dead = 'https://127.0.0.1:%d' % _closed_port()
    with client_for(etcd_tls, endpoints=[dead] + etcd_tls.endpoints) as client:
        client.put(unique_prefix + 'k', 'v')
        assert client.get(unique_prefix + 'k').value == b'v'
        # The member that answered is tried first from now on.
        assert client.transport.ordered_endpoints()[0].url == etcd_tls.endpoints[0]
