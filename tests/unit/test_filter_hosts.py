"""Filters url_host, host_addresses and etcd_client_urls (plugins/filter/hosts.py)."""

import pytest
from ansible.errors import AnsibleFilterError, AnsibleUndefinedVariable

from ansible_collections.pgha.cluster.plugins.filter.hosts import (
    FilterModule, etcd_client_urls, host_addresses, url_host)


class RaisingVars(dict):
    """Host variables whose ``broken`` template cannot be resolved, as lazily templated hostvars do."""

    def __getitem__(self, name):
        if name == 'broken':
            raise AnsibleUndefinedVariable("'nothing' is undefined")
        return dict.__getitem__(self, name)


def facts(address):
    return {'ansible_facts': {'default_ipv4': {'address': address}}}


HOSTVARS = {
    'pg1': facts('10.0.0.1'),
    'pg2': dict(facts('10.0.0.2'), patroni_address='fd00::2'),
    'pg3': {'ansible_facts': {}},                                  # no facts gathered or cached
    'pg4': dict(facts('10.0.0.4'), __patroni_address_fact='10.0.4.4', patroni_address='10.0.0.40'),
    'pg5': {'patroni_address': ''},                                # set, even if empty: kept
    'pg6': {},                                                     # no ansible_facts at all
    'pg7': RaisingVars(facts('10.0.0.7'), broken='x'),
    'lb1': {'haproxy_address': '10.0.9.1'},
    'etcd1': dict(facts('10.0.1.1'), etcd_client_url='https://etcd1.example:2379'),
    'etcd2': {'etcd_address': 'fd00::e2'},
    'etcd3': facts('10.0.1.3'),
    'etcd4': {'ansible_facts': {'default_ipv4': {}}},
}


@pytest.mark.parametrize('address, expected', [
    ('10.0.0.1', '10.0.0.1'),
    ('db1.example.com', 'db1.example.com'),
    ('fd00::1', '[fd00::1]'),
    ('::1', '[::1]'),
    ('', ''),
])
def test_url_host(address, expected):
    assert url_host(address) == expected


@pytest.mark.parametrize('bad', [None, 42, ['10.0.0.1']])
def test_url_host_refuses_what_is_not_a_string(bad):
    with pytest.raises(AnsibleFilterError, match='url_host expects'):
        url_host(bad)


def test_member_addresses_prefer_published_then_inventory_then_facts():
    names = ['__patroni_address_fact', 'patroni_address']
    assert host_addresses(['pg1', 'pg2', 'pg3', 'pg4', 'pg5', 'pg6'], HOSTVARS, names) == [
        '10.0.0.1', 'fd00::2', '', '10.0.4.4', '', '']


def test_a_variable_whose_template_fails_counts_as_not_set():
    assert host_addresses(['pg7'], HOSTVARS, ['broken']) == ['10.0.0.7']


def test_load_balancer_addresses():
    assert host_addresses(['lb1', 'pg1', 'pg3'], HOSTVARS, ['haproxy_address']) == ['10.0.9.1', '10.0.0.1', '']


def test_no_hosts_no_addresses():
    assert host_addresses([], HOSTVARS, ['patroni_address']) == []


@pytest.mark.parametrize('hosts, variables, needle', [
    ('pg1', ['patroni_address'], 'expects a list of inventory host names'),
    (['nowhere'], ['patroni_address'], "'nowhere' is not an inventory host"),
    (['pg1'], 'patroni_address', 'expected a list of variable names'),
])
def test_host_addresses_bad_input(hosts, variables, needle):
    with pytest.raises(AnsibleFilterError, match=needle):
        host_addresses(hosts, HOSTVARS, variables)


def test_etcd_client_urls_published_address_facts_and_name():
    assert etcd_client_urls(['etcd1', 'etcd2', 'etcd3', 'etcd4'], HOSTVARS, 2379) == [
        'https://etcd1.example:2379',     # published by the etcd role
        'https://[fd00::e2]:2379',        # etcd_address, IPv6 in brackets
        'https://10.0.1.3:2379',          # default IPv4 address from facts
        'https://etcd4:2379',             # nothing known: the inventory name
    ]


def test_etcd_client_urls_port_as_string():
    assert etcd_client_urls(['etcd3'], HOSTVARS, '2479') == ['https://10.0.1.3:2479']


def test_etcd_client_urls_bad_input():
    with pytest.raises(AnsibleFilterError, match='etcd_client_urls expects a list'):
        etcd_client_urls('etcd1', HOSTVARS, 2379)


def test_filter_names():
    assert sorted(FilterModule().filters()) == ['etcd_client_urls', 'host_addresses', 'url_host']
