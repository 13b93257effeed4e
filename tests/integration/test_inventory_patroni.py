"""The pgha.cluster.patroni inventory plugin, run as users run it (ansible-inventory, ansible-playbook), against
real etcd holding Patroni's keys: recorded key sets written by the test (several clusters, equal member names,
roles master and primary, malformed and hostile values), and one real Patroni cluster through a switchover.

The TLS + RBAC cluster is read as lb-demo, whose role may read /service/demo/ only, as a read-only inventory user
would be set up.
"""

import json
import math
import os
import re
import subprocess
import sys

import pytest
import yaml

from ansible_collections.pgha.cluster.plugins.module_utils.etcd_client import Op
from ansible_collections.pgha.cluster.plugins.module_utils.patroni_state import cluster_prefix
from ansible_collections.pgha.cluster.plugins.plugin_utils.patroni_inventory import PAGE_SIZE
from collection_client import client_for
from playbook_runner import run_playbook
from inventory_listing import group_hosts, plain  # tests/lib, on the path through playbook_runner

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES_DIR = os.environ.get('PGHA_FIXTURES_DIR') or os.path.join(REPO_ROOT, '..', 'shared', 'fixtures')
BIN_DIR = os.path.dirname(sys.executable)

F415 = ('patroni-4.1.5-etcd3-keys.json', 'anchor')
F415_SYNC = ('patroni-4.1.5-etcd3-keys-sync.json', 'anchor')
F302 = ('patroni-3.0.2-etcd3-keys.json', 'legacy')

HOSTILE = "{{ lookup('pipe', 'id') }}"
GRPC_HANDLED = re.compile(r'^grpc_server_handled_total\{[^}]*grpc_method="(?P<method>[^"]+)"[^}]*\} (?P<n>\S+)$',
                          re.M)


# ------------------------------------------------------------------ helpers

def fixture_keys(fixture, namespace, scope):
    """A recorded key set moved to /<namespace>/<scope>/."""
    name, old_scope = fixture
    path = os.path.join(FIXTURES_DIR, name)
    if not os.path.isfile(path):
        pytest.skip('Patroni fixture %s not found: set PGHA_FIXTURES_DIR to the directory holding %s'
                    % (os.path.normpath(path), name))
    with open(path, encoding='utf-8') as handle:
        keys = json.load(handle)['keys']
    old, new = cluster_prefix('/service', old_scope), cluster_prefix(namespace, scope)
    return dict((new + k[len(old):], v) for k, v in keys.items())


def edit_member(keys, namespace, scope, name, **changes):
    key = cluster_prefix(namespace, scope) + 'members/' + name
    data = json.loads(keys[key])
    data.update(changes)
    keys[key] = json.dumps(data)
    return keys


def write_keys(client, keys):
    items = sorted(keys.items())
    for start in range(0, len(items), 100):
        client.txn(success=[Op.put(k, v) for k, v in items[start:start + 100]])


def inventory_file(directory, name='test.patroni.yml', **config):
    path = os.path.join(str(directory), name)
    config.setdefault('plugin', 'pgha.cluster.patroni')
    with open(path, 'w') as handle:
        yaml.safe_dump(config, handle)
    return path


def connection(cluster, user=None):
    """The plugin's connection options for a harness cluster (TLS files; ``user``'s credentials)."""
    options = {'endpoints': cluster.endpoints}
    if cluster.tls:
        options.update(ca_cert=cluster.ca_cert, client_cert=cluster.client_cert, client_key=cluster.client_key)
    if user:
        options.update(username=user, password=cluster.users[user])
    return options


class Listing(object):
    """One ansible-inventory run: rc, output, and for --list the hosts, their variables and the groups."""

    def __init__(self, proc):
        self.rc, self.stdout, self.stderr = proc.returncode, proc.stdout, proc.stderr
        self.data = None
        # With -v the JSON follows Ansible's version banner.
        start = re.search(r'^\{', proc.stdout, re.M)
        if proc.returncode == 0 and start:
            self.data = plain(json.loads(proc.stdout[start.start():]))

    @property
    def hostvars(self):
        return self.data['_meta']['hostvars']

    def hosts(self, group='all'):
        return group_hosts(self.data, group)


def ansible_inventory(source, *args, env=None, failed_is_fatal=True):
    """``ansible-inventory -i source --list`` (or ``args``)."""
    full_env = dict(os.environ, ANSIBLE_NOCOLOR='1', ANSIBLE_FORCE_COLOR='0')
    if failed_is_fatal:
        full_env['ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED'] = 'true'
    full_env.update(env or {})
    cmd = [os.path.join(BIN_DIR, 'ansible-inventory'), '-i', source] + (list(args) or ['--list'])
    proc = subprocess.run(cmd, capture_output=True, text=True, env=full_env, timeout=300, check=False,
                          stdin=subprocess.DEVNULL, cwd=os.path.dirname(source))
    return Listing(proc)


def ok(listing):
    assert listing.rc == 0, listing.stdout[-3000:] + listing.stderr[-3000:]
    return listing


def failed(listing):
    assert listing.rc != 0, listing.stdout[-2000:]
    return ' '.join(listing.stderr.split())


def grpc_requests(member):
    status, body = member.http_get('/metrics', timeout=5)
    assert status == 200
    counts = {}
    for match in GRPC_HANDLED.finditer(body.decode('utf-8', 'replace')):
        counts[match.group('method')] = counts.get(match.group('method'), 0) + int(float(match.group('n')))
    return counts


@pytest.fixture
def plain_etcd(etcd_plain, unique_prefix):
    """(client, namespace): a namespace of its own on the plain etcd, emptied after the test."""
    with client_for(etcd_plain) as client:
        try:
            yield client, unique_prefix.rstrip('/')
        finally:
            client.delete_prefix(unique_prefix)


@pytest.fixture
def three_clusters(plain_etcd):
    """anchor (4.1.5, synchronous mode), legacy (3.0.2, role master) and other (4.1.5, the member names of
    anchor) under one namespace."""
    client, namespace = plain_etcd
    keys = fixture_keys(F415_SYNC, namespace, 'anchor')
    keys.update(fixture_keys(F302, namespace, 'legacy'))
    keys.update(fixture_keys(F415, namespace, 'other'))
    write_keys(client, keys)
    return client, namespace


# ------------------------------------------------------------------ hosts, variables, groups

def test_clusters_as_hosts_with_their_roles_and_groups(etcd_plain, three_clusters, tmp_path):
    _client, namespace = three_clusters
    source = inventory_file(tmp_path, namespace=namespace, hostname='scope_member', **connection(etcd_plain))
    listing = ok(ansible_inventory(source))
    assert listing.hosts('patroni') == {'anchor_anc1', 'anchor_anc2', 'anchor_anc3', 'legacy_leg1',
                                        'other_anc1', 'other_anc2', 'other_anc3'}
    assert listing.hosts('patroni_primary') == {'anchor_anc3', 'legacy_leg1', 'other_anc3'}
    assert listing.hosts('patroni_replica') == {'anchor_anc1', 'anchor_anc2', 'other_anc1', 'other_anc2'}
    assert listing.hosts('patroni_sync') == {'anchor_anc2'}
    assert listing.hosts('patroni_anchor') == {'anchor_anc1', 'anchor_anc2', 'anchor_anc3'}
    assert listing.hosts('patroni_anchor_primary') == {'anchor_anc3'}
    assert listing.hosts('patroni_legacy_replica') == set()
    assert listing.hostvars['anchor_anc2'] == {
        'ansible_host': 'anc2',
        'patroni_member': 'anc2',
        'patroni_scope': 'anchor',
        'patroni_role': 'sync_standby',
        'patroni_state': 'running',
        'patroni_timeline': 5,
        'patroni_lag_bytes': 0,
        'patroni_api_url': 'http://anc2:8008/patroni',
        'patroni_conn_url': 'postgres://anc2:5432/postgres',
        'patroni_tags': {},
        'patroni_pending_restart': False,
        'patroni_version': '4.1.5',
        'patroni_paused': False,
    }
    # Patroni 3.0.2 writes role master: shown as primary.
    assert listing.hostvars['legacy_leg1']['patroni_role'] == 'primary'
    assert listing.hostvars['legacy_leg1']['ansible_host'] == '127.0.0.1'

    graph = ok(ansible_inventory(source, '--graph', 'patroni_primary')).stdout
    assert re.findall(r'\|--([^@\s]+)', graph) == ['anchor_anc3', 'legacy_leg1', 'other_anc3']


def test_equal_member_names_in_two_clusters_are_kept_apart(etcd_plain, three_clusters, tmp_path):
    _client, namespace = three_clusters
    source = inventory_file(tmp_path, namespace=namespace, **connection(etcd_plain))
    listing = ok(ansible_inventory(source))
    # By member name, the first cluster (by scope) keeps the name; the other's members are left out, said so.
    assert listing.hosts('patroni') == {'anc1', 'anc2', 'anc3', 'leg1'}
    assert listing.hostvars['anc1']['patroni_scope'] == 'anchor'
    assert listing.hosts('patroni_other') == set()
    assert 'member anc1 of Patroni cluster other is left out' in ' '.join(listing.stderr.split())
    assert 'set hostname: scope_member' in ' '.join(listing.stderr.split())


def test_listed_scopes_only(etcd_plain, three_clusters, tmp_path):
    _client, namespace = three_clusters
    source = inventory_file(tmp_path, namespace=namespace, scopes=['legacy', 'missing'], **connection(etcd_plain))
    listing = ok(ansible_inventory(source))
    assert listing.hosts('patroni') == {'leg1'}
    assert listing.hosts('patroni_missing') == set()
    assert 'no Patroni cluster found under %s/missing/' % namespace in ' '.join(listing.stderr.split())


def test_a_play_limited_to_patroni_primary_runs_on_the_primaries_only(etcd_plain, three_clusters, tmp_path):
    _client, namespace = three_clusters
    source = inventory_file(tmp_path, namespace=namespace, hostname='scope_member', **connection(etcd_plain))
    play = [{'hosts': 'all', 'gather_facts': False, 'connection': 'local',
             'tasks': [{'name': 'Say where', 'ansible.builtin.debug': {'msg': 'on {{ patroni_role }}'}}]}]
    run = run_playbook(play, inventory=source, args=['--limit', 'patroni_primary'])
    assert run.rc == 0, run.tail()
    assert sorted(run.recap) == ['anchor_anc3', 'legacy_leg1', 'other_anc3']
    assert run.output.count('"msg": "on primary"') == 3


def test_a_host_of_another_source_keeps_its_variables_and_groups(etcd_plain, three_clusters, tmp_path):
    _client, namespace = three_clusters
    directory = tmp_path / 'inventory'
    directory.mkdir()
    # Sources in a directory are read in name order: the static file first.
    (directory / '01-static.yml').write_text(yaml.safe_dump({'databases': {'hosts': {
        'leg1': {'site': 'north', 'patroni_tags': {'owner': 'static'}}}}}))
    inventory_file(directory, name='02.patroni.yml', namespace=namespace, scopes=['legacy'],
                   **connection(etcd_plain))
    listing = ok(ansible_inventory(str(directory)))
    leg1 = listing.hostvars['leg1']
    assert leg1['site'] == 'north' and leg1['patroni_role'] == 'primary'
    # A variable both sources set: the later source's value, as Ansible's hash_behaviour (replace) says.
    assert leg1['patroni_tags'] == {}
    assert listing.hosts('databases') == {'leg1'} and listing.hosts('patroni_primary') == {'leg1'}


def test_malformed_member_is_invalid_and_the_inventory_still_builds(etcd_plain, plain_etcd, tmp_path):
    client, namespace = plain_etcd
    keys = fixture_keys(F415, namespace, 'anchor')
    keys[cluster_prefix(namespace, 'anchor') + 'members/anc1'] = '{"conn_url": "postgres://anc1:5432/postgres", '
    write_keys(client, keys)
    client.put(cluster_prefix(namespace, 'anchor') + 'members/anc2', b'\xff\xfe not UTF-8')
    source = inventory_file(tmp_path, namespace=namespace, **connection(etcd_plain))
    listing = ok(ansible_inventory(source))
    stderr = ' '.join(listing.stderr.split())
    assert re.search(r'\[WARNING\]: pgha.cluster.patroni: member anc1 of Patroni cluster anchor is invalid '
                     r'\(value is not JSON', stderr), stderr
    assert 'member anc2 of Patroni cluster anchor is invalid (value is not valid UTF-8' in stderr
    for name in ('anc1', 'anc2'):
        assert listing.hostvars[name]['patroni_state'] == 'invalid'
        assert listing.hostvars[name]['patroni_role'] is None
        assert 'ansible_host' not in listing.hostvars[name]
    assert listing.hosts('patroni_primary') == {'anc3'}
    assert listing.hosts('patroni_anchor') == {'anc1', 'anc2', 'anc3'}
    assert listing.hosts('patroni_replica') == set()


# ------------------------------------------------------------------ values from etcd are never templates

def test_hostile_values_are_never_templated(etcd_plain, plain_etcd, tmp_path):
    client, namespace = plain_etcd
    marker = tmp_path / 'templated'
    touch = "{{ lookup('pipe', 'touch %s') }}" % marker
    keys = fixture_keys(F415, namespace, 'anchor')
    edit_member(keys, namespace, 'anchor', 'anc1', version=HOSTILE, tags={'datacenter': touch, 'note': [HOSTILE]},
                api_url='http://anc1:8008/%s' % HOSTILE)
    write_keys(client, keys)
    source = inventory_file(
        tmp_path, namespace=namespace,
        compose={'copied_version': 'patroni_version', 'suffixed': "patroni_version ~ '!'"},
        groups={'tagged': "patroni_tags.datacenter is defined"},
        keyed_groups=[{'key': 'patroni_tags.datacenter | default("none")', 'prefix': 'dc'}],
        **connection(etcd_plain))

    listing = ok(ansible_inventory(source))
    anc1 = listing.hostvars['anc1']
    assert anc1['patroni_version'] == HOSTILE
    assert anc1['copied_version'] == HOSTILE and anc1['suffixed'] == HOSTILE + '!'
    assert anc1['patroni_tags'] == {'datacenter': touch, 'note': [HOSTILE]}
    assert anc1['patroni_api_url'] == 'http://anc1:8008/%s' % HOSTILE
    assert listing.hosts('tagged') == {'anc1'}
    assert 'uid=' not in listing.stdout + listing.stderr

    # A play reading the values, directly and through compose, writes them as they are.
    play = [{'hosts': 'anc1', 'gather_facts': False, 'connection': 'local', 'tasks': [
        {'name': 'Write the values', 'ansible.builtin.copy': {
            'dest': str(tmp_path / 'values.json'), 'mode': '0600',
            'content': '{{ {"version": patroni_version, "tags": patroni_tags, "api": patroni_api_url, '
                       '"copied": copied_version, "suffixed": suffixed} | to_json }}'}}]}]
    run = run_playbook(play, inventory=source)
    assert run.rc == 0, run.tail()
    written = json.loads((tmp_path / 'values.json').read_text())
    assert written == {'version': HOSTILE, 'tags': {'datacenter': touch, 'note': [HOSTILE]},
                       'api': 'http://anc1:8008/%s' % HOSTILE, 'copied': HOSTILE, 'suffixed': HOSTILE + '!'}
    assert 'uid=' not in run.output
    assert not marker.exists()


# ------------------------------------------------------------------ constructed groups and variables

def test_compose_groups_and_keyed_groups(etcd_plain, plain_etcd, tmp_path):
    client, namespace = plain_etcd
    keys = fixture_keys(F415_SYNC, namespace, 'anchor')
    edit_member(keys, namespace, 'anchor', 'anc1', tags={'datacenter': 'east'}, replay_lsn=68248920 - 8192)
    edit_member(keys, namespace, 'anchor', 'anc3', tags={'datacenter': 'west'})
    write_keys(client, keys)
    source = inventory_file(
        tmp_path, namespace=namespace,
        compose={'pg_port': "patroni_conn_url | urlsplit('port')", 'ansible_user': "'admin'",
                 'ansible_docker_host': 'inventory_hostname'},
        groups={'lagging': '(patroni_lag_bytes or 0) > 4096', 'east': "patroni_tags.datacenter | default('') == 'east'"},
        keyed_groups=[{'key': 'patroni_role', 'prefix': 'role'},
                      {'key': "patroni_tags.datacenter | default('none')", 'prefix': 'dc'}],
        **connection(etcd_plain))
    listing = ok(ansible_inventory(source))
    assert listing.hostvars['anc1']['pg_port'] == 5432 and listing.hostvars['anc2']['ansible_user'] == 'admin'
    assert listing.hostvars['anc3']['ansible_docker_host'] == 'anc3'
    assert listing.hosts('lagging') == {'anc1'} and listing.hosts('east') == {'anc1'}
    assert listing.hosts('role_primary') == {'anc3'}
    assert listing.hosts('role_replica') == {'anc1'} and listing.hosts('role_sync_standby') == {'anc2'}
    assert (listing.hosts('dc_east'), listing.hosts('dc_west'), listing.hosts('dc_none')) == (
        {'anc1'}, {'anc3'}, {'anc2'})

    # A broken expression: skipped unless strict.
    broken = {'nowhere': 'patroni_tags.missing.deeper'}
    source = inventory_file(tmp_path, namespace=namespace, compose=broken, **connection(etcd_plain))
    listing = ok(ansible_inventory(source))
    assert 'nowhere' not in listing.hostvars['anc1']
    source = inventory_file(tmp_path, namespace=namespace, compose=broken, strict=True, **connection(etcd_plain))
    assert 'Could not set nowhere for host anc1' in failed(ansible_inventory(source))


# ------------------------------------------------------------------ reads: paginated prefix ranges

def test_reads_are_paginated_prefix_ranges(etcd_plain, plain_etcd, tmp_path):
    client, namespace = plain_etcd
    keys = {}
    for index in range(300):
        scope = 'c%03d' % index
        prefix = cluster_prefix(namespace, scope)
        keys[prefix + 'leader'] = scope + '-a'
        keys[prefix + 'config'] = '{"ttl": 30}'
        for member, role in (('a', 'primary'), ('b', 'replica')):
            keys[prefix + 'members/%s-%s' % (scope, member)] = json.dumps({
                'conn_url': 'postgres://10.1.%d.%d:5432/postgres' % (index // 200, index % 200),
                'api_url': 'http://10.1.0.1:8008/patroni', 'state': 'running', 'role': role, 'timeline': 1,
                'xlog_location': 100})
    write_keys(client, keys)
    assert len(keys) > PAGE_SIZE
    source = inventory_file(tmp_path, namespace=namespace, **connection(etcd_plain))
    before = grpc_requests(etcd_plain.members[0])
    listing = ok(ansible_inventory(source))
    after = grpc_requests(etcd_plain.members[0])
    requests = dict((m, after[m] - before.get(m, 0)) for m in after if after[m] != before.get(m, 0))
    assert requests == {'Range': math.ceil(len(keys) / PAGE_SIZE)}
    assert len(listing.hosts('patroni')) == 600 and len(listing.hosts('patroni_primary')) == 300

    # Listed scopes: one prefix read each.
    source = inventory_file(tmp_path, namespace=namespace, scopes=['c001', 'c002'], **connection(etcd_plain))
    before = grpc_requests(etcd_plain.members[0])
    listing = ok(ansible_inventory(source))
    after = grpc_requests(etcd_plain.members[0])
    assert after['Range'] - before['Range'] == 2
    assert listing.hosts('patroni') == {'c001-a', 'c001-b', 'c002-a', 'c002-b'}


# ------------------------------------------------------------------ errors and the cache

def test_unreachable_etcd_and_invalid_options_fail_clearly(tmp_path):
    source = inventory_file(tmp_path, endpoints=['http://127.0.0.1:1'], username='inventory',
                            password='not-shown-anywhere')
    message = failed(ansible_inventory(source))
    assert ('pgha.cluster.patroni: cannot read the Patroni clusters from etcd: etcd at http://127.0.0.1:1 is '
            'unreachable: connection refused') in message
    assert 'not-shown-anywhere' not in message

    source = inventory_file(tmp_path, endpoints=['http://127.0.0.1:1'], username='inventory')
    assert ('pgha.cluster.patroni: invalid etcd connection options: username and password go together'
            in failed(ansible_inventory(source)))
    source = inventory_file(tmp_path, endpoints=['http://127.0.0.1:1'], scopes=['a/b'])
    assert 'invalid Patroni scope' in failed(ansible_inventory(source))
    source = inventory_file(tmp_path, endpoints=['http://127.0.0.1:1'], hostname='fqdn')
    assert 'hostname' in failed(ansible_inventory(source))

    # Without Ansible's setting to fail on it, the source is left out with the same message as a warning.
    listing = ok(ansible_inventory(inventory_file(tmp_path, endpoints=['http://127.0.0.1:1']),
                                   failed_is_fatal=False))
    assert 'etcd at http://127.0.0.1:1 is unreachable: connection refused' in ' '.join(listing.stderr.split())
    assert listing.hosts('all') == set()


def test_cache_serves_the_inventory_while_etcd_is_down(etcd_cluster_factory, tmp_path):
    etcd = etcd_cluster_factory(size=1, ips=['127.0.0.41'])
    with client_for(etcd) as client:
        write_keys(client, fixture_keys(F415, '/service', 'anchor'))
    cache_dir = tmp_path / 'cache'
    source = inventory_file(tmp_path, cache=True, cache_plugin='ansible.builtin.jsonfile',
                            cache_connection=str(cache_dir), cache_timeout=3600, include_etcd_members=True,
                            **connection(etcd))
    fresh = ok(ansible_inventory(source))
    assert fresh.hosts('patroni_primary') == {'anc3'} and fresh.hosts('etcd') == {'etcd-1'}
    assert fresh.hostvars['etcd-1']['ansible_host'] == '127.0.0.41'
    assert len(os.listdir(str(cache_dir))) == 1

    etcd.kill_all()
    cached = ok(ansible_inventory(source, '-vv', '--list'))
    assert cached.data == fresh.data
    assert 'served from the inventory cache' in cached.stdout + cached.stderr
    # --flush-cache goes to etcd, which is down.
    message = failed(ansible_inventory(source, '--flush-cache', '--list'))
    assert 'cannot read the Patroni clusters from etcd: etcd at %s is unreachable' % etcd.endpoints[0] in message

    # etcd back with a new leader: the cache still answers until flushed.
    etcd.ensure_all_running()
    with client_for(etcd) as client:
        client.put(cluster_prefix('/service', 'anchor') + 'leader', 'anc1')
        client.put(cluster_prefix('/service', 'anchor') + 'members/anc1', json.dumps(
            {'conn_url': 'postgres://anc1:5432/postgres', 'state': 'running', 'role': 'primary', 'timeline': 6}))
    assert ok(ansible_inventory(source)).hosts('patroni_primary') == {'anc3'}
    assert ok(ansible_inventory(source, '--flush-cache', '--list')).hosts('patroni_primary') == {'anc1'}
    assert ok(ansible_inventory(source)).hosts('patroni_primary') == {'anc1'}

    # A cache older than cache_timeout is not served.
    stale = inventory_file(tmp_path, cache=True, cache_plugin='ansible.builtin.jsonfile',
                           cache_connection=str(cache_dir), cache_timeout=1, include_etcd_members=True,
                           **connection(etcd))
    ok(ansible_inventory(stale))
    etcd.kill_all()
    os.utime(os.path.join(str(cache_dir), os.listdir(str(cache_dir))[0]), (1, 1))
    assert 'is unreachable' in failed(ansible_inventory(stale))


# ------------------------------------------------------------------ TLS + RBAC

@pytest.fixture
def demo_keys(demo_scope):
    keys = fixture_keys(F415_SYNC, '/service', 'demo')
    write_keys(demo_scope, keys)
    return keys


def test_tls_rbac_read_only_user_with_listed_scope(etcd_tls, demo_keys, tmp_path):
    cache_dir = tmp_path / 'cache'
    source = inventory_file(tmp_path, scopes=['demo'], include_etcd_members=True, cache=True,
                            cache_plugin='ansible.builtin.jsonfile', cache_connection=str(cache_dir),
                            **connection(etcd_tls, 'lb-demo'))
    listing = ok(ansible_inventory(source))
    assert listing.hosts('patroni_demo') == {'anc1', 'anc2', 'anc3'}
    assert listing.hosts('patroni_demo_primary') == {'anc3'} and listing.hosts('patroni_sync') == {'anc2'}
    assert listing.hosts('etcd') == {'etcd-1', 'etcd-2', 'etcd-3'}
    assert [listing.hostvars['etcd-%d' % i]['ansible_host'] for i in (1, 2, 3)] == [
        '127.0.0.11', '127.0.0.12', '127.0.0.13']
    assert listing.hostvars['etcd-1']['etcd_client_urls'] == [etcd_tls.endpoints[0]]
    # The cache holds what was read, never the credentials.
    cached = ''.join((cache_dir / name).read_text() for name in os.listdir(str(cache_dir)))
    assert cached and etcd_tls.users['lb-demo'] not in cached


def test_tls_rbac_whole_namespace_needs_read_access_to_it(etcd_tls, demo_keys, tmp_path):
    source = inventory_file(tmp_path, **connection(etcd_tls, 'lb-demo'))
    message = failed(ansible_inventory(source))
    assert 'cannot read the Patroni clusters from etcd' in message and 'permission denied' in message
    assert 'list the clusters this etcd user may read in option scopes' in message


def test_tls_rbac_bad_credentials_and_missing_client_certificate(etcd_tls, demo_keys, tmp_path):
    options = connection(etcd_tls, 'lb-demo')
    options['password'] = 'wrong-password-not-printed'
    message = failed(ansible_inventory(inventory_file(tmp_path, scopes=['demo'], **options)))
    assert 'cannot read the Patroni clusters from etcd' in message
    assert 'authentication failed' in message.lower()
    assert 'wrong-password-not-printed' not in message

    options = connection(etcd_tls, 'lb-demo')
    del options['client_cert'], options['client_key']
    message = failed(ansible_inventory(inventory_file(tmp_path, scopes=['demo'], **options)))
    assert 'cannot read the Patroni clusters from etcd' in message and 'client_cert' in message


@pytest.mark.parametrize('prefix', ['PGHA_ETCD_', 'ETCDCTL_'])
def test_connection_options_from_the_modules_environment_variables(etcd_tls, demo_keys, tmp_path, prefix):
    env = {'PGHA_ETCD_USERNAME': 'lb-demo', 'PGHA_ETCD_TIMEOUT': '7'}
    names = {'PGHA_ETCD_': ('ENDPOINTS', 'CA_CERT', 'CLIENT_CERT', 'CLIENT_KEY', 'PASSWORD'),
             'ETCDCTL_': ('ENDPOINTS', 'CACERT', 'CERT', 'KEY', 'PASSWORD')}[prefix]
    values = (','.join(etcd_tls.endpoints), etcd_tls.ca_cert, etcd_tls.client_cert, etcd_tls.client_key,
              etcd_tls.users['lb-demo'])
    env.update((prefix + name, value) for name, value in zip(names, values))
    source = inventory_file(tmp_path, scopes=['demo'])
    assert ok(ansible_inventory(source, env=env)).hosts('patroni_demo_primary') == {'anc3'}
    # The file's own settings win over the environment.
    source = inventory_file(tmp_path, scopes=['demo'], password='from-the-file')
    assert 'authentication failed' in failed(ansible_inventory(source, env=env)).lower()


def test_vaulted_password(etcd_tls, demo_keys, tmp_path):
    vault_pass = tmp_path / 'vault-pass'
    vault_pass.write_text('vault-secret\n')
    proc = subprocess.run([os.path.join(BIN_DIR, 'ansible-vault'), 'encrypt_string', '--vault-password-file',
                           str(vault_pass), '--name', 'password', etcd_tls.users['lb-demo']],
                          capture_output=True, text=True, timeout=60, check=True, stdin=subprocess.DEVNULL)
    options = connection(etcd_tls, 'lb-demo')
    del options['password']
    source = inventory_file(tmp_path, scopes=['demo'], **options)
    with open(source, 'a') as handle:
        handle.write(proc.stdout)
    listing = ok(ansible_inventory(source, '--vault-password-file', str(vault_pass), '--list'))
    assert listing.hosts('patroni_demo_primary') == {'anc3'}


# ------------------------------------------------------------------ a real Patroni cluster

def test_real_patroni_cluster_through_a_switchover(etcd_plain, patroni_cluster_factory, tmp_path):
    cluster = patroni_cluster_factory(etcd_plain, size=2)
    leader = cluster.wait_leader()
    cluster.wait_running()
    other = [n for n in cluster.nodes if n is not leader][0]
    source = inventory_file(tmp_path, scopes=[cluster.scope], **connection(etcd_plain))

    listing = ok(ansible_inventory(source))
    assert listing.hosts('patroni_primary') == {leader.name}
    assert listing.hosts('patroni_replica') == {other.name}
    assert listing.hostvars[leader.name]['ansible_host'] == leader.ip
    assert listing.hostvars[other.name]['patroni_state'] == 'running'
    assert listing.hostvars[leader.name]['patroni_version'].startswith('4.1')

    status, answer = cluster.rest(leader.name, '/switchover', method='POST',
                                  body={'leader': leader.name, 'candidate': other.name}, timeout=60)
    assert status == 200, answer
    assert cluster.wait_leader(exclude=[leader]).name == other.name
    cluster.wait_running()
    listing = ok(ansible_inventory(source))
    assert listing.hosts('patroni_primary') == {other.name}
    assert listing.hosts('patroni_replica') == {leader.name}
