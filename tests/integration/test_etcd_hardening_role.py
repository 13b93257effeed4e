"""The etcd role's checks and RBAC, run by real ansible-playbook on this machine against real etcd.

The role's package and service steps need a systemd host (the Molecule etcd scenario runs them); what does not -
its validation, its read-only checks of the host (preflight.yml) and its RBAC set-up (rbac.yml, which logs in as
root) - runs here, from the role's own task files, against private etcd clusters of the harness. The etcd
playbooks' refusals run in check mode: they must stop before the first change, and check mode keeps a mistake
in a refusal from touching this machine.
"""

import base64
import json
import os
import shutil
import time

import pytest
import yaml

from ansible_collections.pgha.cluster.plugins.module_utils.patroni_state import cluster_prefix
from playbook_runner import run_playbook

ROOT_PASSWORD = 'role-test-root-4711'
CLUSTERS = {'main': ('role-test-patroni-main', 'role-test-lb-main'),
            'beta': ('role-test-patroni-beta', 'role-test-lb-beta')}


def rbac_clusters(*scopes):
    return [{'scope': s, 'patroni_password': CLUSTERS.get(s, ('p-' + s, 'l-' + s))[0],
             'lb_password': CLUSTERS.get(s, ('p-' + s, 'l-' + s))[1]} for s in scopes]


def write_inventory(tmp_path, hosts=('localhost',), group='etcd'):
    path = tmp_path / 'inventory.yml'
    path.write_text(yaml.safe_dump({'all': {'children': {group: {'hosts': {
        h: {'ansible_connection': 'local'} for h in hosts}}}}}))
    return str(path)


def run_role_files(tmp_path, files, role_vars, record=None, extra_vars=None):
    """A play on localhost (group etcd) that runs the etcd role's task ``files`` in order.

    ``record``: a variable written to a JSON file after the role's tasks, returned as ``run.recorded``.
    """
    tasks = [{'name': 'Run the etcd role\'s %s' % name,
              'ansible.builtin.include_role': {'name': 'pgha.cluster.etcd', 'tasks_from': name}} for name in files]
    record_file = str(tmp_path / 'record.json')
    if record:
        tasks.append({'name': 'Record for the test', 'ansible.builtin.copy': {
            'dest': record_file, 'content': '{{ %s | to_json }}' % record, 'mode': '0600'}})
    play = {'name': 'etcd role', 'hosts': 'etcd', 'gather_facts': False, 'vars': role_vars, 'tasks': tasks}
    workdir = tmp_path / ('play-%d' % len(list(tmp_path.glob('play-*'))))
    workdir.mkdir()
    run = run_playbook([play], inventory=write_inventory(tmp_path), extra_vars=extra_vars, workdir=str(workdir))
    run.recorded = None
    if record and os.path.exists(record_file):
        with open(record_file) as handle:
            run.recorded = json.load(handle)
        os.remove(record_file)
    return run


def assert_refused(run, *needles):
    assert run.rc != 0, run.tail()
    for needle in needles:
        assert needle in run.output, 'expected %r in:\n%s' % (needle, run.tail())
    assert 'Traceback' not in run.output, run.tail()


# ---------------------------------------------------------------- RBAC against a real cluster

class Rbac(object):
    """The role's validation and RBAC (validate.yml, rbac.yml) against one private TLS cluster."""

    def __init__(self, cluster, tmp_path):
        self.cluster = cluster
        self.tmp_path = tmp_path

    def run(self, root_password=ROOT_PASSWORD, scopes=('main',), **settings):
        role_vars = {
            'etcd_cluster_client_urls': self.cluster.endpoints,
            'etcd_ca_cert': self.cluster.ca_cert,
            'etcd_admin_cert': self.cluster.client_cert,
            'etcd_admin_key': self.cluster.client_key,
            'etcd_root_password': root_password,
            'etcd_rbac_clusters': rbac_clusters(*scopes),
        }
        role_vars.update(settings)
        return run_role_files(self.tmp_path, ['validate.yml', 'rbac.yml'], role_vars)

    def ctl(self, *args, user='root', password=ROOT_PASSWORD):
        return self.cluster.etcdctl_run(*args, user=user, password=password)

    def users(self, password=ROOT_PASSWORD):
        """The etcd users; ``password`` None: authentication is not enabled yet, so none is needed."""
        listed = self.ctl('user', 'list', '-w', 'json', user='root' if password else None, password=password)
        assert listed.returncode == 0, listed.stderr
        return sorted(json.loads(listed.stdout).get('users') or [])

    def permissions(self, role, password=ROOT_PASSWORD):
        got = self.ctl('role', 'get', role, '-w', 'json', password=password)
        assert got.returncode == 0, got.stderr
        kinds = {0: 'READ', 1: 'WRITE', 2: 'READWRITE'}  # etcdctl's JSON gives the enum's number
        return sorted((kinds[p.get('permType', 0)], p['key'], p['range_end']) for p in json.loads(got.stdout)['perm'])


@pytest.fixture
def rbac(etcd_cluster_factory, tmp_path):
    """A new one-member TLS cluster (JWT tokens, authentication not enabled yet) and the role's RBAC run on it."""
    return Rbac(etcd_cluster_factory(size=1, tls=True, jwt=True, token_ttl=30), tmp_path)


def _b64(text):
    return base64.b64encode(text.encode()).decode()


def test_rbac_prefixes_are_the_ones_patroni_writes(rbac):
    """Namespace and load balancer prefix written loosely still give the prefixes Patroni and the agent use:
    the role builds them with pgha.cluster.patroni_cluster_prefix, as the modules do. Before, 'service//'
    became the grant 'service/main/', which Patroni (writing /service/main/...) never uses."""
    run = rbac.run(scopes=('main', 'beta'), etcd_patroni_namespace='service//', etcd_lb_prefix='pgha//lb/')
    assert run.rc == 0, run.tail()
    assert rbac.users() == ['lb-beta', 'lb-main', 'patroni-beta', 'patroni-main', 'root']
    for scope in ('main', 'beta'):
        own = cluster_prefix('service//', scope)
        assert own == '/service/%s/' % scope
        lb = '/pgha/lb/%s/' % scope
        assert rbac.permissions('patroni-' + scope) == [('READWRITE', _b64(own), _b64(own[:-1] + '0'))]
        assert rbac.permissions('lb-' + scope) == sorted([('READ', _b64(own), _b64(own[:-1] + '0')),
                                                          ('READ', _b64(lb), _b64(lb[:-1] + '0'))])


@pytest.mark.parametrize('bad_scope', ['alpha/evil', '', 'alpha ', '../alpha', '/alpha', '-alpha'])
def test_a_scope_that_is_no_cluster_name_is_refused_before_any_change(rbac, bad_scope):
    """Seen: scope alpha/evil was accepted and made a user that can write inside cluster alpha's prefix."""
    assert rbac.run(scopes=('alpha',)).rc == 0
    before = rbac.users()
    run = rbac.run(scopes=('alpha', bad_scope))
    assert_refused(run, 'etcd_rbac_clusters has scopes that are not cluster names', json.dumps(bad_scope))
    assert rbac.users() == before == ['lb-alpha', 'patroni-alpha', 'root']


@pytest.mark.parametrize('scopes, settings', [
    (('main', 'main'), {}),
    # patroni-lb could write /service/lb/main/, the load balancer policy of cluster main.
    (('lb', 'main'), {'etcd_lb_prefix': '/service/lb'}),
], ids=['same-scope-twice', 'lb-prefix-inside-the-namespace'])
def test_overlapping_prefixes_are_refused_before_any_change(rbac, scopes, settings):
    run = rbac.run(scopes=scopes, **settings)
    assert_refused(run, 'The RBAC prefixes of etcd_rbac_clusters overlap')
    assert rbac.users(password=None) == []


def test_root_password_is_changed_with_the_previous_one(rbac):
    """Before, the role logged in with the new password only and failed on its first etcd call."""
    assert rbac.run().rc == 0
    new = ROOT_PASSWORD + '-new'

    started = time.monotonic()
    refused = rbac.run(root_password=new)
    assert_refused(refused, 'etcd refuses the root password in etcd_root_password.',
                   'set etcd_root_password to the new one and etcd_root_password_previous')
    assert time.monotonic() - started < 60, 'the refusal took %.0fs' % (time.monotonic() - started)
    assert rbac.ctl('user', 'get', 'root').returncode == 0, 'the old password stopped working'

    changed = rbac.run(root_password=new, etcd_root_password_previous=ROOT_PASSWORD)
    assert changed.rc == 0, changed.tail()
    assert new not in changed.output and ROOT_PASSWORD not in changed.output
    assert rbac.ctl('user', 'get', 'root', password=new).returncode == 0
    old = rbac.ctl('user', 'get', 'root')
    assert old.returncode != 0 and 'authentication failed' in old.stderr, old.stderr

    # Once changed, a run with the new password alone changes nothing; a stale "previous" is not needed.
    again = rbac.run(root_password=new, etcd_root_password_previous=ROOT_PASSWORD)
    assert again.rc == 0 and again.changed() == 0, again.tail()
    assert rbac.run(root_password=new).changed() == 0


def test_neither_password_accepted_is_refused(rbac):
    assert rbac.run().rc == 0
    run = rbac.run(root_password='wrong-new-password', etcd_root_password_previous='wrong-old-password')
    assert_refused(run, 'etcd refuses the root password in etcd_root_password and the one in '
                        'etcd_root_password_previous')
    assert rbac.ctl('user', 'get', 'root').returncode == 0


# ---------------------------------------------------------------- the playbooks refuse before the first change

def etcd_playbook(tmp_path, hosts, **extra):
    extra_vars = {'pki_ca_dir': str(tmp_path / 'ca'), 'pki_dir': str(tmp_path / 'host-pki'),
                  'etcd_root_password': ROOT_PASSWORD, 'pgha_etcd_patroni_password': 'patroni-password',
                  'pgha_etcd_lb_password': 'lb-password'}
    extra_vars.update(extra)
    return run_playbook('pgha.cluster.etcd', write_inventory(tmp_path, hosts), extra_vars=extra_vars, check=True,
                        workdir=str(tmp_path))


def test_etcd_without_authentication_is_refused(tmp_path):
    """etcd_enable_auth=false is refused (the setting was removed) on the controller, before any host is touched.
    Before, it was accepted, still required etcd_root_password, and left RBAC out of a cluster whose other roles
    rely on it."""
    run = etcd_playbook(tmp_path, ['etcd-x'], etcd_enable_auth=False)
    assert_refused(run, 'etcd_enable_auth=false is not supported')
    assert sorted(run.recap) == ['localhost'], run.recap
    assert not os.path.exists(str(tmp_path / 'ca'))


@pytest.mark.parametrize('name', ['root', 'patroni-main', 'lb-main'])
def test_a_member_named_like_an_etcd_user_is_refused_before_its_certificate_is_issued(tmp_path, name):
    """Its server certificate (CN = its name) is good for clientAuth, and etcd would log it in as that user."""
    run = etcd_playbook(tmp_path, [name])
    assert_refused(run, 'The etcd member %s is named like the etcd user %s' % (name, name))
    assert "Issue this host's certificates" not in run.output, 'the pki role ran first'
    assert not os.path.exists(str(tmp_path / 'ca'))


# ---------------------------------------------------------------- the host's state, read before any change

def tls_sources(tmp_path):
    """Stand-ins for the member's certificate files (preflight.yml only checks that they are there)."""
    directory = tmp_path / 'pki'
    directory.mkdir(exist_ok=True)
    names = {'etcd_server_cert': 'server.crt', 'etcd_server_key': 'server.key', 'etcd_ca_cert': 'ca.crt',
             'etcd_peer_cert': 'etcd-peer.crt', 'etcd_peer_key': 'etcd-peer.key',
             'etcd_peer_ca_cert': 'etcd-peer-ca.crt'}
    for name in names.values():
        (directory / name).write_text('stand-in\n')
    return {var: str(directory / name) for var, name in names.items()}


def preflight(tmp_path, record=None, extra_vars=None, **settings):
    role_vars = {'etcd_config_dir': str(tmp_path / 'config'), 'etcd_data_dir': str(tmp_path / 'data'),
                 'etcd_debian_default_data_dir': str(tmp_path / 'debian-default')}
    role_vars.update(tls_sources(tmp_path))
    role_vars.update(settings)
    return run_role_files(tmp_path, ['preflight.yml'], role_vars, record=record, extra_vars=extra_vars)


def write_config(tmp_path, initial_cluster='etcd1=https://10.0.0.1:2380,etcd2=https://10.0.0.2:2380'):
    config_dir = tmp_path / 'config'
    config_dir.mkdir(exist_ok=True)
    (config_dir / 'etcd.conf.yml').write_text(yaml.safe_dump({
        'name': 'etcd1', 'initial-cluster': initial_cluster, 'initial-cluster-state': 'new'}))


def test_a_member_whose_data_is_gone_is_not_started(tmp_path):
    write_config(tmp_path)
    (tmp_path / 'data').mkdir()
    run = preflight(tmp_path)
    assert_refused(run, 'holds no member data', 'initial-cluster-state: new',
                   'pgha.cluster.etcd_remove_member -e etcd_old_member=localhost',
                   'pgha.cluster.etcd_add_member -e etcd_new_member=localhost')
    with open(str(tmp_path / 'config' / 'etcd.conf.yml')) as handle:
        assert yaml.safe_load(handle)['initial-cluster-state'] == 'new'  # left as it was

    (tmp_path / 'data' / 'member').mkdir()
    assert preflight(tmp_path).rc == 0, 'a member with its data was refused'
    shutil.rmtree(str(tmp_path / 'config'))
    shutil.rmtree(str(tmp_path / 'data'))
    assert preflight(tmp_path).rc == 0, 'a new host (no configuration, no data) was refused'


def test_without_the_check_a_majority_without_data_forms_an_empty_cluster(etcd_cluster_factory):
    """Why the check above matters, on real etcd: started with initial-cluster-state new (what the role wrote
    for a member without data), two of three members that lost their data bootstrap a new, empty cluster, with
    the same cluster ID, and answer as if nothing happened."""
    cluster = etcd_cluster_factory(size=3, tls=True)
    cluster.etcdctl('put', '/kept/a', '1')
    first, second, third = cluster.members
    cluster.stop_all()
    for member in (second, third):
        shutil.rmtree(member.data_dir)
        assert member.initial_cluster_state == 'new'
        member.start(wait=False)
    for member in (second, third):
        member.wait_healthy(30)
    found = cluster.etcdctl('get', '--prefix', '/kept/', '-w', 'json', endpoints=[second.client_url, third.client_url])
    assert json.loads(found).get('count', 0) in (0, '0'), 'the data survived: %s' % found


# ---------------------------------------------------------------- Debian's default etcd

@pytest.fixture
def debian_default(etcd_cluster_factory, tmp_path):
    """A plain single-node etcd standing in for the one Debian's package starts, and its data directory."""
    cluster = etcd_cluster_factory(size=1, tls=False)
    (tmp_path / 'debian-default' / 'member').mkdir(parents=True)
    member = cluster.member(0)
    cluster.default_settings = {'__etcd_debian_default': {'client_url': member.client_url,
                                                          'peer_urls': [member.peer_url]}}
    return cluster


def test_debian_default_etcd_that_holds_nothing_is_moved_aside(debian_default, tmp_path):
    run = preflight(tmp_path, record='__etcd_move_default_data', extra_vars=debian_default.default_settings)
    assert run.rc == 0, run.tail()
    assert run.recorded is True


def test_debian_default_etcd_that_holds_a_key_is_left_alone(debian_default, tmp_path):
    debian_default.etcdctl('put', 'someones-key', 'value')
    run = preflight(tmp_path, extra_vars=debian_default.default_settings)
    assert_refused(run, 'holds etcd data that is not the untouched single-node etcd', 'its revision is 2',
                   'move or delete %s yourself' % (tmp_path / 'debian-default'))
    assert (tmp_path / 'debian-default' / 'member').is_dir()


def test_debian_default_etcd_that_does_not_answer_is_left_alone(debian_default, tmp_path):
    debian_default.kill_all()
    run = preflight(tmp_path, extra_vars=debian_default.default_settings)
    assert_refused(run, 'does not answer on %s' % debian_default.member(0).client_url)
    assert (tmp_path / 'debian-default' / 'member').is_dir()
