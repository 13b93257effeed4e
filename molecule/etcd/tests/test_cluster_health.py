"""The converged cluster: the inventory's members, all voting and healthy, agreeing on one leader."""

import json

from etcd_scenario import HOST_CONFIG_DIR


def test_member_list_matches_the_inventory(scenario):
    client = scenario.client()
    try:
        members = client.members()
    finally:
        client.close()
    assert sorted(m.name for m in members) == scenario.members
    for m in members:
        assert not m.is_learner, '%s is still a learner' % m.name
        assert m.peer_urls == [scenario.peer_url(m.name)], m
        assert m.client_urls == [scenario.client_url(m.name)], m
    # The spares are not part of the cluster and run no etcd of ours (the first one runs Debian's own, which
    # prepare.yml installed: the scaling test adds it).
    for host in scenario.spares:
        ours = scenario.docker_exec(host, ['test', '-e', HOST_CONFIG_DIR + '/etcd.conf.yml']).returncode == 0
        assert not (ours and scenario.service_state(host) == 'active'), '%s runs etcd but is not a member' % host


def test_every_member_is_healthy_and_agrees_on_the_leader(scenario):
    scenario.wait_cluster(scenario.members, timeout=60)
    client = scenario.client()
    try:
        ids = {m.id: m.name for m in client.members()}
        leaders = {}
        for host in scenario.members:
            url = scenario.client_url(host)
            status = client.status(url)
            assert ids.get(status.member_id) == host, '%s answered as member %x' % (url, status.member_id)
            assert not status.errors and not status.is_learner, status
            healthy, reason = client.health(url)
            assert healthy, '%s: %s' % (host, reason)
            leaders[host] = status.leader
    finally:
        client.close()
    assert len(set(leaders.values())) == 1, 'members disagree on the leader: %s' % leaders
    assert set(leaders.values()) <= set(ids), 'the leader is not a member: %s' % leaders


def test_etcdctl_sees_the_same_cluster(scenario):
    """etcdctl (gRPC, not our JSON gateway client), from inside a member, asked at every member's address."""
    scenario.wait_cluster(scenario.members, timeout=60)
    urls = [scenario.client_url(h) for h in scenario.members]
    proc = scenario.etcdctl(scenario.members[-1], ['endpoint', 'status', '-w', 'json'], endpoints=urls)
    assert proc.returncode == 0, proc.stderr
    statuses = {s['Endpoint']: s['Status'] for s in json.loads(proc.stdout)}
    assert sorted(statuses) == sorted(urls)
    assert len({s['leader'] for s in statuses.values()}) == 1, statuses
    assert len({s['header']['member_id'] for s in statuses.values()}) == len(urls), statuses

    proc = scenario.etcdctl(scenario.members[0], ['endpoint', 'health', '-w', 'json'], endpoints=urls)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    health = json.loads(proc.stdout)
    assert sorted(h['endpoint'] for h in health) == sorted(urls)
    assert all(h['health'] for h in health), health
