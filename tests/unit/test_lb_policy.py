"""lb_policy: the LB policy (defaults, validation, canonical JSON) and desired_backends.

States come from the key sets read from live Patroni clusters (see
test_patroni_state.py), edited where a case needs what they lack.
"""

import json
import re

import pytest

from ansible_collections.pgha.cluster.plugins.module_utils.lb_policy import (
    DEFAULTS,
    LbPolicyError,
    backend_name,
    default_policy,
    desired_backends,
    haproxy_name,
    parse_policy,
    policy_key,
)
from ansible_collections.pgha.cluster.plugins.module_utils.patroni_state import parse_cluster_state

# The fixture helpers of the Patroni parser's tests (tests/unit is on sys.path under pytest).
from patroni_fixtures import ANCHOR, F302, F415, F415_SYNC, LSN_415, edit_member, load_keys


def state_of(keys, scope='anchor'):
    return parse_cluster_state(keys, '/service', scope)


def servers(result, kind):
    return dict((s['name'], s) for s in result['backends'][kind]['servers'])


def enabled(result, kind):
    return sorted(s['name'] for s in result['backends'][kind]['servers'] if s['enabled'])


@pytest.fixture
def k415():
    return load_keys(F415)


# ------------------------------------------------------------------ policy

def test_defaults_are_patronis_haproxy_settings():
    policy = default_policy()
    assert policy.ports == {'primary': 5000, 'replicas': 5001, 'read_any': None}
    assert policy.check == {'interval_ms': 3000, 'fall': 3, 'rise': 2}
    assert policy.max_replica_lag_bytes == 1048576
    assert policy.balance == 'roundrobin'
    assert policy.primary_reads_fallback is False
    assert policy.to_dict() == DEFAULTS


@pytest.mark.parametrize('value', [None, {}, '', '{}', b'{}', bytearray(b'  ')])
def test_empty_inputs_mean_defaults(value):
    assert parse_policy(value) == default_policy()


def test_to_json_is_canonical_and_round_trips():
    policy = parse_policy('{"weights": {"b": 5, "a": 7}, "drain": ["z", "a", "z"], "ports": {"read_any": 5002}}')
    text = policy.to_json()
    assert text == json.dumps(json.loads(text), sort_keys=True, separators=(',', ':'))
    assert list(json.loads(text)) == sorted(DEFAULTS)
    assert policy.drain == ['a', 'z']
    assert parse_policy(text) == policy
    assert parse_policy(text).to_json() == text
    # Same meaning, different spelling: same canonical text.
    assert parse_policy({'ports': {'read_any': 5002, 'primary': 5000}, 'drain': ['a', 'z'],
                         'weights': {'a': 7, 'b': 5}, 'balance': 'roundrobin'}).to_json() == text


def test_partial_nested_objects_keep_the_other_defaults():
    policy = parse_policy({'ports': {'replicas': 6001}, 'check': {'interval_ms': 500}})
    assert policy.ports == {'primary': 5000, 'replicas': 6001, 'read_any': None}
    assert policy.check == {'interval_ms': 500, 'fall': 3, 'rise': 2}


def test_nullable_fields_accept_null():
    policy = parse_policy({'ports': {'replicas': None}, 'max_replica_lag_bytes': None, 'max_connections': None})
    assert policy.ports['replicas'] is None
    assert policy.max_replica_lag_bytes is None


def test_parse_policy_returns_a_policy_unchanged():
    policy = parse_policy({'balance': 'leastconn'})
    assert parse_policy(policy) is policy
    assert 'leastconn' in repr(policy)
    assert policy != default_policy()


@pytest.mark.parametrize('value, message', [
    ('[1]', 'policy: must be an object, got a list'),
    ('{"ports": ', 'policy: is not valid JSON'),
    (b'\xff', 'policy: is not UTF-8 text'),
    (42, 'policy: must be an object, got a number'),
    ({'port': {}}, 'policy.port: unknown field'),
    ({'ports': []}, 'policy.ports: must be an object, got a list'),
    ({'ports': {'primary': 'x'}}, "policy.ports.primary: must be an integer 1-65535, got 'x'"),
    ({'ports': {'primary': None}}, 'policy.ports.primary: must be an integer 1-65535, got None'),
    ({'ports': {'primary': 0}}, 'policy.ports.primary: must be an integer 1-65535'),
    ({'ports': {'replicas': 65536}}, 'policy.ports.replicas: must be an integer 1-65535 or null'),
    ({'ports': {'read_any': True}}, 'policy.ports.read_any: must be an integer'),
    ({'ports': {'write': 1}}, 'policy.ports.write: unknown field'),
    ({'ports': {'replicas': 5000}}, 'policy.ports.replicas: port 5000 is already used by policy.ports.primary'),
    ({'ports': {'read_any': 5001}}, 'policy.ports.read_any: port 5001 is already used by policy.ports.replicas'),
    ({'max_replica_lag_bytes': -1}, 'policy.max_replica_lag_bytes: must be an integer'),
    ({'max_replica_lag_bytes': '1MB'}, 'policy.max_replica_lag_bytes: must be an integer'),
    ({'primary_reads_fallback': 'yes'}, "policy.primary_reads_fallback: must be true or false, got 'yes'"),
    ({'balance': 'random'}, "policy.balance: must be one of first, leastconn, roundrobin, source, got 'random'"),
    ({'weights': []}, 'policy.weights: must be an object'),
    ({'weights': {'pg1': 257}}, 'policy.weights.pg1: must be an integer 0-256, got 257'),
    ({'weights': {'pg1': 1.5}}, 'policy.weights.pg1: must be an integer 0-256'),
    ({'weights': {' ': 1}}, 'policy.weights: member names: must be a non-empty member name'),
    ({'drain': 'pg1'}, 'policy.drain: must be a list of member names'),
    ({'drain': ['pg1', 3]}, 'policy.drain[1]: must be a non-empty member name, got 3'),
    ({'check': 3}, 'policy.check: must be an object'),
    ({'check': {'interval_ms': 50}}, 'policy.check.interval_ms: must be an integer 100-3600000, got 50'),
    ({'check': {'fall': 0}}, 'policy.check.fall: must be an integer 1-100'),
    ({'check': {'rise': '2'}}, 'policy.check.rise: must be an integer 1-100'),
    ({'check': {'inter': 1}}, 'policy.check.inter: unknown field'),
    ({'max_connections': 0}, 'policy.max_connections: must be an integer 1-1000000 or null, got 0'),
])
def test_invalid_policy_names_the_field(value, message):
    with pytest.raises(LbPolicyError) as raised:
        parse_policy(value)
    assert str(raised.value).startswith(message)
    assert isinstance(raised.value, ValueError)


def test_field_prefix_is_the_callers():
    with pytest.raises(LbPolicyError, match=r'^clusters\[a\]\.policy\.balance: '):
        parse_policy({'balance': 'x'}, field='clusters[a].policy')


def test_policy_key():
    assert policy_key('anchor') == '/pgha/lb/anchor/policy'
    for scope in ('', 'a/b', ' a', None):
        with pytest.raises(LbPolicyError, match='^scope: '):
            policy_key(scope)


# ------------------------------------------------------------------ names

def test_haproxy_names_are_kept_when_valid_and_stable_otherwise():
    assert haproxy_name('pg-1.example_net') == 'pg-1.example_net'
    odd = haproxy_name('pg 1/ä')
    assert odd == haproxy_name('pg 1/ä')
    assert re.match(r'^pg_1_[0-9a-f]{8}$', odd)
    assert haproxy_name('pg 1') != haproxy_name('pg/1')
    assert haproxy_name('').startswith('x_')
    assert haproxy_name('ü').startswith('x_')
    long_name = haproxy_name('a' * 100)
    assert len(long_name) <= 48 and long_name != haproxy_name('a' * 101)
    for name in (odd, long_name, haproxy_name('a:b')):
        assert ':' not in name
    assert backend_name('anchor', 'primary') == 'pgha_anchor_primary'


# ------------------------------------------------------------------ desired backends on real states

def test_fixture_415_primary_and_replicas(k415):
    result = desired_backends(state_of(k415))
    assert result['primary_member'] == 'anc3'
    assert result['excluded'] == []
    assert enabled(result, 'primary') == ['anc3']
    assert enabled(result, 'replicas') == ['anc1', 'anc2']
    assert result['backends']['read_any'] is None
    anc1 = servers(result, 'replicas')['anc1']
    assert anc1 == {'name': 'anc1', 'member': 'anc1', 'address': 'anc1', 'port': 5432, 'api_host': 'anc1',
                    'api_port': 8008, 'api_tls': False, 'weight': 100, 'enabled': True, 'reason': None,
                    'backup': False, 'track': None}
    assert servers(result, 'primary')['anc1']['reason'] == 'not the leader (the leader key names anc3)'
    assert servers(result, 'replicas')['anc3']['reason'] == 'holds the leader key'
    backend = result['backends']['replicas']
    assert (backend['name'], backend['port'], backend['check_path']) == (
        'pgha_anchor_replicas', 5001, '/replica?lag=1048576')
    assert result['backends']['primary']['check_path'] == '/primary'
    json.dumps(result)  # plain data


def test_fixture_415_sync():
    result = desired_backends(state_of(load_keys(F415_SYNC)),
                              {'ports': {'read_any': 5002}})
    assert enabled(result, 'primary') == ['anc3']
    assert enabled(result, 'replicas') == ['anc1', 'anc2']
    assert enabled(result, 'read_any') == ['anc1', 'anc2', 'anc3']
    assert result['backends']['read_any']['check_path'] == '/read-only?lag=1048576'


def test_legacy_master_role_is_the_primary():
    result = desired_backends(state_of(load_keys(F302), 'legacy'))
    assert result['primary_member'] == 'leg1'
    assert enabled(result, 'primary') == ['leg1']
    assert enabled(result, 'replicas') == []
    assert servers(result, 'primary')['leg1']['address'] == '127.0.0.1'


# ------------------------------------------------------------------ edge cases

def test_no_leader_enables_no_primary(k415):
    del k415[ANCHOR + 'leader']
    result = desired_backends(state_of(k415))
    assert result['primary_member'] is None
    assert enabled(result, 'primary') == []
    assert set(s['reason'] for s in result['backends']['primary']['servers']) == {'no leader key'}
    # anc3 still says primary without the lock: never a replica.
    assert enabled(result, 'replicas') == ['anc1', 'anc2']
    assert servers(result, 'replicas')['anc3']['reason'] == 'role is primary, not replica'


def test_leader_not_running(k415):
    edit_member(k415, 'anc3', state='stopping')
    result = desired_backends(state_of(k415), {'ports': {'read_any': 5002}})
    assert enabled(result, 'primary') == []
    assert servers(result, 'primary')['anc3']['reason'] == 'holds the leader key but its state is stopping'
    assert servers(result, 'read_any')['anc3']['reason'] == 'holds the leader key but its state is stopping'
    assert enabled(result, 'read_any') == ['anc1', 'anc2']


def test_leader_with_replica_role_is_not_the_primary(k415):
    edit_member(k415, 'anc3', role='replica')
    result = desired_backends(state_of(k415))
    assert enabled(result, 'primary') == []
    assert servers(result, 'primary')['anc3']['reason'] == 'holds the leader key but its role is replica'


def test_all_replicas_lagging(k415):
    for name in ('anc1', 'anc2'):
        edit_member(k415, name, replay_lsn=LSN_415 - 2000000, xlog_location=LSN_415 - 2000000)
    result = desired_backends(state_of(k415))
    assert enabled(result, 'replicas') == []
    assert servers(result, 'replicas')['anc1']['reason'] == 'lag 2000000 bytes is over the limit of 1048576'
    unlimited = desired_backends(state_of(k415), {'max_replica_lag_bytes': None})
    assert enabled(unlimited, 'replicas') == ['anc1', 'anc2']
    assert unlimited['backends']['replicas']['check_path'] == '/replica'
    fallback = desired_backends(state_of(k415), {'primary_reads_fallback': True})
    assert [s['name'] for s in fallback['backends']['replicas']['servers'] if s['enabled']] == ['anc3:primary']


def test_lag_at_the_limit_qualifies_and_unknown_lag_does_not(k415):
    edit_member(k415, 'anc1', replay_lsn=LSN_415 - 100, xlog_location=LSN_415 - 100)
    edit_member(k415, 'anc2', drop=('replay_lsn', 'xlog_location', 'receive_lsn'))
    result = desired_backends(state_of(k415), {'max_replica_lag_bytes': 100})
    assert enabled(result, 'replicas') == ['anc1']
    assert servers(result, 'replicas')['anc2']['reason'] == 'lag unknown'
    assert enabled(desired_backends(state_of(k415), {'max_replica_lag_bytes': None}), 'replicas') == [
        'anc1', 'anc2']


def test_noloadbalance_tag(k415):
    edit_member(k415, 'anc1', tags={'noloadbalance': True})
    edit_member(k415, 'anc3', tags={'noloadbalance': True})
    result = desired_backends(state_of(k415), {'ports': {'read_any': 5002}})
    assert enabled(result, 'replicas') == ['anc2']
    assert servers(result, 'replicas')['anc1']['reason'] == 'tagged noloadbalance'
    # As Patroni's /read-only: the primary answers whatever its tags.
    assert enabled(result, 'read_any') == ['anc2', 'anc3']
    assert enabled(result, 'primary') == ['anc3']


def test_not_streaming_replica(k415):
    edit_member(k415, 'anc2', replication_state='in archive recovery')
    result = desired_backends(state_of(k415))
    assert servers(result, 'replicas')['anc2']['reason'] == 'replication state is in archive recovery, not streaming'
    assert enabled(result, 'replicas') == ['anc1']


def test_replica_not_running(k415):
    edit_member(k415, 'anc2', state='starting')
    result = desired_backends(state_of(k415))
    assert servers(result, 'replicas')['anc2']['reason'] == 'state is starting, not running'


def test_invalid_members_are_left_out(k415):
    k415[ANCHOR + 'members/anc2'] = '{"conn_url": '
    k415[ANCHOR + 'members/anc9'] = '[]'
    result = desired_backends(state_of(k415))
    assert [e['member'] for e in result['excluded']] == ['anc2', 'anc9']
    assert result['excluded'][0]['reason'].startswith('invalid member key: value is not JSON')
    for kind in ('primary', 'replicas'):
        assert sorted(servers(result, kind)) == ['anc1', 'anc3']


def test_invalid_leader_member_is_never_the_primary(k415):
    k415[ANCHOR + 'members/anc3'] = 'garbage'
    result = desired_backends(state_of(k415))
    assert result['primary_member'] is None
    assert enabled(result, 'primary') == []
    assert result['excluded'][0]['member'] == 'anc3'


@pytest.mark.parametrize('changes, reason', [
    ({'drop': ('conn_url',)}, 'no usable PostgreSQL address in conn_url None'),
    ({'conn_url': 'postgres://a b:5432/postgres'}, 'no usable PostgreSQL address'),
    ({'conn_url': 'postgres://[fe80::1%25eth0]:5432/postgres'}, 'no usable PostgreSQL address'),
    ({'drop': ('api_url',)}, 'no usable REST API address in api_url None'),
    ({'api_url': 'https://x"y:8008/patroni'}, 'no usable REST API address'),
    ({'api_url': 'https://other-host:8008/patroni'},
     'REST API host other-host differs from the PostgreSQL host anc1 and is not an IP address'),
])
def test_members_without_usable_addresses_are_left_out(k415, changes, reason):
    edit_member(k415, 'anc1', **changes)
    result = desired_backends(state_of(k415))
    assert result['excluded'][0]['member'] == 'anc1'
    assert result['excluded'][0]['reason'].startswith(reason)
    assert 'anc1' not in servers(result, 'replicas')


def test_api_at_another_ip_address_is_usable(k415):
    edit_member(k415, 'anc1', api_url='https://10.0.0.1:8443/patroni')
    server = servers(desired_backends(state_of(k415)), 'replicas')['anc1']
    assert (server['api_host'], server['api_port'], server['api_tls']) == ('10.0.0.1', 8443, True)


def test_drained_members_leave_the_read_backends_only(k415):
    policy = {'drain': ['anc1', 'anc3', 'gone'], 'ports': {'read_any': 5002}, 'primary_reads_fallback': True}
    result = desired_backends(state_of(k415), policy)
    assert enabled(result, 'primary') == ['anc3']
    assert enabled(result, 'replicas') == ['anc2']
    assert servers(result, 'replicas')['anc1']['reason'] == 'drained by policy'
    assert servers(result, 'replicas')['anc3:primary']['reason'] == 'drained by policy'
    assert enabled(result, 'read_any') == ['anc2']


def test_weights_apply_to_read_backends(k415):
    result = desired_backends(state_of(k415), {'weights': {'anc1': 10, 'anc3': 0, 'gone': 5},
                                               'ports': {'read_any': 5002}})
    assert servers(result, 'replicas')['anc1']['weight'] == 10
    assert servers(result, 'replicas')['anc2']['weight'] == 100
    assert servers(result, 'read_any')['anc3']['weight'] == 0
    assert servers(result, 'primary')['anc3']['weight'] == 100


def test_primary_reads_fallback_backups_track_the_primary_backend(k415):
    result = desired_backends(state_of(k415), {'primary_reads_fallback': True})
    backups = [s for s in result['backends']['replicas']['servers'] if s['backup']]
    assert [s['name'] for s in backups] == ['anc1:primary', 'anc2:primary', 'anc3:primary']
    assert [s['track'] for s in backups] == ['pgha_anchor_primary/anc1', 'pgha_anchor_primary/anc2',
                                             'pgha_anchor_primary/anc3']
    assert [s['enabled'] for s in backups] == [False, False, True]
    assert 'anc3:primary' not in servers(result, 'primary')


def test_standby_leader_serves_read_any_only(k415):
    edit_member(k415, 'anc3', role='standby_leader')
    result = desired_backends(state_of(k415), {'ports': {'read_any': 5002}})
    assert enabled(result, 'primary') == []
    assert enabled(result, 'read_any') == ['anc1', 'anc2', 'anc3']


def test_replicas_port_off(k415):
    result = desired_backends(state_of(k415), {'ports': {'replicas': None}})
    assert result['backends']['replicas'] is None


def test_sanitised_member_names(k415):
    k415[ANCHOR + 'members/pg 1'] = k415[ANCHOR + 'members/anc1']
    result = desired_backends(state_of(k415))
    name = haproxy_name('pg 1')
    assert servers(result, 'replicas')[name]['member'] == 'pg 1'


def test_name_collision_after_sanitising_is_left_out(k415):
    odd = 'pg 1'
    k415[ANCHOR + 'members/' + odd] = k415[ANCHOR + 'members/anc1']
    k415[ANCHOR + 'members/' + haproxy_name(odd)] = k415[ANCHOR + 'members/anc2']
    result = desired_backends(state_of(k415))
    assert result['excluded'] == [{'member': odd, 'reason': 'its server name %s is taken by another member'
                                   % haproxy_name(odd)}]


def test_invalid_policy_raises_before_anything(k415):
    with pytest.raises(LbPolicyError, match='^policy.balance'):
        desired_backends(state_of(k415), {'balance': 'x'})
