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
GRPC_UNAVAILABLE = 14
GRPC_UNAUTHENTICATED = 16


class EtcdError(Exception):
    """Base class of every error the client raises."""

    def __init__(self, message, endpoint=None, cause=None, code=None):
        super(EtcdError, self).__init__(message)
        self.message = message
        self.endpoint = endpoint
        self.cause = cause
        self.code = code

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


# Messages etcd sends when a token is missing or no longer valid: the client
# answers these by authenticating again (once) and retrying.
TOKEN_REJECTED_MESSAGES = (
    'invalid auth token',
    'user name is empty',
    'auth token is expired',
    'revision of auth store is old',  # any user/role change since the token was issued
)

AUTH_NOT_ENABLED_MESSAGE = 'authentication is not enabled'


def is_token_rejected(error):
    """True when ``error`` means "authenticate again", not "your password is wrong"."""
    if not isinstance(error, (EtcdAuthError, EtcdInvalidArgument)):
        return False
    text = str(error.cause or error.message)
    return any(m in text for m in TOKEN_REJECTED_MESSAGES)


def _strip_prefix(message):
    for prefix in ('etcdserver: ', 'mvcc: '):
        if message.startswith(prefix):
            message = message[len(prefix):]
    return message


def error_from_reply(endpoint, http_status, body):
    """Build the exception for an error reply of the JSON gateway.

    ``body`` is the decoded JSON object (or None when the reply was not JSON).
    Both shapes the gateway uses are understood: ``{"error": "...", "code": N}``
    for unary calls and ``{"error": {"grpc_code": N, "message": "..."}}`` inside
    streams.
    """
    code = None
    raw = None
    if isinstance(body, dict):
        err = body.get('error')
        if isinstance(err, dict):
            code = err.get('grpc_code', err.get('code'))
            raw = err.get('message')
        else:
            code = body.get('code')
            raw = body.get('message') or err
    if raw is None:
        raw = 'HTTP status %s' % http_status
    try:
        code = int(code) if code is not None else None
    except (TypeError, ValueError):
        code = None
    text = _strip_prefix(str(raw))
    where = 'etcd at %s' % endpoint

    if 'required revision has been compacted' in text:
        return EtcdCompacted('%s: the requested revision has been compacted' % where,
                             endpoint=endpoint, code=code)
    if 'authentication failed' in text:
        return EtcdAuthError('%s: authentication failed: wrong username or password' % where,
                             endpoint=endpoint, cause=raw, code=code)
    if any(m in text for m in TOKEN_REJECTED_MESSAGES):
        return EtcdAuthError('%s: authentication required (%s): set username and password' % (where, text),
                             endpoint=endpoint, cause=raw, code=code)
    if code == GRPC_PERMISSION_DENIED or 'permission denied' in text:
        return EtcdPermissionDenied('%s: permission denied: the user\'s roles do not allow this request' % where,
                                    endpoint=endpoint, cause=raw, code=code)
    if code == GRPC_NOT_FOUND or text.endswith('not found'):
        return EtcdNotFound('%s: %s' % (where, text), endpoint=endpoint, cause=raw, code=code)
    if code == GRPC_UNAVAILABLE or http_status == 503:
        return EtcdUnreachable('%s is unavailable: %s' % (where, text), endpoint=endpoint, cause=raw, code=code)
    if code == GRPC_UNAUTHENTICATED:
        return EtcdAuthError('%s: %s' % (where, text), endpoint=endpoint, cause=raw, code=code)
    if code == GRPC_INVALID_ARGUMENT or http_status == 400:
        return EtcdInvalidArgument('%s rejected the request: %s' % (where, text), endpoint=endpoint, cause=raw, code=code)
    return EtcdServerError('%s: %s' % (where, text), endpoint=endpoint, cause=raw, code=code)
