"""The status filters (plugins/filter/status.py): the tables of the status playbook.

The Patroni sections are built from what patroni_info's own gather() returns for the keys read from live clusters
(tests/unit/patroni_fixtures.py); the etcd and load balancer inputs have the shapes etcd_info and the agent's
/status return (checked against the real ones in tests/integration/test_playbook_status.py).
"""

import copy
import json

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.pgha.cluster.plugins.filter.status import (
    FilterModule, status_etcd, status_lb, status_patroni, status_report, status_table)
from ansible_collections.pgha.cluster.plugins.modules import patroni_info

from patroni_fixtures import F302, F415, F415_SYNC, edit_member, load_keys


# ------------------------------------------------------------------ status_table

def test_table_columns_are_as_wide_as_their_widest_cell():
    assert status_table([['pg1', 'primary', 5], ['pg-long', None, True]], ['MEMBER', 'ROLE', 'TL'], '  ') == [
        '  MEMBER   ROLE     TL',
        '  pg1      primary  5',
        '  pg-long  -        yes',
    ]


def test_table_cells_stay_on_one_line_and_trailing_blanks_are_cut():
    assert status_table([['a\nb', ''], ['c', 'd  e']], ['X', 'Y']) == ['X    Y', 'a b  -', 'c    d e']
    assert status_table([], ['ONLY']) == ['ONLY']


@pytest.mark.parametrize('rows, headers, indent, needle', [
    ([['a']], 'HEAD', '', 'column headers as a non-empty list'),
    ([['a']], [], '', 'column headers as a non-empty list'),
    ('a', ['X'], '', 'rows as a list of lists'),
    ([['a', 'b']], ['X'], '', 'a list of 1 cells'),
    (['ab'], ['X'], '', 'a list of 1 cells'),
    ([['a']], ['X'], 2, 'indent as a string'),
])
def test_table_refuses_what_is_not_a_table(rows, headers, indent, needle):
    with pytest.raises(AnsibleFilterError, match=needle):
        status_table(rows, headers, indent)


# ------------------------------------------------------------------ status_etcd

MEMBERS = [
    {'id': 'b2', 'name': 'etcd2', 'client_urls': ['https://10.0.0.2:2379'], 'peer_urls': [], 'is_learner': False},
    {'id': 'a1', 'name': 'etcd1', 'client_urls': ['https://10.0.0.1:2379'], 'peer_urls': [], 'is_learner': False},
    {'id': 'c3', 'name': 'etcd3', 'client_urls': ['https://10.0.0.3:2379'], 'peer_urls': [], 'is_learner': True},
]


def _endpoint(url, member_id, healthy=True, reason='', error=None):
    if member_id is None:
        return {'endpoint': url, 'healthy': False, 'reason': reason, 'error': error, 'version': None, 'db_size': None,
                'leader': None, 'raft_term': None, 'member_id': None}
    return {'endpoint': url, 'healthy': healthy, 'reason': reason, 'error': error, 'version': '3.4.23',
            'db_size': 20480, 'leader': 'a1', 'raft_term': 7, 'member_id': member_id}


def _etcd(**changes):
    result = {'changed': False, 'members': copy.deepcopy(MEMBERS), 'leader': {'id': 'a1', 'name': 'etcd1'},
              'endpoints': [_endpoint('https://10.0.0.1:2379', 'a1'), _endpoint('https://10.0.0.2:2379', 'b2'),
                            _endpoint('https://10.0.0.3:2379', 'c3')],
              'cluster_version': '3.4.0', 'auth_enabled': True, 'alarms': [], 'healthy': True}
    result.update(changes)
    return result


def test_etcd_members_sorted_by_name_with_their_health_and_role():
    assert status_etcd(_etcd()) == [
        'etcd: healthy, 3 members, leader etcd1, cluster version 3.4.0, auth enabled, no alarms',
        '  MEMBER  ID  ENDPOINT               HEALTH   ROLE      VERSION  DB SIZE   TERM  PROBLEM',
        '  etcd1   a1  https://10.0.0.1:2379  healthy  leader    3.4.23   20.0 KiB  7     -',
        '  etcd2   b2  https://10.0.0.2:2379  healthy  follower  3.4.23   20.0 KiB  7     -',
        '  etcd3   c3  https://10.0.0.3:2379  healthy  learner   3.4.23   20.0 KiB  7     -',
    ]


def test_etcd_member_that_does_not_answer_an_unasked_one_and_a_url_nobody_owns():
    reason = 'no answer: etcd at https://10.0.0.2:2379 is unreachable: connection refused'
    result = _etcd(healthy=False, alarms=[{'member_id': 'a1', 'alarm': 'NOSPACE'}], auth_enabled=False,
                   endpoints=[_endpoint('https://10.0.0.1:2379', 'a1', healthy=False, reason='alarm NOSPACE'),
                              _endpoint('https://10.0.0.2:2379', None, reason=reason, error='refused'),
                              _endpoint('https://10.0.0.9:2379', None, reason='no answer: timed out')])
    lines = status_etcd(result)
    assert lines[0] == ('etcd: NOT HEALTHY, 3 members, leader etcd1, cluster version 3.4.0, auth DISABLED, '
                        'ALARMS NOSPACE on a1')
    assert [line.split()[:4] for line in lines[2:]] == [
        ['etcd1', 'a1', 'https://10.0.0.1:2379', 'UNHEALTHY'],
        ['etcd2', 'b2', 'https://10.0.0.2:2379', 'UNHEALTHY'],
        ['etcd3', 'c3', '-', 'not'],
        ['(unknown)', '-', 'https://10.0.0.9:2379', 'UNHEALTHY'],
    ]
    assert lines[2].endswith('alarm NOSPACE')
    assert lines[3].endswith(reason) and lines[3].split()[4:8] == ['follower', '-', '-', '-']
    assert lines[4].endswith('not asked  learner   -        -         -     no endpoint of it was queried')
    assert lines[5].endswith('timed out')


def test_etcd_without_a_leader_or_alarm_list():
    lines = status_etcd(_etcd(leader=None, alarms=None, healthy=False, members=MEMBERS[:1],
                              endpoints=[_endpoint('https://10.0.0.2:2379', 'b2')]))
    assert lines[0] == 'etcd: NOT HEALTHY, 1 member, leader -, cluster version 3.4.0, auth enabled, alarms unknown'
    assert lines[2].split()[:5] == ['etcd2', 'b2', 'https://10.0.0.2:2379', 'healthy', 'follower']


def test_etcd_not_read():
    failed = {'changed': False, 'msg': 'no etcd endpoint could serve the request: etcd at https://10.0.0.1:2379 is\n'
                                       'unreachable: connection refused'}
    assert status_etcd(failed) == ['etcd: NOT READ - no etcd endpoint could serve the request: etcd at '
                                   'https://10.0.0.1:2379 is unreachable: connection refused']
    assert status_etcd({'skipped': True, 'skip_reason': 'Conditional result was False'}) == [
        'etcd: NOT READ - skipped: Conditional result was False']
    assert status_etcd({}) == ['etcd: NOT READ - the task returned no data']


# ------------------------------------------------------------------ status_patroni

class _Module(object):
    def __init__(self, scope):
        self.params = {'namespace': '/service', 'scope': scope, 'rest_api': False}


class _Client(object):
    def __init__(self, keys):
        self.keys = keys

    def get_prefix(self, prefix):
        return dict((k, v) for k, v in self.keys.items() if k.startswith(prefix))


def _patroni(keys, scope='anchor'):
    """What patroni_info registers for ``keys``: its own gather(), through JSON as Ansible passes it on."""
    return json.loads(json.dumps(patroni_info.gather(_Module(scope), _Client(keys))))


def test_patroni_cluster_of_patroni_4():
    assert status_patroni(_patroni(load_keys(F415)), 'anchor', 'pg_anchor') == [
        'Patroni cluster anchor (group pg_anchor, /service/anchor/): leader anc3, primary anc3, 2 replicas running',
        '  MEMBER  HOST       ROLE     STATE      TL  LAG  NOTES',
        '  anc1    anc1:5432  replica  streaming  5   0 B  -',
        '  anc2    anc2:5432  replica  streaming  5   0 B  -',
        '  anc3    anc3:5432  primary  running    5   -    leader key',
    ]


def test_patroni_synchronous_standby_and_the_group_named_like_the_scope():
    assert status_patroni(_patroni(load_keys(F415_SYNC)), 'anchor', 'anchor') == [
        'Patroni cluster anchor (/service/anchor/): leader anc3, primary anc3, 2 replicas running, synchronous mode',
        '  MEMBER  HOST       ROLE          STATE      TL  LAG  NOTES',
        '  anc1    anc1:5432  replica       streaming  5   0 B  -',
        '  anc2    anc2:5432  sync replica  streaming  5   0 B  -',
        '  anc3    anc3:5432  primary       running    5   -    leader key',
    ]


def test_patroni_3_master_is_a_primary():
    assert status_patroni(_patroni(load_keys(F302), 'legacy'), 'legacy') == [
        'Patroni cluster legacy (/service/legacy/): leader leg1, primary leg1, 0 replicas running',
        '  MEMBER  HOST            ROLE     STATE    TL  LAG  NOTES',
        '  leg1    127.0.0.1:5432  primary  running  1   -    leader key',
    ]


def test_patroni_trouble_is_spelled_out():
    keys = load_keys(F415)
    edit_member(keys, 'anc1', state='stopped', pending_restart=True, tags={'nofailover': True})
    edit_member(keys, 'anc2', role='primary')  # a primary that does not hold the leader key
    keys['/service/anchor/members/anc9'] = 'not json'
    keys['/service/anchor/config'] = json.dumps({'ttl': 30, 'pause': True, 'synchronous_mode': True,
                                                 'synchronous_mode_strict': True})
    keys['/service/anchor/failover'] = json.dumps({'leader': 'anc3', 'member': 'anc1',
                                                   'scheduled_at': '2030-01-31T02:00:00+00:00'})
    del keys['/service/anchor/leader']
    result = _patroni(keys)
    lines = status_patroni(result, 'anchor')
    assert lines[0] == ('Patroni cluster anchor (/service/anchor/): leader -, NO PRIMARY, 0 replicas running, '
                        'MAINTENANCE MODE (paused), synchronous mode strict, switchover pending: anc3 -> anc1 at '
                        '2030-01-31T02:00:00+00:00')
    rows = dict((line.split()[0], line) for line in lines[2:] if not line.startswith('  !'))
    assert rows['anc1'].split()[3] == 'stopped' and rows['anc1'].endswith('pending restart, nofailover')
    assert rows['anc2'].endswith('PRIMARY WITHOUT THE LEADER KEY')
    assert 'INVALID: ' in rows['anc9']
    assert [line[4:] for line in lines if line.startswith('  ! ')] == result['cluster']['warnings']
    assert result['cluster']['warnings']


def test_patroni_lag_unknown_and_large():
    keys = load_keys(F415)
    edit_member(keys, 'anc1', drop=('replay_lsn', 'xlog_location', 'receive_lsn'))
    edit_member(keys, 'anc2', replay_lsn=1, xlog_location=1, receive_lsn=1)
    rows = dict((line.split()[0], line.split()) for line in status_patroni(_patroni(keys), 'anchor')[2:])
    assert rows['anc1'][5] == 'unknown'
    assert rows['anc2'][5:7] == ['65.1', 'MiB']


def test_patroni_without_keys_or_not_read():
    assert status_patroni(_patroni({}, 'gone'), 'gone') == [
        'Patroni cluster gone: NO KEYS under /service/gone/ in etcd (never bootstrapped, or removed)']
    assert status_patroni({'msg': 'etcd refused the login of patroni-main: authentication failed'}, 'main',
                          'pg_main') == ['Patroni cluster main (group pg_main): NOT READ - etcd refused the login of '
                                         'patroni-main: authentication failed']


# ------------------------------------------------------------------ status_lb

def _server(name, wanted, haproxy, reason=None, member=None):
    return {'name': name, 'member': member or name, 'wanted': wanted, 'reason': reason, 'haproxy': haproxy}


def _agent_status():
    return {
        'clusters': {
            'main': {'leader': 'pg1', 'primary': 'pg1', 'verified_primary': 'pg1', 'error': None,
                     'last_change': '2030-01-01T00:00:00Z', 'revision': 7, 'backends': {
                         'replicas': {'name': 'pgha_main_replicas', 'port': 5001, 'servers': [
                             _server('pg1', False, 'maint', 'holds the leader key'), _server('pg2', True, 'up')]},
                         'primary': {'name': 'pgha_main_primary', 'port': 5000, 'servers': [
                             _server('pg1', True, 'up'), _server('pg2', False, 'maint', 'not the leader')]}}},
            'beta': {'leader': 'pg5', 'primary': 'pg5', 'verified_primary': None, 'error': 'etcd: auth failed',
                     'last_change': None, 'revision': 3, 'backends': {
                         'primary': {'name': 'pgha_beta_primary', 'port': 5100, 'servers': [
                             _server('s5', True, 'down', member='pg5')]}}},
        },
        'etcd': {'ok': True, 'error': None, 'since': '2030-01-01T00:00:00Z', 'endpoints': ['https://10.0.0.1:2379']},
        'haproxy': {'error': None, 'runtime_error': None, 'reloads': 2, 'last_reload': None, 'config_path': '/x'},
        'last_change': '2030-01-01T00:00:00Z',
    }


def _uri(data):
    return {'status': 200, 'json': data, 'url': 'http://127.0.0.1:7001/status', 'msg': 'OK (1234 bytes)'}


def test_lb_backends_in_order_with_wanted_and_live_states():
    assert status_lb(_uri(_agent_status()), 'lb1') == [
        'Load balancer lb1: etcd ok, HAProxy ok, last change 2030-01-01T00:00:00Z',
        '  cluster beta: leader pg5, writes to NOBODY (no verified primary), ERROR: etcd: auth failed',
        '  cluster main: leader pg1, writes to pg1',
        '  CLUSTER  BACKEND   PORT  SERVER    WANTED  HAPROXY  WHY',
        '  beta     primary   5100  s5 (pg5)  ready   down     -',
        '  main     primary   5000  pg1       ready   up       -',
        '  main     primary   5000  pg2       maint   maint    not the leader',
        '  main     replicas  5001  pg1       maint   maint    holds the leader key',
        '  main     replicas  5001  pg2       ready   up       -',
    ]


def test_lb_agent_that_lost_etcd_and_haproxy():
    data = _agent_status()
    data['etcd'] = {'ok': False, 'error': 'no etcd endpoint answered', 'since': '2030-01-01T00:01:00Z'}
    data['haproxy'] = {'error': None, 'runtime_error': 'cannot connect to /run/haproxy/admin.sock'}
    data['clusters'] = {}
    assert status_lb(_uri(data), 'lb1') == [
        'Load balancer lb1: etcd ERROR since 2030-01-01T00:01:00Z: no etcd endpoint answered, HAProxy ERROR: cannot '
        'connect to /run/haproxy/admin.sock, last change 2030-01-01T00:00:00Z',
        '  no backends yet (the agent has not read any cluster)',
    ]


def test_lb_agent_not_answering():
    refused = {'status': -1, 'url': 'http://127.0.0.1:7001/status', 'failed': False,
               'msg': 'Status code was -1 and not [200]: Request failed: <urlopen error [Errno 111] Connection refused>'}
    assert status_lb(refused, 'lb1') == [
        'Load balancer lb1: pgha-lb-sync NOT ANSWERING at http://127.0.0.1:7001/status - Status code was -1 and not '
        '[200]: Request failed: <urlopen error [Errno 111] Connection refused>']
    not_json = {'status': 200, 'url': 'http://127.0.0.1:7001/status', 'msg': 'OK'}
    assert 'NOT ANSWERING' in status_lb(not_json, 'lb1')[0]


# ------------------------------------------------------------------ status_report and bad input

def test_report_puts_a_blank_line_between_sections_and_drops_empty_ones():
    assert status_report([['a', 'b'], [], ['c'], []]) == ['a', 'b', '', 'c']
    assert status_report([]) == []


@pytest.mark.parametrize('call, needle', [
    (lambda: status_report('abc'), 'a list of sections'),
    (lambda: status_report([['a'], 'b']), 'each section must be a list of lines'),
    (lambda: status_etcd('text'), 'status_etcd expects the result a task registered'),
    (lambda: status_patroni(None, 'main'), 'status_patroni expects the result a task registered'),
    (lambda: status_patroni({}, ''), "status_patroni expects the cluster's scope"),
    (lambda: status_lb([], 'lb1'), 'status_lb expects the result a task registered'),
    (lambda: status_lb({}, None), "status_lb expects the load balancer's inventory name"),
])
def test_bad_input_is_named(call, needle):
    with pytest.raises(AnsibleFilterError, match=needle):
        call()


def test_filters_are_registered():
    assert sorted(FilterModule().filters()) == ['status_etcd', 'status_lb', 'status_patroni', 'status_report',
                                                'status_table']
