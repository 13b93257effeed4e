# -*- coding: utf-8 -*-
# Copyright: pgha.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""etcd v3 client over etcd's JSON gateway (``/v3/...``), Python stdlib only.

It covers what the collection needs: KV (get, prefix reads with pagination,
put, delete, transactions), leases, watches (see etcd_watch), cluster
membership, endpoint status/health, and authentication management.

Usage::

    client = EtcdClient(['https://10.0.0.1:2379', 'https://10.0.0.2:2379'],
                        ca_cert='ca.crt', client_cert='me.crt', client_key='me.key',
                        username='patroni-main', password='secret')
    client.put('/service/main/x', 'value')
    kv = client.get('/service/main/x')

Every failure is an EtcdError subclass (see etcd_errors) whose message names
the endpoint and the cause. Note that a request whose connection breaks after
it was sent may have been applied; the client then retries it on the next
endpoint, so writes that must not repeat belong in a transaction that compares
first.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import random

from .etcd_errors import (
    EtcdAuthError,
    EtcdAuthNotEnabled,
    EtcdConfigError,
    EtcdError,
    EtcdInvalidArgument,
    EtcdLeaseExists,
    EtcdNotFound,
    EtcdNotImplemented,
    EtcdPermissionDenied,
    EtcdRoleExists,
    EtcdRoleNotFound,
    EtcdTokenRejected,
    EtcdUserExists,
    EtcdUserNotFound,
)
from .etcd_transport import Transport, refuse_plain_credentials
from .etcd_types import (
    Alarm,
    DeleteResult,
    KeyValue,
    Lease,
    LeaseInfo,
    PutResult,
    RangeResult,
    TxnResult,
    as_int,
    b64,
    check_perm_type,
    endpoint_status_from_json,
    header_revision,
    key_range,
    member_from_json,
    parse_endpoint,
    permission_from_json,
    to_bytes,
    unb64,
)

_COMPARE_OPS = {'==': 'EQUAL', '!=': 'NOT_EQUAL', '<': 'LESS', '>': 'GREATER'}
# Lease IDs are positive int64.
_MAX_LEASE_ID = (1 << 63) - 1
_LEASE_ID_ATTEMPTS = 3
_SORT_ORDERS = ('NONE', 'ASCEND', 'DESCEND')
_SORT_TARGETS = ('KEY', 'VERSION', 'CREATE', 'MOD', 'VALUE')


def _numeric_compare(target, field):
    """A Compare constructor for a target whose value is a number (version, revisions, lease ID)."""
    def build(cls, key, op, number):
        return cls._make(target, field, key, op, str(int(number)))
    build.__name__ = field
    return classmethod(build)


class Compare(object):
    """Conditions of a transaction, e.g. ``Compare.version('/k', '==', 0)`` (key absent)."""

    @staticmethod
    def _make(target, field, key, op, value):
        if op not in _COMPARE_OPS:
            raise EtcdInvalidArgument('invalid compare operator %r: use one of %s' % (op, ', '.join(_COMPARE_OPS)))
        return {'key': b64(key), 'target': target, 'result': _COMPARE_OPS[op], field: value}

    @classmethod
    def value(cls, key, op, value):
        return cls._make('VALUE', 'value', key, op, b64(value, 'value'))

    version = _numeric_compare('VERSION', 'version')
    create_revision = _numeric_compare('CREATE', 'create_revision')
    mod_revision = _numeric_compare('MOD', 'mod_revision')
    lease = _numeric_compare('LEASE', 'lease')


class Op(object):
    """Requests inside a transaction."""

    @staticmethod
    def put(key, value, lease=0, prev_kv=False):
        return {'request_put': _put_body(key, value, lease, prev_kv)}

    @staticmethod
    def get(key, prefix=False, range_end=None, keys_only=False):
        return {'request_range': _range_body(key, prefix, range_end, keys_only=keys_only)}

    @staticmethod
    def delete(key, prefix=False, range_end=None, prev_kv=False):
        return {'request_delete_range': _range_body(key, prefix, range_end, prev_kv=prev_kv)}


def _range_body(key, prefix=False, range_end=None, **flags):
    """The key range of a request, plus the boolean ``flags`` that are set (etcd omits false ones)."""
    kb, end = key_range(key, prefix, range_end)
    body = {'key': b64(kb)}
    if end is not None:
        body['range_end'] = b64(end)
    body.update((name, True) for name, value in flags.items() if value)
    return body


def _put_body(key, value, lease=0, prev_kv=False):
    kb = key_range(key)[0]
    body = {'key': b64(kb), 'value': b64(value, 'value')}
    if lease:
        body['lease'] = str(int(lease))
    if prev_kv:
        body['prev_kv'] = True
    return body


def _range_result(reply):
    return RangeResult(
        kvs=[KeyValue.from_json(kv) for kv in reply.get('kvs') or []],
        count=as_int(reply.get('count')),
        more=bool(reply.get('more', False)),
        revision=header_revision(reply),
    )


def _put_result(reply):
    prev = reply.get('prev_kv')
    return PutResult(revision=header_revision(reply), prev_kv=KeyValue.from_json(prev) if prev else None)


def _delete_result(reply):
    return DeleteResult(
        deleted=as_int(reply.get('deleted')),
        prev_kvs=[KeyValue.from_json(kv) for kv in reply.get('prev_kvs') or []],
        revision=header_revision(reply),
    )


def _txn_response(item):
    if 'response_range' in item:
        return _range_result(item['response_range'])
    if 'response_put' in item:
        return _put_result(item['response_put'])
    if 'response_delete_range' in item:
        return _delete_result(item['response_delete_range'])
    return item


class EtcdClient(object):
    """A client for one etcd cluster. Safe to share between threads (requests are serialised)."""

    def __init__(self, endpoints, ca_cert=None, client_cert=None, client_key=None, username=None, password=None,
                 timeout=5.0, validate_certs=True, keep_alive=True):
        if bool(username) != bool(password):
            raise EtcdConfigError('username and password go together: %s is set but %s is not'
                                  % (('username', 'password') if username else ('password', 'username')))
        self.transport = Transport(endpoints, ca_cert=ca_cert, client_cert=client_cert, client_key=client_key,
                                   timeout=timeout, validate_certs=validate_certs, keep_alive=keep_alive)
        if username:
            for endpoint in self.transport.endpoints:
                refuse_plain_credentials(endpoint)
        # What the settings weaken, for the caller to show (a module passes them to module.warn).
        self.warnings = list(self.transport.warnings)
        self.username = username
        self._password = password
        self._token = None
        # None: not yet known; False: the server said auth is off, so no token is needed.
        self._auth_enabled = None
        self.authentications = 0

    @property
    def endpoints(self):
        return [ep.url for ep in self.transport.endpoints]

    def close(self):
        self.transport.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    # ----------------------------------------------------------------- auth plumbing

    def authenticate(self, name=None, password=None):
        """Get a token for ``name``/``password`` (default: the client's own credentials)."""
        name = self.username if name is None else name
        password = self._password if password is None else password
        reply = self.transport.request('/v3/auth/authenticate', {'name': name, 'password': password}, secret=True)
        return reply.get('token')

    def _login(self):
        try:
            self._token = self.authenticate()
            self._auth_enabled = True
            self.authentications += 1
        except EtcdAuthNotEnabled:
            self._token = None
            self._auth_enabled = False

    def current_token(self):
        """The token to send (logging in first if needed); None when no credentials or auth is off."""
        if self.username and self._token is None and self._auth_enabled is None:
            self._login()
        return self._token

    def relogin(self):
        self._token = None
        self._auth_enabled = None
        return self.current_token()

    def call(self, path, payload=None, endpoint=None, method='POST', secret=False):
        """One request with token handling: log in lazily, and once more when the token is rejected.

        ``secret``: ``payload`` holds a password (never sent over plain HTTP to another host).
        """
        try:
            return self.transport.request(path, payload, token=self.current_token(), endpoint=endpoint, method=method,
                                          secret=secret)
        except (EtcdPermissionDenied, EtcdNotFound) as exc:
            if not self.username:
                if isinstance(exc, EtcdPermissionDenied):
                    # Without a token etcd checks an anonymous user, so "denied" often just means "log in".
                    exc.message += (' (no username was given: if etcd has authentication enabled, '
                                    'set username and password)')
                raise
            # We learnt earlier that auth was off and sent no token; if it has
            # been switched on since, etcd answers as for an anonymous user.
            if self._auth_enabled is not False or not isinstance(exc, (EtcdPermissionDenied, EtcdUserNotFound)):
                raise
        except EtcdTokenRejected:
            if not self.username:
                raise
        # The token expired (JWT ttl), was issued before a member change, or
        # auth was switched on after we looked: log in again, retry once.
        return self.transport.request(path, payload, token=self.relogin(), endpoint=endpoint, method=method,
                                      secret=secret)

    def _endpoint(self, endpoint):
        if endpoint is None:
            return None
        scheme = self.transport.endpoints[0].scheme
        return parse_endpoint(endpoint, default_scheme=scheme) if isinstance(endpoint, str) else endpoint

    # ----------------------------------------------------------------- KV

    def range(self, key, prefix=False, range_end=None, limit=0, revision=0, keys_only=False, count_only=False,
              serializable=False, sort_order=None, sort_target=None):
        body = _range_body(key, prefix, range_end, keys_only=keys_only, count_only=count_only,
                           serializable=serializable)
        if limit:
            body['limit'] = str(int(limit))
        if revision:
            body['revision'] = str(int(revision))
        if sort_order:
            if sort_order.upper() not in _SORT_ORDERS:
                raise EtcdInvalidArgument('invalid sort_order %r: use one of %s' % (sort_order, ', '.join(_SORT_ORDERS)))
            body['sort_order'] = sort_order.upper()
        if sort_target:
            if sort_target.upper() not in _SORT_TARGETS:
                raise EtcdInvalidArgument('invalid sort_target %r: use one of %s' % (sort_target, ', '.join(_SORT_TARGETS)))
            body['sort_target'] = sort_target.upper()
        return _range_result(self.call('/v3/kv/range', body))

    def get(self, key, revision=0, serializable=False, must_exist=False):
        """The KeyValue stored at ``key``; None when absent (EtcdKeyNotFound with ``must_exist``)."""
        result = self.range(key, revision=revision, serializable=serializable)
        if result.kvs:
            return result.kvs[0]
        if must_exist:
            raise EtcdNotFound('key %r not found in etcd' % to_bytes(key).decode('utf-8', 'replace'))
        return None

    def iter_prefix(self, prefix, keys_only=False, page_size=1000, revision=0):
        """Yield every key under ``prefix`` in key order, ``page_size`` keys per request.

        All pages are read at the revision of the first one, so the result is
        one consistent snapshot even while keys change.
        """
        if int(page_size) < 1:
            raise EtcdInvalidArgument('page_size must be at least 1')
        start, end = key_range(prefix, prefix=True)
        while True:
            page = self.range(start, range_end=end, limit=page_size, revision=revision, keys_only=keys_only)
            revision = revision or page.revision
            yield from page.kvs
            if not page.more or not page.kvs:
                return
            start = page.kvs[-1].key + b'\0'

    def get_prefix(self, prefix, keys_only=False, page_size=1000, revision=0):
        return list(self.iter_prefix(prefix, keys_only=keys_only, page_size=page_size, revision=revision))

    def put(self, key, value, lease=0, prev_kv=False):
        return _put_result(self.call('/v3/kv/put', _put_body(key, value, lease, prev_kv)))

    def delete(self, key, prefix=False, range_end=None, prev_kv=False):
        return _delete_result(self.call('/v3/kv/deleterange', _range_body(key, prefix, range_end, prev_kv=prev_kv)))

    def delete_prefix(self, prefix, prev_kv=False):
        return self.delete(prefix, prefix=True, prev_kv=prev_kv)

    def txn(self, compare=(), success=(), failure=()):
        """Atomic compare-then-act. Build parts with Compare.* and Op.*."""
        body = {'compare': list(compare), 'success': list(success), 'failure': list(failure)}
        reply = self.call('/v3/kv/txn', body)
        return TxnResult(
            succeeded=bool(reply.get('succeeded', False)),
            responses=[_txn_response(r) for r in reply.get('responses') or []],
            revision=header_revision(reply),
        )

    def put_if_absent(self, key, value, lease=0):
        """Create ``key`` only if it does not exist; True when this call created it."""
        return self.txn([Compare.create_revision(key, '==', 0)], [Op.put(key, value, lease)]).succeeded

    def compare_and_swap(self, key, expected, value, lease=0):
        """Replace ``key``'s value only if it is currently ``expected``; True when swapped."""
        return self.txn([Compare.value(key, '==', expected)], [Op.put(key, value, lease)]).succeeded

    def compact(self, revision, physical=False):
        body = {'revision': str(int(revision))}
        if physical:
            body['physical'] = True
        self.call('/v3/kv/compaction', body)

    # ----------------------------------------------------------------- leases

    def lease_grant(self, ttl, lease_id=0):
        """A new lease of ``ttl`` seconds, with ID ``lease_id`` or one the client picks.

        The client picks the ID rather than leaving it to etcd so that a grant
        resent after a lost reply (see Transport) cannot make a second lease:
        etcd answers the resend with "lease already exists", which then means
        that the first attempt made it.
        """
        chosen = not lease_id
        for attempt in range(_LEASE_ID_ATTEMPTS):
            wanted = random.SystemRandom().randint(1, _MAX_LEASE_ID) if chosen else int(lease_id)
            try:
                reply = self.call('/v3/lease/grant', {'TTL': str(int(ttl)), 'ID': str(wanted)})
            except EtcdLeaseExists as exc:
                if exc.resent:
                    return Lease(id=wanted, ttl=int(ttl))
                if chosen and attempt + 1 < _LEASE_ID_ATTEMPTS:
                    continue  # another client's lease has that ID
                raise
            return Lease(id=as_int(reply.get('ID')) or wanted, ttl=as_int(reply.get('TTL')))
        raise AssertionError('unreachable')  # pragma: no cover

    def lease_keepalive(self, lease_id):
        """Refresh a lease once; returns its new TTL. EtcdNotFound when it already expired."""
        reply = self.call('/v3/lease/keepalive', {'ID': str(int(lease_id))})
        ttl = as_int((reply.get('result') or reply).get('TTL'))
        if ttl <= 0:
            raise EtcdNotFound('lease %d not found (expired or revoked)' % int(lease_id))
        return ttl

    def lease_revoke(self, lease_id):
        try:
            self.call('/v3/lease/revoke', {'ID': str(int(lease_id))})
        except EtcdNotFound as exc:
            if not exc.resent:
                raise  # else: revoked by the first attempt, whose reply was lost

    def lease_ttl(self, lease_id, keys=False):
        reply = self.call('/v3/lease/timetolive', {'ID': str(int(lease_id)), 'keys': bool(keys)})
        ttl = as_int(reply.get('TTL'), -1)
        if ttl < 0:
            raise EtcdNotFound('lease %d not found (expired or revoked)' % int(lease_id))
        return LeaseInfo(id=as_int(reply.get('ID')), ttl=ttl, granted_ttl=as_int(reply.get('grantedTTL')),
                         keys=[unb64(k) for k in reply.get('keys') or []])

    def leases(self):
        reply = self.call('/v3/lease/leases', {})
        return [as_int(item.get('ID')) for item in reply.get('leases') or []]

    # ----------------------------------------------------------------- watch

    def watch(self, key, prefix=False, range_end=None, start_revision=0, prev_kv=False, progress_notify=False,
              **kwargs):
        """A resumable streaming watch; see etcd_watch.Watch."""
        from .etcd_watch import Watch
        return Watch(self, key, prefix=prefix, range_end=range_end, start_revision=start_revision,
                     prev_kv=prev_kv, progress_notify=progress_notify, **kwargs)

    # ----------------------------------------------------------------- cluster

    def members(self):
        reply = self.call('/v3/cluster/member/list', {})
        return [member_from_json(m) for m in reply.get('members') or []]

    def member_add(self, peer_urls, is_learner=False):
        """Add a member; returns (the new member, the member list after the change)."""
        if isinstance(peer_urls, str):
            peer_urls = [peer_urls]
        for url in peer_urls:
            parse_endpoint(url, default_scheme='https' if self.transport.ssl_context else 'http')
        body = {'peerURLs': list(peer_urls)}
        if is_learner:
            body['isLearner'] = True
        reply = self.call('/v3/cluster/member/add', body)
        return member_from_json(reply.get('member') or {}), [member_from_json(m) for m in reply.get('members') or []]

    def member_remove(self, member_id):
        reply = self.call('/v3/cluster/member/remove', {'ID': str(int(member_id))})
        return [member_from_json(m) for m in reply.get('members') or []]

    def member_update(self, member_id, peer_urls):
        if isinstance(peer_urls, str):
            peer_urls = [peer_urls]
        reply = self.call('/v3/cluster/member/update', {'ID': str(int(member_id)), 'peerURLs': list(peer_urls)})
        return [member_from_json(m) for m in reply.get('members') or []]

    def member_promote(self, member_id):
        reply = self.call('/v3/cluster/member/promote', {'ID': str(int(member_id))})
        return [member_from_json(m) for m in reply.get('members') or []]

    def status(self, endpoint=None):
        """Status of one member: of ``endpoint`` (no failover), or of whichever endpoint answers."""
        ep = self._endpoint(endpoint)
        return endpoint_status_from_json(self.call('/v3/maintenance/status', {}, endpoint=ep), ep.url if ep else None)

    def endpoint_statuses(self):
        """{endpoint url: EndpointStatus or the EtcdError it raised} for every configured endpoint."""
        result = {}
        for ep in self.transport.endpoints:
            try:
                result[ep.url] = self.status(ep)
            except EtcdError as exc:
                result[ep.url] = exc
        return result

    def health(self, endpoint=None):
        """(healthy, reason) of one member, as its /health endpoint reports it."""
        ep = self._endpoint(endpoint)
        try:
            reply = self.call('/health', None, endpoint=ep, method='GET')
        except EtcdError as exc:
            return False, str(exc)
        healthy = str(reply.get('health')).lower() == 'true'
        return healthy, reply.get('reason') or ('' if healthy else 'member reports unhealthy')

    def alarms(self):
        reply = self.call('/v3/maintenance/alarm', {'action': 'GET'})
        return [Alarm(member_id=as_int(a.get('memberID')), alarm=a.get('alarm', 'NONE'))
                for a in reply.get('alarms') or []]

    def version(self, endpoint=None):
        """{'etcdserver': ..., 'etcdcluster': ...} of one member."""
        return self.call('/version', None, endpoint=self._endpoint(endpoint), method='GET')

    def leader_id(self):
        return self.status().leader

    # ----------------------------------------------------------------- auth management

    def auth_status(self):
        """True when authentication is enabled on the cluster (no credentials needed to ask)."""
        try:
            return bool(self.transport.request('/v3/auth/status', {}).get('enabled', False))
        except EtcdNotImplemented:
            pass  # etcd before 3.5 has no AuthStatus call
        # etcd 3.4: an authenticate attempt tells, whatever the credentials.
        return self.check_password(self.username or 'pgha-auth-probe', self._password or 'pgha-auth-probe') is not None

    def check_password(self, name, password):
        """True when etcd accepts ``name``/``password``, False when it refuses them, None when authentication
        is off (etcd then answers every login with "not enabled" and cannot tell)."""
        try:
            self.authenticate(name, password)
            return True
        except EtcdAuthError:
            return False
        except EtcdAuthNotEnabled:
            return None

    def auth_enable(self):
        self.call('/v3/auth/enable', {})
        self._auth_enabled = None

    def auth_disable(self):
        self.call('/v3/auth/disable', {})
        self._token = None
        self._auth_enabled = None

    def user_add(self, name, password=None, no_password=False):
        """Create user ``name``. "Already exists" after a lost reply (see Transport) is this call's own success."""
        body = {'name': name, 'password': password or ''}
        if no_password:
            body['options'] = {'no_password': True}
        elif not password:
            raise EtcdInvalidArgument('user %r needs a password (or no_password=True for certificate-only users)' % name)
        try:
            self.call('/v3/auth/user/add', body, secret=bool(password))
        except EtcdUserExists as exc:
            if not exc.resent:
                raise

    def user_get(self, name):
        """Role names granted to user ``name``; EtcdNotFound when there is no such user."""
        return list(self.call('/v3/auth/user/get', {'name': name}).get('roles') or [])

    def user_list(self):
        return list(self.call('/v3/auth/user/list', {}).get('users') or [])

    def user_delete(self, name):
        try:
            self.call('/v3/auth/user/delete', {'name': name})
        except EtcdUserNotFound as exc:
            if not exc.resent:
                raise  # else: deleted by the first attempt, whose reply was lost

    def user_change_password(self, name, password):
        if not password:
            raise EtcdInvalidArgument('the new password of user %r is empty' % name)
        self.call('/v3/auth/user/changepw', {'name': name, 'password': password}, secret=True)

    def user_grant_role(self, user, role):
        self.call('/v3/auth/user/grant', {'user': user, 'role': role})

    def user_revoke_role(self, user, role):
        self.call('/v3/auth/user/revoke', {'name': user, 'role': role})

    def role_add(self, name):
        """Create role ``name``. "Already exists" after a lost reply (see Transport) is this call's own success."""
        try:
            self.call('/v3/auth/role/add', {'name': name})
        except EtcdRoleExists as exc:
            if not exc.resent:
                raise

    def role_get(self, name):
        """Permissions of role ``name`` (list of Permission); EtcdNotFound when there is no such role."""
        return [permission_from_json(p) for p in self.call('/v3/auth/role/get', {'role': name}).get('perm') or []]

    def role_list(self):
        return list(self.call('/v3/auth/role/list', {}).get('roles') or [])

    def role_delete(self, name):
        try:
            self.call('/v3/auth/role/delete', {'role': name})
        except EtcdRoleNotFound as exc:
            if not exc.resent:
                raise  # else: deleted by the first attempt, whose reply was lost

    def role_grant_permission(self, role, key, perm_type='READ', prefix=False, range_end=None):
        perm = {'permType': check_perm_type(perm_type)}
        perm.update(_range_body(key, prefix, range_end))
        self.call('/v3/auth/role/grant', {'name': role, 'perm': perm})

    def role_revoke_permission(self, role, key, prefix=False, range_end=None):
        body = {'role': role}
        body.update(_range_body(key, prefix, range_end))
        self.call('/v3/auth/role/revoke', body)


def client_from_options(options):
    """An EtcdClient from the shared connection options by name (endpoints, ca_cert, client_cert, client_key,
    username, password, timeout, validate_certs): module params, plugin options, the LB agent's config."""
    return EtcdClient(
        options['endpoints'],
        ca_cert=options.get('ca_cert'),
        client_cert=options.get('client_cert'),
        client_key=options.get('client_key'),
        username=options.get('username'),
        password=options.get('password'),
        timeout=options.get('timeout') or 5.0,
        validate_certs=options.get('validate_certs', True),
    )
