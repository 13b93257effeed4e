# -*- coding: utf-8 -*-
# Copyright: pgha.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""HTTP(S) transport to etcd's JSON gateway: persistent connections, endpoint
failover, and the translation of socket/TLS failures into EtcdError.

Stdlib only (``http.client`` + ``ssl``) so that it runs on any managed node and
inside the load balancer sync agent.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import http.client
import json
import socket
import ssl
import threading

from .etcd_errors import (
    STRICT_RECONFIG_REFUSALS,
    EtcdConfigError,
    EtcdTLSError,
    EtcdTransient,
    EtcdUnreachable,
    error_from_reply,
)
from .etcd_types import parse_endpoints
from .tls_context import TLSConfigError, build_ssl_context, plain_http_exposes, unverified_tls_warning

USER_AGENT = 'pgha.cluster-etcd-client'

# What the peer says when it rejects our client certificate (or its absence);
# depending on TLS 1.2/1.3 this surfaces during the handshake or on first read.
_CLIENT_CERT_REJECTED = ('CERTIFICATE_REQUIRED', 'BAD_CERTIFICATE', 'UNKNOWN_CA', 'CERTIFICATE_UNKNOWN',
                         'HANDSHAKE_FAILURE', 'UNSUPPORTED_CERTIFICATE')


def describe_connection_error(endpoint, exc, ca_cert=None):
    """Turn a socket/TLS exception into the EtcdError a user can act on."""
    where = 'etcd at %s' % endpoint.url
    if isinstance(exc, ssl.SSLCertVerificationError):
        reason = getattr(exc, 'verify_message', None) or str(exc)
        hint = ('check that ca_cert (%s) is the CA that signed the etcd server certificates' % ca_cert
                if ca_cert else 'set ca_cert to the CA that signed the etcd server certificates')
        if 'mismatch' in reason.lower() or 'hostname' in reason.lower() or "doesn't match" in reason:
            hint = 'the server certificate does not list %r among its names/addresses (SANs)' % endpoint.host
        return EtcdTLSError('TLS verification of %s failed: %s; %s' % (where, reason, hint),
                            endpoint=endpoint.url, cause=exc)
    if isinstance(exc, ssl.SSLError):
        text = '%s %s' % (getattr(exc, 'reason', '') or '', exc)
        if 'WRONG_VERSION_NUMBER' in text or 'record layer failure' in text:
            return EtcdTLSError('%s does not speak TLS: use an http:// endpoint, or enable TLS on the server' % where,
                                endpoint=endpoint.url, cause=exc)
        if 'UNEXPECTED_EOF' in text.upper() or 'EOF occurred in violation of protocol' in text:
            # Seen when the member is going down, when the port serves plain HTTP, and (under TLS 1.3, when
            # the server's alert is lost to the connection reset) when it refuses our client certificate.
            return EtcdUnreachable('%s closed the TLS connection unexpectedly: the member may be stopping, it may '
                                   'require a client certificate it trusts (check client_cert and client_key), or '
                                   'the port serves plain HTTP (then use an http:// endpoint)' % where,
                                   endpoint=endpoint.url, cause=exc)
        if any(marker in text.upper() for marker in _CLIENT_CERT_REJECTED):
            return EtcdTLSError('%s refused the TLS connection (%s): it requires a client certificate it trusts; '
                                'check client_cert and client_key' % (where, getattr(exc, 'reason', None) or exc),
                                endpoint=endpoint.url, cause=exc)
        return EtcdTLSError('TLS error talking to %s: %s' % (where, exc), endpoint=endpoint.url, cause=exc)
    if isinstance(exc, socket.gaierror):
        return EtcdUnreachable('%s is unreachable: host name %r cannot be resolved' % (where, endpoint.host),
                               endpoint=endpoint.url, cause=exc)
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return EtcdUnreachable('%s is unreachable: timed out' % where, endpoint=endpoint.url, cause=exc)
    if isinstance(exc, ConnectionRefusedError) or getattr(exc, 'errno', None) == errno.ECONNREFUSED:
        return EtcdUnreachable('%s is unreachable: connection refused' % where, endpoint=endpoint.url, cause=exc)
    if isinstance(exc, (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)):
        # etcd's TLS-only listener hangs up on plain HTTP without a word, and a
        # refused client certificate can surface as a bare reset under TLS 1.3.
        if endpoint.scheme == 'http':
            hint = '; if it serves TLS, use an https:// endpoint and set ca_cert'
        else:
            hint = '; the member may be stopping, it may require a client certificate it trusts ' \
                   '(check client_cert and client_key), or the port serves plain HTTP (then use an http:// endpoint)'
        return EtcdUnreachable('%s closed the connection (%s)%s' % (where, exc.__class__.__name__, hint),
                               endpoint=endpoint.url, cause=exc)
    return EtcdUnreachable('%s is unreachable: %s' % (where, exc), endpoint=endpoint.url, cause=exc)


_CONNECTION_ERRORS = (OSError, http.client.HTTPException)


def _most_telling_kind(failures):
    """TLS failures first (configuration that retrying elsewhere will not fix), then what etcd itself answered
    (the strict reconfiguration check before other passing refusals), then plain unreachability."""
    for wanted in (EtcdTLSError, STRICT_RECONFIG_REFUSALS, EtcdTransient):
        found = next((f for f in failures if isinstance(f, wanted)), None)
        if found is not None:
            return type(found)
    return EtcdUnreachable


def refuse_plain_credentials(endpoint):
    """EtcdConfigError when credentials sent to ``endpoint`` would cross the network in clear."""
    if plain_http_exposes(endpoint.scheme, endpoint.host):
        raise EtcdConfigError('refusing to send etcd credentials (username/password or token) to %s over plain '
                              'HTTP, where anyone on the network can read them: use an https:// endpoint with '
                              'ca_cert (plain http:// is accepted only on the loopback interface)' % endpoint.url,
                              endpoint=endpoint.url)


def combine_failures(failures):
    """One error for "every endpoint failed", of the most telling kind among them."""
    if len(failures) == 1:
        return failures[0]
    detail = '; '.join(str(f) for f in failures)
    return _most_telling_kind(failures)('no etcd endpoint could serve the request: %s' % detail,
                                        endpoint=','.join(f.endpoint or '' for f in failures), cause=failures[-1])


class Transport(object):
    """Posts JSON to the gateway, one persistent connection per endpoint, with failover.

    The endpoint that answered last is tried first next time. Connection errors
    (and "no leader"/unavailable replies) move on to the next endpoint; every
    other error reply is raised at once. An error raised after an earlier
    endpoint failed has ``resent`` set: that endpoint may have applied the
    request before its reply was lost.

    Requests that carry credentials (a token, or a password in the body) are
    never sent over plain HTTP to another host (refuse_plain_credentials).
    ``warnings`` lists what the settings weaken (validate_certs=false), for
    the caller to pass on.
    """

    def __init__(self, endpoints, ca_cert=None, client_cert=None, client_key=None, timeout=5.0,
                 validate_certs=True, keep_alive=True):
        tls_wanted = bool(ca_cert or client_cert)
        self.endpoints = parse_endpoints(endpoints, default_scheme='https' if tls_wanted else 'http')
        try:
            self.timeout = float(timeout)
        except (TypeError, ValueError):
            raise EtcdConfigError('timeout must be a number of seconds, not %r' % (timeout,))
        if self.timeout <= 0:
            raise EtcdConfigError('timeout must be greater than 0, not %r' % (timeout,))
        self.ca_cert = ca_cert
        self.keep_alive = keep_alive
        self.ssl_context = None
        if self.endpoints[0].scheme == 'https':
            try:
                self.ssl_context = build_ssl_context(ca_cert, client_cert, client_key, validate_certs)
            except TLSConfigError as exc:
                raise EtcdConfigError(str(exc))
        elif tls_wanted:
            raise EtcdConfigError('ca_cert/client_cert are set but the etcd endpoints use http://: use https:// '
                                  'endpoints or drop the certificate options')
        self.warnings = []
        if self.ssl_context is not None and not validate_certs:
            self.warnings.append(unverified_tls_warning('the etcd servers (%s)' % ', '.join(
                ep.url for ep in self.endpoints)))
        self._connections = {}
        self._preferred = 0
        self._lock = threading.RLock()
        self.connects = 0  # how many connections were opened: lets tests and benchmarks see reuse

    def new_connection(self, endpoint, timeout=None):
        timeout = self.timeout if timeout is None else timeout
        if endpoint.scheme == 'https':
            conn = http.client.HTTPSConnection(endpoint.host, endpoint.port, timeout=timeout, context=self.ssl_context)
        else:
            conn = http.client.HTTPConnection(endpoint.host, endpoint.port, timeout=timeout)
        self.connects += 1
        return conn

    def close(self):
        with self._lock:
            for conn in self._connections.values():
                conn.close()
            self._connections.clear()

    def ordered_endpoints(self):
        n = len(self.endpoints)
        return [self.endpoints[(self._preferred + i) % n] for i in range(n)]

    def _roundtrip(self, endpoint, method, path, body, headers):
        """(HTTP status, body, whether the request was sent twice to this endpoint)."""
        conn = self._connections.get(endpoint)
        reused = conn is not None
        for attempt in (1, 2):
            if conn is None:
                conn = self.new_connection(endpoint)
                if self.keep_alive:
                    self._connections[endpoint] = conn
            try:
                conn.request(method, path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
            except _CONNECTION_ERRORS as exc:
                conn.close()
                self._connections.pop(endpoint, None)
                conn = None
                # A kept-alive connection may have been closed by the server
                # (idle, or the member restarted) before we used it: one fresh
                # connection to the same member before calling it unreachable.
                if reused and attempt == 1 and not isinstance(exc, socket.timeout):
                    continue
                raise
            if not self.keep_alive or resp.will_close:
                conn.close()
                self._connections.pop(endpoint, None)
            return resp.status, data, attempt > 1
        raise AssertionError('unreachable')  # pragma: no cover

    def request(self, path, payload=None, token=None, endpoint=None, method='POST', secret=False):
        """Send one request; return the decoded JSON reply.

        With ``endpoint`` the request goes to that member only (no failover),
        which is what per-member status and health checks need. ``secret``
        says that ``payload`` holds a password.
        """
        body = None if payload is None else json.dumps(payload).encode('utf-8')
        headers = {'Content-Type': 'application/json', 'User-Agent': USER_AGENT}
        if token:
            headers['Authorization'] = token
        with self._lock:
            targets = [endpoint] if endpoint is not None else self.ordered_endpoints()
            if token or secret:
                for ep in targets:
                    refuse_plain_credentials(ep)
            failures = []
            for ep in targets:
                try:
                    status, data, twice = self._roundtrip(ep, method, path, body, headers)
                except _CONNECTION_ERRORS as exc:
                    failures.append(describe_connection_error(ep, exc, self.ca_cert))
                    continue
                reply = decode_reply(data)
                if status == 200 and isinstance(reply, dict) and 'error' not in reply:
                    if endpoint is None:
                        self._preferred = self.endpoints.index(ep)
                    return reply
                err = error_from_reply(ep.url, status, reply, data)
                if isinstance(err, EtcdUnreachable):
                    failures.append(err)
                    continue
                err.resent = bool(failures) or twice
                raise err
            raise combine_failures(failures)


def decode_reply(data):
    try:
        return json.loads(data.decode('utf-8')) if data else {}
    except ValueError:
        return None
