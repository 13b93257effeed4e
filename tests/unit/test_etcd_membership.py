"""Quorum arithmetic and member matching of pgha.cluster.etcd_member (pure functions, no etcd)."""

import pytest

from ansible_collections.pgha.cluster.plugins.module_utils.etcd_membership import (
    Health,
    MembershipConflict,
    canonical_peer_url,
    check_add,
    check_promote,
    check_remove,
    diff_view,
    find_member,
    find_member_to_remove,
    hex_id,
    initial_cluster,
    is_started,
    member_dict,
    quorum,
    same_urls,
    url_conflicts,
)
from ansible_collections.pgha.cluster.plugins.module_utils.etcd_types import Member

UP = Health(True, '')


def down(reason='connection refused'):
    return Health(False, reason)


def voter(n, name=None):
    name = 'etcd-%d' % n if name is None else name
    return Member(id=0x1000 + n, name=name, peer_urls=['https://10.0.0.%d:2380' % n],
                  client_urls=['https://10.0.0.%d:2379' % n] if name else [], is_learner=False)


def learner(n, started=True):
    m = voter(n, name='etcd-%d' % n if started else '')
    return m._replace(is_learner=True)


def cluster(size):
    return [voter(n) for n in range(1, size + 1)]


def health_of(members, dead=()):
    return {m.id: (down() if m.name in dead else UP) for m in members}


# ---------------------------------------------------------------- arithmetic

@pytest.mark.parametrize('voters, need', [(1, 1), (2, 2), (3, 2), (4, 3), (5, 3), (6, 4), (7, 4)])
def test_quorum(voters, need):
    assert quorum(voters) == need


def test_hex_id_matches_etcdctl():
    assert hex_id(0x8e9e05c52164694d) == '8e9e05c52164694d'
    assert hex_id(0x0fab) == 'fab'  # etcdctl prints %x: no zero padding


# ---------------------------------------------------------------- removal

def test_three_voters_one_down_removing_a_healthy_one_is_refused():
    members = cluster(3)
    health = health_of(members, dead=['etcd-3'])
    reason = check_remove(members, health, members[0])
    assert reason is not None
    assert reason.startswith('refusing to remove etcd-1 (id 1001)')
    assert 'the 2 voting members left would need 2 healthy for quorum, but only 1 of them is healthy' in reason
    assert 'etcd-3 (id 1003): connection refused' in reason


def test_three_voters_one_down_removing_the_down_one_is_allowed():
    members = cluster(3)
    assert check_remove(members, health_of(members, dead=['etcd-3']), members[2]) is None


def test_five_voters_two_down():
    members = cluster(5)
    health = health_of(members, dead=['etcd-4', 'etcd-5'])
    assert check_remove(members, health, members[3]) is None  # 4 left, 3 healthy, quorum 3
    assert check_remove(members, health, members[4]) is None
    reason = check_remove(members, health, members[0])  # 4 left, 2 healthy
    assert 'the 4 voting members left would need 3 healthy for quorum, but only 2 of them are healthy' in reason


def test_healthy_clusters_may_shrink_down_to_one():
    for size in (2, 3, 4, 5):
        members = cluster(size)
        assert check_remove(members, health_of(members), members[0]) is None, size


def test_removing_from_a_cluster_without_quorum_is_refused():
    members = cluster(3)
    health = health_of(members, dead=['etcd-2', 'etcd-3'])
    assert check_remove(members, health, members[2]) is not None  # even a dead one: 1 healthy of 2 left


def test_the_last_member_is_never_removed():
    members = cluster(1)
    reason = check_remove(members, health_of(members), members[0])
    assert 'it is the last member of the cluster' in reason


def test_the_last_voter_is_not_removed_while_learners_remain():
    members = cluster(1) + [learner(2)]
    reason = check_remove(members, health_of(members), members[0])
    assert 'it is the last voting member' in reason


def test_learners_are_removed_whatever_the_health():
    members = cluster(3) + [learner(4, started=False)]
    assert check_remove(members, {}, members[3]) is None
    members = cluster(1) + [learner(2)]
    assert check_remove(members, {}, members[1]) is None


def test_unknown_health_counts_as_unhealthy():
    members = cluster(3)
    health = {members[0].id: UP, members[1].id: UP}  # etcd-3 not checked
    reason = check_remove(members, health, members[0])
    assert 'etcd-3 (id 1003): health unknown' in reason
    assert check_remove(members, health, members[2]) is None


def test_learners_do_not_count_for_quorum_after_removal():
    members = cluster(3) + [learner(4)]
    health = health_of(members, dead=['etcd-3'])
    assert check_remove(members, health, members[0]) is not None  # the healthy learner cannot vote


# ---------------------------------------------------------------- adding

def test_learners_may_be_added_while_a_voter_is_down():
    members = cluster(3)
    assert check_add(members, health_of(members, dead=['etcd-2']), is_learner=True) is None


def test_voters_are_refused_while_a_voter_is_down():
    members = cluster(3)
    reason = check_add(members, health_of(members, dead=['etcd-2']), is_learner=False)
    assert reason.startswith('refusing to add a voting member while a voting member is unhealthy')
    assert 'etcd-2 (id 1002): connection refused' in reason
    assert 'need 3 healthy voters out of 4' in reason
    assert 'learner: true' in reason


def test_voters_may_be_added_to_a_healthy_cluster():
    for size in (1, 2, 3, 4):
        members = cluster(size)
        assert check_add(members, health_of(members), is_learner=False) is None


def test_an_unstarted_voter_blocks_adding_another_voter():
    members = cluster(3) + [voter(4, name='')]
    health = health_of(cluster(3))
    reason = check_add(members, health, is_learner=False)
    assert 'unstarted member 1004 (peer URLs https://10.0.0.4:2380): health unknown' in reason


def test_unhealthy_learners_do_not_block_adding_a_voter():
    members = cluster(3) + [learner(4, started=False)]
    assert check_add(members, health_of(cluster(3)), is_learner=False) is None


# ---------------------------------------------------------------- promotion

def test_promoting_a_healthy_learner_into_a_healthy_cluster():
    for size in (1, 2, 3, 4):
        members = cluster(size) + [learner(size + 1)]
        assert check_promote(members, health_of(members), members[-1]) is None


def test_promoting_with_one_of_three_down_needs_a_healthy_learner():
    members = cluster(3) + [learner(4)]
    ok = health_of(members, dead=['etcd-3'])
    assert check_promote(members, ok, members[3]) is None  # 4 voters, 3 healthy, quorum 3
    bad = health_of(members, dead=['etcd-3', 'etcd-4'])
    reason = check_promote(members, bad, members[3])
    assert reason.startswith('refusing to promote etcd-4 (id 1004)')
    assert 'would have 4 voting members and need 3 healthy for quorum, but only 2 would be healthy' in reason
    assert 'etcd-3 (id 1003)' in reason and 'etcd-4 (id 1004)' in reason
    # Waiting could help: once the learner is healthy the promotion is safe.
    assert check_promote(members, bad, members[3], assume_target_healthy=True) is None


def test_promotion_is_refused_outright_when_voters_lack_quorum():
    members = cluster(3) + [learner(4)]
    health = health_of(members, dead=['etcd-2', 'etcd-3'])
    assert check_promote(members, health, members[3], assume_target_healthy=True) is not None


def test_single_member_cluster_needs_the_learner_healthy_to_promote():
    members = cluster(1) + [learner(2, started=False)]
    health = health_of(cluster(1))
    assert check_promote(members, health, members[1]) is not None  # 2 voters, quorum 2, 1 healthy
    assert check_promote(members, health, members[1], assume_target_healthy=True) is None


# ---------------------------------------------------------------- matching

def test_find_by_name():
    members = cluster(3)
    assert find_member(members, 'etcd-2') is members[1]
    assert find_member(members, 'etcd-2', ['https://10.9.9.9:2380']) is members[1]  # name wins: an update
    assert find_member(members, 'etcd-9') is None
    assert find_member(members, 'etcd-9', ['https://10.0.0.9:2380']) is None


def test_unstarted_members_are_found_by_peer_url():
    pending = learner(4, started=False)
    members = cluster(3) + [pending]
    assert find_member(members, 'etcd-4', ['https://10.0.0.4:2380']) is pending
    assert find_member(members, 'etcd-4', ['HTTPS://10.0.0.4:2380/']) is pending
    # Any URL in common: the task may be adding a second URL to it.
    assert find_member(members, 'etcd-4', ['https://10.0.0.4:2380', 'https://10.1.0.4:2380']) is pending
    assert find_member(members, 'etcd-4') is None  # without URLs an unstarted member cannot be told apart


def test_started_members_are_not_matched_by_url():
    members = cluster(3)
    assert find_member(members, 'other', ['https://10.0.0.1:2380']) is None
    assert url_conflicts(members, ['https://10.0.0.1:2380']) == [
        'peer URL https://10.0.0.1:2380 already belongs to etcd-1 (id 1001)']


def test_url_conflicts_ignore_the_target_itself():
    members = cluster(3)
    assert url_conflicts(members, ['https://10.0.0.1:2380'], members[0]) == []
    assert len(url_conflicts(members, ['https://10.0.0.2:2380'], members[0])) == 1


def test_duplicate_names_are_a_conflict():
    members = cluster(2) + [voter(3, name='etcd-1')]
    with pytest.raises(MembershipConflict, match="2 members are named 'etcd-1'"):
        find_member(members, 'etcd-1')


def test_two_unstarted_members_with_the_same_url_are_a_conflict():
    a = learner(4, started=False)
    b = voter(5, name='')._replace(peer_urls=['https://10.0.0.4:2380'])
    with pytest.raises(MembershipConflict, match='match 2 members that have not started'):
        find_member(cluster(3) + [a, b], 'etcd-4', ['https://10.0.0.4:2380'])


def test_is_started():
    assert is_started(voter(1))
    assert not is_started(learner(2, started=False))


# ---------------------------------------------------------------- URLs

@pytest.mark.parametrize('raw, canonical', [
    ('https://10.0.0.1:2380', 'https://10.0.0.1:2380'),
    ('HTTPS://Node-1.Example.COM:2380/', 'https://node-1.example.com:2380'),
    ('  http://[FD00::1]:2380 ', 'http://[fd00::1]:2380'),
])
def test_canonical_peer_url(raw, canonical):
    assert canonical_peer_url(raw) == canonical


@pytest.mark.parametrize('raw, problem', [
    ('', 'it is empty'),
    ('10.0.0.1:2380', 'write it as scheme://host:port'),
    ('https://10.0.0.1', 'the port is missing'),
    ('ftp://10.0.0.1:2380', 'the scheme must be http or https'),
    ('https://10.0.0.1:2380/peers', 'no path'),
    ('https://10.0.0.1:99999', 'between 1 and 65535'),
    ('https://user@10.0.0.1:2380', 'user info'),
])
def test_bad_peer_urls_are_named(raw, problem):
    with pytest.raises(ValueError, match=problem):
        canonical_peer_url(raw)


def test_same_urls_ignores_order_and_case():
    assert same_urls(['https://a:2380', 'https://B:2380'], ['https://b:2380/', 'HTTPS://a:2380'])
    assert not same_urls(['https://a:2380'], ['https://a:2380', 'https://b:2380'])


# ---------------------------------------------------------------- what a new member is started with

def test_initial_cluster_lists_everyone_and_names_the_new_member():
    pending = learner(4, started=False)
    members = cluster(3) + [pending]
    assert initial_cluster(members, pending, 'etcd-4') == (
        'etcd-1=https://10.0.0.1:2380,etcd-2=https://10.0.0.2:2380,'
        'etcd-3=https://10.0.0.3:2380,etcd-4=https://10.0.0.4:2380')


def test_initial_cluster_repeats_names_for_several_urls_and_uses_ids_for_other_unstarted():
    other = voter(5, name='')
    pending = learner(4, started=False)._replace(peer_urls=['https://10.0.0.4:2380', 'https://10.1.0.4:2380'])
    members = cluster(1) + [other, pending]
    assert initial_cluster(members, pending, 'new') == (
        'etcd-1=https://10.0.0.1:2380,1005=https://10.0.0.5:2380,'
        'new=https://10.0.0.4:2380,new=https://10.1.0.4:2380')


# ---------------------------------------------------------------- results and diffs

def test_member_dict():
    assert member_dict(learner(4, started=False)) == {
        'id': '1004', 'name': '', 'peer_urls': ['https://10.0.0.4:2380'], 'client_urls': [], 'is_learner': True}
    assert member_dict(Member(0, '', ['https://x:2380'], [], True))['id'] is None  # planned in check mode


def test_diff_view_shows_the_tasks_unstarted_member_by_its_requested_name():
    pending = learner(4, started=False)
    other = voter(5, name='')
    view = diff_view(cluster(1) + [pending, other], pending.id, 'etcd-4')
    assert view == {'members': {
        'etcd-1': {'peer_urls': ['https://10.0.0.1:2380'], 'is_learner': False},
        'etcd-4': {'peer_urls': ['https://10.0.0.4:2380'], 'is_learner': True},
        'unstarted 1005': {'peer_urls': ['https://10.0.0.5:2380'], 'is_learner': False},
    }}


# ---------------------------------------------------------------- which member a removal means

def test_a_removal_finds_a_started_member_by_peer_url_whatever_its_name():
    members = cluster(3)
    assert find_member_to_remove(members, 'renamed', ['https://10.0.0.3:2380']) == (members[2], ['peer_urls'])
    assert find_member_to_remove(members, 'etcd-3', ['https://10.0.0.3:2380']) == (members[2], ['name', 'peer_urls'])
    assert find_member_to_remove(members, 'etcd-3') == (members[2], ['name'])
    # The host's peer URL changed but the name still matches: the name finds it.
    assert find_member_to_remove(members, 'etcd-3', ['https://10.9.9.9:2380']) == (members[2], ['name'])


def test_a_removal_with_neither_name_nor_url_finds_nothing():
    assert find_member_to_remove(cluster(3), 'etcd-9', ['https://10.0.0.9:2380']) == (None, [])
    assert find_member_to_remove(cluster(3), 'etcd-9') == (None, [])


def test_a_removal_whose_name_and_url_mean_different_members_is_refused():
    with pytest.raises(MembershipConflict, match=r"etcd-1 \(id 1001\) is named 'etcd-1', but peer URLs "
                                                 r"https://10.0.0.2:2380 belong to etcd-2"):
        find_member_to_remove(cluster(3), 'etcd-1', ['https://10.0.0.2:2380'])
    with pytest.raises(MembershipConflict, match='belong to 2 members'):
        find_member_to_remove(cluster(3), 'x', ['https://10.0.0.1:2380', 'https://10.0.0.2:2380'])
