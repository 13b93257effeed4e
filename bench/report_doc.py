"""The Markdown of docs/benchmarks.md, from the results bench/report.py keeps in bench/output/report.json."""

INTRO = '''\
# Benchmarks

Written by `bench/report.py` from its last runs; rerun it to refresh this page (`--help` lists its phases and
counts, [`bench/README.md`](../bench/README.md) describes each benchmark). Every figure is set against a baseline
measured in the same run, on the same machine, under the same load: compare ratios, not absolute times, across
machines. Nothing here is a limit the project promises; the script fails only when something went wrong (a write
misrouted or lost, an idempotent re-run that changed something, a phase that broke).

| | |
|---|---|
| date | {date} |
| machine | {machine} |
| versions | {versions} |
| command | `{command}` |
'''

EXPLAIN = {
    'converge': '''\
Baseline: the fresh converge itself. `molecule destroy` runs first (untimed); `create` starts the four containers
(demo-db1..3 with etcd and Patroni colocated, demo-lb), `prepare` waits for systemd in them, `converge` runs the
`pgha.cluster.site` playbook on empty hosts. The idempotent re-run is a second `molecule converge` on the converged
hosts: its ratio to the fresh `converge` phase is what checking everything costs compared with doing everything, and
its `changed` count must be 0. The CA, the generated secrets and the Patroni wheels live in the demo directory and
outlive the containers: a converge that finds them does not build them again (listed under "reused").''',
    'switchover': '''\
Baseline: **checks only**, a second HAProxy in the load balancer's container on port 5900 configured as Patroni's
documentation recommends (every member a server, `option httpchk OPTIONS /primary`, `inter 3s fall 3 rise 2`,
`on-marked-down shutdown-sessions`, the REST API checked over TLS against the same CA). It and the agent's port
(5000, the `pgha.cluster.haproxy` role with `pgha-lb-sync`) see the same switchovers, each started through Patroni's
REST API while one client per port writes an INSERT on a new connection every 20 ms. *Leader key to first write*:
from the moment the cluster's leader key in etcd names the new leader to the first write the new leader accepted
through that port. *Write outage*: from the last write accepted on the old primary to the first on the new one; no
balancer can avoid the part of it before the key moves (Patroni stops the old primary first). *Misrouted*: writes
that landed anywhere but on the new leader after the key moved; *lost*: acknowledged rows missing afterwards.''',
    'crash': '''\
Baseline: the same checks-only HAProxy, in the same crashes. Each crash is a `docker kill` of the primary's
container (SIGKILL to etcd, Patroni and PostgreSQL at once: nothing releases the leader key) while both clients
write; the cluster runs in synchronous mode for it, so that no acknowledged write may be lost. The leader key moves
once it expires (Patroni's `ttl`, the same for both ports); the write outage runs from the last write accepted by
the old primary to the first on the new one. The killed container is then started again and the cluster waited
for until every member streams from the new primary.''',
    'pgbench': '''\
Baseline: pgbench straight to the primary's PostgreSQL (port 5432) from the same client (a replica's container),
in the same rounds, alternating which target goes first. Both use TLS verified against the cluster's CA, each
client keeps one connection for the whole run (`pgbench -n -c N -j 2 -T S`), synchronous mode as the cluster has
it.
The ratio is what the extra hop through HAProxy costs on this machine, where the load balancer, the client and
the database share the same cores.''',
    'tuning': '''\
Baseline: an **unchanged copy** of the haproxy.cfg the role and the agent wrote in the load balancer, run as a
second HAProxy beside each variant, all with the ports moved; each variant is the same copy with one setting
added (in `global` or `defaults`). All are checked to route writes to the primary and reads to a replica, then
timed in rotating order. *Ratio* is the variant's median over the baseline's; *per round* the median of each
round's own ratio; *spread* is the baseline's own max/min over its rounds, the noise floor: a difference inside it
says nothing. The machine runs the whole cluster, pgbench and every HAProxy on the same cores, and may carry
other load (see the load average), so a setting is only worth changing in the role when it wins beyond the
spread in every load and a run on a quiet machine agrees.''',
    'inventory': '''\
Baselines: the same hosts, groups and variables as (a) a static YAML inventory and (b) an executable inventory
script printing JSON (`_meta` included), each listed with `ansible-inventory --list` in turn with the plugin
against a throw-away etcd member (TLS, client certificates, RBAC) holding Patroni-shaped keys. CPU time counts
`ansible-inventory` with its children, and etcd's CPU during the plugin's runs.''',
}


def _fmt(value, pattern='%.3f'):
    return '-' if value is None else pattern % value


def _table(header, rows):
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    lines += ['| ' + ' | '.join(str(c) for c in row) + ' |' for row in rows]
    return '\n'.join(lines)


def describe_machine(m):
    return '%s cores (%s), %s GiB memory, kernel %s, Debian %s' % (m['cores'], m['cpu'], m['memory_gib'],
                                                                   m['kernel'], m['debian'])


def describe_versions(v):
    order = ['ansible-core', 'etcd', 'PostgreSQL', 'Patroni', 'HAProxy', 'python']
    return ', '.join('%s %s' % (name, v[name]) for name in order if v.get(name))


def _spread(s):
    return '%.3f s (%.3f-%.3f)' % (s['median'], s['min'], s['max'])


def converge_table(r):
    fresh = r['phases']
    rows = [('molecule %s' % phase, '%.1f' % seconds, '%.2f' % (seconds / r['fresh_s']), '')
            for phase, seconds in fresh.items()]
    rows.append(('**fresh total** (baseline)', '%.1f' % r['fresh_s'], '1.00', 'changed=%d' % r['changed_fresh']))
    rows.append(('idempotent re-run (`molecule converge` again)', '%.1f' % r['idempotent_s'],
                 '%.2f' % (r['idempotent_s'] / r['fresh_s']), 'changed=%d' % r['changed_idempotent']))
    text = _table(('step', 'seconds', 'share of the fresh total', 'PLAY RECAP'), rows)
    text += ('\n\nIdempotent re-run / fresh `molecule converge` phase: **%.2fx**. Reused from the demo directory: %s.'
             % (r['idempotent_s'] / fresh['converge'], ', '.join(r['reused_from_demo_dir']) or 'nothing'))
    return text


def leader_change_table(r):
    ports = r['ports']
    s, ratios = r['summary'], r['ratios']
    agent, checks = s['agent'], s['checks only']
    rows = [
        ('leader key to first write, median (min-max)', _spread(agent['first_write']),
         _spread(checks['first_write']), '**%.2fx**' % ratios['first_write']),
        ('write outage, median (min-max)', _spread(agent['outage']), _spread(checks['outage']),
         '**%.2fx**' % ratios['outage']),
        ('writes failed / tried', '%d / %d' % (agent['failed'], agent['tried']),
         '%d / %d' % (checks['failed'], checks['tried']), ''),
        ('runs with misrouted writes', agent['misrouted_runs'], checks['misrouted_runs'], ''),
    ]
    text = _table(('runs: %d' % len(r['runs']), 'agent (port %d)' % ports['agent'],
                   'checks only (port %d, baseline)' % ports['checks only'], 'agent / checks only'), rows)
    text += '\n\nAcknowledged writes lost: %d.' % sum(run['lost'] for run in r['runs'])
    return text


def switchover_table(r):
    p = r['promotion']
    return leader_change_table(r) + (
        ' After the leader key moved, the new leader\'s `/primary` answered 200 in a median %.3f s and its '
        'PostgreSQL left recovery after %.3f s; the first write through the agent\'s port came %.3f s after that '
        '(recovery is read over `docker exec`, itself some 50 ms late, so this may be below zero).'
        % (p['primary_api'], p['writable'], p['agent_after_writable']))


def crash_table(r):
    return leader_change_table(r) + (
        ' Synchronous mode: %s. The leader key moved a median %.1f s after the kill (its TTL expiring); the '
        'cluster was healthy again %.1f s after the container was started.'
        % ('on' if r['synchronous'] else 'off', r['leader_key_after_kill'], r['healed_after_restart']))


def pgbench_table(r):
    rows = [(mode, '%.0f' % s['direct_tps'], '%.0f' % s['lb_tps'], '**%.2fx**' % s['ratio'])
            for mode, s in r['summary'].items()]
    st = r['settings']
    text = _table(('mode', 'direct to the primary, TPS (baseline)', 'through the LB (port %d), TPS' % r['lb_port'],
                   'LB / direct'), rows)
    sync = 'on' if r['synchronous_mode'] else 'off'
    return text + ('\n\n%d clients, %d s per run, %d rounds per mode and target, scale %d, synchronous mode %s; '
                   'pgbench in %s, primary %s.'
                   % (st['clients'], st['seconds'], st['rounds'], st['scale'], sync, r['client'], r['primary']))


def tuning_table(r):
    loads = list(r['loads'])
    header = ['variant'] + ['%s: TPS, ratio (per round)' % load for load in loads]
    rows = []
    for name in r['variants']:
        cells = ['%s%s' % (name, ' (baseline)' if name == r['baseline'] else '')]
        for load in loads:
            v = r['loads'][load][name]
            cells.append('%.0f, %.3fx (%.3fx)' % (v['median'], v['ratio'], v['ratio_per_round']))
        rows.append(cells)
    rows.append(['baseline spread (max/min)'] + ['%.3fx' % r['baseline_spread'][load] for load in loads])
    st = r['settings']
    text = _table(header, rows)
    text += ('\n\n%d clients, %d s per run, %d rounds. Added lines: %s.\n\nRecommendation (computed from the '
             'figures above):\n\n' % (st['clients'], st['seconds'], st['rounds'],
                                      '; '.join('%s: `%s`' % (name, '`, `'.join(v['global'] + v['defaults']))
                                                for name, v in r['variants'].items() if v['global'] + v['defaults'])))
    text += '\n'.join('- %s: %s.' % (name, verdict) for name, verdict in r['recommendation'])
    return text


def inventory_table(r):
    rows = [(label, '%.2f' % m['wall'], '%.2f' % m['cpu'], ', '.join('%.2f' % run['wall'] for run in r['runs'][label]))
            for label, m in r['medians'].items()]
    text = _table(('source', 'wall median, s', 'CPU median, s', 'wall per round, s'), rows)
    st = r['settings']
    text += '\n\n%d clusters x %d members (%d keys), %d rounds, etcd %s. Command: `%s`.\n\n' % (
        st['clusters'], st['members'], st['keys'], st['rounds'], st['etcd'], r['command'])
    text += '\n'.join('- %s: wall **%.2fx** (median of the rounds\' own ratios %.2fx), CPU %.2fx' % (
        name, v['wall'], v['wall_per_round'], v['cpu']) for name, v in r['ratios'].items())
    return text


TABLES = {'converge': converge_table, 'switchover': switchover_table, 'crash': crash_table, 'pgbench': pgbench_table,
          'tuning': tuning_table, 'inventory': inventory_table}


def _section(number, name, title, section, header):
    lines = ['## %d. %s' % (number, title), '']
    notes = ['Measured %s in %.0f s, load average %s before and %s after'
             % (section['date'], section['duration_s'], '/'.join('%.2f' % x for x in section['load_before']),
                '/'.join('%.2f' % x for x in section['load_after']))]
    if section['command'] != header['command']:
        notes.append('command `%s`' % section['command'])
    if describe_machine(section['machine']) != describe_machine(header['machine']):
        notes.append('machine: %s' % describe_machine(section['machine']))
    differ = [k for k, v in section['versions'].items() if v and header['versions'].get(k) not in (None, v)]
    if differ:
        notes.append('versions: %s' % describe_versions(section['versions']))
    lines += ['_%s._' % '; '.join(notes), '']
    if section['failures']:
        lines += ['**Failed:**', ''] + ['- %s' % f for f in section['failures']] + ['']
    if section['result'] is not None:
        lines += [TABLES[name](section['result']), '']
    lines += [EXPLAIN[name], '']
    return lines


def render(header, sections, titles, phases):
    versions = {}
    for name in phases:  # the newest versions each component was seen with
        if name in sections:
            versions.update(dict((k, v) for k, v in sections[name]['versions'].items() if v))
    versions.update(dict((k, v) for k, v in header['versions'].items() if v))
    header = dict(header, versions=versions)
    text = [INTRO.format(date=header['date'], machine=describe_machine(header['machine']),
                         versions=describe_versions(versions), command=header['command'])]
    lines = []
    for number, name in enumerate(phases, 1):  # numbered alike whichever sections exist yet
        if name in sections:
            lines += _section(number, name, titles[name], sections[name], header)
    return '\n'.join(text) + '\n' + '\n'.join(lines).rstrip() + '\n'
