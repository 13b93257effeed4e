import pytest

from ansible_collections.pgha.cluster.plugins.module_utils import etcd_errors as e


def reply(message, code):
    return {'error': message, 'message': message, 'code': code}


@pytest.mark.parametrize('status, body, cls, fragment', [
    (403, reply('etcdserver: permission denied', 7), e.EtcdPermissionDenied, 'permission denied'),
    (400, reply('etcdserver: authentication failed, invalid user ID or password', 3), e.EtcdAuthError,
     'wrong username or password'),
    (401, reply('etcdserver: invalid auth token', 16), e.EtcdAuthError, 'invalid auth token'),
    (400, reply('etcdserver: user name is empty', 3), e.EtcdAuthError, 'set username and password'),
    (400, reply('etcdserver: mvcc: required revision has been compacted', 11), e.EtcdCompacted, 'compacted'),
    (412, reply('etcdserver: role name not found', 9), e.EtcdNotFound, 'role name not found'),
    (404, reply('etcdserver: requested lease not found', 5), e.EtcdNotFound, 'lease not found'),
    (503, reply('etcdserver: no leader', 14), e.EtcdUnreachable, 'no leader'),
    (400, reply('etcdserver: duplicate key given in txn request', 3), e.EtcdInvalidArgument, 'duplicate key'),
    (412, reply('etcdserver: root user does not exist', 9), e.EtcdServerError, 'root user does not exist'),
    (500, None, e.EtcdServerError, 'HTTP status 500'),
])
def test_error_from_reply_maps_kind_and_keeps_cause(status, body, cls, fragment):
    err = e.error_from_reply('https://10.0.0.1:2379', status, body)
    assert err.__class__ is cls
    assert fragment in str(err)
    assert 'https://10.0.0.1:2379' in str(err)
    assert err.endpoint == 'https://10.0.0.1:2379'


def test_stream_error_shape_is_understood():
    body = {'error': {'grpc_code': 7, 'http_code': 403, 'message': 'etcdserver: permission denied',
                      'http_status': 'Forbidden'}}
    err = e.error_from_reply('http://a:1', 200, body)
    assert isinstance(err, e.EtcdPermissionDenied) and err.code == 7


def test_token_rejection_is_told_apart_from_wrong_password():
    rejected = e.error_from_reply('x', 401, reply('etcdserver: invalid auth token', 16))
    empty = e.error_from_reply('x', 400, reply('etcdserver: user name is empty', 3))
    wrong = e.error_from_reply('x', 400, reply('etcdserver: authentication failed, invalid user ID or password', 3))
    denied = e.error_from_reply('x', 403, reply('etcdserver: permission denied', 7))
    assert e.is_token_rejected(rejected) and e.is_token_rejected(empty)
    assert not e.is_token_rejected(wrong) and not e.is_token_rejected(denied)


def test_hierarchy():
    assert issubclass(e.EtcdTLSError, e.EtcdConnectionError)
    assert issubclass(e.EtcdUnreachable, e.EtcdConnectionError)
    assert issubclass(e.EtcdConfigError, e.EtcdInvalidArgument)
    assert issubclass(e.EtcdConfigError, ValueError)
    assert e.EtcdKeyNotFound is e.EtcdNotFound
    for cls in (e.EtcdAuthError, e.EtcdPermissionDenied, e.EtcdCompacted, e.EtcdServerError, e.EtcdConnectionError):
        assert issubclass(cls, e.EtcdError)
