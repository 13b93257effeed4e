"""The pgha.cluster.pki role, run by real ansible-playbook against this machine (connection local).

One baseline run per module creates a CA and the host's files; tests that
change something work on a copy of that tree, so each starts from the same
converged state without paying for a new CA. Certificates are checked with
the ``cryptography`` library, and against a real etcd with client-cert-auth
and authentication on.
"""

import grp
import hashlib
import ipaddress
import json
import os
import pwd
import re
import secrets
import shutil
import stat
import tempfile

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

import etcd_harness
from ansible_collections.pgha.cluster.plugins.module_utils.etcd_client import EtcdClient
from ansible_collections.pgha.cluster.plugins.module_utils.etcd_errors import EtcdError
from playbook_runner import run_playbook

HOST = 'pki-node1'
HOST_IP = '127.0.0.42'  # ansible_host: must show up as an IP SAN
ETCD_IP = '127.0.0.41'  # given through pki_extra_sans; the etcd test listens there
EXTRA_SANS = [ETCD_IP, 'DNS:etcd.pki-test.example']
CLIENTS = ('patroni', 'lb-agent', 'admin')
DEFAULT_EXCLUDED = ('^lo$', '^docker', '^br-', '^veth', '^virbr')
USER = pwd.getpwuid(os.getuid()).pw_name
GROUP = grp.getgrgid(os.getgid()).gr_name


# ---------------------------------------------------------------- helpers

class Tree(object):
    """A CA dir on the "controller", a pki_dir on the "host", and the inventory, in one temp dir."""

    def __init__(self, root, etcd_member=False):
        self.root = str(root)
        self.ca_dir = os.path.join(self.root, 'controller', 'pki')
        self.pki_dir = os.path.join(self.root, 'host', 'etc', 'pki')
        self.inventory = os.path.join(self.root, 'inventory.ini')
        self.record = os.path.join(self.root, 'record.json')
        if not os.path.exists(self.inventory):
            with open(self.inventory, 'w') as handle:
                # In group etcd, the host is an etcd member (the default of pki_etcd_member).
                handle.write('%s%s ansible_host=%s ansible_connection=local\n'
                             % ('[etcd]\n' if etcd_member else '', HOST, HOST_IP))

    def copy(self, root):
        """The same files (modes kept) under ``root``."""
        shutil.copytree(self.root, str(root), symlinks=True, dirs_exist_ok=True)
        return Tree(root)

    # -- paths
    def controller(self, name):
        return os.path.join(self.ca_dir, 'hosts', HOST, name)

    def host(self, name):
        return os.path.join(self.pki_dir, name)

    @property
    def ca_cert(self):
        return os.path.join(self.ca_dir, 'ca.crt')

    @property
    def ca_key(self):
        return os.path.join(self.ca_dir, 'ca.key')

    # -- running the role
    def vars(self, **overrides):
        role_vars = dict(pki_ca_dir=self.ca_dir, pki_dir=self.pki_dir, pki_owner=USER, pki_group=GROUP,
                         pki_extra_sans=list(EXTRA_SANS))
        role_vars.update(overrides)
        return role_vars

    def run(self, check=False, diff=False, verbosity=0, **overrides):
        if os.path.exists(self.record):
            os.remove(self.record)
        play = {
            'name': 'PKI',
            'hosts': 'all',
            # The role gathers the network facts it needs by itself.
            'gather_facts': False,
            'roles': [{'role': 'pgha.cluster.pki', 'vars': self.vars(**overrides)}],
            'post_tasks': [{
                'name': 'Record facts for the test',
                'ansible.builtin.copy': {
                    'dest': self.record,
                    'content': "{{ {'facts': ansible_facts, 'pki_files': pki_files, "
                               "'pki_changed': pki_changed} | to_json }}",
                    'mode': '0600',
                },
                'check_mode': False,
                'changed_when': False,
            }],
        }
        return run_playbook([play], inventory=self.inventory, check=check, diff=diff, verbosity=verbosity,
                            workdir=tempfile.mkdtemp(prefix='pki-play-', dir=self.root))

    def recorded(self):
        with open(self.record) as handle:
            return json.load(handle)

    # -- what is on disk
    def snapshot(self):
        """{relative path: (mode, sha256)} of every file and directory in the CA dir and pki_dir."""
        result = {}
        for top in (self.ca_dir, self.pki_dir):
            for dirpath, dirnames, filenames in os.walk(top):
                for name in dirnames + filenames:
                    path = os.path.join(dirpath, name)
                    st = os.lstat(path)
                    digest = None
                    if stat.S_ISREG(st.st_mode):
                        with open(path, 'rb') as handle:
                            digest = hashlib.sha256(handle.read()).hexdigest()
                    result[os.path.relpath(path, self.root)] = (stat.S_IMODE(st.st_mode), digest)
        return result


def interface_addresses(facts, excluded=DEFAULT_EXCLUDED):
    """The addresses the role should take from facts: every interface but loopback, Docker's and libvirt's."""
    for iface in facts['interfaces']:
        if any(re.search(pattern, iface) for pattern in excluded):
            continue
        info = facts.get(iface.replace('-', '_'), {})
        if 'ipv4' in info:
            yield info['ipv4']['address']
        for secondary in info.get('ipv4_secondaries', []):
            yield secondary['address']
        for address in info.get('ipv6', []):
            if address.get('scope') not in ('link', 'host'):
                yield address['address']


def load_cert(path):
    with open(path, 'rb') as handle:
        return x509.load_pem_x509_certificate(handle.read())


def load_key(path, password=None):
    with open(path, 'rb') as handle:
        return serialization.load_pem_private_key(handle.read(), password=password)


def public_der(key_or_cert):
    return key_or_cert.public_key().public_bytes(serialization.Encoding.DER,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo)


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def sans(cert):
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return (set(names.get_values_for_type(x509.DNSName)),
            set(names.get_values_for_type(x509.IPAddress)))


def ekus(cert):
    return set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def serials(tree):
    return {name: load_cert(tree.host(name + '.crt')).serial_number
            for name in [HOST] + ['client-' + c for c in CLIENTS]}


def assert_no_private_key_in(output, *key_paths, **kwargs):
    """No line of the keys' PEM text in ``output`` (bar those shared with the public key's PEM)."""
    assert 'PRIVATE KEY' not in output
    for path in key_paths:
        with open(path, 'rb') as handle:
            pem = handle.read()
        key = serialization.load_pem_private_key(pem, password=kwargs.get('password'))
        public_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo).decode()
        for line in pem.decode().splitlines():
            # An EC private key's PEM ends with its public point, which may be printed.
            if line and not line.startswith('-----') and line not in public_pem:
                assert line not in output, 'a line of %s is in the output' % path


def assert_ok(run):
    assert run.rc == 0, run.output[-6000:]


def assert_failed_naming(run, *needles):
    assert run.rc != 0, run.output[-4000:]
    for needle in needles:
        assert needle in run.output, 'expected %r in:\n%s' % (needle, run.output[-4000:])


# ---------------------------------------------------------------- the baseline

@pytest.fixture(scope='module')
def baseline(tmp_path_factory):
    """A converged tree: first run (kept as .first) and a second run (kept as .second)."""
    tree = Tree(tmp_path_factory.mktemp('pki-baseline'))
    tree.first = tree.run()
    assert_ok(tree.first)
    tree.first_record = tree.recorded()
    tree.second = tree.run()
    assert_ok(tree.second)
    return tree


@pytest.fixture
def converged(baseline, tmp_path):
    """A private copy of the baseline tree for a test that changes things."""
    return baseline.copy(tmp_path / 'tree')


# ---------------------------------------------------------------- first run, re-run

def test_first_run_creates_the_ca(baseline):
    assert baseline.first.changed(HOST) > 0
    ca = load_cert(baseline.ca_cert)
    constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca
    usage = ca.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign
    assert ca.subject == ca.issuer
    ca.verify_directly_issued_by(ca)
    assert public_der(load_key(baseline.ca_key)) == public_der(ca)
    assert isinstance(ca.public_key(), ec.EllipticCurvePublicKey)
    assert ca.public_key().curve.name == 'secp256r1'
    lifetime = ca.not_valid_after_utc - ca.not_valid_before_utc
    assert 3649 <= lifetime.days <= 3651
    assert mode(baseline.ca_key) == 0o600
    assert mode(baseline.ca_dir) == 0o700
    assert mode(os.path.join(baseline.ca_dir, 'hosts', HOST)) == 0o700


def test_server_certificate(baseline):
    ca = load_cert(baseline.ca_cert)
    cert = load_cert(baseline.host(HOST + '.crt'))
    cert.verify_directly_issued_by(ca)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == HOST
    dns, ips = sans(cert)
    facts = baseline.recorded()['facts']  # the run that issued the certificate on disk
    expected = {'127.0.0.1', '::1', HOST_IP, ETCD_IP} | set(interface_addresses(facts))
    assert ips == {ipaddress.ip_address(a) for a in expected}
    assert not any(ip.is_link_local for ip in ips)
    assert dns == {HOST, 'localhost', 'etcd.pki-test.example', facts['hostname'], facts['fqdn']}
    # Not an etcd member: with clientAuth, etcd would log a client presenting it in as the user named HOST.
    assert ekus(cert) == {ExtendedKeyUsageOID.SERVER_AUTH}
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert cert.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature
    assert public_der(load_key(baseline.host(HOST + '.key'))) == public_der(cert)
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert 364 <= lifetime.days <= 366


@pytest.mark.parametrize('client', CLIENTS)
def test_client_certificate(baseline, client):
    ca = load_cert(baseline.ca_cert)
    cert = load_cert(baseline.host('client-%s.crt' % client))
    cert.verify_directly_issued_by(ca)
    # etcd's JSON gateway refuses client certificates with a CommonName once auth is on.
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME) == []
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value == client
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == 'pgha'
    assert ekus(cert) == {ExtendedKeyUsageOID.CLIENT_AUTH}
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and not usage.key_cert_sign
    with pytest.raises(x509.ExtensionNotFound):
        cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert public_der(load_key(baseline.host('client-%s.key' % client))) == public_der(cert)


def test_each_certificate_has_its_own_key(baseline):
    keys = [public_der(load_key(baseline.host(n + '.key'))) for n in [HOST] + ['client-' + c for c in CLIENTS]]
    keys.append(public_der(load_key(baseline.ca_key)))
    assert len(set(keys)) == len(keys)


def test_files_on_the_host(baseline):
    assert mode(baseline.pki_dir) == 0o750
    expected = {'ca.crt': 0o644, HOST + '.crt': 0o644, HOST + '.key': 0o600}
    for client in CLIENTS:
        expected['client-%s.crt' % client] = 0o644
        expected['client-%s.key' % client] = 0o600
    assert sorted(os.listdir(baseline.pki_dir)) == sorted(expected)
    for name, wanted in expected.items():
        path = baseline.host(name)
        assert mode(path) == wanted, name
        assert os.stat(path).st_uid == os.getuid()
        assert os.stat(path).st_gid == os.getgid()
        source = baseline.ca_cert if name == 'ca.crt' else baseline.controller(name)
        with open(path, 'rb') as installed, open(source, 'rb') as issued:
            assert installed.read() == issued.read(), name


def test_facts_for_other_roles(baseline):
    record = baseline.first_record
    files = record['pki_files']
    assert files['ca'] == baseline.host('ca.crt')
    assert files['cert'] == baseline.host(HOST + '.crt')
    assert files['key'] == baseline.host(HOST + '.key')
    assert files['clients']['lb-agent'] == {'cert': baseline.host('client-lb-agent.crt'),
                                            'key': baseline.host('client-lb-agent.key')}
    assert record['pki_changed'] is True
    assert files['etcd_peer'] is None
    assert baseline.recorded()['pki_changed'] is False


def test_second_run_changes_nothing(baseline):
    assert baseline.second.changed(HOST) == 0, baseline.second.stdout[-6000:]


def test_check_mode_on_a_converged_host_changes_nothing(converged):
    before = converged.snapshot()
    run = converged.run(check=True)
    assert_ok(run)
    assert run.changed(HOST) == 0, run.stdout[-6000:]
    assert converged.snapshot() == before


def test_two_hosts_share_the_ca_and_have_their_own_keys(tmp_path):
    """The CA is made once for the play; each host gets its own keys, SANs and files."""
    tree = Tree(tmp_path)
    second_dir = os.path.join(tree.root, 'host2', 'pki')
    with open(tree.inventory, 'w') as handle:
        handle.write('[nodes]\n')
        handle.write('%s ansible_host=%s ansible_connection=local pki_dir=%s\n' % (HOST, HOST_IP, tree.pki_dir))
        handle.write('pki-node2 ansible_host=127.0.0.43 ansible_connection=local pki_dir=%s\n' % second_dir)
    role_vars = tree.vars(pki_client_certs=['patroni'])
    del role_vars['pki_dir']  # from the inventory, per host
    play = {'name': 'PKI for two hosts', 'hosts': 'nodes', 'gather_facts': False,
            'roles': [{'role': 'pgha.cluster.pki', 'vars': role_vars}]}
    run = run_playbook([play], inventory=tree.inventory, workdir=tempfile.mkdtemp(dir=tree.root))
    assert_ok(run)
    ca = load_cert(tree.ca_cert)
    first = load_cert(os.path.join(tree.pki_dir, HOST + '.crt'))
    second = load_cert(os.path.join(second_dir, 'pki-node2.crt'))
    for directory, cert in ((tree.pki_dir, first), (second_dir, second)):
        cert.verify_directly_issued_by(ca)
        with open(os.path.join(directory, 'ca.crt'), 'rb') as handle:
            assert x509.load_pem_x509_certificate(handle.read()) == ca
    assert public_der(first) != public_der(second)
    assert ipaddress.ip_address('127.0.0.43') in sans(second)[1]
    assert ipaddress.ip_address('127.0.0.43') not in sans(first)[1]
    assert 'pki-node2' in sans(second)[0] and 'pki-node2' not in sans(first)[0]
    assert sorted(os.listdir(second_dir)) == ['ca.crt', 'client-patroni.crt', 'client-patroni.key',
                                              'pki-node2.crt', 'pki-node2.key']
    patroni = [load_cert(os.path.join(d, 'client-patroni.crt')) for d in (tree.pki_dir, second_dir)]
    assert public_der(patroni[0]) != public_der(patroni[1])


# ---------------------------------------------------------------- reissue triggers

def test_new_san_reissues_only_the_server_certificate(converged):
    before = serials(converged)
    files_before = converged.snapshot()
    new_sans = EXTRA_SANS + ['DNS:new-name.pki-test.example', 'IP:10.99.0.7']

    check = converged.run(check=True, pki_extra_sans=new_sans)
    assert_ok(check)
    assert check.changed(HOST) > 0
    assert converged.snapshot() == files_before, 'check mode wrote files'

    run = converged.run(pki_extra_sans=new_sans)
    assert_ok(run)
    assert run.changed(HOST) > 0
    after = serials(converged)
    assert after[HOST] != before[HOST]
    for client in CLIENTS:
        assert after['client-' + client] == before['client-' + client]
    dns, ips = sans(load_cert(converged.host(HOST + '.crt')))
    assert 'new-name.pki-test.example' in dns and 'etcd.pki-test.example' in dns
    assert ipaddress.ip_address('10.99.0.7') in ips
    # Same key: only the certificate is new.
    assert public_der(load_cert(converged.host(HOST + '.crt'))) == public_der(load_key(converged.host(HOST + '.key')))
    assert converged.recorded()['pki_changed'] is True


def test_certificates_expiring_within_renew_before_days_are_reissued(converged):
    before = serials(converged)
    # The baseline's certificates run for 365 days, so "renew 366 days ahead" covers them all.
    settings = dict(pki_cert_valid_days=400, pki_renew_before_days=366)
    run = converged.run(**settings)
    assert_ok(run)
    assert run.changed(HOST) > 0
    after = serials(converged)
    assert all(after[name] != before[name] for name in before)
    cert = load_cert(converged.host(HOST + '.crt'))
    assert 399 <= (cert.not_valid_after_utc - cert.not_valid_before_utc).days <= 401

    again = converged.run(**settings)
    assert_ok(again)
    assert again.changed(HOST) == 0, again.stdout[-6000:]
    assert serials(converged) == after


def test_new_key_reissues_its_certificate(converged):
    before = serials(converged)
    os.remove(converged.controller('client-lb-agent.key'))
    run = converged.run()
    assert_ok(run)
    assert run.changed(HOST) > 0
    after = serials(converged)
    assert after['client-lb-agent'] != before['client-lb-agent']
    assert {k: v for k, v in after.items() if k != 'client-lb-agent'} == \
        {k: v for k, v in before.items() if k != 'client-lb-agent'}
    cert = load_cert(converged.host('client-lb-agent.crt'))
    assert public_der(cert) == public_der(load_key(converged.host('client-lb-agent.key')))


def test_new_ca_reissues_everything(converged):
    """Moving both CA files away on purpose starts a new CA; every certificate follows it."""
    old_ca = load_cert(converged.ca_cert)
    before = serials(converged)
    os.rename(converged.ca_cert, converged.ca_cert + '.old')
    os.rename(converged.ca_key, converged.ca_key + '.old')
    run = converged.run()
    assert_ok(run)
    new_ca = load_cert(converged.host('ca.crt'))
    assert public_der(new_ca) != public_der(old_ca)
    after = serials(converged)
    assert all(after[name] != before[name] for name in before)
    for name in after:
        load_cert(converged.host(name + '.crt')).verify_directly_issued_by(new_ca)


# ---------------------------------------------------------------- refusing to replace a CA

def test_ca_certificate_without_its_key_fails_and_changes_nothing(converged):
    os.remove(converged.ca_key)
    before = converged.snapshot()
    run = converged.run()
    assert_failed_naming(run, 'exists but its private key', converged.ca_key)
    assert converged.snapshot() == before
    assert not os.path.exists(converged.ca_key)


def test_ca_key_that_does_not_match_fails_and_changes_nothing(converged):
    other = ec.generate_private_key(ec.SECP256R1())
    with open(converged.ca_key, 'wb') as handle:
        handle.write(other.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption()))
    before = converged.snapshot()
    run = converged.run()
    assert_failed_naming(run, 'The CA private key', 'does not belong to its certificate')
    assert converged.snapshot() == before


# ---------------------------------------------------------------- bad input

@pytest.mark.parametrize('variable, value, needle', [
    ('pki_key_type', 'dsa', 'pki_key_type'),
    ('pki_renew_before_days', 'abc', 'pki_renew_before_days'),
    ('pki_renew_before_days', -1, 'pki_renew_before_days'),
    ('pki_renew_before_days', 365, 'pki_renew_before_days'),
    ('pki_cert_valid_days', 0, 'pki_cert_valid_days'),
    ('pki_rsa_key_size', 1024, 'pki_rsa_key_size'),
    ('pki_client_certs', ['ok', '../escape'], 'pki_client_certs'),
    ('pki_extra_sans', ['not a name'], 'pki_extra_sans'),
    ('pki_ca_dir', 'relative/pki', 'pki_ca_dir'),
    ('pki_dir', 'relative/pki', 'pki_dir'),
])
def test_invalid_variable_fails_before_any_change(tmp_path, variable, value, needle):
    tree = Tree(tmp_path)
    run = tree.run(**{variable: value})
    assert_failed_naming(run, needle)
    assert 'Traceback' not in run.output
    assert not os.path.exists(tree.ca_dir)
    assert not os.path.exists(tree.pki_dir)


def test_ca_dir_inside_a_directory_inventory_is_refused(tmp_path):
    tree = Tree(tmp_path)
    inventory_dir = os.path.join(tree.root, 'inventory')
    os.mkdir(inventory_dir)
    shutil.move(tree.inventory, os.path.join(inventory_dir, 'hosts.ini'))
    tree.inventory = inventory_dir
    tree.ca_dir = os.path.join(inventory_dir, 'pki')
    run = tree.run()
    assert_failed_naming(run, 'lies inside the inventory directory')
    assert not os.path.exists(tree.ca_dir)
    # A sibling of the inventory directory, written relative to it, is fine.
    tree.ca_dir = os.path.join(inventory_dir, '..', 'pki-sibling')
    sibling = tree.run(check=True)
    assert_ok(sibling)
    assert 'the CA would be created in %s' % os.path.join(tree.root, 'pki-sibling') in sibling.stdout


# ---------------------------------------------------------------- check mode, key types, passphrase

def test_check_mode_on_a_new_tree_writes_nothing(tmp_path):
    tree = Tree(tmp_path)
    run = tree.run(check=True)
    assert_ok(run)
    assert run.changed(HOST) > 0
    assert 'the CA would be created' in run.stdout
    assert not os.path.exists(tree.ca_dir)
    assert not os.path.exists(tree.pki_dir)


def test_rsa_keys(tmp_path):
    tree = Tree(tmp_path)
    run = tree.run(pki_key_type='rsa', pki_rsa_key_size=2048, pki_client_certs=['patroni'])
    assert_ok(run)
    ca = load_cert(tree.ca_cert)
    for name in (HOST, 'client-patroni'):
        cert = load_cert(tree.host(name + '.crt'))
        cert.verify_directly_issued_by(ca)
        assert isinstance(cert.public_key(), rsa.RSAPublicKey)
        assert cert.public_key().key_size == 2048
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        assert usage.digital_signature and usage.key_encipherment
    assert isinstance(ca.public_key(), rsa.RSAPublicKey)
    assert sorted(os.listdir(tree.pki_dir)) == sorted(
        ['ca.crt', HOST + '.crt', HOST + '.key', 'client-patroni.crt', 'client-patroni.key'])


def test_ca_key_with_passphrase(tmp_path):
    tree = Tree(tmp_path)
    passphrase = 'pki-test-' + secrets.token_hex(8)
    # Verbose and with --diff: neither the passphrase nor any key may show.
    run = tree.run(verbosity=3, diff=True, pki_ca_passphrase=passphrase)
    assert_ok(run)
    assert passphrase not in run.output
    assert_no_private_key_in(run.output, tree.controller(HOST + '.key'), tree.controller('client-admin.key'))
    assert_no_private_key_in(run.output, tree.ca_key, password=passphrase.encode())
    load_key(tree.ca_key, password=passphrase.encode())
    with pytest.raises(TypeError):  # encrypted: no password, no key
        load_key(tree.ca_key)
    load_cert(tree.host(HOST + '.crt')).verify_directly_issued_by(load_cert(tree.ca_cert))

    again = tree.run(pki_ca_passphrase=passphrase)
    assert_ok(again)
    assert again.changed(HOST) == 0, again.stdout[-6000:]

    before = tree.snapshot()
    wrong = tree.run(pki_ca_passphrase='not-' + passphrase)
    assert wrong.rc != 0
    assert 'passphrase' in wrong.output.lower(), wrong.output[-4000:]
    assert passphrase not in wrong.output
    assert tree.snapshot() == before


# ---------------------------------------------------------------- etcd members

@pytest.fixture(scope='module')
def member(tmp_path_factory):
    """A converged tree for a host of group etcd."""
    tree = Tree(tmp_path_factory.mktemp('pki-member'), etcd_member=True)
    tree.first = tree.run()
    assert_ok(tree.first)
    tree.first_record = tree.recorded()
    return tree


def test_an_etcd_member_gets_a_peer_certificate_from_a_ca_of_its_own(member):
    ca = load_cert(member.ca_cert)
    peer_ca = load_cert(os.path.join(member.ca_dir, 'etcd-peer-ca.crt'))
    assert public_der(peer_ca) != public_der(ca)
    peer_ca.verify_directly_issued_by(peer_ca)
    assert peer_ca.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == 'pgha etcd peer CA'
    assert peer_ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert mode(os.path.join(member.ca_dir, 'etcd-peer-ca.key')) == 0o600

    server = load_cert(member.host(HOST + '.crt'))
    peer = load_cert(member.host('etcd-peer.crt'))
    peer.verify_directly_issued_by(peer_ca)
    with pytest.raises(Exception):
        peer.verify_directly_issued_by(ca)
    # The JSON gateway presents the server certificate to its own member: clientAuth too, on members only.
    assert ekus(server) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    assert ekus(peer) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    assert sans(peer) == sans(server)
    assert peer.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == HOST
    assert public_der(load_key(member.host('etcd-peer.key'))) == public_der(peer)
    assert public_der(peer) != public_der(server)

    expected = {'ca.crt': 0o644, 'etcd-peer-ca.crt': 0o644, 'etcd-peer.crt': 0o644, 'etcd-peer.key': 0o600,
                HOST + '.crt': 0o644, HOST + '.key': 0o600}
    for client in CLIENTS:
        expected['client-%s.crt' % client] = 0o644
        expected['client-%s.key' % client] = 0o600
    assert sorted(os.listdir(member.pki_dir)) == sorted(expected)
    assert {name: mode(member.host(name)) for name in expected} == expected
    with open(member.host('etcd-peer-ca.crt'), 'rb') as installed:
        assert x509.load_pem_x509_certificate(installed.read()) == peer_ca
    assert member.first_record['pki_files']['etcd_peer'] == {
        'ca': member.host('etcd-peer-ca.crt'), 'cert': member.host('etcd-peer.crt'), 'key': member.host('etcd-peer.key')}


def test_a_member_converged_changes_nothing(member, tmp_path):
    tree = member.copy(tmp_path / 'tree')
    again = tree.run()
    assert_ok(again)
    assert again.changed(HOST) == 0, again.stdout[-6000:]


def test_a_host_that_leaves_the_etcd_group_loses_its_peer_key_and_client_auth(member, tmp_path):
    tree = member.copy(tmp_path / 'tree')
    run = tree.run(pki_etcd_member=False)
    assert_ok(run)
    for name in ('etcd-peer.crt', 'etcd-peer.key', 'etcd-peer-ca.crt'):
        assert not os.path.exists(tree.host(name)), name
    assert ekus(load_cert(tree.host(HOST + '.crt'))) == {ExtendedKeyUsageOID.SERVER_AUTH}
    assert tree.recorded()['pki_changed'] is True


# ---------------------------------------------------------------- the certificates work with etcd

@pytest.mark.etcd
def test_etcd_accepts_the_certificates(member, tmp_path):
    """etcd with client-cert-auth and auth on, serving an etcd member's server certificate.

    Our client presents the role's CN-less client certificate plus a username and
    password, through the JSON gateway - which itself dials etcd's gRPC port with
    the server certificate, so this also proves its clientAuth usage.
    """
    missing = etcd_harness.binaries_missing()
    if missing:
        pytest.skip('etcd binaries not found: %s' % ', '.join(missing))
    client_port, peer_port = etcd_harness.pick_free_ports(ETCD_IP, 2)
    tls = {'cert': member.host(HOST + '.crt'), 'key': member.host(HOST + '.key'), 'ca': member.host('ca.crt'),
           'health_cert': member.host('client-admin.crt'), 'health_key': member.host('client-admin.key'),
           'peer_cert': member.host('etcd-peer.crt'), 'peer_key': member.host('etcd-peer.key'),
           'peer_ca': member.host('etcd-peer-ca.crt')}
    etcd = etcd_harness.EtcdMember('pki-test', ETCD_IP, client_port, peer_port, str(tmp_path / 'etcd'), tls=tls)
    etcd.initial_cluster = 'pki-test=' + etcd.peer_url
    etcd.cluster_token = 'pki-test-' + secrets.token_hex(4)
    password = secrets.token_urlsafe(12)

    def client(name, **kwargs):
        return EtcdClient([etcd.client_url], ca_cert=member.host('ca.crt'),
                          client_cert=member.host(name + '.crt'), client_key=member.host(name + '.key'),
                          **kwargs)

    try:
        etcd.start(timeout=30)
        etcd.wait_peer_serving(10)  # the peer port serves with the peer certificate
        with client('client-admin') as admin:
            admin.role_add('root')
            admin.user_add('root', password)
            admin.user_grant_role('root', 'root')
            admin.auth_enable()
        for name in CLIENTS:
            with client('client-' + name, username='root', password=password) as etcd_client:
                etcd_client.put('/pki-test/' + name, name)
                assert etcd_client.get('/pki-test/' + name).value == name.encode()
        # The control: a certificate WITH a CommonName (the server certificate)
        # is refused by the gateway once auth is on - why client certificates have none.
        with client(HOST, username='root', password=password) as etcd_client:
            with pytest.raises(EtcdError) as refused:
                etcd_client.get('/pki-test/patroni')
        assert 'CommonName' in str(refused.value)
    except Exception:
        print(etcd.log_tail(40))
        raise
    finally:
        etcd.kill()
