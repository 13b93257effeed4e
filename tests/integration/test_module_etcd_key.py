"""pgha.cluster.etcd_key against real etcd: idempotence, JSON comparison, check and diff modes,
leases, prefix deletion, concurrent changes, and the errors a user sees.

What the module wrote is always checked with the independent etcd3 library.
"""

import json
import socket
import time

import pytest

from ansible_collections.pgha.cluster.plugins.module_utils.etcd_client import EtcdClient
from module_runner import connection_args, run_module
from playbook_runner import run_playbook


@pytest.fixture(params=['etcd_plain', 'etcd_tls'])
def cluster(request):
    """Each test with this fixture runs on the plain node and on the TLS + RBAC cluster (as root)."""
    return request.getfixturevalue(request.param)


def key_module(cluster, check_mode=False, diff=False, user='root', monkeypatch=None, **options):
    return run_module('etcd_key', connection_args(cluster, user=user, **options), check_mode=check_mode,
                      diff=diff, monkeypatch=monkeypatch)


def ok(result):
    assert not result.get('failed'), result
    return result


def stored(lib, key):
    return lib.get(key)[0]


def closed_port(ip='127.0.0.1'):
    s = socket.socket()
    s.bind((ip, 0))
    port = s.getsockname()[1]
    s.close()
    return port


# ---------------------------------------------------------------- put / update / idempotence

def test_create_update_unchanged(cluster, etcd3_lib, unique_prefix):
    lib = etcd3_lib(cluster)
    key = unique_prefix + 'k'

    created = ok(key_module(cluster, key=key, value='one'))
    assert created['changed'] is True
    assert created['key'] == key and created['value'] == 'one' and created['previous'] is None
    assert created['lease'] is None
    assert stored(lib, key) == b'one'
    assert created['revision'] == lib.get(key)[1].mod_revision

    again = ok(key_module(cluster, key=key, value='one'))
    assert again['changed'] is False
    assert again['value'] == 'one' and again['previous'] == 'one'
    assert again['revision'] >= created['revision']
    assert lib.get(key)[1].mod_revision == created['revision']  # not rewritten

    updated = ok(key_module(cluster, key=key, value='two'))
    assert updated['changed'] is True and updated['previous'] == 'one' and updated['value'] == 'two'
    assert updated['revision'] > created['revision']
    assert stored(lib, key) == b'two'
    assert ok(key_module(cluster, key=key, value='two'))['changed'] is False


def test_empty_value_is_a_value(etcd_plain, etcd3_lib, unique_prefix):
    key = unique_prefix + 'empty'
    assert ok(key_module(etcd_plain, key=key, value=''))['changed'] is True
    assert stored(etcd3_lib(etcd_plain), key) == b''
    assert ok(key_module(etcd_plain, key=key, value=''))['changed'] is False


def test_value_json_compares_data_not_text(cluster, etcd3_lib, unique_prefix):
    lib = etcd3_lib(cluster)
    key = unique_prefix + 'json'
    lib.put(key, '{ "b": [1, 2],\n  "a": {"y": true, "x": null} }')
    data = {'a': {'x': None, 'y': True}, 'b': [1, 2]}

    same = ok(key_module(cluster, key=key, value_json=data))
    assert same['changed'] is False
    as_text = ok(key_module(cluster, key=key, value_json='{"a":{"y":true,"x":null},"b":[1,2]}'))
    assert as_text['changed'] is False
    assert stored(lib, key) == b'{ "b": [1, 2],\n  "a": {"y": true, "x": null} }'  # left as it was

    # true and 1 are different JSON: written, compact with sorted keys.
    data['a']['y'] = 1
    changed = ok(key_module(cluster, key=key, value_json=data))
    assert changed['changed'] is True
    assert changed['value'] == '{"a":{"x":null,"y":1},"b":[1,2]}'
    assert stored(lib, key) == b'{"a":{"x":null,"y":1},"b":[1,2]}'
    assert ok(key_module(cluster, key=key, value_json=data))['changed'] is False

    # A plain value compares bytes: the same JSON with other spacing is a change.
    assert ok(key_module(cluster, key=key, value='{"b": [1, 2], "a": {"x": null, "y": 1}}'))['changed'] is True


def test_value_json_over_a_non_json_value(etcd_plain, etcd3_lib, unique_prefix):
    lib = etcd3_lib(etcd_plain)
    key = unique_prefix + 'was-text'
    lib.put(key, 'not json')
    result = ok(key_module(etcd_plain, key=key, value_json=['a']))
    assert result['changed'] is True and result['previous'] == 'not json'
    assert json.loads(stored(lib, key)) == ['a']


# ---------------------------------------------------------------- check and diff modes

def test_check_mode_changes_nothing(cluster, etcd3_lib, unique_prefix):
    lib = etcd3_lib(cluster)
    key = unique_prefix + 'k'

    would_create = ok(key_module(cluster, check_mode=True, key=key, value='v', lease_ttl=30))
    assert would_create['changed'] is True and would_create['value'] == 'v' and would_create['lease'] is None
    assert lib.get(key) == (None, None)

    lib.put(key, 'old')
    rev = lib.get(key)[1].mod_revision
    would_update = ok(key_module(cluster, check_mode=True, key=key, value='new'))
    assert would_update['changed'] is True and would_update['previous'] == 'old' and would_update['value'] == 'new'
    assert ok(key_module(cluster, check_mode=True, key=key, value='old'))['changed'] is False
    would_delete = ok(key_module(cluster, check_mode=True, key=key, state='absent'))
    assert would_delete['changed'] is True and would_delete['deleted'] == 1

    value, meta = lib.get(key)
    assert value == b'old' and meta.mod_revision == rev


def test_check_mode_grants_no_lease(etcd_plain, etcd3_lib, unique_prefix):
    with EtcdClient(etcd_plain.endpoints) as client:
        before = set(client.leases())
        ok(key_module(etcd_plain, check_mode=True, key=unique_prefix + 'k', value='v', lease_ttl=30))
        assert set(client.leases()) == before


def test_diff_of_update_create_and_delete(cluster, etcd3_lib, unique_prefix):
    lib = etcd3_lib(cluster)
    key = unique_prefix + 'k'

    created = ok(key_module(cluster, diff=True, key=key, value='first'))
    assert created['diff'] == {'before_header': key + ' (absent)', 'after_header': key + ' (wanted)',
                               'before': '', 'after': 'first\n'}
    updated = ok(key_module(cluster, diff=True, key=key, value='second'))
    assert (updated['diff']['before'], updated['diff']['after']) == ('first\n', 'second\n')
    assert 'diff' not in ok(key_module(cluster, diff=True, key=key, value='second'))
    deleted = ok(key_module(cluster, diff=True, key=key, state='absent'))
    assert (deleted['diff']['before'], deleted['diff']['after']) == ('second\n', '')
    assert deleted['diff']['after_header'] == key + ' (absent)'
    assert lib.get(key)[0] is None


def test_diff_of_json_is_pretty_printed(etcd_plain, etcd3_lib, unique_prefix):
    key = unique_prefix + 'json'
    etcd3_lib(etcd_plain).put(key, '{"a":1}')
    result = ok(key_module(etcd_plain, diff=True, check_mode=True, key=key, value_json={'a': 2, 'b': [1]}))
    assert result['diff']['before'] == '{\n  "a": 1\n}\n'
    assert result['diff']['after'] == '{\n  "a": 2,\n  "b": [\n    1\n  ]\n}\n'


# ---------------------------------------------------------------- leases

def test_lease_ttl_attaches_a_lease_and_the_key_expires(cluster, etcd3_lib, unique_prefix):
    lib = etcd3_lib(cluster)
    key = unique_prefix + 'leased'
    ttl = 2

    created = ok(key_module(cluster, key=key, value='v', lease_ttl=ttl))
    assert created['changed'] is True and created['lease']
    assert lib.get(key)[1].lease_id == created['lease']

    # Same value, live lease: nothing to do, the lease is reported.
    again = ok(key_module(cluster, key=key, value='v', lease_ttl=ttl))
    assert again['changed'] is False and again['lease'] == created['lease']

    deadline = time.monotonic() + ttl + 5
    while lib.get(key)[0] is not None:
        assert time.monotonic() < deadline, 'key still there %.1f s after its lease TTL' % (ttl + 5)
        time.sleep(0.1)


def test_lease_added_to_existing_value_and_kept_on_update(etcd_plain, etcd3_lib, unique_prefix):
    lib = etcd3_lib(etcd_plain)
    key = unique_prefix + 'k'
    lib.put(key, 'v')

    # Same value but no lease yet: the lease is attached (a change).
    attached = ok(key_module(etcd_plain, key=key, value='v', lease_ttl=60))
    assert attached['changed'] is True and attached['lease'] == lib.get(key)[1].lease_id != 0

    # A new value without lease_ttl keeps the key's lease.
    kept = ok(key_module(etcd_plain, key=key, value='w'))
    assert kept['changed'] is True and kept['lease'] == attached['lease']
    assert lib.get(key)[0] == b'w' and lib.get(key)[1].lease_id == attached['lease']

    # A new value with lease_ttl gets a new lease.
    renewed = ok(key_module(etcd_plain, key=key, value='x', lease_ttl=60))
    assert renewed['changed'] is True and renewed['lease'] not in (0, None, attached['lease'])
    assert lib.get(key)[1].lease_id == renewed['lease']


# ---------------------------------------------------------------- deletion

def test_delete_single_key(cluster, etcd3_lib, unique_prefix):
    lib = etcd3_lib(cluster)
    key = unique_prefix + 'k'
    lib.put(key, 'v')
    lib.put(key + '-sibling', 'stays')

    deleted = ok(key_module(cluster, key=key, state='absent'))
    assert deleted['changed'] is True and deleted['deleted'] == 1
    assert deleted['previous'] == 'v' and deleted['value'] is None
    assert lib.get(key)[0] is None and lib.get(key + '-sibling')[0] == b'stays'

    again = ok(key_module(cluster, key=key, state='absent'))
    assert again['changed'] is False and again['deleted'] == 0 and again['previous'] is None


def test_delete_prefix_with_check_and_diff(cluster, etcd3_lib, unique_prefix):
    lib = etcd3_lib(cluster)
    prefix = unique_prefix + 'tree/'
    keys = [prefix + name for name in ('a', 'b/c', 'b/d')]
    for k in keys:
        lib.put(k, 'v')
    outside = unique_prefix + 'tree-not-under-the-prefix'
    lib.put(outside, 'stays')

    preview = ok(key_module(cluster, check_mode=True, diff=True, key=prefix, state='absent', prefix=True))
    assert preview['changed'] is True and preview['deleted'] == 3
    assert preview['diff']['before'] == ''.join(k + '\n' for k in keys)
    assert preview['diff']['after'] == ''
    assert preview['diff']['before_header'] == 'keys under %s (3)' % prefix
    assert [lib.get(k)[0] for k in keys] == [b'v'] * 3

    deleted = ok(key_module(cluster, key=prefix, state='absent', prefix=True))
    assert deleted['changed'] is True and deleted['deleted'] == 3 and deleted['previous'] is None
    assert [lib.get(k)[0] for k in keys] == [None] * 3
    assert lib.get(outside)[0] == b'stays'

    again = ok(key_module(cluster, key=prefix, state='absent', prefix=True, diff=True))
    assert again['changed'] is False and again['deleted'] == 0 and 'diff' not in again


def test_prefix_diff_is_capped(etcd_plain, unique_prefix):
    prefix = unique_prefix + 'many/'
    with EtcdClient(etcd_plain.endpoints) as client:
        for i in range(105):
            client.put(prefix + '%03d' % i, 'v')
    preview = ok(key_module(etcd_plain, check_mode=True, diff=True, key=prefix, state='absent', prefix=True))
    lines = preview['diff']['before'].splitlines()
    assert preview['deleted'] == 105 and len(lines) == 101
    assert lines[0] == prefix + '000' and lines[99] == prefix + '099'
    assert lines[100] == '... and 5 more key(s)'
    assert ok(key_module(etcd_plain, key=prefix, state='absent', prefix=True))['deleted'] == 105


def test_force_deletes_the_whole_keyspace(etcd_cluster_factory, etcd3_lib):
    cluster = etcd_cluster_factory(size=1, tls=False)  # private: this empties it
    lib = etcd3_lib(cluster)
    for k in ('/a', '/b/c', 'no-slash'):
        lib.put(k, 'v')
    refused = key_module(cluster, key='/', state='absent', prefix=True)
    assert refused['failed'] is True and 'force=true' in refused['msg']
    slash = ok(key_module(cluster, key='/', state='absent', prefix=True, force=True))
    assert slash['deleted'] == 2 and lib.get('no-slash')[0] == b'v'
    everything = ok(key_module(cluster, key='', state='absent', prefix=True, force=True, diff=True))
    assert everything['deleted'] == 1 and everything['diff']['before'] == 'no-slash\n'
    assert list(lib.get_all()) == []


# ---------------------------------------------------------------- concurrent changes

def _meddle_before_txn(monkeypatch, cluster, key, times):
    """Another client writes ``key`` right before each of the module's first ``times`` transactions."""
    real_txn = EtcdClient.txn
    calls = []

    def txn(self, *args, **kwargs):
        calls.append(1)
        if len(calls) <= times:
            with EtcdClient(cluster.endpoints) as other:
                other.put(key, 'theirs-%d' % len(calls))
        return real_txn(self, *args, **kwargs)

    monkeypatch.setattr(EtcdClient, 'txn', txn)
    return calls


def test_concurrent_change_is_read_again(etcd_plain, etcd3_lib, monkeypatch, unique_prefix):
    key = unique_prefix + 'k'
    etcd3_lib(etcd_plain).put(key, 'start')
    calls = _meddle_before_txn(monkeypatch, etcd_plain, key, times=1)
    result = ok(key_module(etcd_plain, monkeypatch=monkeypatch, key=key, value='mine'))
    assert len(calls) == 2
    assert result['changed'] is True and result['previous'] == 'theirs-1'
    assert stored(etcd3_lib(etcd_plain), key) == b'mine'


def test_repeated_concurrent_change_fails_without_overwriting(etcd_plain, etcd3_lib, monkeypatch, unique_prefix):
    key = unique_prefix + 'k'
    calls = _meddle_before_txn(monkeypatch, etcd_plain, key, times=2)
    result = key_module(etcd_plain, monkeypatch=monkeypatch, key=key, value='mine', lease_ttl=60)
    assert result['failed'] is True and len(calls) == 2
    assert 'changed by another client' in result['msg'] and 'not overwriting it blindly' in result['msg']
    value, meta = etcd3_lib(etcd_plain).get(key)
    assert value == b'theirs-2' and meta.lease_id == 0


def test_concurrent_key_under_prefix_is_not_deleted_unseen(etcd_plain, etcd3_lib, monkeypatch, unique_prefix):
    prefix = unique_prefix + 'p/'
    etcd3_lib(etcd_plain).put(prefix + 'a', 'v')
    _meddle_before_txn(monkeypatch, etcd_plain, prefix + 'new', times=2)
    result = key_module(etcd_plain, monkeypatch=monkeypatch, key=prefix, state='absent', prefix=True)
    assert result['failed'] is True and 'not deleting keys it has not seen' in result['msg']
    assert stored(etcd3_lib(etcd_plain), prefix + 'a') == b'v'


# ---------------------------------------------------------------- bad input and errors

@pytest.mark.parametrize('options, message', [
    ({'key': '{p}sub/', 'prefix': True, 'value': 'v'}, 'prefix=true only works with state=absent'),
    ({'key': '', 'value': 'v'}, 'key must not be empty'),
    ({'key': '', 'state': 'absent'}, 'key must not be empty'),
    ({'key': '/', 'state': 'absent', 'prefix': True}, 'whole etcd keyspace'),
    ({'key': '', 'state': 'absent', 'prefix': True}, 'whole etcd keyspace'),
    ({'key': '{p}k', 'value': 'v', 'value_json': {'a': 1}}, 'parameters are mutually exclusive: value|value_json'),
    ({'key': '{p}k'}, 'state is present but any of the following are missing: value, value_json'),
    ({'key': '{p}k', 'value_json': '{not json'}, 'value_json is a string but not valid JSON'),
    ({'key': '{p}k', 'value': 'v', 'lease_ttl': 0}, 'lease_ttl must be at least 1 second'),
])
def test_bad_input_is_refused_before_writing(etcd_plain, etcd3_lib, unique_prefix, options, message):
    lib = etcd3_lib(etcd_plain)
    canary = unique_prefix + 'canary'
    lib.put(canary, 'v')
    options = dict(options, key=options['key'].replace('{p}', unique_prefix))
    result = key_module(etcd_plain, **options)
    assert result['failed'] is True and message in result['msg'], result
    assert 'Traceback' not in result['msg']
    assert [meta.key for dummy, meta in lib.get_prefix(unique_prefix)] == [canary.encode()]


def test_wrong_password(etcd_tls, etcd3_lib):
    result = key_module(etcd_tls, user='patroni-demo', password='not-the-password', key='/service/demo/x', value='v')
    assert result['failed'] is True
    assert 'wrong username or password' in result['msg'] and result['error_type'] == 'EtcdAuthError'
    assert etcd3_lib(etcd_tls).get('/service/demo/x')[0] is None


def test_permission_denied_outside_the_users_prefix(etcd_tls, etcd3_lib, unique_prefix):
    key = unique_prefix + 'not-for-patroni'
    result = key_module(etcd_tls, user='patroni-demo', key=key, value='v')
    assert result['failed'] is True and 'permission denied' in result['msg']
    assert result['error_type'] == 'EtcdPermissionDenied'
    assert etcd3_lib(etcd_tls).get(key)[0] is None
    # The same user may write inside its prefix.
    inside = '/service/demo/' + unique_prefix.strip('/').replace('/', '-')
    assert ok(key_module(etcd_tls, user='patroni-demo', key=inside, value='v'))['changed'] is True
    assert ok(key_module(etcd_tls, user='patroni-demo', key=inside, state='absent'))['deleted'] == 1


def test_unreachable_endpoint():
    result = run_module('etcd_key', {'endpoints': ['http://127.0.0.1:%d' % closed_port()], 'key': '/k',
                                     'value': 'v', 'timeout': 2})
    assert result['failed'] is True
    assert 'unreachable' in result['msg'] and 'connection refused' in result['msg']
    assert result['error_type'] == 'EtcdUnreachable'


def test_wrong_ca(etcd_tls, unique_prefix):
    result = key_module(etcd_tls, ca_cert=etcd_tls.wrong_ca_cert, key=unique_prefix + 'k', value='v')
    assert result['failed'] is True and 'TLS verification' in result['msg']
    assert result['error_type'] == 'EtcdTLSError'


# ---------------------------------------------------------------- through ansible-playbook

def test_playbook_check_diff_hides_the_password(etcd_tls, etcd3_lib, unique_prefix):
    lib = etcd3_lib(etcd_tls)
    key = unique_prefix + 'play'
    lib.put(key, 'before-value')
    task_args = dict(connection_args(etcd_tls), key=key, value='after-value')
    password = task_args['password']  # written literally into the playbook
    plays = [{'name': 'etcd_key in check and diff mode', 'hosts': 'localhost', 'connection': 'local',
              'gather_facts': False,
              'tasks': [{'name': 'Write a key', 'pgha.cluster.etcd_key': task_args}]}]
    run = run_playbook(plays, check=True, diff=True, verbosity=3)
    assert run.rc == 0, run.output
    assert run.recap['localhost']['changed'] == 1
    assert '-before-value\n+after-value' in run.stdout, run.stdout
    assert password not in run.output
    assert 'VALUE_SPECIFIED_IN_NO_LOG_PARAMETER' in run.stdout  # the password option was masked, not dropped
    assert lib.get(key)[0] == b'before-value'
