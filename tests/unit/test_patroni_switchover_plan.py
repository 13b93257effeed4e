"""patroni_switchover_plan: who may be promoted, and what request a switchover/failover becomes.

States are built as Patroni 4.1.5 writes its keys (member JSON as in the live
fixtures), then parsed by patroni_state, the one parser.
"""

import datetime
import json

import pytest

from ansible_collections.pgha.cluster.plugins.module_utils.patroni_state import parse_cluster_state
from ansible_collections.pgha.cluster.plugins.module_utils.patroni_switchover_plan import (
    PlanError,
    describe_members,
    eligibility,
    parse_scheduled_at,
    plan_cancel,
    plan_switchover,
    same_time,
    switch_outcome,
)

P = '/service/pg/'
LSN = 68248920
NOW = datetime.datetime(2030, 1, 1, 12, 0, tzinfo=datetime.timezone.utc)


def member(name, role='replica', state='running', lag=0, **extra):
    data = {'conn_url': 'postgres://%s:5432/postgres' % name, 'api_url': 'http://%s:8008/patroni' % name,
            'state': state, 'role': role, 'version': '4.1.5', 'xlog_location': LSN - lag, 'timeline': 5}
    if role == 'replica':
        data.update(replay_lsn=LSN - lag, receive_lsn=LSN - lag, replication_state='streaming')
    data.update(extra)
    return data


def cluster(members=None, leader='pg1', config=None, sync=None, failover=None):
    """Keys of a 3-member cluster (pg1 primary), with ``members`` {name: member JSON or None} overriding."""
    all_members = {'pg1': member('pg1', role='primary'), 'pg2': member('pg2'), 'pg3': member('pg3')}
    all_members.update(members or {})
    keys = {P + 'config': json.dumps(config if config is not None else {
        'ttl': 30, 'loop_wait': 10, 'retry_timeout': 10, 'maximum_lag_on_failover': 1048576})}
    for name, data in all_members.items():
        if data is not None:
            keys[P + 'members/' + name] = data if isinstance(data, str) else json.dumps(data)
    if leader:
        keys[P + 'leader'] = leader
    if sync is not None:
        keys[P + 'sync'] = json.dumps(sync)
    if failover is not None:
        keys[P + 'failover'] = json.dumps(failover)
    return parse_cluster_state(keys, '/service', 'pg')


# ------------------------------------------------------------------ eligibility, one reason each

def test_healthy_replicas_are_eligible_the_leader_is_not():
    reasons = eligibility(cluster(), 'switchover')
    assert reasons == {'pg1': ['it holds the leader key'], 'pg2': [], 'pg3': []}


@pytest.mark.parametrize('data, reason', [
    (member('pg2', state='stopped'), 'its state is stopped, not running'),
    (member('pg2', state='starting'), 'its state is starting, not running'),
    (member('pg2', tags={'nofailover': True}), 'it is tagged nofailover'),
    (member('pg2', tags={'failover_priority': 0}), 'it is tagged failover_priority 0 (0 or less means never promoted)'),
    (member('pg2', lag=2 * 1048576), 'it is %d bytes behind, more than maximum_lag_on_failover (1048576)'
     % (2 * 1048576)),
    (member('pg2', role='primary'), 'its role is primary, not replica'),
    (member('pg2', role='master'), 'its role is master, not replica'),
    (dict((k, v) for k, v in member('pg2').items() if k != 'api_url'),
     'it advertises no api_url, so Patroni cannot check it'),
    ('not json', None),
])
def test_each_reason_a_member_is_not_eligible(data, reason):
    reasons = eligibility(cluster({'pg2': data}), 'switchover')['pg2']
    if reason is None:
        assert len(reasons) == 1 and reasons[0].startswith('its member key is invalid: ')
    else:
        assert reason in reasons
    assert eligibility(cluster({'pg2': data}), 'switchover')['pg3'] == []


def test_nofailover_false_wins_over_failover_priority_and_small_lag_is_fine():
    state = cluster({'pg2': member('pg2', tags={'nofailover': False, 'failover_priority': 0}),
                     'pg3': member('pg3', lag=1048576)})
    assert eligibility(state, 'switchover') == {'pg1': ['it holds the leader key'], 'pg2': [], 'pg3': []}


def test_unknown_lag_does_not_exclude():
    data = member('pg2')
    for field in ('xlog_location', 'replay_lsn', 'receive_lsn'):
        del data[field]
    state = cluster({'pg2': data})
    assert state.member('pg2').lag is None
    assert eligibility(state, 'switchover')['pg2'] == []


def test_maximum_lag_on_failover_from_config_or_patroni_default():
    lag = 5000
    state = cluster({'pg2': member('pg2', lag=lag)}, config={'ttl': 30, 'maximum_lag_on_failover': 4096})
    assert eligibility(state, 'switchover')['pg2'] == [
        'it is 5000 bytes behind, more than maximum_lag_on_failover (4096)']
    state = cluster({'pg2': member('pg2', lag=lag)}, config={'ttl': 30})
    assert eligibility(state, 'switchover')['pg2'] == []


SYNC_CONFIG = {'ttl': 30, 'loop_wait': 10, 'retry_timeout': 10, 'synchronous_mode': True}


def test_synchronous_mode_switchover_only_to_a_sync_standby_failover_to_any():
    state = cluster(config=SYNC_CONFIG, sync={'leader': 'pg1', 'sync_standby': 'pg2', 'quorum': 0})
    not_sync = 'it is not a synchronous standby, and synchronous_mode allows a switchover only to one'
    assert eligibility(state, 'switchover') == {'pg1': ['it holds the leader key'], 'pg2': [], 'pg3': [not_sync]}
    assert eligibility(state, 'failover')['pg3'] == []
    with pytest.raises(PlanError, match='candidate pg3 cannot be promoted by a switchover: ' + not_sync) as err:
        plan_switchover(state, candidate='pg3')
    assert err.value.members['pg3'] == [not_sync]
    assert plan_switchover(state, candidate='pg2').body == {'leader': 'pg1', 'candidate': 'pg2'}
    # Patroni's /failover may promote an asynchronous replica (it is the caller's choice to lose data).
    assert plan_switchover(state, candidate='pg3', mode='failover').body == {'candidate': 'pg3'}


def test_synchronous_mode_without_sync_standby_has_no_switchover_candidate():
    state = cluster(config=SYNC_CONFIG, sync={'leader': 'pg1', 'sync_standby': None, 'quorum': 0})
    with pytest.raises(PlanError, match='^no member can be promoted by a switchover: pg1: it holds the leader key; '
                                        'pg2: it is not a synchronous standby'):
        plan_switchover(state)


def test_quorum_mode_and_standby_clusters_do_not_restrict_switchovers():
    quorum = dict(SYNC_CONFIG, synchronous_mode='quorum')
    state = cluster(config=quorum, sync={'leader': 'pg1', 'sync_standby': 'pg2', 'quorum': 1})
    assert eligibility(state, 'switchover')['pg3'] == []


# ------------------------------------------------------------------ plans

def test_switchover_to_a_candidate_goes_to_the_leaders_api():
    plan = plan_switchover(cluster(), candidate='pg2', leader='pg1')
    assert (plan.action, plan.leader, plan.candidate, plan.api_url, plan.scheduled_at) == (
        'switchover', 'pg1', 'pg2', 'http://pg1:8008/patroni', None)
    assert plan.body == {'leader': 'pg1', 'candidate': 'pg2'}
    assert plan.message == 'switchover from pg1 to pg2'


def test_switchover_without_candidate_lets_patroni_pick():
    plan = plan_switchover(cluster())
    assert plan.body == {'leader': 'pg1'} and plan.candidate is None


def test_candidate_already_leader_is_nothing_to_do_even_with_another_expected_leader():
    state = cluster({'pg1': member('pg1'), 'pg2': member('pg2', role='primary')}, leader='pg2')
    plan = plan_switchover(state, candidate='pg2', leader='pg1')
    assert (plan.action, plan.body, plan.message) == ('none', None, 'pg2 is already the leader and runs as primary')


def test_expected_leader_mismatch_and_unknown_candidate():
    with pytest.raises(PlanError, match='^the expected leader is pg3 but the leader key names pg1$'):
        plan_switchover(cluster(), candidate='pg2', leader='pg3')
    with pytest.raises(PlanError, match='but no member holds the leader key'):
        plan_switchover(cluster(leader=None), candidate='pg2', leader='pg1')
    with pytest.raises(PlanError, match=r'^candidate pg9 is not a member of cluster pg; members: pg1: it holds the '
                                        r'leader key; pg2: eligible; pg3: eligible$'):
        plan_switchover(cluster(), candidate='pg9')


def test_no_eligible_member_lists_every_member_and_why():
    state = cluster({'pg2': member('pg2', tags={'nofailover': True}), 'pg3': member('pg3', state='stopped')})
    with pytest.raises(PlanError) as err:
        plan_switchover(state)
    assert str(err.value) == ('no member can be promoted by a switchover: pg1: it holds the leader key; '
                              'pg2: it is tagged nofailover; pg3: its state is stopped, not running')
    assert set(err.value.members) == {'pg1', 'pg2', 'pg3'}


def test_auto_mode_fails_over_when_the_leader_is_not_running():
    state = cluster({'pg1': member('pg1', role='primary', state='stopped'), 'pg3': member('pg3', lag=100)})
    plan = plan_switchover(state)
    # Patroni fails over only to a named member: the least lagging eligible one is picked.
    assert (plan.action, plan.candidate, plan.body, plan.api_url) == (
        'failover', 'pg2', {'candidate': 'pg2'}, 'http://pg2:8008/patroni')
    assert plan.message == 'failover to pg2 (the leader pg1 is stopped, not running)'
    with pytest.raises(PlanError, match='no switchover possible: the leader pg1 is stopped, not running; use '
                                        'mode=failover'):
        plan_switchover(state, mode='switchover')


def test_failover_without_leader_key_prefers_failover_priority():
    state = cluster({'pg1': None, 'pg2': member('pg2', tags={'failover_priority': 1}),
                     'pg3': member('pg3', lag=500, tags={'failover_priority': 5})}, leader=None)
    plan = plan_switchover(state)
    assert (plan.action, plan.candidate, plan.leader) == ('failover', 'pg3', None)
    assert plan.message == 'failover to pg3 (no member holds the leader key)'


def test_failover_mode_with_a_running_leader_sends_no_leader():
    plan = plan_switchover(cluster(), candidate='pg3', mode='failover')
    assert (plan.action, plan.body, plan.api_url) == ('failover', {'candidate': 'pg3'}, 'http://pg3:8008/patroni')
    with pytest.raises(PlanError, match='mode must be one of auto, switchover, failover'):
        plan_switchover(cluster(), mode='sideways')


def test_scheduled_switchover_and_its_rules():
    plan = plan_switchover(cluster(), candidate='pg2', scheduled_at='2030-01-01T13:00:00Z', now=NOW)
    assert plan.scheduled_at == '2030-01-01T13:00:00+00:00'
    assert plan.body == {'leader': 'pg1', 'candidate': 'pg2', 'scheduled_at': '2030-01-01T13:00:00+00:00'}
    assert plan.message == 'switchover from pg1 to pg2 at 2030-01-01T13:00:00+00:00'
    with pytest.raises(PlanError, match='Patroni cannot schedule a failover'):
        plan_switchover(cluster(), candidate='pg2', scheduled_at='2030-01-01T13:00:00Z', mode='failover', now=NOW)
    with pytest.raises(PlanError, match='has no time zone'):
        plan_switchover(cluster(), scheduled_at='2030-01-01T13:00:00', now=NOW)
    with pytest.raises(PlanError, match='is in the past'):
        plan_switchover(cluster(), scheduled_at='2029-12-31T23:00:00+00:00', now=NOW)


def test_paused_cluster_rules():
    paused = {'ttl': 30, 'pause': True}
    with pytest.raises(PlanError, match='paused .*only to a named candidate'):
        plan_switchover(cluster(config=paused))
    with pytest.raises(PlanError, match='paused .*schedules no switchover'):
        plan_switchover(cluster(config=paused), candidate='pg2', scheduled_at='2030-01-01T13:00:00Z', now=NOW)
    assert plan_switchover(cluster(config=paused), candidate='pg2').action == 'switchover'


def test_pending_scheduled_switchover_identical_is_nothing_other_is_an_error():
    pending = {'leader': 'pg1', 'member': 'pg2', 'scheduled_at': '2030-01-01T13:00:00+00:00'}
    state = cluster(failover=pending)
    plan = plan_switchover(state, candidate='pg2', scheduled_at='2030-01-01T14:00:00+01:00', now=NOW)
    assert (plan.action, plan.scheduled_at) == ('none', '2030-01-01T13:00:00+00:00')
    with pytest.raises(PlanError, match=r'another switchover is already pending \(leader pg1, candidate pg2, '
                                        r'scheduled at 2030-01-01T13:00:00\+00:00\); cancel it first'):
        plan_switchover(state, candidate='pg3', scheduled_at='2030-01-01T13:00:00Z', now=NOW)
    with pytest.raises(PlanError, match='already pending'):
        plan_switchover(state, candidate='pg2', now=NOW)
    # Patroni empties the key to {} when a switchover is done or cancelled.
    assert plan_switchover(cluster(failover={}), candidate='pg2').action == 'switchover'


def test_cancel_plans():
    pending = {'leader': 'pg1', 'member': 'pg2', 'scheduled_at': '2030-01-01T13:00:00+00:00'}
    plan = plan_cancel(cluster(failover=pending))
    assert (plan.action, plan.api_url, plan.scheduled_at, plan.candidate) == (
        'cancel', 'http://pg1:8008/patroni', '2030-01-01T13:00:00+00:00', 'pg2')
    assert plan_cancel(cluster()).action == 'none'
    # An immediate request in flight is not "scheduled": there is nothing to cancel.
    assert plan_cancel(cluster(failover={'leader': 'pg1', 'member': 'pg2'})).action == 'none'
    # The leader down: any running member's API will do.
    down = cluster({'pg1': member('pg1', role='primary', state='stopped')}, failover=pending)
    assert plan_cancel(down).api_url == 'http://pg2:8008/patroni'


def test_switch_outcome():
    before = cluster()
    assert switch_outcome(before, 'pg1', 'pg2') is None
    after = cluster({'pg1': member('pg1'), 'pg2': member('pg2', role='primary')}, leader='pg2')
    assert switch_outcome(after, 'pg1', 'pg2') == ('pg2', None)
    assert switch_outcome(after, 'pg1', None) == ('pg2', None)
    assert switch_outcome(after, 'pg1', 'pg3') == ('pg2', 'Patroni promoted pg2 instead of the candidate pg3')
    # The leader key moved but the member key still says replica: not done yet.
    moving = cluster({'pg1': member('pg1')}, leader='pg2')
    assert switch_outcome(moving, 'pg1', 'pg2') is None


def test_scheduled_at_parsing():
    assert parse_scheduled_at('2030-01-01T15:00:00.5+02:00', NOW).isoformat() == '2030-01-01T15:00:00.500000+02:00'
    for bad in ('', None, 'tomorrow', '2030-13-01T00:00:00Z'):
        with pytest.raises(ValueError, match='ISO 8601'):
            parse_scheduled_at(bad, NOW)
    assert same_time('2030-01-01T13:00:00Z', '2030-01-01T14:00:00+01:00')
    assert not same_time('2030-01-01T13:00:00Z', '2030-01-01T13:00:01Z')
    assert not same_time('junk', '2030-01-01T13:00:00Z')


def test_describe_members_of_an_empty_cluster():
    assert describe_members({}) == 'the cluster has no member keys'
