"""MemberTask (the work of etcd_member) against a scripted stand-in client: retries, refusals, results.

The real module runs against real etcd clusters in tests/integration/test_module_etcd_member.py; these
tests pin the decisions that need etcd to misbehave on cue (refusals, lost replies, timeouts).
"""

import pytest

from ansible_collections.pgha.cluster.plugins.module_utils import etcd_errors as e
from ansible_collections.pgha.cluster.plugins.module_utils.etcd_member_task import (
    POLL_SECONDS,
    MemberTask,
    MemberTaskFailed,
    checked_peer_urls,
)
from ansible_collections.pgha.cluster.plugins.module_utils.etcd_types import EndpointStatus, Member


def member(n, learner=False, started=True):
    return Member(id=0x100 + n, name='etcd-%d' % n if started else '', peer_urls=['https://10.0.0.%d:2380' % n],
                  client_urls=['https://10.0.0.%d:2379' % n] if started else [], is_learner=learner)


def refusal(message, code=9, status=412):
    return e.error_from_reply('https://10.0.0.1:2379', status, {'error': message, 'message': message, 'code': code})


UNHEALTHY = ('etcdserver: unhealthy cluster', 14, 503)


class Clock(object):
    def __init__(self):
        self.now = 0.0
        self.sleeps = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


class FakeClient(object):
    """A cluster of ``members``; member changes answer from ``script`` (an exception is raised, else applied)."""

    endpoints = ['https://10.0.0.1:2379']

    def __init__(self, members, script=(), down=()):
        self.member_list = list(members)
        self.script = list(script)
        self.down = set(down)
        self.calls = []

    def members(self):
        return list(self.member_list)

    def _next(self, name):
        self.calls.append(name)
        if self.script:
            outcome = self.script.pop(0)
            if isinstance(outcome, Exception):
                raise outcome
            if outcome == 'applied-but-lost':
                return True
        return False

    def member_add(self, peer_urls, is_learner=False):
        new = Member(id=0x999, name='', peer_urls=list(peer_urls), client_urls=[], is_learner=is_learner)
        lost = self._next('add')
        self.member_list.append(new)
        if lost:
            raise refusal('etcdserver: request timed out', 14, 503)
        return new, self.members()

    def member_remove(self, member_id):
        self._next('remove')
        self.member_list = [m for m in self.member_list if m.id != member_id]
        return self.members()

    def member_promote(self, member_id):
        self._next('promote')
        self.member_list = [m._replace(is_learner=False) if m.id == member_id else m for m in self.member_list]
        return self.members()

    def status(self, url=None):
        if url is not None and url in self.down:
            raise e.EtcdUnreachable('etcd at %s is unreachable: connection refused' % url, endpoint=url)
        owner = next((m for m in self.member_list if url in m.client_urls), self.member_list[0])
        return EndpointStatus(endpoint=url, member_id=owner.id, version='3.4.23', db_size=1, db_size_in_use=1,
                              leader=self.member_list[0].id, raft_index=1, raft_term=1, raft_applied_index=1,
                              is_learner=owner.is_learner, errors=[])

    def health(self, url=None):
        return True, ''

    def close(self):
        pass


def params(**overrides):
    values = {'name': 'etcd-4', 'peer_urls': ['https://10.0.0.4:2380'], 'state': 'present', 'learner': True,
              'promote': True, 'wait_timeout': 5.0, 'health_check': 'members'}
    values.update(overrides)
    return values


def task(client, check_mode=False, **overrides):
    p = params(**overrides)
    clock = Clock()
    warnings = []
    t = MemberTask(client, p, checked_peer_urls(p), connect=lambda url: client, warn=warnings.append,
                   check_mode=check_mode, diff=True, clock=clock, sleep=clock.sleep)
    return t, clock, warnings


THREE = [member(1), member(2), member(3)]


def test_parameters_are_checked_and_urls_made_canonical():
    assert checked_peer_urls(params(peer_urls=['HTTPS://Node4:2380/', 'https://node4:2380'])) == ['https://node4:2380']
    for bad, fragment in ((dict(name=' '), 'name must not be empty'), (dict(wait_timeout=-1), 'negative'),
                          (dict(peer_urls=[]), 'at least one URL'), (dict(peer_urls=['node4']), 'invalid peer URL')):
        with pytest.raises(ValueError, match=fragment):
            checked_peer_urls(params(**bad))
    assert checked_peer_urls(params(state='absent', peer_urls=None)) == []


def test_add_retries_passing_refusals_until_etcd_accepts():
    client = FakeClient(THREE, script=[refusal('etcdserver: leader changed', 14, 503),
                                       refusal('etcdserver: too many requests', 8, 429)])
    t, clock, dummy = task(client)
    result = t.run()
    assert result['action'] == 'added' and result['changed'] is True
    assert client.calls == ['add', 'add', 'add'] and clock.sleeps == [POLL_SECONDS, POLL_SECONDS]
    assert result['initial_cluster'].endswith('etcd-4=https://10.0.0.4:2380')


def test_a_lost_reply_is_found_in_the_member_list_and_not_sent_again():
    client = FakeClient(THREE, script=['applied-but-lost'])
    t, clock, dummy = task(client)
    assert t.run()['action'] == 'added'
    assert client.calls == ['add'] and clock.sleeps == []


def test_peer_urls_taken_by_our_own_earlier_request_count_as_added():
    client = FakeClient(THREE)
    late = Member(0x999, '', ['https://10.0.0.4:2380'], [], True)  # not listed when the task looks

    def refuse_and_appear(peer_urls, is_learner=False):
        client.member_list.append(late)
        raise refusal('etcdserver: Peer URLs already exists')

    client.member_add = refuse_and_appear
    t, dummy, dummy = task(client)
    assert t.run()['member']['id'] == '999'


def test_other_refusals_are_raised_at_once():
    client = FakeClient(THREE, script=[refusal('etcdserver: too many learner members in cluster')])
    client.member_list.append(member(5, learner=True))
    t, clock, dummy = task(client)
    with pytest.raises(e.EtcdTooManyLearners, match='promote or remove etcd-5'):
        t.run()
    assert clock.sleeps == []


def test_retries_end_at_wait_timeout_with_the_last_refusal():
    client = FakeClient(THREE, script=[refusal('etcdserver: leader changed', 14, 503)] * 100)
    t, clock, dummy = task(client, wait_timeout=2.0)
    with pytest.raises(MemberTaskFailed, match=r'etcd kept refusing to add etcd-4 for 2.0s \(wait_timeout\): '
                                               r'.*leader changed') as failed:
        t.run()
    assert failed.value.result['changed'] is False and len(failed.value.result['members']) == 3
    assert clock.now >= 2.0


def test_strict_check_refusal_names_the_disconnected_voter_at_once():
    client = FakeClient(THREE, script=[refusal(*UNHEALTHY)], down=['https://10.0.0.3:2379'])
    t, clock, dummy = task(client)
    with pytest.raises(MemberTaskFailed, match='strict reconfiguration check') as failed:
        t.run()
    assert 'etcd-3 (id 103): no answer:' in failed.value.msg and clock.sleeps == []
    assert [h['healthy'] for h in failed.value.result['health']] == [True, True, False]


def test_strict_check_refusal_is_retried_while_every_voter_looks_connected():
    client = FakeClient(THREE, script=[refusal(*UNHEALTHY)])
    t, clock, dummy = task(client)
    assert t.run()['action'] == 'added' and clock.sleeps == [POLL_SECONDS]


def test_removal_refused_when_quorum_would_be_lost_and_allowed_otherwise():
    client = FakeClient(THREE, down=['https://10.0.0.3:2379'])
    t, dummy, dummy = task(client, name='etcd-1', state='absent', peer_urls=None)
    with pytest.raises(MemberTaskFailed, match='refusing to remove etcd-1') as failed:
        t.run()
    assert failed.value.result['action'] == 'none' and client.calls == []
    t, dummy, dummy = task(client, name='etcd-3', state='absent', peer_urls=None)
    result = t.run()
    assert result['action'] == 'removed' and client.calls == ['remove']
    assert 'etcd-3' in result['diff']['before']['members'] and 'etcd-3' not in result['diff']['after']['members']


def test_removing_a_member_already_gone_reports_nothing_to_do():
    client = FakeClient(THREE)
    t, dummy, dummy = task(client, name='etcd-9', state='absent', peer_urls=None)
    result = t.run()
    assert (result['changed'], result['action'], result['member']) == (False, 'none', None) and client.calls == []
    assert result['removed'] is False and result['matched_by'] == [] and 'nothing to remove' in result['msg']


def test_a_member_named_otherwise_is_removed_by_its_peer_url():
    client = FakeClient(THREE)
    t, dummy, warnings = task(client, name='etcd-3-renamed', state='absent', peer_urls=['https://10.0.0.3:2380'])
    result = t.run()
    assert result['removed'] is True and result['matched_by'] == ['peer_urls'] and client.calls == ['remove']
    assert result['member']['name'] == 'etcd-3' and [m['name'] for m in result['members']] == ['etcd-1', 'etcd-2']
    assert any('no member is named etcd-3-renamed' in w for w in warnings)


def test_a_removal_refused_for_ambiguity_says_nothing_was_removed():
    client = FakeClient(THREE)
    t, dummy, dummy = task(client, name='etcd-1', state='absent', peer_urls=['https://10.0.0.2:2380'])
    with pytest.raises(MemberTaskFailed, match='not guessing') as failed:
        t.run()
    assert failed.value.result['removed'] is False and client.calls == []


def test_check_mode_changes_nothing():
    client = FakeClient(THREE)
    t, dummy, dummy = task(client, check_mode=True)
    result = t.run()
    assert result['action'] == 'added' and result['member']['id'] is None and client.calls == []


def test_promotion_waits_for_the_learner_to_catch_up():
    started = member(4, learner=True)
    client = FakeClient(THREE + [started], script=[refusal('etcdserver: can only promote a learner member which is '
                                                           'in sync with leader')])
    t, clock, dummy = task(client)
    result = t.run()
    assert result['action'] == 'promoted' and result['member']['is_learner'] is False
    assert client.calls == ['promote', 'promote'] and clock.sleeps == [POLL_SECONDS]


def test_promotion_of_a_learner_that_never_starts_fails_with_its_initial_cluster():
    unstarted = Member(0x104, '', ['https://10.0.0.4:2380'], [], True)
    t, clock, dummy = task(FakeClient(THREE + [unstarted]), wait_timeout=1.0)
    with pytest.raises(MemberTaskFailed, match='was not promoted within 1.0s') as failed:
        t.run()
    assert failed.value.result['initial_cluster'].endswith('etcd-4=https://10.0.0.4:2380')
    assert failed.value.result['initial_cluster_state'] == 'existing'


def test_a_learner_is_never_updated():
    learner = member(4, learner=True)
    t, dummy, dummy = task(FakeClient(THREE + [learner]), peer_urls=['https://10.0.0.44:2380'])
    with pytest.raises(MemberTaskFailed, match='does not update learners'):
        t.run()
