"""How fast writes through the load balancer follow a switchover: the pgha-lb-sync agent vs HAProxy's health
checks alone (Patroni's documented settings: OPTIONS /primary, inter 3s, fall 3, rise 2), on one real cluster, in
the same switchovers.

Needs the Molecule patroni scenario converged (its lb1 runs HAProxy + the agent in front of cluster main):

    make molecule-converge-patroni
    .venv/bin/python bench/lb_convergence.py [--runs 5] [--json bench/output/lb_convergence.json]

For the baseline it starts a second HAProxy in lb1, on port 5900, configured as Patroni's documentation
recommends (every member a server, its own checks decide), verified against the same CA. Then each run switches
the primary of cluster main over through Patroni's REST API while one client writes through lb1:5000 (agent)
and another through lb1:5900 (checks only), each write on a new connection, every 20 ms. Per port it reports the
seconds from the leader key's change in etcd to the first write accepted on the new primary, and the write
outage (last write accepted on the old primary to the first on the new one). See bench/README.md.
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
SCENARIO_DIR = os.path.join(REPO, 'molecule', 'patroni')
sys.path[:0] = [os.path.join(REPO, 'molecule', 'common'), os.path.join(SCENARIO_DIR, 'tests')]

import collection_path  # noqa: E402  pylint: disable=wrong-import-position

collection_path.make_importable()

from lb_probe import LB, PORTS, Probe, create_probe_table, eventually  # noqa: E402  pylint: disable=wrong-import-position
from patroni_scenario import API_PORT, PG_PORT  # noqa: E402  pylint: disable=wrong-import-position
from scenario_files import find_scenario  # noqa: E402  pylint: disable=wrong-import-position

CHECKS_ONLY_PORT = 5900
SETTLE_S = 12
BASE_DIR = '/tmp/pgha-bench-haproxy'
# Where the haproxy role puts the CA that signed the Patroni REST API certificates.
LB_CA = '/etc/haproxy/pgha-tls/ca.crt'


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


def lb_shell(script, stdin=None):
    proc = subprocess.run(['docker', 'exec', '-i', LB, 'sh', '-ec', script], input=stdin or '', text=True,
                          capture_output=True, timeout=120, check=False)
    if proc.returncode != 0:
        raise RuntimeError('in %s: %s: %s' % (LB, script, proc.stderr.strip()))
    return proc.stdout


def start_checks_only(scenario, cluster):
    lb_shell('mkdir -p %s && cat > %s/haproxy.cfg' % (BASE_DIR, BASE_DIR),
             stdin=checks_only_config(scenario, cluster))
    lb_shell('haproxy -c -q -f {0}/haproxy.cfg && haproxy -D -f {0}/haproxy.cfg'.format(BASE_DIR))


def stop_checks_only():
    lb_shell('if [ -f {0}/haproxy.pid ]; then kill $(cat {0}/haproxy.pid) || true; fi; '
             'rm -rf {0}'.format(BASE_DIR))


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


def one_run(scenario, cluster, ports, number):
    leader = cluster.wait_healthy().primary().name
    candidate = sorted(set(cluster.members) - {leader})[number % (len(cluster.members) - 1)]
    with Probe(scenario, cluster, leader, ports) as probe:
        seen = {}
        poller = threading.Thread(target=poll_promotion, args=(scenario, candidate, probe, seen), daemon=True)
        poller.start()
        time.sleep(1)  # writes reach the old primary through both ports before the switch
        switch_over(scenario, cluster, leader, candidate)
        eventually(lambda: all(probe.reached(port, candidate) for port in ports),
                   'writes through every port on %s' % candidate, timeout=60, interval=0.1)
        poller.join(timeout=30)
    outcomes = {port: probe.outcome(port) for port in ports}
    # HAProxy's own checks keep a demoted primary UP for up to fall x inter (9 s) in the checks-only
    # backend: a switchover back to it before then would be routed at once and flatter the baseline.
    time.sleep(SETTLE_S)
    outcomes['promotion'] = dict((what, at - probe.leader_changed[0]) for what, at in seen.items())
    cluster.wait_healthy(leader=candidate)
    return leader, candidate, outcomes


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0])
    parser.add_argument('--runs', type=int, default=5, help='switchovers (default: %(default)s)')
    parser.add_argument('--inventory', help="Molecule's inventory file of the patroni scenario (default: newest)")
    parser.add_argument('--json', help='also write the results to this file')
    args = parser.parse_args()
    scenario = find_scenario('patroni', args.inventory)
    cluster = scenario.main
    agent_port = PORTS['main']['primary']
    ports = [agent_port, CHECKS_ONLY_PORT]
    names = {agent_port: 'agent (lb1:%d)' % agent_port, CHECKS_ONLY_PORT: 'checks only (lb1:%d)' % CHECKS_ONLY_PORT}

    start_checks_only(scenario, cluster)
    results = []
    try:
        create_probe_table(scenario, cluster, agent_port)
        for number in range(args.runs):
            leader, candidate, outcomes = one_run(scenario, cluster, ports, number)
            promotion = outcomes.pop('promotion')
            results.append({'leader': leader, 'candidate': candidate, 'promotion': promotion,
                            'ports': {port: vars(outcome) for port, outcome in outcomes.items()}})
            per_port = '  '.join('%s: first write %.3f s, outage %.3f s, %d/%d writes failed%s'
                                 % (names[port], o.convergence, o.outage, o.failed, o.tried,
                                    ', MISROUTED to %s' % o.misrouted if o.misrouted else '')
                                 for port, o in sorted(outcomes.items()))
            print('run %d: %s -> %s  /primary 200 after %.3f s, writable after %.3f s  %s'
                  % (number + 1, leader, candidate, promotion['primary_api'], promotion['writable'], per_port),
                  flush=True)
    finally:
        stop_checks_only()

    summary = {}
    for port in ports:
        first = [r['ports'][port]['convergence'] for r in results]
        outage = [r['ports'][port]['outage'] for r in results]
        summary[port] = {'first_write_median': statistics.median(first), 'first_write_min': min(first),
                         'first_write_max': max(first), 'outage_median': statistics.median(outage),
                         'outage_min': min(outage), 'outage_max': max(outage),
                         'misrouted': sum(1 for r in results if r['ports'][port]['misrouted'])}
        s = summary[port]
        print('%-22s leader key -> first write: median %.3f s (%.3f-%.3f); write outage: median %.3f s '
              '(%.3f-%.3f); runs with misrouted writes: %d'
              % (names[port], s['first_write_median'], s['first_write_min'], s['first_write_max'],
                 s['outage_median'], s['outage_min'], s['outage_max'], s['misrouted']))
    agent, baseline = summary[agent_port], summary[CHECKS_ONLY_PORT]
    ratios = {'first_write': agent['first_write_median'] / baseline['first_write_median'],
              'outage': agent['outage_median'] / baseline['outage_median']}
    print('agent / checks only (baseline, same switchovers): first write %.2fx, write outage %.2fx'
          % (ratios['first_write'], ratios['outage']))
    # The new leader accepts writes once PostgreSQL has left recovery: no load balancer can route a successful
    # write earlier, so what the agent adds is the time after that.
    api = statistics.median(r['promotion']['primary_api'] for r in results)
    writable = statistics.median(r['promotion']['writable'] for r in results)
    behind = statistics.median(r['ports'][agent_port]['convergence'] - r['promotion']['writable'] for r in results)
    print('after the leader key changed, the new leader\'s /primary answered 200 in a median %.3f s and its '
          'PostgreSQL left recovery in %.3f s; the first write through the agent\'s port followed that by a '
          'median %.3f s' % (api, writable, behind))
    ratios.update(primary_api_s=api, writable_s=writable, agent_after_writable_s=behind)
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, 'w', encoding='utf-8') as handle:
            json.dump({'runs': results, 'summary': summary, 'ratios': ratios}, handle, indent=2, default=str)
    return 1 if any(s['misrouted'] for s in summary.values()) else 0


if __name__ == '__main__':
    sys.exit(main())
