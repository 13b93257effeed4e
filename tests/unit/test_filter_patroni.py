"""Filters patroni_pg_hba and patroni_member_host (plugins/filter/patroni.py)."""

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.pgha.cluster.plugins.filter.patroni import (
    FilterModule, patroni_member_host, patroni_pg_hba)

USERS = dict(superuser='postgres', replication_user='replicator', ident_map='pgha-superuser')


def test_pg_hba_ipv4_ipv6_load_balancers_and_extras():
    lines = patroni_pg_hba(['10.0.0.11', 'fd00::12', ''], load_balancers=['10.0.9.1', '', 'fd00::9:4'],
                           extra_lines=['hostssl all all 10.7.0.0/16 scram-sha-256'],
                           extra_networks=['192.168.0.0/16'], **USERS)
    assert lines == [
        'local all postgres peer map=pgha-superuser',
        'local all all scram-sha-256',
        'hostssl all all 10.7.0.0/16 scram-sha-256',
        'hostssl replication replicator 10.0.0.11/32 scram-sha-256',
        'hostssl replication replicator fd00::12/128 scram-sha-256',
        'hostssl replication replicator 127.0.0.1/32 scram-sha-256',
        'hostssl all all 10.0.0.11/32 scram-sha-256',
        'hostssl all all fd00::12/128 scram-sha-256',
        'hostssl all all 127.0.0.1/32 scram-sha-256',
        'hostssl all all 10.0.9.1/32 scram-sha-256',
        'hostssl all all fd00::9:4/128 scram-sha-256',
        'hostssl all all 192.168.0.0/16 scram-sha-256',
    ]


def test_pg_hba_keeps_the_first_of_equal_lines_without_regard_to_case():
    lines = patroni_pg_hba(['10.0.0.11', '10.0.0.11'], load_balancers=['FD00::1'],
                           extra_lines=['hostssl all all 10.0.0.11/32 scram-sha-256',
                                        'HOSTSSL all all 10.7.0.0/16 scram-sha-256'],
                           extra_networks=['fd00::1/128', 'hostssl'], **USERS)
    assert lines == [
        'local all postgres peer map=pgha-superuser',
        'local all all scram-sha-256',
        'hostssl all all 10.0.0.11/32 scram-sha-256',     # the extra line comes first and stays
        'HOSTSSL all all 10.7.0.0/16 scram-sha-256',
        'hostssl replication replicator 10.0.0.11/32 scram-sha-256',
        'hostssl replication replicator 127.0.0.1/32 scram-sha-256',
        'hostssl all all 127.0.0.1/32 scram-sha-256',
        'hostssl all all FD00::1/128 scram-sha-256',
        'hostssl all all hostssl scram-sha-256',
    ]


def test_pg_hba_with_no_known_member_still_allows_this_host():
    assert patroni_pg_hba(['', ''], **USERS)[2:] == [
        'hostssl replication replicator 127.0.0.1/32 scram-sha-256',
        'hostssl all all 127.0.0.1/32 scram-sha-256',
    ]


@pytest.mark.parametrize('members, overrides, needle', [
    ('10.0.0.1', {}, 'the member addresses as a list'),
    (['10.0.0.1'], {'load_balancers': '10.0.9.1'}, 'load_balancers as a list'),
    (['10.0.0.1'], {'extra_networks': None}, 'extra_networks as a list'),
    (['10.0.0.1'], {'superuser': ''}, 'superuser as a non-empty string'),
    (['10.0.0.1'], {'ident_map': None}, 'ident_map as a non-empty string'),
])
def test_pg_hba_bad_input(members, overrides, needle):
    kwargs = dict(USERS)
    kwargs.update(overrides)
    with pytest.raises(AnsibleFilterError, match=needle):
        patroni_pg_hba(members, **kwargs)


HOSTVARS = {
    'pg1': {},
    'pg2': {'__patroni_name_fact': 'name-pg2', 'patroni_name': 'ignored'},
    'pg3': {'patroni_name': 'member-three'},
    'pg4': {'patroni_name': 'pg1'},
}
HOSTS = ['pg1', 'pg2', 'pg3', 'pg4']


@pytest.mark.parametrize('member, host', [
    ('pg1', 'pg1'),                 # the inventory name; pg4 claims it too but comes later
    ('name-pg2', 'pg2'),            # published in this run
    ('pg2', ''),                    # pg2's published name wins over its inventory name
    ('member-three', 'pg3'),        # patroni_name from the inventory
    ('nobody', ''),
    (None, ''),                     # no primary yet
])
def test_member_host(member, host):
    assert patroni_member_host(HOSTS, HOSTVARS, member) == host


def test_member_host_bad_input():
    with pytest.raises(AnsibleFilterError, match='expects a list of inventory host names'):
        patroni_member_host('pg1', HOSTVARS, 'pg1')
    with pytest.raises(AnsibleFilterError, match="'pg9' is not an inventory host"):
        patroni_member_host(['pg9'], HOSTVARS, 'pg1')


def test_filter_names():
    assert sorted(FilterModule().filters()) == ['patroni_member_host', 'patroni_pg_hba']
