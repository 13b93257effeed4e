"""Filters of the pki role (plugins/filter/pki.py)."""

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.pgha.cluster.plugins.filter.pki import (
    FilterModule, dirs_containing, pki_certificates, pki_client_files, pki_interface_addresses,
    pki_subject_alt_names)

DEFAULT_EXCLUDED = ['^lo$', '^docker', '^br-', '^veth', '^virbr']

FACTS = {
    'interfaces': ['lo', 'eth0', 'eth-1', 'docker0', 'br-abc', 'veth12', 'ens5'],
    'lo': {'ipv4': {'address': '127.0.0.1'}, 'ipv6': [{'address': '::1', 'scope': 'host'}]},
    'eth0': {'ipv4': {'address': '10.0.0.11'}, 'ipv4_secondaries': [{'address': '10.0.0.111'}],
             'ipv6': [{'address': '2001:db8::11', 'scope': 'global'}, {'address': 'fe80::1', 'scope': 'link'},
                      {'address': 'fd00::beef'}]},
    'eth_1': {'ipv4': {'address': '192.168.5.1'}},          # facts use '_' where the name has '-'
    'docker0': {'ipv4': {'address': '172.17.0.1'}},
    'br_abc': {'ipv4': {'address': '172.18.0.1'}},
    'veth12': {'ipv6': [{'address': 'fd99::1', 'scope': 'global'}]},
    # ens5: listed, but no facts of its own
}


def test_interface_addresses_default_exclusions():
    assert pki_interface_addresses(FACTS, DEFAULT_EXCLUDED) == [
        '10.0.0.11', '10.0.0.111', '2001:db8::11', 'fd00::beef', '192.168.5.1']


def test_interface_addresses_without_exclusions_keeps_all_but_link_and_host_scope():
    assert pki_interface_addresses(FACTS, []) == [
        '127.0.0.1', '10.0.0.11', '10.0.0.111', '2001:db8::11', 'fd00::beef', '192.168.5.1', '172.17.0.1',
        '172.18.0.1', 'fd99::1']


def test_interface_addresses_without_network_facts():
    assert pki_interface_addresses({}, DEFAULT_EXCLUDED) == []


@pytest.mark.parametrize('facts, exclude, needle', [
    ([], [], 'expects ansible_facts as a mapping'),
    (FACTS, '^lo$', 'exclude_interfaces as a list'),
    (FACTS, ['('], 'bad interface pattern'),
    ({'interfaces': ['eth0'], 'eth0': {'ipv4': {}}}, [], 'interface eth0 hold an address entry without an address'),
])
def test_interface_addresses_bad_input(facts, exclude, needle):
    with pytest.raises(AnsibleFilterError, match=needle):
        pki_interface_addresses(facts, exclude)


def test_subject_alt_names_typed_bare_ipv4_ipv6_and_names():
    candidates = ['pg1', '', 'pg1.example.com', 'pg1', 'localhost', '127.0.0.1', '::1',
                  '10.0.0.11', '2001:DB8::11', 'DNS:extra.example', 'IP:10.8.8.8', 'Foo.Example', 'PG1',
                  '10.0.0.256.1', '1.2.3']
    assert pki_subject_alt_names(candidates) == [
        'DNS:1.2.3',                 # not a dotted quad: a name
        'DNS:10.0.0.256.1',
        'DNS:extra.example',
        'DNS:Foo.Example',           # sorted without regard to case
        'DNS:localhost',
        'DNS:pg1',                   # 'PG1' is the same name: the first spelling stays
        'DNS:pg1.example.com',
        'IP:10.0.0.11',
        'IP:10.8.8.8',
        'IP:127.0.0.1',
        'IP:2001:DB8::11',
        'IP:::1',
    ]


def test_subject_alt_names_do_not_depend_on_the_order():
    names = ['b', '10.0.0.1', 'DNS:a', 'fd00::1', 'IP:10.0.0.2']
    assert pki_subject_alt_names(names) == pki_subject_alt_names(list(reversed(names)))


@pytest.mark.parametrize('bad, needle', [
    ('pg1', 'expects the names and addresses as a list'),
    (['pg1', None], 'expects strings'),
])
def test_subject_alt_names_bad_input(bad, needle):
    with pytest.raises(AnsibleFilterError, match=needle):
        pki_subject_alt_names(bad)


SERVER = {'file': 'pg1', 'name': 'pg1', 'ca': 'main', 'common_name': 'pg1', 'organizational_unit': None,
          'subject_alt_names': True, 'extended_key_usage': ['serverAuth']}
CLIENTS = [
    {'file': 'client-patroni', 'name': 'patroni', 'ca': 'main', 'common_name': None, 'organizational_unit': 'patroni',
     'subject_alt_names': False, 'extended_key_usage': ['clientAuth']},
    {'file': 'client-admin', 'name': 'admin', 'ca': 'main', 'common_name': None, 'organizational_unit': 'admin',
     'subject_alt_names': False, 'extended_key_usage': ['clientAuth']},
]


def test_certificates_of_a_host_that_is_no_etcd_member():
    """Its server certificate cannot be presented as a client certificate, and it gets no peer certificate."""
    assert pki_certificates('pg1', ['patroni', 'admin']) == [SERVER] + CLIENTS
    assert pki_certificates('pg1', []) == [SERVER]
    assert pki_certificates('pg1', [], etcd_member=False) == [SERVER]


def test_certificates_of_an_etcd_member():
    """The server certificate is a client certificate too (the JSON gateway); the peer certificate comes from the
    peer CA."""
    member_server = dict(SERVER, extended_key_usage=['serverAuth', 'clientAuth'])
    peer = {'file': 'etcd-peer', 'name': 'pg1', 'ca': 'etcd_peer', 'common_name': 'pg1', 'organizational_unit': None,
            'subject_alt_names': True, 'extended_key_usage': ['serverAuth', 'clientAuth']}
    assert pki_certificates('pg1', ['patroni', 'admin'], etcd_member=True) == [member_server, peer] + CLIENTS
    assert [c['ca'] for c in pki_certificates('pg1', ['admin'], True)] == ['main', 'etcd_peer', 'main']


def test_certificates_lists_are_fresh_copies():
    first = pki_certificates('pg1', [])
    first[0]['extended_key_usage'].append('codeSigning')
    assert pki_certificates('pg1', []) == [SERVER]


@pytest.mark.parametrize('hostname, names, needle', [
    ('', ['admin'], 'host name as a non-empty string'),
    ('pg1', 'admin', 'client certificate names as a list'),
    ('pg1', ['admin', ''], 'names as non-empty strings'),
])
def test_certificates_bad_input(hostname, names, needle):
    with pytest.raises(AnsibleFilterError, match=needle):
        pki_certificates(hostname, names)


def test_certificates_refuse_a_member_flag_that_is_no_boolean():
    with pytest.raises(AnsibleFilterError, match='etcd_member as a boolean'):
        pki_certificates('pg1', [], 'yes')


def test_client_files():
    assert pki_client_files(['patroni', 'lb-agent'], '/etc/pgha/pki') == {
        'patroni': {'cert': '/etc/pgha/pki/client-patroni.crt', 'key': '/etc/pgha/pki/client-patroni.key'},
        'lb-agent': {'cert': '/etc/pgha/pki/client-lb-agent.crt', 'key': '/etc/pgha/pki/client-lb-agent.key'},
    }
    assert pki_client_files([], '/x') == {}


def test_client_files_bad_input():
    with pytest.raises(AnsibleFilterError, match='pki_client_files expects'):
        pki_client_files('admin', '/etc/pgha/pki')


@pytest.mark.parametrize('dirs, path, expected', [
    (['/inv', '/inventory/prod', '/other'], '/inventory/prod/pki', ['/inventory/prod']),
    (['/inventory/prod/'], '/inventory/prod/pki', ['/inventory/prod/']),
    (['/inventory/prod'], '/inventory/prod', ['/inventory/prod']),
    (['/inventory/prod'], '/inventory/production/pki', []),     # a prefix of the name is not a parent
    (['/'], '/srv/pki', ['/']),
    ([], '/srv/pki', []),
])
def test_dirs_containing(dirs, path, expected):
    assert dirs_containing(dirs, path) == expected


def test_dirs_containing_bad_input():
    with pytest.raises(AnsibleFilterError, match='dirs_containing expects the directories as a list'):
        dirs_containing('/inv', '/inv/pki')
    with pytest.raises(AnsibleFilterError, match='dirs_containing expects the path as a string'):
        dirs_containing(['/inv'], None)


def test_filter_names():
    assert sorted(FilterModule().filters()) == [
        'dirs_containing', 'pki_certificates', 'pki_client_files', 'pki_interface_addresses',
        'pki_subject_alt_names']
