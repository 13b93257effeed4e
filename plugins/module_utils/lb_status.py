# -*- coding: utf-8 -*-
# Copyright: pgha.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The LB agent's counters and its ``/status`` and ``/metrics`` HTTP endpoints (loopback only).

``/status`` is JSON built by the agent at each request; ``/metrics`` is the
Prometheus text exposition format (version 0.0.4) of :class:`Metrics`.

Stdlib only, no Ansible import.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import http.server
import json
import threading

CONVERGENCE_BUCKETS = (0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)


class Histogram(object):
    """A cumulative histogram with fixed buckets, as Prometheus wants it."""

    def __init__(self, buckets):
        self.buckets = tuple(buckets)
        self.counts = [0] * len(self.buckets)
        self.count = 0
        self.total = 0.0

    def observe(self, value):
        self.count += 1
        self.total += value
        for index, bound in enumerate(self.buckets):
            if value <= bound:
                self.counts[index] += 1

    def lines(self, name):
        out = ['%s_bucket{le="%s"} %d' % (name, _number(bound), count)
               for bound, count in zip(self.buckets, self.counts)]
        out.append('%s_bucket{le="+Inf"} %d' % (name, self.count))
        out.append('%s_sum %s' % (name, _number(self.total)))
        out.append('%s_count %d' % (name, self.count))
        return out


class Metrics(object):
    """What /metrics reports; every method is thread-safe."""

    COUNTERS = (
        ('leader_changes', 'Leader changes seen in etcd.'),
        ('etcd_errors', 'Failed etcd reads and broken watches.'),
        ('policy_errors', 'Invalid LB policies read from etcd (the last valid one stays in use).'),
        ('reloads', 'HAProxy reloads through the master CLI.'),
        ('reload_errors', 'Configurations not applied: rejected by haproxy -c, or a reload that failed.'),
        ('runtime_errors', 'Failed HAProxy runtime API commands.'),
        ('demotions', 'Old primaries put in maintenance and their sessions shut.'),
        ('promotions', 'New primaries enabled after their /primary answered 200.'),
    )

    def __init__(self):
        self._lock = threading.Lock()
        self.counters = dict((name, 0) for name, _help in self.COUNTERS)
        self.convergence = Histogram(CONVERGENCE_BUCKETS)
        self.etcd_up = 0

    def inc(self, name, amount=1):
        with self._lock:
            self.counters[name] += amount

    def observe_convergence(self, seconds):
        with self._lock:
            self.convergence.observe(seconds)

    def set_etcd_up(self, up):
        with self._lock:
            self.etcd_up = 1 if up else 0

    def text(self):
        with self._lock:
            lines = ['# HELP pgha_lb_convergence_seconds Time from a leader change seen in etcd to the new primary '
                     'enabled in HAProxy.',
                     '# TYPE pgha_lb_convergence_seconds histogram']
            lines.extend(self.convergence.lines('pgha_lb_convergence_seconds'))
            for name, text in self.COUNTERS:
                metric = 'pgha_lb_%s_total' % name
                lines.extend(['# HELP %s %s' % (metric, text), '# TYPE %s counter' % metric,
                              '%s %d' % (metric, self.counters[name])])
            lines.extend(['# HELP pgha_lb_etcd_up Whether the last etcd read or watch worked.',
                          '# TYPE pgha_lb_etcd_up gauge', 'pgha_lb_etcd_up %d' % self.etcd_up])
        return '\n'.join(lines) + '\n'


def _number(value):
    text = repr(float(value))
    return text[:-2] if text.endswith('.0') else text


class _Handler(http.server.BaseHTTPRequestHandler):
    server_version = 'pgha-lb-sync'

    def do_GET(self):  # noqa: N802 (http.server's naming)
        path = self.path.split('?', 1)[0]
        if path == '/status':
            body = json.dumps(self.server.status(), indent=2, sort_keys=True).encode('utf-8') + b'\n'
            kind = 'application/json'
        elif path == '/metrics':
            body = self.server.metrics.text().encode('utf-8')
            kind = 'text/plain; version=0.0.4'
        else:
            self.send_error(404, 'try /status or /metrics')
            return
        self.send_response(200)
        self.send_header('Content-Type', kind)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass  # scraped every few seconds: not worth a log line


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True


def start_status_server(address, port, status, metrics):
    """Serve /status (``status()`` -> JSON-able data) and /metrics in a daemon thread; returns the server."""
    server = _Server((address, port), _Handler)
    server.status = status
    server.metrics = metrics
    thread = threading.Thread(target=server.serve_forever, name='status-http', daemon=True)
    thread.start()
    return server
