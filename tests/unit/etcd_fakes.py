"""A scripted stand-in for etcd's JSON gateway under the real Transport, for the paths real etcd only takes on
cue: replies lost after the request was applied, tokens that are always refused, watch streams that keep breaking.

FakeEtcd keeps the state one cluster would (users, roles, leases) and answers as etcd 3.4's gateway does; each
endpoint of a FakeTransport reaches it through FakeConnection objects that can lose a reply on purpose. The real
behaviour is tested against real etcd in tests/integration/.
"""

import http.client
import json

from ansible_collections.pgha.cluster.plugins.module_utils.etcd_client import EtcdClient
from ansible_collections.pgha.cluster.plugins.module_utils.etcd_transport import Transport

FAILED_PRECONDITION = 9
NOT_FOUND = 5


def _error(message, code, status):
    return status, {'error': message, 'message': message, 'code': code}


class FakeEtcd(object):
    """One etcd cluster's auth and lease state, answering gateway paths."""

    def __init__(self):
        self.users = {}
        self.roles = set()
        self.leases = {}
        self.next_lease_id = 7587000000000000001
        self.requests = []  # (endpoint url, path, body, headers)

    def answer(self, path, body):
        handler = getattr(self, '_' + path.strip('/').replace('/', '_'), None)
        if handler is None:
            return _error('not found', 12, 404)
        return handler(body)

    def _v3_auth_user_add(self, body):
        if body['name'] in self.users:
            return _error('etcdserver: user name already exists', FAILED_PRECONDITION, 400)
        self.users[body['name']] = body.get('password')
        return 200, {'header': {}}

    def _v3_auth_user_delete(self, body):
        if self.users.pop(body['name'], None) is None:
            return _error('etcdserver: user name not found', FAILED_PRECONDITION, 400)
        return 200, {'header': {}}

    def _v3_auth_role_add(self, body):
        if body['name'] in self.roles:
            return _error('etcdserver: role name already exists', FAILED_PRECONDITION, 400)
        self.roles.add(body['name'])
        return 200, {'header': {}}

    def _v3_lease_grant(self, body):
        lease_id = int(body.get('ID') or 0)
        if not lease_id:
            lease_id = self.next_lease_id
            self.next_lease_id += 1
        if lease_id in self.leases:
            return _error('etcdserver: lease already exists', FAILED_PRECONDITION, 400)
        self.leases[lease_id] = int(body['TTL'])
        return 200, {'header': {}, 'ID': str(lease_id), 'TTL': body['TTL']}

    def _v3_lease_revoke(self, body):
        if self.leases.pop(int(body['ID']), None) is None:
            return _error('etcdserver: requested lease not found', NOT_FOUND, 404)
        return 200, {'header': {}}

    def _v3_kv_range(self, body):
        return 200, {'header': {'revision': '1'}, 'kvs': [], 'count': '0'}


class _Response(object):
    def __init__(self, status, payload):
        self.status = status
        self._data = json.dumps(payload).encode('utf-8')
        self.will_close = False

    def read(self):
        return self._data


class FakeConnection(object):
    """One connection to ``endpoint``; the transport's ``lose`` list says which replies vanish after etcd
    applied the request (the connection then breaks, as when a member dies before answering)."""

    def __init__(self, transport, endpoint):
        self.transport = transport
        self.endpoint = endpoint
        self._pending = None
        self.closed = False

    def request(self, method, path, body=None, headers=None):
        payload = json.loads(body.decode('utf-8')) if body else {}
        self.transport.etcd.requests.append((self.endpoint.url, path, payload, dict(headers or {})))
        self._pending = self.transport.etcd.answer(path, payload) + (path,)

    def getresponse(self):
        status, payload, path = self._pending
        lose = self.transport.lose
        if (self.endpoint.url, path) in lose:
            lose.remove((self.endpoint.url, path))
            raise http.client.RemoteDisconnected('Remote end closed connection without response')
        return _Response(status, payload)

    def close(self):
        self.closed = True


class FakeTransport(Transport):
    """The real Transport (failover, retries, the credential rules), over FakeConnections to one FakeEtcd."""

    def __init__(self, endpoints, etcd, lose=(), **kwargs):
        super(FakeTransport, self).__init__(endpoints, **kwargs)
        self.etcd = etcd
        self.lose = list(lose)

    def new_connection(self, endpoint, timeout=None):
        self.connects += 1
        return FakeConnection(self, endpoint)


def fake_client(endpoints, etcd=None, lose=(), **kwargs):
    """An EtcdClient whose transport is a FakeTransport to ``etcd`` (a new FakeEtcd by default)."""
    client = EtcdClient(endpoints, **kwargs)
    client.transport = FakeTransport(endpoints, etcd or FakeEtcd(), lose=lose)
    return client
