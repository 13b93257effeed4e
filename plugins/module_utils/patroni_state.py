# -*- coding: utf-8 -*-
# Copyright: pgha.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Patroni's keys in etcd -> ClusterState: the one parser every consumer uses.

Patroni keeps one cluster's state under ``/<namespace>/<scope>/``:

``leader``            name of the member holding the leader lock (a key with a lease)
``members/<name>``    JSON written by each member every loop_wait (a key with a lease)
``config``            dynamic configuration (ttl, loop_wait, synchronous_mode, ...)
``sync``              ``{"leader", "sync_standby": "a,b", "quorum"}`` in synchronous mode
``failover``          ``{"leader", "member", "scheduled_at"}`` while a switchover is requested
``history``           ``[[timeline, lsn, reason, timestamp, new_leader], ...]``
``initialize``        the PostgreSQL system identifier
``status``            ``{"optime", "slots", "retain_slots"}`` written by the leader
                      (``optime/leader`` with a bare LSN in Patroni before 2.1)
``failsafe``          ``{member: api_url}`` when failsafe_mode is on

Everything here is pure and stdlib only (no Ansible import) so that modules,
the inventory plugin and the load balancer agent share it; the only I/O is the
convenience :func:`read_cluster_state` (one prefix range read).

Data written by others never makes the parser raise: a member whose value is
not a JSON object is reported with ``invalid=True`` and a ``reason``; a field
of the wrong type is left ``None`` and named in ``warnings``.

Semantics follow Patroni's own (``patroni/dcs/__init__.py``, ``tags.py``):
roles ``master`` and ``primary`` both mean primary; tag booleans are Python
truthiness, as Patroni evaluates them; ``nofailover`` falls back to
``failover_priority <= 0``; a failover request is pending when it names a
leader or a candidate (an empty object means none).

Lag (bytes) of every member that does not hold the leader key is measured
against ``leader_lsn``: the ``xlog_location`` of the member named by the
leader key, or, when that is unknown, ``status.optime`` (Patroni's
``last_lsn``). The leader member comes first because it is tied to whoever
holds the lock now, while ``status`` may still be the previous leader's.
``lag`` is measured from the replica's ``replay_lsn`` (what queries on it can
see) when Patroni reports it (4.x), else from ``xlog_location`` (which Patroni
sets to max(receive, replay) on replicas, and which is all 3.x writes).
``receive_lag``, ``replay_lag`` and ``xlog_lag`` (Patroni's own definition,
used by its ``/replica?lag=`` check) are reported as well. Lags are never
negative, and are None when a position is unknown or the member is on another
timeline than the leader (LSNs on different timelines are not comparable).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import re

from urllib.parse import parse_qsl, urlsplit, urlunsplit

DEFAULT_NAMESPACE = '/service'
DEFAULT_POSTGRES_PORT = 5432

ROLE_PRIMARY = 'primary'
ROLE_STANDBY_LEADER = 'standby_leader'
ROLE_REPLICA = 'replica'
# What Patroni writes in a member key while it promotes PostgreSQL (primary once that is done).
ROLE_PROMOTED = 'promoted'
STATE_RUNNING = 'running'

# Patroni's values when the config key does not set them.
PATRONI_DEFAULTS = {
    'ttl': 30,
    'loop_wait': 10,
    'retry_timeout': 10,
    'maximum_lag_on_failover': 1048576,
}

_ROLE_ALIASES = {'master': ROLE_PRIMARY}
# Bounded so that int() never meets Python's limit on digits in a conversion.
_DIGITS = re.compile(r'^[0-9]{1,20}$')
_SIGNED_DIGITS = re.compile(r'^-?[0-9]{1,20}$')
_MAX_LSN = 0xFFFFFFFFFFFFFFFF
_LSN_TEXT = re.compile(r'^([0-9A-Fa-f]{1,8})/([0-9A-Fa-f]{1,8})$')
_TRUE_WORDS = ('true', 'on', 'yes', '1')
_BOOLEAN_TAGS = ('nofailover', 'noloadbalance', 'nosync', 'nostream', 'clonefrom')
_CLUSTER_KEYS = ('leader', 'config', 'sync', 'failover', 'history', 'initialize', 'status', 'optime/leader',
                 'failsafe')
_MEMBERS_DIR = 'members/'
_REPR_LIMIT = 60


# ------------------------------------------------------------------ records

class _Record(object):
    """A small value object: fields and defaults in ``_fields`` (list/dict defaults are factories)."""

    __slots__ = ()
    _fields = ()
    _computed = ()  # properties added to to_dict()
    _hidden = ()  # fields left out of to_dict()

    def __init__(self, **kwargs):
        for name, default in self._fields:
            if name in kwargs:
                value = kwargs.pop(name)
            else:
                value = default() if default in (list, dict) else default
            setattr(self, name, value)
        if kwargs:
            raise TypeError('%s has no field(s) %s' % (type(self).__name__, ', '.join(sorted(kwargs))))

    def __eq__(self, other):
        return type(self) is type(other) and all(
            getattr(self, name) == getattr(other, name) for name, _default in self._fields)

    def __ne__(self, other):
        return not self == other

    __hash__ = None

    def __repr__(self):
        shown = ', '.join('%s=%r' % (name, getattr(self, name)) for name, _default in self._fields[:4])
        return '%s(%s, ...)' % (type(self).__name__, shown)

    def to_dict(self):
        """Plain JSON-serialisable data (nested records become dicts)."""
        names = [n for n, _default in self._fields if n not in self._hidden] + list(self._computed)
        return dict((name, _plain(getattr(self, name))) for name in names)


def _plain(value):
    # Dicts and lists other than records come from json.loads: plain already.
    if isinstance(value, _Record):
        return value.to_dict()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return dict(value)
    return value


def _slots(fields):
    return tuple(name for name, _default in fields)


class Member(_Record):
    """One ``members/<name>`` key.

    ``role`` is normalised (``master`` -> ``primary``; ``standby_leader``,
    ``replica`` and Patroni's transient roles such as ``promoted``/``demoted``
    are kept as written, ``raw_role`` is the value as written). ``lease`` and
    ``mod_revision`` come from etcd (None when the input was plain text;
    ``lease == 0`` means the key has no lease). ``is_leader``,
    ``sync_standby``, ``primary_without_leader_key`` and the lags are derived
    from the other keys by :func:`parse_cluster_state`.
    """

    _fields = (
        ('name', None), ('key', None), ('invalid', False), ('reason', None),
        ('role', None), ('raw_role', None), ('state', None),
        ('conn_url', None), ('host', None), ('port', None), ('database', None),
        ('api_url', None), ('api_host', None), ('api_port', None), ('proxy_url', None),
        ('timeline', None), ('xlog_location', None), ('receive_lsn', None), ('replay_lsn', None),
        ('replication_state', None),
        ('tags', dict), ('nofailover', False), ('failover_priority', 1), ('noloadbalance', False),
        ('nosync', False), ('nostream', False), ('clonefrom', False), ('replicatefrom', None),
        ('pending_restart', False), ('pending_restart_reason', None), ('scheduled_restart', None),
        ('pause', False), ('version', None), ('lease', None), ('mod_revision', None),
        ('is_leader', False), ('sync_standby', False), ('primary_without_leader_key', False),
        ('lag', None), ('receive_lag', None), ('replay_lag', None), ('xlog_lag', None),
        ('warnings', list), ('data', dict),
    )
    __slots__ = _slots(_fields)
    _computed = ('running',)
    _hidden = ('data',)

    @property
    def running(self):
        return not self.invalid and self.state == STATE_RUNNING


class ClusterConfig(_Record):
    """The ``config`` key. Fields are None when the key does not set them (see ``effective``)."""

    _fields = (
        ('present', False), ('invalid', False), ('reason', None),
        ('ttl', None), ('loop_wait', None), ('retry_timeout', None), ('maximum_lag_on_failover', None),
        ('synchronous_mode', False), ('synchronous_mode_strict', False), ('synchronous_node_count', None),
        ('failsafe_mode', False), ('paused', False), ('check_timeline', False), ('use_pg_rewind', None),
        ('standby_cluster', None), ('postgresql_parameters', dict), ('data', dict),
    )
    __slots__ = _slots(_fields)

    def effective(self, name):
        """The value Patroni runs with: the configured one, else Patroni's default."""
        value = getattr(self, name)
        return PATRONI_DEFAULTS.get(name) if value is None else value


class SyncState(_Record):
    """The ``sync`` key; ``sync_standby`` is a list (Patroni stores a comma-separated string)."""

    _fields = (('present', False), ('invalid', False), ('reason', None),
               ('leader', None), ('sync_standby', list), ('quorum', 0))
    __slots__ = _slots(_fields)


class FailoverRequest(_Record):
    """The ``failover`` key; Patroni stores the candidate as ``member``."""

    _fields = (('present', False), ('invalid', False), ('reason', None),
               ('leader', None), ('candidate', None), ('scheduled_at', None))
    __slots__ = _slots(_fields)
    _computed = ('pending',)

    @property
    def pending(self):
        return bool(self.leader or self.candidate)


class HistoryEntry(_Record):
    """One timeline switch: ``timeline`` ended at ``lsn``, where ``new_leader`` began ``timeline + 1``."""

    _fields = (('timeline', None), ('lsn', None), ('reason', None), ('timestamp', None), ('new_leader', None))
    __slots__ = _slots(_fields)


class Status(_Record):
    """The ``status`` key (or the legacy ``optime/leader``): the leader's last known position."""

    _fields = (('present', False), ('invalid', False), ('reason', None), ('legacy', False),
               ('optime', None), ('slots', None), ('retain_slots', list))
    __slots__ = _slots(_fields)


class ClusterState(_Record):
    """Everything under ``/<namespace>/<scope>/``.

    ``leader`` is the leader key's value (a member name) and ``leader_lease``
    its lease (None when unknown). ``members`` is sorted by name. ``other``
    holds keys this parser does not know (relative key -> text). ``warnings``
    lists every inconsistency found, members' included.
    """

    _fields = (
        ('namespace', None), ('scope', None), ('prefix', None),
        ('leader', None), ('leader_lease', None), ('initialize', None),
        ('members', list), ('config', None), ('sync', None), ('failover', None),
        ('history', list), ('status', None), ('failsafe', None), ('other', dict),
        ('leader_lsn', None), ('lag_reference', None), ('warnings', list),
    )
    __slots__ = _slots(_fields)

    def member(self, name):
        """The member called ``name`` (valid or not), or None."""
        for member in self.members:
            if member.name == name:
                return member
        return None

    def leader_member(self):
        """The valid member named by the leader key, whatever its state and role; else None."""
        member = self.member(self.leader) if self.leader else None
        return member if member is not None and not member.invalid else None

    def primary(self):
        """The member to send writes to: it holds the leader key, is running and its role is primary.

        None while there is no leader, the leader is not running yet or any
        more, or the leader is a standby leader (standby cluster, read-only).
        """
        member = self.leader_member()
        if member is not None and member.running and member.role == ROLE_PRIMARY:
            return member
        return None

    def replicas(self, max_lag_bytes=None, include_noloadbalance=False):
        """Running replicas (not holding the leader key), sorted by name.

        Members tagged ``noloadbalance`` are left out unless asked for. With
        ``max_lag_bytes``, only members whose ``lag`` is known and at most that.
        """
        chosen = []
        for member in self.members:
            if not member.running or member.is_leader or member.role != ROLE_REPLICA:
                continue
            if member.noloadbalance and not include_noloadbalance:
                continue
            if max_lag_bytes is not None and (member.lag is None or member.lag > max_lag_bytes):
                continue
            chosen.append(member)
        return chosen

    def to_dict(self):
        data = super(ClusterState, self).to_dict()
        primary = self.primary()
        data['primary'] = primary.name if primary is not None else None
        data['replicas'] = [m.name for m in self.replicas()]
        return data


# ------------------------------------------------------------------ small parsers

def cluster_prefix(namespace, scope):
    """``/<namespace>/<scope>/`` as Patroni builds it (namespace defaults to /service, slashes collapsed)."""
    if not isinstance(scope, str) or not scope.strip('/') or '/' in scope.strip('/'):
        raise ValueError('invalid Patroni scope %r: it must be a non-empty name without "/"' % (scope,))
    if namespace is not None and not isinstance(namespace, str):
        raise ValueError('invalid Patroni namespace %r: it must be a string' % (namespace,))
    path = '/'.join(['', namespace or DEFAULT_NAMESPACE, scope.strip('/')])
    return re.sub('/+', '/', path) + '/'


def namespace_prefix(namespace):
    """``/<namespace>/``: where every cluster of the namespace keeps its keys, as :func:`cluster_prefix` builds it."""
    if namespace is not None and not isinstance(namespace, str):
        raise ValueError('invalid Patroni namespace %r: it must be a string' % (namespace,))
    return re.sub('/+', '/', '/%s/' % (namespace or DEFAULT_NAMESPACE))


def parse_lsn(value):
    """An LSN as an int: Patroni writes ints; digit strings and ``'3/A1B2C3D4'`` are accepted too. None if neither."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 <= value <= _MAX_LSN else None
    if isinstance(value, str):
        text = value.strip()
        if _DIGITS.match(text):
            return parse_lsn(int(text))
        match = _LSN_TEXT.match(text)
        if match:
            return (int(match.group(1), 16) << 32) | int(match.group(2), 16)
    return None


def format_lsn(lsn):
    """PostgreSQL's text form of an LSN (``'4/11A2B3C'``)."""
    return '%X/%X' % (lsn >> 32, lsn & 0xFFFFFFFF)


def normalize_role(role):
    """``master`` -> ``primary``; other roles as written; None for a missing or non-string role."""
    if not isinstance(role, str) or not role:
        return None
    return _ROLE_ALIASES.get(role, role)


def parse_url_address(url, default_port=None):
    """(host, port, path) of a URL; IPv6 hosts come without brackets. Raises ValueError on a bad URL."""
    parts = urlsplit(url.strip())
    if not parts.scheme or not parts.netloc:
        raise ValueError('not a URL with a host')
    host = parts.hostname
    if not host:
        raise ValueError('no host in it')
    port = parts.port  # ValueError when out of range or not a number
    return host, port if port is not None else default_port, parts.path


def _config_bool(value):
    """Patroni's parse_bool for the config key: on/true/yes/1 in strings."""
    if isinstance(value, str):
        return value.strip().lower() in _TRUE_WORDS
    return bool(value)


def _as_int(value):
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _SIGNED_DIGITS.match(value.strip()):
        return int(value.strip())
    return None


def _short(value):
    text = repr(value)
    return text if len(text) <= _REPR_LIMIT else text[:_REPR_LIMIT - 3] + '...'


def _decode(value):
    """(text, error) of a key's value: str as is, bytes as strict UTF-8."""
    if isinstance(value, str):
        return value, None
    if isinstance(value, (bytes, bytearray)):
        try:
            return bytes(value).decode('utf-8'), None
        except UnicodeDecodeError as exc:
            return None, 'value is not valid UTF-8 (%s)' % exc.reason
    if value is None:
        return '', None
    return None, 'value is a %s, not text' % type(value).__name__


def _loads(text, what):
    """(data, reason): JSON text decoded, or None and why not."""
    try:
        return json.loads(text), None
    except ValueError as exc:
        return None, '%s is not JSON: %s' % (what, exc)
    except RecursionError:
        return None, '%s is not JSON this parser accepts: nested too deeply' % what


def _json_object(value, what):
    """(dict, reason): the value's JSON object, or None and why not."""
    text, error = _decode(value)
    if error:
        return None, error
    if not text.strip():
        return None, '%s is empty' % what
    data, error = _loads(text, what)
    if error:
        return None, error
    if not isinstance(data, dict):
        return None, '%s is a JSON %s, not an object' % (what, _json_kind(data))
    return data, None


def _json_kind(data):
    if data is None:
        return 'null'
    if isinstance(data, bool):
        return 'boolean'
    if isinstance(data, (int, float)):
        return 'number'
    if isinstance(data, str):
        return 'string'
    if isinstance(data, list):
        return 'array'
    return 'object'


class _Fields(object):
    """Typed reads from one JSON object; wrong types become None plus a warning."""

    def __init__(self, data, warnings):
        self.data = data
        self.warnings = warnings

    def _bad(self, name, expected):
        self.warnings.append('%s is not %s: %s' % (name, expected, _short(self.data[name])))

    def text(self, name):
        value = self.data.get(name)
        if value is None or isinstance(value, str):
            return value
        self._bad(name, 'a string')
        return None

    def integer(self, name, minimum=None):
        value = self.data.get(name)
        if value is None:
            return None
        number = _as_int(value)
        if number is None or (minimum is not None and number < minimum):
            self._bad(name, 'an integer' if minimum is None else 'an integer >= %d' % minimum)
            return None
        return number

    def lsn(self, name):
        value = self.data.get(name)
        if value is None:
            return None
        number = parse_lsn(value)
        if number is None:
            self._bad(name, 'an LSN')
        return number

    def mapping(self, name):
        value = self.data.get(name)
        if value is None or isinstance(value, dict):
            return value
        self._bad(name, 'an object')
        return None


# ------------------------------------------------------------------ members

def parse_member(name, value, key=None, lease=None, mod_revision=None):
    """A Member from one ``members/<name>`` value (text or bytes). Never raises on bad data."""
    member = Member(name=name, key=key, lease=lease, mod_revision=mod_revision)
    text, error = _decode(value)
    data = None
    if error is None and text.strip().startswith('postgres'):
        try:
            data = _legacy_member_data(text.strip())
        except ValueError as exc:
            error = 'value is neither JSON nor a postgres:// URL: %s' % exc
    elif error is None:
        data, error = _json_object(text, 'value')
    if error:
        member.invalid = True
        member.reason = error
        return member
    member.data = data
    fields = _Fields(data, member.warnings)

    member.raw_role = fields.text('role')
    member.role = normalize_role(member.raw_role)
    member.state = fields.text('state')
    member.version = fields.text('version')
    member.replication_state = fields.text('replication_state')
    member.proxy_url = fields.text('proxy_url')
    member.timeline = fields.integer('timeline', minimum=1)
    member.xlog_location = fields.lsn('xlog_location')
    member.receive_lsn = fields.lsn('receive_lsn')
    member.replay_lsn = fields.lsn('replay_lsn')
    member.pending_restart = bool(data.get('pending_restart'))
    member.pending_restart_reason = fields.mapping('pending_restart_reason')
    member.scheduled_restart = fields.mapping('scheduled_restart')
    member.pause = bool(data.get('pause'))
    _member_addresses(member, fields)
    _member_tags(member, fields)
    return member


def _legacy_member_data(text):
    """Governor's format, still read by Patroni: ``postgres://...?application_name=<api_url>``."""
    parts = urlsplit(text)
    api_urls = [v for n, v in parse_qsl(parts.query) if n == 'application_name']
    return {'conn_url': urlunsplit((parts.scheme, parts.netloc, parts.path, '', parts.fragment)),
            'api_url': api_urls[0] if api_urls else None}


def _member_addresses(member, fields):
    member.conn_url = fields.text('conn_url')
    if member.conn_url:
        try:
            member.host, member.port, path = parse_url_address(member.conn_url, DEFAULT_POSTGRES_PORT)
            member.database = path.lstrip('/') or None
        except ValueError as exc:
            member.warnings.append('conn_url %s has no usable host and port: %s' % (_short(member.conn_url), exc))
    elif 'conn_url' not in fields.data:
        member.warnings.append('conn_url is missing')
    member.api_url = fields.text('api_url')
    if member.api_url:
        try:
            member.api_host, member.api_port, _path = parse_url_address(member.api_url)
        except ValueError as exc:
            member.warnings.append('api_url %s has no usable host and port: %s' % (_short(member.api_url), exc))
        else:
            if member.api_port is None:
                member.api_port = 443 if member.api_url.lower().startswith('https') else 80


def _member_tags(member, fields):
    tags = fields.mapping('tags') or {}
    member.tags = tags
    for name in _BOOLEAN_TAGS:
        if isinstance(tags.get(name), str) and tags[name]:
            member.warnings.append('tag %s is the string %s, which Patroni takes as true' % (name, _short(tags[name])))
    member.noloadbalance = bool(tags.get('noloadbalance'))
    member.nosync = bool(tags.get('nosync'))
    member.nostream = bool(tags.get('nostream'))
    member.clonefrom = bool(tags.get('clonefrom')) and bool(member.conn_url)
    replicatefrom = tags.get('replicatefrom')
    member.replicatefrom = replicatefrom if isinstance(replicatefrom, str) and replicatefrom else None
    priority = _as_int(tags.get('failover_priority', 1))
    if priority is None:
        member.warnings.append('tag failover_priority is not an integer: %s' % _short(tags.get('failover_priority')))
        priority = 1
    nofailover = tags.get('nofailover')
    if nofailover is not None:
        # As in Patroni: an explicit nofailover wins over failover_priority.
        member.nofailover = bool(nofailover)
        member.failover_priority = 0 if member.nofailover else priority
    else:
        member.nofailover = priority <= 0
        member.failover_priority = priority


# ------------------------------------------------------------------ other keys

def parse_config(value):
    config = ClusterConfig(present=True)
    data, error = _json_object(value, 'config')
    if error:
        config.invalid = True
        config.reason = error
        return config, []
    warnings = []
    fields = _Fields(data, warnings)
    config.data = data
    for name in ('ttl', 'loop_wait', 'retry_timeout', 'maximum_lag_on_failover', 'synchronous_node_count'):
        setattr(config, name, fields.integer(name, minimum=0))
    mode = data.get('synchronous_mode')
    if isinstance(mode, str) and mode.strip().lower() == 'quorum':
        config.synchronous_mode = 'quorum'
    else:
        config.synchronous_mode = _config_bool(mode)
    config.synchronous_mode_strict = _config_bool(data.get('synchronous_mode_strict'))
    config.failsafe_mode = _config_bool(data.get('failsafe_mode'))
    config.paused = _config_bool(data.get('pause'))
    config.check_timeline = _config_bool(data.get('check_timeline'))
    config.standby_cluster = fields.mapping('standby_cluster') or None
    postgresql = fields.mapping('postgresql') or {}
    if 'use_pg_rewind' in postgresql:
        config.use_pg_rewind = _config_bool(postgresql.get('use_pg_rewind'))
    parameters = _Fields(postgresql, warnings).mapping('parameters')
    config.postgresql_parameters = parameters or {}
    return config, ['config: ' + w for w in warnings]


def parse_sync(value):
    sync = SyncState(present=True)
    data, error = _json_object(value, 'sync')
    if error:
        sync.invalid = True
        sync.reason = error
        return sync, []
    warnings = []
    fields = _Fields(data, warnings)
    sync.leader = fields.text('leader') or None
    standbys = fields.text('sync_standby')
    sync.sync_standby = [s.strip() for s in standbys.split(',') if s.strip()] if standbys else []
    quorum = fields.integer('quorum', minimum=0)
    # As in Patroni: a quorum means nothing without a sync leader.
    sync.quorum = quorum if quorum and sync.leader else 0
    return sync, ['sync: ' + w for w in warnings]


def parse_failover(value):
    failover = FailoverRequest(present=True)
    text, error = _decode(value)
    if error is None and not text.strip():
        return failover, []
    if error is None and text.strip()[0] not in '{["' and _loads(text, 'failover')[1]:
        # Patroni's legacy plain-text form "leader:candidate".
        parts = [p.strip() for p in text.split(':')]
        failover.leader = parts[0] or None
        failover.candidate = (parts[1] or None) if len(parts) > 1 else None
        return failover, []
    data, error = _json_object(value, 'failover')
    if error:
        failover.invalid = True
        failover.reason = error
        return failover, []
    warnings = []
    fields = _Fields(data, warnings)
    failover.leader = fields.text('leader') or None
    failover.candidate = fields.text('member') or None
    failover.scheduled_at = fields.text('scheduled_at') or None
    return failover, ['failover: ' + w for w in warnings]


def parse_history(value):
    """(entries, warnings): invalid entries are skipped and named."""
    text, error = _decode(value)
    data = None
    if error is None:
        data, error = _loads(text, 'history')
    if error is None and not isinstance(data, list):
        error = 'history is a JSON %s, not an array' % _json_kind(data)
    if error:
        return [], [error]
    entries = []
    warnings = []
    for index, item in enumerate(data):
        entry = _history_entry(item)
        if entry is None:
            warnings.append('history entry %d is not [timeline, lsn, ...]: %s' % (index, _short(item)))
        else:
            entries.append(entry)
    return entries, warnings


def _history_entry(item):
    if not isinstance(item, list) or len(item) < 2:
        return None
    timeline = _as_int(item[0])
    lsn = parse_lsn(item[1])
    if timeline is None or lsn is None:
        return None
    extra = [v if isinstance(v, str) else None for v in item[2:5]]
    extra += [None] * (3 - len(extra))
    return HistoryEntry(timeline=timeline, lsn=lsn, reason=extra[0], timestamp=extra[1], new_leader=extra[2])


def parse_status(value, legacy=False):
    status = Status(present=True, legacy=legacy)
    text, error = _decode(value)
    data = None
    if error is None:
        data, error = _loads(text, 'optime/leader' if legacy else 'status')
    if error is None and not isinstance(data, bool) and isinstance(data, int):
        # Before Patroni 2.1 the leader's position was a bare number.
        status.legacy = True
        status.optime = data if data >= 0 else None
        return status, []
    if error is None and not isinstance(data, dict):
        error = 'status is a JSON %s, not an object' % _json_kind(data)
    if error:
        status.invalid = True
        status.reason = error
        return status, []
    warnings = []
    fields = _Fields(data, warnings)
    status.optime = fields.lsn('optime')
    slots = fields.mapping('slots')
    if slots is not None:
        status.slots = dict((k, parse_lsn(v)) for k, v in slots.items())
    retain = data.get('retain_slots')
    if isinstance(retain, list):
        status.retain_slots = [s for s in retain if isinstance(s, str)]
    elif retain is not None:
        warnings.append('retain_slots is not an array: %s' % _short(retain))
    return status, ['status: ' + w for w in warnings]


# ------------------------------------------------------------------ the cluster

def _entries(keys):
    """(key text, value, lease, mod_revision) from a mapping, KeyValue-like objects or (key, value) pairs."""
    if hasattr(keys, 'items'):
        for key, value in keys.items():
            yield _key_text(key), value, None, None
        return
    for item in keys:
        if isinstance(item, (tuple, list)) and len(item) == 2:
            yield _key_text(item[0]), item[1], None, None
        else:
            yield _key_text(item.key), item.value, getattr(item, 'lease', None), getattr(item, 'mod_revision', None)


def _key_text(key):
    if isinstance(key, (bytes, bytearray)):
        return bytes(key).decode('utf-8', 'replace')
    return str(key)


def parse_cluster_state(keys, namespace, scope):
    """The ClusterState of ``scope`` from the keys read under its prefix.

    ``keys`` is a mapping of full etcd key -> value (str or bytes), or an
    iterable of KeyValue objects (etcd_types.KeyValue: their lease and
    mod_revision are kept) or of (key, value) pairs. Keys outside
    ``/<namespace>/<scope>/`` are ignored.
    """
    prefix = cluster_prefix(namespace, scope)
    found = {}
    for key, value, lease, mod_revision in _entries(keys):
        if key.startswith(prefix):
            found[key[len(prefix):]] = (value, lease, mod_revision)
    state = ClusterState(namespace=namespace or DEFAULT_NAMESPACE, scope=scope.strip('/'), prefix=prefix,
                         config=ClusterConfig(), sync=SyncState(), failover=FailoverRequest(), status=Status())
    for rel in sorted(found):
        value, lease, mod_revision = found[rel]
        name = rel[len(_MEMBERS_DIR):] if rel.startswith(_MEMBERS_DIR) else None
        if name and '/' not in name:
            state.members.append(parse_member(name, value, key=prefix + rel, lease=lease, mod_revision=mod_revision))
        elif rel not in _CLUSTER_KEYS:
            text, error = _decode(value)
            state.other[rel] = text if error is None else repr(value)
    warnings = []
    _cluster_keys(state, found, warnings)
    _derive(state, warnings)
    state.warnings = warnings
    return state


def _cluster_keys(state, found, warnings):
    """Every key but the members'."""
    if 'leader' in found:
        value, state.leader_lease, _revision = found['leader']
        text, error = _decode(value)
        state.leader = text.strip() if error is None and text.strip() else None
        if state.leader is None:
            warnings.append('leader key is unusable: %s' % (error or 'it is empty'))
    for name, parser in (('config', parse_config), ('sync', parse_sync), ('failover', parse_failover)):
        if name in found:
            parsed, found_warnings = parser(found[name][0])
            setattr(state, name, parsed)
            warnings.extend(found_warnings)
            if parsed.invalid:
                warnings.append(parsed.reason)
    if 'history' in found:
        state.history, found_warnings = parse_history(found['history'][0])
        warnings.extend(found_warnings)
    if 'initialize' in found:
        state.initialize, error = _decode(found['initialize'][0])
        if error:
            warnings.append('initialize: ' + error)
    # As in Patroni: status wins, even when unusable; optime/leader is the pre-2.1 form.
    status_key = 'status' if 'status' in found else 'optime/leader' if 'optime/leader' in found else None
    if status_key:
        state.status, found_warnings = parse_status(found[status_key][0], legacy=status_key != 'status')
        warnings.extend(found_warnings)
        if state.status.invalid:
            warnings.append(state.status.reason)
    if 'failsafe' in found:
        state.failsafe, error = _json_object(found['failsafe'][0], 'failsafe')
        if error:
            warnings.append(error)


def _derive(state, warnings):
    """Cross-key facts: who holds the lock, inconsistencies, sync standbys, lags."""
    holder = state.member(state.leader) if state.leader else None
    leader = state.leader_member()
    if holder is not None:
        holder.is_leader = True
    if state.leader is None:
        warnings.append('no leader key: the cluster has no primary (leader race, failover or cluster down)')
    elif holder is None:
        warnings.append('leader key names %r but there is no members/%s key' % (state.leader, state.leader))
    elif leader is None:
        warnings.append('leader %r has an invalid member key' % state.leader)
    else:
        if not leader.running:
            leader.warnings.append('holds the leader key but its state is %s' % (leader.state or 'unknown'))
        elif leader.role not in (ROLE_PRIMARY, ROLE_STANDBY_LEADER):
            leader.warnings.append('holds the leader key but its role is %s' % (leader.raw_role or 'unknown'))

    sync = state.sync
    sync_on = state.config.synchronous_mode and not state.config.standby_cluster
    if sync.present and sync.leader and state.leader and sync.leader.lower() != state.leader.lower():
        warnings.append('sync key names leader %r but the leader key names %r' % (sync.leader, state.leader))
    standbys = set(s.lower() for s in sync.sync_standby) if sync.leader else set()

    for member in state.members:
        if member.invalid:
            continue
        member.sync_standby = bool(sync_on and member.name.lower() in standbys)
        if member.role == ROLE_PRIMARY and not member.is_leader:
            member.primary_without_leader_key = True
            member.warnings.append('says its role is %s but the leader key %s' % (
                member.raw_role, 'names %r' % state.leader if state.leader else 'does not exist'))

    _lags(state, leader)
    for member in state.members:
        if member.invalid:
            warnings.append('member %s is invalid: %s' % (member.name, member.reason))
        warnings.extend('member %s: %s' % (member.name, w) for w in member.warnings)


def _lags(state, leader):
    if leader is not None and leader.xlog_location is not None:
        state.leader_lsn, state.lag_reference = leader.xlog_location, 'leader'
    elif state.status.optime:
        state.leader_lsn, state.lag_reference = state.status.optime, 'status'
    reference = state.leader_lsn
    leader_timeline = leader.timeline if leader is not None else None
    for member in state.members:
        if member.invalid or member.is_leader or reference is None:
            continue
        if member.timeline is not None and leader_timeline is not None and member.timeline != leader_timeline:
            member.warnings.append('is on timeline %d, the leader on %d: lag unknown' % (
                member.timeline, leader_timeline))
            continue
        member.receive_lag = _lag(reference, member.receive_lsn)
        member.replay_lag = _lag(reference, member.replay_lsn)
        member.xlog_lag = _lag(reference, member.xlog_location)
        member.lag = member.replay_lag if member.replay_lag is not None else member.xlog_lag


def _lag(reference, position):
    return None if position is None else max(0, reference - position)


def parse_namespace(keys, namespace=DEFAULT_NAMESPACE):
    """{scope: ClusterState} for every scope found under ``/<namespace>/`` (one read for many clusters).

    ``keys`` takes the same forms as in :func:`parse_cluster_state`.
    """
    base = cluster_prefix(namespace, 'x')[:-len('x/')]
    items = list(keys.items()) if hasattr(keys, 'items') else list(keys)
    groups = {}
    for item in items:
        key = _key_text(item[0] if isinstance(item, (tuple, list)) else item.key)
        scope, sep, _rest = key[len(base):].partition('/') if key.startswith(base) else ('', '', '')
        if scope and sep:
            groups.setdefault(scope, []).append(item)
    return dict((scope, parse_cluster_state(group, namespace, scope)) for scope, group in groups.items())


def running_member_api_url(state, *preferred):
    """The api_url of a running member that advertises one: the first such member of ``preferred``, else
    the first by name; None when no running member advertises one."""
    members = [state.member(name) for name in preferred if name] + list(state.members)
    for member in members:
        if member is not None and not member.invalid and member.running and member.api_url:
            return member.api_url
    return None


def read_cluster_state(client, namespace, scope):
    """Read ``/<namespace>/<scope>/`` with one prefix range read (an EtcdClient) and parse it.

    etcd errors (EtcdError subclasses) propagate to the caller, which decides
    how to report them.
    """
    return parse_cluster_state(client.get_prefix(cluster_prefix(namespace, scope)), namespace, scope)
