"""The patroni filters (plugins/filter/patroni.py)."""

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.pgha.cluster.plugins.filter.patroni import (
    FilterModule, patroni_cluster_prefix, patroni_clusters, patroni_clusters_text, patroni_layout_problems, patroni_member_host,
    patroni_pg_hba, patroni_switchover_clusters)

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


@pytest.mark.parametrize('scope, namespace, prefix', [
    ('main', None, '/service/main/'),
    ('main', '', '/service/main/'),
    ('main', 'service', '/service/main/'),
    ('main', '/pg//ha/', '/pg/ha/main/'),
    ('/main/', '/service', '/service/main/'),
])
def test_cluster_prefix_as_patroni_builds_it(scope, namespace, prefix):
    assert patroni_cluster_prefix(scope, namespace) == prefix


@pytest.mark.parametrize('scope, namespace', [('', None), ('a/b', None), (None, None), ('main', 5)])
def test_cluster_prefix_bad_input(scope, namespace):
    with pytest.raises(AnsibleFilterError, match='patroni_cluster_prefix: invalid Patroni'):
        patroni_cluster_prefix(scope, namespace)


def test_filter_names():
    assert sorted(FilterModule().filters()) == [
        'patroni_cluster_prefix', 'patroni_clusters_text', 'patroni_layout_problems', 'patroni_member_host',
        'patroni_pg_hba', 'patroni_switchover_clusters']


def _fact(group, scope=None, name=None, namespace='/service'):
    return {'__patroni_cluster_fact': {'group': group, 'scope': scope or group, 'namespace': namespace,
                                       'name': name}}


def _two_clusters(**changes):
    """pg1-pg3 in group main (scope main), pg5-pg6 in group beta (scope beta); ``changes`` replace host facts."""
    hostvars = {h: _fact('main', name=h) for h in ('pg1', 'pg2', 'pg3')}
    hostvars.update({h: _fact('beta', name=h) for h in ('pg5', 'pg6')})
    hostvars.update(changes)
    groups = {'main': ['pg1', 'pg2', 'pg3'], 'beta': ['pg5', 'pg6'], 'postgres': ['pg1', 'pg2', 'pg3', 'pg5', 'pg6']}
    return hostvars, groups


PLAY = ['pg1', 'pg2', 'pg3', 'pg5', 'pg6']


def test_clusters_in_the_order_of_their_first_host():
    hostvars, _groups = _two_clusters(pg2=_fact('main', name='db2'))
    assert patroni_clusters(['pg5', 'pg1', 'pg6', 'pg2'], hostvars) == {
        'beta': {'scope': 'beta', 'namespace': '/service', 'hosts': ['pg5', 'pg6'], 'members': ['pg5', 'pg6']},
        'main': {'scope': 'main', 'namespace': '/service', 'hosts': ['pg1', 'pg2'], 'members': ['pg1', 'db2']},
    }
    assert patroni_clusters_text(PLAY, _two_clusters()[0]) == 'main: pg1, pg2, pg3; beta: pg5, pg6'


def test_clusters_need_the_published_fact():
    with pytest.raises(AnsibleFilterError, match="host 'pg1' has not published its cluster"):
        patroni_clusters(['pg1'], {'pg1': {'patroni_group': 'main'}})
    with pytest.raises(AnsibleFilterError, match='expects a list of inventory host names'):
        patroni_clusters('pg1', {})


def test_layout_of_two_clusters_is_sound():
    hostvars, groups = _two_clusters()
    assert patroni_layout_problems(PLAY, hostvars, groups) == []
    # Only some hosts in the play (--limit): the others are checked by what the inventory says of them.
    hostvars['pg3'] = {'patroni_group': 'main'}
    hostvars['pg6'] = {}
    assert patroni_layout_problems(['pg1', 'pg5'], hostvars, groups) == []


@pytest.mark.parametrize('changes, groups_change, needle', [
    ({'pg5': _fact('beta', scope='main', name='pg5'), 'pg6': _fact('beta', scope='main', name='pg6')}, {},
     'Groups main and beta both use the Patroni scope main'),
    ({'pg6': _fact('beta', scope='gamma', name='pg6')}, {},
     'The hosts of group beta form one Patroni cluster and need one patroni_scope and patroni_namespace, found '
     'pg5: /service/beta, pg6: /service/gamma.'),
    ({'pg6': _fact('beta', name='pg6', namespace='/other/')}, {}, 'pg6: /other/beta'),
    ({}, {'main': ['pg1', 'pg2', 'pg3', 'pg5']}, 'pg5 is in group main, the hosts of one Patroni cluster, but its '
                                                 'patroni_group is beta'),
    # One cluster named by the parent group: the child group's hosts are in it too.
    ({'pg1': _fact('postgres', name='pg1'), 'pg2': _fact('postgres', name='pg2'),
      'pg3': _fact('postgres', name='pg3')}, {}, 'pg5 is in group postgres'),
    ({'pg2': _fact('main', name='pg1')}, {}, 'share the member name pg1'),
])
def test_layout_problems(changes, groups_change, needle):
    hostvars, groups = _two_clusters(**changes)
    groups.update(groups_change)
    problems = patroni_layout_problems(PLAY, hostvars, groups)
    assert any(needle in p for p in problems), problems


def test_layout_problem_of_a_host_outside_the_play():
    hostvars, groups = _two_clusters(pg3={'patroni_group': 'beta'})
    assert patroni_layout_problems(['pg1', 'pg2'], hostvars, groups) == [
        'pg3 is in group main, the hosts of one Patroni cluster, but its patroni_group is beta: a host belongs to '
        'one cluster only (make each cluster a child group of postgres with its own patroni_group).']


def test_layout_bad_input():
    hostvars, _groups = _two_clusters()
    with pytest.raises(AnsibleFilterError, match='groups as a mapping'):
        patroni_layout_problems(PLAY, hostvars, ['main'])


@pytest.mark.parametrize('hosts, names, expected', [
    (PLAY, ['pg6', ''], ['beta']),          # the candidate's cluster
    (PLAY, ['', 'pg2'], ['main']),          # the leader's
    (PLAY, [], ['main', 'beta']),           # nothing named: every cluster (refused by the role)
    (PLAY, ['pg2', 'pg6'], ['main', 'beta']),
    (PLAY, ['pg9'], []),                    # nobody of the play
    (['pg1', 'pg2'], ['pg9'], ['main']),    # one cluster: the module judges the name
    (['pg5', 'pg6'], [], ['beta']),
])
def test_switchover_clusters(hosts, names, expected):
    hostvars, _groups = _two_clusters()
    assert patroni_switchover_clusters(hosts, hostvars, names) == expected


def test_switchover_clusters_bad_input():
    hostvars, _groups = _two_clusters()
    with pytest.raises(AnsibleFilterError, match='member names as a list'):
        patroni_switchover_clusters(PLAY, hostvars, 'pg1')
