"""The documented connection options and the argument spec must never drift apart."""

import yaml

from ansible_collections.pgha.cluster.plugins.doc_fragments.etcd import ModuleDocFragment
from ansible_collections.pgha.cluster.plugins.module_utils.etcd_module import ETCD_CONNECTION_SPEC, etcd_argument_spec


def _doc_options(text):
    return yaml.safe_load(text)['options']


def test_module_fragment_matches_argument_spec():
    docs = _doc_options(ModuleDocFragment.DOCUMENTATION)
    assert set(docs) == set(ETCD_CONNECTION_SPEC)
    for name, spec in ETCD_CONNECTION_SPEC.items():
        doc = docs[name]
        assert doc['type'] == spec['type'], name
        assert doc.get('default') == spec.get('default'), name
        assert doc.get('elements') == spec.get('elements'), name
        assert doc.get('aliases', []) == spec.get('aliases', []), name
        # Every environment variable the spec falls back to is named in the docs.
        for var in spec['fallback'][1]:
            assert 'E(%s)' % var in ' '.join(doc['description']), (name, var)


def test_plugin_fragment_matches_argument_spec():
    docs = _doc_options(ModuleDocFragment.PLUGIN)
    assert set(docs) == set(ETCD_CONNECTION_SPEC)
    for name, spec in ETCD_CONNECTION_SPEC.items():
        doc = docs[name]
        assert doc['type'] == spec['type'], name
        assert doc.get('default') == spec.get('default'), name
        assert doc.get('aliases', []) == spec.get('aliases', []), name
        assert [e['name'] for e in doc['env']] == list(spec['fallback'][1]), name


def test_secrets_are_no_log():
    assert ETCD_CONNECTION_SPEC['password']['no_log'] is True
    assert ETCD_CONNECTION_SPEC['client_key']['no_log'] is False  # a path, not a secret


def test_argument_spec_is_a_copy_with_extras():
    spec = etcd_argument_spec(key_name={'type': 'str', 'required': True})
    assert 'key_name' in spec and 'endpoints' in spec
    spec['endpoints']['default'].append('x')
    assert ETCD_CONNECTION_SPEC['endpoints']['default'] == ['127.0.0.1:2379']
