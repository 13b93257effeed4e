# -*- coding: utf-8 -*-
# Copyright: pgha.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Exceptions raised by the etcd client, and the mapping of etcd's error replies onto them.

Stdlib only: this file also runs outside Ansible (the load balancer sync agent).
Every message names the endpoint and the cause, so that a module can hand it to
``fail_json`` as it is and a user knows what to fix.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

# gRPC status codes that etcd's JSON gateway puts in the "code" field.
GRPC_INVALID_ARGUMENT = 3
GRPC_NOT_FOUND = 5
GRPC_PERMISSION_DENIED = 7
GRPC_FAILED_PRECONDITION = 9
GRPC_OUT_OF_RANGE = 11
GRPC_UNIMPLEMENTED = 12
GRPC_UNAVAILABLE = 14
GRPC_UNAUTHENTICATED = 16


class EtcdError(Exception):
    """Base class of every error the client raises.

    ``resent``: the request went to another endpoint first, which failed after it may have applied it (a lost
    reply); an "already exists" answer may then be about the request's own earlier attempt.
    """

    def __init__(self, message, endpoint=None, cause=None, code=None):
        super(EtcdError, self).__init__(message)
        self.message = message
        self.endpoint = endpoint
        self.cause = cause
        self.code = code
        self.resent = False

    def __str__(self):
        return self.message


class EtcdInvalidArgument(EtcdError, ValueError):
    """A request etcd (or the client, before sending it) refuses as malformed."""


class EtcdConfigError(EtcdInvalidArgument):
    """Bad client settings: endpoint strings, certificate files, option combinations."""


class EtcdConnectionError(EtcdError):
    """No usable connection to etcd (base of the reachability errors)."""


class EtcdUnreachable(EtcdConnectionError):
    """Connection refused, timed out, name not resolved, or the member has no leader."""


class EtcdTLSError(EtcdConnectionError):
    """TLS handshake failed: server certificate not trusted, or our client certificate refused."""


class EtcdAuthError(EtcdError):
    """Authentication failed: wrong or missing username/password, or an unusable token."""


class EtcdPermissionDenied(EtcdError):
    """The authenticated user's roles do not allow the request."""


class EtcdNotFound(EtcdError):
    """A key, lease, user, role or member does not exist."""


# The name the rest of the collection uses for a missing key.
EtcdKeyNotFound = EtcdNotFound


class EtcdCompacted(EtcdError):
    """The requested revision was compacted away; ``compact_revision`` is the oldest one left."""

    def __init__(self, message, endpoint=None, compact_revision=None, code=GRPC_OUT_OF_RANGE):
        super(EtcdCompacted, self).__init__(message, endpoint=endpoint, code=code)
        self.compact_revision = compact_revision


class EtcdServerError(EtcdError):
    """Any other error etcd reported."""


class EtcdTransient(EtcdError):
    """etcd refused for a passing reason: the same request may succeed when sent again a little later.

    A membership change refused this way, or whose request timed out, may
    still have been applied: check before calling it a failure.
    """


class EtcdUnhealthyCluster(EtcdUnreachable, EtcdTransient):
    """Strict reconfiguration check: a voting member is not connected (etcd's "unhealthy cluster")."""


class EtcdNotEnoughStartedMembers(EtcdServerError, EtcdTransient):
    """Strict reconfiguration check: the change would leave too few started members."""


# etcd's strict reconfiguration check refuses with one of these while it sees a voter disconnected.
STRICT_RECONFIG_REFUSALS = (EtcdUnhealthyCluster, EtcdNotEnoughStartedMembers)


class EtcdNoLeader(EtcdUnreachable, EtcdTransient):
    """The member does not know a leader (election under way, or it lost its peers)."""


class EtcdLeaderChanged(EtcdUnreachable, EtcdTransient):
    """The leader changed while etcd handled the request."""


class EtcdRequestTimedOut(EtcdUnreachable, EtcdTransient):
    """etcd gave up waiting for its peers to commit the request (it may still be applied)."""


class EtcdTooManyRequests(EtcdServerError, EtcdTransient):
    """The member is overloaded (its applied index lags too far behind)."""


class EtcdTokenRejected(EtcdAuthError):
    """No token, or one etcd no longer accepts (expired, or issued before a user/role change): log in again."""


class EtcdAuthenticationFailed(EtcdAuthError):
    """etcd refused the username/password."""


class EtcdAuthNotEnabled(EtcdServerError):
    """The request needs authentication to be enabled (a login while it is off)."""


class EtcdInvalidAuthManagement(EtcdInvalidArgument):
    """etcd refuses to delete user or role root, or to take role root from user root, while auth is on."""


class EtcdUserNotFound(EtcdNotFound):
    """The user named in the request does not exist.

    Without a token, a client-cert-auth cluster checks a gateway request as the
    gateway's own certificate name, and then this error is about that name.
    """


class EtcdRoleNotFound(EtcdNotFound):
    """The role named in the request does not exist."""


class EtcdMemberNotFound(EtcdNotFound):
    """No member has the ID in the request."""


class EtcdUserExists(EtcdServerError):
    """A user of that name exists already."""


class EtcdRoleExists(EtcdServerError):
    """A role of that name exists already."""


class EtcdLeaseExists(EtcdServerError):
    """A lease with the requested ID exists already."""


class EtcdPeerURLsExist(EtcdServerError):
    """Another member (or the one just added) already has these peer URLs."""


class EtcdTooManyLearners(EtcdServerError):
    """etcd 3.4 and 3.5 allow one learner at a time."""


class EtcdLearnerNotReady(EtcdServerError):
    """The learner has not caught up with the leader yet, so it cannot be promoted."""


class EtcdNotALearner(EtcdServerError):
    """Only a learner can be promoted (this member already votes)."""


class EtcdNotImplemented(EtcdServerError):
    """This etcd does not serve the call (e.g. AuthStatus before 3.5)."""


# What fail_on_etcd_error reports as ``error_type``: the broad kinds users have
# been able to match on; the precise kinds above are for the code.
REPORTED_KINDS = (EtcdCompacted, EtcdConfigError, EtcdInvalidArgument, EtcdTLSError, EtcdUnreachable,
                  EtcdConnectionError, EtcdAuthError, EtcdPermissionDenied, EtcdNotFound, EtcdServerError)


def reported_kind(error):
    """The name of the broad kind of ``error`` (e.g. EtcdAuthError for an EtcdTokenRejected)."""
    for cls in type(error).__mro__:
        if cls in REPORTED_KINDS:
            return cls.__name__
    return type(error).__name__


# (fragment of etcd's message, kind), first match wins: more specific fragments first.
_KINDS_BY_MESSAGE = (
    ('authentication failed', EtcdAuthenticationFailed),
    ('invalid auth token', EtcdTokenRejected),
    ('user name is empty', EtcdTokenRejected),
    ('auth token is expired', EtcdTokenRejected),
    ('revision of auth store is old', EtcdTokenRejected),  # any user/role change since the token was issued
    ('authentication is not enabled', EtcdAuthNotEnabled),
    ('invalid auth management', EtcdInvalidAuthManagement),
    ('user name not found', EtcdUserNotFound),
    ('role name not found', EtcdRoleNotFound),
    ('member not found', EtcdMemberNotFound),
    ('user name already exists', EtcdUserExists),
    ('role name already exists', EtcdRoleExists),
    ('lease already exists', EtcdLeaseExists),
    ('peer urls already exists', EtcdPeerURLsExist),
    ('too many learner', EtcdTooManyLearners),
    ('in sync with leader', EtcdLearnerNotReady),
    ('can only promote a learner member', EtcdNotALearner),
    ('unhealthy cluster', EtcdUnhealthyCluster),
    ('not enough started members', EtcdNotEnoughStartedMembers),
    ('no leader', EtcdNoLeader),
    ('leader changed', EtcdLeaderChanged),
    ('request timed out', EtcdRequestTimedOut),
    ('too many requests', EtcdTooManyRequests),
)

_WORDING = {
    EtcdAuthenticationFailed: '%(where)s: authentication failed: wrong username or password',
    EtcdTokenRejected: '%(where)s: authentication required (%(text)s): set username and password',
    EtcdUnhealthyCluster: '%(where)s is unavailable: %(text)s',
    EtcdNoLeader: '%(where)s is unavailable: %(text)s',
    EtcdLeaderChanged: '%(where)s is unavailable: %(text)s',
    EtcdRequestTimedOut: '%(where)s is unavailable: %(text)s',
    EtcdInvalidAuthManagement: '%(where)s rejected the request: %(text)s',
}


def is_token_rejected(error):
    """True when ``error`` means "authenticate again", not "your password is wrong"."""
    return isinstance(error, EtcdTokenRejected)


def _strip_prefix(message):
    for prefix in ('etcdserver: ', 'mvcc: '):
        if message.startswith(prefix):
            message = message[len(prefix):]
    return message


def _refusal_before_etcd(endpoint, raw):
    """The TLSError for the gateway's own refusals, which do not come from etcd's request handling."""
    text = raw[:300].decode('utf-8', 'replace') if isinstance(raw, bytes) else ''
    if 'CommonName of client sending a request against gateway' in text:
        # etcd cannot hand a certificate's CN on to its gRPC side as the user, so
        # with client-cert-auth and auth both on it refuses any CN-bearing cert.
        return EtcdTLSError('etcd at %s refuses client certificates that carry a CommonName on its JSON gateway '
                            '(client-cert-auth and authentication are both on): use a client certificate without a '
                            'CN; the etcd user comes from username/password' % endpoint, endpoint=endpoint)
    if 'HTTP request to an HTTPS server' in text:
        return EtcdTLSError('etcd at %s only accepts TLS: use an https:// endpoint and set ca_cert' % endpoint,
                            endpoint=endpoint)
    return None


def _body_of_text_reply(http_status, raw):
    """A JSON-like body for a reply that is not JSON (an old etcd, a proxy...)."""
    if http_status == 404:
        return {'message': 'not found: this etcd does not serve the v3 JSON gateway path (etcd 3.4 or later is '
                           'needed)', 'code': GRPC_UNIMPLEMENTED}
    text = raw[:200].decode('utf-8', 'replace') if isinstance(raw, bytes) else ''
    return {'message': text.strip() or 'HTTP status %d' % http_status}


def error_from_reply(endpoint, http_status, body, raw=None):
    """The exception for an error reply of the JSON gateway: the one place that reads etcd's error text.

    ``body`` is the decoded JSON object, or None when the reply was not JSON
    (``raw``, the bytes received, then tells what answered). Both shapes the
    gateway uses are understood: ``{"error": "...", "code": N}`` for unary
    calls and ``{"error": {"grpc_code": N, "message": "..."}}`` inside streams.
    """
    refusal = _refusal_before_etcd(endpoint, raw)
    if refusal is not None:
        return refusal
    if body is None and raw is not None:
        body = _body_of_text_reply(http_status, raw)
    code = None
    raw_message = None
    if isinstance(body, dict):
        err = body.get('error')
        if isinstance(err, dict):
            code = err.get('grpc_code', err.get('code'))
            raw_message = err.get('message')
        else:
            code = body.get('code')
            raw_message = body.get('message') or err
    if raw_message is None:
        raw_message = 'HTTP status %s' % http_status
    try:
        code = int(code) if code is not None else None
    except (TypeError, ValueError):
        code = None
    text = _strip_prefix(str(raw_message))
    where = 'etcd at %s' % endpoint
    detail = {'endpoint': endpoint, 'cause': raw_message, 'code': code}

    if 'required revision has been compacted' in text:
        return EtcdCompacted('%s: the requested revision has been compacted' % where, endpoint=endpoint, code=code)
    lowered = text.lower()
    for fragment, kind in _KINDS_BY_MESSAGE:
        if fragment in lowered:
            return kind(_WORDING.get(kind, '%(where)s: %(text)s') % {'where': where, 'text': text}, **detail)
    if code == GRPC_PERMISSION_DENIED or 'permission denied' in text:
        return EtcdPermissionDenied('%s: permission denied: the user\'s roles do not allow this request' % where,
                                    **detail)
    if code == GRPC_UNIMPLEMENTED:
        return EtcdNotImplemented('%s: %s' % (where, text), **detail)
    if code == GRPC_NOT_FOUND or text.endswith('not found'):
        return EtcdNotFound('%s: %s' % (where, text), **detail)
    if code == GRPC_UNAVAILABLE or http_status == 503:
        return EtcdUnreachable('%s is unavailable: %s' % (where, text), **detail)
    if code == GRPC_UNAUTHENTICATED:
        return EtcdAuthError('%s: %s' % (where, text), **detail)
    if code == GRPC_INVALID_ARGUMENT or http_status == 400:
        return EtcdInvalidArgument('%s rejected the request: %s' % (where, text), **detail)
    return EtcdServerError('%s: %s' % (where, text), **detail)
