"""A changed Patroni unit (as after an upgrade of Patroni) restarts the Patroni service of every member,
in maintenance mode: each Patroni process is new, but no PostgreSQL went down, the leader kept its key,
and the cluster is resumed afterwards."""

import re


def _main_pid(scenario, host):
    proc = scenario.docker_exec(host, ['systemctl', 'show', '--property=MainPID', '--value', 'patroni.service'])
    assert proc.returncode == 0, proc.stderr
    return int(proc.stdout.strip())


def _postmaster_start(scenario, host):
    return scenario.sql_value(host, 'SELECT pg_postmaster_start_time()')


def test_patroni_restarts_without_stopping_postgresql(scenario, report):
    leader = scenario.wait_healthy().primary().name
    before = {h: (_main_pid(scenario, h), _postmaster_start(scenario, h)) for h in scenario.members}
    for host in scenario.members:
        # What a new package or template would do: the unit on the host differs from the role's.
        proc = scenario.docker_exec(host, ['sh', '-c', 'echo "# edited" >> /etc/systemd/system/patroni.service'])
        assert proc.returncode == 0, proc.stderr

    run = scenario.playbook('patroni', label='service-restart')
    assert run.rc == 0, run.tail()
    restarted = re.findall(r'TASK \[pgha\.cluster\.patroni : Restart the Patroni service of (\S+)\]', run.output)
    assert sorted(restarted) == scenario.members, run.tail()
    assert 'TASK [pgha.cluster.patroni : Resume the cluster]' in run.output

    state = scenario.wait_healthy(leader=leader)
    assert not state.config.paused and not [m.name for m in state.members if m.pause]
    for host in scenario.members:
        status, patroni = scenario.rest(host, '/patroni')
        assert status == 200 and not patroni.get('pause'), (host, patroni)
        pid, started = _main_pid(scenario, host), _postmaster_start(scenario, host)
        assert pid != before[host][0], 'Patroni on %s was not restarted' % host
        assert started == before[host][1], 'PostgreSQL on %s restarted (%s -> %s)' % (host, before[host][1], started)
    report('Patroni service restarted on %d members in maintenance mode by the playbook in %.0f s; '
           'every PostgreSQL kept running, %s kept the leader key' % (len(restarted), run.seconds, leader))
