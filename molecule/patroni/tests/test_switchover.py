"""Switchover with the switchover playbook: the leader of the first cluster moves to a replica and back,
nothing written before is lost, the other cluster's leader stays where it was, and each move is timed from
the playbook's start to a write accepted on the new primary."""

import re
import time
import uuid


def _switch(scenario, candidate, report, label):
    before = scenario.wait_healthy().primary().name
    other_leader = scenario.beta.wait_healthy().primary().name
    token = uuid.uuid4().hex
    scenario.sql_value(before, 'CREATE TABLE IF NOT EXISTS verify_rows (token text PRIMARY KEY, '
                               'written timestamptz DEFAULT now())')
    scenario.sql_value(before, "INSERT INTO verify_rows (token) VALUES ('%s')" % token)

    started = time.monotonic()
    run = scenario.playbook('switchover', extra_vars={'patroni_switchover_candidate': candidate}, label=label)
    assert run.rc == 0, run.tail()
    # The playbook returns once the candidate holds the leader key and runs as primary.
    state = scenario.state()
    assert state.leader == candidate and state.primary() is not None and state.primary().name == candidate
    status, own = scenario.rest(candidate, '/patroni')
    assert status == 200 and own['role'] in ('primary', 'master'), own
    # Writes work on the new primary at once, and the row written before the move is there.
    scenario.sql_value(candidate, "INSERT INTO verify_rows (token) VALUES ('%s-after')" % token)
    writable = time.monotonic() - started
    assert scenario.sql_value(candidate, "SELECT count(*) FROM verify_rows WHERE token = '%s'" % token) == '1'
    # The old primary comes back as a replica streaming from the new one.
    scenario.wait_healthy(leader=candidate, timeout=120)
    # The candidate named the cluster: the other one was not touched.
    assert scenario.beta.state().leader == other_leader
    assert run.output.count('TASK [pgha.cluster.patroni : Switch the primary over]') == 1
    assert re.findall(r'"msg": "switchover: [^"]*\(cluster (\S+)\)"', run.output) == [scenario.main.scope], run.tail()
    confirmed = re.search(r'switchover: \S+ -> \S+ in ([0-9.]+) s', run.output)
    report('switchover %s -> %s: new leader confirmed in etcd %s s after the request; playbook %.1f s; write '
           'accepted on the new primary %.1f s after the playbook started'
           % (before, candidate, confirmed.group(1) if confirmed else '?', run.seconds, writable))
    return before


def test_switchover_to_a_replica_and_back(scenario, report):
    leader = scenario.wait_healthy().primary().name
    candidate = sorted(set(scenario.members) - {leader})[0]
    assert _switch(scenario, candidate, report, 'switchover-away') == leader
    assert _switch(scenario, leader, report, 'switchover-back') == candidate


def test_switchover_check_mode_changes_nothing(scenario):
    leader = scenario.wait_healthy().primary().name
    candidate = sorted(set(scenario.members) - {leader})[-1]
    run = scenario.playbook('switchover', extra_vars={'patroni_switchover_candidate': candidate},
                            label='switchover-check', check=True)
    assert run.rc == 0, run.tail()
    time.sleep(3)
    assert scenario.wait_healthy().primary().name == leader


def test_switchover_of_several_clusters_without_a_choice_is_refused(scenario):
    leaders = {group: cluster.wait_healthy().primary().name for group, cluster in scenario.clusters.items()}
    run = scenario.playbook('switchover', label='switchover-refused')
    assert run.rc != 0
    assert 'This play spans several Patroni clusters' in run.output, run.tail()
    assert not [r for r in run.recap.values() if r['changed']], run.recap
    assert {group: cluster.state().leader for group, cluster in scenario.clusters.items()} == leaders
