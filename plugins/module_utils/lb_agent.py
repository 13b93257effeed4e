# -*- coding: utf-8 -*-
# Copyright: pgha.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The load balancer agent (pgha-lb-sync): keeps HAProxy's routing in step with Patroni's state in etcd.

- One watch thread per cluster prefix and per policy key (etcd's watch API,
  no polling) feeds one queue; a watch resumes from its last revision after a
  disconnect, and after a compaction the cluster is re-read in full.
- A leader change acts at once through HAProxy's runtime API: the old
  primary goes to maintenance in the primary backend and its sessions are
  shut (no write may reach a demoted node); the new holder of the leader key
  is the one to verify as soon as the key names it (Patroni rewrites its
  member key with role primary only on its next loop, up to a second or more
  later, and the REST API knows before): its Patroni
  ``/primary`` is polled every ``primary_poll_interval_s`` and the moment it
  answers 200 the server is set ready and its health up: no reload, no
  waiting for ``rise`` checks. etcd alone never enables a primary, and
  HAProxy's own checks stay on as the safety net.
- Other changes (members, policy) re-render the configuration with the one
  renderer, validate it with ``haproxy -c``, write it atomically and, when
  more than the enabled/disabled flags changed, save ``show servers state``
  to the server-state-file and reload through the master CLI. A change of
  flags only (replica lag, drain) goes through the runtime API.
- etcd unreachable or garbage: the last known-good configuration and server
  states stay; reads are retried with backoff; /status and the log say so.

Stdlib only, no Ansible import: roles/haproxy/files/pgha-lb-sync runs it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import json
import logging
import queue
import re
import signal
import threading
import time

from ansible_collections.pgha.cluster.plugins.module_utils.etcd_client import client_from_options
from ansible_collections.pgha.cluster.plugins.module_utils.etcd_errors import EtcdCompacted, EtcdError
from ansible_collections.pgha.cluster.plugins.module_utils.haproxy_config import LbSettings, render_haproxy_config
from ansible_collections.pgha.cluster.plugins.module_utils.haproxy_runtime import (
    HaproxyMaster,
    HaproxyRuntime,
    HaproxyRuntimeError,
)
from ansible_collections.pgha.cluster.plugins.module_utils.lb_config_file import (
    DEFAULT_VALIDATE,
    HaproxyConfigRejected,
    read_text,
    replace_config,
)
from ansible_collections.pgha.cluster.plugins.module_utils.lb_policy import LbPolicyError, policy_key
from ansible_collections.pgha.cluster.plugins.module_utils.lb_source import read_snapshot
from ansible_collections.pgha.cluster.plugins.module_utils.lb_status import Metrics, start_status_server
from ansible_collections.pgha.cluster.plugins.module_utils.patroni_rest import PatroniRestClient, PatroniRestError
from ansible_collections.pgha.cluster.plugins.module_utils.patroni_state import (
    DEFAULT_NAMESPACE,
    ROLE_PRIMARY,
    ROLE_PROMOTED,
    ROLE_REPLICA,
    cluster_prefix,
)

LOG = logging.getLogger('pgha-lb-sync')

CONFIG_DEFAULTS = {
    # required: {endpoints, ca_cert, client_cert, client_key, username, password or password_file, timeout}
    'etcd': None,
    # {scope: {username, password or password_file}}: that cluster is read as its own (read-only) etcd user
    'credentials': {},
    'namespace': DEFAULT_NAMESPACE,
    'scopes': None,  # required
    'ca_file': None,  # the CA of the Patroni REST API certificates: one path, or {scope: path}
    'rest': {},  # {ca_cert, client_cert, client_key, timeout} for the agent's own /primary polls
    'settings': {},  # haproxy_config.LbSettings
    'config_path': '/etc/haproxy/haproxy.cfg',
    'validate': DEFAULT_VALIDATE,
    'master_socket': '/run/haproxy-master.sock',
    'status_address': '127.0.0.1',
    'status_port': 7001,
    'primary_poll_interval_s': 0.1,
    'primary_poll_fast_s': 30.0,
    'reload_timeout_s': 10.0,
    'retry_max_s': 5.0,
}
_ETCD_OPTIONS = ('endpoints', 'ca_cert', 'client_cert', 'client_key', 'username', 'password', 'password_file',
                 'timeout', 'validate_certs')
_CREDENTIAL_OPTIONS = ('username', 'password', 'password_file')
_REST_OPTIONS = ('ca_cert', 'client_cert', 'client_key', 'timeout')
# The enabled/disabled flags of servers: what the runtime API changes without a reload.
_FLAG_COMMENT = re.compile(r'^\s*# \S+: disabled: .*\n', re.M)
_FLAG_WORD = re.compile(r' disabled$', re.M)
_WATCH_RECONNECT_S = 2.0
_WAITING = 'the leader; waiting for its /primary to answer 200'


class AgentConfigError(ValueError):
    """The agent's configuration file is unusable; the message names the field."""


def load_config(data):
    """The agent's settings from a dict (its JSON configuration file), defaults filled in, checked."""
    if not isinstance(data, dict):
        raise AgentConfigError('config: must be a JSON object')
    unknown = sorted(set(data) - set(CONFIG_DEFAULTS))
    if unknown:
        raise AgentConfigError('config.%s: unknown field (known: %s)'
                               % (unknown[0], ', '.join(sorted(CONFIG_DEFAULTS))))
    config = copy.deepcopy(CONFIG_DEFAULTS)
    config.update(copy.deepcopy(data))
    etcd = config['etcd']
    if not isinstance(etcd, dict) or not etcd.get('endpoints'):
        raise AgentConfigError('config.etcd: required, an object with at least "endpoints"')
    _known(etcd, _ETCD_OPTIONS, 'config.etcd')
    _known(config['rest'] or {}, _REST_OPTIONS, 'config.rest')
    scopes = config['scopes']
    if not isinstance(scopes, list) or not scopes or len(set(scopes)) != len(scopes):
        raise AgentConfigError('config.scopes: required, a list of distinct Patroni scopes')
    for scope in scopes:
        try:
            cluster_prefix(config['namespace'], scope)
            policy_key(scope)
        except ValueError as exc:
            raise AgentConfigError('config.scopes: %s' % exc)
    _known(config['credentials'] or {}, scopes, 'config.credentials')
    for scope, credentials in sorted((config['credentials'] or {}).items()):
        _known(credentials, _CREDENTIAL_OPTIONS, 'config.credentials.%s' % scope)
    try:
        config['settings'] = LbSettings.from_value(config['settings'])
    except LbPolicyError as exc:
        raise AgentConfigError('config.%s' % exc)
    for name in ('primary_poll_interval_s', 'primary_poll_fast_s', 'reload_timeout_s', 'retry_max_s'):
        if isinstance(config[name], bool) or not isinstance(config[name], (int, float)) or config[name] <= 0:
            raise AgentConfigError('config.%s: must be a positive number' % name)
    return config


def _known(data, names, field):
    if not isinstance(data, dict):
        raise AgentConfigError('%s: must be an object' % field)
    extra = sorted(set(data) - set(names))
    if extra:
        raise AgentConfigError('%s.%s: unknown field (known: %s)' % (field, extra[0], ', '.join(names)))


def scope_etcd_options(config, scope):
    """The etcd connection options of ``scope``: config.etcd with that scope's credentials, if any, instead."""
    options = dict(config['etcd'])
    credentials = (config['credentials'] or {}).get(scope)
    if credentials:
        for name in _CREDENTIAL_OPTIONS:
            options.pop(name, None)
        options.update(credentials)
    return options


def etcd_clients_from_config(config):
    """{scope: EtcdClient}; scopes with the same credentials share one client."""
    clients, by_options = {}, {}
    for scope in config['scopes']:
        options = scope_etcd_options(config, scope)
        key = json.dumps(options, sort_keys=True)
        if key not in by_options:
            by_options[key] = etcd_client_from_config(options)
        clients[scope] = by_options[key]
    return clients


def etcd_client_from_config(etcd):
    password = etcd.get('password')
    if etcd.get('password_file'):
        with open(etcd['password_file'], encoding='utf-8') as handle:
            password = handle.read().strip()
    return client_from_options(dict(etcd, password=password))


# ------------------------------------------------------------------ pure decisions

def flagless(text):
    """The configuration without the enabled/disabled flags of servers: equal texts need no reload."""
    return _FLAG_WORD.sub('', _FLAG_COMMENT.sub('', text))


def leader_to_verify(state):
    """The member whose /primary the agent asks: the running holder of the leader key, as primary, promoting,
    or not yet rewritten since it took the key (still replica). None for no leader, a stopped one or a standby
    leader."""
    member = state.leader_member()
    if member is not None and member.running and member.role in (ROLE_PRIMARY, ROLE_PROMOTED, ROLE_REPLICA):
        return member
    return None


def routed_backends(backends, verified_primary, drained=()):
    """``backends`` (desired_backends output) with the primary backend's server enabled for exactly the verified
    primary (and the replicas backend's fallback for it, unless ``drained``).

    The verified primary is the leader its own /primary confirmed; etcd's member key may not say primary yet.
    """
    routed = copy.deepcopy(backends)
    for backend in routed['backends'].values():
        if backend is None:
            continue
        for server in backend['servers']:
            if backend['kind'] != 'primary' and not server['track']:
                continue
            drained_here = backend['kind'] != 'primary' and server['member'] in drained
            if server['member'] == verified_primary and not drained_here:
                server['enabled'], server['reason'] = True, None
            elif server['enabled']:
                server['enabled'], server['reason'] = False, _WAITING
    return routed


def runtime_actions(routed_by_scope, rows):
    """[(command, backend, server)] that bring HAProxy's runtime states to the routed ones.

    ``rows``: haproxy_runtime's parsed ``show servers state``. Servers not in
    the running configuration are left to the next reload. A server to disable
    in a primary backend also has its sessions shut.
    """
    status = dict(((row['be_name'], row['srv_name']), row['status']) for row in rows)
    actions = []
    for scope in sorted(routed_by_scope):
        for backend in routed_by_scope[scope]['backends'].values():
            if backend is None:
                continue
            for server in backend['servers']:
                current = status.get((backend['name'], server['name']))
                if current is None:
                    continue
                if server['enabled'] and current == 'maint':
                    actions.append(('ready', backend['name'], server['name']))
                elif not server['enabled'] and current != 'maint':
                    actions.append(('maint', backend['name'], server['name']))
                    if backend['kind'] == 'primary':
                        actions.append(('shutdown', backend['name'], server['name']))
    return actions


def primary_backend(routed):
    return routed['backends']['primary']


# ------------------------------------------------------------------ the agent

class _Cluster(object):
    """What the agent knows of one cluster."""

    def __init__(self, scope):
        self.scope = scope
        self.snapshot = None  # last good ClusterSnapshot
        self.target = None  # the primary etcd names (running leader with role primary)
        self.verified = None  # the member enabled in the primary backend
        self.generation = 0
        self.change_seen = None  # monotonic time the current leader change was seen
        self.last_change = None  # wall time of the last change applied
        self.error = None
        self.dirty = True
        self.revision = 0


class LbAgent(object):
    """See the module docstring. ``run()`` blocks until ``stop()``."""

    def __init__(self, config, client=None, rest=None, runtime=None, master=None):
        self.config = config
        self.settings = config['settings']
        # One client per credential set: each cluster is read (and watched) as its own etcd user.
        if client is not None:
            self.clients = dict((scope, client) for scope in config['scopes'])
        else:
            self.clients = etcd_clients_from_config(config)
        self.client = self.clients[config['scopes'][0]]
        rest_options = config['rest'] or {}
        self.rest = rest or PatroniRestClient(ca_cert=rest_options.get('ca_cert'),
                                              client_cert=rest_options.get('client_cert'),
                                              client_key=rest_options.get('client_key'),
                                              timeout=rest_options.get('timeout') or 1.0)
        self.runtime = runtime or HaproxyRuntime(self.settings.admin_socket)
        master_socket = config['master_socket']
        self.master = master or (HaproxyMaster(master_socket) if master_socket else None)
        self.clusters = dict((scope, _Cluster(scope)) for scope in config['scopes'])
        self.metrics = Metrics()
        self.events = queue.Queue()
        self._stop = threading.Event()
        self._lock = threading.RLock()
        self._watches = []
        self._threads = []
        self.etcd = {'ok': None, 'error': None, 'since': None}
        self.haproxy = {'error': None, 'reloads': 0, 'last_reload': None, 'config_path': config['config_path']}
        self.status_server = None
        self._retry_delay = 0.2
        self._sync_needed = True

    # -------------------------------------------------------------- life cycle

    def start_status(self):
        self.status_server = start_status_server(self.config['status_address'], self.config['status_port'],
                                                 self.status, self.metrics)
        return self.status_server.server_address[1]

    def stop(self):
        self._stop.set()
        self.events.put(('stop',))
        for watch in list(self._watches):
            watch.close()

    def run(self):
        LOG.info('watching %s in etcd %s', ', '.join(sorted(self.clusters)), ', '.join(self.client.endpoints))
        for cluster in self.clusters.values():
            self._refresh(cluster)
        self._converge()
        for scope in sorted(self.clusters):
            cluster = self.clusters[scope]
            self._spawn(self._watch, scope, cluster_prefix(self.config['namespace'], scope), True, cluster.revision)
            self._spawn(self._watch, scope, policy_key(scope), False, cluster.revision)
        while not self._stop.is_set():
            self._wait_events()
            if self._stop.is_set():
                break
            for cluster in self.clusters.values():
                if cluster.dirty:
                    self._refresh(cluster)
            self._converge()
        if self.status_server is not None:
            self.status_server.shutdown()
            self.status_server.server_close()
        for client in set(self.clients.values()):
            client.close()

    def _spawn(self, target, *args):
        thread = threading.Thread(target=target, args=args, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _wait_events(self):
        pending = any(c.dirty for c in self.clusters.values()) or self._sync_needed
        try:
            event = self.events.get(timeout=self._retry_delay if pending else 60.0)
        except queue.Empty:
            if pending:
                self._retry_delay = min(self._retry_delay * 2, self.config['retry_max_s'])
            return
        batch = [event]
        while True:
            try:
                batch.append(self.events.get_nowait())
            except queue.Empty:
                break
        for event in batch:
            self._handle(event)

    def _handle(self, event):
        kind = event[0]
        if kind == 'changed':
            if event[1] is None:
                self._sync_needed = True
            else:
                self.clusters[event[1]].dirty = True
            self._retry_delay = 0.2
        elif kind == 'etcd_error':
            self.clusters[event[1]].dirty = True
            self._etcd_failed(event[2])

    # -------------------------------------------------------------- etcd

    def _watch(self, scope, key, prefix, revision):
        """Feed the queue with changes of ``key``; reconnects resume, a compaction means a full re-read."""
        next_revision = revision + 1 if revision else 0
        delay = 0.2
        while not self._stop.is_set():
            watch = self.clients[scope].watch(key, prefix=prefix, start_revision=next_revision,
                                              reconnect_timeout=_WATCH_RECONNECT_S)
            self._watches.append(watch)
            try:
                for response in watch:
                    delay = 0.2
                    if response.events:
                        self.events.put(('changed', scope))
                return
            except EtcdCompacted as exc:
                LOG.warning('%s: %s', scope, exc)
                next_revision = 0
                self.events.put(('changed', scope))
            except EtcdError as exc:
                next_revision = watch.next_revision
                self.events.put(('etcd_error', scope, 'watch of %s: %s' % (key, exc)))
                self._stop.wait(delay)
                delay = min(delay * 2, self.config['retry_max_s'])
            finally:
                watch.close()
                self._watches.remove(watch)

    def _etcd_failed(self, message):
        self.metrics.inc('etcd_errors')
        self.metrics.set_etcd_up(False)
        with self._lock:
            if self.etcd['ok'] is not False or self.etcd['error'] != message:
                LOG.error('etcd: %s (keeping the last known-good configuration)', message)
            if self.etcd['ok'] is not False:
                self.etcd['since'] = _now()
            self.etcd.update(ok=False, error=message)

    def _etcd_ok(self):
        self.metrics.set_etcd_up(True)
        with self._lock:
            if self.etcd['ok'] is not True:
                if self.etcd['ok'] is False:
                    LOG.info('etcd: reachable again')
                self.etcd.update(ok=True, error=None, since=_now())

    def _refresh(self, cluster):
        """Re-read one cluster; on any failure the last good snapshot stays."""
        keep = cluster.snapshot.policy if cluster.snapshot is not None else None
        try:
            snapshot = read_snapshot(self.clients[cluster.scope], self.config['namespace'], cluster.scope, self.config['ca_file'],
                                     keep_policy=keep)
        except EtcdError as exc:
            self._etcd_failed('reading %s: %s' % (cluster.scope, exc))
            return
        except LbPolicyError as exc:
            self._etcd_ok()
            self._report(cluster, str(exc), 'policy_errors')
            cluster.dirty = False
            return
        self._etcd_ok()
        self._retry_delay = 0.2
        cluster.dirty = False
        cluster.revision = max(cluster.revision, snapshot.revision)
        if snapshot.policy_error:
            self._report(cluster, snapshot.policy_error + '; keeping the previous policy', 'policy_errors')
        elif cluster.snapshot is not None and not snapshot.state.members and cluster.snapshot.state.members:
            # Every member key gone at once is a wiped or restored etcd, not a cluster: never empty the backends.
            self._report(cluster, 'cluster %s: no member keys under %s any more; keeping the last known-good state'
                         % (cluster.scope, snapshot.state.prefix), None)
            return
        else:
            cluster.error = None
        self._apply(cluster, snapshot)

    def _report(self, cluster, message, counter):
        if cluster.error != message:
            LOG.error('%s', message)
            if counter:
                self.metrics.inc(counter)
        cluster.error = message

    # -------------------------------------------------------------- leader changes

    def _apply(self, cluster, snapshot):
        """Take a new snapshot in; a leader change acts on HAProxy at once, the rest in _converge."""
        with self._lock:
            first = cluster.snapshot is None
            cluster.snapshot = snapshot
            primary = leader_to_verify(snapshot.state)
            target = primary.name if primary is not None else None
            self._sync_needed = True
            if target == cluster.target and not first:
                return
            old = cluster.verified
            cluster.target = target
            cluster.generation += 1
            cluster.change_seen = time.monotonic()
            cluster.last_change = _now()
        if first:
            # A restarted agent must not interrupt writes: keep a primary HAProxy already routes to.
            cluster.verified = self._adopt(cluster, target)
        else:
            if old is not None and old != target:
                self._demote(cluster, old)
            self.metrics.inc('leader_changes')
            LOG.info('%s: leader change in etcd: %s -> %s', cluster.scope, old, target)
        if target is not None and cluster.verified != target:
            self._spawn(self._poll_primary, cluster.scope, target, primary.api_url, cluster.generation)

    def _adopt(self, cluster, target):
        """At start: a primary HAProxy already routes to (enabled and up) stays; none is forced up."""
        if target is None:
            return None
        backend = primary_backend(cluster.snapshot.backends)['name']
        try:
            rows = self.runtime.show_servers_state(backend)
        except HaproxyRuntimeError:
            return None
        up = [row['srv_name'] for row in rows if row['status'] == 'up']
        names = [s['name'] for s in primary_backend(cluster.snapshot.backends)['servers'] if s['member'] == target]
        return target if names and names[0] in up else None

    def _demote(self, cluster, member):
        cluster.verified = None
        backend = primary_backend(cluster.snapshot.backends)
        for server in backend['servers']:
            if server['member'] == member:
                self._runtime(('maint', backend['name'], server['name']), ('shutdown', backend['name'], server['name']))
        self.metrics.inc('demotions')
        LOG.info('%s: %s taken out of %s, its sessions shut', cluster.scope, member, backend['name'])

    def _poll_primary(self, scope, member, api_url, generation):
        """Ask the new leader's REST API for /primary until it answers 200 (then tell the main loop)."""
        cluster = self.clusters[scope]
        interval = self.config['primary_poll_interval_s']
        fast_until = time.monotonic() + self.config['primary_poll_fast_s']
        while not self._stop.is_set() and cluster.generation == generation:
            try:
                status = self.rest.request(api_url, 'GET', '/primary', timeout=max(interval * 5, 0.5)).status
            except PatroniRestError as exc:
                status = str(exc)
            if status == 200:
                # Enabled from this thread: the main loop may be busy validating a file for a while.
                self._promote(scope, member, generation)
                self.events.put(('changed', None))
                return
            self._stop.wait(interval if time.monotonic() < fast_until else 1.0)

    def _promote(self, scope, member, generation):
        cluster = self.clusters[scope]
        with self._lock:
            if cluster.generation != generation or cluster.target != member:
                return
            cluster.verified = member
            backend = primary_backend(cluster.snapshot.backends)
            for server in backend['servers']:
                if server['member'] == member:
                    self._runtime(('ready', backend['name'], server['name']),
                                  ('health', backend['name'], server['name']))
            self._sync_needed = True
        seconds = time.monotonic() - cluster.change_seen
        self.metrics.observe_convergence(seconds)
        self.metrics.inc('promotions')
        LOG.info('%s: %s answered /primary: enabled in %s %.3f s after the leader change', scope, member,
                 backend['name'], seconds)

    # -------------------------------------------------------------- HAProxy

    def _runtime(self, *actions):
        """Run runtime API actions; True when all worked (failures are reported and retried by the next sync)."""
        calls = {'ready': lambda b, s: self.runtime.set_server_state(b, s, 'ready'),
                 'maint': lambda b, s: self.runtime.set_server_state(b, s, 'maint'),
                 'health': lambda b, s: self.runtime.set_server_health(b, s, 'up'),
                 'shutdown': self.runtime.shutdown_sessions}
        for name, backend, server in actions:
            try:
                calls[name](backend, server)
            except HaproxyRuntimeError as exc:
                self.metrics.inc('runtime_errors')
                self._haproxy_error(str(exc))
                self._sync_needed = True
                return False
        return True

    def _haproxy_error(self, message):
        with self._lock:
            if self.haproxy['error'] != message:
                LOG.error('haproxy: %s', message)
            self.haproxy['error'] = message

    def routed(self):
        """{scope: routed backends} of every cluster read at least once."""
        return dict((c.scope, routed_backends(c.snapshot.backends, c.verified, c.snapshot.policy.drain))
                    for c in self.clusters.values() if c.snapshot is not None)

    def _converge(self):
        """Make the file and HAProxy match the routed backends (the last good state of each cluster)."""
        if not self._sync_needed:
            return
        with self._lock:
            routed = self.routed()
            if not routed or not self._sync_runtime(routed):
                return
        unread = sorted(c.scope for c in self.clusters.values() if c.snapshot is None)
        if unread:
            # Rendering without them would drop their listeners: the file waits until every cluster was read.
            self._haproxy_error('not read from etcd yet: %s; the configuration file stays as it is'
                                % ', '.join(unread))
            return
        clusters = [self.clusters[scope].snapshot.lb_cluster(routed[scope]) for scope in sorted(routed)]
        try:
            text = render_haproxy_config(clusters, self.settings)
        except LbPolicyError as exc:
            self._haproxy_error('cannot render the configuration: %s' % exc)
            self.metrics.inc('reload_errors')
            self._sync_needed = False
            return
        path = self.config['config_path']
        old = read_text(path)
        if old == text:
            self._sync_needed = False
            self.haproxy['error'] = None
            return
        try:
            replace_config(path, text, self.config['validate'])
        except (HaproxyConfigRejected, OSError) as exc:
            self._haproxy_error('%s; the running configuration stays' % exc)
            self.metrics.inc('reload_errors')
            self._sync_needed = False
            return
        if old is not None and flagless(old) == flagless(text):
            LOG.info('configuration written (server states only: no reload)')
        elif not self._reload():
            return
        self._sync_needed = False
        self.haproxy['error'] = None

    def _sync_runtime(self, routed):
        try:
            rows = self.runtime.show_servers_state()
        except HaproxyRuntimeError as exc:
            self.metrics.inc('runtime_errors')
            self._haproxy_error(str(exc))
            return False
        return self._runtime(*runtime_actions(routed, rows))

    def _reload(self):
        if self.master is None:
            self._haproxy_error('configuration written; no master socket configured to reload HAProxy')
            return True
        try:
            before = self.master.processes()
            old_pid = self.runtime.process_id()
            replace_config(self.settings.server_state_file, self.runtime.servers_state_text(), validate=None)
            self.master.reload()
            self._wait_new_worker(before, old_pid)
        except (HaproxyRuntimeError, OSError) as exc:
            self.metrics.inc('reload_errors')
            self._haproxy_error('reload failed: %s' % exc)
            return False
        self.metrics.inc('reloads')
        with self._lock:
            self.haproxy['reloads'] += 1
            self.haproxy['last_reload'] = _now()
        LOG.info('configuration written and HAProxy reloaded')
        with self._lock:
            return self._sync_runtime(self.routed())

    def _wait_new_worker(self, before, old_pid):
        deadline = time.monotonic() + self.config['reload_timeout_s']
        while time.monotonic() < deadline:
            time.sleep(0.05)
            try:
                if self.master.processes()['failed_reloads'] > before['failed_reloads']:
                    raise HaproxyRuntimeError('HAProxy did not load the new configuration (see its log)')
                if self.runtime.process_id() != old_pid:
                    return
            except (HaproxyRuntimeError, OSError):
                if time.monotonic() >= deadline:
                    raise
        raise HaproxyRuntimeError('no new HAProxy worker within %ss of the reload' % self.config['reload_timeout_s'])

    # -------------------------------------------------------------- /status

    def status(self):
        try:
            rows = self.runtime.show_servers_state()
            runtime_error = None
        except HaproxyRuntimeError as exc:
            rows, runtime_error = [], str(exc)
        live = dict(((row['be_name'], row['srv_name']), row['status']) for row in rows)
        routed = self.routed()
        clusters = {}
        for scope, cluster in sorted(self.clusters.items()):
            entry = {'leader': None, 'primary': cluster.target, 'verified_primary': cluster.verified,
                     'last_change': cluster.last_change, 'error': cluster.error, 'revision': cluster.revision,
                     'backends': {}}
            if cluster.snapshot is not None:
                entry['leader'] = cluster.snapshot.state.leader
                entry['policy'] = cluster.snapshot.policy.to_dict()
                for kind, backend in routed[scope]['backends'].items():
                    if backend is None:
                        continue
                    entry['backends'][kind] = {'name': backend['name'], 'port': backend['port'], 'servers': [
                        {'name': s['name'], 'member': s['member'], 'wanted': s['enabled'], 'reason': s['reason'],
                         'haproxy': live.get((backend['name'], s['name']))} for s in backend['servers']]}
            clusters[scope] = entry
        with self._lock:
            return {'clusters': clusters, 'etcd': dict(self.etcd, endpoints=self.client.endpoints),
                    'haproxy': dict(self.haproxy, runtime_error=runtime_error),
                    'last_change': max([c['last_change'] for c in clusters.values() if c['last_change']] or [None])}


def _now():
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())


def main(config_path):
    """Run the agent from its JSON configuration file until SIGTERM/SIGINT; returns the exit status."""
    logging.basicConfig(level=logging.INFO, format='%(levelname)s %(message)s')
    try:
        with open(config_path, encoding='utf-8') as handle:
            config = load_config(json.load(handle))
        agent = LbAgent(config)
    except (OSError, ValueError, EtcdError) as exc:
        LOG.error('cannot start: %s: %s', config_path, exc)
        return 2
    port = agent.start_status()
    LOG.info('status on http://%s:%d/status and /metrics', config['status_address'], port)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_args: agent.stop())
    agent.run()
    return 0
