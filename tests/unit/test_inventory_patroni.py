"""The inventory plugin's pure parts: Patroni's state (parsed by patroni_state from the recorded key sets) as
hosts, variables and groups; etcd members as hosts; the cache's form of what was read; the connection options
adapter; and the plugin's file check and documentation."""

import base64
import json

import pytest
import yaml

from ansible_collections.pgha.cluster.plugins.inventory import patroni as plugin_module
from ansible_collections.pgha.cluster.plugins.module_utils.etcd_errors import EtcdConfigError
from ansible_collections.pgha.cluster.plugins.module_utils.etcd_module import CONNECTION_OPTIONS
from ansible_collections.pgha.cluster.plugins.module_utils.etcd_types import KeyValue, Member
from ansible_collections.pgha.cluster.plugins.module_utils.patroni_state import (
    cluster_prefix,
    namespace_prefix,
    parse_cluster_state,
    parse_namespace,
)
from ansible_collections.pgha.cluster.plugins.plugin_utils.etcd_options import connection_options, plugin_client
from ansible_collections.pgha.cluster.plugins.plugin_utils.patroni_inventory import (
    ALL_GROUP,
    ETCD_GROUP,
    PRIMARY_GROUP,
    REPLICA_GROUP,
    SYNC_GROUP,
    Layout,
    add_etcd_members,
    cache_payload,
    cluster_states,
    from_cache_payload,
    host_name,
    member_role,
    patroni_layout,
)

from patroni_fixtures import ANCHOR, F302, F415, F415_SYNC, LSN_415_SYNC, edit_member, load_keys

LEGACY = '/service/legacy/'


def moved(keys, old_prefix, new_prefix):
    return dict((new_prefix + k[len(old_prefix):], v) for k, v in keys.items() if k.startswith(old_prefix))


def layout_of(keys, namespace='/service', **kwargs):
    states, _warnings = cluster_states(list(keys.items()), namespace)
    return patroni_layout(states, **kwargs)


def parents(layout):
    return dict(layout.groups)


def members_of(layout, group):
    """Hosts of ``group``, through its child groups as Ansible resolves them."""
    children = dict((name, [g for g, ps in layout.groups if name in ps]) for name, _ps in layout.groups)
    found = set(h.name for h in layout.hosts.values() if group in h.groups)
    for child in children[group]:
        found |= members_of(layout, child)
    return found


@pytest.fixture
def two_clusters():
    """The synchronous 4.1.5 cluster as scope anchor and the 3.0.2 one (role master) as scope legacy."""
    keys = load_keys(F415_SYNC)
    keys.update(load_keys(F302))
    return keys


# ------------------------------------------------------------------ patroni_state's namespace prefix

@pytest.mark.parametrize('namespace, expected', [
    ('/service', '/service/'), ('service/', '/service/'), ('', '/service/'), (None, '/service/'),
    ('/a//b/', '/a/b/'), ('/', '/'),
])
def test_namespace_prefix_is_the_parent_of_every_cluster_prefix(namespace, expected):
    assert namespace_prefix(namespace) == expected
    assert cluster_prefix(namespace, 'main') == expected + 'main/'


def test_namespace_prefix_refuses_what_cluster_prefix_refuses():
    with pytest.raises(ValueError, match='must be a string'):
        namespace_prefix(['service'])


def test_every_key_under_the_namespace_prefix_is_grouped_by_scope(two_clusters):
    prefix = namespace_prefix('service')
    assert all(k.startswith(prefix) for k in two_clusters)
    assert sorted(parse_namespace(two_clusters, 'service')) == ['anchor', 'legacy']


# ------------------------------------------------------------------ hosts, variables and groups

def test_members_are_hosts_with_their_state_as_variables(two_clusters):
    layout = layout_of(two_clusters)
    assert sorted(layout.hosts) == ['anc1', 'anc2', 'anc3', 'leg1']
    assert layout.warnings == []
    assert layout.hosts['anc1'].variables == {
        'ansible_host': 'anc1',
        'patroni_member': 'anc1',
        'patroni_scope': 'anchor',
        'patroni_role': 'replica',
        'patroni_state': 'running',
        'patroni_timeline': 5,
        'patroni_lag_bytes': 0,
        'patroni_api_url': 'http://anc1:8008/patroni',
        'patroni_conn_url': 'postgres://anc1:5432/postgres',
        'patroni_tags': {},
        'patroni_pending_restart': False,
        'patroni_version': '4.1.5',
        'patroni_paused': False,
    }
    # The leader's lag is not measured against itself.
    assert layout.hosts['anc3'].variables['patroni_lag_bytes'] is None


def test_roles_sync_standby_and_legacy_master(two_clusters):
    layout = layout_of(two_clusters)
    roles = dict((name, host.variables['patroni_role']) for name, host in layout.hosts.items())
    assert roles == {'anc1': 'replica', 'anc2': 'sync_standby', 'anc3': 'primary', 'leg1': 'primary'}
    assert layout.hosts['leg1'].variables['patroni_version'] == '3.0.2'


def test_groups_follow_the_live_topology(two_clusters):
    layout = layout_of(two_clusters)
    assert members_of(layout, ALL_GROUP) == {'anc1', 'anc2', 'anc3', 'leg1'}
    assert members_of(layout, 'patroni_anchor') == {'anc1', 'anc2', 'anc3'}
    assert members_of(layout, PRIMARY_GROUP) == {'anc3', 'leg1'}
    assert members_of(layout, 'patroni_anchor_primary') == {'anc3'}
    assert members_of(layout, 'patroni_legacy_primary') == {'leg1'}
    assert members_of(layout, REPLICA_GROUP) == {'anc1', 'anc2'}
    assert members_of(layout, 'patroni_anchor_replica') == {'anc1', 'anc2'}
    assert members_of(layout, 'patroni_legacy_replica') == set()
    assert members_of(layout, SYNC_GROUP) == {'anc2'}
    assert parents(layout)['patroni_anchor_primary'] == ['patroni_anchor', PRIMARY_GROUP]
    # Every group is created before a group names it as a parent.
    created = [name for name, _ps in layout.groups]
    for index, (name, group_parents) in enumerate(layout.groups):
        assert all(created.index(p) < index for p in group_parents), name


def test_synchronous_standby_outside_synchronous_mode_is_a_replica():
    keys = load_keys(F415_SYNC)
    config = json.loads(keys[ANCHOR + 'config'])
    config['synchronous_mode'] = False
    keys[ANCHOR + 'config'] = json.dumps(config)
    layout = layout_of(keys)
    assert layout.hosts['anc2'].variables['patroni_role'] == 'replica'
    assert members_of(layout, SYNC_GROUP) == set()


def test_a_member_that_is_not_running_is_only_in_its_cluster_group():
    keys = edit_member(load_keys(F415), 'anc1', state='stopped', drop=('replication_state',))
    layout = layout_of(keys)
    assert layout.hosts['anc1'].groups == ['patroni_anchor']
    assert layout.hosts['anc1'].variables['patroni_state'] == 'stopped'
    assert layout.hosts['anc1'].variables['patroni_role'] == 'replica'
    assert members_of(layout, REPLICA_GROUP) == {'anc2'}
    assert members_of(layout, ALL_GROUP) == {'anc1', 'anc2', 'anc3'}


def test_no_primary_group_member_without_the_leader_key():
    keys = load_keys(F415)
    del keys[ANCHOR + 'leader']
    layout = layout_of(keys)
    # anc3 still says primary, but without the lock Patroni will demote it: it is no target for writes.
    assert layout.hosts['anc3'].variables['patroni_role'] == 'primary'
    assert members_of(layout, PRIMARY_GROUP) == set()
    assert layout.hosts['anc3'].groups == ['patroni_anchor']


def test_standby_leader_is_neither_primary_nor_replica():
    keys = edit_member(load_keys(F415), 'anc3', role='standby_leader')
    layout = layout_of(keys)
    assert layout.hosts['anc3'].variables['patroni_role'] == 'standby_leader'
    assert members_of(layout, PRIMARY_GROUP) == set()
    assert members_of(layout, REPLICA_GROUP) == {'anc1', 'anc2'}


def test_paused_cluster_and_member_details():
    keys = load_keys(F415)
    config = json.loads(keys[ANCHOR + 'config'])
    config['pause'] = True
    keys[ANCHOR + 'config'] = json.dumps(config)
    edit_member(keys, 'anc1', tags={'nofailover': True, 'datacenter': 'east'}, pending_restart=True)
    layout = layout_of(keys)
    assert all(h.variables['patroni_paused'] is True for h in layout.hosts.values())
    assert layout.hosts['anc1'].variables['patroni_tags'] == {'nofailover': True, 'datacenter': 'east'}
    assert layout.hosts['anc1'].variables['patroni_pending_restart'] is True
    assert layout.hosts['anc2'].variables['patroni_pending_restart'] is False


def test_lag_of_a_replica_behind_the_leader():
    keys = edit_member(load_keys(F415_SYNC), 'anc1', replay_lsn=LSN_415_SYNC - 4096)
    assert layout_of(keys).hosts['anc1'].variables['patroni_lag_bytes'] == 4096


@pytest.mark.parametrize('value, reason', [
    ('{"conn_url": "postgres://anc1:5432/postgres", "state": ', 'not JSON'),
    ('["a list"]', 'not an object'),
    (b'\xff\xfe', 'not valid UTF-8'),
])
def test_malformed_member_is_listed_as_invalid_with_a_warning(value, reason):
    keys = load_keys(F415)
    keys[ANCHOR + 'members/anc1'] = value
    layout = layout_of(keys)
    entry = layout.hosts['anc1']
    assert entry.variables['patroni_state'] == 'invalid'
    assert entry.variables['patroni_role'] is None and 'ansible_host' not in entry.variables
    assert entry.groups == ['patroni_anchor']
    assert len(layout.warnings) == 1
    assert 'member anc1 of Patroni cluster anchor is invalid' in layout.warnings[0]
    assert reason in layout.warnings[0]
    # The others are as before.
    assert members_of(layout, PRIMARY_GROUP) == {'anc3'} and members_of(layout, REPLICA_GROUP) == {'anc2'}


def test_equal_member_names_in_two_clusters():
    keys = load_keys(F415)
    keys.update(moved(load_keys(F415), ANCHOR, '/service/other/'))
    layout = layout_of(keys)
    assert sorted(layout.hosts) == ['anc1', 'anc2', 'anc3']
    assert all(h.variables['patroni_scope'] == 'anchor' for h in layout.hosts.values())
    assert len(layout.warnings) == 3
    assert 'member anc1 of Patroni cluster other is left out' in layout.warnings[0]
    assert 'hostname: scope_member' in layout.warnings[0]

    layout = layout_of(keys, hostname='scope_member')
    assert sorted(layout.hosts) == ['anchor_anc1', 'anchor_anc2', 'anchor_anc3', 'other_anc1', 'other_anc2',
                                    'other_anc3']
    assert layout.warnings == []
    assert layout.hosts['other_anc1'].variables['patroni_member'] == 'anc1'
    assert members_of(layout, PRIMARY_GROUP) == {'anchor_anc3', 'other_anc3'}


def test_host_name_styles():
    assert host_name('main', 'pg1') == 'pg1'
    assert host_name('main', 'pg1', 'scope_member') == 'main_pg1'
    with pytest.raises(ValueError, match="invalid hostname 'fqdn'"):
        host_name('main', 'pg1', 'fqdn')


def test_scope_group_names_are_made_safe_and_collisions_named():
    keys = moved(load_keys(F415), ANCHOR, '/service/pg-main/')
    keys.update(moved(load_keys(F302), LEGACY, '/service/pg.main/'))

    def safe(name):
        return name.replace('-', '_').replace('.', '_')

    layout = layout_of(keys, safe_name=safe)
    assert 'patroni_pg_main_primary' in parents(layout)
    assert members_of(layout, 'patroni_pg_main_primary') == {'anc3', 'leg1'}
    assert layout.warnings == ['Patroni clusters pg-main and pg.main share group patroni_pg_main: their names '
                               'differ only in characters not allowed in group names']


def test_member_role_of_an_invalid_member_is_none():
    state = parse_cluster_state({ANCHOR + 'members/x': 'nope'}, '/service', 'anchor')
    assert member_role(state.members[0]) is None


# ------------------------------------------------------------------ scopes listed in the options

def test_listed_scope_without_keys_is_an_empty_cluster_with_a_warning():
    keys = list(load_keys(F415).items())
    states, warnings = cluster_states(keys, '/service', ['anchor', '/gone/'])
    assert sorted(states) == ['anchor', 'gone']
    assert states['gone'].members == []
    assert warnings == ['no Patroni cluster found under /service/gone/']
    layout = patroni_layout(states)
    assert 'patroni_gone' in parents(layout) and members_of(layout, 'patroni_gone') == set()


def test_keys_outside_a_cluster_directory_are_ignored():
    keys = dict(load_keys(F415))
    keys['/service/stray'] = 'x'
    keys['/elsewhere/anchor/leader'] = 'anc1'
    states, _warnings = cluster_states(list(keys.items()), '/service')
    assert sorted(states) == ['anchor'] and states['anchor'].leader == 'anc3'


# ------------------------------------------------------------------ etcd members

def etcd_member(member_id, name, client_urls, peer_urls=None, is_learner=False):
    return Member(id=member_id, name=name, client_urls=client_urls,
                  peer_urls=peer_urls or [u.replace('2379', '2380') for u in client_urls], is_learner=is_learner)


def test_etcd_members_are_hosts_of_group_etcd():
    layout = add_etcd_members(Layout(), [
        etcd_member(0x8e9e05c52164694d, 'etcd-2', ['https://[fd00::2]:2379']),
        etcd_member(0x10, 'etcd-1', ['https://10.0.0.1:2379', 'https://127.0.0.1:2379']),
        etcd_member(0x11, '', [], peer_urls=['https://10.0.0.9:2380']),  # added, not started yet
        etcd_member(0x12, 'etcd-3', [], peer_urls=['https://10.0.0.3:2380'], is_learner=True),
    ])
    assert list(layout.hosts) == ['etcd-1', 'etcd-2', 'etcd-3']
    assert layout.hosts['etcd-1'].variables == {
        'ansible_host': '10.0.0.1',
        'etcd_member_id': '10',
        'etcd_client_urls': ['https://10.0.0.1:2379', 'https://127.0.0.1:2379'],
        'etcd_peer_urls': ['https://10.0.0.1:2380', 'https://127.0.0.1:2380'],
        'etcd_is_learner': False,
    }
    assert layout.hosts['etcd-2'].variables['ansible_host'] == 'fd00::2'
    assert layout.hosts['etcd-2'].variables['etcd_member_id'] == '8e9e05c52164694d'
    # A learner that has not advertised client URLs yet: its peer URL gives the address.
    assert layout.hosts['etcd-3'].variables['ansible_host'] == '10.0.0.3'
    assert layout.hosts['etcd-3'].variables['etcd_is_learner'] is True
    assert (ETCD_GROUP, []) in layout.groups
    assert all(h.groups == [ETCD_GROUP] for h in layout.hosts.values())


def test_etcd_member_that_is_also_a_patroni_member_is_one_host():
    layout = layout_of(load_keys(F415))
    add_etcd_members(layout, [etcd_member(1, 'anc1', ['https://10.9.9.9:2379']),
                              etcd_member(2, 'etcd-x', ['https://10.0.0.2:2379'])])
    anc1 = layout.hosts['anc1']
    assert anc1.groups == ['patroni_anchor_replica', ETCD_GROUP]
    # The address Patroni advertises stays.
    assert anc1.variables['ansible_host'] == 'anc1'
    assert anc1.variables['etcd_client_urls'] == ['https://10.9.9.9:2379']
    assert anc1.variables['patroni_role'] == 'replica'
    assert layout.hosts['etcd-x'].variables['ansible_host'] == '10.0.0.2'


def test_etcd_member_without_usable_url_has_no_address():
    odd = etcd_member(1, 'odd', ['unix:///run/etcd.sock'], peer_urls=['unix:///run/etcd-peer.sock'])
    layout = add_etcd_members(Layout(), [odd])
    assert 'ansible_host' not in layout.hosts['odd'].variables


# ------------------------------------------------------------------ the cache's form of what was read

SOURCE = {'endpoints': ['http://127.0.0.1:2379'], 'namespace': '/service', 'scopes': [],
          'include_etcd_members': True}


def kvs(keys):
    return [KeyValue(k.encode(), v if isinstance(v, bytes) else v.encode(), mod_revision=i + 1, lease=0)
            for i, (k, v) in enumerate(sorted(keys.items()))]


def test_cache_payload_round_trip_keeps_every_byte_and_member():
    keys = load_keys(F415)
    keys[ANCHOR + 'members/anc1'] = b'\xff not UTF-8'
    members = [etcd_member(7, 'etcd-1', ['http://10.0.0.1:2379'])]
    payload = json.loads(json.dumps(cache_payload(SOURCE, kvs(keys), members)))  # as a JSON cache stores it
    read_keys, read_members = from_cache_payload(payload, SOURCE)
    assert read_members == members
    assert dict((k, v) for k, v in read_keys) == dict((k, v if isinstance(v, bytes) else v.encode())
                                                      for k, v in keys.items())
    direct = patroni_layout(cluster_states(kvs(keys), '/service')[0])
    cached = patroni_layout(cluster_states(read_keys, '/service')[0])
    assert dict((n, (h.variables, h.groups)) for n, h in direct.hosts.items()) == \
        dict((n, (h.variables, h.groups)) for n, h in cached.hosts.items())
    assert cached.hosts['anc1'].variables['patroni_state'] == 'invalid'
    assert base64.b64decode(payload['keys'][0][1])  # values stay base64, as etcd sends them


def test_cache_payload_without_etcd_members():
    payload = cache_payload(dict(SOURCE, include_etcd_members=False), [], None)
    assert from_cache_payload(payload, dict(SOURCE, include_etcd_members=False)) == ([], None)


@pytest.mark.parametrize('change', [{'namespace': '/other'}, {'scopes': ['main']}, {'include_etcd_members': False},
                                    {'endpoints': ['http://10.0.0.1:2379']}])
def test_cache_read_for_other_options_is_not_used(change):
    payload = cache_payload(SOURCE, kvs(load_keys(F415)), [])
    assert from_cache_payload(payload, dict(SOURCE, **change)) is None


@pytest.mark.parametrize('payload', [{}, {'format': 99}, {'format': 1, 'source': SOURCE},
                                     {'format': 1, 'source': SOURCE, 'keys': [['k', '!!not base64']],
                                      'etcd_members': None},
                                     {'format': 1, 'source': SOURCE, 'keys': [], 'etcd_members': [{'id': 1}]},
                                     'not a mapping'])
def test_cache_in_another_form_is_not_used(payload):
    assert from_cache_payload(payload, SOURCE) is None


# ------------------------------------------------------------------ connection options adapter

class EncryptedText(str):
    """Stands for the string types Ansible hands over for vaulted values."""


def test_connection_options_are_the_modules_connection_options():
    given = {'endpoints': ('http://127.0.0.1:2379',), 'ca_cert': None, 'client_cert': None, 'client_key': None,
             'username': 'inventory', 'password': EncryptedText('s3cret'), 'timeout': 2.5,
             'validate_certs': False, 'namespace': '/ignored'}
    options = connection_options(given.get)
    assert tuple(options) == CONNECTION_OPTIONS
    assert options['endpoints'] == ['http://127.0.0.1:2379']
    assert not isinstance(options['password'], EncryptedText) and options['password'] == 's3cret'
    assert options['timeout'] == 2.5 and options['validate_certs'] is False
    client = plugin_client(given.get)
    assert client.endpoints == ['http://127.0.0.1:2379'] and client.username == 'inventory'
    client.close()


def test_unusable_connection_options_raise_the_clients_error():
    options = {'endpoints': ['http://10.0.0.1:2379'], 'username': 'inventory', 'timeout': 5.0,
               'validate_certs': True}
    with pytest.raises(EtcdConfigError, match='username and password go together'):
        plugin_client(options.get)


# ------------------------------------------------------------------ the plugin's file check and documentation

@pytest.mark.parametrize('name, accepted', [
    ('patroni.yml', True), ('prod.patroni.yaml', True), ('prod-patroni.yml', True),
    ('inventory.yml', False), ('patroni.yml.bak', False), ('patroni.json', False),
])
def test_verify_file_accepts_files_ending_patroni_yml(tmp_path, name, accepted):
    path = tmp_path / name
    path.write_text('plugin: pgha.cluster.patroni\n')
    assert plugin_module.InventoryModule().verify_file(str(path)) is accepted


def test_verify_file_refuses_a_missing_file(tmp_path):
    assert plugin_module.InventoryModule().verify_file(str(tmp_path / 'gone.patroni.yml')) is False


def test_documentation_takes_the_connection_options_from_the_shared_fragment():
    doc = yaml.safe_load(plugin_module.DOCUMENTATION)
    assert doc['name'] == 'patroni'
    assert doc['extends_documentation_fragment'] == ['ansible.builtin.constructed', 'ansible.builtin.inventory_cache',
                                                     'pgha.cluster.etcd.plugin']
    assert not set(doc['options']) & set(CONNECTION_OPTIONS)
    assert doc['options']['namespace']['default'] == '/service'
    assert doc['options']['hostname']['choices'] == ['member', 'scope_member']
    for example in plugin_module.EXAMPLES.split('\n\n'):
        if example.strip() and not example.lstrip().startswith('# Then'):
            assert yaml.safe_load(example)['plugin'] == 'pgha.cluster.patroni'
