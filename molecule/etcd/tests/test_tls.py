"""Every etcd listener speaks TLS only and admits only clients with a certificate from the cluster's CA.

Each refusal is paired with the same request made with the cluster's own
admin client certificate, which must succeed: a refusal then cannot come from
a wrong address, a network problem or a server certificate we fail to verify.
"""

import datetime
import http.client
import ssl

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ansible_collections.pgha.cluster.plugins.module_utils.etcd_client import EtcdClient
from ansible_collections.pgha.cluster.plugins.module_utils.etcd_errors import EtcdConnectionError
from etcd_scenario import CLIENT_PORT, HOST_PKI_DIR, PEER_PORT

PORTS = {'client': CLIENT_PORT, 'peer': PEER_PORT}


def https_get(scenario, host, port, path, cert=None, timeout=15):
    """('answered', status, body) or ('refused', why) for an HTTPS GET presenting ``cert`` (a (crt, key) pair)."""
    ctx = ssl.create_default_context(cafile=scenario.ca_cert)
    if cert:
        ctx.load_cert_chain(*cert)
    conn = http.client.HTTPSConnection(scenario.ip(host), port, context=ctx, timeout=timeout)
    try:
        conn.request('GET', path)
        response = conn.getresponse()
        return 'answered', response.status, response.read().decode('utf-8', 'replace')
    except ssl.SSLCertVerificationError:
        raise  # our side rejected the server: not what these tests are about
    except (ssl.SSLError, OSError, http.client.HTTPException) as exc:
        return 'refused', repr(exc)
    finally:
        conn.close()


def curl(scenario, container, url, *options):
    """(exit code, HTTP code) of curl in ``container`` (HTTP code 000: no HTTP answer at all)."""
    proc = scenario.docker_exec(container, ['curl', '-sS', '-m', '15', '-o', '/dev/null', '-w', '%{http_code}']
                                + list(options) + [url])
    return proc.returncode, proc.stdout.strip()


@pytest.fixture(scope='module')
def foreign_cert(tmp_path_factory):
    """A client certificate (no CN, clientAuth, like the cluster's own) signed by a throwaway CA."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, 'not the pgha CA')])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, 'pgha'),
                                     x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, 'admin')]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    directory = tmp_path_factory.mktemp('foreign-ca')
    crt_file, key_file = directory / 'client.crt', directory / 'client.key'
    crt_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM) + ca.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(crt_file), str(key_file)


@pytest.mark.parametrize('port', sorted(PORTS))
def test_plain_http_gets_no_http_answer(scenario, port):
    """curl from another container: http:// gets no HTTP answer, while https:// with a client certificate does."""
    for i, host in enumerate(scenario.members):
        other = scenario.members[(i + 1) % len(scenario.members)]
        base = '%s://%s:%d/version'
        rc, code = curl(scenario, other, base % ('http', scenario.ip(host), PORTS[port]))
        assert rc != 0 and code == '000', 'plain HTTP to %s:%d got an answer (curl rc %s, HTTP %s)' % (
            host, PORTS[port], rc, code)
        rc, code = curl(scenario, other, base % ('https', scenario.ip(host), PORTS[port]), '--http1.1',
                        '--cacert', HOST_PKI_DIR + '/ca.crt', '--cert', HOST_PKI_DIR + '/client-admin.crt',
                        '--key', HOST_PKI_DIR + '/client-admin.key')
        assert (rc, code) == (0, '200'), 'the control request over TLS to %s:%d failed' % (host, PORTS[port])


@pytest.mark.parametrize('port', sorted(PORTS))
def test_tls_without_client_certificate_is_refused(scenario, port):
    for host in scenario.members:
        outcome = https_get(scenario, host, PORTS[port], '/version')
        assert outcome[0] == 'refused', '%s:%d answered a client without certificate: %s' % (
            host, PORTS[port], outcome)
        control = https_get(scenario, host, PORTS[port], '/version', cert=scenario.client_cert('admin'))
        assert control[:2] == ('answered', 200), control


@pytest.mark.parametrize('port', sorted(PORTS))
def test_client_certificate_from_another_ca_is_refused(scenario, foreign_cert, port):
    for host in scenario.members:
        outcome = https_get(scenario, host, PORTS[port], '/version', cert=foreign_cert)
        assert outcome[0] == 'refused', '%s:%d accepted a certificate from another CA: %s' % (
            host, PORTS[port], outcome)


def test_our_client_reports_the_refusals(scenario, foreign_cert):
    """The collection's client turns both refusals into connection errors, never into an answer."""
    for cert in (None, foreign_cert):
        client = EtcdClient([scenario.client_url(scenario.members[0])], ca_cert=scenario.ca_cert,
                            client_cert=cert[0] if cert else None, client_key=cert[1] if cert else None,
                            username='root', password=scenario.passwords['root'], timeout=10)
        try:
            with pytest.raises(EtcdConnectionError):
                client.get('/')
        finally:
            client.close()
