# -*- coding: utf-8 -*-
# Copyright: pgha.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure helpers of the etcd client: endpoint parsing, key encoding, reply decoding.

No I/O and stdlib only, so all of it is unit-tested without a server.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import collections
import re

from .etcd_errors import EtcdConfigError, EtcdInvalidArgument

DEFAULT_CLIENT_PORT = 2379


class Endpoint(collections.namedtuple('Endpoint', ['scheme', 'host', 'port'])):
    __slots__ = ()

    @property
    def url(self):
        return '%s://%s:%d' % (self.scheme, _bracket(self.host), self.port)

    def __str__(self):
        return self.url


_HOST_RE = re.compile(r'^[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?$')


def _bracket(host):
    return '[%s]' % host if ':' in host else host


def _is_ipv6(text):
    return ':' in text and re.match(r'^[0-9A-Fa-f:.]+(%[A-Za-z0-9_.-]+)?$', text) is not None


def parse_endpoint(text, default_scheme='http'):
    """Parse ``[scheme://]host[:port]`` into an Endpoint, or raise EtcdConfigError.

    IPv6 addresses are written in brackets (``https://[::1]:2379``). Paths,
    queries and user info are refused: the client adds its own paths and a
    leftover ``/v3`` would silently double them.
    """
    if not isinstance(text, str) or not text.strip():
        raise EtcdConfigError('invalid etcd endpoint %r: it is empty' % (text,))
    raw = text.strip()
    scheme = default_scheme
    rest = raw
    if '://' in raw:
        scheme, rest = raw.split('://', 1)
        scheme = scheme.lower()
    if scheme not in ('http', 'https'):
        raise EtcdConfigError('invalid etcd endpoint %r: scheme must be http or https, not %r' % (raw, scheme))
    if '@' in rest:
        raise EtcdConfigError('invalid etcd endpoint %r: credentials belong in username/password, not in the URL' % raw)
    if rest.endswith('/'):
        rest = rest[:-1]
    if '/' in rest or '?' in rest or '#' in rest:
        raise EtcdConfigError('invalid etcd endpoint %r: it must not contain a path (the client adds /v3 itself)' % raw)
    port_text = None
    if rest.startswith('['):
        end = rest.find(']')
        if end < 0:
            raise EtcdConfigError('invalid etcd endpoint %r: unclosed "[" in IPv6 address' % raw)
        host = rest[1:end]
        tail = rest[end + 1:]
        if tail:
            if not tail.startswith(':'):
                raise EtcdConfigError('invalid etcd endpoint %r: unexpected text after "]"' % raw)
            port_text = tail[1:]
        if not _is_ipv6(host):
            raise EtcdConfigError('invalid etcd endpoint %r: %r is not an IPv6 address' % (raw, host))
    elif rest.count(':') > 1:
        raise EtcdConfigError('invalid etcd endpoint %r: write IPv6 addresses in brackets, e.g. https://[::1]:2379' % raw)
    else:
        host, sep, port_text = rest.partition(':')
        if not sep:
            port_text = None
        if not host or not _HOST_RE.match(host):
            raise EtcdConfigError('invalid etcd endpoint %r: %r is not a valid host name or address' % (raw, host))
    port = DEFAULT_CLIENT_PORT
    if port_text is not None:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise EtcdConfigError('invalid etcd endpoint %r: port must be a number from 1 to 65535' % raw)
        port = int(port_text)
    return Endpoint(scheme, host, port)


def parse_endpoints(value, default_scheme='http'):
    """Parse a list of endpoints, or one string with comma-separated endpoints."""
    if value is None:
        raise EtcdConfigError('no etcd endpoints given')
    items = value.split(',') if isinstance(value, str) else list(value)
    items = [i.strip() if isinstance(i, str) else i for i in items]
    items = [i for i in items if i != '']
    if not items:
        raise EtcdConfigError('no etcd endpoints given')
    endpoints = []
    for item in items:
        ep = parse_endpoint(item, default_scheme)
        if ep not in endpoints:
            endpoints.append(ep)
    schemes = set(ep.scheme for ep in endpoints)
    if len(schemes) > 1:
        raise EtcdConfigError('etcd endpoints mix http and https: %s' % ', '.join(ep.url for ep in endpoints))
    return endpoints


def to_bytes(value, what='key'):
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode('utf-8')
    raise EtcdInvalidArgument('etcd %s must be a string or bytes, not %s' % (what, type(value).__name__))


def b64(value, what='key'):
    """Encode a key or value for the JSON gateway (which carries bytes as base64)."""
    return base64.b64encode(to_bytes(value, what)).decode('ascii')


def unb64(text):
    if not text:
        return b''
    return base64.b64decode(text)


def prefix_range_end(prefix):
    """The range_end that selects every key starting with ``prefix``.

    etcd ranges are [key, range_end): the end is the prefix with its last byte
    that is not 0xff incremented and everything after it dropped. An empty
    prefix, or one made only of 0xff bytes, has no such end: b'\\0' then means
    "every key from here on", which is what etcd defines for it.
    """
    data = bytearray(to_bytes(prefix))
    while data:
        if data[-1] < 0xff:
            data[-1] += 1
            return bytes(data)
        data.pop()
    return b'\0'


def key_range(key, prefix=False, range_end=None):
    """(key, range_end) as bytes for a request on a key, a prefix, or an explicit range."""
    if prefix and range_end is not None:
        raise EtcdInvalidArgument('give either prefix=True or range_end, not both')
    kb = to_bytes(key)
    if prefix:
        if kb == b'':
            return b'\0', b'\0'
        return kb, prefix_range_end(kb)
    if kb == b'':
        raise EtcdInvalidArgument('etcd key must not be empty')
    return kb, (to_bytes(range_end) if range_end is not None else None)


def as_int(value, default=0):
    """etcd's JSON carries int64 as strings and omits zero values."""
    if value is None or value == '':
        return default
    return int(value)


class KeyValue(object):
    """One key as etcd stores it. ``key``/``value`` are bytes; ``*_text`` decode UTF-8."""

    __slots__ = ('key', 'value', 'create_revision', 'mod_revision', 'version', 'lease')

    def __init__(self, key, value=b'', create_revision=0, mod_revision=0, version=0, lease=0):
        self.key, self.value, self.lease = key, value, lease
        self.create_revision, self.mod_revision, self.version = create_revision, mod_revision, version

    @classmethod
    def from_json(cls, data):
        return cls(
            key=unb64(data.get('key')),
            value=unb64(data.get('value')),
            create_revision=as_int(data.get('create_revision')),
            mod_revision=as_int(data.get('mod_revision')),
            version=as_int(data.get('version')),
            lease=as_int(data.get('lease')),
        )

    @property
    def key_text(self):
        return self.key.decode('utf-8', 'replace')

    @property
    def value_text(self):
        return self.value.decode('utf-8', 'replace')

    def to_dict(self):
        return {
            'key': self.key_text,
            'value': self.value_text,
            'create_revision': self.create_revision,
            'mod_revision': self.mod_revision,
            'version': self.version,
            'lease': self.lease,
        }

    def __eq__(self, other):
        return isinstance(other, KeyValue) and all(getattr(self, s) == getattr(other, s) for s in self.__slots__)

    def __ne__(self, other):
        return not self == other

    def __repr__(self):
        return 'KeyValue(key=%r, value=%r, mod_revision=%d)' % (self.key, self.value, self.mod_revision)


RangeResult = collections.namedtuple('RangeResult', ['kvs', 'count', 'more', 'revision'])
PutResult = collections.namedtuple('PutResult', ['revision', 'prev_kv'])
DeleteResult = collections.namedtuple('DeleteResult', ['deleted', 'prev_kvs', 'revision'])
TxnResult = collections.namedtuple('TxnResult', ['succeeded', 'responses', 'revision'])
Lease = collections.namedtuple('Lease', ['id', 'ttl'])
LeaseInfo = collections.namedtuple('LeaseInfo', ['id', 'ttl', 'granted_ttl', 'keys'])
Member = collections.namedtuple('Member', ['id', 'name', 'peer_urls', 'client_urls', 'is_learner'])
EndpointStatus = collections.namedtuple(
    'EndpointStatus',
    ['endpoint', 'member_id', 'version', 'db_size', 'db_size_in_use', 'leader', 'raft_index', 'raft_term',
     'raft_applied_index', 'is_learner', 'errors'])
Permission = collections.namedtuple('Permission', ['perm_type', 'key', 'range_end'])
Alarm = collections.namedtuple('Alarm', ['member_id', 'alarm'])

PERM_TYPES = ('READ', 'WRITE', 'READWRITE')


def header_revision(reply):
    return as_int((reply.get('header') or {}).get('revision'))


def member_from_json(data):
    return Member(
        id=as_int(data.get('ID')),
        name=data.get('name', ''),
        peer_urls=list(data.get('peerURLs') or []),
        client_urls=list(data.get('clientURLs') or []),
        is_learner=bool(data.get('isLearner', False)),
    )


def endpoint_status_from_json(reply, endpoint=None):
    """An EndpointStatus from a /v3/maintenance/status reply of the member at ``endpoint``."""
    fields = dict((name, as_int(reply.get(key))) for name, key in (
        ('db_size', 'dbSize'), ('db_size_in_use', 'dbSizeInUse'), ('leader', 'leader'), ('raft_index', 'raftIndex'),
        ('raft_term', 'raftTerm'), ('raft_applied_index', 'raftAppliedIndex')))
    return EndpointStatus(endpoint=endpoint, member_id=as_int((reply.get('header') or {}).get('member_id')),
                          version=reply.get('version'), is_learner=bool(reply.get('isLearner', False)),
                          errors=list(reply.get('errors') or []), **fields)


def permission_from_json(data):
    """A role permission; a prefix grant is shown as key + range_end exactly as stored."""
    return Permission(
        perm_type=data.get('permType', 'READ'),
        key=unb64(data.get('key')),
        range_end=unb64(data.get('range_end')) or None,
    )


def permission_is_prefix(perm):
    return perm.range_end is not None and perm.range_end == prefix_range_end(perm.key)


def check_perm_type(perm_type):
    value = str(perm_type).upper()
    if value not in PERM_TYPES:
        raise EtcdInvalidArgument('invalid permission type %r: use one of %s' % (perm_type, ', '.join(PERM_TYPES)))
    return value
