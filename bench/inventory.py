"""ansible-inventory --list with the pgha.cluster.patroni plugin against the same inventory as static YAML and as
an executable script printing JSON, in one run.

Run from the repository root with the project venv::

    .venv/bin/python bench/inventory.py [--clusters 1000] [--members 5] [--rounds 3] [--json FILE]

It starts a throw-away etcd member with the integration-test harness (TLS with client-cert-auth and RBAC by
default; ``--plain`` for plain HTTP without auth), writes Patroni-shaped state for every cluster, lists the
inventory once with the plugin, turns that listing into the two baselines, checks that all three list the same
hosts, groups and variables, then times each in turn. See bench/README.md.
"""

import argparse
import json
import os
import platform
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import yaml

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO_ROOT, 'tests', 'lib'))
from inventory_listing import plain  # noqa: E402  pylint: disable=wrong-import-position

NAMESPACE = '/service'
MAX_TXN_OPS = 100  # etcd refuses more than 128 operations in one transaction by default
RUN_TIMEOUT = 1800
GRPC_HANDLED = re.compile(r'^grpc_server_handled_total\{[^}]*grpc_method="(?P<method>[^"]+)"[^}]*\} (?P<n>\S+)$',
                          re.M)


class BenchError(Exception):
    pass


# ------------------------------------------------------------------ the Patroni state written to etcd

def _lsn(cluster, offset=0):
    return 0x4000000 + cluster * 4096 + offset


def cluster_keys(index, members):
    """{key: value} of one Patroni 4.1.5 cluster as it writes them (the shapes of the recorded fixtures):
    every 10th cluster in synchronous mode, every 25th with a replica that is stopped, every 7th member tagged."""
    scope = 'c%04d' % index
    prefix = '%s/%s/' % (NAMESPACE, scope)
    names = ['%s-pg%d' % (scope, m + 1) for m in range(members)]
    leader = names[index % members]
    sync = index % 10 == 0
    timeline = 1 + index % 5
    head = _lsn(index, 8192)
    keys = {
        prefix + 'config': json.dumps({'ttl': 30, 'loop_wait': 10, 'retry_timeout': 10,
                                       'maximum_lag_on_failover': 1048576, 'postgresql': {'use_pg_rewind': True},
                                       'synchronous_mode': sync}, separators=(',', ':')),
        prefix + 'failover': '{}',
        prefix + 'history': json.dumps([[t, _lsn(index, t), 'no recovery target specified',
                                         '2026-11-26T11:58:53.844343+00:00', names[t % members]]
                                        for t in range(1, timeline)], separators=(',', ':')),
        prefix + 'initialize': str(7712448161748118147 + index),
        prefix + 'leader': leader,
        prefix + 'status': json.dumps({'optime': head, 'slots': {n: head for n in names if n != leader},
                                       'retain_slots': names}, separators=(',', ':')),
    }
    if sync:
        keys[prefix + 'sync'] = json.dumps({'leader': leader, 'quorum': 0,
                                            'sync_standby': [n for n in names if n != leader][0]},
                                           separators=(',', ':'))
    for m, name in enumerate(names):
        address = '10.%d.%d.%d' % (index // 250, index % 250, m + 10)
        data = {'conn_url': 'postgres://%s:5432/postgres' % address,
                'api_url': 'https://%s:8008/patroni' % address,
                'state': 'running', 'role': 'primary' if name == leader else 'replica', 'version': '4.1.5',
                'xlog_location': head, 'timeline': timeline}
        if name != leader:
            lag = (m * 131) % 2048
            data.update(replay_lsn=head - lag, receive_lsn=head, replication_state='streaming',
                        xlog_location=head - lag)
            if index % 25 == 0 and m == (index + 1) % members:
                data.update(state='stopped', replication_state=None)
        if (index * members + m) % 7 == 0:
            data['tags'] = {'datacenter': 'dc%d' % (m % 3), 'nofailover': False}
        keys[prefix + 'members/' + name] = json.dumps(data, separators=(',', ':'))
    return keys


def write_clusters(client, count, members):
    from ansible_collections.pgha.cluster.plugins.module_utils.etcd_client import Op
    total = 0
    batch = []
    for index in range(1, count + 1):
        for key, value in cluster_keys(index, members).items():
            batch.append(Op.put(key, value))
            if len(batch) == MAX_TXN_OPS:
                client.txn(success=batch)
                total += len(batch)
                batch = []
    if batch:
        client.txn(success=batch)
        total += len(batch)
    return total


# ------------------------------------------------------------------ the three inventory sources

def plugin_source(workdir, cluster):
    path = os.path.join(workdir, 'bench.patroni.yml')
    config = {'plugin': 'pgha.cluster.patroni', 'endpoints': cluster.endpoints, 'namespace': NAMESPACE}
    if cluster.tls:
        config.update(ca_cert=cluster.ca_cert, client_cert=cluster.client_cert, client_key=cluster.client_key)
    if cluster.auth:
        config.update(username='root', password=cluster.root_password)
    with open(path, 'w') as handle:
        yaml.safe_dump(config, handle)
    return path


def static_yaml_source(workdir, listing):
    """The listing as a YAML inventory: every group at the top level, each host's variables where it is
    first listed."""
    hostvars = listing['_meta']['hostvars']
    placed = set()
    groups = {}
    for name, group in listing.items():
        if name in ('_meta', 'all', 'ungrouped'):
            continue
        entry = {}
        if group.get('children'):
            entry['children'] = dict((child, None) for child in group['children'])
        if group.get('hosts'):
            entry['hosts'] = {}
            for host in group['hosts']:
                entry['hosts'][host] = None if host in placed else hostvars.get(host) or None
                placed.add(host)
        groups[name] = entry
    path = os.path.join(workdir, 'static.yml')
    with open(path, 'w') as handle:
        yaml.dump(groups, handle, Dumper=getattr(yaml, 'CSafeDumper', yaml.SafeDumper), sort_keys=False)
    return path


def json_script_source(workdir, listing):
    """An executable inventory script that prints the listing (``_meta`` included, so --host is never asked)."""
    data_path = os.path.join(workdir, 'script-data.json')
    with open(data_path, 'w') as handle:
        json.dump(listing, handle)
    path = os.path.join(workdir, 'script_inventory.py')
    with open(path, 'w') as handle:
        handle.write('#!%s\nimport sys\nif "--host" in sys.argv:\n    print("{}")\nelse:\n'
                     '    with open(%r) as f:\n        sys.stdout.write(f.read())\n' % (sys.executable, data_path))
    os.chmod(path, 0o755)
    return path


# ------------------------------------------------------------------ running ansible-inventory

def ansible_env(collections_root):
    env = dict(os.environ)
    env.update(ANSIBLE_COLLECTIONS_PATH=collections_root, ANSIBLE_NOCOLOR='1', ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED='1',
               ANSIBLE_INVENTORY_UNPARSED_WARNING='False', PATH=os.path.dirname(sys.executable) + os.pathsep +
               env.get('PATH', ''))
    # Only the source under test is tried, as with `enable_plugins` set to it in ansible.cfg.
    env.pop('ANSIBLE_CONFIG', None)
    return env


class Run(object):
    """One timed ansible-inventory run: wall-clock seconds, and CPU seconds of ansible-inventory with its
    children (an inventory script) plus those etcd spent meanwhile (the plugin's reads)."""

    def __init__(self, wall, cpu, etcd_cpu, listing):
        self.wall, self.cpu, self.etcd_cpu, self.listing = wall, cpu, etcd_cpu, listing

    @property
    def total_cpu(self):
        return self.cpu + self.etcd_cpu


def _children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _process_cpu(pid):
    """CPU seconds of a running process, from /proc (the etcd member is not reaped until the end)."""
    with open('/proc/%d/stat' % pid) as handle:
        fields = handle.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def list_inventory(source, enable, env, workdir, label, etcd_pid):
    out = os.path.join(workdir, 'out-%s.json' % label)
    cmd = [os.path.join(os.path.dirname(sys.executable), 'ansible-inventory'), '-i', source, '--list',
           '--output', out]
    run_env = dict(env, ANSIBLE_INVENTORY_ENABLED=enable)
    cpu, etcd_cpu = _children_cpu(), _process_cpu(etcd_pid)
    started = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=run_env, cwd=workdir, timeout=RUN_TIMEOUT,
                          stdin=subprocess.DEVNULL, check=False)
    wall = time.monotonic() - started
    cpu, etcd_cpu = _children_cpu() - cpu, _process_cpu(etcd_pid) - etcd_cpu
    if proc.returncode != 0:
        raise BenchError('%s: ansible-inventory failed (rc %d): %s' % (label, proc.returncode,
                                                                       (proc.stdout + proc.stderr)[-3000:]))
    with open(out) as handle:
        return Run(wall, cpu, etcd_cpu, json.load(handle))


def normalised(listing):
    """Hosts with their variables and each group's hosts and children, as sets: what must be equal."""
    data = plain(listing)
    groups = dict((name, (frozenset(g.get('hosts') or ()), frozenset(g.get('children') or ())))
                  for name, g in data.items() if name != '_meta')
    return data['_meta']['hostvars'], groups


def grpc_requests(member):
    """{gRPC method: requests etcd has handled}, from its metrics (the JSON gateway's requests included)."""
    status, body = member.http_get('/metrics', timeout=10)
    if status != 200:
        raise BenchError('etcd /metrics answered %s' % status)
    counts = {}
    for match in GRPC_HANDLED.finditer(body.decode('utf-8', 'replace')):
        counts[match.group('method')] = counts.get(match.group('method'), 0) + int(float(match.group('n')))
    return counts


def requests_between(before, after):
    return dict((m, after.get(m, 0) - before.get(m, 0)) for m in after if after.get(m, 0) != before.get(m, 0))


# ------------------------------------------------------------------ the plugin's own work, in this process

def fetch_and_parse(cluster, repeat):
    """Median seconds of the plugin's read of etcd (connect, log in, paginated prefix reads) and of turning the
    keys into hosts and groups, over ``repeat`` runs; and the requests etcd handled for one run."""
    from ansible_collections.pgha.cluster.plugins.module_utils.etcd_client import EtcdClient
    from ansible_collections.pgha.cluster.plugins.plugin_utils.patroni_inventory import (
        cluster_states, fetch_keys, patroni_layout)
    fetch, parse = [], []
    requests = None
    hosts = 0
    for _repeat in range(repeat):
        before = grpc_requests(cluster.members[0])
        started = time.perf_counter()
        client = EtcdClient(cluster.endpoints, ca_cert=cluster.ca_cert, client_cert=cluster.client_cert,
                            client_key=cluster.client_key, username='root' if cluster.auth else None,
                            password=cluster.root_password)
        try:
            keys = fetch_keys(client, NAMESPACE)
        finally:
            client.close()
        fetched = time.perf_counter()
        states, _warnings = cluster_states(keys, NAMESPACE)
        layout = patroni_layout(states)
        done = time.perf_counter()
        requests = requests_between(before, grpc_requests(cluster.members[0]))
        fetch.append(fetched - started)
        parse.append(done - fetched)
        hosts = len(layout.hosts)
    return statistics.median(fetch), statistics.median(parse), requests, len(keys), hosts


# ------------------------------------------------------------------ the run

def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0])
    parser.add_argument('--clusters', type=int, default=1000)
    parser.add_argument('--members', type=int, default=5, help='members per cluster')
    parser.add_argument('--rounds', type=int, default=3, help='timed runs of each source (median reported)')
    parser.add_argument('--plain', action='store_true', help='etcd over plain HTTP without auth')
    parser.add_argument('--json', help='also write the results to this file')
    args = parser.parse_args(argv)
    if args.clusters < 1 or args.members < 1 or args.rounds < 1:
        parser.error('--clusters, --members and --rounds must be at least 1')
    return args


def _import_project():
    sys.path.insert(0, os.path.join(REPO_ROOT, 'tests', 'integration'))
    import etcd_harness
    tree = tempfile.mkdtemp(prefix='pgha-bench-collections-')
    os.makedirs(os.path.join(tree, 'ansible_collections', 'pgha'))
    os.symlink(REPO_ROOT, os.path.join(tree, 'ansible_collections', 'pgha', 'cluster'))
    sys.path.insert(0, tree)
    return etcd_harness, tree


def _ansible_core_version(env):
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), 'ansible-inventory'), '--version'],
                          capture_output=True, text=True, env=env, timeout=120, check=False)
    return proc.stdout.split('\n')[0].strip()


def run(args):
    started = time.monotonic()
    etcd_harness, tree = _import_project()
    workdir = tempfile.mkdtemp(prefix='pgha-bench-inventory-')
    cluster = None
    try:
        cluster = etcd_harness.EtcdCluster(base_dir=os.path.join(workdir, 'etcd'), size=1, tls=not args.plain,
                                           auth=not args.plain, token_ttl=600, name='bench')
        cluster.start()
        from ansible_collections.pgha.cluster.plugins.module_utils.etcd_client import EtcdClient
        with EtcdClient(cluster.endpoints, ca_cert=cluster.ca_cert, client_cert=cluster.client_cert,
                        client_key=cluster.client_key, username='root' if cluster.auth else None,
                        password=cluster.root_password) as client:
            t0 = time.monotonic()
            written = write_clusters(client, args.clusters, args.members)
        print('etcd %s (%s): %d clusters x %d members, %d keys written in %.1f s'
              % ('plain HTTP, no auth' if args.plain else 'TLS + client certificates + RBAC, as root',
                 cluster.endpoints[0], args.clusters, args.members, written, time.monotonic() - t0))

        env = ansible_env(tree)
        print(_ansible_core_version(env))
        sources = {'plugin': (plugin_source(workdir, cluster), 'pgha.cluster.patroni')}
        etcd_pid = cluster.members[0].pid
        before = grpc_requests(cluster.members[0])
        first = list_inventory(sources['plugin'][0], sources['plugin'][1], env, workdir, 'plugin-first', etcd_pid)
        listing = first.listing
        plugin_requests = requests_between(before, grpc_requests(cluster.members[0]))
        # The baselines hold plain text, as a hand-written inventory or a script's JSON does.
        sources['static YAML'] = (static_yaml_source(workdir, plain(listing)), 'ansible.builtin.yaml')
        sources['JSON script'] = (json_script_source(workdir, plain(listing)), 'ansible.builtin.script')
        hostvars, groups = normalised(listing)
        expected_hosts = args.clusters * args.members
        if len(hostvars) != expected_hosts:
            raise BenchError('the plugin listed %d hosts, expected %d' % (len(hostvars), expected_hosts))
        variables = sorted(set(v for host in hostvars.values() for v in host))
        print('plugin listing (untimed first run, %.1f s): %d hosts, %d groups, %d variable names per host (%s)'
              % (first.wall, len(hostvars), len(set(groups) - {'all', 'ungrouped'}), len(variables),
                 ', '.join(variables)))

        labels = list(sources)
        runs = dict((label, []) for label in labels)
        for round_no in range(args.rounds):
            order = labels[round_no % len(labels):] + labels[:round_no % len(labels)]
            for label in order:
                source, enable = sources[label]
                run_ = list_inventory(source, enable, env, workdir, label.replace(' ', '-'), etcd_pid)
                if normalised(run_.listing) != (hostvars, groups):
                    raise BenchError('%s listed other hosts, groups or variables than the plugin' % label)
                run_.listing = None
                runs[label].append(run_)
            shown = ', '.join('%s %.2f s (CPU %.2f s)' % (label, runs[label][-1].wall, runs[label][-1].total_cpu)
                              for label in labels)
            print('round %d: %s' % (round_no + 1, shown))

        fetch, parse, requests, key_count, hosts = fetch_and_parse(cluster, max(3, args.rounds))
        medians = dict((label, {'wall': statistics.median(r.wall for r in runs[label]),
                                'cpu': statistics.median(r.total_cpu for r in runs[label])}) for label in labels)
        print()
        print('ansible-inventory --list, %d rounds, each source once per round in turn (same hosts, groups and '
              'variables, checked):' % args.rounds)
        print('  %-12s %12s %16s   %s' % ('', 'wall median', 'CPU median', 'wall per run'))
        for label in labels:
            walls = ', '.join('%.2f' % r.wall for r in runs[label])
            print('  %-12s %10.2f s %14.2f s   %s' % (label, medians[label]['wall'], medians[label]['cpu'], walls))
        print('  (CPU: ansible-inventory and its children, plus etcd during the plugin\'s runs: %s s)'
              % ', '.join('%.2f' % r.etcd_cpu for r in runs['plugin']))
        ratios = {}
        for base in ('JSON script', 'static YAML'):
            name = 'plugin/%s' % base
            ratios[name] = {
                'wall': medians['plugin']['wall'] / medians[base]['wall'],
                'wall_per_round': statistics.median(p.wall / b.wall for p, b in zip(runs['plugin'], runs[base])),
                'cpu': medians['plugin']['cpu'] / medians[base]['cpu'],
            }
        print()
        for name, value in ratios.items():
            print('%-20s wall %.2fx (median of the rounds\' own ratios %.2fx), CPU %.2fx'
                  % (name + ':', value['wall'], value['wall_per_round'], value['cpu']))
        print('goal: plugin at most 1.20x the JSON script (wall medians): %s'
              % ('met' if ratios['plugin/JSON script']['wall'] <= 1.2 else 'NOT met'))
        print()
        print('etcd requests of one ansible-inventory run with the plugin: %d (%s)'
              % (sum(plugin_requests.values()), ', '.join('%s %d' % kv for kv in sorted(plugin_requests.items()))))
        print('the plugin\'s own work in this process (median of %d): read %d keys from etcd %.3f s '
              '(%d requests: %s), parse into %d hosts and their groups %.3f s'
              % (max(3, args.rounds), key_count, fetch, sum(requests.values()),
                 ', '.join('%s %d' % kv for kv in sorted(requests.items())), hosts, parse))
        print('total run time: %.0f s' % (time.monotonic() - started))

        if args.json:
            report = {
                'benchmark': 'inventory',
                'settings': {'clusters': args.clusters, 'members': args.members, 'rounds': args.rounds,
                             'etcd': 'plain' if args.plain else 'tls+rbac', 'keys': written},
                'host': {'python': platform.python_version(), 'cpus': os.cpu_count(), 'machine': platform.machine(),
                         'ansible': _ansible_core_version(env)},
                'runs': dict((label, [{'wall': r.wall, 'cpu': r.cpu, 'etcd_cpu': r.etcd_cpu} for r in runs[label]])
                             for label in labels),
                'medians': medians, 'ratios': ratios,
                'plugin_run_requests': plugin_requests,
                'in_process': {'fetch_s': fetch, 'parse_s': parse, 'requests': requests, 'keys': key_count},
            }
            parent = os.path.dirname(os.path.abspath(args.json))
            os.makedirs(parent, exist_ok=True)
            with open(args.json, 'w') as handle:
                json.dump(report, handle, indent=2)
                handle.write('\n')
            print('results written to %s' % args.json)
    finally:
        if cluster is not None:
            cluster.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)
        shutil.rmtree(tree, ignore_errors=True)


def _sigterm(signum, frame):
    # Unwinds through run()'s finally, which kills the etcd member.
    raise SystemExit(128 + signum)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    signal.signal(signal.SIGTERM, _sigterm)
    try:
        run(args)
    except BenchError as exc:
        print('error: %s' % exc, file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
