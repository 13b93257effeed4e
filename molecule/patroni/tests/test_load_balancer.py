"""The load balancer lb1 in front of both clusters (main on 5000/5001, beta on 5100/5101), as a client sees it.

Through the write port a connection lands where pg_is_in_recovery() is false, through the read port on replicas
only; after a switchover the write port reaches the new primary, and the time from the leader key's change in
etcd to the first write accepted through lb1 is reported. The agent's /status, read inside lb1, agrees with the
cluster state patroni_info reads.
"""

import json

from lb_probe import LB, PORTS, Probe, create_probe_table, eventually, landing

STATUS_URL = 'http://127.0.0.1:7001/status'


def _agent_status(scenario):
    code = 'import urllib.request; print(urllib.request.urlopen(%r, timeout=10).read().decode())' % STATUS_URL
    proc = scenario.docker_exec(LB, ['python3', '-c', code])
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_the_write_port_reaches_the_primary_and_the_read_port_the_replicas(scenario):
    for group, cluster in scenario.clusters.items():
        state = cluster.wait_healthy()
        primary = state.primary().name
        replicas = set(cluster.members) - {primary}
        ports = PORTS[group]
        landed = eventually(lambda: landing(scenario, cluster, ports['primary']),
                            '%s: a connection through %s:%d' % (group, LB, ports['primary']))
        assert landed == (primary, False), landed
        seen = set()
        for attempt in range(3 * len(replicas)):  # pylint: disable=unused-variable
            member, in_recovery = eventually(lambda: landing(scenario, cluster, ports['replicas']),
                                             '%s: a connection through %s:%d' % (group, LB, ports['replicas']))
            assert in_recovery and member in replicas, (member, in_recovery)
            seen.add(member)
        # Round robin over the replicas that stream within the lag limit: here all of them.
        assert seen == replicas, seen


def test_the_agents_status_agrees_with_patroni_info(scenario):
    for group, cluster in scenario.clusters.items():
        state = cluster.wait_healthy()
        primary = state.primary().name
        streaming = sorted(m.name for m in state.replicas() if m.replication_state == 'streaming')

        def agreed():
            status = _agent_status(scenario)
            entry = status['clusters'][cluster.scope]
            return (status['etcd']['ok'] and entry['leader'] == state.leader
                    and entry['verified_primary'] == primary and not entry['error']) and status

        status = eventually(agreed, '%s: the agent\'s /status naming %s' % (group, primary), timeout=30)
        backends = status['clusters'][cluster.scope]['backends']
        assert backends['primary']['port'] == PORTS[group]['primary']
        writers = [s for s in backends['primary']['servers'] if s['wanted']]
        assert [s['member'] for s in writers] == [primary], backends['primary']
        assert writers[0]['haproxy'] == 'up', writers[0]
        assert all(s['haproxy'] == 'maint' for s in backends['primary']['servers'] if not s['wanted'])
        readers = sorted(s['member'] for s in backends['replicas']['servers'] if s['wanted'])
        assert readers == streaming, backends['replicas']


def test_after_a_switchover_the_write_port_reaches_the_new_primary(scenario, report):
    cluster = scenario.main
    port = PORTS['main']['primary']
    leader = cluster.wait_healthy().primary().name
    candidate = sorted(set(cluster.members) - {leader})[0]
    create_probe_table(scenario, cluster, port)

    with Probe(scenario, cluster, leader, [port]) as probe:
        run = scenario.playbook('switchover', extra_vars={'patroni_switchover_candidate': candidate},
                                label='switchover-through-lb')
        assert run.rc == 0, run.tail()
        eventually(lambda: probe.reached(port, candidate), 'a write through %s:%d on %s' % (LB, port, candidate),
                   timeout=60, interval=0.1)

    assert probe.leader_changed[1] == candidate
    seen = probe.outcome(port)
    assert seen.reached_old_before, 'no write reached %s through %s before the switchover' % (leader, LB)
    assert not seen.misrouted, 'writes landed on %s after the leader key moved' % seen.misrouted
    report('%s:%d switchover %s -> %s: first write through the load balancer %.3f s after the leader key '
           'changed; write outage through %s %.3f s (%d writes tried, %d failed)'
           % (LB, port, leader, candidate, seen.convergence, LB, seen.outage, seen.tried, seen.failed))
    # HAProxy's checks alone (inter 3s, rise 2) take 3-5 s; the agent enables the new primary once it answers.
    assert seen.convergence < 10, seen.convergence
    # The write port now lands on the new primary, outside a switchover too.
    assert landing(scenario, cluster, port) == (candidate, False)
    cluster.wait_healthy(leader=candidate)
