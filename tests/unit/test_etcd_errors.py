"""etcd's error replies -> exception kinds. The bodies and HTTP statuses are those etcd 3.4.23's JSON gateway sends."""

import pytest

from ansible_collections.pgha.cluster.plugins.module_utils import etcd_errors as e

EP = 'https://10.0.0.1:2379'


def reply(message, code):
    return {'error': message, 'message': message, 'code': code}


KINDS = [
    # (HTTP status, body, kind, broad kind kept for callers that catch it, text the message keeps)
    (403, reply('etcdserver: permission denied', 7), e.EtcdPermissionDenied, e.EtcdPermissionDenied,
     'permission denied'),
    (400, reply('etcdserver: authentication failed, invalid user ID or password', 3), e.EtcdAuthenticationFailed,
     e.EtcdAuthError, 'wrong username or password'),
    (401, reply('etcdserver: invalid auth token', 16), e.EtcdTokenRejected, e.EtcdAuthError, 'invalid auth token'),
    (400, reply('etcdserver: user name is empty', 3), e.EtcdTokenRejected, e.EtcdAuthError,
     'set username and password'),
    (400, reply('etcdserver: revision of auth store is old', 3), e.EtcdTokenRejected, e.EtcdAuthError,
     'revision of auth store is old'),
    (412, reply('etcdserver: authentication is not enabled', 9), e.EtcdAuthNotEnabled, e.EtcdServerError,
     'authentication is not enabled'),
    (400, reply('etcdserver: invalid auth management', 3), e.EtcdInvalidAuthManagement, e.EtcdInvalidArgument,
     'rejected the request: invalid auth management'),
    (412, reply('etcdserver: user name not found', 9), e.EtcdUserNotFound, e.EtcdNotFound, 'user name not found'),
    (412, reply('etcdserver: role name not found', 9), e.EtcdRoleNotFound, e.EtcdNotFound, 'role name not found'),
    (404, reply('etcdserver: member not found', 5), e.EtcdMemberNotFound, e.EtcdNotFound, 'member not found'),
    (412, reply('etcdserver: user name already exists', 9), e.EtcdUserExists, e.EtcdServerError,
     'user name already exists'),
    (412, reply('etcdserver: role name already exists', 9), e.EtcdRoleExists, e.EtcdServerError,
     'role name already exists'),
    (412, reply('etcdserver: Peer URLs already exists', 9), e.EtcdPeerURLsExist, e.EtcdServerError,
     'Peer URLs already exists'),
    (412, reply('etcdserver: too many learner members in cluster', 9), e.EtcdTooManyLearners, e.EtcdServerError,
     'too many learner members'),
    (412, reply('etcdserver: can only promote a learner member which is in sync with leader', 9),
     e.EtcdLearnerNotReady, e.EtcdServerError, 'in sync with leader'),
    (412, reply('etcdserver: can only promote a learner member', 9), e.EtcdNotALearner, e.EtcdServerError,
     'can only promote a learner member'),
    (503, reply('etcdserver: unhealthy cluster', 14), e.EtcdUnhealthyCluster, e.EtcdUnreachable, 'unhealthy cluster'),
    (412, reply('etcdserver: re-configuration failed due to not enough started members', 9),
     e.EtcdNotEnoughStartedMembers, e.EtcdServerError, 'not enough started members'),
    (503, reply('etcdserver: no leader', 14), e.EtcdNoLeader, e.EtcdUnreachable, 'no leader'),
    (503, reply('etcdserver: leader changed', 14), e.EtcdLeaderChanged, e.EtcdUnreachable, 'leader changed'),
    (503, reply('etcdserver: request timed out', 14), e.EtcdRequestTimedOut, e.EtcdUnreachable, 'timed out'),
    (503, reply('etcdserver: request timed out, possibly due to previous leader failure', 14),
     e.EtcdRequestTimedOut, e.EtcdUnreachable, 'previous leader failure'),
    (429, reply('etcdserver: too many requests', 8), e.EtcdTooManyRequests, e.EtcdServerError, 'too many requests'),
    (400, reply('etcdserver: mvcc: required revision has been compacted', 11), e.EtcdCompacted, e.EtcdCompacted,
     'compacted'),
    (404, reply('etcdserver: requested lease not found', 5), e.EtcdNotFound, e.EtcdNotFound, 'lease not found'),
    (400, reply('etcdserver: duplicate key given in txn request', 3), e.EtcdInvalidArgument, e.EtcdInvalidArgument,
     'duplicate key'),
    (400, reply('etcdserver: mvcc: required revision is a future revision', 11), e.EtcdInvalidArgument,
     e.EtcdInvalidArgument, 'future revision'),
    (412, reply('etcdserver: root user does not exist', 9), e.EtcdServerError, e.EtcdServerError,
     'root user does not exist'),
    (500, None, e.EtcdServerError, e.EtcdServerError, 'HTTP status 500'),
]


@pytest.mark.parametrize('status, body, kind, broad, fragment', KINDS)
def test_error_from_reply_chooses_one_kind_and_keeps_the_cause(status, body, kind, broad, fragment):
    err = e.error_from_reply(EP, status, body)
    assert err.__class__ is kind
    assert isinstance(err, broad)
    assert e.reported_kind(err) == broad.__name__
    assert fragment in str(err)
    assert EP in str(err) and err.endpoint == EP


TRANSIENT = (e.EtcdUnhealthyCluster, e.EtcdNotEnoughStartedMembers, e.EtcdNoLeader, e.EtcdLeaderChanged,
             e.EtcdRequestTimedOut, e.EtcdTooManyRequests)


@pytest.mark.parametrize('status, body, kind, broad, fragment', KINDS)
def test_only_passing_refusals_are_transient(status, body, kind, broad, fragment):
    assert isinstance(e.error_from_reply(EP, status, body), e.EtcdTransient) == (kind in TRANSIENT)


def test_strict_reconfiguration_refusals():
    assert set(e.STRICT_RECONFIG_REFUSALS) == {e.EtcdUnhealthyCluster, e.EtcdNotEnoughStartedMembers}


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


def test_plain_http_against_a_tls_port_is_explained():
    err = e.error_from_reply('http://etcd-1:2379', 400, None, b'Client sent an HTTP request to an HTTPS server.\n')
    assert isinstance(err, e.EtcdTLSError) and 'use an https:// endpoint' in str(err)


def test_missing_gateway_path_is_explained():
    # etcd 3.4 answers /v3/auth/status (added in 3.5) like this.
    err = e.error_from_reply(EP, 404, None, b'Not Found\n')
    assert isinstance(err, e.EtcdNotImplemented) and err.code == 12 and 'etcd 3.4 or later' in str(err)
    assert e.reported_kind(err) == 'EtcdServerError'


def test_other_text_replies_keep_their_text():
    err = e.error_from_reply(EP, 502, None, b'Bad Gateway\n')
    assert isinstance(err, e.EtcdServerError) and 'Bad Gateway' in str(err)


def test_gateway_refusal_of_cn_certificates_is_explained():
    body = b'CommonName of client sending a request against gateway will be ignored and not used as expected\n'
    err = e.error_from_reply(EP, 400, None, body)
    assert isinstance(err, e.EtcdTLSError)
    assert 'client certificate without a CN' in str(err) and EP in str(err)


def test_hierarchy():
    assert issubclass(e.EtcdTLSError, e.EtcdConnectionError)
    assert issubclass(e.EtcdUnreachable, e.EtcdConnectionError)
    assert issubclass(e.EtcdConfigError, e.EtcdInvalidArgument)
    assert issubclass(e.EtcdConfigError, ValueError)
    assert e.EtcdKeyNotFound is e.EtcdNotFound
    for cls in (e.EtcdAuthError, e.EtcdPermissionDenied, e.EtcdCompacted, e.EtcdServerError, e.EtcdConnectionError,
                e.EtcdTransient):
        assert issubclass(cls, e.EtcdError)


def test_errors_the_client_builds_itself_report_their_own_kind():
    assert e.reported_kind(e.EtcdConfigError('x')) == 'EtcdConfigError'
    assert e.reported_kind(e.EtcdError('x')) == 'EtcdError'
