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


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0])
    parser.add_argument('--scenario', default='default', choices=['default', 'patroni'])
    parser.add_argument('--seconds', type=int, default=15, help='length of each pgbench run (default: %(default)s)')
    parser.add_argument('--clients', type=int, default=4, help='pgbench clients (default: %(default)s)')
    parser.add_argument('--rounds', type=int, default=2, help='runs per mode and target (default: %(default)s)')
    parser.add_argument('--scale', type=int, default=10, help='pgbench scale factor (default: %(default)s)')
    parser.add_argument('--json', help='also write the results to this file')
    args = parser.parse_args()
    scenario = find_scenario(args.scenario)
    cluster = scenario.main
    state = cluster.wait_healthy()
    primary = state.primary().name
    client = sorted(set(cluster.members) - {primary})[0]
    password = cluster.superuser_password
    targets = {'direct': (scenario.ip(primary), 5432),
               'lb': (scenario.ip(scenario.LB), scenario.LB_PORTS[cluster.group]['primary'])}
    sync = bool(state.config is not None and state.config.synchronous_mode)
    print('cluster %s: primary %s, pgbench in %s, %d clients, %d s per run, %d rounds, scale %d, '
          'synchronous mode %s' % (cluster.scope, primary, client, args.clients, args.seconds, args.rounds,
                                   args.scale, 'on' if sync else 'off'), flush=True)
    pgbench(scenario, client, *targets['direct'], ['-i', '-q', '-s', str(args.scale)], password=password)
    results = dict((mode, dict((target, []) for target in targets)) for mode in MODES)
    for mode, mode_args in MODES.items():
        for number in range(args.rounds):
            order = ['direct', 'lb'] if number % 2 == 0 else ['lb', 'direct']
            for target in order:
                out = pgbench(scenario, client, *targets[target],
                              mode_args + ['-n', '-c', str(args.clients), '-j', '2', '-T', str(args.seconds)],
                              password=password)
                match = _TPS.search(out)
                if not match:
                    raise RuntimeError('no TPS in pgbench output:\n' + out)
                results[mode][target].append(float(match.group(1)))
                print('  %-11s %-6s round %d: %.0f TPS' % (mode, target, number + 1, results[mode][target][-1]),
                      flush=True)
    summary = {}
    for mode in MODES:
        direct, lb = (statistics.median(results[mode][t]) for t in ('direct', 'lb'))
        summary[mode] = {'direct_tps': direct, 'lb_tps': lb, 'ratio': lb / direct}
        print('%-11s direct %.0f TPS, through %s:%d %.0f TPS: %.2fx'
              % (mode, direct, scenario.LB, targets['lb'][1], lb, lb / direct))
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, 'w', encoding='utf-8') as handle:
            json.dump({'runs': results, 'summary': summary, 'synchronous_mode': sync}, handle, indent=2)
    return 0


if __name__ == '__main__':
    sys.exit(main())
