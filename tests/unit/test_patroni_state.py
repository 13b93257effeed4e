"""patroni_state on the key sets read from live Patroni clusters, and on inputs derived from them
(patroni_fixtures.py)."""

import json
import random

import pytest

from ansible_collections.pgha.cluster.plugins.module_utils.etcd_types import KeyValue
from ansible_collections.pgha.cluster.plugins.module_utils.patroni_state import (
    ClusterConfig,
    HistoryEntry,
    cluster_prefix,
    format_lsn,
    normalize_role,
    parse_cluster_state,
    parse_lsn,
    parse_member,
    parse_namespace,
    read_cluster_state,
    running_member_api_url,
)

from patroni_fixtures import (
    ANCHOR, F302, F415, F415_SYNC, LSN_302, LSN_415, LSN_415_SYNC, edit_member, load_keys, member_json,
)


def parse(keys, scope='anchor'):
    return parse_cluster_state(keys, '/service', scope)


def names(members):
    return [m.name for m in members]


@pytest.fixture
def k415():
    return load_keys(F415)


@pytest.fixture
def k415_sync():
    return load_keys(F415_SYNC)


@pytest.fixture
def k302():
    return load_keys(F302)


# ---------------------------------------------------------------- the real key sets

def test_415_leader_members_and_roles(k415):
    state = parse(k415)
    assert (state.namespace, state.scope, state.prefix) == ('/service', 'anchor', ANCHOR)
    assert state.leader == 'anc3'
    assert names(state.members) == ['anc1', 'anc2', 'anc3']
    assert [(m.role, m.raw_role, m.state, m.running) for m in state.members] == [
        ('replica', 'replica', 'running', True), ('replica', 'replica', 'running', True),
        ('primary', 'primary', 'running', True)]
    assert state.primary().name == 'anc3' and state.leader_member().name == 'anc3'
    assert names(state.replicas()) == ['anc1', 'anc2']
    assert [m.is_leader for m in state.members] == [False, False, True]
    assert state.warnings == []
    assert state.leader_lease is None and all(m.lease is None and m.mod_revision is None for m in state.members)


def test_415_member_fields(k415):
    state = parse(k415)
    anc1, anc3 = state.member('anc1'), state.member('anc3')
    assert (anc1.conn_url, anc1.host, anc1.port, anc1.database) == ('postgres://anc1:5432/postgres', 'anc1', 5432,
                                                                    'postgres')
    assert (anc1.api_url, anc1.api_host, anc1.api_port) == ('http://anc1:8008/patroni', 'anc1', 8008)
    assert (anc1.timeline, anc1.version, anc1.replication_state) == (5, '4.1.5', 'streaming')
    assert (anc1.xlog_location, anc1.receive_lsn, anc1.replay_lsn) == (LSN_415, LSN_415, LSN_415)
    # Patroni writes receive/replay LSNs only for replicas.
    assert (anc3.xlog_location, anc3.receive_lsn, anc3.replay_lsn, anc3.replication_state) == (
        LSN_415, None, None, None)
    assert anc1.tags == {} and not (anc1.nofailover or anc1.noloadbalance or anc1.nosync or anc1.clonefrom)
    assert anc1.failover_priority == 1 and anc1.pending_restart is False and anc1.pending_restart_reason is None
    assert not anc1.invalid and anc1.reason is None and anc1.warnings == []


def test_415_lags_are_zero_when_everyone_is_at_the_leader_position(k415):
    state = parse(k415)
    assert (state.leader_lsn, state.lag_reference) == (LSN_415, 'leader')
    for name in ('anc1', 'anc2'):
        member = state.member(name)
        assert (member.lag, member.receive_lag, member.replay_lag, member.xlog_lag) == (0, 0, 0, 0)
    leader = state.member('anc3')
    assert (leader.lag, leader.receive_lag, leader.replay_lag, leader.xlog_lag) == (None, None, None, None)


def test_415_cluster_keys(k415):
    state = parse(k415)
    config = state.config
    assert (config.present, config.ttl, config.loop_wait, config.retry_timeout, config.maximum_lag_on_failover) == (
        True, 30, 10, 10, 1048576)
    assert config.use_pg_rewind is True and config.synchronous_mode is False and config.paused is False
    assert config.data['postgresql'] == {'use_pg_rewind': True}
    assert not state.sync.present and state.sync.sync_standby == []
    assert state.failover.present and not state.failover.pending and state.failover.candidate is None
    assert state.initialize == '7712448161748118147'
    assert (state.status.optime, state.status.retain_slots) == (LSN_415, ['anc1', 'anc2', 'anc3'])
    assert state.status.slots == {'anc1': LSN_415, 'anc2': LSN_415, 'anc3': LSN_415}
    assert state.other == {} and state.failsafe is None


def test_415_history_after_four_switchovers(k415):
    history = parse(k415).history
    assert len(history) == 4
    assert history[0] == HistoryEntry(timeline=1, lsn=67281416, reason='no recovery target specified',
                                      timestamp='2026-11-26T11:58:53.844343+00:00', new_leader='anc2')
    assert [(h.timeline, h.lsn, h.new_leader) for h in history] == [
        (1, 67281416, 'anc2'), (2, 67459312, 'anc3'), (3, 67638320, 'anc1'), (4, 68091896, 'anc3')]
    # The last switch started the timeline the members are on, led by the leader key holder.
    state = parse(k415)
    assert history[-1].timeline + 1 == state.member('anc3').timeline and history[-1].new_leader == state.leader


def test_415_sync_mode(k415_sync):
    state = parse(k415_sync)
    assert state.config.synchronous_mode is True and state.config.synchronous_mode_strict is False
    assert (state.sync.present, state.sync.leader, state.sync.sync_standby, state.sync.quorum) == (
        True, 'anc3', ['anc2'], 0)
    assert [(m.name, m.sync_standby) for m in state.members] == [('anc1', False), ('anc2', True), ('anc3', False)]
    assert state.primary().name == 'anc3' and names(state.replicas()) == ['anc1', 'anc2']
    assert state.leader_lsn == LSN_415_SYNC and state.member('anc2').replay_lsn == LSN_415_SYNC
    assert state.warnings == []


def test_302_master_means_primary(k302):
    state = parse(k302, 'legacy')
    leg1 = state.member('leg1')
    assert (leg1.raw_role, leg1.role) == ('master', 'primary')
    assert state.leader == 'leg1' and state.primary() is leg1 and state.replicas() == []
    assert (leg1.host, leg1.port, leg1.api_port, leg1.version, leg1.timeline) == ('127.0.0.1', 5432, 8008, '3.0.2', 1)
    assert (leg1.xlog_location, leg1.receive_lsn, leg1.replay_lsn) == (LSN_302, None, None)
    assert state.status.optime == LSN_302 and state.status.slots is None and state.status.retain_slots == []
    assert state.history == [] and not state.failover.present and not state.sync.present
    assert state.initialize == '7712449504856505051'
    assert state.config.maximum_lag_on_failover is None and state.config.effective('maximum_lag_on_failover') == 1048576
    assert state.config.effective('ttl') == 30
    assert state.warnings == []


@pytest.mark.parametrize('fixture, scope', [(F415, 'anchor'), (F415_SYNC, 'anchor'), (F302, 'legacy')])
def test_to_dict_is_json(fixture, scope):
    state = parse(load_keys(fixture), scope)
    data = json.loads(json.dumps(state.to_dict()))
    assert data['leader'] == state.leader and data['primary'] == state.primary().name
    assert data['replicas'] == names(state.replicas())
    assert [m['name'] for m in data['members']] == names(state.members)
    first = data['members'][0]
    assert first['running'] is True and 'data' not in first and first['role'] in ('primary', 'replica')
    assert data['failover']['pending'] is False
    assert data['config']['ttl'] == 30


def test_other_scopes_and_unknown_keys(k415, k302):
    keys = dict(k415, **k302)
    keys['/service/anchor2/leader'] = 'x1'  # a neighbour whose name starts like ours
    keys[ANCHOR + 'members/anc1/extra'] = 'nested'
    keys[ANCHOR + 'something'] = 'new in a later Patroni'
    state = parse(keys)
    assert names(state.members) == ['anc1', 'anc2', 'anc3'] and state.leader == 'anc3'
    assert state.other == {'members/anc1/extra': 'nested', 'something': 'new in a later Patroni'}
    assert parse(keys, 'legacy').leader == 'leg1'


def test_parse_namespace_groups_every_scope(k415, k302):
    states = parse_namespace(dict(k415, **k302), '/service')
    assert sorted(states) == ['anchor', 'legacy']
    assert states['anchor'].to_dict() == parse(k415).to_dict()
    assert states['legacy'].primary().name == 'leg1'
    assert parse_namespace({'/elsewhere/x/leader': 'a'}, '/service') == {}


# ---------------------------------------------------------------- the lag

def test_lag_by_hand_leader_one_loop_ahead(k415, k415_sync):
    # The sync fixture's leader position with the other fixture's replicas: 96 bytes behind.
    keys = dict(k415)
    keys[ANCHOR + 'members/anc3'] = k415_sync[ANCHOR + 'members/anc3']
    state = parse(keys)
    assert state.leader_lsn == LSN_415_SYNC == 68248920
    assert [(m.lag, m.xlog_lag) for m in state.replicas()] == [(96, 96), (96, 96)]
    assert names(state.replicas(max_lag_bytes=96)) == ['anc1', 'anc2']
    assert state.replicas(max_lag_bytes=95) == []


def test_lag_counts_replay_not_receive(k415_sync):
    # Received up to the leader, replayed 96 bytes less: xlog_location (max of both) shows no lag.
    keys = edit_member(k415_sync, 'anc1', replay_lsn=LSN_415, receive_lsn=LSN_415_SYNC, xlog_location=LSN_415_SYNC)
    anc1 = parse(keys).member('anc1')
    assert (anc1.lag, anc1.replay_lag, anc1.receive_lag, anc1.xlog_lag) == (96, 96, 0, 0)


def test_lag_falls_back_to_xlog_location_without_replay_lsn(k415):
    keys = edit_member(k415, 'anc1', drop=('replay_lsn', 'receive_lsn'), xlog_location=LSN_415 - 16 * 1024 * 1024)
    anc1 = parse(keys).member('anc1')
    assert (anc1.lag, anc1.xlog_lag, anc1.replay_lag, anc1.receive_lag) == (16777216, 16777216, None, None)


def test_max_lag_filter(k415):
    keys = edit_member(k415, 'anc2', replay_lsn=LSN_415 - 1048577, receive_lsn=LSN_415, xlog_location=LSN_415)
    state = parse(keys)
    assert state.member('anc2').lag == 1048577
    assert names(state.replicas(max_lag_bytes=1048576)) == ['anc1']
    assert names(state.replicas(max_lag_bytes=1048577)) == ['anc1', 'anc2']
    assert names(state.replicas()) == ['anc1', 'anc2']


def test_replica_ahead_of_the_leader_position_has_zero_lag(k415):
    keys = edit_member(k415, 'anc1', replay_lsn=LSN_415 + 500, receive_lsn=LSN_415 + 500, xlog_location=LSN_415 + 500)
    assert parse(keys).member('anc1').lag == 0


def test_status_optime_is_the_reference_when_the_leader_reports_no_position(k415):
    keys = edit_member(k415, 'anc3', drop=('xlog_location',), state='starting')
    keys[ANCHOR + 'status'] = json.dumps({'optime': LSN_415 + 4096})
    state = parse(keys)
    assert (state.leader_lsn, state.lag_reference) == (LSN_415 + 4096, 'status')
    assert state.member('anc1').lag == 4096


def test_legacy_optime_leader_key(k415):
    del k415[ANCHOR + 'status']
    k415[ANCHOR + 'optime/leader'] = str(LSN_415 + 8)
    edit_member(k415, 'anc3', drop=('xlog_location',))
    state = parse(k415)
    assert (state.status.present, state.status.legacy, state.status.optime) == (True, True, LSN_415 + 8)
    assert state.member('anc1').lag == 8 and 'optime/leader' not in state.other


def test_no_reference_position_means_unknown_lag(k415):
    del k415[ANCHOR + 'status']
    keys = edit_member(k415, 'anc3', drop=('xlog_location',))
    state = parse(keys)
    assert state.leader_lsn is None and state.lag_reference is None
    assert [m.lag for m in state.members] == [None, None, None]
    assert names(state.replicas()) == ['anc1', 'anc2'] and state.replicas(max_lag_bytes=10 ** 12) == []


def test_other_timeline_means_unknown_lag(k415):
    keys = edit_member(k415, 'anc1', timeline=4, replay_lsn=LSN_415 + 100)
    state = parse(keys)
    anc1 = state.member('anc1')
    assert anc1.lag is None and any('timeline 4' in w for w in anc1.warnings)
    assert names(state.replicas(max_lag_bytes=1 << 30)) == ['anc2']


def test_big_lsns(k415):
    big = 0xFFFFFFFF00000000 + 0x10000
    keys = edit_member(k415, 'anc3', xlog_location=big)
    edit_member(keys, 'anc1', replay_lsn=big - 123456789, receive_lsn=big, xlog_location=big)
    edit_member(keys, 'anc2', replay_lsn='FFFFFFFF/0', receive_lsn='FFFFFFFF/10000', xlog_location=str(big))
    state = parse(keys)
    assert state.leader_lsn == big
    assert state.member('anc1').lag == 123456789
    assert (state.member('anc2').replay_lsn, state.member('anc2').lag) == (0xFFFFFFFF00000000, 0x10000)
    json.dumps(state.to_dict())


def test_lsn_helpers():
    assert parse_lsn(0) == 0 and parse_lsn(68248824) == 68248824 and parse_lsn('68248824') == 68248824
    assert parse_lsn('0/4116F18') == 0x4116F18 and parse_lsn('16/B374D848') == 0x16B374D848
    assert parse_lsn('FFFFFFFF/FFFFFFFF') == 0xFFFFFFFFFFFFFFFF and parse_lsn(0xFFFFFFFFFFFFFFFF + 1) is None
    for bad in (-1, True, 1.5, None, '', 'x/y', '1/2/3', '0x10', '1' * 30, [1], {'a': 1}, '١٢'):
        assert parse_lsn(bad) is None, bad
    assert format_lsn(0x16B374D848) == '16/B374D848' and format_lsn(LSN_415) == '0/41164F8'
    assert parse_lsn(format_lsn(LSN_415_SYNC)) == LSN_415_SYNC


# ---------------------------------------------------------------- members not running

@pytest.mark.parametrize('member_state', ['stopped', 'starting', 'crashed', 'restarting', 'creating replica',
                                          'start failed'])
def test_replica_not_running_is_not_served(k415, member_state):
    # Patroni writes no positions for a member that is not running, starting or restarting.
    not_written = ('xlog_location', 'replay_lsn', 'receive_lsn', 'replication_state')
    keys = edit_member(k415, 'anc1', state=member_state, drop=not_written)
    state = parse(keys)
    anc1 = state.member('anc1')
    assert anc1.state == member_state and anc1.running is False and not anc1.invalid
    assert names(state.replicas()) == ['anc2'] and state.primary().name == 'anc3'
    assert anc1.lag is None


@pytest.mark.parametrize('member_state', ['stopped', 'crashed', 'starting', 'stopping'])
def test_leader_not_running_means_no_primary(k415, member_state):
    state = parse(edit_member(k415, 'anc3', state=member_state))
    assert state.leader == 'anc3' and state.leader_member().name == 'anc3' and state.primary() is None
    assert any(('member anc3: holds the leader key but its state is %s' % member_state) == w for w in state.warnings)
    assert names(state.replicas()) == ['anc1', 'anc2']


def test_leader_still_promoting_is_not_a_primary_yet(k415):
    # anc1 got the leader key but its member key still says replica (one loop behind).
    k415[ANCHOR + 'leader'] = 'anc1'
    state = parse(k415)
    assert state.leader_member().name == 'anc1' and state.primary() is None
    assert 'member anc1: holds the leader key but its role is replica' in state.warnings
    assert state.member('anc3').primary_without_leader_key
    assert names(state.replicas()) == ['anc2']


def test_standby_leader_is_not_a_primary(k415):
    keys = edit_member(k415, 'anc3', role='standby_leader')
    keys[ANCHOR + 'config'] = json.dumps({'ttl': 30, 'standby_cluster': {'host': 'far', 'port': 5432}})
    state = parse(keys)
    assert state.member('anc3').role == 'standby_leader' and state.primary() is None
    assert state.config.standby_cluster == {'host': 'far', 'port': 5432} and state.warnings == []


# ---------------------------------------------------------------- tags and restarts

def test_tags(k415):
    edit_member(k415, 'anc1', tags={'nofailover': True, 'clonefrom': True, 'replicatefrom': 'anc2'})
    edit_member(k415, 'anc2', tags={'noloadbalance': True, 'nosync': True, 'nostream': True, 'team': 'db'})
    state = parse(k415)
    anc1, anc2 = state.member('anc1'), state.member('anc2')
    assert (anc1.nofailover, anc1.failover_priority, anc1.clonefrom, anc1.replicatefrom) == (True, 0, True, 'anc2')
    assert (anc2.noloadbalance, anc2.nosync, anc2.nostream, anc2.nofailover) == (True, True, True, False)
    assert anc2.tags == {'noloadbalance': True, 'nosync': True, 'nostream': True, 'team': 'db'}
    assert names(state.replicas()) == ['anc1']
    assert names(state.replicas(include_noloadbalance=True)) == ['anc1', 'anc2']
    assert state.warnings == []


@pytest.mark.parametrize('tags, nofailover, priority', [
    ({}, False, 1),
    ({'failover_priority': 0}, True, 0),
    ({'failover_priority': 5}, False, 5),
    ({'failover_priority': '3'}, False, 3),
    ({'nofailover': False, 'failover_priority': 0}, False, 0),  # an explicit nofailover wins
    ({'nofailover': True, 'failover_priority': 7}, True, 0),
])
def test_failover_priority_as_patroni_reads_it(k415, tags, nofailover, priority):
    member = parse(edit_member(k415, 'anc1', tags=tags)).member('anc1')
    assert (member.nofailover, member.failover_priority) == (nofailover, priority)


def test_string_tags_are_true_as_in_patroni_and_flagged(k415):
    state = parse(edit_member(k415, 'anc1', tags={'noloadbalance': 'false', 'failover_priority': 'high'}))
    anc1 = state.member('anc1')
    assert anc1.noloadbalance is True and anc1.failover_priority == 1
    assert "tag noloadbalance is the string 'false', which Patroni takes as true" in anc1.warnings
    assert "tag failover_priority is not an integer: 'high'" in anc1.warnings


def test_pending_restart(k415):
    reason = {'max_connections': {'old_value': '100', 'new_value': '200'}}
    state = parse(edit_member(k415, 'anc1', pending_restart=True, pending_restart_reason=reason))
    anc1 = state.member('anc1')
    assert anc1.pending_restart is True and anc1.pending_restart_reason == reason
    assert state.member('anc2').pending_restart is False
    assert json.loads(json.dumps(state.to_dict()))['members'][0]['pending_restart_reason'] == reason


def test_scheduled_restart_pause_and_proxy_url(k415):
    restart = {'schedule': '2026-11-26T14:00:00+00:00', 'postmaster_start_time': '2026-11-26 11:58:50 UTC'}
    state = parse(edit_member(k415, 'anc1', scheduled_restart=restart, pause=True, proxy_url='postgres://px:6432/p'))
    anc1 = state.member('anc1')
    assert (anc1.scheduled_restart, anc1.pause, anc1.proxy_url) == (restart, True, 'postgres://px:6432/p')


# ---------------------------------------------------------------- failover requests

def test_scheduled_switchover_in_flight(k415):
    k415[ANCHOR + 'failover'] = json.dumps({'leader': 'anc3', 'member': 'anc1',
                                            'scheduled_at': '2026-11-26T13:00:00+00:00'})
    failover = parse(k415).failover
    assert (failover.present, failover.pending, failover.leader, failover.candidate, failover.scheduled_at) == (
        True, True, 'anc3', 'anc1', '2026-11-26T13:00:00+00:00')


def test_failover_to_a_candidate_only(k415):
    k415[ANCHOR + 'failover'] = '{"member":"anc2"}'
    failover = parse(k415).failover
    assert failover.pending and (failover.leader, failover.candidate, failover.scheduled_at) == (None, 'anc2', None)


def test_failover_legacy_text_and_broken_values(k415):
    k415[ANCHOR + 'failover'] = 'anc3:anc1'
    assert (parse(k415).failover.leader, parse(k415).failover.candidate) == ('anc3', 'anc1')
    k415[ANCHOR + 'failover'] = ''
    assert not parse(k415).failover.pending and not parse(k415).failover.invalid
    k415[ANCHOR + 'failover'] = '{"leader": "anc3"'
    state = parse(k415)
    assert state.failover.invalid and state.failover.reason.startswith('failover is not JSON:')
    assert not state.failover.pending and state.failover.reason in state.warnings
    k415[ANCHOR + 'failover'] = '[1]'
    assert parse(k415).failover.reason == 'failover is a JSON array, not an object'


# ---------------------------------------------------------------- the leader key

def test_no_leader_key(k415):
    del k415[ANCHOR + 'leader']
    state = parse(k415)
    assert state.leader is None and state.leader_member() is None and state.primary() is None
    assert state.warnings[0].startswith('no leader key')
    # anc3's own JSON still says primary: reported, never trusted.
    anc3 = state.member('anc3')
    assert anc3.primary_without_leader_key and not anc3.is_leader
    assert "member anc3: says its role is primary but the leader key does not exist" in state.warnings
    # Reads go on during the leader race; lag is measured against the last status.
    assert names(state.replicas()) == ['anc1', 'anc2'] and state.lag_reference == 'status'
    assert [m.lag for m in state.replicas()] == [0, 0]


def test_leader_key_names_a_member_that_does_not_exist(k415):
    k415[ANCHOR + 'leader'] = 'anc9'
    state = parse(k415)
    assert state.leader == 'anc9' and state.leader_member() is None and state.primary() is None
    assert "leader key names 'anc9' but there is no members/anc9 key" in state.warnings
    assert state.member('anc3').primary_without_leader_key


def test_empty_leader_key(k415):
    k415[ANCHOR + 'leader'] = ''
    state = parse(k415)
    assert state.leader is None and 'leader key is unusable: it is empty' in state.warnings


def test_two_members_claim_primary(k415):
    state = parse(edit_member(k415, 'anc1', role='primary', drop=('replay_lsn', 'receive_lsn', 'replication_state')))
    assert state.primary().name == 'anc3'
    assert [m.name for m in state.members if m.primary_without_leader_key] == ['anc1']
    assert "member anc1: says its role is primary but the leader key names 'anc3'" in state.warnings
    assert names(state.replicas()) == ['anc2']


def test_old_primary_says_master(k415):
    state = parse(edit_member(k415, 'anc2', role='master'))
    assert state.member('anc2').role == 'primary' and state.member('anc2').primary_without_leader_key


def test_sync_key_naming_another_leader(k415_sync):
    k415_sync[ANCHOR + 'sync'] = '{"leader":"anc1","quorum":0,"sync_standby":"anc2"}'
    assert "sync key names leader 'anc1' but the leader key names 'anc3'" in parse(k415_sync).warnings


def test_sync_several_standbys_and_quorum(k415_sync):
    k415_sync[ANCHOR + 'config'] = json.dumps({'ttl': 30, 'synchronous_mode': 'quorum', 'synchronous_node_count': 2})
    k415_sync[ANCHOR + 'sync'] = '{"leader":"anc3","quorum":1,"sync_standby":"anc1, ANC2"}'
    state = parse(k415_sync)
    assert state.config.synchronous_mode == 'quorum' and state.config.synchronous_node_count == 2
    assert (state.sync.sync_standby, state.sync.quorum) == (['anc1', 'ANC2'], 1)
    assert [m.sync_standby for m in state.members] == [True, True, False]


def test_sync_key_ignored_when_synchronous_mode_is_off(k415_sync):
    k415_sync[ANCHOR + 'config'] = '{"ttl":30,"synchronous_mode":false}'
    state = parse(k415_sync)
    assert state.sync.sync_standby == ['anc2'] and not any(m.sync_standby for m in state.members)


def test_sync_null_standby_as_older_patroni_writes(k415_sync):
    k415_sync[ANCHOR + 'sync'] = '{"leader":"anc3","sync_standby":null}'
    sync = parse(k415_sync).sync
    assert (sync.leader, sync.sync_standby, sync.quorum, sync.invalid) == ('anc3', [], 0, False)


# ---------------------------------------------------------------- broken and partial member values

def test_malformed_member_json_is_reported_and_the_rest_parses(k415):
    k415[ANCHOR + 'members/anc1'] = k415[ANCHOR + 'members/anc1'][:57]
    state = parse(k415)
    anc1 = state.member('anc1')
    assert anc1.invalid and anc1.reason.startswith('value is not JSON: ')
    assert anc1.running is False and anc1.role is None and anc1.host is None
    assert state.primary().name == 'anc3' and names(state.replicas()) == ['anc2']
    assert ('member anc1 is invalid: ' + anc1.reason) in state.warnings
    data = json.loads(json.dumps(state.to_dict()))
    assert data['members'][0]['invalid'] is True and data['members'][0]['reason'] == anc1.reason


@pytest.mark.parametrize('value, reason', [
    ('[1, 2]', 'value is a JSON array, not an object'),
    ('42', 'value is a JSON number, not an object'),
    ('"running"', 'value is a JSON string, not an object'),
    ('null', 'value is a JSON null, not an object'),
    ('true', 'value is a JSON boolean, not an object'),
    ('', 'value is empty'),
    ('   ', 'value is empty'),
    (b'{"state": "running", "x": "\xff"}', 'value is not valid UTF-8 (invalid start byte)'),
    ('[' * 100000, 'value is not JSON this parser accepts: nested too deeply'),
])
def test_member_value_that_is_not_an_object(k415, value, reason):
    k415[ANCHOR + 'members/anc2'] = value
    state = parse(k415)
    anc2 = state.member('anc2')
    assert anc2.invalid and anc2.reason == reason
    assert names(state.replicas()) == ['anc1'] and state.primary().name == 'anc3'


def test_invalid_leader_member(k415):
    k415[ANCHOR + 'members/anc3'] = '{"conn_url":'
    state = parse(k415)
    assert state.primary() is None and state.leader_member() is None and state.member('anc3').is_leader
    assert "leader 'anc3' has an invalid member key" in state.warnings
    # No leader position: lag falls back to the status key.
    assert state.lag_reference == 'status' and [m.lag for m in state.replicas()] == [0, 0]


def test_member_with_missing_fields(k415):
    k415[ANCHOR + 'members/anc2'] = '{"state":"running","role":"replica"}'
    k415[ANCHOR + 'members/anc1'] = '{}'
    state = parse(k415)
    anc1, anc2 = state.member('anc1'), state.member('anc2')
    assert not anc2.invalid and anc2.running and anc2.host is None and anc2.port is None and anc2.lag is None
    assert anc2.warnings == ['conn_url is missing']
    assert not anc1.invalid and anc1.role is None and anc1.state is None and not anc1.running
    assert names(state.replicas()) == ['anc2'] and state.replicas(max_lag_bytes=0) == []


def test_member_fields_of_the_wrong_type(k415):
    edit_member(k415, 'anc1', timeline='five', xlog_location=-1, replay_lsn=[1], role=7, tags='nofailover',
                conn_url=5432, api_url='not a url', pending_restart_reason='yes')
    anc1 = parse(k415).member('anc1')
    assert not anc1.invalid
    assert (anc1.timeline, anc1.xlog_location, anc1.replay_lsn, anc1.role, anc1.tags, anc1.conn_url) == (
        None, None, None, None, {}, None)
    assert anc1.api_host is None and anc1.pending_restart_reason is None
    assert sorted(anc1.warnings) == sorted([
        "timeline is not an integer >= 1: 'five'",
        'xlog_location is not an LSN: -1',
        'replay_lsn is not an LSN: [1]',
        'role is not a string: 7',
        'pending_restart_reason is not an object: \'yes\'',
        'conn_url is not a string: 5432',
        "api_url 'not a url' has no usable host and port: not a URL with a host",
        "tags is not an object: 'nofailover'",
    ])
    # The LB never serves it: no role, no address.
    assert 'anc1' not in names(parse(k415).replicas())


def test_lsn_written_as_text(k415):
    anc1 = parse(edit_member(k415, 'anc1', replay_lsn='0/41164F8', receive_lsn=str(LSN_415))).member('anc1')
    assert (anc1.replay_lsn, anc1.receive_lsn, anc1.lag) == (LSN_415, LSN_415, 0)


# ---------------------------------------------------------------- addresses

@pytest.mark.parametrize('conn_url, host, port, database', [
    ('postgres://[fd00::10]:5433/postgres', 'fd00::10', 5433, 'postgres'),
    ('postgres://[::1]/postgres', '::1', 5432, 'postgres'),
    ('postgres://anc1/postgres', 'anc1', 5432, 'postgres'),
    ('postgresql://replicator@anc1:6432/app', 'anc1', 6432, 'app'),
    ('postgres://10.0.0.5:5432', '10.0.0.5', 5432, None),
    ('postgres://ANC1.example.org:5432/postgres', 'anc1.example.org', 5432, 'postgres'),
])
def test_conn_url(k415, conn_url, host, port, database):
    anc1 = parse(edit_member(k415, 'anc1', conn_url=conn_url)).member('anc1')
    assert (anc1.conn_url, anc1.host, anc1.port, anc1.database) == (conn_url, host, port, database)
    assert anc1.warnings == []


@pytest.mark.parametrize('conn_url', ['postgres://anc1:notaport/postgres', 'postgres://anc1:70000/postgres',
                                      'postgres:///postgres', 'anc1:5432', 'postgres://[fd00::1/postgres'])
def test_unusable_conn_url(k415, conn_url):
    anc1 = parse(edit_member(k415, 'anc1', conn_url=conn_url)).member('anc1')
    assert (anc1.host, anc1.port) == (None, None) and not anc1.invalid
    assert anc1.warnings[0].startswith('conn_url %r has no usable host and port' % conn_url)


@pytest.mark.parametrize('api_url, host, port', [
    ('http://[fd00::10]:8008/patroni', 'fd00::10', 8008),
    ('https://anc1/patroni', 'anc1', 443),
    ('http://anc1/patroni', 'anc1', 80),
])
def test_api_url(k415, api_url, host, port):
    anc1 = parse(edit_member(k415, 'anc1', api_url=api_url)).member('anc1')
    assert (anc1.api_host, anc1.api_port) == (host, port)


def test_governor_style_member_value(k415):
    k415[ANCHOR + 'members/anc1'] = 'postgres://repl:pw@anc1:5432/postgres?application_name=http://anc1:8008/patroni'
    anc1 = parse(k415).member('anc1')
    assert (anc1.conn_url, anc1.api_url, anc1.host, anc1.api_port) == (
        'postgres://repl:pw@anc1:5432/postgres', 'http://anc1:8008/patroni', 'anc1', 8008)
    assert anc1.state is None and not anc1.running


# ---------------------------------------------------------------- other cluster keys

def test_config_variants(k415):
    k415[ANCHOR + 'config'] = json.dumps({
        'ttl': '20', 'loop_wait': 5, 'pause': True, 'synchronous_mode': 'on', 'synchronous_mode_strict': True,
        'failsafe_mode': True, 'check_timeline': True, 'retry_timeout': 'soon',
        'postgresql': {'use_pg_rewind': False, 'parameters': {'max_connections': 200, 'wal_level': 'replica'}}})
    state = parse(k415)
    config = state.config
    assert (config.ttl, config.loop_wait, config.retry_timeout, config.effective('retry_timeout')) == (20, 5, None, 10)
    assert (config.paused, config.synchronous_mode, config.synchronous_mode_strict) == (True, True, True)
    assert (config.failsafe_mode, config.check_timeline, config.use_pg_rewind) == (True, True, False)
    assert config.postgresql_parameters == {'max_connections': 200, 'wal_level': 'replica'}
    assert state.warnings == ["config: retry_timeout is not an integer >= 0: 'soon'"]


def test_config_missing_or_broken(k415):
    del k415[ANCHOR + 'config']
    state = parse(k415)
    assert state.config == ClusterConfig() and state.config.effective('loop_wait') == 10
    k415[ANCHOR + 'config'] = '{"ttl": 30,'
    state = parse(k415)
    assert state.config.present and state.config.invalid and state.config.reason.startswith('config is not JSON')
    assert state.config.reason in state.warnings and state.primary().name == 'anc3'


def test_history_with_broken_entries(k415):
    k415[ANCHOR + 'history'] = json.dumps([[1, 100, 'r'], [2, 'x'], 'junk', [3, '0/41164F8', None, None, 'anc1'],
                                           [4, 200]])
    state = parse(k415)
    assert [(h.timeline, h.lsn, h.reason, h.new_leader) for h in state.history] == [
        (1, 100, 'r', None), (3, LSN_415, None, 'anc1'), (4, 200, None, None)]
    assert "history entry 1 is not [timeline, lsn, ...]: [2, 'x']" in state.warnings
    k415[ANCHOR + 'history'] = '{"a": 1}'
    assert parse(k415).history == [] and 'history is a JSON object, not an array' in parse(k415).warnings


def test_status_variants(k415):
    k415[ANCHOR + 'status'] = str(LSN_415)  # the pre-slots form: a bare number
    status = parse(k415).status
    assert (status.legacy, status.optime, status.slots) == (True, LSN_415, None)
    k415[ANCHOR + 'status'] = '{"optime": "x", "slots": "no", "retain_slots": 3}'
    state = parse(k415)
    assert (state.status.optime, state.status.slots, state.status.retain_slots) == (None, None, [])
    assert state.warnings == ["status: optime is not an LSN: 'x'", "status: slots is not an object: 'no'",
                              'status: retain_slots is not an array: 3']
    k415[ANCHOR + 'status'] = '[]'
    assert parse(k415).status.reason == 'status is a JSON array, not an object'


def test_failsafe_key(k415):
    k415[ANCHOR + 'failsafe'] = '{"anc1":"http://anc1:8008/patroni","anc3":"http://anc3:8008/patroni"}'
    assert sorted(parse(k415).failsafe) == ['anc1', 'anc3']
    k415[ANCHOR + 'failsafe'] = 'nope'
    state = parse(k415)
    assert state.failsafe is None and any(w.startswith('failsafe is not JSON') for w in state.warnings)


# ---------------------------------------------------------------- input forms

def as_keyvalues(keys, leases):
    return [KeyValue(k.encode(), v.encode(), create_revision=10 + i, mod_revision=20 + i, version=1,
                     lease=leases.get(k, 0)) for i, (k, v) in enumerate(sorted(keys.items()))]


def without_etcd_metadata(data):
    data = dict(data, leader_lease=None)
    data['members'] = [dict(m, lease=None, mod_revision=None) for m in data['members']]
    return data


def test_keyvalues_carry_leases(k415):
    lease = 7587887049462540553
    kvs = as_keyvalues(k415, {ANCHOR + 'leader': lease, ANCHOR + 'members/anc1': lease + 1,
                              ANCHOR + 'members/anc3': lease})
    state = parse(kvs)
    assert state.leader_lease == lease
    assert [(m.name, m.lease) for m in state.members] == [('anc1', lease + 1), ('anc2', 0), ('anc3', lease)]
    assert all(isinstance(m.mod_revision, int) and m.mod_revision > 20 for m in state.members)
    assert without_etcd_metadata(state.to_dict()) == without_etcd_metadata(parse(k415).to_dict())


def test_pairs_and_bytes(k415):
    pairs = [(k.encode(), v.encode()) for k, v in k415.items()]
    assert parse(pairs).to_dict() == parse(k415).to_dict()


def test_cluster_prefix():
    assert cluster_prefix('/service', 'anchor') == '/service/anchor/'
    assert cluster_prefix('service/', 'anchor') == '/service/anchor/'
    assert cluster_prefix(None, 'anchor') == cluster_prefix('', 'anchor') == '/service/anchor/'
    assert cluster_prefix('/pgha-test/x-1/', '/demo/') == '/pgha-test/x-1/demo/'
    for scope in ('', '/', 'a/b', None, 3):
        with pytest.raises(ValueError, match='invalid Patroni scope'):
            cluster_prefix('/service', scope)


def test_normalize_role():
    assert [normalize_role(r) for r in ('master', 'primary', 'replica', 'standby_leader', 'promoted', '', None, 1)] \
        == ['primary', 'primary', 'replica', 'standby_leader', 'promoted', None, None, None]


def test_read_cluster_state_does_one_prefix_read(k415):
    calls = []

    class Client(object):
        def get_prefix(self, prefix):
            calls.append(prefix)
            return as_keyvalues(k415, {})

    state = read_cluster_state(Client(), '/service', 'anchor')
    assert calls == [ANCHOR] and state.primary().name == 'anc3'


# ---------------------------------------------------------------- robustness

KNOWN_FIELDS = ('conn_url', 'api_url', 'state', 'role', 'version', 'xlog_location', 'replay_lsn', 'receive_lsn',
                'replication_state', 'timeline', 'tags', 'pending_restart', 'pending_restart_reason',
                'scheduled_restart', 'pause', 'proxy_url', 'nofailover', 'failover_priority', 'noloadbalance',
                'leader', 'member', 'scheduled_at', 'sync_standby', 'quorum', 'optime', 'slots', 'retain_slots',
                'ttl', 'loop_wait', 'synchronous_mode', 'postgresql', 'parameters', 'standby_cluster')


def random_json(rng, depth=0):
    kind = rng.randrange(9 if depth < 3 else 6)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.choice([0, -1, 1, 5, 2 ** 64, -2 ** 70, rng.randrange(-10 ** 6, 10 ** 12)])
    if kind == 3:
        return rng.choice([0.5, -3.0, 1e300, 68248824.0])
    if kind == 4:
        return rng.choice(['', 'running', 'primary', 'master', 'replica', 'x' * 300, 'postgres://[::1', '0/1',
                           'FFFFFFFF/FFFFFFFF', '١٢٣', '9' * 5000, 'postgres://a:b@h:1/d', 'http://h:99999/'])
    if kind == 5:
        return ''.join(chr(rng.randrange(1, 0x3000)) for _index in range(rng.randrange(8)))
    if kind in (6, 7):
        return dict((rng.choice(KNOWN_FIELDS + ('x',)), random_json(rng, depth + 1)) for _index in range(rng.randrange(8)))
    return [random_json(rng, depth + 1) for _index in range(rng.randrange(6))]


def check_never_raises(keys, scope='anchor'):
    state = parse(keys, scope)
    json.dumps(state.to_dict())
    state.replicas(max_lag_bytes=1024)
    state.replicas(include_noloadbalance=True)
    state.primary()
    return state


def test_random_bytes_as_any_value_never_raise(k415):
    rng = random.Random(20261126)
    targets = sorted(k415)
    for _round in range(1500):
        keys = dict(k415)
        for key in rng.sample(targets, rng.randrange(1, 4)):
            keys[key] = bytes(rng.randrange(256) for _index in range(rng.randrange(40)))
        check_never_raises(keys)


def test_random_json_as_any_value_never_raise(k415_sync):
    rng = random.Random(5432)
    targets = sorted(k415_sync)
    for _round in range(1500):
        keys = dict(k415_sync)
        for key in rng.sample(targets, rng.randrange(1, 4)):
            keys[key] = json.dumps(random_json(rng))
        state = check_never_raises(keys)
        assert all(m.invalid == (m.reason is not None) for m in state.members)


def test_random_field_values_in_real_members_never_raise(k415):
    rng = random.Random(8008)
    for _round in range(2000):
        keys = dict(k415)
        name = rng.choice(['anc1', 'anc2', 'anc3'])
        data = member_json(keys, name)
        for field in rng.sample(KNOWN_FIELDS, rng.randrange(1, 5)):
            data[field] = random_json(rng)
        keys[ANCHOR + 'members/' + name] = json.dumps(data)
        state = check_never_raises(keys)
        member = state.member(name)
        assert not member.invalid
        assert member.lag is None or member.lag >= 0


def test_truncated_values_never_raise(k415_sync, k302):
    for keys, scope in ((k415_sync, 'anchor'), (k302, 'legacy')):
        for key, value in sorted(keys.items()):
            for cut in range(len(value)):
                check_never_raises(dict(keys, **{key: value[:cut]}), scope)


def test_parse_member_alone():
    member = parse_member('n1', '{"role":"master","state":"running","conn_url":"postgres://n1:5432/postgres"}')
    assert (member.name, member.role, member.running, member.host, member.lease) == ('n1', 'primary', True, 'n1', None)
    assert not member.is_leader  # only the cluster parser knows who holds the leader key


def test_running_member_api_url_prefers_the_named_members_that_run(k415):
    state = parse(k415)
    names = [m.name for m in state.members]
    url = dict((m.name, m.api_url) for m in state.members)
    assert running_member_api_url(state, names[-1]) == url[names[-1]]
    assert running_member_api_url(state) == url[names[0]]
    assert running_member_api_url(state, None, 'no-such-member') == url[names[0]]
    stopped = parse(edit_member(k415, names[-1], state='stopped'))
    assert running_member_api_url(stopped, names[-1]) == url[names[0]]
    for name in names:
        edit_member(k415, name, drop=('api_url',))
    assert running_member_api_url(parse(k415), names[0]) is None
