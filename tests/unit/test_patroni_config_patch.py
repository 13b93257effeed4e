"""patroni_config_patch: the merge Patroni's PATCH /config does, the patch sent, the validation, the diff."""

import copy

import pytest

from ansible_collections.pgha.cluster.plugins.module_utils.patroni_config_patch import (
    changed_paths,
    merge_patch,
    patch_to_send,
    validate,
)

# What Patroni 4.1.5 wrote as the config key of a live cluster.
CURRENT = {'ttl': 30, 'loop_wait': 10, 'retry_timeout': 10, 'maximum_lag_on_failover': 1048576,
           'postgresql': {'use_pg_rewind': True, 'parameters': {'max_connections': 100, 'work_mem': '4MB'}}}


def patroni_patch_config(config, data):
    """Patroni's own patch_config (patroni/utils.py, 4.1.5), restated to check merge_patch against it."""
    is_changed = False
    for name, value in data.items():
        if value is None:
            if config.pop(name, None) is not None:
                is_changed = True
        elif name in config:
            if isinstance(value, dict):
                if isinstance(config[name], dict):
                    if patroni_patch_config(config[name], value):
                        is_changed = True
                else:
                    config[name] = value
                    is_changed = True
            elif str(config[name]) != str(value):
                config[name] = value
                is_changed = True
        else:
            config[name] = value
            is_changed = True
    return is_changed


# ------------------------------------------------------------------ merge

def test_nested_objects_merge_and_null_removes():
    after = merge_patch(CURRENT, {'loop_wait': 5, 'postgresql': {'parameters': {'work_mem': None,
                                                                                'shared_buffers': '64MB'}}})
    assert after == {'ttl': 30, 'loop_wait': 5, 'retry_timeout': 10, 'maximum_lag_on_failover': 1048576,
                     'postgresql': {'use_pg_rewind': True,
                                    'parameters': {'max_connections': 100, 'shared_buffers': '64MB'}}}
    assert CURRENT['loop_wait'] == 10 and 'work_mem' in CURRENT['postgresql']['parameters']  # not modified


def test_rfc7386_cases():
    # From RFC 7386 appendix A (those Patroni's merge agrees with).
    assert merge_patch({'a': 'b'}, {'a': 'c'}) == {'a': 'c'}
    assert merge_patch({'a': 'b'}, {'b': 'c'}) == {'a': 'b', 'b': 'c'}
    assert merge_patch({'a': 'b'}, {'a': None}) == {}
    assert merge_patch({'a': 'b', 'b': 'c'}, {'a': None}) == {'b': 'c'}
    assert merge_patch({'a': ['b']}, {'a': 'c'}) == {'a': 'c'}
    assert merge_patch({'a': 'c'}, {'a': ['b']}) == {'a': ['b']}
    assert merge_patch({'a': {'b': 'c'}}, {'a': {'b': 'd', 'c': None}}) == {'a': {'b': 'd'}}
    assert merge_patch({'a': [{'b': 'c'}]}, {'a': [1]}) == {'a': [1]}
    assert merge_patch({'e': None}, {'a': 1}) == {'e': None, 'a': 1}
    assert merge_patch({'a': 'foo'}, {'a': {'bb': {'ccc': None}}}) == {'a': {'bb': {}}}
    assert merge_patch({}, {'a': {'bb': {'ccc': None}}}) == {'a': {'bb': {}}}


def test_patroni_keeps_a_value_whose_text_is_the_same():
    assert merge_patch(CURRENT, {'ttl': '30'}) == CURRENT
    assert merge_patch({'pause': True}, {'pause': 'True'}) == {'pause': True}
    assert merge_patch({'pause': True}, {'pause': 'true'}) == {'pause': 'true'}


def test_null_for_a_missing_key_changes_nothing():
    assert merge_patch(CURRENT, {'synchronous_mode': None, 'postgresql': {'parameters': {'nope': None}}}) == CURRENT


@pytest.mark.parametrize('patch', [
    {'loop_wait': 5},
    {'ttl': '30'},
    {'postgresql': {'parameters': {'work_mem': None, 'shared_buffers': '64MB'}}},
    {'postgresql': None},
    {'postgresql': 'flat'},
    {'standby_cluster': {'host': 'far', 'port': 5432, 'restore_command': None}},
    {'slots': {'s1': {'type': 'physical'}}, 'ttl': 40},
    {'nothing': None},
])
def test_what_patroni_does_with_the_patch_sent_is_the_predicted_result(patch):
    after = merge_patch(CURRENT, patch)
    sent = patch_to_send(CURRENT, after)
    stored = copy.deepcopy(CURRENT)
    assert patroni_patch_config(stored, sent) == (after != CURRENT)
    assert stored == after
    # No null ever reaches Patroni inside an object it adds whole.
    assert 'restore_command' not in str(sent)


def test_patch_to_send_is_minimal():
    after = merge_patch(CURRENT, {'loop_wait': 10, 'retry_timeout': 5, 'postgresql': {'parameters': {
        'work_mem': '4MB', 'max_connections': None}}})
    assert patch_to_send(CURRENT, after) == {'retry_timeout': 5, 'postgresql': {'parameters': {
        'max_connections': None}}}
    assert patch_to_send(CURRENT, CURRENT) == {}


# ------------------------------------------------------------------ diff

def test_changed_paths():
    after = merge_patch(CURRENT, {'loop_wait': 5, 'synchronous_mode': True,
                                  'postgresql': {'parameters': {'work_mem': None}}})
    assert changed_paths(CURRENT, after) == ['loop_wait', 'postgresql.parameters.work_mem', 'synchronous_mode']
    assert changed_paths(CURRENT, CURRENT) == []
    assert changed_paths({'a': {'b': 1}}, {'a': 'flat'}) == ['a']


# ------------------------------------------------------------------ validation

def test_the_current_config_and_patronis_defaults_are_valid():
    assert validate(CURRENT) == []
    assert validate({}) == []  # ttl 30, loop_wait 10, retry_timeout 10
    assert validate({'ttl': 20, 'loop_wait': 2, 'retry_timeout': 3}) == []  # the test harness's timings
    assert validate({'synchronous_mode': 'quorum', 'synchronous_mode_strict': True,
                     'synchronous_node_count': 2}) == []


@pytest.mark.parametrize('config, error', [
    ({'ttl': 19, 'loop_wait': 1, 'retry_timeout': 3}, 'ttl must be at least 20 (Patroni would silently raise 19 to 20)'),
    ({'loop_wait': 0}, 'loop_wait must be at least 1'),
    ({'retry_timeout': 2}, 'retry_timeout must be at least 3'),
    ({'ttl': 30, 'loop_wait': 11}, 'loop_wait + 2 * retry_timeout must not exceed ttl: 11 + 2 * 10 > 30'),
    ({'ttl': 20}, 'loop_wait + 2 * retry_timeout must not exceed ttl: 10 + 2 * 10 > 20'),
    ({'ttl': '30'}, "ttl must be an integer, not the string '30'"),
    ({'loop_wait': 2.5}, 'loop_wait must be an integer, not the number 2.5'),
    ({'retry_timeout': True}, 'retry_timeout must be an integer, not a boolean'),
    ({'maximum_lag_on_failover': -1}, 'maximum_lag_on_failover must be at least 0'),
    ({'synchronous_node_count': 0}, 'synchronous_node_count must be at least 1'),
    ({'synchronous_mode_strict': True}, 'synchronous_mode_strict needs synchronous_mode'),
    ({'synchronous_mode': False, 'synchronous_mode_strict': True}, 'synchronous_mode_strict needs synchronous_mode'),
    ({'synchronous_mode': 'yes'}, "synchronous_mode must be true, false or \"quorum\", not the string 'yes'"),
    ({'pause': 'on'}, "pause must be true or false, not the string 'on'"),
    ({'postgresql': 'x'}, "postgresql must be a JSON object, not the string 'x'"),
    ({'postgresql': {'parameters': ['a']}}, 'postgresql.parameters must be a JSON object, not a JSON array'),
    ({'postgresql': {'use_pg_rewind': 'yes'}}, "postgresql.use_pg_rewind must be true or false"),
    ({'ignore_slots': {}}, 'ignore_slots must be a JSON array, not a JSON object'),
])
def test_each_invalid_setting_is_named(config, error):
    errors = validate(config)
    assert any(e.startswith(error) for e in errors), errors


def test_timing_rule_is_not_checked_on_non_integers():
    assert validate({'ttl': 'x'}) == ["ttl must be an integer, not the string 'x'"]
