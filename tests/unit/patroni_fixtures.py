"""The key sets read from live Patroni clusters (``<repo>/../shared/fixtures``, or ``$PGHA_FIXTURES_DIR``),
and edits of them, for every unit test that parses Patroni's state.

They hold exactly what Patroni 4.1.5 (with and without synchronous mode) and Debian's Patroni 3.0.2 wrote to
etcd. States those files lack (members not running, tags, failovers in flight, broken JSON ...) are built by
editing their JSON.
"""

import json
import os

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES_DIR = os.environ.get('PGHA_FIXTURES_DIR') or os.path.join(REPO_ROOT, '..', 'shared', 'fixtures')

F415 = 'patroni-4.1.5-etcd3-keys.json'
F415_SYNC = 'patroni-4.1.5-etcd3-keys-sync.json'
F302 = 'patroni-3.0.2-etcd3-keys.json'

ANCHOR = '/service/anchor/'

# Positions as written in the fixtures.
LSN_415 = 68248824
LSN_415_SYNC = 68248920
LSN_302 = 22028000


def load_keys(name):
    path = os.path.join(FIXTURES_DIR, name)
    if not os.path.isfile(path):
        pytest.skip('Patroni fixture %s not found: set PGHA_FIXTURES_DIR to the directory holding %s'
                    % (os.path.normpath(path), name))
    with open(path, encoding='utf-8') as handle:
        return json.load(handle)['keys']


def member_json(keys, name, prefix=ANCHOR):
    return json.loads(keys[prefix + 'members/' + name])


def edit_member(keys, name, prefix=ANCHOR, drop=(), **changes):
    """Rewrite one member's JSON: set ``changes``, delete ``drop``."""
    data = member_json(keys, name, prefix)
    data.update(changes)
    for field in drop:
        data.pop(field, None)
    keys[prefix + 'members/' + name] = json.dumps(data, separators=(',', ':'))
    return keys
