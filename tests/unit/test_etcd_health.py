"""The member health check shared by etcd_info and etcd_member, against a stand-in client (no etcd)."""

from ansible_collections.pgha.cluster.plugins.module_utils.etcd_errors import EtcdUnreachable
from ansible_collections.pgha.cluster.plugins.module_utils.etcd_health import (
    member_health,
    probe,
    survey,
)
from ansible_collections.pgha.cluster.plugins.module_utils.etcd_membership import UNSTARTED_REASON
from ansible_collections.pgha.cluster.plugins.module_utils.etcd_types import EndpointStatus, Member

LEADER = 0x101


def member(n, started=True, learner=False):
    return Member(id=0x100 + n, name='etcd-%d' % n if started else '', peer_urls=['https://10.0.0.%d:2380' % n],
                  client_urls=['https://10.0.0.%d:2379' % n] if started else [], is_learner=learner)


def status(member_id, leader=LEADER, errors=()):
    return EndpointStatus(endpoint=None, member_id=member_id, version='3.4.23', db_size=1, db_size_in_use=1,
                          leader=leader, raft_index=1, raft_term=1, raft_applied_index=1, is_learner=False,
                          errors=list(errors))


class FakeClient(object):
    """Answers status and /health per URL from tables; a URL missing from ``statuses`` is unreachable."""

    def __init__(self, statuses, unhealthy=(), endpoints=()):
        self.statuses = statuses
        self.unhealthy = set(unhealthy)
        self.endpoints = list(endpoints)
        self.asked = []

    def status(self, url):
        self.asked.append(('status', url))
        if url not in self.statuses:
            raise EtcdUnreachable('etcd at %s is unreachable: connection refused' % url, endpoint=url)
        return self.statuses[url]

    def health(self, url):
        self.asked.append(('health', url))
        if url in self.unhealthy:
            return False, 'etcd at %s is unavailable: HTTP status 503' % url
        return True, ''


def url(n):
    return 'https://10.0.0.%d:2379' % n


def test_a_healthy_member():
    p = probe(FakeClient({url(1): status(0x101)}), url(1))
    assert p.healthy and p.reason == '' and p.error is None and p.status.member_id == 0x101


def test_no_answer_skips_the_health_call():
    client = FakeClient({})
    p = probe(client, url(1))
    assert not p.healthy and p.status is None
    assert p.reason.startswith('no answer: ') and 'connection refused' in p.error
    assert client.asked == [('status', url(1))]


def test_alarms_and_a_missing_leader_are_unhealthy_without_asking_health():
    client = FakeClient({url(1): status(0x101, errors=['memberID:257  alarm:NOSPACE ']),
                         url(2): status(0x102, leader=0)})
    alarm = probe(client, url(1))
    assert not alarm.healthy and alarm.error == 'memberID:257 alarm:NOSPACE'
    assert alarm.reason == 'the member reports: memberID:257 alarm:NOSPACE'
    leaderless = probe(client, url(2))
    assert not leaderless.healthy and leaderless.reason == '%s has no leader' % url(2)
    assert ('health', url(1)) not in client.asked and ('health', url(2)) not in client.asked


def test_health_endpoint_decides_last():
    p = probe(FakeClient({url(1): status(0x101)}, unhealthy=[url(1)]), url(1))
    assert not p.healthy and 'HTTP status 503' in p.reason


def test_survey_of_members_asks_each_advertised_url_once_and_notes_unstarted_members():
    one, two, new = member(1), member(2), member(3, started=False)
    two = two._replace(client_urls=[url(2), url(1)])
    client = FakeClient({url(1): status(0x101), url(2): status(0x102)}, endpoints=['https://elsewhere:2379'])
    probes = survey(client, [one, two, new], 'members')
    assert [(p.url, p.member.id) for p in probes] == [(url(1), one.id), (url(2), two.id), (None, new.id)]
    assert 'has not started yet' in probes[2].reason and probes[2].error == probes[2].reason


def test_survey_of_configured_asks_the_client_endpoints():
    client = FakeClient({url(1): status(0x101)}, endpoints=[url(1), url(2)])
    probes = survey(client, [member(1), member(2)], 'configured')
    assert [(p.url, p.member, p.healthy) for p in probes] == [(url(1), None, True), (url(2), None, False)]


def test_member_health_through_advertised_urls():
    one, two, three, new = member(1), member(2), member(3), member(4, started=False)
    client = FakeClient({url(1): status(0x101), url(2): status(0x999)})
    health, reachable = member_health([one, two, three, new], survey(client, [one, two, three, new], 'members'))
    assert health[one.id].healthy and reachable == {one.id: url(1)}
    assert not health[two.id].healthy and 'answered as member 999, not as this member' in health[two.id].reason
    assert not health[three.id].healthy and url(3) in health[three.id].reason
    assert health[new.id] == (False, UNSTARTED_REASON)


def test_member_health_through_configured_endpoints_only_believes_what_answered():
    one, two, three = member(1), member(2), member(3)
    client = FakeClient({url(1): status(0x101), url(2): status(0x102)}, unhealthy=[url(2)],
                        endpoints=[url(1), url(2), 'https://gone:2379'])
    health, reachable = member_health([one, two, three], survey(client, [one, two, three], 'configured'))
    assert health[one.id].healthy and reachable == {one.id: url(1)}
    assert not health[two.id].healthy and url(2) in health[two.id].reason
    assert not health[three.id].healthy
    assert health[three.id].reason.startswith('not reachable through the configured endpoints; ')
    assert 'https://gone:2379' in health[three.id].reason


def test_a_healthy_url_wins_over_an_unhealthy_one_of_the_same_member():
    one = member(1)._replace(client_urls=[url(1), 'https://10.9.9.1:2379'])
    client = FakeClient({'https://10.9.9.1:2379': status(0x101)})
    health, reachable = member_health([one], survey(client, [one], 'members'))
    assert health[one.id].healthy and reachable[one.id] == 'https://10.9.9.1:2379'
