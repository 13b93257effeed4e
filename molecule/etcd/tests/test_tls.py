"""Every etcd listener speaks TLS only. The client port admits only clients with a certificate from the cluster's
CA; the peer port only etcd members, with a peer certificate from the etcd peer CA.

Each refusal is paired with the same request made with a certificate the port accepts (the admin client
certificate on the client port, another member's peer certificate on the peer port), which must succeed: a
refusal then cannot come from a wrong address, a network problem or a server certificate we fail to verify.
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
# In a member's container: the certificate each port accepts, and the CA its server certificate comes from.
CONTAINER_CONTROL = {
    'client': ['--cacert', HOST_PKI_DIR + '/ca.crt', '--cert', HOST_PKI_DIR + '/client-admin.crt',
               '--key', HOST_PKI_DIR + '/client-admin.key'],
    'peer': ['--cacert', HOST_PKI_DIR + '/etcd-peer-ca.crt', '--cert', HOST_PKI_DIR + '/etcd-peer.crt',
             '--key', HOST_PKI_DIR + '/etcd-peer.key'],
}


def server_ca(scenario, port):
    return scenario.peer_ca_cert if port == PEER_PORT else scenario.ca_cert


def other_member(scenario, host):
    return next(h for h in scenario.members if h != host)


def https_control(scenario, host, port):
    """A request to ``port`` of ``host`` with a certificate it accepts must be answered: the admin client
    certificate from here; for the peer port, another member's peer certificate from that member's container
    (etcd also checks that a client certificate with addresses in it comes from one of them)."""
    if port == PEER_PORT:
        other = other_member(scenario, host)
        rc, code = curl(scenario, other, 'https://%s:%d/members' % (scenario.ip(host), port), '--http1.1',
                        *CONTAINER_CONTROL['peer'])
        assert (rc, code) == (0, '200'), 'the control request from %s to %s:%d failed' % (other, host, port)
    else:
        control = https_get(scenario, host, port, '/version', cert=scenario.client_cert('admin'))
        assert control[:2] == ('answered', 200), control


def https_get(scenario, host, port, path, cert=None, timeout=15):
    """('answered', status, body) or ('refused', why) for an HTTPS GET presenting ``cert`` (a (crt, key) pair)."""
    ctx = ssl.create_default_context(cafile=server_ca(scenario, port))
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
                        *CONTAINER_CONTROL[port])
        assert (rc, code) == (0, '200'), 'the control request over TLS to %s:%d failed' % (host, PORTS[port])


@pytest.mark.parametrize('port', sorted(PORTS))
def test_tls_without_client_certificate_is_refused(scenario, port):
    for host in scenario.members:
        outcome = https_get(scenario, host, PORTS[port], '/version')
        assert outcome[0] == 'refused', '%s:%d answered a client without certificate: %s' % (
            host, PORTS[port], outcome)
        https_control(scenario, host, PORTS[port])


@pytest.mark.parametrize('port', sorted(PORTS))
def test_client_certificate_from_another_ca_is_refused(scenario, foreign_cert, port):
    for host in scenario.members:
        outcome = https_get(scenario, host, PORTS[port], '/version', cert=foreign_cert)
        assert outcome[0] == 'refused', '%s:%d accepted a certificate from another CA: %s' % (
            host, PORTS[port], outcome)


def test_peer_port_admits_only_members(scenario):
    """Only a member's peer certificate gets the member list on the peer port: not the client certificates every
    host holds, nor a member's server certificate (the cluster's CA, clientAuth - but not the peer CA). Each is
    presented from a member's container, the address its certificates name, so that the CA is the only reason
    for a refusal."""
    for host in scenario.members:
        other = other_member(scenario, host)
        url = 'https://%s:%d/members' % (scenario.ip(host), PEER_PORT)
        peer_ca = ['--cacert', HOST_PKI_DIR + '/etcd-peer-ca.crt']
        for name in ('client-admin', 'client-patroni', 'client-lb-agent', other):
            rc, code = curl(scenario, other, url, '--http1.1', *(peer_ca + [
                '--cert', '%s/%s.crt' % (HOST_PKI_DIR, name), '--key', '%s/%s.key' % (HOST_PKI_DIR, name)]))
            assert rc != 0 and code == '000', '%s:%d answered %s\'s %s certificate (curl rc %s, HTTP %s)' % (
                host, PEER_PORT, other, name, rc, code)
        https_control(scenario, host, PEER_PORT)


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
