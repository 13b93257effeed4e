"""Watch re-opening on the paths real etcd takes only on cue: a token refused again and again, streams that break
as soon as they open, quiet streams re-opened on schedule. The real Watch runs over scripted streams; real etcd
behind a proxy that cuts every stream is in tests/integration/test_client_lost_replies.py.
"""

import json
import os
import socket
import sys
import time

from ansible_collections.pgha.cluster.plugins.module_utils.etcd_client import EtcdClient
from ansible_collections.pgha.cluster.plugins.module_utils.etcd_errors import (
    EtcdConfigError,
    EtcdTokenRejected,
    EtcdUnreachable,
)
from ansible_collections.pgha.cluster.plugins.module_utils.etcd_types import parse_endpoint
from ansible_collections.pgha.cluster.plugins.module_utils.etcd_watch import MAX_TOKEN_RENEWALS

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'lib'))
from watch_thread import next_in_thread  # noqa: E402  pylint: disable=wrong-import-position

ENDPOINTS = ['http://127.0.0.1:2379', 'http://127.0.0.2:2379']
CREATED = {'result': {'header': {'revision': '10'}, 'created': True}}


def event_line(revision):
    return {'result': {'header': {'revision': str(revision)}, 'events': [
        {'type': 'PUT', 'kv': {'key': 'L2s=', 'value': 'dg==', 'mod_revision': str(revision),
                               'create_revision': str(revision), 'version': '1'}}]}}


class Stream(object):
    """One HTTP answer to POST /v3/watch: a status, then lines (dicts, b'' for EOF, or exceptions to raise)."""

    def __init__(self, status=200, lines=(), body=b''):
        self.status = status
        self.lines = list(lines)
        self.body = body

    def read(self):
        return self.body

    def readline(self):
        if not self.lines:
            return b''
        line = self.lines.pop(0)
        if isinstance(line, Exception):
            raise line
        if callable(line):
            return line()
        return line if isinstance(line, bytes) else (json.dumps(line) + '\n').encode('utf-8')


class StreamConnection(object):
    def __init__(self, stream):
        self.stream = stream
        self.sock = None

    def request(self, method, path, body=None, headers=None):
        pass

    def getresponse(self):
        return self.stream

    def close(self):
        pass


class ScriptedClient(EtcdClient):
    """A real EtcdClient whose watch streams come from ``streams()`` (called once per open)."""

    def __init__(self, streams, username=None):
        super(ScriptedClient, self).__init__(ENDPOINTS, username=username, password='pw' if username else None)
        self.streams = streams
        self.opened = 0
        self.logins = 0
        self.transport.new_connection = self._new_connection

    def _new_connection(self, endpoint, timeout=None):
        self.opened += 1
        return StreamConnection(self.streams())

    def current_token(self):
        return 'token-%d' % self.logins if self.username else None

    def relogin(self):
        self.logins += 1
        return self.current_token()


def test_a_token_refused_again_and_again_ends_in_its_error_without_recursion():
    refused = json.dumps({'error': 'etcdserver: invalid auth token', 'code': 16}).encode()
    client = ScriptedClient(lambda: Stream(401, body=refused), username='patroni')
    value, dummy = next_in_thread(client.watch('/k', reconnect_timeout=5), timeout=10)
    assert isinstance(value, EtcdTokenRejected), repr(value)
    assert client.logins == MAX_TOKEN_RENEWALS


def test_streams_that_break_as_they_open_end_in_an_error_after_reconnect_timeout():
    client = ScriptedClient(lambda: Stream(200, [CREATED, b'']))
    watch = client.watch('/k', reconnect_timeout=1.0)
    value, seconds = next_in_thread(watch, timeout=10)
    assert isinstance(value, EtcdUnreachable), repr(value)
    assert 'broke again and again' in str(value)
    assert 1.0 <= seconds < 4
    # With pauses growing from 0.05 s, a second of trouble takes a handful of attempts, not thousands.
    assert 2 <= client.opened <= 12, client.opened


def test_a_stream_that_delivers_ends_the_outage():
    streams = [Stream(200, [CREATED, b''])] * 3 + [Stream(200, [CREATED, event_line(11), b''])]
    streams += [Stream(200, [CREATED, b''])] * 3 + [Stream(200, [CREATED, event_line(12)])]
    feed = iter(streams)
    client = ScriptedClient(lambda: next(feed))
    watch = client.watch('/k', reconnect_timeout=0.3)
    first, dummy = next_in_thread(watch, timeout=10)
    second, dummy = next_in_thread(watch, timeout=10)
    assert [e.kv.mod_revision for e in first.events + second.events] == [11, 12]


def test_quiet_streams_reopened_on_schedule_are_no_outage():
    def quiet():
        time.sleep(0.06)
        raise socket.timeout('timed out')

    streams = [Stream(200, [CREATED, quiet]) for dummy in range(6)] + [Stream(200, [CREATED, event_line(11)])]
    feed = iter(streams)
    client = ScriptedClient(lambda: next(feed))
    # Six quiet streams take longer than reconnect_timeout; each lived idle_timeout, so none is a failure.
    watch = client.watch('/k', idle_timeout=0.05, reconnect_timeout=0.2)
    value, seconds = next_in_thread(watch, timeout=10)
    assert not isinstance(value, Exception), repr(value)
    assert seconds > 0.3 and [e.kv.mod_revision for e in value.events] == [11]


def test_a_watch_never_sends_its_token_over_plain_http_to_another_host():
    client = ScriptedClient(lambda: Stream(200, [CREATED]), username='patroni')
    # As if the endpoints had been changed after the client checked them.
    client.transport.endpoints = [parse_endpoint('http://10.0.0.1:2379')]
    value, dummy = next_in_thread(client.watch('/k', reconnect_timeout=1), timeout=10)
    assert isinstance(value, EtcdConfigError) and 'http://10.0.0.1:2379' in str(value), repr(value)
    assert client.opened == 0
