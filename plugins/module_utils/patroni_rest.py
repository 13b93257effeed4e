# -*- coding: utf-8 -*-
# Copyright: pgha.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A tiny stdlib client for Patroni's REST API: GETs such as /patroni and /cluster, and the unsafe
requests (POST /switchover, PATCH /config, ...) that operate the cluster.

Stdlib only (no Ansible import), like patroni_state, so that modules and the
load balancer agent can share it. Every failure is a PatroniRestError whose
message names the URL and the cause (unreachable, TLS, authentication, HTTP
status, not JSON).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import http.client
import json
import socket
import ssl

from collections import namedtuple

from urllib.parse import urlsplit

from .tls_context import TLSConfigError, build_ssl_context as tls_context, plain_http_exposes, unverified_tls_warning

DEFAULT_TIMEOUT = 5.0
# /patroni and /cluster answer with a few KiB; more means this is not Patroni.
_MAX_BODY = 1024 * 1024
# The requests Patroni checks credentials for; it answers the others without them, so they never carry any.
UNSAFE_METHODS = ('POST', 'PUT', 'PATCH', 'DELETE')


# ``data`` is the parsed JSON when ``is_json``, else the text; ``text`` is always the raw text.
PatroniAnswer = namedtuple('PatroniAnswer', ['status', 'data', 'text', 'is_json'])


class PatroniRestError(Exception):
    """A REST call failed; ``url`` is what was requested, ``status`` the HTTP status when there was one."""

    def __init__(self, message, url=None, status=None):
        super(PatroniRestError, self).__init__(message)
        self.url = url
        self.status = status


def build_ssl_context(ca_cert=None, client_cert=None, client_key=None, validate_certs=True):
    """An SSLContext for https:// API URLs; a bad file is a PatroniRestError naming the option."""
    try:
        return tls_context(ca_cert, client_cert, client_key, validate_certs, option_prefix='rest_')
    except TLSConfigError as exc:
        raise PatroniRestError(str(exc))


def describe_error(url, exc):
    """A readable reason for a socket/TLS/HTTP exception raised while calling ``url``."""
    where = 'Patroni REST API at %s' % url
    if isinstance(exc, ssl.SSLCertVerificationError):
        reason = getattr(exc, 'verify_message', None) or str(exc)
        return 'TLS verification of %s failed: %s (check rest_ca_cert)' % (where, reason)
    if isinstance(exc, ssl.SSLError):
        return 'TLS error talking to %s: %s' % (where, exc)
    if isinstance(exc, socket.gaierror):
        return '%s is unreachable: host name cannot be resolved' % where
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return '%s is unreachable: timed out' % where
    if isinstance(exc, ConnectionRefusedError):
        return '%s is unreachable: connection refused' % where
    if isinstance(exc, http.client.HTTPException):
        return '%s gave no valid HTTP answer: %s' % (where, exc.__class__.__name__)
    return '%s is unreachable: %s' % (where, exc)


def one_line(text, limit=200):
    """``text`` with its white space collapsed, cut to ``limit`` characters (for messages)."""
    return ' '.join(text.split())[:limit]


class PatroniRestClient(object):
    """Requests to members' ``api_url`` (``http(s)://host:port``) with one set of TLS files and credentials.

    Basic auth goes only with UNSAFE_METHODS, and never over plain HTTP to another host: such a request is
    refused before it is sent. ``warnings`` lists what the settings weaken (validate_certs=false).
    """

    def __init__(self, ca_cert=None, client_cert=None, client_key=None, username=None, password=None,
                 timeout=DEFAULT_TIMEOUT, validate_certs=True):
        self.ca_cert, self.client_cert, self.client_key = ca_cert, client_cert, client_key
        self.validate_certs = validate_certs
        self.timeout = timeout or DEFAULT_TIMEOUT
        self._auth = None
        if username:
            token = ('%s:%s' % (username, password or '')).encode('utf-8')
            self._auth = 'Basic ' + base64.b64encode(token).decode('ascii')
        self._ssl_context = None
        self.warnings = [] if validate_certs else [unverified_tls_warning("the Patroni REST APIs")]

    def _context(self):
        # Built on first https use, so that plain-http clusters need no TLS files at all.
        if self._ssl_context is None:
            self._ssl_context = build_ssl_context(self.ca_cert, self.client_cert, self.client_key,
                                                  self.validate_certs)
        return self._ssl_context

    def _connection(self, api_url, timeout=None):
        parts = urlsplit(api_url or '')
        scheme = parts.scheme.lower()
        try:
            port = parts.port
        except ValueError:
            port = None
            scheme = 'invalid'
        if scheme not in ('http', 'https') or not parts.hostname:
            raise PatroniRestError('invalid Patroni REST API URL %r: expected http(s)://host:port' % (api_url,),
                                   url=api_url)
        if scheme == 'https':
            return http.client.HTTPSConnection(parts.hostname, port or 8008, timeout=timeout or self.timeout,
                                               context=self._context())
        return http.client.HTTPConnection(parts.hostname, port or 8008, timeout=timeout or self.timeout)

    def request(self, api_url, method, path, body=None, timeout=None):
        """One request: a PatroniAnswer for any HTTP answer but 401, else PatroniRestError.

        The answer carries its text and, when it is JSON, the parsed data: Patroni answers its
        action endpoints (``/switchover``, ``/failover``, ``/restart``...) with plain text, and callers
        need its message whatever the status. ``body`` is sent as JSON. ``timeout`` overrides the
        client's for calls that Patroni answers only when done (an immediate switchover waits for the
        new leader). Only the scheme, host and port of ``api_url`` are used: members advertise it with
        a path (``http://host:8008/patroni``). A 401 is an error here because its cause is always
        the same: rest_username / rest_password.
        """
        conn = self._connection(api_url, timeout)  # checks api_url; connects only when the request is sent
        url = self.url(api_url, path)
        headers = {'Accept': 'application/json'}
        if self._auth and method.upper() in UNSAFE_METHODS:
            parts = urlsplit(api_url or '')
            if plain_http_exposes(parts.scheme.lower(), parts.hostname):
                raise PatroniRestError('refusing to send rest_username/rest_password to %s over plain HTTP, where '
                                       'anyone on the network can read them: serve the REST API over https (plain '
                                       'http:// is accepted only on the loopback interface)' % url, url=url)
            headers['Authorization'] = self._auth
        payload = None
        if body is not None:
            payload = json.dumps(body).encode('utf-8')
            headers['Content-Type'] = 'application/json'
        try:
            conn.request(method, path, body=payload, headers=headers)
            resp = conn.getresponse()
            raw = resp.read(_MAX_BODY)
        except (OSError, http.client.HTTPException) as exc:
            raise PatroniRestError(describe_error(url, exc), url=url)
        finally:
            conn.close()
        text = raw.decode('utf-8', 'replace')
        if resp.status == 401:
            raise PatroniRestError('Patroni REST API at %s refused the request (HTTP 401): check rest_username and '
                                   'rest_password' % url, url=url, status=resp.status)
        try:
            return PatroniAnswer(resp.status, json.loads(text), text, True)
        except ValueError:
            return PatroniAnswer(resp.status, text, text, False)

    def get(self, api_url, path):
        """GET ``path`` from the API at ``api_url``: the parsed JSON of a 2xx answer, else PatroniRestError."""
        answer = self.request(api_url, 'GET', path)
        url = self.url(api_url, path)
        if not 200 <= answer.status < 300:
            raise PatroniRestError('Patroni REST API at %s answered HTTP %d: %s' % (
                url, answer.status, one_line(answer.text) or http.client.responses.get(answer.status, '')),
                url=url, status=answer.status)
        if not answer.is_json:
            raise PatroniRestError('Patroni REST API at %s did not answer with JSON: %r' % (url, answer.text[:80]),
                                   url=url, status=answer.status)
        return answer.data

    @staticmethod
    def url(api_url, path):
        """``path`` at the host and port of ``api_url``, without credentials (for messages)."""
        parts = urlsplit(api_url)
        return '%s://%s%s' % (parts.scheme.lower(), parts.netloc.rpartition('@')[2], path)

    def patroni(self, api_url):
        """``GET /patroni``: the member's own view (state, role, timeline, xlog, ...)."""
        return self.get(api_url, '/patroni')

    def cluster(self, api_url):
        """``GET /cluster``: the cluster as this member sees it."""
        return self.get(api_url, '/cluster')
