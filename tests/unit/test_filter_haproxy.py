"""The haproxy filters (plugins/filter/haproxy.py)."""

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.pgha.cluster.plugins.filter.haproxy import (
    FilterModule, haproxy_by_scope, haproxy_lb_credentials, haproxy_listener_ports, haproxy_null_empty,
    haproxy_policies, haproxy_policy_conflicts)

BASE = {'balance': 'roundrobin', 'check': {'interval_ms': 1000, 'fall': 2}}
CLUSTERS = [
    {'scope': 'main', 'lb_password': 'secret-main'},
    {'scope': 'beta', 'lb_password': 'secret-beta', 'ca_file': '/etc/beta-ca.crt',
     'policy': {'ports': {'primary': 5100, 'replicas': 5101}, 'check': {'fall': 5}}},
]


def test_policies_merge_the_cluster_fields_over_the_base_key_by_key():
    policies = haproxy_policies(CLUSTERS, BASE)
    assert policies == {
        'main': BASE,
        'beta': {'balance': 'roundrobin', 'check': {'interval_ms': 1000, 'fall': 5},
                 'ports': {'primary': 5100, 'replicas': 5101}},
    }
    assert BASE == {'balance': 'roundrobin', 'check': {'interval_ms': 1000, 'fall': 2}}


@pytest.mark.parametrize('clusters, base, needle', [
    ([{'scope': 'main', 'policy': {'ports': {'primary': 'x'}}}], {},
     r'cluster main is invalid: haproxy_policy \+ haproxy_clusters\[scope=main\]\.policy\.ports\.primary'),
    ([{'scope': 'main'}], {'balance': 'fastest'}, r'cluster main is invalid: haproxy_policy\.balance'),
    ([{'scope': 'main', 'policy': {'colour': 'red'}}], {}, r'cluster main is invalid: .*colour'),
    ([{'scope': 'main', 'policy': ['x']}], {}, r'policy must be a mapping'),
    ([{'name': 'main'}], {}, r'needs a scope'),
    ('main', {}, r'expects haproxy_clusters as a list'),
    ([], 'x', r'expects haproxy_policy as a mapping'),
])
def test_policies_refuse_what_the_agent_would_refuse(clusters, base, needle):
    with pytest.raises(AnsibleFilterError, match=needle):
        haproxy_policies(clusters, base)


def test_listener_ports_fill_in_the_defaults_and_leave_out_listeners_turned_off():
    policies = haproxy_policies(CLUSTERS + [{'scope': 'gamma', 'policy': {'ports': {
        'primary': 5200, 'replicas': None, 'read_any': 5202}}}], BASE)
    assert haproxy_listener_ports(policies) == {'main': [5000, 5001], 'beta': [5100, 5101], 'gamma': [5200, 5202]}


def test_by_scope_falls_back_to_the_default_for_missing_or_empty_values():
    clusters = CLUSTERS + [{'scope': 'gamma', 'ca_file': ''}]
    assert haproxy_by_scope(clusters, 'ca_file', '/ca.crt') == {
        'main': '/ca.crt', 'beta': '/etc/beta-ca.crt', 'gamma': '/ca.crt'}


def test_lb_credentials_name_the_read_only_user_of_each_cluster():
    assert haproxy_lb_credentials(CLUSTERS) == {
        'main': {'username': 'lb-main', 'password': 'secret-main'},
        'beta': {'username': 'lb-beta', 'password': 'secret-beta'}}


def test_policy_conflicts_name_the_scope_and_the_host():
    mine = haproxy_policies(CLUSTERS, BASE)
    hostvars = {
        'lb1': {'__haproxy_policies_fact': mine},
        'lb2': {'__haproxy_policies_fact': {'main': BASE, 'beta': {'balance': 'leastconn'}, 'other': {}}},
        'lb3': {},
    }
    assert haproxy_policy_conflicts(mine, ['lb1', 'lb2', 'lb3'], hostvars) == ['beta on lb2']
    assert haproxy_policy_conflicts(mine, ['lb1'], hostvars) == []
    with pytest.raises(AnsibleFilterError, match='not an inventory host'):
        haproxy_policy_conflicts(mine, ['nowhere'], hostvars)


def test_null_empty():
    assert haproxy_null_empty({'a': '', 'b': 0, 'c': 'x', 'd': None}) == {'a': None, 'b': 0, 'c': 'x', 'd': None}
    with pytest.raises(AnsibleFilterError):
        haproxy_null_empty(['a'])


def test_filter_names():
    assert sorted(FilterModule().filters()) == [
        'haproxy_by_scope', 'haproxy_lb_credentials', 'haproxy_listener_ports', 'haproxy_null_empty',
        'haproxy_policies', 'haproxy_policy_conflicts']
