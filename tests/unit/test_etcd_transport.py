import http.client
import socket
import ssl

import pytest

from ansible_collections.pgha.cluster.plugins.module_utils.etcd_client import EtcdClient
from ansible_collections.pgha.cluster.plugins.module_utils.etcd_errors import (
    EtcdConfigError,
    EtcdNoLeader,
    EtcdTLSError,
    EtcdUnhealthyCluster,
    EtcdUnreachable,
    error_from_reply,
)
from ansible_collections.pgha.cluster.plugins.module_utils.etcd_transport import (
    Transport,
    combine_failures,
    describe_connection_error,
)
from ansible_collections.pgha.cluster.plugins.module_utils.etcd_types import parse_endpoint
from etcd_fakes import FakeEtcd, fake_client

EP = parse_endpoint('https://etcd-1:2379')


def test_unusable_certificate_files_are_etcd_config_errors(tmp_path):
    with pytest.raises(EtcdConfigError, match=r'ca_cert: file .*nope.pem does not exist'):
        Transport(['https://etcd-1'], ca_cert=str(tmp_path / 'nope.pem'))


def test_plain_endpoints_without_tls_options():
    plain = Transport(['etcd-1', 'etcd-2:1234'])
    assert [e.url for e in plain.endpoints] == ['http://etcd-1:2379', 'http://etcd-2:1234']
    assert plain.ssl_context is None


def test_certificates_with_http_endpoints_are_refused(tmp_path):
    ca = ssl.get_default_verify_paths().cafile
    if not ca:
        pytest.skip('no system CA bundle to use as a readable PEM file')
    with pytest.raises(EtcdConfigError, match='use https:// endpoints'):
        Transport(['http://etcd-1'], ca_cert=ca)
    assert Transport(['etcd-1'], ca_cert=ca).endpoints[0].scheme == 'https'


@pytest.mark.parametrize('timeout', [0, -1, 'soon'])
def test_bad_timeout(timeout):
    with pytest.raises(EtcdConfigError, match='timeout'):
        Transport(['etcd-1'], timeout=timeout)


def test_username_and_password_go_together():
    with pytest.raises(EtcdConfigError, match='password is not'):
        EtcdClient(['etcd-1'], username='root')
    with pytest.raises(EtcdConfigError, match='username is not'):
        EtcdClient(['etcd-1'], password='secret')


def test_bad_endpoint_fails_before_any_request():
    with pytest.raises(EtcdConfigError, match='must not contain a path'):
        EtcdClient(['http://127.0.0.1:1/v3'])


def _verify_error(message):
    exc = ssl.SSLCertVerificationError(1, message)
    exc.verify_message = message
    return exc


@pytest.mark.parametrize('exc, cls, fragment', [
    (_verify_error('unable to get local issuer certificate'), EtcdTLSError, 'TLS verification'),
    (_verify_error("Hostname mismatch, certificate is not valid for 'etcd-1'."), EtcdTLSError, 'SANs'),
    (ssl.SSLError(1, '[SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED] tlsv13 alert certificate required'), EtcdTLSError,
     'requires a client certificate'),
    (ssl.SSLError(1, '[SSL: SSLV3_ALERT_BAD_CERTIFICATE] sslv3 alert bad certificate'), EtcdTLSError,
     'requires a client certificate'),
    (ssl.SSLError(1, '[SSL: WRONG_VERSION_NUMBER] wrong version number'), EtcdTLSError, 'does not speak TLS'),
    (ConnectionRefusedError(111, 'Connection refused'), EtcdUnreachable, 'connection refused'),
    (socket.timeout('timed out'), EtcdUnreachable, 'timed out'),
    (socket.gaierror(-2, 'Name or service not known'), EtcdUnreachable, 'cannot be resolved'),
    (http.client.RemoteDisconnected('closed'), EtcdUnreachable, 'closed the connection'),
    (OSError(113, 'No route to host'), EtcdUnreachable, 'No route to host'),
])
def test_connection_errors_are_described(exc, cls, fragment):
    err = describe_connection_error(EP, exc, ca_cert='/etc/pgha/ca.crt')
    assert err.__class__ is cls
    assert fragment in str(err)
    assert 'https://etcd-1:2379' in str(err)
    assert err.cause is exc


def test_combined_failure_prefers_tls_and_lists_every_endpoint():
    a = EtcdUnreachable('etcd at http://a:1 is unreachable: connection refused', endpoint='http://a:1')
    b = EtcdTLSError('TLS verification of etcd at http://b:1 failed', endpoint='http://b:1')
    combined = combine_failures([a, b])
    assert isinstance(combined, EtcdTLSError)
    assert 'http://a:1' in str(combined) and 'http://b:1' in str(combined)
    assert isinstance(combine_failures([a, a]), EtcdUnreachable)
    assert combine_failures([a]) is a


def test_combined_failure_keeps_what_etcd_answered():
    refused = EtcdUnreachable('etcd at http://a:1 is unreachable: connection refused', endpoint='http://a:1')
    no_leader = error_from_reply('http://b:1', 503, {'error': 'etcdserver: no leader', 'code': 14})
    strict = error_from_reply('http://c:1', 503, {'error': 'etcdserver: unhealthy cluster', 'code': 14})
    assert combine_failures([refused, no_leader]).__class__ is EtcdNoLeader
    combined = combine_failures([refused, no_leader, strict])
    assert combined.__class__ is EtcdUnhealthyCluster and 'connection refused' in str(combined)


# ------------------------------------------------------------------ credentials never cross the network in clear

@pytest.mark.parametrize('endpoint', ['http://10.0.0.1:2379', 'etcd-1:2379', 'http://[fd00::1]:2379'])
def test_credentials_are_refused_for_plain_http_to_another_host(endpoint):
    with pytest.raises(EtcdConfigError, match='refusing to send etcd credentials') as caught:
        EtcdClient(['http://127.0.0.1:2379', endpoint], username='root', password='s3cret')
    assert parse_endpoint(endpoint).url in str(caught.value)
    assert caught.value.endpoint == parse_endpoint(endpoint).url


@pytest.mark.parametrize('endpoint', ['http://127.0.0.1:2379', 'http://127.0.0.31:2379', 'http://localhost:2379',
                                      'http://[::1]:2379'])
def test_credentials_over_plain_http_on_the_loopback_interface_are_allowed(endpoint):
    client = EtcdClient([endpoint], username='root', password='s3cret')
    assert client.warnings == []


def test_passwords_in_request_bodies_are_refused_over_plain_http_before_any_connection():
    etcd = FakeEtcd()
    client = fake_client(['http://10.0.0.1:2379'], etcd)  # no credentials of its own: allowed
    for send in (lambda: client.user_add('patroni', 's3cret'), lambda: client.user_change_password('root', 'new'),
                 lambda: client.check_password('root', 's3cret'), lambda: client.authenticate('root', 's3cret')):
        with pytest.raises(EtcdConfigError, match='http://10.0.0.1:2379'):
            send()
    assert etcd.requests == [] and client.transport.connects == 0
    client.user_add('cert-only', no_password=True)  # no password in the body: nothing to protect
    assert 'cert-only' in etcd.users


def test_a_token_is_never_sent_to_a_plain_http_member_named_by_url():
    etcd = FakeEtcd()
    client = fake_client(['http://127.0.0.1:2379'], etcd, username='root', password='s3cret')
    client._token, client._auth_enabled = 'a-token', True
    with pytest.raises(EtcdConfigError, match='http://10.0.0.5:2379'):
        client.status('http://10.0.0.5:2379')
    assert etcd.requests == []


def test_unverified_tls_is_warned_about():
    ca = ssl.get_default_verify_paths().cafile
    if not ca:
        pytest.skip('no system CA bundle to use as a readable PEM file')
    unverified = EtcdClient(['https://etcd-1:2379'], ca_cert=ca, validate_certs=False)
    assert len(unverified.warnings) == 1
    assert 'validate_certs is false' in unverified.warnings[0] and 'https://etcd-1:2379' in unverified.warnings[0]
    assert EtcdClient(['https://etcd-1:2379'], ca_cert=ca).warnings == []
    assert EtcdClient(['http://127.0.0.1:2379'], validate_certs=False).warnings == []
