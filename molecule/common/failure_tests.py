"""Faults with real processes and real kills, as a client of the load balancer sees them: each test writes
through the scenario's write port on a new connection every 20 ms while something breaks, then checks that
writes came back, that nothing acknowledged was lost, and that the cluster heals.

The default scenario's test_failures.py imports them; any scenario whose Scenario class names its load balancer
(LB) and its ports per cluster group (LB_PORTS) can. The tests act on the scenario's first cluster; lb_probe
and patroni_scenario are the patroni scenario's test modules.
"""

import json
import subprocess
import threading
import time

import psycopg2

from lb_probe import connect, create_probe_table, eventually, missing_rows
from patroni_scenario import NAMESPACE

from ansible_collections.pgha.cluster.plugins.module_utils.patroni_state import read_cluster_state

TABLE = 'fault_probe'
STATUS_URL = 'http://127.0.0.1:7001/status'


class Writer(object):
    """INSERTs through the write port, each on a new connection, recording acknowledged ids and failures."""

    def __init__(self, scenario, cluster, interval=0.02):
        self.scenario, self.cluster, self.interval = scenario, cluster, interval
        self.port = scenario.LB_PORTS[cluster.group]['primary']
        self.acked = []  # (monotonic time, id, server address)
        self.failed = []  # (monotonic time, error)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        create_probe_table(self.scenario, self.cluster, self.port, host=self.scenario.LB, table=TABLE)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self):
        while not self._stop.is_set():
            try:
                conn = connect(self.scenario, self.cluster, self.port, host=self.scenario.LB, timeout=2)
                try:
                    conn.autocommit = True
                    with conn.cursor() as cur:
                        cur.execute('INSERT INTO %s DEFAULT VALUES RETURNING id, host(inet_server_addr())' % TABLE)
                        row_id, address = cur.fetchone()
                        self.acked.append((time.monotonic(), row_id, address))
                finally:
                    conn.close()
            except psycopg2.Error as exc:
                self.failed.append((time.monotonic(), str(exc).strip().splitlines()[0] if str(exc).strip() else ''))
            time.sleep(self.interval)

    def acked_after(self, moment, address=None):
        return [t for t, _id, at in self.acked if t > moment and address in (None, at)]

    def failed_between(self, start, end):
        return [error for t, error in self.failed if start <= t <= end]


def _agent_status(scenario):
    code = 'import urllib.request; print(urllib.request.urlopen(%r, timeout=5).read().decode())' % STATUS_URL
    proc = scenario.docker_exec(scenario.LB, ['python3', '-c', code])
    return json.loads(proc.stdout) if proc.returncode == 0 else None


def _assert_all_present(scenario, cluster, writer, new):
    acked_ids = [row_id for _t, row_id, _at in writer.acked]
    missing = missing_rows(scenario, cluster, acked_ids, table=TABLE)
    assert missing == 0, '%d of %d acknowledged commits are missing on %s' % (missing, len(acked_ids), new)
    return len(acked_ids)


def test_a_planned_switchover_under_write_load_loses_nothing(scenario, report):
    cluster = scenario.main
    old = cluster.wait_healthy().primary().name
    candidate = sorted(set(cluster.members) - {old})[0]
    with Writer(scenario, cluster) as writer:
        eventually(lambda: len(writer.acked) >= 20, 'writes through the load balancer', timeout=30)
        started = time.monotonic()
        run = scenario.playbook('switchover', extra_vars={'patroni_switchover_candidate': candidate},
                                label='switchover-under-load')
        assert run.rc == 0, run.output[-3000:]
        first = eventually(lambda: writer.acked_after(started, scenario.ip(candidate))
                           and writer.acked_after(started, scenario.ip(candidate))[0],
                           'a write acknowledged by %s' % candidate, timeout=60, interval=0.05)
        eventually(lambda: len(writer.acked_after(first)) >= 20, 'writes going on after the switchover', timeout=30)
    last_old = max(t for t, _id, at in writer.acked if at == scenario.ip(old))
    assert last_old < first, 'writes reached %s after %s took them' % (old, candidate)
    assert not [t for t, _id, at in writer.acked if t > first and at != scenario.ip(candidate)]
    count = _assert_all_present(scenario, cluster, writer, candidate)
    failed = writer.failed_between(started, first)
    report('switchover %s -> %s under writes through %s: write outage %.2f s, %d failed attempts in it; '
           '%d acknowledged commits, none lost' % (old, candidate, scenario.LB, first - last_old, len(failed), count))


def test_primary_killed_loses_no_acknowledged_commit_in_synchronous_mode(scenario, report):
    cluster = scenario.main
    old = cluster.wait_healthy().primary().name
    cluster.patch_config({'synchronous_mode': True}, host=old)
    try:
        eventually(lambda: cluster.state().sync is not None and cluster.state().sync.sync_standby,
                   'a synchronous standby', timeout=60, interval=0.5)
        with Writer(scenario, cluster) as writer:
            eventually(lambda: len(writer.acked) >= 20, 'writes through the load balancer', timeout=30)
            client = cluster.etcd(leave_out=old, timeout=5)

            def leader():
                return read_cluster_state(client, NAMESPACE, cluster.scope).leader
            killed = time.monotonic()
            scenario.docker('kill', old)  # SIGKILL to every process of the host: no shutdown, no leader key release
            try:
                moved = eventually(lambda: (leader() not in (None, old)) and time.monotonic(),
                                   'the leader key moving away from %s' % old, timeout=120, interval=0.05)
                new = leader()
            finally:
                client.close()
            first = eventually(lambda: writer.acked_after(killed, scenario.ip(new))
                               and writer.acked_after(killed, scenario.ip(new))[0],
                               'a write acknowledged by %s' % new, timeout=60, interval=0.05)
            eventually(lambda: len(writer.acked_after(first)) >= 20, 'writes going on after the failover', timeout=30)
        last_old = max(t for t, _id, at in writer.acked if at == scenario.ip(old))
        assert not [t for t, _id, at in writer.acked if t > moved and at != scenario.ip(new)]
        count = _assert_all_present(scenario, cluster, writer, new)
        report('primary %s killed: leader key on %s after %.1f s, first write through %s %.1f s after that; '
               'write outage %.1f s; %d acknowledged commits, none lost'
               % (old, new, moved - killed, scenario.LB, first - moved, first - last_old, count))
    finally:
        subprocess.run(['docker', 'start', old], capture_output=True, timeout=120, check=False)
        state = cluster.wait_healthy(timeout=300)
        cluster.patch_config({'synchronous_mode': False}, host=state.primary().name)


def test_an_etcd_member_killed_does_not_stop_writes_and_rejoins(scenario, report):
    cluster = scenario.main
    member = scenario.etcd_members[-1]
    with Writer(scenario, cluster) as writer:
        eventually(lambda: len(writer.acked) >= 10, 'writes through the load balancer', timeout=30)
        start = time.monotonic()
        proc = scenario.docker_exec(member, ['sh', '-c', 'systemctl kill --signal=KILL etcd.service && sleep 8 && '
                                                         'systemctl is-active etcd.service || true'])
        end = time.monotonic()
        time.sleep(0.5)
    assert proc.returncode == 0, proc.stderr
    failed = writer.failed_between(start, end)
    assert not failed, failed
    assert len(writer.acked_after(start)) > 50
    client = cluster.etcd()
    try:
        eventually(lambda: len([m for m in client.members() if m.name == member]) == 1
                   and scenario.docker_exec(member, ['systemctl', 'is-active', 'etcd.service']).stdout.strip()
                   == 'active', 'etcd on %s running again' % member, timeout=60)
    finally:
        client.close()
    report('etcd on %s killed: %d writes through %s in %.1f s, none failed; etcd running again'
           % (member, len(writer.acked_after(start)), scenario.LB, end - start))


def test_the_agent_killed_keeps_routing_and_resyncs(scenario, report):
    cluster = scenario.main
    primary = cluster.wait_healthy().primary().name
    with Writer(scenario, cluster) as writer:
        eventually(lambda: len(writer.acked) >= 10, 'writes through the load balancer', timeout=30)
        start = time.monotonic()
        proc = scenario.docker_exec(scenario.LB, ['systemctl', 'kill', '--signal=KILL', 'pgha-lb-sync.service'])
        assert proc.returncode == 0, proc.stderr
        status = eventually(lambda: (_agent_status(scenario) or {}).get('clusters', {}).get(cluster.scope, {})
                            .get('verified_primary') == primary and _agent_status(scenario),
                            'the restarted agent verifying %s' % primary, timeout=60)
        end = time.monotonic()
    assert not writer.failed_between(start, end), writer.failed_between(start, end)
    assert status['etcd']['ok'] is True
    pid = scenario.docker_exec(scenario.LB, ['systemctl', 'show', '-p', 'NRestarts', '--value',
                                             'pgha-lb-sync.service']).stdout.strip()
    assert pid.isdigit() and int(pid) >= 1, pid  # restarted by systemd, not by the test
    report('agent killed: systemd restarted it and it verified %s again within %.1f s; %d writes, none failed'
           % (primary, end - start, len(writer.acked_after(start))))


def _lb_netns(scenario, *iptables_args):
    pid = scenario.docker('inspect', '-f', '{{.State.Pid}}', scenario.LB)
    proc = subprocess.run(['nsenter', '-t', pid, '-n', 'iptables'] + list(iptables_args), capture_output=True,
                          text=True, timeout=30, check=False)
    assert proc.returncode == 0, proc.stderr


def test_etcd_unreachable_from_the_lb_keeps_the_last_known_good_routing(scenario, report):
    cluster = scenario.main
    primary = cluster.wait_healthy().primary().name
    rule = ['OUTPUT', '-p', 'tcp', '--dport', '2379', '-j', 'REJECT', '--reject-with', 'tcp-reset']
    with Writer(scenario, cluster) as writer:
        eventually(lambda: len(writer.acked) >= 10, 'writes through the load balancer', timeout=30)
        start = time.monotonic()
        _lb_netns(scenario, '-I', *rule)
        try:
            status = eventually(lambda: (_agent_status(scenario) or {}).get('etcd', {}).get('ok') is False
                                and _agent_status(scenario), 'the agent reporting etcd unreachable', timeout=90)
            time.sleep(2)
            cut_off = time.monotonic()
        finally:
            _lb_netns(scenario, '-D', *rule)
        eventually(lambda: (_agent_status(scenario) or {}).get('etcd', {}).get('ok') is True,
                   'the agent reaching etcd again', timeout=90)
        end = time.monotonic()
    assert not writer.failed_between(start, end), writer.failed_between(start, end)
    entry = status['clusters'][cluster.scope]
    assert entry['verified_primary'] == primary, entry
    writers = [s['member'] for s in entry['backends']['primary']['servers'] if s['haproxy'] == 'up']
    assert writers == [primary], entry['backends']['primary']
    report('etcd unreachable from %s for %.1f s: routing to %s kept, %d writes, none failed'
           % (scenario.LB, cut_off - start, primary, len(writer.acked_after(start))))
