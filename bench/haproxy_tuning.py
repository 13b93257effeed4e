"""pgbench through copies of the load balancer's own haproxy.cfg, each with one tuning applied, against an unchanged
copy (the baseline), on the write and the read listener: HAProxy settings the role controls, tried without touching
the role or the running HAProxy.

Each variant runs as a second HAProxy in the load balancer's container with every port of the live configuration
moved by a fixed offset (writes on 15000, reads on 15001 for the first, 15100/15101 for the next, ...) and its own
admin socket; every variant is checked to route writes to the primary and reads to a replica before it is timed.
"""

import re
import statistics

from lb_convergence import lb_shell
from lb_probe import eventually, landing
from pgbench_lb import rounds_of, setup

LIVE_CONFIG = '/etc/haproxy/pgha/haproxy.cfg'
BASE_DIR = '/tmp/pgha-bench-tuning'
FIRST_OFFSET, STEP = 10000, 100
BASELINE = 'role config (copy)'
# name -> (lines added to global, lines added to defaults)
VARIANTS = {
    BASELINE: ([], []),
    'nbthread 1': (['nbthread 1'], []),
    'option splice-auto': ([], ['option splice-auto']),
    'tcp-smart-accept + tcp-smart-connect': ([], ['option tcp-smart-accept', 'option tcp-smart-connect']),
}
# (pgbench mode, listener)
LOADS = (('select-only', 'primary'), ('select-only', 'replicas'), ('tpc-b', 'primary'))
_BIND = re.compile(r'^(\s*bind\s+\S*:)(\d+)(.*)$')
_SOCKET = re.compile(r'^(\s*stats socket\s+)(\S+)(.*)$')


def variant_config(live, offset, directory, add_global, add_defaults):
    """The live configuration with its ports moved by ``offset``, its admin socket in ``directory`` and the
    given lines at the top of its global and defaults sections."""
    lines = []
    for line in live.splitlines():
        bind, socket = _BIND.match(line), _SOCKET.match(line)
        if bind:
            line = '%s%d%s' % (bind.group(1), int(bind.group(2)) + offset, bind.group(3))
        elif socket:
            line = '%s%s/admin.sock%s' % (socket.group(1), directory, socket.group(3))
        lines.append(line)
        if line.strip() == 'global':
            lines.extend('    ' + extra for extra in add_global)
        elif line.strip() == 'defaults':
            lines.extend('    ' + extra for extra in add_defaults)
    return '\n'.join(lines) + '\n'


class Variants(object):
    """Every variant's HAProxy running in the load balancer's container while the block runs."""

    def __init__(self, scenario, variants=None):
        self.scenario = scenario
        self.variants = variants or VARIANTS
        self.offsets = dict((name, FIRST_OFFSET + STEP * i) for i, name in enumerate(self.variants))

    def __enter__(self):
        live = lb_shell(self.scenario, 'cat %s' % LIVE_CONFIG)
        try:
            for name, (add_global, add_defaults) in self.variants.items():
                directory = '%s/%d' % (BASE_DIR, self.offsets[name])
                text = variant_config(live, self.offsets[name], directory, add_global, add_defaults)
                lb_shell(self.scenario, 'mkdir -p %s && cat > %s/haproxy.cfg' % (directory, directory), stdin=text)
                lb_shell(self.scenario, 'haproxy -c -q -f {0}/haproxy.cfg && '
                                        'haproxy -D -p {0}/haproxy.pid -f {0}/haproxy.cfg'.format(directory))
        except Exception:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc):
        lb_shell(self.scenario, 'for p in %s/*/haproxy.pid; do [ -f "$p" ] && kill $(cat "$p") || true; done; '
                                'rm -rf %s' % (BASE_DIR, BASE_DIR))

    def port(self, name, listener, cluster):
        return self.scenario.LB_PORTS[cluster.group][listener] + self.offsets[name]


def _check_routing(scenario, cluster, variants, primary):
    """Every variant routing writes to the primary and reads to a replica; a new HAProxy's checks take a few
    seconds (rise x inter) to bring up a server its state file had down."""
    for name in variants.variants:
        for listener, wanted in (('primary', lambda m, r: m == primary and not r), ('replicas', lambda m, r: r)):
            port = variants.port(name, listener, cluster)
            eventually(lambda: wanted(*landing(scenario, cluster, port, host=scenario.LB)),
                       '%s: a %s connection through port %d landing where it should' % (name, listener, port),
                       timeout=60, interval=1)


def measure(scenario, seconds=10, clients=4, rounds=2, scale=10):
    """Per load (mode on a listener): each variant's median TPS, its ratio to the baseline's median, the median
    of the rounds' own ratios, and the baseline's own spread (max / min over its rounds)."""
    cluster, primary, client, sync = setup(scenario, scale)
    lb_ip = scenario.ip(scenario.LB)
    loads = {}
    with Variants(scenario) as variants:
        _check_routing(scenario, cluster, variants, primary)
        print('HAProxy variants in %s, pgbench in %s: %d clients, %d s per run, %d rounds'
              % (scenario.LB, client, clients, seconds, rounds), flush=True)
        for mode, listener in LOADS:
            runs = dict((name, (mode, lb_ip, variants.port(name, listener, cluster))) for name in variants.variants)
            tps = rounds_of(scenario, client, cluster.superuser_password, runs, rounds, seconds, clients)
            base = tps[BASELINE]
            loads['%s, %s listener' % (mode, listener)] = dict(
                (name, {'tps': values, 'median': statistics.median(values),
                        'ratio': statistics.median(values) / statistics.median(base),
                        'ratio_per_round': statistics.median(v / b for v, b in zip(values, base))})
                for name, values in tps.items())
    spread = dict((load, max(v[BASELINE]['tps']) / min(v[BASELINE]['tps'])) for load, v in loads.items())
    for load, by_variant in loads.items():
        for name, value in by_variant.items():
            print('%-34s %-38s %8.0f TPS  %.3fx (per round %.3fx)'
                  % (load, name, value['median'], value['ratio'], value['ratio_per_round']))
    return {'loads': loads, 'baseline_spread': spread, 'baseline': BASELINE, 'synchronous_mode': sync,
            'variants': dict((name, {'global': g, 'defaults': d, 'offset': variants.offsets[name]})
                             for name, (g, d) in variants.variants.items()),
            'settings': {'seconds': seconds, 'clients': clients, 'rounds': rounds, 'scale': scale}}


def recommendation(result):
    """One line per variant: a gain is called one only when, in every load, both of its ratios exceed the
    baseline's own round-to-round spread in that load."""
    lines = []
    if result['settings']['rounds'] < 2:
        return [(name, 'one round only, so no measure of the noise: no recommendation')
                for name in result['variants'] if name != result['baseline']]
    for name in result['variants']:
        if name == result['baseline']:
            continue
        wins = [min(v[name]['ratio'], v[name]['ratio_per_round']) > result['baseline_spread'][load]
                for load, v in result['loads'].items()]
        losses = [max(v[name]['ratio'], v[name]['ratio_per_round']) < 1 / result['baseline_spread'][load]
                  for load, v in result['loads'].items()]
        if all(wins):
            verdict = 'faster in every load beyond the baseline\'s own spread: worth adopting, after a confirming ' \
                      'run on a quiet machine'
        elif any(losses):
            verdict = 'slower beyond the baseline\'s own spread in %d of %d loads: keep the role\'s setting' \
                      % (sum(losses), len(losses))
        else:
            verdict = 'within the baseline\'s own spread (noise): no reason to change the role'
        lines.append((name, verdict))
    return lines
