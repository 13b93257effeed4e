"""The etcd client's cluster features against real etcd 3.4: membership, status, health.

Read-only checks run on the shared ``etcd_tls`` cluster (TLS, client-cert-auth,
RBAC, so they also prove these calls work for root with a token); anything
that changes membership or kills a member runs on a private cluster from
``etcd_cluster_factory``.  Every answer of the client is compared with what
etcdctl (and, where it has the call, the PyPI etcd3 library) reports.
"""

import json
import time

import pytest

from ansible_collections.pgha.cluster.plugins.module_utils.etcd_client import EtcdClient
from ansible_collections.pgha.cluster.plugins.module_utils.etcd_errors import (
    EtcdConfigError,
    EtcdError,
    EtcdNotFound,
    EtcdTLSError,
    EtcdUnreachable,
)
from ansible_collections.pgha.cluster.plugins.module_utils.etcd_types import EndpointStatus, Member

ETCD_VERSION = "3.4.23"

# etcd refuses member add/remove while any voting member has been connected for
# less than 5 s ("unhealthy cluster"), and a private cluster is a fraction of a
# second old.  Tests that change membership switch that check off; the test with
# a killed member shows the client's error when the check applies.
NO_STRICT_RECONFIG = ("--strict-reconfig-check=false",)


@pytest.fixture
def make_client():
    """``make_client(cluster, endpoints=None, user=<root on auth clusters>, password=None, **EtcdClient kw)``."""
    made = []

    def make(cluster, endpoints=None, user="auto", password=None, **kwargs):
        if user == "auto":
            user = "root" if cluster.auth else None
        if user is not None and password is None:
            password = cluster.users[user]
        if cluster.tls:
            kwargs.setdefault("ca_cert", cluster.ca_cert)
            kwargs.setdefault("client_cert", cluster.client_cert)
            kwargs.setdefault("client_key", cluster.client_key)
        client = EtcdClient(endpoints or cluster.endpoints, username=user, password=password, **kwargs)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


def etcdctl_members(cluster):
    """{name or '': member dict} as etcdctl sees the membership (IDs as ints)."""
    out = json.loads(cluster.etcdctl("member", "list", "-w", "json"))
    return {m.get("name", ""): m for m in out["members"]}


def by_name(members):
    return {m.name: m for m in members}


def wait_for(predicate, timeout=10.0, interval=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


# ---------------------------------------------------------------------------
# read-only, shared TLS + RBAC cluster
# ---------------------------------------------------------------------------

def test_members_match_the_harness_etcdctl_and_etcd3(etcd_tls, make_client, etcd3_lib):
    members = make_client(etcd_tls).members()
    assert all(isinstance(m, Member) for m in members)
    ours = by_name(members)
    assert sorted(ours) == ["etcd-1", "etcd-2", "etcd-3"]
    for hm in etcd_tls.members:
        m = ours[hm.name]
        assert m.peer_urls == [hm.peer_url]
        assert m.client_urls == [hm.client_url]
        assert m.is_learner is False
    assert len({m.id for m in members}) == 3 and all(m.id > 0 for m in members)

    ctl = etcdctl_members(etcd_tls)
    assert {name: m["ID"] for name, m in ctl.items()} == {name: m.id for name, m in ours.items()}
    assert {name: m["peerURLs"] for name, m in ctl.items()} == {name: m.peer_urls for name, m in ours.items()}

    lib = {m.name: (m.id, list(m.peer_urls), list(m.client_urls)) for m in etcd3_lib(etcd_tls).members}
    assert lib == {name: (m.id, m.peer_urls, m.client_urls) for name, m in ours.items()}


def test_status_health_version_alarms_of_every_member(etcd_tls, make_client):
    client = make_client(etcd_tls)
    ids = {m.name: m.id for m in client.members()}
    for attempt in range(5):
        statuses = {hm.name: client.status(hm.client_url) for hm in etcd_tls.members}
        if len({s.raft_term for s in statuses.values()}) == 1:
            break  # one term for all: no election happened while we asked
        time.sleep(0.2)
    for name, st in statuses.items():
        hm = etcd_tls.member(name)
        assert isinstance(st, EndpointStatus)
        assert st.endpoint == hm.client_url
        assert st.member_id == ids[name]  # really answered by that member
        assert st.version == ETCD_VERSION
        assert st.db_size > 0 and 0 < st.db_size_in_use <= st.db_size
        assert st.is_learner is False
        assert st.raft_term >= 2 and st.raft_index > 0  # term 1 ends with the first election
        assert st.raft_applied_index > 0
        assert st.errors == []
    assert len({s.leader for s in statuses.values()}) == 1, statuses
    assert next(iter(statuses.values())).leader in ids.values()

    for hm in etcd_tls.members:
        assert client.health(hm.client_url) == (True, "")
        assert client.version(hm.client_url) == {"etcdserver": ETCD_VERSION, "etcdcluster": "3.4.0"}
    assert client.version() == {"etcdserver": ETCD_VERSION, "etcdcluster": "3.4.0"}
    assert client.alarms() == []


def test_leader_id_equals_etcdctl_and_etcd3(etcd_tls, make_client, etcd3_lib):
    client = make_client(etcd_tls)
    lib = etcd3_lib(etcd_tls)
    for attempt in range(5):
        ctl = etcd_tls.status()  # etcdctl endpoint status -w json, every member
        ctl_leaders = {s["Status"]["leader"] for s in ctl}
        ctl_terms = {s["Status"]["raftTerm"] for s in ctl}
        ours = client.status()
        lib_leader = lib.status().leader
        if len(ctl_terms) == 1 and ours.raft_term in ctl_terms:
            break  # nobody was elected while we asked: the answers must agree
        time.sleep(0.2)
    assert len(ctl_leaders) == 1
    assert client.leader_id() == ours.leader == ctl_leaders.pop()
    assert lib_leader is not None and lib_leader.id == ours.leader
    leader_member = etcd_tls.leader()  # the harness's view, by name
    assert by_name(client.members())[leader_member.name].id == ours.leader


def test_member_add_rejects_a_bad_peer_url_before_any_request(etcd_plain, make_client):
    client = make_client(etcd_plain)
    before = client.transport.connects
    with pytest.raises(EtcdConfigError, match="must not contain a path"):
        client.member_add("http://127.0.0.10:2380/path", is_learner=True)
    with pytest.raises(EtcdConfigError, match="scheme must be http or https"):
        client.member_add(["ftp://127.0.0.10:2380"])
    assert client.transport.connects == before
    assert len(client.members()) == 1


# ---------------------------------------------------------------------------
# private clusters: kills and membership changes
# ---------------------------------------------------------------------------

def test_endpoint_statuses_and_health_with_a_member_killed(etcd_cluster_factory, make_client):
    cluster = etcd_cluster_factory(size=3, tls=True, name="killone")
    client = make_client(cluster)
    before = client.endpoint_statuses()
    assert sorted(before) == sorted(cluster.endpoints)
    assert all(isinstance(s, EndpointStatus) for s in before.values()), before
    leader_id = client.leader_id()
    victim = next(hm for hm in cluster.members if before[hm.client_url].member_id != leader_id)

    # The client holds a kept-alive TLS connection to the victim from the call
    # above: a dead member must still read as unreachable, not as a TLS problem.
    victim.kill()
    after = client.endpoint_statuses()
    assert sorted(after) == sorted(cluster.endpoints)
    dead = after[victim.client_url]
    assert isinstance(dead, EtcdUnreachable) and not isinstance(dead, EtcdTLSError), repr(dead)
    assert dead.endpoint == victim.client_url and victim.client_url in str(dead)
    assert "connection refused" in str(dead)
    survivors = [hm for hm in cluster.members if hm is not victim]
    for hm in survivors:
        st = after[hm.client_url]
        assert isinstance(st, EndpointStatus), repr(st)
        assert st.member_id == before[hm.client_url].member_id
        assert client.health(hm.client_url) == (True, "")
    # Killing a follower leaves the leader in place (even after an unrelated
    # election it would be one of the survivors, on which both agree).
    assert after[survivors[0].client_url].leader == after[survivors[1].client_url].leader
    assert after[survivors[0].client_url].leader != before[victim.client_url].member_id

    healthy, reason = client.health(victim.client_url)
    assert healthy is False
    assert victim.client_url in reason and "unreachable" in reason
    with pytest.raises(EtcdUnreachable, match="connection refused"):
        client.status(victim.client_url)  # one endpoint named: no failover
    # Calls without an endpoint fail over; the dead member is still a member.
    assert sorted(m.name for m in client.members()) == sorted(hm.name for hm in cluster.members)

    # etcd's default strict reconfiguration check refuses to add a member unless
    # every member has been connected for 5 s (here one is even down); the
    # client reports etcd's "unhealthy cluster" answer.
    with pytest.raises(EtcdUnreachable, match="unhealthy cluster"):
        client.member_add("https://127.0.0.14:2380", is_learner=True)
    assert len(etcdctl_members(cluster)) == 3  # nothing was added


def test_learner_add_catch_up_promote_update_remove(etcd_cluster_factory, make_client, etcd3_lib):
    cluster = etcd_cluster_factory(size=1, tls=True, name="grow", extra_args=NO_STRICT_RECONFIG)
    client = make_client(cluster)
    first = cluster.member(0)
    first_id = client.members()[0].id
    for i in range(20):  # something for the learner to catch up on
        client.put("/grow/k%02d" % i, "v%d" % i)

    new = cluster.new_member()
    assert new.peer_url.startswith("https://") and new.peer_url != first.peer_url
    added, listed = client.member_add([new.peer_url], is_learner=True)
    assert added.is_learner is True and added.peer_urls == [new.peer_url]
    assert added.name == "" and added.client_urls == []  # not started yet
    assert added.id > 0 and added.id != first_id
    assert sorted(m.id for m in listed) == sorted([first_id, added.id])
    ctl = etcdctl_members(cluster)
    assert ctl[""]["ID"] == added.id and ctl[""]["peerURLs"] == [new.peer_url]
    assert ctl[""].get("isLearner") is True
    # (No member_update on a learner here: etcd 3.4 drops its learner flag from
    # the member list on update, while raft still treats it as a learner.)

    # Not started, so certainly not in sync: etcd refuses, the client says why.
    with pytest.raises(EtcdError) as excinfo:
        client.member_promote(added.id)
    err = excinfo.value
    assert not isinstance(err, (EtcdUnreachable, EtcdNotFound))
    assert "can only promote a learner member which is in sync with leader" in str(err)
    assert first.client_url in str(err), str(err)
    assert err.code == 9, repr(err)  # gRPC FAILED_PRECONDITION
    assert by_name(client.members())[""].is_learner is True

    cluster.start_joining_member(new)
    st = client.status(new.client_url)
    assert st.is_learner is True and st.member_id == added.id and st.leader == first_id
    assert st.version == ETCD_VERSION
    assert client.health(new.client_url) == (True, "")

    # It catches up: a local (serializable) read on the learner sees the data.
    learner_client = make_client(cluster, endpoints=[new.client_url])
    kv = wait_for(lambda: learner_client.get("/grow/k19", serializable=True), what="learner to catch up")
    assert kv.value == b"v19"

    def promoted():
        try:
            return client.member_promote(added.id)
        except EtcdError as exc:
            assert "in sync with leader" in str(exc), exc
            return None

    after = wait_for(promoted, what="promote to succeed")
    assert [m.is_learner for m in after] == [False, False]
    members = by_name(client.members())
    assert members[new.name].id == added.id and members[new.name].is_learner is False
    assert members[new.name].client_urls == [new.client_url]
    # The member itself applies the change a moment later.
    wait_for(lambda: client.status(new.client_url).is_learner is False, what="new member to see itself promoted")
    ctl = etcdctl_members(cluster)
    assert ctl[new.name]["ID"] == added.id and not ctl[new.name].get("isLearner", False)
    lib_ids = sorted(m.id for m in etcd3_lib(cluster).members)
    assert lib_ids == sorted([first_id, added.id])

    with pytest.raises(EtcdError, match="can only promote a learner member"):
        client.member_promote(added.id)  # already a voter

    # Peer URLs of a running voter: add a second one, then restore.
    extra = "https://%s:%d" % (first.ip, new.peer_port)  # nobody listens there on first.ip
    both = by_name(client.member_update(first_id, [first.peer_url, extra]))
    assert sorted(both[first.name].peer_urls) == sorted([first.peer_url, extra])
    assert both[first.name].client_urls == [first.client_url]
    assert sorted(etcdctl_members(cluster)[first.name]["peerURLs"]) == sorted([first.peer_url, extra])
    assert sorted(by_name(etcd3_lib(cluster).members)[first.name].peer_urls) == sorted([first.peer_url, extra])
    restored = by_name(client.member_update(first_id, first.peer_url))
    assert restored[first.name].peer_urls == [first.peer_url]
    assert etcdctl_members(cluster)[first.name]["peerURLs"] == [first.peer_url]
    # The cluster works with the restored URL: the second member still replicates.
    client.put("/grow/after-update", "x")
    assert wait_for(lambda: learner_client.get("/grow/after-update", serializable=True),
                    what="replication after member_update").value == b"x"

    remaining = client.member_remove(added.id)
    assert [m.id for m in remaining] == [first_id]
    cluster.drop_member(new)
    assert list(etcdctl_members(cluster)) == [first.name]
    assert [m.id for m in client.members()] == [first_id]
    assert client.health(first.client_url) == (True, "")
    assert client.get("/grow/k00").value == b"v0"  # the cluster still serves

    with pytest.raises(EtcdNotFound, match="member not found"):
        client.member_remove(added.id)
    with pytest.raises(EtcdNotFound, match="member not found"):
        client.member_update(added.id, new.peer_url)
    with pytest.raises(EtcdNotFound, match="member not found"):
        client.member_promote(added.id)


def test_learner_can_be_removed_without_promotion(etcd_cluster_factory, make_client):
    # etcd's default strict reconfiguration checks stay on here: a single-member
    # cluster may add a learner at once, and removing a learner needs no quorum check.
    cluster = etcd_cluster_factory(size=1, tls=False, name="learner")
    client = make_client(cluster)
    new = cluster.new_member()
    added = client.member_add(new.peer_url, is_learner=True)[0]
    cluster.start_joining_member(new)
    assert client.status(new.client_url).is_learner is True
    ids = {m.id for m in client.members()}
    assert added.id in ids and len(ids) == 2

    remaining = client.member_remove(added.id)
    assert added.id not in {m.id for m in remaining} and len(remaining) == 1
    cluster.drop_member(new)
    assert list(etcdctl_members(cluster)) == [cluster.member(0).name]
