"""Every doc fragment against the argument spec it documents, and the action groups against the modules
that claim them: the documented options and the real ones must never drift apart."""

import ast
import os

import pytest
import yaml

from ansible_collections.pgha.cluster.plugins.doc_fragments import etcd, patroni, patroni_rest
from ansible_collections.pgha.cluster.plugins.module_utils.etcd_module import ETCD_CONNECTION_SPEC, etcd_argument_spec
from ansible_collections.pgha.cluster.plugins.module_utils.patroni_module import (
    PATRONI_CLUSTER_SPEC,
    PATRONI_REST_SPEC,
    patroni_argument_spec,
    rest_client,
)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODULES = os.path.join(REPO, 'plugins', 'modules')


def _doc_options(text):
    return yaml.safe_load(text)['options']


def _assert_documents(docs, spec):
    assert set(docs) == set(spec)
    for name, option in spec.items():
        doc = docs[name]
        assert doc['type'] == option['type'], name
        assert doc.get('default') == option.get('default'), name
        assert doc.get('elements') == option.get('elements'), name
        assert doc.get('aliases', []) == option.get('aliases', []), name
        assert bool(doc.get('required')) == bool(option.get('required')), name


@pytest.mark.parametrize('fragment, spec', [
    (etcd.ModuleDocFragment.DOCUMENTATION, ETCD_CONNECTION_SPEC),
    (patroni.ModuleDocFragment.DOCUMENTATION, PATRONI_CLUSTER_SPEC),
    (patroni_rest.ModuleDocFragment.DOCUMENTATION, PATRONI_REST_SPEC),
], ids=['etcd', 'patroni', 'patroni_rest'])
def test_module_fragment_matches_argument_spec(fragment, spec):
    _assert_documents(_doc_options(fragment), spec)


def test_etcd_fragment_names_every_environment_variable():
    docs = _doc_options(etcd.ModuleDocFragment.DOCUMENTATION)
    for name, spec in ETCD_CONNECTION_SPEC.items():
        for var in spec['fallback'][1]:
            assert 'E(%s)' % var in ' '.join(docs[name]['description']), (name, var)


def test_etcd_plugin_fragment_matches_argument_spec():
    docs = _doc_options(etcd.ModuleDocFragment.PLUGIN)
    assert set(docs) == set(ETCD_CONNECTION_SPEC)
    for name, spec in ETCD_CONNECTION_SPEC.items():
        doc = docs[name]
        assert doc['type'] == spec['type'], name
        assert doc.get('default') == spec.get('default'), name
        assert doc.get('aliases', []) == spec.get('aliases', []), name
        assert [e['name'] for e in doc['env']] == list(spec['fallback'][1]), name


def test_secrets_are_no_log_and_key_paths_are_not():
    assert ETCD_CONNECTION_SPEC['password']['no_log'] is True
    assert PATRONI_REST_SPEC['rest_password']['no_log'] is True
    assert ETCD_CONNECTION_SPEC['client_key']['no_log'] is False
    assert PATRONI_REST_SPEC['rest_client_key']['no_log'] is False


def test_argument_specs_are_copies_with_extras():
    spec = etcd_argument_spec(key_name={'type': 'str', 'required': True})
    assert 'key_name' in spec and 'endpoints' in spec
    spec['endpoints']['default'].append('x')
    assert ETCD_CONNECTION_SPEC['endpoints']['default'] == ['127.0.0.1:2379']

    spec = patroni_argument_spec(settings={'type': 'dict'})
    assert set(spec) == set(PATRONI_CLUSTER_SPEC) | set(PATRONI_REST_SPEC) | {'settings'}
    spec['rest_timeout']['default'] = 1
    spec['namespace']['default'] = '/other'
    assert PATRONI_REST_SPEC['rest_timeout']['default'] == 5.0
    assert PATRONI_CLUSTER_SPEC['namespace']['default'] == '/service'


def test_rest_client_takes_the_rest_options():
    client = rest_client({'rest_username': 'patroni', 'rest_password': 'pw', 'rest_timeout': 7.0,
                          'rest_validate_certs': False})
    assert (client.timeout, client.validate_certs, client._auth) == (7.0, False, 'Basic cGF0cm9uaTpwdw==')


# ------------------------------------------------------------------ action groups

def _runtime_groups():
    with open(os.path.join(REPO, 'meta', 'runtime.yml')) as f:
        return yaml.safe_load(f)['action_groups']


def _documentation(path):
    # Read, not imported: the docs are all that is checked here.
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    for node in tree.body:
        if isinstance(node, ast.Assign) and [getattr(t, 'id', None) for t in node.targets] == ['DOCUMENTATION']:
            return yaml.safe_load(node.value.value)
    raise AssertionError('%s has no DOCUMENTATION' % path)


def _module_docs():
    names = sorted(n[:-3] for n in os.listdir(MODULES) if n.endswith('.py') and not n.startswith('_'))
    return dict((name, _documentation(os.path.join(MODULES, name + '.py'))) for name in names)


def test_each_action_group_holds_exactly_the_modules_that_document_it():
    groups = _runtime_groups()
    docs = _module_docs()
    assert set(groups) == {'etcd', 'patroni'}
    for group, members in groups.items():
        claiming = sorted(name for name, doc in docs.items()
                          if 'pgha.cluster.%s.actiongroup' % group in doc.get('extends_documentation_fragment', []))
        assert sorted(members) == claiming, group
    assert all(name.startswith('etcd_') for name in groups['etcd'])
    assert all(name.startswith('patroni_') for name in groups['patroni'])


def test_patroni_modules_document_the_cluster_and_rest_options():
    for name, doc in _module_docs().items():
        if name.startswith('patroni_'):
            fragments = doc['extends_documentation_fragment']
            assert {'pgha.cluster.patroni', 'pgha.cluster.etcd', 'pgha.cluster.patroni_rest'} <= set(fragments), name
            assert not set(doc.get('options') or {}) & (set(PATRONI_CLUSTER_SPEC) | set(PATRONI_REST_SPEC)), name
