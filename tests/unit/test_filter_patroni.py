"""The patroni filters (plugins/filter/patroni.py)."""

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.pgha.cluster.plugins.filter.patroni import (
    FilterModule, patroni_bootstrap_leader, patroni_cluster_prefix, patroni_clusters, patroni_clusters_text,
    patroni_layout_problems, patroni_member_host, patroni_network_problems, patroni_pg_hba, patroni_pg_hba_problems,
    patroni_switchover_clusters)

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
        'patroni_bootstrap_leader', 'patroni_cluster_prefix', 'patroni_clusters_text', 'patroni_layout_problems',
        'patroni_member_host', 'patroni_network_problems', 'patroni_pg_hba', 'patroni_pg_hba_problems',
        'patroni_switchover_clusters']


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


def test_layout_compares_namespaces_as_patroni_places_the_keys():
    hostvars, groups = _two_clusters(pg2=_fact('main', name='pg2', namespace='service'),
                                     pg3=_fact('main', name='pg3', namespace='//service/'))
    assert patroni_layout_problems(PLAY, hostvars, groups) == []


@pytest.mark.parametrize('changes, reserved, expected', [
    # Scope b under namespace /service/main lives inside cluster main's prefix.
    ({'pg5': _fact('beta', scope='b', name='pg5', namespace='/service/main'),
      'pg6': _fact('beta', scope='b', name='pg6', namespace='/service/main')}, [],
     'The etcd keys of cluster main (/service/main/) and cluster beta (/service/main/b/) overlap: the etcd user of '
     "one could read and write the other's keys. Give each cluster a scope and namespace of its own."),
    ({'pg5': _fact('beta', name='pg5', namespace='/pgha/lb'), 'pg6': _fact('beta', name='pg6', namespace='/pgha/lb')},
     ['/pgha/lb'], 'The etcd keys of cluster beta (/pgha/lb/beta/) and the key prefix /pgha/lb/ overlap'),
    ({}, ['pgha//lb/', '/service'], 'The etcd keys of cluster main (/service/main/) and the key prefix /service/ '
                                    'overlap'),
    ({'pg5': _fact('beta', name='pg5', namespace='/ser vice'), 'pg6': _fact('beta', name='pg6', namespace='/ser vice')},
     [], "patroni_namespace of group beta '/ser vice' has the part(s) 'ser vice'"),
    ({'pg1': _fact('main', name='pg-1'), 'pg2': _fact('main', name='PG.1')}, [],
     'Members pg-1, PG.1 of the cluster of group main would share the replication slot pg_1'),
])
def test_layout_refuses_overlapping_keys_bad_namespaces_and_shared_slots(changes, reserved, expected):
    hostvars, groups = _two_clusters(**changes)
    problems = patroni_layout_problems(PLAY, hostvars, groups, reserved)
    assert any(expected in p for p in problems), problems


def test_layout_without_overlap_and_bad_reserved_input():
    hostvars, groups = _two_clusters(pg5=_fact('beta', scope='mainx', name='pg5'),
                                     pg6=_fact('beta', scope='mainx', name='pg6'))
    assert patroni_layout_problems(PLAY, hostvars, groups, ['/pgha/lb']) == []  # /service/main/ vs /service/mainx/
    with pytest.raises(AnsibleFilterError, match='reserved key prefixes as a list'):
        patroni_layout_problems(PLAY, hostvars, groups, '/pgha/lb')


def test_pg_hba_and_network_problems():
    assert patroni_pg_hba_problems(['hostssl all all 10.0.0.0/8 scram-sha-256']) == []
    assert 'uses trust' in patroni_pg_hba_problems(['host all all 0.0.0.0/0 trust'])[0]
    assert patroni_pg_hba_problems(['host all all 0.0.0.0/0 trust'], True) == []
    assert patroni_network_problems(['10.0.0.0/8']) == []
    assert 'has host bits set' in patroni_network_problems(['10.0.0.1/8'])[0]


SHUT_DOWN = ('Database system identifier:           1\nDatabase cluster state:               shut down\n'
             'Latest checkpoint location:           0/3000028\nLatest checkpoint\'s TimeLineID:       1\n')
IN_RECOVERY = ('Database system identifier:           1\nDatabase cluster state:               shut down in recovery\n'
               'Latest checkpoint location:           0/2000060\nLatest checkpoint\'s TimeLineID:       1\n'
               'Minimum recovery ending location:     0/2800000\nMin recovery ending loc\'s timeline:   1\n')


def _data(has_data, controldata='', error='', running=False, name=None):
    fact = {'__patroni_data_fact': {'has_data': has_data, 'controldata': controldata, 'error': error,
                                    'running': running}}
    if name:
        fact['__patroni_name_fact'] = name
    return fact


def test_bootstrap_leader_from_the_published_facts():
    # Facts as set_fact templates them: booleans may arrive as text.
    hostvars = {'pg1': _data('True', IN_RECOVERY, running='False', name='db1'), 'pg2': _data(True, SHUT_DOWN),
                'pg3': _data(False)}
    choice = patroni_bootstrap_leader(['pg1', 'pg2', 'pg3'], hostvars, '', ['pg1', 'pg2', 'pg3'])
    assert choice['leader'] == 'pg2' and choice['problems'] == []
    assert choice['positions'][0] == 'db1: timeline 1, at least 0/2800000 (shut down in recovery)'
    # A host of the group outside the play may hold more: only a named member is accepted then.
    limited = patroni_bootstrap_leader(['pg1', 'pg2'], hostvars, '', ['pg1', 'pg2', 'pg4'])
    assert limited['leader'] == '' and limited['problems'] == [
        'pg4 is not in the play, so its data cannot be compared']
    assert patroni_bootstrap_leader(['pg1', 'pg2'], hostvars, 'db1', ['pg1', 'pg2', 'pg4'])['leader'] == 'pg1'
    # No data anywhere: a new cluster.
    assert patroni_bootstrap_leader(['pg3'], hostvars, '', ['pg3', 'pg4'])['leader'] == ''


def test_bootstrap_leader_needs_the_published_facts():
    with pytest.raises(AnsibleFilterError, match="host 'pg1' has not published what its data directory holds"):
        patroni_bootstrap_leader(['pg1'], {'pg1': {}})
