"""patroni_restart: which members restart and in which order, when Patroni has applied a configuration,
and the run against a stand-in for the members' REST APIs that behaves as Patroni 4.1 does.

States are built as Patroni 4.1.5 writes its keys, then parsed by patroni_state, the one parser.
"""

import json

import pytest

from ansible_collections.pgha.cluster.plugins.module_utils.patroni_rest import PatroniAnswer, PatroniRestError
from ansible_collections.pgha.cluster.plugins.module_utils.patroni_restart import (
    ConfigApplied,
    PendingRestarts,
    RestartError,
    first_pass,
    pending_from,
    replayed,
    second_pass,
    settled,
)
from ansible_collections.pgha.cluster.plugins.module_utils.patroni_state import parse_cluster_state

P = '/service/pg/'
CONFIG = {'ttl': 30, 'loop_wait': 10, 'retry_timeout': 10}


def keys(members, leader='pg1', config=None):
    """Keys of a cluster: ``members`` maps name -> extra member fields (or a raw string)."""
    out = {P + 'config': json.dumps(config or CONFIG)}
    for name, extra in members.items():
        if isinstance(extra, str):
            out[P + 'members/' + name] = extra
            continue
        data = {'api_url': 'http://%s:8008/patroni' % name, 'state': 'running',
                'role': 'primary' if name == leader else 'replica', 'xlog_location': 100, 'timeline': 1}
        data.update(extra)
        out[P + 'members/' + name] = json.dumps(data)
    if leader:
        out[P + 'leader'] = leader
    return out


def state_of(members, leader='pg1', config=None):
    return parse_cluster_state(keys(members, leader, config), '/service', 'pg')


# ------------------------------------------------------------------ decisions

def test_first_pass_restarts_replicas_by_name_then_the_leader():
    state = state_of({'pg1': {}, 'pg3': {}, 'pg2': {}, 'pg4': {}})
    assert first_pass(state, {'pg1', 'pg2', 'pg3'}) == ['pg2', 'pg3', 'pg1']
    assert first_pass(state, {'pg1'}) == ['pg1']
    assert first_pass(state, set()) == []


def test_members_not_in_etcd_or_invalid_are_left_out():
    state = state_of({'pg1': {}, 'pg2': 'not json'})
    assert first_pass(state, {'pg1', 'pg2', 'pg9'}) == ['pg1']


def test_second_pass_never_restarts_the_leader_again():
    state = state_of({'pg1': {}, 'pg2': {}, 'pg3': {}})
    assert second_pass(state, {'pg1', 'pg3', 'pg2'}) == ['pg2', 'pg3']


def test_pending_comes_from_the_members_own_api_and_from_etcd_when_it_does_not_answer():
    state = state_of({'pg1': {'pending_restart': True}, 'pg2': {'pending_restart': False}, 'pg3': {}})
    statuses = {'pg1': {'state': 'running'}, 'pg2': None, 'pg3': {'pending_restart': True}}
    assert pending_from(state, statuses) == {'pg3'}
    assert pending_from(state, {}) == {'pg1'}


@pytest.mark.parametrize('status, position, expected', [
    ({'xlog': {'replayed_location': 200}}, 200, True),
    ({'xlog': {'replayed_location': 199}}, 200, False),
    ({'xlog': {'replayed_location': 199}}, None, True),
    ({'xlog': {}}, 200, True),
    (None, 200, True),
])
def test_replayed(status, position, expected):
    assert replayed(status, position) is expected


def test_settled_needs_a_primary_and_no_pending_member():
    assert settled(state_of({'pg1': {}, 'pg2': {}}))
    assert not settled(state_of({'pg1': {}, 'pg2': {'pending_restart': True}}))
    assert not settled(state_of({'pg1': {}, 'pg2': {}}, leader=None))


def test_config_applied_needs_the_config_and_then_a_later_read_of_etcd():
    tracker = ConfigApplied(CONFIG)
    assert tracker.update('pg1', {'ttl': 20}, {'dcs_last_seen': 5}) is False
    assert tracker.update('pg1', CONFIG, {'dcs_last_seen': 6}) is False  # read, maybe not applied yet
    assert tracker.update('pg1', CONFIG, {'dcs_last_seen': 6}) is False
    assert tracker.update('pg1', CONFIG, {'dcs_last_seen': 7}) is True  # a later cycle: applied
    # Another member is tracked on its own; a config it no longer shows starts over.
    assert tracker.update('pg2', CONFIG, {'dcs_last_seen': 7}) is False
    assert tracker.update('pg2', {'ttl': 20}, {'dcs_last_seen': 8}) is False
    assert tracker.update('pg2', CONFIG, {'dcs_last_seen': 9}) is False
    assert tracker.update('pg2', CONFIG, {'dcs_last_seen': 10}) is True


def test_config_applied_is_unknown_without_dcs_last_seen():
    tracker = ConfigApplied(CONFIG)
    assert tracker.update('pg1', CONFIG, {'state': 'running'}) is None
    assert tracker.update('pg1', CONFIG, {'dcs_last_seen': True}) is None


# ------------------------------------------------------------------ the run, against a stand-in

class FakeCluster(object):
    """Members' REST APIs and etcd as Patroni 4.1 shows them.

    ``lowering``: the change lowers max_connections, so a replica restarted before it has replayed the
    restarted primary's position stays pending (Patroni starts it with pg_controldata's higher value).
    Each call to ``tick`` is one Patroni cycle: members read and apply the config, etcd catches up.
    """

    def __init__(self, pending=(), leader='pg1', names=('pg1', 'pg2', 'pg3'), lowering=False,
                 report_last_seen=True):
        self.leader = leader
        self.names = list(names)
        self.pending = set(pending)
        self.etcd_pending = set(pending)
        self.lowering = lowering
        self.report_last_seen = report_last_seen
        self.primary_position = 1000
        self.primary_restarted_at = None
        self.replayed = dict((n, 1000) for n in names)
        self.config = dict(CONFIG)
        self.member_config = dict((n, dict(CONFIG)) for n in names)
        self.last_seen = dict((n, 100) for n in names)
        self.requests = []
        self.refuse = {}
        self.down = set()
        self.time = 0.0
        self.sleeps = []

    # etcd
    def read_state(self):
        members = dict((n, {'pending_restart': n in self.etcd_pending}) for n in self.names)
        return state_of(members, self.leader, self.config)

    # the REST client
    @staticmethod
    def name_of(api_url):
        return api_url.split('//')[1].split(':')[0]

    def url(self, api_url, path):
        return 'http://%s:8008%s' % (self.name_of(api_url), path)

    def patroni(self, api_url):
        name = self.name_of(api_url)
        if name in self.down:
            raise PatroniRestError('unreachable')
        status = {'state': 'running', 'role': 'primary' if name == self.leader else 'replica',
                  'xlog': {'location': self.primary_position} if name == self.leader
                  else {'replayed_location': self.replayed[name]}}
        if self.report_last_seen:
            status['dcs_last_seen'] = self.last_seen[name]
        if name in self.pending:
            status['pending_restart'] = True
        return status

    def get(self, api_url, path):
        assert path == '/config'
        return self.member_config[self.name_of(api_url)]

    def request(self, api_url, method, path, body=None, timeout=None):
        name = self.name_of(api_url)
        self.requests.append((method, path, name, body, timeout))
        if name in self.refuse:
            if self.refuse[name][0] == 503:  # what Patroni says when it is not pending
                self.pending.discard(name)
            return PatroniAnswer(self.refuse[name][0], self.refuse[name][1], self.refuse[name][1], False)
        if name not in self.pending:
            return PatroniAnswer(503, 'restart conditions are not satisfied', 'restart conditions are not satisfied',
                                 False)
        self.pending.discard(name)
        if name == self.leader:
            self.primary_position += 100
            self.primary_restarted_at = self.primary_position
        elif self.lowering and (self.primary_restarted_at is None or self.replayed[name] < self.primary_restarted_at):
            self.pending.add(name)
        return PatroniAnswer(200, 'restarted successfully', 'restarted successfully', False)

    # time
    def clock(self):
        return self.time

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.time += seconds
        self.tick()

    def tick(self):
        for name in self.names:
            self.member_config[name] = dict(self.config)
            self.last_seen[name] += 1
            self.replayed[name] = self.primary_position
        self.etcd_pending = set(self.pending)

    def restarts(self):
        return [name for method, path, name, body, timeout in self.requests if path == '/restart']


def runner(fake, timeout=30):
    return PendingRestarts(fake, fake.read_state, timeout, clock=fake.clock, sleep=fake.sleep)


def test_nothing_pending_restarts_nothing():
    fake = FakeCluster()
    assert runner(fake).run(wait_for_config=False) == {'pending': [], 'restarted': []}
    assert fake.requests == []


def test_raising_a_setting_restarts_replicas_first_then_the_leader_once():
    fake = FakeCluster(pending=('pg1', 'pg2', 'pg3'))
    result = runner(fake, timeout=60).run(wait_for_config=False)
    assert result == {'pending': ['pg1', 'pg2', 'pg3'], 'restarted': ['pg2', 'pg3', 'pg1']}
    assert fake.requests[0] == ('POST', '/restart', 'pg2', {'restart_pending': True}, 60)
    assert fake.etcd_pending == set()


def test_lowering_a_setting_restarts_the_replicas_again_once_they_replayed_the_primary():
    fake = FakeCluster(pending=('pg1', 'pg2', 'pg3'), lowering=True)
    result = runner(fake).run(wait_for_config=False)
    assert result['restarted'] == ['pg2', 'pg3', 'pg1', 'pg2', 'pg3']
    assert fake.pending == set() and fake.etcd_pending == set()


def test_check_mode_reports_the_first_pass_and_sends_nothing():
    fake = FakeCluster(pending=('pg1', 'pg3'))
    result = runner(fake).run(wait_for_config=False, check_mode=True)
    assert result == {'pending': ['pg1', 'pg3'], 'restarted': ['pg3', 'pg1']}
    assert fake.requests == []


def test_the_members_own_api_says_whether_it_is_pending_not_etcd():
    fake = FakeCluster(pending=('pg2',))
    fake.etcd_pending.add('pg3')  # one cycle late
    result = runner(fake).run(wait_for_config=False)
    assert result == {'pending': ['pg2'], 'restarted': ['pg2']} and fake.restarts() == ['pg2']


def test_a_member_no_longer_pending_when_asked_is_not_counted():
    fake = FakeCluster(pending=('pg2', 'pg3'))
    fake.refuse['pg2'] = (503, 'restart conditions are not satisfied')
    result = runner(fake).run(wait_for_config=False)
    assert result['restarted'] == ['pg3'] and fake.restarts() == ['pg2', 'pg3']


def test_a_refused_restart_fails_and_names_what_was_restarted():
    fake = FakeCluster(pending=('pg1', 'pg2', 'pg3'))
    fake.refuse['pg3'] = (500, 'restart failed')
    with pytest.raises(RestartError) as err:
        runner(fake).run(wait_for_config=False)
    assert str(err.value) == ('Patroni REST API at http://pg3:8008/restart refused to restart PostgreSQL of pg3 '
                              '(HTTP 500): restart failed')
    assert err.value.restarted == ['pg2']


def test_a_member_that_does_not_come_back_times_out():
    fake = FakeCluster(pending=('pg2',))
    real_request = fake.request

    def request(*args, **kwargs):
        answer = real_request(*args, **kwargs)
        fake.down.add('pg2')
        return answer

    fake.request = request
    with pytest.raises(RestartError) as err:
        runner(fake, timeout=5).run(wait_for_config=False)
    assert str(err.value) == 'timed out after 5 s waiting for PostgreSQL of pg2 to run again under a primary'
    assert err.value.restarted == ['pg2']


def test_waits_until_every_member_applied_the_new_config_before_it_looks():
    fake = FakeCluster()
    fake.config = dict(CONFIG, loop_wait=5)
    fake.pending = set()

    real_tick = fake.tick

    def tick():
        # The new config only makes pg2 pending once pg2 has applied it (one cycle after reading it).
        applied = fake.member_config['pg2'] == fake.config
        real_tick()
        if applied:
            fake.pending.add('pg2')

    fake.tick = tick
    result = runner(fake).run()
    assert result['restarted'] == ['pg2']
    assert len(fake.sleeps) >= 2


def test_without_dcs_last_seen_one_bounded_wait_replaces_the_tracking():
    fake = FakeCluster(pending=('pg2',), report_last_seen=False)
    assert runner(fake).run()['restarted'] == ['pg2']
    assert fake.sleeps[0] == 2 * CONFIG['loop_wait'] + 2


def test_a_member_that_never_applies_the_config_times_out_and_is_named():
    fake = FakeCluster()
    fake.config = dict(CONFIG, loop_wait=5)
    fake.tick = lambda: None
    with pytest.raises(RestartError) as err:
        runner(fake, timeout=3).run()
    assert str(err.value) == ('timed out after 3 s waiting for every running member to apply the dynamic '
                              'configuration in etcd; still waiting for pg1, pg2, pg3')
