"""What etcd accepts on its ports, with the certificates of the pki role and the configuration of the etcd role.

The module fixture runs the real roles on this machine (connection local): the pki role for three etcd members
and one database host, then the etcd role's own task files that install the member's TLS files and render
etcd.conf.yml (no package or service: etcd is started here from each rendered file). So the certificates, the
files and the flags under test are exactly what the roles produce.

Each refusal is paired with a control that gets an answer, so that a refusal cannot come from a wrong address or
a server certificate the test fails to verify. Where a test compares with the layout before the hardening, it uses
the harness's ``etcd_tls`` cluster, which is laid out as the roles were: one CA for clients and peers, server
certificates good for clientAuth used as peer certificates, no cipher suites configured.
"""

import http.client
import json
import os
import secrets
import socket
import ssl
import subprocess
import tempfile
import warnings

import pytest
import yaml
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

import etcd_harness
from playbook_runner import run_playbook

MEMBERS = {'etcd-a': '127.0.0.71', 'etcd-b': '127.0.0.72', 'etcd-c': '127.0.0.73'}
# A database host named like an etcd user of the default cluster (lb-main): its server certificate would log
# in to etcd as that user if it were good for clientAuth.
DB_HOST, DB_IP = 'lb-main', '127.0.0.74'
PASSWORDS = {'root': 'hardening-root-' + secrets.token_hex(6), 'patroni-main': 'hardening-patroni-' + secrets.token_hex(6),
             'lb-main': 'hardening-lb-' + secrets.token_hex(6)}
AEAD_TLS12 = 'ECDHE-ECDSA-AES128-GCM-SHA256'
CBC_TLS12 = 'ECDHE-ECDSA-AES128-SHA'


# ---------------------------------------------------------------- the cluster the roles lay out

class RoleCluster(object):
    """Three etcd members from the roles' files, started from their rendered etcd.conf.yml, with the role's RBAC."""

    def __init__(self, root):
        self.root = str(root)
        self.ca_dir = os.path.join(self.root, 'controller', 'pki')
        self.inventory = os.path.join(self.root, 'inventory.yml')
        self.ports = {h: etcd_harness.pick_free_ports(ip, 2) for h, ip in MEMBERS.items()}
        hosts = {}
        for host, ip in MEMBERS.items():
            client_port, peer_port = self.ports[host]
            hosts[host] = {'ansible_host': ip, 'ansible_connection': 'local', 'etcd_address': ip,
                           'etcd_client_port': client_port, 'etcd_peer_port': peer_port,
                           'pki_dir': self.pki_dir(host), 'etcd_config_dir': self.config_dir(host),
                           'etcd_data_dir': os.path.join(self.root, host, 'data')}
        inventory = {'all': {'children': {
            'etcd': {'hosts': hosts},
            'postgres': {'hosts': {DB_HOST: {'ansible_host': DB_IP, 'ansible_connection': 'local',
                                             'pki_dir': self.pki_dir(DB_HOST)}}},
        }}}
        with open(self.inventory, 'w') as handle:
            yaml.safe_dump(inventory, handle)
        self.members = []

    def pki_dir(self, host):
        return os.path.join(self.root, host, 'pki')

    def config_dir(self, host):
        return os.path.join(self.root, host, 'etcd')

    def pki(self, host, name):
        return os.path.join(self.pki_dir(host), name)

    def config(self, host):
        with open(os.path.join(self.config_dir(host), 'etcd.conf.yml')) as handle:
            return yaml.safe_load(handle)

    def play_vars(self):
        return {'pki_ca_dir': self.ca_dir, 'etcd_user': 'root', 'etcd_os_group': 'root',
                'etcd_listen_localhost': False, 'etcd_root_password': PASSWORDS['root'],
                'pgha_etcd_patroni_password': PASSWORDS['patroni-main'], 'pgha_etcd_lb_password': PASSWORDS['lb-main'],
                'etcd_debian_default_data_dir': os.path.join(self.root, 'no-debian-default'),
                'etcd_cluster_token': 'hardening-' + secrets.token_hex(4),
                'etcd_heartbeat_interval': etcd_harness.HEARTBEAT_MS, 'etcd_election_timeout': etcd_harness.ELECTION_MS}

    def run(self, plays):
        return run_playbook(plays, inventory=self.inventory, workdir=tempfile.mkdtemp(prefix='play-', dir=self.root))

    def etcd_tasks(self, *files):
        return [{'name': 'Run the etcd role\'s %s' % name,
                 'ansible.builtin.include_role': {'name': 'pgha.cluster.etcd', 'tasks_from': name}} for name in files]

    def lay_out(self):
        """The pki role on every host, then the etcd role's checks, TLS files and configuration on the members."""
        return self.run([
            {'name': 'Certificates', 'hosts': 'all', 'gather_facts': False, 'vars': self.play_vars(),
             'roles': [{'role': 'pgha.cluster.pki'}]},
            {'name': 'etcd files and configuration', 'hosts': 'etcd', 'gather_facts': False, 'vars': self.play_vars(),
             'tasks': self.etcd_tasks('validate.yml', 'facts.yml', 'preflight.yml', 'files.yml', 'config.yml')},
        ])

    def rbac(self):
        return self.run([{'name': 'etcd RBAC', 'hosts': 'etcd', 'gather_facts': False, 'vars': self.play_vars(),
                          'tasks': self.etcd_tasks('facts.yml', 'rbac.yml')}])

    def start(self):
        for host, ip in MEMBERS.items():
            client_port, peer_port = self.ports[host]
            config = self.config(host)
            peer = config['peer-transport-security']
            client = config['client-transport-security']
            tls = {'cert': client['cert-file'], 'key': client['key-file'], 'ca': client['trusted-ca-file'],
                   'health_cert': self.pki(host, 'client-admin.crt'), 'health_key': self.pki(host, 'client-admin.key'),
                   'peer_cert': peer['cert-file'], 'peer_key': peer['key-file'], 'peer_ca': peer['trusted-ca-file']}
            self.members.append(etcd_harness.EtcdMember(
                host, ip, client_port, peer_port, os.path.join(self.root, host, 'run'), tls=tls,
                config_file=os.path.join(self.config_dir(host), 'etcd.conf.yml')))
        for member in self.members:
            member.start(wait=False)
        for member in self.members:
            member.wait_healthy(60)

    def member(self, host):
        return next(m for m in self.members if m.name == host)

    def etcdctl(self, *args, cert=None, key=None, user=None, host='etcd-a'):
        """etcdctl over gRPC to one member, presenting ``cert``; ``user`` None sends no credentials."""
        member = self.member(host)
        argv = [etcd_harness.ETCDCTL_BIN, '--endpoints', member.client_url, '--dial-timeout', '3s',
                '--command-timeout', '5s', '--cacert', self.pki(host, 'ca.crt')]
        if cert:
            argv += ['--cert', cert, '--key', key]
        if user:
            argv += ['--user', '%s:%s' % (user, PASSWORDS[user])]
        env = dict(os.environ, ETCDCTL_API='3')
        env = {k: v for k, v in env.items() if not k.lower().endswith('_proxy')}
        return subprocess.run(argv + list(args), env=env, capture_output=True, text=True, timeout=30, check=False)

    def kill(self):
        etcd_harness.kill_quietly(self.members)

    def logs(self):
        return '\n'.join(m.log_tail(20) for m in self.members)


@pytest.fixture(scope='module')
def roles(tmp_path_factory):
    missing = etcd_harness.binaries_missing()
    if missing:
        pytest.skip('etcd binaries not found: %s' % ', '.join(missing))
    cluster = RoleCluster(tmp_path_factory.mktemp('etcd-hardening'))
    laid_out = cluster.lay_out()
    assert laid_out.rc == 0, laid_out.tail()
    try:
        cluster.start()
        rbac = cluster.rbac()
        assert rbac.rc == 0, rbac.tail()
        yield cluster
    except Exception:
        print(cluster.logs())
        raise
    finally:
        cluster.kill()


# ---------------------------------------------------------------- probes

def https_get(ip, port, path, cafile, cert=None, key=None, server_name=None):
    """('answered', status) or ('refused', why) for an HTTPS GET presenting ``cert``.

    A server certificate the test cannot verify raises: that would be the test's mistake, not a refusal.
    """
    ctx = ssl.create_default_context(cafile=cafile)
    if cert:
        ctx.load_cert_chain(cert, key)
    conn = http.client.HTTPSConnection(ip, port, context=ctx, timeout=10)
    try:
        conn.request('GET', path)
        response = conn.getresponse()
        response.read()
        return 'answered', response.status
    except ssl.SSLCertVerificationError:
        raise
    except (ssl.SSLError, OSError, http.client.HTTPException) as exc:
        return 'refused', repr(exc)
    finally:
        conn.close()


def handshake(ip, port, cafile, cert, key, version, ciphers=None):
    """The TLS version and cipher a handshake settles on, or ('refused', why); ``version`` is the only one offered."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cafile)
    ctx.load_cert_chain(cert, key)
    # OpenSSL's default security level would stop TLS 1.0/1.1 on our side, before etcd could answer.
    ctx.set_ciphers((ciphers or 'ALL') + ':@SECLEVEL=0')
    with warnings.catch_warnings():
        # Python deprecates TLS 1.0/1.1, which is just what is tried here.
        warnings.simplefilter('ignore', DeprecationWarning)
        ctx.minimum_version = ctx.maximum_version = version
    with socket.create_connection((ip, port), timeout=10) as sock:
        try:
            with ctx.wrap_socket(sock, server_hostname=ip) as tls:
                return tls.version(), tls.cipher()[0]
        except ssl.SSLCertVerificationError:
            raise
        except (ssl.SSLError, OSError) as exc:
            return 'refused', repr(exc)


def ekus(path):
    with open(path, 'rb') as handle:
        cert = x509.load_pem_x509_certificate(handle.read())
    return set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def peer_files(roles, host):
    """(ca, cert, key) a member's peer port runs with, as its rendered configuration names them."""
    peer = roles.config(host)['peer-transport-security']
    return peer['trusted-ca-file'], peer['cert-file'], peer['key-file']


# ---------------------------------------------------------------- 1: only members speak raft

def test_rendered_configuration_separates_peer_and_client_trust(roles):
    """Peers trust the etcd peer CA only, clients the cluster's CA; both ports offer only the AEAD suites."""
    for host in MEMBERS:
        config = roles.config(host)
        peer, client = config['peer-transport-security'], config['client-transport-security']
        assert peer['client-cert-auth'] is True and client['client-cert-auth'] is True
        with open(peer['trusted-ca-file'], 'rb') as got, open(os.path.join(roles.ca_dir, 'etcd-peer-ca.crt'), 'rb') as ca:
            assert got.read() == ca.read(), 'the peer port trusts more or other than the etcd peer CA'
        with open(client['trusted-ca-file'], 'rb') as got, open(os.path.join(roles.ca_dir, 'ca.crt'), 'rb') as ca:
            assert got.read() == ca.read()
        assert config['cipher-suites'] == [
            'TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256', 'TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256',
            'TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384', 'TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384',
            'TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305', 'TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305']
    assert not os.path.exists(roles.pki(DB_HOST, 'etcd-peer.key')), 'a database host got an etcd peer key'
    assert not os.path.exists(roles.pki(DB_HOST, 'etcd-peer-ca.crt'))


NON_MEMBER_CERTS = {
    'admin client certificate': ('etcd-a', 'client-admin'),
    'patroni client certificate': ('etcd-a', 'client-patroni'),
    'load balancer client certificate': ('etcd-a', 'client-lb-agent'),
    "database host's patroni client certificate": (DB_HOST, 'client-patroni'),
    "database host's server certificate": (DB_HOST, DB_HOST),
    # Good for clientAuth and from the cluster's CA: refused only because the peer port trusts the peer CA alone.
    "member's server certificate": ('etcd-b', 'etcd-b'),
}


@pytest.mark.parametrize('label', sorted(NON_MEMBER_CERTS))
def test_peer_port_refuses_every_certificate_but_a_members_peer_certificate(roles, label):
    owner, name = NON_MEMBER_CERTS[label]
    cert, key = roles.pki(owner, name + '.crt'), roles.pki(owner, name + '.key')
    for host in MEMBERS:
        member = roles.member(host)
        peer_ca, _cert, _key = peer_files(roles, host)
        outcome = https_get(member.ip, member.peer_port, '/members', peer_ca, cert, key)
        assert outcome[0] == 'refused', '%s:%d (peer) answered the %s: %s' % (host, member.peer_port, label, outcome)
        # The control: another member's peer certificate gets the member list.
        other = next(h for h in MEMBERS if h != host)
        control = https_get(member.ip, member.peer_port, '/members', peer_ca, *peer_files(roles, other)[1:])
        assert control == ('answered', 200), control


def test_peer_port_refuses_a_client_without_certificate(roles):
    member = roles.member('etcd-a')
    peer_ca = peer_files(roles, 'etcd-a')[0]
    assert https_get(member.ip, member.peer_port, '/members', peer_ca)[0] == 'refused'


def test_before_one_shared_ca_let_any_client_certificate_talk_to_the_peer_port(etcd_tls):
    """The layout before: peers trusted the cluster's CA, so the CN-less client certificate got the member list."""
    member = etcd_tls.member(0)
    assert https_get(member.ip, member.peer_port, '/members', etcd_tls.ca_cert,
                     etcd_tls.client_cert, etcd_tls.client_key) == ('answered', 200)


# ---------------------------------------------------------------- 2: no host certificate logs in by its CN

def test_a_certificate_whose_cn_is_a_user_logs_in_without_password(etcd_tls):
    """On a real etcd: a clientAuth certificate with CN root is root over gRPC, no --user given (the finding)."""
    root = etcd_tls.etcdctl_run('user', 'list', user=None, cert=etcd_tls.root_cert, key=etcd_tls.root_key)
    assert root.returncode == 0 and 'root' in root.stdout.split(), root.stderr
    # The CN-less certificate alone is nobody.
    anonymous = etcd_tls.etcdctl_run('user', 'list', user=None)
    assert anonymous.returncode != 0 and 'user name is empty' in anonymous.stderr, anonymous.stderr


def test_a_non_member_server_certificate_cannot_log_in(roles):
    """The database host is named like the etcd user lb-main; its server certificate is serverAuth only, and
    etcd refuses it before any user is looked up. The same request with a CN-less client certificate and
    lb-main's password is answered."""
    server_cert, server_key = roles.pki(DB_HOST, DB_HOST + '.crt'), roles.pki(DB_HOST, DB_HOST + '.key')
    assert ekus(server_cert) == {ExtendedKeyUsageOID.SERVER_AUTH}
    member = roles.member('etcd-a')
    outcome = https_get(member.ip, member.client_port, '/version', roles.pki(DB_HOST, 'ca.crt'), server_cert, server_key)
    assert outcome[0] == 'refused' and 'CERTIFICATE' in outcome[1].upper(), outcome
    # gRPC, as etcdctl speaks it, gets no connection either.
    refused = roles.etcdctl('get', '/service/main/leader', cert=server_cert, key=server_key)
    assert refused.returncode != 0 and not refused.stdout, refused.stdout
    control = roles.etcdctl('get', '/service/main/leader', cert=roles.pki(DB_HOST, 'client-lb-agent.crt'),
                            key=roles.pki(DB_HOST, 'client-lb-agent.key'), user='lb-main')
    assert control.returncode == 0, control.stderr


def test_member_certificates_name_no_etcd_user(roles):
    """Members' server certificates are client certificates (for the JSON gateway) with CN = member name;
    their peer certificates come from the peer CA; no member is named like a user."""
    listed = roles.etcdctl('user', 'list', '-w', 'json', user='root', cert=roles.pki('etcd-a', 'client-admin.crt'),
                           key=roles.pki('etcd-a', 'client-admin.key'))
    users = set(json.loads(listed.stdout)['users'])
    assert users == {'root', 'patroni-main', 'lb-main'}
    for host in MEMBERS:
        assert ekus(roles.pki(host, host + '.crt')) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
        assert ekus(roles.pki(host, 'etcd-peer.crt')) == {ExtendedKeyUsageOID.SERVER_AUTH,
                                                          ExtendedKeyUsageOID.CLIENT_AUTH}
        assert host not in users
        # Presented without credentials it is a user that does not exist: nothing is readable with it.
        as_member = roles.etcdctl('get', '/service/main/leader', cert=roles.pki(host, host + '.crt'),
                                  key=roles.pki(host, host + '.key'))
        assert as_member.returncode != 0 and 'permission denied' in as_member.stderr, as_member.stderr


# ---------------------------------------------------------------- 3: TLS versions and cipher suites

def _ports(roles, host):
    """{port name: (ip, port, ca to verify the server, cert, key)} with a certificate each port accepts."""
    member = roles.member(host)
    peer_ca, peer_cert, peer_key = peer_files(roles, host)
    return {'client': (member.ip, member.client_port, roles.pki(host, 'ca.crt'),
                       roles.pki(host, 'client-admin.crt'), roles.pki(host, 'client-admin.key')),
            'peer': (member.ip, member.peer_port, peer_ca, peer_cert, peer_key)}


def _before_ports(etcd_tls):
    member = etcd_tls.member(0)
    return {'client': (member.ip, member.client_port, etcd_tls.ca_cert, etcd_tls.client_cert, etcd_tls.client_key),
            'peer': (member.ip, member.peer_port, member.peer_ca, member.peer_cert, member.peer_key)}


@pytest.mark.parametrize('port', ['client', 'peer'])
@pytest.mark.parametrize('version', [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1], ids=['tls1.0', 'tls1.1'])
def test_tls_1_0_and_1_1_are_refused_and_were_before(roles, etcd_tls, port, version):
    """etcd 3.4 itself refuses TLS below 1.2 (its Go TLS setup has a minimum of 1.2): the finding that etcd
    accepts TLS 1.0/1.1 does not hold on a real server, with the roles' configuration or without it."""
    for label, ports in (('roles', _ports(roles, 'etcd-a')), ('before', _before_ports(etcd_tls))):
        outcome = handshake(*ports[port], version=version)
        assert outcome[0] == 'refused' and 'PROTOCOL_VERSION' in outcome[1].upper(), (label, outcome)


@pytest.mark.parametrize('port', ['client', 'peer'])
def test_tls12_offers_only_aead_suites(roles, etcd_tls, port):
    """A TLS 1.2 client offering only a CBC suite with a SHA-1 MAC is refused now; before, etcd agreed to it."""
    for host in MEMBERS:
        ports = _ports(roles, host)
        refused = handshake(*ports[port], version=ssl.TLSVersion.TLSv1_2, ciphers=CBC_TLS12)
        assert refused[0] == 'refused' and 'HANDSHAKE_FAILURE' in refused[1].upper(), (host, refused)
        assert handshake(*ports[port], version=ssl.TLSVersion.TLSv1_2, ciphers=AEAD_TLS12) == ('TLSv1.2', AEAD_TLS12)
        assert handshake(*ports[port], version=ssl.TLSVersion.TLSv1_3)[0] == 'TLSv1.3'
    before = handshake(*_before_ports(etcd_tls)[port], version=ssl.TLSVersion.TLSv1_2, ciphers=CBC_TLS12)
    assert before == ('TLSv1.2', CBC_TLS12), before
