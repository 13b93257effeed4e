"""Checks of pg_hba lines and networks from the inventory (plugins/module_utils/pg_hba_check.py)."""

import pytest

from ansible_collections.pgha.cluster.plugins.module_utils.pg_hba_check import (
    line_problem, network_problems, pg_hba_problems, tokens)


@pytest.mark.parametrize('line', [
    'hostssl all all 10.7.0.0/16 scram-sha-256',
    'hostssl app app_user fd00::/64 scram-sha-256',
    'host all all 10.0.0.1 255.255.255.255 md5',
    'hostssl all all db.example.com cert clientcert=verify-full',
    'hostssl all all .example.com scram-sha-256',
    'host "all" all samenet reject  # comment',
    'local sameuser all peer map=ops',
    'hostnossl all all all reject',
    '# a comment only',
    '',
])
def test_lines_postgresql_takes(line):
    assert line_problem(line) is None


@pytest.mark.parametrize('line, needle', [
    ('host all all 0.0.0.0/0 trust', 'uses trust, which lets everyone who reaches it in as that user without a '
                                     'password; set patroni_pg_hba_allow_trust to true'),
    ('local all all "trust"', 'uses trust'),
    ('include other.conf', "starts with 'include', which is not a connection type"),
    ('host all all', 'has 3 fields; a host line needs the database, user, address and method'),
    ('local all all', 'has 3 fields; a local line needs the database, user and method'),
    ('host all all 10.0.0.1 md5', 'the address 10.0.0.1 needs a prefix length (10.0.0.1/32) or a mask after it'),
    ('host all all 10.0.0.1/8 md5', "'10.0.0.1/8' has host bits set: PostgreSQL would admit all of 10.0.0.0/8"),
    ('host all all 10.0.0.0/33 md5', 'is not a network in CIDR notation'),
    ('host all all 10.0.0.0/8', 'has 4 fields'),
    ('host all all 10.0.0.1 255.0.0.0', 'has no authentication method after its address'),
    ('host all all 10.0.0.0/8 Trust', "names the method 'Trust', which PostgreSQL 15 does not know"),
    ('host all all 10.0.0.0/8 md5 extra', "has 'extra' after its method"),
    ('host all all bad_host! md5', 'is neither a network, an IP address with a mask, a host name'),
    ('host "all all 10.0.0.0/8 md5', 'cannot be read: a quote is not closed'),
    ('host all all 10.0.0.0/8 md5\nhost all all 0.0.0.0/0 trust', 'holds a line break'),
    (5, 'is not a line of text'),
])
def test_lines_refused(line, needle):
    assert needle in line_problem(line)


def test_trust_when_allowed():
    assert line_problem('host all all 10.0.0.0/8 trust', allow_trust=True) is None


def test_problems_name_the_line():
    assert pg_hba_problems(['hostssl all all 10.0.0.0/8 md5', 'host all all 0.0.0.0/0 trust']) == [
        "patroni_pg_hba_extra line 2 ('host all all 0.0.0.0/0 trust') uses trust, which lets everyone who reaches "
        'it in as that user without a password; set patroni_pg_hba_allow_trust to true to allow it']
    assert pg_hba_problems('host all all 0.0.0.0/0 trust') == [
        "patroni_pg_hba_extra must be a list of pg_hba lines, not 'host all all 0.0.0.0/0 trust'"]


def test_tokens_keep_quotes_and_drop_comments():
    assert tokens('host  "my db"\tall 10.0.0.0/8 md5 # trust') == ['host', '"my db"', 'all', '10.0.0.0/8', 'md5']


def test_networks():
    assert network_problems(['10.0.0.0/8', 'fd00::/64', '10.0.0.5/32']) == []
    assert network_problems(['10.0.0.1/8', '10.0.0.1', 'all', 7, 'fd00::1/64']) == [
        "patroni_extra_client_networks: '10.0.0.1/8' has host bits set: PostgreSQL would admit all of 10.0.0.0/8; "
        'write that network, or 10.0.0.1/32 for the one address',
        "patroni_extra_client_networks: '10.0.0.1' is not a network in CIDR notation (address/prefix length, for "
        'example 10.0.0.0/24)',
        "patroni_extra_client_networks: 'all' is not a network in CIDR notation (address/prefix length, for example "
        '10.0.0.0/24)',
        "patroni_extra_client_networks: '7' is not a network in CIDR notation (address/prefix length, for example "
        '10.0.0.0/24)',
        "patroni_extra_client_networks: 'fd00::1/64' has host bits set: PostgreSQL would admit all of fd00::/64; "
        'write that network, or fd00::1/128 for the one address',
    ]
    assert network_problems('10.0.0.0/8') == ["patroni_extra_client_networks must be a list of networks, not "
                                              "'10.0.0.0/8'"]
