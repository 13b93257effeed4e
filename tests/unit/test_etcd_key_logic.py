"""The pure decisions of pgha.cluster.etcd_key: canonical JSON, semantic comparison, option checks, diffs."""

import json

import pytest

from ansible_collections.pgha.cluster.plugins.module_utils.etcd_key_logic import (
    DIFF_KEYS_CAP,
    check_params,
    compact_json,
    desired_text,
    is_whole_keyspace,
    json_equal,
    key_diff,
    prefix_diff,
    value_for_diff,
    value_matches,
)


def params(**kw):
    base = {'key': '/k', 'state': 'present', 'prefix': False, 'force': False, 'lease_ttl': None}
    base.update(kw)
    return base


# ---------------------------------------------------------------- what gets written

def test_compact_json_is_canonical():
    assert compact_json({'b': [1, {'z': 1, 'a': None}], 'a': 'é'}) == '{"a":"é","b":[1,{"a":null,"z":1}]}'


def test_plain_value_is_stored_as_given():
    assert desired_text(value=' x \n') == (' x \n', False)
    assert desired_text(value='') == ('', False)


def test_value_json_data_and_json_text_give_the_same_canonical_text():
    from_data = desired_text(value_json={'b': 2, 'a': [True, None]})
    from_text = desired_text(value_json='{ "a" : [true, null],\n "b": 2 }')
    assert from_data == from_text == ('{"a":[true,null],"b":2}', True)


def test_value_json_scalars():
    assert desired_text(value_json=5) == ('5', True)
    assert desired_text(value_json=False) == ('false', True)
    assert desired_text(value_json='"text"') == ('"text"', True)


def test_value_json_string_that_is_not_json_is_refused():
    with pytest.raises(ValueError, match='value_json is a string but not valid JSON text.*use value'):
        desired_text(value_json='not json')


@pytest.mark.parametrize('data', [float('nan'), {'a': float('inf')}, {'a': object()}])
def test_value_json_that_cannot_be_encoded_is_refused(data):
    with pytest.raises(ValueError, match='value_json cannot be encoded as JSON'):
        desired_text(value_json=data)


# ---------------------------------------------------------------- comparison

@pytest.mark.parametrize('left, right', [
    ({'a': 1, 'b': [1, 2]}, {'b': [1, 2], 'a': 1}),
    (1, 1.0),
    ({'x': None}, {'x': None}),
    ([], []),
    ('s', 's'),
])
def test_json_equal(left, right):
    assert json_equal(left, right) and json_equal(right, left)


@pytest.mark.parametrize('left, right', [
    (True, 1),      # Python says True == 1; JSON does not
    (False, 0),
    (0, None),
    ('1', 1),
    ([1, 2], [2, 1]),
    ([1], [1, 1]),
    ({'a': 1}, {'a': 1, 'b': 1}),
    ({'a': 1}, [('a', 1)]),
    ({'a': True}, {'a': 1}),
])
def test_json_not_equal(left, right):
    assert not json_equal(left, right) and not json_equal(right, left)


def test_plain_values_compare_bytes():
    assert value_matches(b'on', 'on', False)
    assert not value_matches(b'on ', 'on', False)
    assert value_matches('é'.encode('utf-8'), 'é', False)
    assert not value_matches(None, '', False)  # absent is not the empty string
    assert value_matches(b'', '', False)


def test_json_values_compare_data():
    text = compact_json({'a': 1, 'b': [True]})
    assert value_matches(b'{ "b": [true],\n  "a": 1.0 }', text, True)
    assert not value_matches(b'{"b": [1], "a": 1}', text, True)
    assert not value_matches(b'not json', text, True)
    assert not value_matches(b'\xff\xfe', text, True)
    assert not value_matches(None, text, True)


# ---------------------------------------------------------------- option checks

def test_valid_combinations():
    assert check_params(params()) is None
    assert check_params(params(state='absent')) is None
    assert check_params(params(state='absent', prefix=True, key='/service/old/')) is None
    assert check_params(params(lease_ttl=5)) is None
    assert check_params(params(state='absent', lease_ttl=0)) is None  # ignored when absent


def test_prefix_needs_state_absent():
    assert 'prefix=true only works with state=absent' in check_params(params(prefix=True))


def test_empty_key_is_refused():
    assert check_params(params(key='')) == 'key must not be empty'
    assert check_params(params(key='', state='absent')) == 'key must not be empty'


@pytest.mark.parametrize('key', ['', '/', '//'])
def test_whole_keyspace_prefix_needs_force(key):
    assert is_whole_keyspace(key)
    msg = check_params(params(key=key, state='absent', prefix=True))
    assert 'whole etcd keyspace' in msg and 'force=true' in msg
    assert check_params(params(key=key, state='absent', prefix=True, force=True)) is None


def test_ordinary_prefix_is_not_whole_keyspace():
    assert not is_whole_keyspace('/a')
    assert not is_whole_keyspace('a')


def test_lease_ttl_must_be_positive():
    assert check_params(params(lease_ttl=0)) == 'lease_ttl must be at least 1 second, not 0'
    assert 'at least 1 second' in check_params(params(lease_ttl=-3))


# ---------------------------------------------------------------- diffs

def test_key_diff_of_a_new_key():
    diff = key_diff('/k', None, 'v')
    assert diff == {'before_header': '/k (absent)', 'after_header': '/k (wanted)', 'before': '', 'after': 'v\n'}


def test_key_diff_of_a_deletion():
    diff = key_diff('/k', 'v\n', None)
    assert diff['before'] == 'v\n' and diff['after'] == '' and diff['after_header'] == '/k (absent)'


def test_json_diff_is_pretty_printed_and_keeps_non_json_as_is():
    diff = key_diff('/k', 'old text', compact_json({'b': 1, 'a': 2}), is_json=True)
    assert diff['before'] == 'old text\n'
    assert diff['after'] == '{\n  "a": 2,\n  "b": 1\n}\n'
    assert json.loads(diff['after']) == {'a': 2, 'b': 1}
    assert value_for_diff('{"x":1}', False) == '{"x":1}\n'


def test_prefix_diff_lists_keys():
    diff = prefix_diff('/p/', ['/p/a', '/p/b'])
    assert diff['before'] == '/p/a\n/p/b\n' and diff['after'] == ''
    assert diff['before_header'] == 'keys under /p/ (2)' and diff['after_header'] == 'keys under /p/ (0)'


def test_prefix_diff_is_capped_with_a_count():
    keys = ['/p/%03d' % i for i in range(DIFF_KEYS_CAP)]
    diff = prefix_diff('/p/', keys, total=DIFF_KEYS_CAP + 7)
    lines = diff['before'].splitlines()
    assert len(lines) == DIFF_KEYS_CAP + 1
    assert lines[-1] == '... and 7 more key(s)'
    assert '(%d)' % (DIFF_KEYS_CAP + 7) in diff['before_header']
    assert prefix_diff('/p/', keys * 2, cap=3)['before'].splitlines()[-1] == '... and %d more key(s)' % (
        2 * DIFF_KEYS_CAP - 3)
