"""pgbench through the load balancer's write port vs straight to the primary, on one converged Molecule scenario,
in the same run: select-only and TPC-B, alternating the two targets so that both see the same load.

    make demo                                # or: make molecule-converge-patroni, then --scenario patroni
    .venv/bin/python bench/pgbench_lb.py [--seconds 15] [--clients 4] [--rounds 2] [--json FILE]

pgbench runs in a replica's container (the same client for both targets), TLS verified as every client of the
cluster connects. Prints the median TPS per mode and target and the ratio `through the LB / direct`.
"""

import argparse
import json
import os
import re
import statistics
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(REPO, 'molecule', 'common'), os.path.join(REPO, 'molecule', 'patroni', 'tests'),
                os.path.join(REPO, 'molecule', 'default', 'tests')]

import collection_path  # noqa: E402  pylint: disable=wrong-import-position

collection_path.make_importable()

from patroni_scenario import PG_PORT  # noqa: E402  pylint: disable=wrong-import-position
from scenario_files import find_scenario  # noqa: E402  pylint: disable=wrong-import-position

PGBENCH = '/usr/lib/postgresql/15/bin/pgbench'
HOST_CA = '/etc/pgha/pki/ca.crt'
MODES = {'select-only': ['-S'], 'tpc-b': []}
_TPS = re.compile(r'^tps = ([0-9.]+) \(without initial connection time\)', re.M)


def pgbench(scenario, client, host, port, args, password):
    env = {'PGHOST': host, 'PGPORT': str(port), 'PGUSER': 'postgres', 'PGDATABASE': 'postgres',
           'PGPASSWORD': password, 'PGSSLMODE': 'verify-ca', 'PGSSLROOTCERT': HOST_CA}
    proc = scenario.docker_exec(client, [PGBENCH] + list(args), env=env, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError('pgbench %s on %s: %s' % (' '.join(args), client, proc.stderr.strip()[-2000:]))
    return proc.stdout


def rotated(items, number):
    """``items`` starting at position ``number`` (mod its length): each round a different target goes first."""
    items = list(items)
    shift = number % len(items)
    return items[shift:] + items[:shift]


def tps(scenario, client, host, port, mode_args, seconds, clients, password):
    out = pgbench(scenario, client, host, port,
                  list(mode_args) + ['-n', '-c', str(clients), '-j', '2', '-T', str(seconds)], password=password)
    match = _TPS.search(out)
    if not match:
        raise RuntimeError('no TPS in pgbench output:\n' + out)
    return float(match.group(1))


def rounds_of(scenario, client, password, runs, rounds, seconds, clients):
    """TPS of ``runs`` ({label: (mode, host, port)}) over ``rounds`` rounds, each round every run once, in an
    order that rotates from round to round so that every run sees the same share of other load:
    {label: [tps per round]}."""
    results = dict((label, []) for label in runs)
    for number in range(rounds):
        for label in rotated(runs, number):
            mode, host, port = runs[label]
            results[label].append(tps(scenario, client, host, port, MODES[mode], seconds, clients, password))
            print('  %-11s %-40s round %d: %.0f TPS' % (mode, label, number + 1, results[label][-1]), flush=True)
    return results


def setup(scenario, scale):
    """(cluster, primary, client, sync) once the cluster is healthy and pgbench's tables exist at ``scale``."""
    cluster = scenario.main
    state = cluster.wait_healthy()
    primary = state.primary().name
    client = sorted(set(cluster.members) - {primary})[0]
    pgbench(scenario, client, scenario.ip(primary), PG_PORT, ['-i', '-q', '-s', str(scale)],
            password=cluster.superuser_password)
    sync = bool(state.config is not None and state.config.synchronous_mode)
    return cluster, primary, client, sync


def measure(scenario, seconds=15, clients=4, rounds=2, scale=10):
    """Median TPS per mode, direct to the primary and through the load balancer's write port, and the ratio."""
    cluster, primary, client, sync = setup(scenario, scale)
    lb_port = scenario.LB_PORTS[cluster.group]['primary']
    targets = {'direct': (scenario.ip(primary), PG_PORT), 'lb': (scenario.ip(scenario.LB), lb_port)}
    print('cluster %s: primary %s, pgbench in %s, %d clients, %d s per run, %d rounds, scale %d, '
          'synchronous mode %s' % (cluster.scope, primary, client, clients, seconds, rounds, scale,
                                   'on' if sync else 'off'), flush=True)
    results = {}
    for mode in MODES:
        runs = dict((target, (mode,) + address) for target, address in targets.items())
        results[mode] = rounds_of(scenario, client, cluster.superuser_password, runs, rounds, seconds, clients)
    summary = {}
    for mode in MODES:
        direct, lb = (statistics.median(results[mode][t]) for t in ('direct', 'lb'))
        summary[mode] = {'direct_tps': direct, 'lb_tps': lb, 'ratio': lb / direct}
        print('%-11s direct %.0f TPS, through %s:%d %.0f TPS: %.2fx'
              % (mode, direct, scenario.LB, lb_port, lb, lb / direct))
    return {'runs': results, 'summary': summary, 'synchronous_mode': sync, 'primary': primary, 'client': client,
            'lb_port': lb_port, 'settings': {'seconds': seconds, 'clients': clients, 'rounds': rounds,
                                             'scale': scale}}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0])
    parser.add_argument('--scenario', default='default', choices=['default', 'patroni'])
    parser.add_argument('--seconds', type=int, default=15, help='length of each pgbench run (default: %(default)s)')
    parser.add_argument('--clients', type=int, default=4, help='pgbench clients (default: %(default)s)')
    parser.add_argument('--rounds', type=int, default=2, help='runs per mode and target (default: %(default)s)')
    parser.add_argument('--scale', type=int, default=10, help='pgbench scale factor (default: %(default)s)')
    parser.add_argument('--json', help='also write the results to this file')
    args = parser.parse_args()
    result = measure(find_scenario(args.scenario), args.seconds, args.clients, args.rounds, args.scale)
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, 'w', encoding='utf-8') as handle:
            json.dump(result, handle, indent=2)
    return 0


if __name__ == '__main__':
    sys.exit(main())
