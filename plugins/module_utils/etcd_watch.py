# -*- coding: utf-8 -*-
# Copyright: pgha.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Streaming watch over etcd's JSON gateway, resumed from the last seen revision.

The gateway streams one JSON message per line on a long-lived POST to
``/v3/watch``. When that stream breaks (member restarted, killed, network
cut, idle for too long) the watch opens a new one on the next endpoint with
``start_revision`` = the revision after the last one it delivered, so no event
is lost or delivered twice. If etcd has compacted that revision meanwhile,
EtcdCompacted is raised: the caller must re-read the state and watch again.

Re-opening is bounded: streams that keep breaking before they deliver
anything count as one outage, which ends in an error after
``reconnect_timeout``, with a growing pause between attempts; a rejected
token is renewed a few times at most. Nothing here recurses.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import collections
import http.client
import json
import socket
import time

from .etcd_errors import (
    EtcdCompacted,
    EtcdConnectionError,
    EtcdError,
    EtcdUnreachable,
    error_from_reply,
    is_token_rejected,
)
from .etcd_transport import combine_failures, describe_connection_error, refuse_plain_credentials, USER_AGENT
from .etcd_types import KeyValue, as_int, b64, key_range

WatchEvent = collections.namedtuple('WatchEvent', ['type', 'kv', 'prev_kv'])
WatchResponse = collections.namedtuple('WatchResponse', ['revision', 'events'])

_STREAM_ERRORS = (OSError, http.client.HTTPException, ValueError)
# Renewals of a rejected token in a row, before the rejection is the caller's.
MAX_TOKEN_RENEWALS = 2
FIRST_PAUSE = 0.05
LONGEST_PAUSE = 1.0


class Watch(object):
    """Iterate to receive WatchResponse(revision, events); ``close()`` ends it from any thread.

    A response without events is a progress notification (``progress_notify``).
    ``idle_timeout``: a stream silent for this long is re-opened (a member that
    vanished without closing its sockets is otherwise never noticed).
    ``reconnect_timeout``: how long to keep trying to re-open before raising
    EtcdUnreachable/EtcdTLSError; ``next_revision`` then tells where to resume.
    A stream that breaks before delivering anything, sooner than
    ``idle_timeout`` after it opened, does not end the outage it was opened
    in: the time counts from the first break.
    """

    def __init__(self, client, key, prefix=False, range_end=None, start_revision=0, prev_kv=False,
                 progress_notify=False, idle_timeout=60.0, reconnect_timeout=30.0):
        self.client = client
        kb, end = key_range(key, prefix, range_end)
        self._request = {'key': b64(kb)}
        if end is not None:
            self._request['range_end'] = b64(end)
        if prev_kv:
            self._request['prev_kv'] = True
        if progress_notify:
            self._request['progress_notify'] = True
        self.next_revision = int(start_revision or 0)
        self.idle_timeout = idle_timeout
        self.reconnect_timeout = reconnect_timeout
        self.endpoint = None
        self.reconnects = 0
        self._conn = None
        self._sock = None
        self._resp = None
        self._closed = False
        self._opened_once = False
        self._token_retries = 0
        self.opens = 0  # streams opened, for tests and the agent's metrics
        self._opened_at = None
        self._delivered = False  # whether the current stream delivered a response
        self._outage_since = None  # first break of streams that delivered nothing since
        self._pause = FIRST_PAUSE
        endpoints = client.transport.endpoints
        self._ep_index = endpoints.index(client.transport.ordered_endpoints()[0])

    def __iter__(self):
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def close(self):
        self._closed = True
        sock = self._sock
        if sock is not None:
            try:
                # Plain socket shutdown (not SSLSocket's) wakes a reader blocked in another thread.
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
            except OSError:
                pass
        self._drop()

    def _drop(self):
        conn, self._conn, self._resp, self._sock = self._conn, None, None, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # pylint: disable=broad-except
                pass  # closing a half-dead TLS connection may fail in many ways; it is gone either way

    def _create_request(self):
        req = dict(self._request)
        if self.next_revision:
            req['start_revision'] = str(self.next_revision)
        return json.dumps({'create_request': req}).encode('utf-8')

    def _open_on(self, endpoint):
        token = self.client.current_token()
        if token:
            refuse_plain_credentials(endpoint)
        conn = self.client.transport.new_connection(endpoint, timeout=self.idle_timeout)
        headers = {'Content-Type': 'application/json', 'User-Agent': USER_AGENT}
        if token:
            headers['Authorization'] = token
        try:
            conn.request('POST', '/v3/watch', body=self._create_request(), headers=headers)
            resp = conn.getresponse()
            if resp.status != 200:
                data = resp.read()
                conn.close()
                raise error_from_reply(endpoint.url, resp.status, _json_or_none(data), data)
        except _STREAM_ERRORS:
            conn.close()
            raise
        self._conn, self._resp, self._sock = conn, resp, conn.sock
        self.endpoint = endpoint.url

    def _open(self):
        """Open a stream on the first endpoint that takes it, retrying until the outage is reconnect_timeout old.

        A loop, never a recursion: a rejected token is renewed at most
        MAX_TOKEN_RENEWALS times, then its error is raised.
        """
        endpoints = self.client.transport.endpoints
        started = self._outage_since if self._outage_since is not None else time.monotonic()
        deadline = started + self.reconnect_timeout
        renewals = 0
        while not self._closed:
            if self._outage_since is not None and time.monotonic() >= deadline:
                raise EtcdUnreachable('etcd at %s: the watch stream broke again and again soon after it opened, '
                                      'for %.1fs (reconnect_timeout), without delivering anything'
                                      % (self.endpoint, time.monotonic() - started), endpoint=self.endpoint)
            failures = []
            renewed = False
            for i in range(len(endpoints)):
                index = (self._ep_index + i) % len(endpoints)
                try:
                    self._open_on(endpoints[index])
                except EtcdConnectionError as exc:
                    failures.append(exc)
                    continue
                except EtcdError as exc:  # before _STREAM_ERRORS: some EtcdErrors are ValueErrors too
                    if is_token_rejected(exc) and self.client.username and renewals < MAX_TOKEN_RENEWALS:
                        renewals += 1
                        self.client.relogin()
                        renewed = True
                        break
                    raise
                except _STREAM_ERRORS as exc:
                    failures.append(describe_connection_error(endpoints[index], exc, self.client.transport.ca_cert))
                    continue
                self._ep_index = index
                if self._opened_once:
                    self.reconnects += 1
                self._opened_once = True
                self.opens += 1
                self._opened_at = time.monotonic()
                self._delivered = False
                return
            if renewed:
                continue
            if time.monotonic() >= deadline:
                raise combine_failures(failures)
            self._wait()

    def _wait(self):
        """The pause before the next attempt of an outage: 0.05 s, doubling up to 1 s."""
        time.sleep(self._pause)
        self._pause = min(self._pause * 2, LONGEST_PAUSE)

    def _refused(self, err):
        """A watch etcd would not serve: log in again when the token was the reason, else give up."""
        self._drop()
        if is_token_rejected(err) and self.client.username and self._token_retries < 3:
            self._token_retries += 1
            self.client.relogin()
            return None
        self.close()
        raise err

    def _lost(self):
        """The stream broke: the next attempt starts at the endpoint after this one.

        A stream that delivered something, or lived as long as idle_timeout (a quiet watch re-opened on
        schedule), ends nothing worse than a passing break; one that broke sooner without delivering
        anything continues the outage (or starts one), and the next open waits its turn.
        """
        now = time.monotonic()
        lived = now - self._opened_at if self._opened_at is not None else 0.0
        self._drop()
        self._ep_index = (self._ep_index + 1) % len(self.client.transport.endpoints)
        if self._delivered or lived >= self.idle_timeout:
            self._outage_since = None
            self._pause = FIRST_PAUSE
            return
        if self._outage_since is None:
            self._outage_since = now
        else:
            self._wait()

    def __next__(self):
        while True:
            if self._closed:
                raise StopIteration
            if self._resp is None:
                self._open()
                continue
            try:
                line = self._resp.readline()
            except _STREAM_ERRORS:
                if self._closed:
                    raise StopIteration
                self._lost()
                continue
            except Exception:  # pylint: disable=broad-except
                # close() from another thread can leave the TLS object half torn down mid-read.
                if self._closed:
                    raise StopIteration
                raise
            if not line:
                if self._closed:
                    raise StopIteration
                self._lost()
                continue
            if not line.strip():
                continue
            response = self._handle(_json_or_none(line), line)
            if response is not None:
                return response

    next = __next__

    def _endpoint_url(self):
        return self.client.transport.endpoints[self._ep_index].url

    def _handle(self, message, raw):
        endpoint = self.endpoint
        if not isinstance(message, dict):
            self._lost()  # a torn line: resume from the last delivered revision
            return None
        if 'error' in message:
            return self._refused(error_from_reply(self._endpoint_url(), 200, message, raw))
        result = message.get('result', message)
        header = result.get('header') or {}
        revision = as_int(header.get('revision'))
        compact_revision = as_int(result.get('compact_revision'))
        if compact_revision:
            self.close()
            raise EtcdCompacted('etcd at %s: watch from revision %d failed: revisions up to %d have been compacted; '
                                're-read the keys and watch again' % (endpoint, self.next_revision, compact_revision),
                                endpoint=endpoint, compact_revision=compact_revision)
        if result.get('canceled'):
            # etcd refuses a watch (bad token, no permission) by cancelling it at creation.
            reason = result.get('cancel_reason') or 'watch canceled by the server'
            return self._refused(error_from_reply(self._endpoint_url(), 200, {'message': reason}, raw))
        self._token_retries = 0
        if result.get('created'):
            if not self.next_revision and revision:
                self.next_revision = revision + 1
            return None
        events = [_event(e) for e in result.get('events') or []]
        if events:
            self.next_revision = max(self.next_revision, events[-1].kv.mod_revision + 1)
        elif revision:
            self.next_revision = max(self.next_revision, revision + 1)
        self._delivered = True
        self._outage_since = None
        self._pause = FIRST_PAUSE
        return WatchResponse(revision=revision, events=events)


def _event(data):
    prev = data.get('prev_kv')
    return WatchEvent(type=data.get('type', 'PUT'), kv=KeyValue.from_json(data.get('kv') or {}),
                      prev_kv=KeyValue.from_json(prev) if prev else None)


def _json_or_none(data):
    try:
        return json.loads(data.decode('utf-8'))
    except ValueError:
        return None
