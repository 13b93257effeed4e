"""pgha.cluster.etcd_member against real etcd clusters.

Every test runs on a private cluster (membership changes would spoil the shared
ones).  New members are real etcd processes started with the module's
``initial_cluster`` and ``--initial-cluster-state existing``; what the module
reports is checked against etcdctl (and the PyPI etcd3 library).

Clusters that test the module's own refusals run with etcd's
``--strict-reconfig-check=false``: etcd then accepts whatever it is asked, so a
refusal can only come from the module.  The other clusters keep etcd's
defaults, so the module also meets etcd's own "unhealthy cluster" answers for a
few seconds after members (re)connect.
"""

import json
import shutil
import threading
import time

import pytest
from ansible.module_utils import basic
from ansible.module_utils.common.warnings import get_warning_messages

from ansible_collections.pgha.cluster.plugins.module_utils.etcd_errors import EtcdError
from etcd_harness import pick_free_ports
from module_runner import connection_args, run_module
from collection_client import client_for
from playbook_runner import run_playbook

NO_STRICT_RECONFIG = ("--strict-reconfig-check=false",)


@pytest.fixture(autouse=True)
def module_profile(monkeypatch):
    """ansible-core 2.19's AnsibleModule also needs a serialization profile next to its arguments."""
    if getattr(basic, '_ANSIBLE_PROFILE', 'legacy') is None:
        monkeypatch.setattr(basic, '_ANSIBLE_PROFILE', 'legacy')


@pytest.fixture
def new_members():
    """``new_members(cluster)`` -> a not yet started EtcdMember for ``cluster``; always killed and wiped afterwards.

    The cluster's own cleanup does the same; this is the second line, so that
    no etcd process a test started can outlive it, whatever the harness does.
    """
    made = []

    def make(cluster, **kwargs):
        member = cluster.new_member(**kwargs)
        made.append(member)
        return member

    yield make
    for member in made:
        member.kill()
        shutil.rmtree(member.data_dir, ignore_errors=True)


def member_task(cluster, check_mode=False, diff=False, endpoints=None, **args):
    options = connection_args(cluster)
    if endpoints is not None:
        options['endpoints'] = endpoints
    options.update(args)
    return run_module('etcd_member', options, check_mode=check_mode, diff=diff)


def ok(result, changed):
    assert not result.get('failed'), result
    assert result['changed'] is changed, result
    return result


def refused(result, *fragments):
    assert result.get('failed') is True, result
    assert result['changed'] is False, result
    assert 'Traceback' not in result['msg']
    for fragment in fragments:
        assert fragment in result['msg'], (fragment, result['msg'])
    return result


def ctl_members(cluster):
    """{hex id: (name, sorted peer URLs, is_learner)} as etcdctl lists the members."""
    out = json.loads(cluster.etcdctl('member', 'list', '-w', 'json'))
    return {'%x' % m['ID']: (m.get('name', ''), sorted(m['peerURLs']), bool(m.get('isLearner', False)))
            for m in out['members']}


def ctl_by_name(cluster):
    return {name: (hid, urls, is_learner) for hid, (name, urls, is_learner) in ctl_members(cluster).items()}


def initial_cluster_parts(members_and_urls):
    return sorted('%s=%s' % pair for pair in members_and_urls)


def wait_for(predicate, timeout=15.0, what='condition'):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError('timed out after %.1fs waiting for %s' % (timeout, what))
        time.sleep(0.05)


def add_learner(cluster, new):
    """Add ``new`` as a learner with the module and start its etcd with the returned initial cluster."""
    added = ok(member_task(cluster, name=new.name, peer_urls=[new.peer_url], promote=False), True)
    assert added['action'] == 'added'
    cluster.start_joining_member(new, initial_cluster=added['initial_cluster'])
    return added


# ---------------------------------------------------------------------------
# the whole life of a member, TLS + RBAC, etcd's default strict checks
# ---------------------------------------------------------------------------

def test_add_learner_start_promote_then_remove(etcd_cluster_factory, new_members, etcd3_lib):
    cluster = etcd_cluster_factory(size=3, tls=True, auth=True, name='life')
    new = new_members(cluster)
    task = dict(name=new.name, peer_urls=[new.peer_url])
    original = ctl_members(cluster)
    expected_initial = initial_cluster_parts([(m.name, m.peer_url) for m in cluster.members + [new]])

    planned = ok(member_task(cluster, check_mode=True, diff=True, promote=False, **task), True)
    assert planned['action'] == 'added'
    assert planned['member'] == {'id': None, 'name': '', 'peer_urls': [new.peer_url], 'client_urls': [],
                                 'is_learner': True}
    assert sorted(planned['initial_cluster'].split(',')) == expected_initial
    assert planned['initial_cluster_state'] == 'existing'
    assert len(planned['members']) == 4
    assert ctl_members(cluster) == original  # check mode changed nothing

    added = ok(member_task(cluster, diff=True, promote=False, **task), True)
    assert added['action'] == 'added'
    member = added['member']
    assert member['name'] == '' and member['client_urls'] == [] and member['is_learner'] is True
    assert member['peer_urls'] == [new.peer_url]
    assert ctl_members(cluster)[member['id']] == ('', [new.peer_url], True)
    assert len(ctl_members(cluster)) == 4
    assert sorted(added['initial_cluster'].split(',')) == expected_initial
    assert added['initial_cluster_state'] == 'existing'
    assert added['diff'] == planned['diff']  # check mode predicted exactly this
    assert new.name not in added['diff']['before']['members']
    assert added['diff']['after']['members'][new.name] == {'peer_urls': [new.peer_url], 'is_learner': True}

    # Not started yet: unchanged, and it still says how to start it.
    again = ok(member_task(cluster, promote=False, **task), False)
    assert again['action'] == 'none' and again['member']['id'] == member['id']
    assert again['initial_cluster'] == added['initial_cluster']

    cluster.start_joining_member(new, initial_cluster=added['initial_cluster'])
    assert ctl_by_name(cluster)[new.name] == (member['id'], [new.peer_url], True)

    promoted = ok(member_task(cluster, diff=True, **task), True)
    assert promoted['action'] == 'promoted'
    assert promoted['member'] == {'id': member['id'], 'name': new.name, 'peer_urls': [new.peer_url],
                                  'client_urls': [new.client_url], 'is_learner': False}
    assert 'initial_cluster' not in promoted
    assert promoted['diff']['before']['members'][new.name]['is_learner'] is True
    assert promoted['diff']['after']['members'][new.name]['is_learner'] is False
    assert ctl_by_name(cluster)[new.name] == (member['id'], [new.peer_url], False)  # a voter, says etcdctl
    lib = {'%x' % m.id: m.name for m in etcd3_lib(cluster).members}
    assert lib[member['id']] == new.name and len(lib) == 4
    assert sorted(m['id'] for m in promoted['members']) == sorted(ctl_members(cluster))

    again = ok(member_task(cluster, **task), False)
    assert again['action'] == 'none' and again['member']['is_learner'] is False
    assert 'initial_cluster' not in again

    # The new voter serves reads of what the others wrote.
    with client_for(cluster) as client:
        client.put('/life/after-promotion', 'yes')
    with client_for(cluster, endpoints=[new.client_url]) as client:
        assert client.get('/life/after-promotion').value == b'yes'

    gone = {'name': new.name, 'state': 'absent'}
    planned = ok(member_task(cluster, check_mode=True, diff=True, **gone), True)
    assert planned['action'] == 'removed' and planned['member']['id'] == member['id']
    # Allowed through the member itself, with a warning that later tasks need other endpoints.
    ok(member_task(cluster, check_mode=True, endpoints=[new.client_url], **gone), True)
    assert any('every configured endpoint belongs to %s' % new.name in w for w in get_warning_messages())
    assert len(ctl_members(cluster)) == 4
    removed = ok(member_task(cluster, diff=True, **gone), True)
    assert removed['action'] == 'removed' and removed['member']['id'] == member['id']
    assert removed['diff'] == planned['diff']
    assert new.name in removed['diff']['before']['members'] and new.name not in removed['diff']['after']['members']
    assert ctl_members(cluster) == original
    cluster.drop_member(new)
    again = ok(member_task(cluster, **gone), False)
    assert again['action'] == 'none' and again['member'] is None
    assert sorted(m['id'] for m in again['members']) == sorted(original)


# ---------------------------------------------------------------------------
# refusals: the module, not etcd (strict reconfiguration checks off)
# ---------------------------------------------------------------------------

def test_with_one_of_three_down(etcd_cluster_factory, new_members):
    cluster = etcd_cluster_factory(size=3, tls=True, name='onedown', extra_args=NO_STRICT_RECONFIG)
    first, second, third = cluster.members
    original = ctl_members(cluster)

    # health_check=configured only believes the endpoints it was given.
    partial = [first.client_url, second.client_url]
    result = refused(member_task(cluster, check_mode=True, endpoints=partial, health_check='configured',
                                 name=first.name, state='absent'),
                     'refusing to remove %s' % first.name,
                     '%s (id ' % third.name, 'not reachable through the configured endpoints')
    assert {h['name']: h['healthy'] for h in result['health']} == {
        first.name: True, second.name: True, third.name: False}
    ok(member_task(cluster, check_mode=True, endpoints=partial, name=first.name, state='absent'), True)

    third.kill()
    cluster.wait_healthy(only_running=True)
    candidate = new_members(cluster)

    # A voting member is refused while one is down; the refusal names the dead member and the cause.
    result = refused(member_task(cluster, name=candidate.name, peer_urls=[candidate.peer_url], learner=False),
                     'refusing to add a voting member while a voting member is unhealthy',
                     '%s (id ' % third.name, 'connection refused', 'learner: true')
    assert result['action'] == 'none'
    assert ctl_members(cluster) == original
    refused(member_task(cluster, check_mode=True, name=candidate.name, peer_urls=[candidate.peer_url],
                        learner=False), 'refusing to add a voting member')

    # A learner does not vote, so it may be added (and removed) whatever the health.
    added = ok(member_task(cluster, name=candidate.name, peer_urls=[candidate.peer_url], promote=False), True)
    assert added['member']['is_learner'] is True and len(ctl_members(cluster)) == 4
    ok(member_task(cluster, name=candidate.name, peer_urls=[candidate.peer_url], state='absent'), True)
    assert ctl_members(cluster) == original

    # Removing a healthy member would leave 1 healthy of 2: refused, in check mode too.
    for check_mode in (True, False):
        result = refused(member_task(cluster, check_mode=check_mode, name=first.name, state='absent'),
                         'refusing to remove %s' % first.name,
                         'the 2 voting members left would need 2 healthy for quorum, but only 1 of them is healthy',
                         '%s (id ' % third.name)
        health = {h['name']: h for h in result['health']}
        assert health[third.name]['healthy'] is False and third.client_url in health[third.name]['reason']
        assert health[second.name]['healthy'] is True
    assert ctl_members(cluster) == original

    # Removing the dead one leaves 2 healthy of 2.
    removed = ok(member_task(cluster, name=third.name, state='absent'), True)
    assert removed['action'] == 'removed' and removed['member']['name'] == third.name
    assert sorted(ctl_by_name(cluster)) == sorted([first.name, second.name])
    cluster.drop_member(third)
    ok(member_task(cluster, name=third.name, state='absent'), False)


def test_promotion_waits_for_an_unhealthy_learner_and_never_loses_quorum(etcd_cluster_factory, new_members):
    cluster = etcd_cluster_factory(size=3, tls=False, name='promo', extra_args=NO_STRICT_RECONFIG)
    new = new_members(cluster)
    task = dict(name=new.name, peer_urls=[new.peer_url])
    add_learner(cluster, new)
    with client_for(cluster) as client:
        client.put('/promo/k', 'v')
    with client_for(cluster, endpoints=[new.client_url]) as client:
        wait_for(lambda: client.get('/promo/k', serializable=True), what='the learner to catch up')

    # A caught-up learner dies, and so does a voter: etcd would still promote it (its log is in sync), making 4
    # voters with 2 alive - no quorum. The module waits for the learner instead, then fails.
    new.kill()
    dead = cluster.member(2)
    dead.kill()
    cluster.wait_healthy(only_running=True)  # a new leader, if it was the leader: not what this test is about
    started = time.monotonic()
    result = refused(member_task(cluster, wait_timeout=2, **task),
                     'was not promoted within 2.0s',
                     'the cluster would have 4 voting members and need 3 healthy for quorum, but only 2 would be '
                     'healthy', '%s (id ' % dead.name, '%s (id ' % new.name)
    assert 2.0 <= time.monotonic() - started < 10
    assert ctl_by_name(cluster)[new.name][2] is True  # still a learner

    # The learner comes back: 4 voters with 3 healthy is safe.
    new.start()
    promoted = ok(member_task(cluster, **task), True)
    assert promoted['action'] == 'promoted'
    assert ctl_by_name(cluster)[new.name][2] is False
    dead.start()
    cluster.wait_healthy()


def test_etcd_refusing_a_learner_while_a_member_is_down_is_explained_at_once(etcd_cluster_factory, new_members):
    # etcd's own strict reconfiguration check (on by default) refuses even a learner while a voter is
    # disconnected; the module says which voter, instead of retrying until wait_timeout.
    cluster = etcd_cluster_factory(size=3, tls=True, name='strict')
    dead = cluster.member(1)
    dead.kill()
    cluster.wait_healthy(only_running=True)
    candidate = new_members(cluster)
    original = ctl_members(cluster)
    started = time.monotonic()
    result = refused(member_task(cluster, name=candidate.name, peer_urls=[candidate.peer_url]),
                     'etcd refused to add %s' % candidate.name, 'unhealthy cluster',
                     'strict reconfiguration check', '%s (id ' % dead.name)
    assert time.monotonic() - started < 10  # not wait_timeout (60 s)
    assert {h['name']: h['healthy'] for h in result['health']}[dead.name] is False
    assert ctl_members(cluster) == original


def test_the_last_member_is_never_removed(etcd_cluster_factory):
    cluster = etcd_cluster_factory(size=1, name='last')
    only = cluster.member(0)
    for check_mode in (True, False):
        refused(member_task(cluster, check_mode=check_mode, name=only.name, state='absent'),
                'refusing to remove %s' % only.name, 'it is the last member of the cluster')
    assert list(ctl_by_name(cluster)) == [only.name]
    assert only.is_healthy()


def test_removal_finds_the_member_by_peer_url_when_its_name_differs(etcd_cluster_factory):
    """The name etcd knows a member by may not be the one the inventory gives (renamed host, changed etcd_name):
    the host's peer URL still identifies it, and the result says whether it was removed."""
    cluster = etcd_cluster_factory(size=3, tls=True, name='byurl')
    first, second, third = cluster.members
    endpoints = [first.client_url, second.client_url]

    # A name that matches nothing, with the peer URL of the third member: that member is the one meant.
    task = dict(endpoints=endpoints, name='%s-renamed' % third.name, peer_urls=[third.peer_url], state='absent')
    planned = ok(member_task(cluster, check_mode=True, **task), True)
    assert len(ctl_members(cluster)) == 3
    removed = ok(member_task(cluster, **task), True)
    assert removed['action'] == 'removed' and removed['member']['name'] == third.name
    assert removed['member']['peer_urls'] == [third.peer_url]
    assert sorted(ctl_by_name(cluster)) == sorted([first.name, second.name])
    assert planned['removed'] is True and planned['matched_by'] == ['peer_urls']
    assert removed['removed'] is True and removed['matched_by'] == ['peer_urls']
    again = ok(member_task(cluster, **task), False)
    assert again['removed'] is False and again['matched_by'] == []

    # Neither the name nor the peer URL of any member: nothing removed, and the result says so.
    nothing = ok(member_task(cluster, endpoints=endpoints, name='not-a-member',
                             peer_urls=['https://127.0.0.99:2380'], state='absent'), False)
    assert nothing['removed'] is False and nothing['matched_by'] == [] and nothing['member'] is None
    assert 'nothing to remove' in nothing['msg']
    assert len(ctl_members(cluster)) == 2

    # A name of one member with the peer URL of another: the module does not guess.
    conflict = refused(member_task(cluster, endpoints=endpoints, name=first.name, peer_urls=[second.peer_url],
                                   state='absent'), first.name, second.peer_url)
    assert conflict.get('removed') is False
    assert sorted(ctl_by_name(cluster)) == sorted([first.name, second.name])


# ---------------------------------------------------------------------------
# peer URLs, unstarted learners, timeouts
# ---------------------------------------------------------------------------

def test_peer_urls_update_and_unstarted_learners(etcd_cluster_factory, new_members):
    cluster = etcd_cluster_factory(size=1, name='urls')
    only = cluster.member(0)
    extra = 'http://%s:%d' % (only.ip, pick_free_ports(only.ip, 1)[0])  # nobody listens there
    member_id = next(iter(ctl_members(cluster)))
    both = sorted([only.peer_url, extra])

    task = dict(name=only.name, peer_urls=[only.peer_url, extra])
    planned = ok(member_task(cluster, check_mode=True, diff=True, **task), True)
    assert planned['action'] == 'updated' and sorted(planned['member']['peer_urls']) == both
    assert planned['diff']['before']['members'][only.name]['peer_urls'] == [only.peer_url]
    assert planned['diff']['after']['members'][only.name]['peer_urls'] == both
    assert ctl_members(cluster)[member_id][1] == [only.peer_url]

    updated = ok(member_task(cluster, diff=True, **task), True)
    assert updated['action'] == 'updated' and updated['diff'] == planned['diff']
    assert sorted(updated['member']['peer_urls']) == both and updated['member']['id'] == member_id
    assert ctl_members(cluster)[member_id] == (only.name, both, False)
    # Same URLs in another order and spelling: nothing to do.
    ok(member_task(cluster, name=only.name, peer_urls=[extra.upper().replace('HTTP://', 'http://'),
                                                       only.peer_url + '/']), False)

    restored = ok(member_task(cluster, name=only.name, peer_urls=[only.peer_url]), True)
    assert restored['action'] == 'updated'
    assert ctl_members(cluster)[member_id] == (only.name, [only.peer_url], False)
    with client_for(cluster) as client:
        client.put('/urls/still-works', 'yes')

    # An unstarted learner has no name: it is found by its peer URL. Its URLs are never
    # updated (etcd would forget it is a learner).
    pending = new_members(cluster)
    added = ok(member_task(cluster, name=pending.name, peer_urls=[pending.peer_url], promote=False), True)
    pending_id = added['member']['id']
    other = 'http://%s:%d' % (pending.ip, pick_free_ports(pending.ip, 1)[0])
    result = refused(member_task(cluster, name=pending.name, peer_urls=[pending.peer_url, other]),
                     'is a learner with peer URLs %s' % pending.peer_url, 'Remove it (state=absent)')
    assert ctl_members(cluster)[pending_id] == ('', [pending.peer_url], True)
    assert result['action'] == 'none'

    # etcd 3.4 takes one learner at a time; the module says which one is in the way.
    second = new_members(cluster)
    result = member_task(cluster, name=second.name, peer_urls=[second.peer_url])
    assert result['failed'] is True and 'too many learner members' in result['msg'], result
    assert 'promote or remove unstarted member %s' % pending_id in result['msg']
    assert len(ctl_members(cluster)) == 2

    # Another member cannot take a started member's URL.
    refused(member_task(cluster, name='someone-else', peer_urls=[only.peer_url]),
            'peer URL %s already belongs to %s (id %s)' % (only.peer_url, only.name, member_id))

    # Removed by peer URL, since it has no name yet.
    removed = ok(member_task(cluster, name=pending.name, peer_urls=[pending.peer_url], state='absent'), True)
    assert removed['member']['id'] == pending_id
    assert list(ctl_members(cluster)) == [member_id]


def test_promoting_a_learner_that_never_starts_times_out(etcd_cluster_factory, new_members):
    cluster = etcd_cluster_factory(size=1, name='never')
    new = new_members(cluster)
    task = dict(name=new.name, peer_urls=[new.peer_url])
    added = ok(member_task(cluster, promote=False, **task), True)

    # Check mode does not wait: it says what it would do.
    planned = ok(member_task(cluster, check_mode=True, **task), True)
    assert planned['action'] == 'promoted'
    assert any('has not started yet' in w for w in get_warning_messages())

    started = time.monotonic()
    result = refused(member_task(cluster, wait_timeout=1.5, **task),
                     'was not promoted within 1.5s (wait_timeout)', 'has not started yet',
                     '--initial-cluster-state existing')
    elapsed = time.monotonic() - started
    assert 1.5 <= elapsed < 5, elapsed
    assert result['initial_cluster'] == added['initial_cluster']
    assert result['initial_cluster_state'] == 'existing'
    assert ctl_members(cluster)[added['member']['id']] == ('', [new.peer_url], True)


# ---------------------------------------------------------------------------
# 3 -> 5 -> 3 members while a client keeps writing
# ---------------------------------------------------------------------------

class Writer(threading.Thread):
    """Writes numbered keys with our client until stopped; remembers every acknowledged write."""

    def __init__(self, client, prefix):
        super().__init__(name='etcd-writer', daemon=True)
        self.client = client
        self.prefix = prefix
        self.acked = {}
        self.errors = []
        self._halt = threading.Event()

    def run(self):
        n = 0
        while not self._halt.is_set():
            key = '%s%06d' % (self.prefix, n)
            value = 'value-%d' % n
            try:
                self.client.put(key, value)
                self.acked[key] = value
            except EtcdError as exc:  # not acknowledged: may or may not be there; not checked
                self.errors.append(str(exc))
                time.sleep(0.05)
            n += 1
            time.sleep(0.005)

    def stop(self):
        self._halt.set()
        self.join(30)
        assert not self.is_alive()

    def wait_for_more(self, count=20, timeout=30.0):
        target = len(self.acked) + count
        wait_for(lambda: len(self.acked) >= target, timeout, what='%d more acknowledged writes' % count)


def test_scale_three_to_five_to_three_under_writes(etcd_cluster_factory, new_members, etcd3_lib, unique_prefix):
    cluster = etcd_cluster_factory(size=3, tls=True, auth=True, name='scale')
    originals = list(cluster.members)
    fourth, fifth = new_members(cluster), new_members(cluster)
    every_url = cluster.endpoints + [fourth.client_url, fifth.client_url]
    writer = Writer(client_for(cluster, endpoints=every_url, timeout=2), unique_prefix)
    writer.start()
    try:
        writer.wait_for_more()
        for new in (fourth, fifth):
            add_learner(cluster, new)
            writer.wait_for_more()
            promoted = ok(member_task(cluster, name=new.name, peer_urls=[new.peer_url]), True)
            assert promoted['action'] == 'promoted'
            writer.wait_for_more()
        members = ctl_by_name(cluster)
        assert sorted(members) == sorted(m.name for m in cluster.members) and len(members) == 5
        assert not any(entry[2] for entry in members.values())  # no learner left

        # Shrink by removing the leader, then an original member, each time through the module
        # connected to the very member it removes (the client fails over to the next endpoint).
        leader = cluster.leader()
        for old in [leader] + [m for m in originals if m is not leader][:1]:
            endpoints = [old.client_url] + [m.client_url for m in cluster.members if m is not old]
            removed = ok(member_task(cluster, endpoints=endpoints, name=old.name, state='absent'), True)
            assert removed['action'] == 'removed'
            cluster.drop_member(old)
            writer.wait_for_more()
        assert sorted(ctl_by_name(cluster)) == sorted(m.name for m in cluster.members) and cluster.size == 3
    finally:
        writer.stop()
        writer.client.close()

    acked = dict(writer.acked)
    assert len(acked) >= 140, (len(acked), writer.errors[-5:])
    lib = etcd3_lib(cluster)
    stored = {meta.key.decode(): value.decode() for value, meta in lib.get_prefix(unique_prefix)}
    lost = sorted(k for k, v in acked.items() if stored.get(k) != v)
    assert lost == [], '%d acknowledged writes lost, e.g. %s' % (len(lost), lost[:5])
    for m in cluster.members:  # every remaining member has all of them, in its own copy
        with client_for(cluster, endpoints=[m.client_url]) as client:
            kvs = {kv.key_text: kv.value_text for kv in client.range(unique_prefix, prefix=True,
                                                                     serializable=True).kvs}
        assert all(kvs.get(k) == v for k, v in acked.items()), m.name


# ---------------------------------------------------------------------------
# plumbing: bad input, unreachable etcd, a real ansible-playbook run
# ---------------------------------------------------------------------------

def test_bad_input_fails_before_any_request():
    args = {'endpoints': ['http://127.0.0.1:1'], 'name': 'x'}
    result = run_module('etcd_member', dict(args, peer_urls=['https://10.0.0.1']))
    assert result['failed'] and 'the port is missing' in result['msg']
    result = run_module('etcd_member', dict(args, peer_urls=['https://10.0.0.1:2380/path']))
    assert result['failed'] and 'no path' in result['msg']
    result = run_module('etcd_member', dict(args))
    assert result['failed'] and 'peer_urls' in result['msg']
    result = run_module('etcd_member', dict(args, peer_urls=[], state='present'))
    assert result['failed'] and 'peer_urls' in result['msg']


def test_unreachable_etcd_is_named(etcd_plain):
    dead = 'http://%s:1' % etcd_plain.member(0).ip
    result = run_module('etcd_member', {'endpoints': [dead], 'name': 'x', 'state': 'absent', 'timeout': 2})
    assert result['failed'] is True and 'Traceback' not in result['msg']
    assert dead in result['msg'] and 'connection refused' in result['msg'], result['msg']


def test_through_ansible_playbook(etcd_cluster_factory):
    cluster = etcd_cluster_factory(size=1, name='play')
    only = cluster.member(0)
    task_args = dict(connection_args(cluster), name=only.name, peer_urls=[only.peer_url])
    plays = [{'name': 'etcd_member', 'hosts': 'localhost', 'connection': 'local', 'gather_facts': False,
              'tasks': [{'name': 'Keep the member', 'pgha.cluster.etcd_member': task_args, 'register': 'kept'},
                        {'name': 'Refuse to remove the last member', 'pgha.cluster.etcd_member':
                            dict(task_args, state='absent'), 'register': 'last', 'ignore_errors': True},
                        {'name': 'Check', 'ansible.builtin.assert': {'that': [
                            'kept is not changed', "kept.action == 'none'", 'kept.members | length == 1',
                            'last is failed', "'last member' in last.msg"]}}]}]
    run = run_playbook(plays, check=True, diff=True)
    assert run.rc == 0, run.output
    assert run.recap['localhost'] == dict(ok=3, changed=0, unreachable=0, failed=0, skipped=0), run.output
    assert list(ctl_by_name(cluster)) == [only.name]
