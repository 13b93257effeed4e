"""All benchmarks of the stack in one run, written to docs/benchmarks.md (and bench/output/report.json).

    .venv/bin/python bench/report.py                      # everything: about 25 min on 2 cores
    .venv/bin/python bench/report.py --skip-converge      # on the default scenario already converged
    .venv/bin/python bench/report.py --only pgbench --pgbench-seconds 5

Phases, in this order (each compared with a baseline measured in the same run):

  converge    `molecule destroy`, then create, prepare and converge of the default scenario (the demo layout)
              timed one by one, then an idempotent second converge (must change nothing)
  switchover  writes through the load balancer across planned switchovers: the agent (port 5000) vs HAProxy's
              checks alone (a second HAProxy on 5900, as Patroni's documentation recommends)
  crash       the same two writers across a `docker kill` of the primary's container; the container is started
              again and the cluster healed after each crash
  pgbench     TPS through the load balancer's write port vs straight to the primary
  tuning      TPS through copies of the load balancer's haproxy.cfg with one HAProxy setting changed vs an
              unchanged copy
  inventory   bench/inventory.py: the inventory plugin vs a static YAML inventory and a JSON inventory script

Results of the phases run are merged into bench/output/report.json (the phases not run keep their last results,
with their own date and command; --fresh drops them) and docs/benchmarks.md is written from all of them. The exit
status is 1 only when something failed (a phase's error, a misrouted or lost write, an idempotent re-run that
changed something), never because of a ratio.
"""

import argparse
import datetime
import json
import os
import shlex
import subprocess
import sys
import time
import traceback

import converge
import haproxy_tuning
import lb_convergence
import machine
import pgbench_lb
from scenario_files import find_scenario  # on the path through lb_convergence

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUTPUT_JSON = os.path.join(REPO, 'bench', 'output', 'report.json')
INVENTORY_JSON = os.path.join(REPO, 'bench', 'output', 'inventory-report.json')
DOC = os.path.join(REPO, 'docs', 'benchmarks.md')
PHASES = ('converge', 'switchover', 'crash', 'pgbench', 'tuning', 'inventory')
SCENARIO_PHASES = ('switchover', 'crash', 'pgbench', 'tuning')
TITLES = {
    'converge': 'Fresh converge and idempotent re-run',
    'switchover': 'Writes through the load balancer across a planned switchover',
    'crash': 'Writes through the load balancer across a crash of the primary',
    'pgbench': 'pgbench through the load balancer vs straight to the primary',
    'tuning': 'HAProxy settings of the write and read listeners',
    'inventory': 'Inventory plugin vs static inventories',
}


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split('\n\n', 2)[2])
    parser.add_argument('--only', action='append', choices=PHASES, default=[],
                        help='run only this phase (repeat for several)')
    parser.add_argument('--skip', action='append', choices=PHASES, default=[], help='leave this phase out')
    parser.add_argument('--skip-converge', action='store_true',
                        help='reuse the converged default scenario (same as --skip converge)')
    parser.add_argument('--switchovers', type=int, default=5, help='switchovers (default: %(default)s)')
    parser.add_argument('--crash-runs', type=int, default=1, help='crashes of the primary (default: %(default)s)')
    parser.add_argument('--pgbench-seconds', type=int, default=15, help='per pgbench run (default: %(default)s)')
    parser.add_argument('--pgbench-rounds', type=int, default=2, help='per mode and target (default: %(default)s)')
    parser.add_argument('--tuning-seconds', type=int, default=10, help='per pgbench run (default: %(default)s)')
    parser.add_argument('--tuning-rounds', type=int, default=3, help='per load and variant (default: %(default)s)')
    parser.add_argument('--clients', type=int, default=4, help='pgbench clients (default: %(default)s)')
    parser.add_argument('--inventory-clusters', type=int, default=1000, help='(default: %(default)s)')
    parser.add_argument('--inventory-rounds', type=int, default=2, help='(default: %(default)s)')
    parser.add_argument('--fresh', action='store_true', help='forget the results of earlier runs')
    parser.add_argument('--down', action='store_true', help='remove the scenario at the end')
    parser.add_argument('--render-only', action='store_true',
                        help='only write docs/benchmarks.md again from bench/output/report.json')
    args = parser.parse_args(argv)
    skipped = set(args.skip) | ({'converge'} if args.skip_converge else set())
    args.phases = [p for p in PHASES if (not args.only or p in args.only) and p not in skipped]
    return args


def command_line(argv):
    """The command as typed from the repository's root, with the demo directory when one was set."""
    words = [os.path.relpath(sys.executable, REPO), os.path.relpath(os.path.abspath(__file__), REPO)] + list(argv)
    demo_dir = os.environ.get('PGHA_DEMO_DIR')
    if demo_dir:
        words.insert(0, 'PGHA_DEMO_DIR=%s' % os.path.relpath(demo_dir, REPO))
    return ' '.join(shlex.quote(w) if not w.startswith('PGHA_DEMO_DIR=') else w for w in words)


def now():
    return datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')


# ------------------------------------------------------------------ the phases

def run_converge(args, context):
    result = converge.fresh_and_idempotent()
    failed = [] if result['changed_idempotent'] == 0 else [
        'the idempotent re-run changed %d things' % result['changed_idempotent']]
    print('fresh: %s; total %.1f s, changed %d; idempotent re-run %.1f s, changed %d'
          % (', '.join('%s %.1f s' % kv for kv in result['phases'].items()), result['fresh_s'],
             result['changed_fresh'], result['idempotent_s'], result['changed_idempotent']), flush=True)
    return result, failed, {}


def run_switchover(args, context):
    result = lb_convergence.switchovers(context['scenario'], context['scenario'].main, args.switchovers)
    return result, lb_convergence.failures(result), {'switchovers': args.switchovers}


def run_crash(args, context):
    result = lb_convergence.crashes(context['scenario'], context['scenario'].main, args.crash_runs,
                                    context['checks_only'])
    return result, lb_convergence.failures(result), {'crash_runs': args.crash_runs}


def run_pgbench(args, context):
    result = pgbench_lb.measure(context['scenario'], args.pgbench_seconds, args.clients, args.pgbench_rounds)
    return result, [], result['settings']


def run_tuning(args, context):
    result = haproxy_tuning.measure(context['scenario'], args.tuning_seconds, args.clients, args.tuning_rounds)
    result['recommendation'] = haproxy_tuning.recommendation(result)
    for name, verdict in result['recommendation']:
        print('%s: %s' % (name, verdict))
    return result, [], result['settings']


def run_inventory(args, context):
    cmd = [os.path.relpath(sys.executable, REPO), 'bench/inventory.py', '--clusters', str(args.inventory_clusters),
           '--rounds', str(args.inventory_rounds), '--json', os.path.relpath(INVENTORY_JSON, REPO)]
    proc = subprocess.run(cmd, cwd=REPO, check=False)
    if proc.returncode != 0:
        raise RuntimeError('%s exited with %d' % (' '.join(cmd), proc.returncode))
    with open(INVENTORY_JSON, encoding='utf-8') as handle:
        result = json.load(handle)
    result['command'] = ' '.join(cmd)
    return result, [], result['settings']


RUNNERS = {'converge': run_converge, 'switchover': run_switchover, 'crash': run_crash, 'pgbench': run_pgbench,
           'tuning': run_tuning, 'inventory': run_inventory}


def run_phase(name, args, context, sections, header):
    print('\n=== %s ===' % TITLES[name], flush=True)
    began, load_before = time.monotonic(), machine.machine()['load_average']
    section = {'date': now(), 'command': header['command'], 'machine': header['machine'],
               'versions': header['versions']}
    try:
        result, failed, settings = RUNNERS[name](args, context)
        section.update(result=result, failures=failed, settings=settings)
    except Exception as exc:  # pylint: disable=broad-except
        traceback.print_exc()
        section.update(result=None, failures=['%s: %s' % (type(exc).__name__, exc)], settings={})
    section.update(duration_s=time.monotonic() - began, load_before=load_before,
                   load_after=machine.machine()['load_average'])
    for failure in section['failures']:
        print('FAILED (%s): %s' % (name, failure), file=sys.stderr, flush=True)
    sections[name] = section
    return section


def scenario_versions(scenario):
    return machine.versions(db_host=scenario.main.members[0], lb_host=scenario.LB)


def run(args, argv):
    previous = {}
    if not args.fresh and os.path.isfile(OUTPUT_JSON):
        with open(OUTPUT_JSON, encoding='utf-8') as handle:
            previous = json.load(handle).get('sections', {})
    sections = dict(previous)
    header = {'date': now(), 'command': command_line(argv), 'machine': machine.machine(),
              'versions': machine.versions()}
    context = {}
    failures = []

    def persist():
        write_json(header, sections)
        write_doc(header, sections)

    if 'converge' in args.phases:
        failures += run_phase('converge', args, context, sections, header)['failures']
        persist()
    wanted = [p for p in args.phases if p in SCENARIO_PHASES]
    # Only the converge phase has run so far: after its failure there is no scenario to measure.
    if wanted and failures:
        failures.append('not run, since the converge failed: %s' % ', '.join(wanted))
    elif wanted or 'converge' in args.phases:
        context['scenario'] = scenario = find_scenario('default')
        scenario.main.wait_healthy(timeout=300)
        header['versions'] = scenario_versions(scenario)
        if 'converge' in args.phases:
            sections['converge']['versions'] = header['versions']
        if set(wanted) & {'switchover', 'crash'}:
            with lb_convergence.ChecksOnly(scenario, scenario.main) as baseline:
                context['checks_only'] = baseline
                for name in ('switchover', 'crash'):
                    if name in wanted:
                        failures += run_phase(name, args, context, sections, header)['failures']
                        persist()
        for name in ('pgbench', 'tuning'):
            if name in wanted:
                failures += run_phase(name, args, context, sections, header)['failures']
                persist()
    if 'inventory' in args.phases:
        failures += run_phase('inventory', args, context, sections, header)['failures']
    persist()
    if args.down:
        converge.scenario_down()
    print('\nwritten: %s, %s' % (os.path.relpath(DOC, REPO), os.path.relpath(OUTPUT_JSON, REPO)))
    for failure in failures:
        print('FAILED: %s' % failure, file=sys.stderr)
    return 1 if failures else 0


def write_json(header, sections):
    os.makedirs(os.path.dirname(OUTPUT_JSON), exist_ok=True)
    with open(OUTPUT_JSON, 'w', encoding='utf-8') as handle:
        json.dump({'header': header, 'sections': sections}, handle, indent=2, default=str)
        handle.write('\n')


def write_doc(header, sections):
    from report_doc import render  # pylint: disable=import-outside-toplevel
    with open(DOC, 'w', encoding='utf-8') as handle:
        handle.write(render(header, sections, TITLES, PHASES))


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.render_only:
        with open(OUTPUT_JSON, encoding='utf-8') as handle:
            saved = json.load(handle)
        write_doc(saved['header'], saved['sections'])
        return 0
    return run(args, argv)


if __name__ == '__main__':
    sys.exit(main())
