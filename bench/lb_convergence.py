"""How fast writes through the load balancer follow a leader change: the pgha-lb-sync agent vs HAProxy's health
checks alone (Patroni's documented settings: OPTIONS /primary, inter 3s, fall 3, rise 2), on one real cluster, in
the same leader changes: planned switchovers, and crashes of the primary's host.

Needs a converged Molecule scenario: the default one (the demo: demo-db1..3, demo-lb) or the patroni one (lb1 in
front of cluster main):

    make molecule-converge-patroni   # or: make demo, then --scenario default
    .venv/bin/python bench/lb_convergence.py [--scenario patroni] [--runs 5] [--crash-runs 0] [--json FILE]

For the baseline it starts a second HAProxy in the load balancer's container, on port 5900, configured as
Patroni's documentation recommends (every member a server, its own checks decide), verified against the same CA.
Each switchover goes through Patroni's REST API while one client writes through the agent's write port (5000)
and another through 5900, each write on a new connection, every 20 ms. Each crash is a `docker kill` of the
primary's container under the same two writers, in synchronous mode so that no acknowledged write may be lost;
the container is started again and the cluster healed before the next run. Per port it reports the seconds from
the leader key's change in etcd to the first write accepted on the new primary, and the write outage (last write
accepted on the old primary to the first on the new one). See bench/README.md.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(REPO, 'molecule', 'common'), os.path.join(REPO, 'molecule', 'patroni', 'tests'),
                os.path.join(REPO, 'molecule', 'default', 'tests')]

import collection_path  # noqa: E402  pylint: disable=wrong-import-position

collection_path.make_importable()

from lb_probe import (  # noqa: E402  pylint: disable=wrong-import-position
    Probe, create_probe_table, eventually, missing_rows)
from patroni_scenario import API_PORT, PG_PORT  # noqa: E402  pylint: disable=wrong-import-position
from scenario_files import find_scenario  # noqa: E402  pylint: disable=wrong-import-position

CHECKS_ONLY_PORT = 5900
SETTLE_S = 12
BASE_DIR = '/tmp/pgha-bench-haproxy'
# Where the haproxy role puts the CA that signed the Patroni REST API certificates.
LB_CA = '/etc/haproxy/pgha-tls/ca.crt'
AGENT, CHECKS_ONLY = 'agent', 'checks only'


def lb_shell(scenario, script, stdin=None):
    proc = subprocess.run(['docker', 'exec', '-i', scenario.LB, 'sh', '-ec', script], input=stdin or '', text=True,
                          capture_output=True, timeout=120, check=False)
    if proc.returncode != 0:
        raise RuntimeError('in %s: %s: %s' % (scenario.LB, script, proc.stderr.strip()))
    return proc.stdout


def checks_only_config(scenario, cluster):
    """haproxy.cfg as Patroni's documentation recommends it, with the REST API checked over verified TLS."""
    servers = ''.join(
        '    server %s %s:%d maxconn 100 check port %d check-ssl verify required ca-file %s\n'
        % (member, scenario.ip(member), PG_PORT, API_PORT, LB_CA) for member in cluster.members)
    return ('global\n    maxconn 200\n    pidfile %s/haproxy.pid\n\n'
            'defaults\n    mode tcp\n    retries 2\n    timeout connect 4s\n    timeout client 30m\n'
            '    timeout server 30m\n    timeout check 3s\n\n'
            'listen checks_only\n    bind *:%d\n    option httpchk OPTIONS /primary\n'
            '    http-check expect status 200\n'
            '    default-server inter 3s fall 3 rise 2 on-marked-down shutdown-sessions\n%s'
            % (BASE_DIR, CHECKS_ONLY_PORT, servers))


class ChecksOnly(object):
    """The baseline HAProxy in the load balancer's container, on CHECKS_ONLY_PORT, while the block runs."""

    def __init__(self, scenario, cluster):
        self.scenario, self.cluster = scenario, cluster

    def start(self):
        lb_shell(self.scenario, 'mkdir -p %s && cat > %s/haproxy.cfg' % (BASE_DIR, BASE_DIR),
                 stdin=checks_only_config(self.scenario, self.cluster))
        lb_shell(self.scenario, 'haproxy -c -q -f {0}/haproxy.cfg && haproxy -D -f {0}/haproxy.cfg'.format(BASE_DIR))

    def stop(self):
        lb_shell(self.scenario, 'if [ -f {0}/haproxy.pid ]; then kill $(cat {0}/haproxy.pid) || true; fi; '
                                'rm -rf {0}'.format(BASE_DIR))

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()


def ports_of(scenario, cluster):
    """{label: port of the load balancer}: the agent's write port and the baseline's."""
    return {AGENT: scenario.LB_PORTS[cluster.group]['primary'], CHECKS_ONLY: CHECKS_ONLY_PORT}


def switch_over(scenario, cluster, leader, candidate):
    status, body = scenario.rest(leader, '/switchover', method='POST', body={'leader': leader, 'candidate': candidate},
                                 auth=('patroni', cluster.restapi_password))
    if status != 200:
        raise RuntimeError('switchover %s -> %s refused: %s %s' % (leader, candidate, status, body))


def poll_promotion(scenario, candidate, probe, seen, interval=0.02, timeout=60):
    """Note when, after the leader key changed, ``candidate``'s REST API first answers 200 on /primary (what
    the agent waits for) and when its PostgreSQL first runs out of recovery (it accepts writes from then on;
    read in the container over the local socket, each look costing a docker exec of some 50 ms)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and 'writable' not in seen:
        if probe.leader_changed:
            if 'primary_api' not in seen:
                try:
                    if scenario.rest(candidate, '/primary', timeout=2)[0] == 200:
                        seen['primary_api'] = time.monotonic()
                except OSError:
                    pass
            proc = scenario.psql(candidate, 'SELECT pg_is_in_recovery()', timeout=10)
            if proc.returncode == 0 and proc.stdout.strip() == 'f':
                seen['writable'] = time.monotonic()
        time.sleep(interval)


def missing_writes(scenario, cluster, probe):
    """How many acknowledged writes (through any port) the primary does not have."""
    return missing_rows(scenario, cluster, [i for ids in probe.acked.values() for i in ids])


def _outcomes(probe, ports):
    return dict((label, vars(probe.outcome(port))) for label, port in ports.items())


def switchover_run(scenario, cluster, ports, number):
    leader = cluster.wait_healthy().primary().name
    candidate = sorted(set(cluster.members) - {leader})[number % (len(cluster.members) - 1)]
    with Probe(scenario, cluster, leader, list(ports.values()), host=scenario.LB) as probe:
        seen = {}
        poller = threading.Thread(target=poll_promotion, args=(scenario, candidate, probe, seen), daemon=True)
        poller.start()
        time.sleep(1)  # writes reach the old primary through both ports before the switch
        switch_over(scenario, cluster, leader, candidate)
        eventually(lambda: all(probe.reached(port, candidate) for port in ports.values()),
                   'writes through every port on %s' % candidate, timeout=60, interval=0.1)
        poller.join(timeout=30)
    # HAProxy's own checks keep a demoted primary UP for up to fall x inter (9 s) in the checks-only
    # backend: a switchover back to it before then would be routed at once and flatter the baseline.
    time.sleep(SETTLE_S)
    cluster.wait_healthy(leader=candidate)
    return {'old': leader, 'new': candidate, 'ports': _outcomes(probe, ports),
            'promotion': dict((what, at - probe.leader_changed[0]) for what, at in seen.items()),
            'lost': missing_writes(scenario, cluster, probe)}


def crash_run(scenario, cluster, ports, baseline, heal_timeout=300):
    """One `docker kill` of the primary's container under both writers; then the container is started again and
    the cluster healed (``baseline``, the ChecksOnly, is restarted should the container come back elsewhere)."""
    leader = cluster.wait_healthy().primary().name
    address = scenario.ip(leader)
    try:
        with Probe(scenario, cluster, leader, list(ports.values()), host=scenario.LB,
                   etcd=lambda: cluster.etcd(leave_out=leader, timeout=5)) as probe:
            time.sleep(1)  # writes reach the old primary through both ports before the crash
            killed = time.monotonic()
            scenario.docker('kill', leader)  # SIGKILL to every process of the host: no shutdown, no leader key release
            eventually(lambda: probe.leader_changed and all(probe.reached(port, probe.leader_changed[1])
                                                            for port in ports.values()),
                       'writes through every port on the new leader', timeout=180, interval=0.1)
    finally:
        restarted = time.monotonic()
        scenario.docker('start', leader)
    if scenario.ip(leader) != address:
        baseline.stop()
        baseline.start()
    cluster.wait_healthy(timeout=heal_timeout)
    healed = time.monotonic()
    return {'old': leader, 'new': probe.leader_changed[1], 'ports': _outcomes(probe, ports),
            'leader_key_after_kill': probe.leader_changed[0] - killed, 'healed_after_restart': healed - restarted,
            'lost': missing_writes(scenario, cluster, probe)}


def _spread(values):
    return {'median': statistics.median(values), 'min': min(values), 'max': max(values)}


def summarise(runs):
    """Per port label: medians and ranges over the runs, failed/tried writes, runs with misrouted writes; and
    `agent / checks only` for the two medians."""
    summary = {}
    for label in (AGENT, CHECKS_ONLY):
        outcomes = [r['ports'][label] for r in runs]
        summary[label] = {'first_write': _spread([o['convergence'] for o in outcomes]),
                          'outage': _spread([o['outage'] for o in outcomes]),
                          'failed': sum(o['failed'] for o in outcomes), 'tried': sum(o['tried'] for o in outcomes),
                          'misrouted_runs': sum(1 for o in outcomes if o['misrouted'])}
    ratios = dict((what, summary[AGENT][what]['median'] / summary[CHECKS_ONLY][what]['median'])
                  for what in ('first_write', 'outage'))
    return summary, ratios


def _describe(ports, outcomes):
    return '  '.join('%s (%d): first write %.3f s, outage %.3f s, %d/%d writes failed%s'
                     % (label, ports[label], o['convergence'], o['outage'], o['failed'], o['tried'],
                        ', MISROUTED to %s' % o['misrouted'] if o['misrouted'] else '')
                     for label, o in sorted(outcomes.items()))


def _print_summary(summary, ratios, ports):
    for label, s in sorted(summary.items()):
        print('%-12s (%d) leader key -> first write: median %.3f s (%.3f-%.3f); write outage: median %.3f s '
              '(%.3f-%.3f); runs with misrouted writes: %d'
              % (label, ports[label], s['first_write']['median'], s['first_write']['min'], s['first_write']['max'],
                 s['outage']['median'], s['outage']['min'], s['outage']['max'], s['misrouted_runs']))
    print('agent / checks only (baseline, same leader changes): first write %.2fx, write outage %.2fx'
          % (ratios['first_write'], ratios['outage']), flush=True)


def failures(result):
    """What went wrong in a result of switchovers() or crashes(): misrouted or lost writes."""
    found = []
    for number, run in enumerate(result['runs']):
        for label, outcome in sorted(run['ports'].items()):
            if outcome['misrouted']:
                found.append('run %d: writes through %s landed on %s' % (number + 1, label, outcome['misrouted']))
        if run['lost']:
            found.append('run %d: %d acknowledged writes missing' % (number + 1, run['lost']))
    return found


def switchovers(scenario, cluster, runs):
    """``runs`` switchovers (the baseline HAProxy must run): {'runs', 'summary', 'ratios', 'promotion'}."""
    ports = ports_of(scenario, cluster)
    create_probe_table(scenario, cluster, ports[AGENT], host=scenario.LB)
    results = []
    for number in range(runs):
        run = switchover_run(scenario, cluster, ports, number)
        results.append(run)
        print('switchover %d: %s -> %s  /primary 200 after %.3f s, writable after %.3f s  %s  lost: %d'
              % (number + 1, run['old'], run['new'], run['promotion']['primary_api'], run['promotion']['writable'],
                 _describe(ports, run['ports']), run['lost']), flush=True)
    summary, ratios = summarise(results)
    _print_summary(summary, ratios, ports)
    # The new leader accepts writes once PostgreSQL has left recovery: no load balancer can route a successful
    # write earlier, so what the agent adds is the time after that.
    promotion = {'primary_api': statistics.median(r['promotion']['primary_api'] for r in results),
                 'writable': statistics.median(r['promotion']['writable'] for r in results),
                 'agent_after_writable': statistics.median(r['ports'][AGENT]['convergence'] - r['promotion']['writable']
                                                           for r in results)}
    print('after the leader key changed, the new leader\'s /primary answered 200 in a median %.3f s and its '
          'PostgreSQL left recovery in %.3f s; the first write through the agent\'s port followed that by a '
          'median %.3f s' % (promotion['primary_api'], promotion['writable'], promotion['agent_after_writable']))
    return {'runs': results, 'summary': summary, 'ratios': ratios, 'promotion': promotion, 'ports': ports}


def crashes(scenario, cluster, runs, baseline, synchronous=True):
    """``runs`` crashes of the primary's host, in synchronous mode unless told (asynchronous replication may
    lose the last acknowledged writes in a crash, by design): {'runs', 'summary', 'ratios', 'synchronous'}."""
    ports = ports_of(scenario, cluster)
    create_probe_table(scenario, cluster, ports[AGENT], host=scenario.LB)
    was_synchronous = bool(cluster.state().config and cluster.state().config.synchronous_mode)
    if synchronous != was_synchronous:
        cluster.patch_config({'synchronous_mode': synchronous})
    results = []
    try:
        for number in range(runs):
            if synchronous:
                eventually(lambda: cluster.state().sync is not None and cluster.state().sync.sync_standby,
                           'a synchronous standby', timeout=60)
            run = crash_run(scenario, cluster, ports, baseline)
            results.append(run)
            print('crash %d: %s killed, leader key on %s after %.3f s  %s  lost: %d; healthy %.1f s after restart'
                  % (number + 1, run['old'], run['new'], run['leader_key_after_kill'], _describe(ports, run['ports']),
                     run['lost'], run['healed_after_restart']), flush=True)
    finally:
        if synchronous != was_synchronous:
            cluster.patch_config({'synchronous_mode': was_synchronous})
    summary, ratios = summarise(results)
    _print_summary(summary, ratios, ports)
    return {'runs': results, 'summary': summary, 'ratios': ratios, 'ports': ports, 'synchronous': synchronous,
            'leader_key_after_kill': statistics.median(r['leader_key_after_kill'] for r in results),
            'healed_after_restart': statistics.median(r['healed_after_restart'] for r in results)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0])
    # patroni by default, as `make bench-lb` expects.
    parser.add_argument('--scenario', default='patroni', choices=['default', 'patroni'])
    parser.add_argument('--runs', type=int, default=5, help='switchovers (default: %(default)s)')
    parser.add_argument('--crash-runs', type=int, default=0, help='crashes of the primary (default: %(default)s)')
    parser.add_argument('--crash-async', action='store_true',
                        help='crash in asynchronous mode (lost writes are then reported, not failures)')
    parser.add_argument('--inventory', help="Molecule's inventory file of the scenario (default: this checkout's)")
    parser.add_argument('--json', help='also write the results to this file')
    args = parser.parse_args()
    scenario = find_scenario(args.scenario, args.inventory)
    cluster = scenario.main
    result = {}
    with ChecksOnly(scenario, cluster) as baseline:
        if args.runs:
            result['switchover'] = switchovers(scenario, cluster, args.runs)
        if args.crash_runs:
            result['crash'] = crashes(scenario, cluster, args.crash_runs, baseline, synchronous=not args.crash_async)
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, 'w', encoding='utf-8') as handle:
            json.dump(result, handle, indent=2, default=str)
    found = failures(result['switchover']) if 'switchover' in result else []
    if 'crash' in result:
        found += [f for f in failures(result['crash']) if not args.crash_async or 'missing' not in f]
    for failure in found:
        print('FAILED: %s' % failure, file=sys.stderr)
    return 1 if found else 0


if __name__ == '__main__':
    sys.exit(main())
