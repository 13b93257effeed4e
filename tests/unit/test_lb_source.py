"""lb_source: one transaction per cluster (state + policy) -> ClusterSnapshot, on the real Patroni fixtures.

The etcd side is a stand-in that answers the transaction from a dict of keys, as the JSON gateway's
client returns it; tests/integration/test_module_haproxy_config.py reads real etcd.
"""

import json

import pytest

from ansible_collections.pgha.cluster.plugins.module_utils.etcd_types import KeyValue, RangeResult, TxnResult
from ansible_collections.pgha.cluster.plugins.module_utils.haproxy_config import render_haproxy_config
from ansible_collections.pgha.cluster.plugins.module_utils.lb_policy import LbPolicyError, default_policy, parse_policy
from ansible_collections.pgha.cluster.plugins.module_utils.lb_source import ca_file_for, read_snapshot, read_snapshots

from patroni_fixtures import F302, F415, load_keys

REVISION = 4711


class FakeClient(object):
    """Answers read_snapshot's transaction (a prefix range and one key) from ``keys``."""

    def __init__(self, keys):
        self.keys = dict((k.encode(), v.encode() if isinstance(v, str) else v) for k, v in keys.items())
        self.txns = []

    def txn(self, compare=(), success=(), failure=()):
        import base64
        self.txns.append(success)
        responses = []
        for op in success:
            body = op['request_range']
            key = base64.b64decode(body['key'])
            end = base64.b64decode(body['range_end']) if 'range_end' in body else None
            found = sorted(k for k in self.keys if (k == key if end is None else key <= k < end))
            responses.append(RangeResult([KeyValue(k, self.keys[k], mod_revision=REVISION) for k in found],
                                         len(found), False, REVISION))
        return TxnResult(True, responses, REVISION)


def test_state_and_default_policy_in_one_transaction():
    client = FakeClient(load_keys(F415))
    snapshot = read_snapshot(client, '/service', 'anchor', ca_file='/etc/ca.crt')
    assert len(client.txns) == 1 and len(client.txns[0]) == 2
    assert snapshot.scope == 'anchor' and snapshot.revision == REVISION
    assert snapshot.policy == default_policy() and snapshot.policy_present is False
    assert snapshot.state.primary().name == snapshot.backends['primary_member']
    assert snapshot.backends['backends']['primary']['port'] == 5000
    cluster = snapshot.lb_cluster()
    assert (cluster.scope, cluster.ca_file, cluster.state) == ('anchor', '/etc/ca.crt', None)
    assert 'listen pgha_anchor_primary' in render_haproxy_config([cluster], {'stats_address': '127.0.0.1'})


def test_stored_policy_is_used():
    keys = load_keys(F302)
    scope = next(iter(keys)).split('/')[2]
    keys['/pgha/lb/%s/policy' % scope] = json.dumps({'ports': {'primary': 6432, 'replicas': None}, 'drain': ['x']})
    snapshot = read_snapshot(FakeClient(keys), '/service', scope)
    assert snapshot.policy_present is True
    assert snapshot.policy == parse_policy({'ports': {'primary': 6432, 'replicas': None}, 'drain': ['x']})
    assert snapshot.backends['backends']['replicas'] is None


@pytest.mark.parametrize('value, field', [
    ('{"ports": {"primary": "x"}}', "policy.ports.primary: must be an integer 1-65535, got 'x'"),
    ('{"ports": ', 'policy: is not valid JSON'),
    ('{"balanse": "first"}', 'policy.balanse: unknown field'),
    (b'\xff', 'policy: is not UTF-8 text'),
])
def test_invalid_policy_names_cluster_field_and_key(value, field):
    keys = load_keys(F415)
    keys['/pgha/lb/anchor/policy'] = value
    with pytest.raises(LbPolicyError) as err:
        read_snapshot(FakeClient(keys), '/service', 'anchor')
    message = str(err.value)
    assert message.startswith('cluster anchor: ' + field), message
    assert message.endswith('(etcd key /pgha/lb/anchor/policy)')


def test_invalid_policy_with_a_policy_to_keep():
    keys = load_keys(F415)
    keys['/pgha/lb/anchor/policy'] = '[]'
    kept = parse_policy({'balance': 'leastconn'})
    snapshot = read_snapshot(FakeClient(keys), '/service', 'anchor', keep_policy=kept)
    assert snapshot.policy == kept
    assert snapshot.policy_error.startswith('cluster anchor: policy: must be an object, got a list')


def test_several_scopes_and_ca_files():
    keys = load_keys(F415)
    snapshots = read_snapshots(FakeClient(keys), '/service', ['anchor', 'empty'], {'anchor': '/a.crt'})
    assert [(s.scope, s.ca_file) for s in snapshots] == [('anchor', '/a.crt'), ('empty', None)]
    assert snapshots[1].state.members == [] and snapshots[1].backends['primary_member'] is None
    with pytest.raises(LbPolicyError, match='scopes: anchor is listed twice'):
        read_snapshots(FakeClient(keys), '/service', ['anchor', 'anchor'])
    assert ca_file_for('/one.crt', 'x') == '/one.crt' and ca_file_for({'y': '/y'}, 'x') is None
