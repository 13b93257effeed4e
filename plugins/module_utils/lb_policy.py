# -*- coding: utf-8 -*-
# Copyright: pgha.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Load balancer policy per Patroni cluster, and the backend server sets it asks for.

The policy of cluster ``<scope>`` is one JSON object in etcd at
``/pgha/lb/<scope>/policy`` (:func:`policy_key`). Every field is optional;
:data:`DEFAULTS` holds what a missing field means::

    {
      "ports": {"primary": 5000, "replicas": 5001, "read_any": null},
      "max_replica_lag_bytes": 1048576,
      "primary_reads_fallback": false,
      "balance": "roundrobin",
      "weights": {"pg2": 50},
      "drain": ["pg3"],
      "check": {"interval_ms": 3000, "fall": 3, "rise": 2},
      "max_connections": null
    }

``ports.read_any`` (a listener sending reads to the primary and the
replicas alike) is off unless given a port; ``ports.replicas`` may be null
too. ``max_replica_lag_bytes`` null means no limit; the default is
Patroni's own ``maximum_lag_on_failover``. ``primary_reads_fallback`` lets
the replicas listener send reads to the primary while no replica qualifies.
``weights`` (0-256, default :data:`DEFAULT_WEIGHT`) apply to the read
listeners. ``drain`` takes members out of the read listeners only: writes
always go to the leader (move it with a switchover). ``max_connections`` is
HAProxy's ``maxconn`` per server (null: no limit), best set a little under
PostgreSQL's ``max_connections`` so that HAProxy queues instead of
PostgreSQL refusing. The check settings default to those Patroni documents
for HAProxy; faster checks are allowed.

An invalid policy raises :class:`LbPolicyError` naming the field
(``policy.ports.primary: must be an integer 1-65535, got 'x'``); unknown
fields are errors too, so a typo never silently falls back to a default.

:func:`desired_backends` turns a ClusterState and a policy into plain data:
for each backend, every member with usable addresses as a server (enabled or
not, with the reason), plus the members left out entirely. The HAProxy
renderer writes every listed server (the disabled ones in maintenance), so
that the load balancer agent can move servers between states through
HAProxy's runtime API without a reload.

Stdlib only, no Ansible import: modules, roles and the agent share it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import hashlib
import ipaddress
import json
import re

from ansible_collections.pgha.cluster.plugins.module_utils.patroni_state import (
    ROLE_PRIMARY,
    ROLE_REPLICA,
    ROLE_STANDBY_LEADER,
)

POLICY_PREFIX = '/pgha/lb/'
BACKEND_KINDS = ('primary', 'replicas', 'read_any')
BALANCE_ALGORITHMS = ('first', 'leastconn', 'roundrobin', 'source')
DEFAULT_WEIGHT = 100
MAX_WEIGHT = 256  # HAProxy's limit
STREAMING = 'streaming'

DEFAULTS = {
    'ports': {'primary': 5000, 'replicas': 5001, 'read_any': None},
    'max_replica_lag_bytes': 1048576,
    'primary_reads_fallback': False,
    'balance': 'roundrobin',
    'weights': {},
    'drain': [],
    'check': {'interval_ms': 3000, 'fall': 3, 'rise': 2},
    'max_connections': None,
}

# Patroni's REST API health checks, one per backend kind.
CHECK_PATHS = {'primary': '/primary', 'replicas': '/replica', 'read_any': '/read-only'}

_MAX_LAG = 1 << 62
_LIMITS = {
    'ports': (1, 65535),
    'check.interval_ms': (100, 3600000),
    'check.fall': (1, 100),
    'check.rise': (1, 100),
    'max_connections': (1, 1000000),
    'max_replica_lag_bytes': (0, _MAX_LAG),
}
# Characters HAProxy accepts in proxy and server names; ':' is kept for names this module adds.
_NAME_UNSAFE = re.compile(r'[^A-Za-z0-9_.-]')
_NAME_MAX = 48
# Host names end up as words of haproxy.cfg: nothing that could split or quote them.
_HOST_NAME = re.compile(r'^[A-Za-z0-9_]([A-Za-z0-9_.-]{0,252})$')


class LbPolicyError(ValueError):
    """An invalid LB policy or LB setting; the message starts with the field's path."""


# ------------------------------------------------------------------ the policy

class LbPolicy(object):
    """A validated policy: attributes as in :data:`DEFAULTS` (``ports`` and ``check`` are dicts)."""

    __slots__ = tuple(sorted(DEFAULTS))

    def __init__(self, data):
        for name in self.__slots__:
            setattr(self, name, copy.deepcopy(data[name]))

    def __eq__(self, other):
        return isinstance(other, LbPolicy) and self.to_dict() == other.to_dict()

    def __ne__(self, other):
        return not self == other

    __hash__ = None

    def __repr__(self):
        return 'LbPolicy(%s)' % self.to_json()

    def to_dict(self):
        return dict((name, copy.deepcopy(getattr(self, name))) for name in self.__slots__)

    def to_json(self):
        """Canonical JSON (every field, sorted keys, no spaces): equal policies give equal text."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(',', ':'))

    def weight(self, member_name):
        return self.weights.get(member_name, DEFAULT_WEIGHT)


def policy_key(scope):
    """The etcd key holding the policy of cluster ``scope``."""
    if not isinstance(scope, str) or not scope or '/' in scope or scope != scope.strip():
        raise LbPolicyError('scope: must be a non-empty name without "/" or surrounding spaces, got %s'
                            % _shown(scope))
    return '%s%s/policy' % (POLICY_PREFIX, scope)


def parse_policy(value=None, field='policy'):
    """An LbPolicy from a dict, JSON text (str or bytes), an LbPolicy, or None (all defaults).

    Raises LbPolicyError naming the first invalid field.
    """
    if isinstance(value, LbPolicy):
        return value
    if value is None:
        value = {}
    if isinstance(value, (bytes, bytearray)):
        try:
            value = bytes(value).decode('utf-8')
        except UnicodeDecodeError:
            raise LbPolicyError('%s: is not UTF-8 text' % field)
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else {}
        except ValueError as exc:
            raise LbPolicyError('%s: is not valid JSON: %s' % (field, exc))
    if not isinstance(value, dict):
        raise LbPolicyError('%s: must be an object, got %s' % (field, _kind(value)))
    _unknown(value, DEFAULTS, field)
    data = {}
    data['ports'] = _ports(value.get('ports'), field + '.ports')
    data['max_replica_lag_bytes'] = _integer(value, 'max_replica_lag_bytes', field, nullable=True,
                                             default=DEFAULTS['max_replica_lag_bytes'])
    data['primary_reads_fallback'] = _boolean(value, 'primary_reads_fallback', field)
    data['balance'] = _choice(value, 'balance', field, BALANCE_ALGORITHMS)
    data['weights'] = _weights(value.get('weights'), field + '.weights')
    data['drain'] = _names(value.get('drain'), field + '.drain')
    data['check'] = _check(value.get('check'), field + '.check')
    data['max_connections'] = _integer(value, 'max_connections', field, nullable=True,
                                       default=DEFAULTS['max_connections'])
    return LbPolicy(data)


def default_policy():
    return parse_policy({})


def policy_ports(policy):
    """[(kind, port)] of the listeners the policy turns on, in BACKEND_KINDS order."""
    return [(kind, policy.ports[kind]) for kind in BACKEND_KINDS if policy.ports[kind] is not None]


def _ports(value, field):
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise LbPolicyError('%s: must be an object, got %s' % (field, _kind(value)))
    _unknown(value, DEFAULTS['ports'], field)
    ports = {}
    for kind in BACKEND_KINDS:
        ports[kind] = _integer(value, kind, field, limits='ports', nullable=kind != 'primary',
                               default=DEFAULTS['ports'][kind])
    seen = {}
    for kind in BACKEND_KINDS:
        port = ports[kind]
        if port is not None and port in seen:
            raise LbPolicyError('%s.%s: port %d is already used by %s.%s' % (field, kind, port, field, seen[port]))
        seen.setdefault(port, kind)
    return ports


def _check(value, field):
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise LbPolicyError('%s: must be an object, got %s' % (field, _kind(value)))
    _unknown(value, DEFAULTS['check'], field)
    return dict((name, _integer(value, name, field, limits='check.' + name, default=DEFAULTS['check'][name]))
                for name in sorted(DEFAULTS['check']))


def _weights(value, field):
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise LbPolicyError('%s: must be an object of member name -> weight, got %s' % (field, _kind(value)))
    weights = {}
    for name in sorted(value, key=str):
        _member_name(name, '%s: member names' % field)
        weight = value[name]
        if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= MAX_WEIGHT:
            raise LbPolicyError('%s.%s: must be an integer 0-%d, got %s' % (field, name, MAX_WEIGHT, _shown(weight)))
        weights[name] = weight
    return weights


def _names(value, field):
    if value is None:
        return []
    if not isinstance(value, list):
        raise LbPolicyError('%s: must be a list of member names, got %s' % (field, _kind(value)))
    for index, name in enumerate(value):
        _member_name(name, '%s[%d]' % (field, index))
    return sorted(set(value))


def _member_name(name, field):
    if not isinstance(name, str) or not name.strip():
        raise LbPolicyError('%s: must be a non-empty member name, got %s' % (field, _shown(name)))


def _integer(data, name, field, default, limits=None, nullable=False):
    if name not in data:
        return default
    value = data[name]
    if value is None and nullable:
        return None
    low, high = _LIMITS[limits or name]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise LbPolicyError('%s.%s: must be an integer %d-%d%s, got %s' % (
            field, name, low, high, ' or null' if nullable else '', _shown(value)))
    return value


def _boolean(data, name, field):
    value = data.get(name, DEFAULTS[name])
    if not isinstance(value, bool):
        raise LbPolicyError('%s.%s: must be true or false, got %s' % (field, name, _shown(value)))
    return value


def _choice(data, name, field, choices):
    value = data.get(name, DEFAULTS[name])
    if value not in choices:
        raise LbPolicyError('%s.%s: must be one of %s, got %s' % (field, name, ', '.join(choices), _shown(value)))
    return value


def _unknown(data, known, field):
    extra = sorted(str(k) for k in data if k not in known)
    if extra:
        raise LbPolicyError('%s.%s: unknown field (known: %s)' % (field, extra[0], ', '.join(sorted(known))))


def _kind(value):
    if value is None:
        return 'null'
    return {bool: 'a boolean', int: 'a number', float: 'a number', str: 'a string', list: 'a list',
            dict: 'an object'}.get(type(value), type(value).__name__)


def _shown(value):
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + '...'


# ------------------------------------------------------------------ names

def haproxy_name(text):
    """A valid, stable HAProxy identifier for ``text``.

    Names made only of letters, digits, ``_``, ``.`` and ``-`` (at most
    :data:`_NAME_MAX` characters) are kept as they are; any other name is
    sanitised and gets a suffix hashed from the original, so two names that
    sanitise alike stay apart and a name never depends on its neighbours.
    ``:`` never appears in the result: names this module derives use it.
    """
    if text and len(text) <= _NAME_MAX and not _NAME_UNSAFE.search(text):
        return text
    digest = hashlib.sha256(text.encode('utf-8', 'surrogatepass')).hexdigest()[:8]
    cleaned = _NAME_UNSAFE.sub('_', text)[:_NAME_MAX - 9].strip('_')
    return '%s_%s' % (cleaned, digest) if cleaned else 'x_' + digest


def backend_name(scope, kind):
    """``pgha_<scope>_<kind>``: the listener/backend name of one cluster's backend."""
    return 'pgha_%s_%s' % (haproxy_name(scope), kind)


def fallback_server_name(server_name):
    """The replicas backend's backup server standing for ``server_name`` while it is primary."""
    return server_name + ':primary'


def is_ip_address(host):
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return '%' not in host  # zone ids are not for haproxy.cfg


def is_usable_host(host):
    """An IP address or a DNS-like name that is safe to write into haproxy.cfg as a word."""
    return isinstance(host, str) and (is_ip_address(host) or bool(_HOST_NAME.match(host)))


# ------------------------------------------------------------------ desired backends

def desired_backends(state, policy=None):
    """Which members each backend of one cluster should send traffic to.

    ``state`` is a patroni_state.ClusterState; ``policy`` anything
    :func:`parse_policy` takes. Returns plain data::

        {'scope': ..., 'primary_member': name or None,
         'backends': {'primary': {...}, 'replicas': {...} or None, 'read_any': {...} or None},
         'excluded': [{'member': name, 'reason': text}]}

    where each backend is ``{'name', 'kind', 'port', 'check_path', 'servers'}``
    and each server ``{'name', 'member', 'address', 'port', 'api_host',
    'api_port', 'api_tls', 'weight', 'enabled', 'reason', 'backup',
    'track'}`` (``reason`` says why a server is not enabled). Every member
    with usable addresses is a server of every backend; members without are
    in ``excluded``. Only the running leader whose role is primary is ever
    enabled in the primary backend.
    """
    policy = parse_policy(policy)
    usable, excluded = _usable_members(state)
    primary = state.primary()
    primary_name = primary.name if primary is not None else None
    backends = dict((kind, None) for kind in BACKEND_KINDS)
    for kind, port in policy_ports(policy):
        servers = []
        for member, server_name in usable:
            enabled, reason = _member_verdict(kind, member, state, policy)
            servers.append(_server(server_name, member, policy, kind, enabled, reason))
        if kind == 'replicas' and policy.primary_reads_fallback:
            servers.extend(_fallback_servers(usable, state, policy))
        backends[kind] = {
            'name': backend_name(state.scope, kind),
            'kind': kind,
            'port': port,
            'check_path': check_path(kind, policy),
            'servers': sorted(servers, key=lambda s: s['name']),
        }
    return {'scope': state.scope, 'primary_member': primary_name, 'backends': backends, 'excluded': excluded}


def check_path(kind, policy):
    """The Patroni REST API path HAProxy checks for a backend kind.

    The replicas and read-any checks carry the lag limit: Patroni answers
    ``/read-only`` for the primary whatever the lag and for a replica only
    within ``lag`` and without ``noloadbalance``, as ``/replica`` does.
    """
    path = CHECK_PATHS[kind]
    if kind != 'primary' and policy.max_replica_lag_bytes is not None:
        path += '?lag=%d' % policy.max_replica_lag_bytes
    return path


def _usable_members(state):
    """([(member, server name)], [excluded]) in member name order.

    A member whose name is a valid server name as it is keeps it; a
    sanitised name that happens to equal it loses (that member is left out).
    """
    candidates = []
    excluded = []
    for member in state.members:
        reason = _unusable(member)
        if reason:
            excluded.append({'member': member.name, 'reason': reason})
        else:
            candidates.append((member, haproxy_name(member.name)))
    taken = set(name for member, name in candidates if name == member.name)
    usable = []
    for member, name in candidates:
        if name != member.name:
            if name in taken:
                excluded.append({'member': member.name,
                                 'reason': 'its server name %s is taken by another member' % name})
                continue
            taken.add(name)
        usable.append((member, name))
    return usable, sorted(excluded, key=lambda e: e['member'])


def _unusable(member):
    if member.invalid:
        return 'invalid member key: %s' % member.reason
    if not member.port or not is_usable_host(member.host):
        return 'no usable PostgreSQL address in conn_url %s' % _shown(member.conn_url)
    if not member.api_port or not is_usable_host(member.api_host):
        return 'no usable REST API address in api_url %s' % _shown(member.api_url)
    if member.api_host != member.host and not is_ip_address(member.api_host):
        # HAProxy resolves a check address ("addr") once, at startup, and refuses to load if it cannot.
        return ('REST API host %s differs from the PostgreSQL host %s and is not an IP address'
                % (member.api_host, member.host))
    return None


def _member_verdict(kind, member, state, policy):
    """(enabled, reason) of one member in one backend."""
    if kind == 'primary':
        if member.name == _name_or_none(state.primary()):
            return True, None
        return False, _not_primary_reason(member, state)
    if kind == 'read_any' and member.is_leader:
        if not member.running or member.role not in (ROLE_PRIMARY, ROLE_STANDBY_LEADER):
            return False, _not_primary_reason(member, state)
        return _drain_verdict(member, policy)
    return _replica_verdict(member, policy)


def _replica_verdict(member, policy):
    if not member.running:
        return False, 'state is %s, not running' % (member.state or 'unknown')
    if member.is_leader:
        return False, 'holds the leader key'
    if member.role != ROLE_REPLICA:
        return False, 'role is %s, not replica' % (member.raw_role or 'unknown')
    if member.noloadbalance:
        return False, 'tagged noloadbalance'
    if member.replication_state and member.replication_state != STREAMING:
        return False, 'replication state is %s, not streaming' % member.replication_state
    limit = policy.max_replica_lag_bytes
    if limit is not None:
        if member.lag is None:
            return False, 'lag unknown'
        if member.lag > limit:
            return False, 'lag %d bytes is over the limit of %d' % (member.lag, limit)
    return _drain_verdict(member, policy)


def _drain_verdict(member, policy):
    if member.name in policy.drain:
        return False, 'drained by policy'
    return True, None


def _not_primary_reason(member, state):
    if not state.leader:
        return 'no leader key'
    if not member.is_leader:
        return 'not the leader (the leader key names %s)' % state.leader
    if not member.running:
        return 'holds the leader key but its state is %s' % (member.state or 'unknown')
    return 'holds the leader key but its role is %s' % (member.raw_role or 'unknown')


def _fallback_servers(usable, state, policy):
    """Backup servers of the replicas backend: each member again, for while it is the primary.

    They carry no check of their own: they track the member's server in the
    primary backend (Patroni's ``/primary``), so one is up exactly while its
    member runs as the primary, and HAProxy uses a backup only when no
    replica is up. The primary's data is never stale, so no lag check is
    needed.
    """
    primary_name = _name_or_none(state.primary())
    servers = []
    for member, server_name in usable:
        if member.name == primary_name:
            enabled, reason = _drain_verdict(member, policy)
        else:
            enabled, reason = False, _not_primary_reason(member, state)
        server = _server(fallback_server_name(server_name), member, policy, 'replicas', enabled, reason)
        server['backup'] = True
        server['track'] = '%s/%s' % (backend_name(state.scope, 'primary'), server_name)
        servers.append(server)
    return servers


def _server(name, member, policy, kind, enabled, reason):
    return {
        'name': name,
        'member': member.name,
        'address': member.host,
        'port': member.port,
        'api_host': member.api_host,
        'api_port': member.api_port,
        'api_tls': member.api_url.strip().lower().startswith('https:'),
        'weight': DEFAULT_WEIGHT if kind == 'primary' else policy.weight(member.name),
        'enabled': enabled,
        'reason': reason,
        'backup': False,
        'track': None,
    }


def _name_or_none(member):
    return member.name if member is not None else None
