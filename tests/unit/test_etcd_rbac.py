import pytest

from ansible_collections.pgha.cluster.plugins.module_utils.etcd_errors import (
    EtcdAuthenticationFailed,
    EtcdInvalidArgument,
    EtcdInvalidAuthManagement,
    EtcdPermissionDenied,
    EtcdRoleNotFound,
    EtcdTokenRejected,
)
from ansible_collections.pgha.cluster.plugins.module_utils.etcd_rbac import (
    ADMIN_HINT,
    ROOT_PROTECTED_HINT,
    PermSpec,
    RbacSpecError,
    describe_range,
    explain_error,
    from_etcd,
    normalize_permission,
    normalize_permissions,
    normalize_roles,
    permission_to_dict,
    permissions_to_dicts,
    plan_permissions,
    plan_roles,
)
from ansible_collections.pgha.cluster.plugins.module_utils.etcd_types import Permission, permission_from_json


def entry(key, prefix=False, range_end=None, type='read'):  # noqa: A002 - the option's name
    return {'key': key, 'prefix': prefix, 'range_end': range_end, 'type': type}


# ---------------------------------------------------------------- normalisation

@pytest.mark.parametrize('raw, expected', [
    (entry('/service/x/', prefix=True, type='readwrite'), PermSpec(b'/service/x/', b'/service/x0', 'READWRITE')),
    (entry('/one/key'), PermSpec(b'/one/key', None, 'READ')),
    (entry('/a', range_end='/m', type='Write'), PermSpec(b'/a', b'/m', 'WRITE')),
    ({'key': '/k'}, PermSpec(b'/k', None, 'READ')),  # defaults when fields are left out
    ({'key': '/k', 'type': None, 'prefix': None, 'range_end': ''}, PermSpec(b'/k', None, 'READ')),
    (entry('/k', type=' READWRITE '), PermSpec(b'/k', None, 'READWRITE')),
    (entry('/a', range_end='\0'), PermSpec(b'/a', b'\0', 'READ')),  # every key from /a on
    (entry('/\u00e9t\u00e9/', prefix=True), PermSpec('/\u00e9t\u00e9/'.encode(), b'/\xc3\xa9t\xc3\xa90', 'READ')),
])
def test_normalize_permission(raw, expected):
    assert normalize_permission(raw) == expected


@pytest.mark.parametrize('raw, fragments', [
    (entry('/k', type='admin'), ["permissions[3] (key '/k')", "unknown permission type 'admin'", 'readwrite']),
    (entry('/k', type='rw'), ["unknown permission type 'rw'"]),
    (entry(''), ['permissions[3]', 'key must be a non-empty string']),
    ({'type': 'read'}, ['permissions[3]', 'key must be a non-empty string, not None']),
    (entry(5), ['key must be a non-empty string']),
    (entry('/k/', prefix=True, range_end='/l'), ["permissions[3] (key '/k/') sets both prefix and range_end"]),
    (entry('/m', range_end='/a'), ["range_end '/a' must sort after key '/m'"]),
    (entry('/m', range_end='/m'), ['must sort after key']),
    (entry('/k', prefix='yes'), ['prefix must be true or false']),
    (entry('/k', range_end=7), ['range_end must be a string']),
    ({'key': '/k', 'perm': 'read'}, ['unknown fields perm']),
    ('/k', ['permissions[3] must be a dict']),
])
def test_normalize_permission_refuses_with_the_entry_named(raw, fragments):
    with pytest.raises(RbacSpecError) as excinfo:
        normalize_permission(raw, 3)
    for fragment in fragments:
        assert fragment in str(excinfo.value)


def test_normalize_permissions_sorts_and_merges_repeats():
    specs = normalize_permissions([
        entry('/z'),
        entry('/a/', prefix=True, type='READWRITE'),
        entry('/a/', prefix=True, type='readwrite'),  # same range, same type: kept once
        entry('/a/', range_end='/a0', type='readwrite'),  # the same range written explicitly
    ])
    assert specs == [PermSpec(b'/a/', b'/a0', 'READWRITE'), PermSpec(b'/z', None, 'READ')]
    assert normalize_permissions([]) == []
    assert normalize_permissions(None) is None


def test_normalize_permissions_refuses_one_range_with_two_types():
    with pytest.raises(RbacSpecError) as excinfo:
        normalize_permissions([entry('/x'), entry('/a/', prefix=True), entry('/a/', range_end='/a0', type='write')])
    message = str(excinfo.value)
    assert "permissions[1] (key '/a/') and permissions[2] (key '/a/')" in message
    assert "prefix '/a/'" in message and '(read, write)' in message


def test_a_single_key_and_a_prefix_on_it_are_different_ranges():
    specs = normalize_permissions([entry('/a'), entry('/a', prefix=True, type='write')])
    assert specs == [PermSpec(b'/a', None, 'READ'), PermSpec(b'/a', b'/b', 'WRITE')]


def test_normalize_permissions_needs_a_list():
    with pytest.raises(RbacSpecError, match='must be a list'):
        normalize_permissions({'key': '/a'})


# ---------------------------------------------------------------- etcd's view and display

def test_from_etcd_reads_what_the_client_returns():
    perm = permission_from_json({'permType': 'READWRITE', 'key': 'L3NlcnZpY2UveC8=', 'range_end': 'L3NlcnZpY2UveDA='})
    assert from_etcd(perm) == PermSpec(b'/service/x/', b'/service/x0', 'READWRITE')
    # etcd omits permType for READ (its zero value) and range_end for a single key.
    assert from_etcd(permission_from_json({'key': 'L2s='})) == PermSpec(b'/k', None, 'READ')
    assert from_etcd(Permission('write', b'/k', b'')) == PermSpec(b'/k', None, 'WRITE')


@pytest.mark.parametrize('spec, shown, words', [
    (PermSpec(b'/service/x/', b'/service/x0', 'READWRITE'),
     {'key': '/service/x/', 'prefix': True, 'range_end': None, 'type': 'readwrite'}, "prefix '/service/x/'"),
    (PermSpec(b'/k', None, 'READ'), {'key': '/k', 'prefix': False, 'range_end': None, 'type': 'read'}, "key '/k'"),
    (PermSpec(b'/a', b'/m', 'WRITE'), {'key': '/a', 'prefix': False, 'range_end': '/m', 'type': 'write'},
     "range ['/a', '/m')"),
    (PermSpec(b'\0', b'\0', 'READ'), {'key': '\0', 'prefix': False, 'range_end': '\0', 'type': 'read'}, 'every key'),
])
def test_display(spec, shown, words):
    assert permission_to_dict(spec) == shown
    assert describe_range(spec) == words
    # What is shown can be given back as input and means the same permission.
    assert normalize_permission(shown) == spec


def test_permissions_to_dicts_is_sorted():
    out = permissions_to_dicts([PermSpec(b'/b', None, 'READ'), PermSpec(b'/a', None, 'READ')])
    assert [d['key'] for d in out] == ['/a', '/b']


# ---------------------------------------------------------------- planning

P_X = PermSpec(b'/service/x/', b'/service/x0', 'READWRITE')
P_LB = PermSpec(b'/pgha/lb/x/', b'/pgha/lb/x0', 'READ')
P_K = PermSpec(b'/k', None, 'WRITE')


def test_plan_from_nothing_grants_everything():
    plan = plan_permissions([], [P_X, P_LB])
    assert plan.grant == [P_LB, P_X] and plan.revoke == [] and plan.after == [P_LB, P_X]


def test_plan_when_in_sync_does_nothing():
    plan = plan_permissions([P_X, P_LB], [P_LB, P_X])
    assert plan.grant == [] and plan.revoke == [] and plan.after == [P_LB, P_X]


def test_plan_type_change_is_a_grant_not_a_revoke():
    current = [P_X._replace(perm_type='READ')]
    plan = plan_permissions(current, [P_X])
    assert plan.grant == [P_X] and plan.revoke == [] and plan.after == [P_X]


def test_plan_exclusive_revokes_extras():
    plan = plan_permissions([P_X, P_K], [P_X])
    assert plan.grant == [] and plan.revoke == [P_K] and plan.after == [P_X]
    plan = plan_permissions([P_X, P_K], [])
    assert plan.revoke == [P_K, P_X] and plan.after == []


def test_plan_not_exclusive_keeps_extras():
    plan = plan_permissions([P_K], [P_X], exclusive=False)
    assert plan.grant == [P_X] and plan.revoke == [] and plan.after == [P_K, P_X]
    plan = plan_permissions([P_K], [P_K._replace(perm_type='READ')], exclusive=False)
    assert plan.grant == [P_K._replace(perm_type='READ')] and plan.after == [P_K._replace(perm_type='READ')]


def test_plan_without_desired_permissions_leaves_them_alone():
    plan = plan_permissions([P_K, P_X], None)
    assert plan.grant == [] and plan.revoke == [] and plan.after == [P_K, P_X]


def test_roles_exact_set():
    plan = plan_roles(['b', 'old'], ['a', 'b'])
    assert plan == (['a'], ['old'], ['a', 'b'])


def test_roles_append_keeps_others():
    plan = plan_roles(['b', 'old'], ['a', 'b'], append=True)
    assert plan == (['a'], [], ['a', 'b', 'old'])


def test_roles_not_given_are_left_alone():
    assert plan_roles(['x'], None) == ([], [], ['x'])
    assert plan_roles(['x'], [], append=True) == ([], [], ['x'])
    assert plan_roles(['x'], []) == ([], ['x'], [])


def test_normalize_roles():
    assert normalize_roles(['b', 'a', 'b']) == ['a', 'b']
    assert normalize_roles(None) is None
    with pytest.raises(RbacSpecError, match=r'roles\[1\]: a role name must be a non-empty string'):
        normalize_roles(['a', ' '])


# ---------------------------------------------------------------- error hints

def test_root_protection_is_explained():
    exc = EtcdInvalidAuthManagement('etcd at x rejected the request: invalid auth management',
                                    cause='etcdserver: invalid auth management')
    assert str(explain_error(exc)).endswith('(%s)' % ROOT_PROTECTED_HINT)
    assert 'pgha.cluster.etcd_auth' in str(exc)
    assert ROOT_PROTECTED_HINT not in str(explain_error(EtcdInvalidArgument('etcd at x: role name is empty')))


def test_admin_hint_only_on_permission_problems():
    denied = explain_error(EtcdPermissionDenied('etcd at x: permission denied'))
    assert str(denied) == 'etcd at x: permission denied (%s)' % ADMIN_HINT
    assert str(explain_error(denied)).count(ADMIN_HINT) == 1
    anonymous = explain_error(EtcdTokenRejected('etcd at x: authentication required (user name is empty)'))
    assert ADMIN_HINT in str(anonymous)
    wrong = explain_error(EtcdAuthenticationFailed('etcd at x: authentication failed: wrong username or password'))
    assert ADMIN_HINT not in str(wrong)
    assert ADMIN_HINT not in str(explain_error(EtcdRoleNotFound('etcd at x: role name not found')))
