"""pgha.cluster.etcd_role, etcd_user and etcd_auth against REAL etcd 3.4.

Every test runs on a private cluster (they create users and roles, and switch
authentication on and off), mostly one member with JWT tokens and auth off at
start, as the etcd role finds a fresh cluster. What the modules did is checked
with etcdctl and by using the users they created with our client.
"""

import re
import secrets

import pytest
from ansible.module_utils import basic
from ansible.module_utils.common.warnings import get_warning_messages

from module_runner import connection_args, run_module
from collection_client import client_for
from playbook_runner import run_playbook

from ansible_collections.pgha.cluster.plugins.module_utils.etcd_errors import EtcdAuthError, EtcdPermissionDenied

ROOT_PW = "Root-pw-" + secrets.token_hex(4)
UNREACHABLE = ["http://127.0.0.1:1"]  # nothing listens: any request would fail with "unreachable"


@pytest.fixture(autouse=True)
def module_profile(monkeypatch):
    """ansible-core 2.19's AnsibleModule also needs a serialization profile next to its arguments."""
    if getattr(basic, "_ANSIBLE_PROFILE", "legacy") is None:
        monkeypatch.setattr(basic, "_ANSIBLE_PROFILE", "legacy")


@pytest.fixture
def fresh(etcd_cluster_factory):
    """One plain member, JWT tokens configured, authentication off, no users or roles."""
    return etcd_cluster_factory(size=1, tls=False, auth=False, jwt=True, token_ttl=30, name="rbac")


@pytest.fixture
def fresh_tls(etcd_cluster_factory):
    """One TLS member with client-cert-auth, JWT tokens, authentication off, no users or roles."""
    return etcd_cluster_factory(size=1, tls=True, auth=False, jwt=True, token_ttl=30, name="rbactls")


def conn(cluster, user=None, password=None):
    """Connection options: TLS files of the cluster, and credentials only when given."""
    args = connection_args(cluster, user=None, timeout=3)
    if user is not None:
        args.update(username=user, password=password if password is not None else ROOT_PW)
    return args


def mod(module_name, cluster, *, as_user=None, as_password=None, check=False, diff=True, **args):
    """Run pgha.cluster.<module_name> on ``cluster``; ``as_user`` logs in (root: ROOT_PW by default)."""
    return run_module(module_name, dict(conn(cluster, as_user, as_password), **args), check_mode=check, diff=diff)


def ok(result, changed):
    assert not result.get("failed"), result.get("msg")
    assert result["changed"] is changed, result
    return result


def ctl(cluster, *args, **kw):
    """etcdctl as root once the test enabled auth (pass user=None before)."""
    kw.setdefault("user", "root")
    if kw["user"] == "root":
        kw.setdefault("password", ROOT_PW)
    return cluster.etcdctl(*args, **kw)


def role_lines(cluster, role, **kw):
    """etcdctl's view of a role: (read ranges, write ranges) as lists of lines."""
    out = ctl(cluster, "role", "get", role, **kw)
    read_part, write_part = out.split("KV Write:")
    return _indented(read_part), _indented(write_part)


def _indented(text):
    # etcdctl prints one permission per line, indented, under its "KV Read:" / "KV Write:" header.
    return sorted(line.strip() for line in text.splitlines() if line[:1].isspace() and line.strip())


def user_roles(cluster, name, **kw):
    out = ctl(cluster, "user", "get", name, **kw)
    match = re.search(r"^Roles:(.*)$", out, re.M)
    return sorted(match.group(1).split()) if match else []


def can_login(cluster, user, password):
    """True when ``user`` logs in with ``password`` (and may read /service/x/k); False on a wrong password."""
    client = client_for(cluster, user=user, password=password)
    try:
        client.get("/service/x/k")
        return True
    except EtcdAuthError as exc:
        assert "wrong username or password" in str(exc)
        return False
    finally:
        client.close()


def bootstrap_root(cluster):
    """Root user and role through the modules, auth still off."""
    ok(mod("etcd_role", cluster, name="root"), True)
    ok(mod("etcd_user", cluster, name="root", user_password=ROOT_PW, roles=["root"]), True)


def enable_auth(cluster):
    bootstrap_root(cluster)
    ok(mod("etcd_auth", cluster, state="enabled"), True)


def prefix_range(prefix):
    return "[%s, %s0) (prefix %s)" % (prefix, prefix.rstrip("/"), prefix)


PATRONI_PERMS = [{"key": "/service/x/", "prefix": True, "type": "readwrite"}]
LB_PERMS = [{"key": "/service/x/", "prefix": True}, {"key": "/pgha/lb/x/", "prefix": True, "type": "READ"}]


# ---------------------------------------------------------------------------
# the bootstrap flow of the etcd role
# ---------------------------------------------------------------------------

def test_bootstrap_flow_then_everything_needs_root(fresh_tls):
    cluster = fresh_tls
    patroni_pw, lb_pw = "patroni-" + secrets.token_hex(4), "lb-" + secrets.token_hex(4)
    steps = [
        ("etcd_role", dict(name="root")),
        ("etcd_user", dict(name="root", user_password=ROOT_PW, roles=["root"])),
        ("etcd_role", dict(name="patroni-x", permissions=PATRONI_PERMS)),
        ("etcd_user", dict(name="patroni-x", user_password=patroni_pw, roles=["patroni-x"])),
        ("etcd_role", dict(name="lb-x", permissions=LB_PERMS)),
        ("etcd_user", dict(name="lb-x", user_password=lb_pw, roles=["lb-x"])),
    ]
    for module_name, args in steps:
        first = ok(mod(module_name, cluster, **args), True)
        ok(mod(module_name, cluster, **args), False)  # a second run changes nothing
    assert first["user"] == "lb-x" and first["roles"] == ["lb-x"] and first["password_changed"] is True

    role = ok(mod("etcd_role", cluster, name="lb-x", permissions=LB_PERMS), False)
    assert role["permissions"] == [
        {"key": "/pgha/lb/x/", "prefix": True, "range_end": None, "type": "read"},
        {"key": "/service/x/", "prefix": True, "range_end": None, "type": "read"},
    ]
    assert role["granted"] == [] and role["revoked"] == []

    # etcdctl sees what the modules made.
    assert role_lines(cluster, "patroni-x", user=None) == ([prefix_range("/service/x/")],
                                                           [prefix_range("/service/x/")])
    assert role_lines(cluster, "lb-x", user=None) == (
        sorted([prefix_range("/service/x/"), prefix_range("/pgha/lb/x/")]), [])
    assert user_roles(cluster, "root", user=None) == ["root"]
    assert user_roles(cluster, "patroni-x", user=None) == ["patroni-x"]

    # Enable authentication: check mode first (nothing happens), then for real, then again.
    result = ok(mod("etcd_auth", cluster, state="enabled", check=True), True)
    assert result["diff"] == {"before": {"auth_enabled": False}, "after": {"auth_enabled": True}}
    assert cluster.etcdctl("put", "/open", "still", user=None).strip() == "OK"
    ok(mod("etcd_auth", cluster, state="enabled"), True)
    ok(mod("etcd_auth", cluster, state="enabled"), False)
    ok(mod("etcd_auth", cluster, state="enabled", as_user="root"), False)
    res = cluster.etcdctl_run("get", "/open", user=None)
    assert res.returncode != 0 and "permission denied" in res.stderr

    # From now on the modules need root's credentials, and with them nothing is to do.
    failed = mod("etcd_role", cluster, name="patroni-x", permissions=PATRONI_PERMS)
    assert failed["failed"] and "authentication is enabled" in failed["msg"]
    assert "set username (e.g. root) and password" in failed["msg"]
    for module_name, args in steps:
        failed = mod(module_name, cluster, state="absent", **args)  # nothing is "already absent"
        assert failed["failed"] and "no credentials were given" in failed["msg"], failed
    for module_name, args in steps:
        ok(mod(module_name, cluster, as_user="root", **args), False)

    # The users work, each limited to its keys.
    patroni = client_for(cluster, user="patroni-x", password=patroni_pw)
    lb = client_for(cluster, user="lb-x", password=lb_pw)
    try:
        patroni.put("/service/x/leader", "pg-1")
        with pytest.raises(EtcdPermissionDenied):
            patroni.put("/service/y/leader", "pg-1")
        with pytest.raises(EtcdPermissionDenied):
            patroni.get("/pgha/lb/x/config")
        assert lb.get("/service/x/leader").value == b"pg-1"
        assert lb.get("/pgha/lb/x/config") is None  # allowed, just absent
        with pytest.raises(EtcdPermissionDenied):
            lb.put("/service/x/leader", "evil")
        with pytest.raises(EtcdPermissionDenied):
            lb.user_list()
        with pytest.raises(EtcdAuthError, match="wrong username or password"):
            client_for(cluster, user="lb-x", password=patroni_pw).get("/service/x/leader")
    finally:
        patroni.close()
        lb.close()
    assert cluster.etcdctl("get", "/service/x/leader", "--print-value-only", user="lb-x",
                           password=lb_pw).strip() == "pg-1"


# ---------------------------------------------------------------------------
# etcd_role
# ---------------------------------------------------------------------------

def test_role_check_mode_and_diff_change_nothing(fresh):
    cluster = fresh
    result = ok(mod("etcd_role", cluster, check=True, name="app", permissions=PATRONI_PERMS), True)
    assert result["diff"] == {
        "before": {"state": "absent"},
        "after": {"state": "present", "permissions": [
            {"key": "/service/x/", "prefix": True, "range_end": None, "type": "readwrite"}]},
    }
    assert result["granted"] == result["permissions"] and result["revoked"] == []
    assert "app" not in ctl(cluster, "role", "list", user=None).split()

    ok(mod("etcd_role", cluster, name="app", permissions=PATRONI_PERMS), True)
    result = ok(mod("etcd_role", cluster, check=True, name="app",
                    permissions=[{"key": "/other", "type": "write"}]), True)
    assert result["revoked"] == [{"key": "/service/x/", "prefix": True, "range_end": None, "type": "readwrite"}]
    assert result["permissions"] == [{"key": "/other", "prefix": False, "range_end": None, "type": "write"}]
    result = ok(mod("etcd_role", cluster, check=True, name="app", state="absent"), True)
    assert result["diff"]["after"] == {"state": "absent"}
    assert role_lines(cluster, "app", user=None) == ([prefix_range("/service/x/")], [prefix_range("/service/x/")])


def test_role_type_change_exclusive_and_non_exclusive(fresh):
    cluster = fresh
    perms = [
        {"key": "/a/", "prefix": True, "type": "read"},
        {"key": "/single", "type": "write"},
        {"key": "/r/a", "range_end": "/r/m", "type": "readwrite"},
    ]
    ok(mod("etcd_role", cluster, name="app", permissions=perms), True)
    ok(mod("etcd_role", cluster, name="app", permissions=list(reversed(perms))), False)  # order does not matter

    # read -> readwrite on one range, the others kept (exclusive=false).
    result = ok(mod("etcd_role", cluster, name="app", exclusive=False,
                    permissions=[{"key": "/a/", "prefix": True, "type": "ReadWrite"}]), True)
    assert result["granted"] == [{"key": "/a/", "prefix": True, "range_end": None, "type": "readwrite"}]
    assert result["revoked"] == []
    assert [p["type"] for p in result["permissions"]] == ["readwrite", "readwrite", "write"]
    assert result["diff"]["before"]["permissions"][0]["type"] == "read"
    assert result["diff"]["after"]["permissions"][0]["type"] == "readwrite"
    reads, writes = role_lines(cluster, "app", user=None)
    assert prefix_range("/a/") in reads and prefix_range("/a/") in writes
    assert "[/r/a, /r/m)" in reads and "/single" in writes
    ok(mod("etcd_role", cluster, name="app", exclusive=False,
           permissions=[{"key": "/a/", "prefix": True, "type": "readwrite"}]), False)

    # exclusive (the default): what is not listed goes.
    result = ok(mod("etcd_role", cluster, name="app", permissions=[{"key": "/a/", "prefix": True,
                                                                    "type": "readwrite"}]), True)
    assert [p["key"] for p in result["revoked"]] == ["/r/a", "/single"]
    assert result["revoked"][0]["range_end"] == "/r/m"
    assert role_lines(cluster, "app", user=None) == ([prefix_range("/a/")], [prefix_range("/a/")])

    # No permissions given: left alone. An empty list: all revoked.
    ok(mod("etcd_role", cluster, name="app"), False)
    result = ok(mod("etcd_role", cluster, name="app", permissions=[]), True)
    assert result["permissions"] == [] and len(result["revoked"]) == 1
    assert role_lines(cluster, "app", user=None) == ([], [])

    result = ok(mod("etcd_role", cluster, name="app", state="absent"), True)
    assert result["permissions"] == []
    ok(mod("etcd_role", cluster, name="app", state="absent"), False)
    assert "app" not in ctl(cluster, "role", "list", user=None).split()


def test_role_permissions_made_by_etcdctl_are_understood(fresh):
    cluster = fresh
    cluster.etcdctl("role", "add", "ext", user=None)
    cluster.etcdctl("role", "grant-permission", "ext", "readwrite", "/service/x/", "--prefix=true", user=None)
    cluster.etcdctl("role", "grant-permission", "ext", "read", "/k", user=None)
    ok(mod("etcd_role", cluster, name="ext", permissions=[
        {"key": "/k"}, {"key": "/service/x/", "range_end": "/service/x0", "type": "readwrite"}]), False)


def test_root_role_permissions_are_not_managed(fresh):
    cluster = fresh
    failed = mod("etcd_role", cluster, name="root", permissions=[{"key": "/a"}])
    assert failed["failed"] and "built-in role 'root'" in failed["msg"]
    assert "root" not in ctl(cluster, "role", "list", user=None).split()
    ok(mod("etcd_role", cluster, name="root"), True)
    ok(mod("etcd_role", cluster, name="root"), False)


BAD_PERMISSIONS = {
    "unknown-type": ([{"key": "/ok/", "prefix": True}, {"key": "/k", "type": "admin"}],
                     ["permissions[1] (key '/k')", "unknown permission type 'admin'", "read, write or readwrite"]),
    "empty-key": ([{"key": ""}], ["permissions[0]", "key must be a non-empty string"]),
    "prefix-and-range-end": ([{"key": "/k/", "prefix": True, "range_end": "/l"}],
                             ["permissions[0] (key '/k/') sets both prefix and range_end"]),
    "backwards-range": ([{"key": "/m", "range_end": "/a"}], ["range_end '/a' must sort after key '/m'"]),
    "two-types": ([{"key": "/k/", "prefix": True}, {"key": "/k/", "prefix": True, "type": "write"}],
                  ["permissions[0] (key '/k/') and permissions[1] (key '/k/')", "different types (read, write)"]),
}


@pytest.mark.parametrize("case", sorted(BAD_PERMISSIONS))
def test_role_bad_permissions_fail_before_any_request(case):
    permissions, fragments = BAD_PERMISSIONS[case]
    # Nothing listens at the endpoint: a request would have failed with "unreachable".
    failed = run_module("etcd_role", dict(endpoints=UNREACHABLE, name="app", permissions=permissions))
    assert failed["failed"]
    for fragment in fragments:
        assert fragment in failed["msg"]
    assert "unreachable" not in failed["msg"].lower()


def test_role_bad_permissions_create_nothing(fresh):
    for permissions, fragments in BAD_PERMISSIONS.values():
        failed = mod("etcd_role", fresh, name="app", permissions=permissions)
        assert failed["failed"] and fragments[0] in failed["msg"]
    assert ctl(fresh, "role", "list", user=None).split() == []


def test_role_unknown_suboption_is_refused(fresh):
    failed = mod("etcd_role", fresh, name="app", permissions=[{"key": "/a", "perm": "read"}])
    assert failed["failed"] and "perm" in failed["msg"]
    assert ctl(fresh, "role", "list", user=None).split() == []


# ---------------------------------------------------------------------------
# etcd_user
# ---------------------------------------------------------------------------

def test_user_roles_exact_append_and_missing_roles(fresh):
    cluster = fresh
    for role in ("a", "b", "c"):
        ok(mod("etcd_role", cluster, name=role), True)

    result = ok(mod("etcd_user", cluster, check=True, name="app", user_password="pw-1", roles=["a", "b"]), True)
    assert result["diff"] == {"before": {"state": "absent"},
                              "after": {"state": "present", "roles": ["a", "b"], "password": "(set)"}}
    assert "app" not in ctl(cluster, "user", "list", user=None).split()

    ok(mod("etcd_user", cluster, name="app", user_password="pw-1", roles=["b", "a", "a"]), True)
    assert user_roles(cluster, "app", user=None) == ["a", "b"]

    result = ok(mod("etcd_user", cluster, name="app", roles=["b", "c"], append=True), True)
    assert (result["granted"], result["revoked"], result["roles"]) == (["c"], [], ["a", "b", "c"])
    assert result["password_changed"] is False and "password" not in result["diff"]["after"]
    ok(mod("etcd_user", cluster, name="app", roles=["c"], append=True), False)
    assert user_roles(cluster, "app", user=None) == ["a", "b", "c"]

    result = ok(mod("etcd_user", cluster, check=True, name="app", roles=["c"]), True)
    assert result["revoked"] == ["a", "b"]
    assert user_roles(cluster, "app", user=None) == ["a", "b", "c"]
    result = ok(mod("etcd_user", cluster, name="app", roles=["c"]), True)
    assert result["diff"] == {"before": {"state": "present", "roles": ["a", "b", "c"]},
                              "after": {"state": "present", "roles": ["c"]}}
    assert user_roles(cluster, "app", user=None) == ["c"]
    ok(mod("etcd_user", cluster, name="app"), False)  # roles not given: left alone
    assert user_roles(cluster, "app", user=None) == ["c"]

    # A role that does not exist: refused before anything changes (a new user is not created).
    failed = mod("etcd_user", cluster, name="app", roles=["c", "nope", "nada"])
    assert failed["failed"] and "nada, nope do not exist" in failed["msg"] and "etcd_role" in failed["msg"]
    failed = mod("etcd_user", cluster, name="newbie", user_password="pw", roles=["nope"])
    assert failed["failed"] and "nothing was changed" in failed["msg"]
    assert ctl(cluster, "user", "list", user=None).split() == ["app"]
    result = ok(mod("etcd_user", cluster, check=True, name="newbie", user_password="pw", roles=["nope"]), True)
    assert any("nope do not exist" in w for w in get_warning_messages())

    ok(mod("etcd_user", cluster, name="app", roles=[]), True)
    assert user_roles(cluster, "app", user=None) == []

    ok(mod("etcd_user", cluster, check=True, name="app", state="absent"), True)
    assert "app" in ctl(cluster, "user", "list", user=None).split()
    result = ok(mod("etcd_user", cluster, name="app", state="absent"), True)
    assert result["diff"]["after"] == {"state": "absent"}
    ok(mod("etcd_user", cluster, name="app", state="absent"), False)
    assert ctl(cluster, "user", "list", user=None).split() == []


def test_user_needs_a_password_to_be_created(fresh):
    cluster = fresh
    failed = mod("etcd_user", cluster, name="app")
    assert failed["failed"] and "no user_password was given" in failed["msg"]
    failed = mod("etcd_user", cluster, name="app", user_password="Pw-4711", no_password=True)
    assert failed["failed"] and "exclude each other" in failed["msg"] and "Pw-4711" not in repr(failed)
    assert ctl(cluster, "user", "list", user=None).split() == []
    result = ok(mod("etcd_user", cluster, name="certonly", no_password=True), True)
    assert result["password_changed"] is False
    ok(mod("etcd_user", cluster, name="certonly", no_password=True), False)
    assert "User: certonly" in ctl(cluster, "user", "get", "certonly", user=None)


def test_password_rotation_with_auth_enabled(fresh_tls):
    cluster = fresh_tls
    old_pw, new_pw = "old-" + secrets.token_hex(4), "new-" + secrets.token_hex(4)
    ok(mod("etcd_role", cluster, name="app", permissions=PATRONI_PERMS), True)
    ok(mod("etcd_user", cluster, name="app", user_password=old_pw, roles=["app"]), True)
    enable_auth(cluster)

    # The right password: nothing to do, whatever update_password says.
    ok(mod("etcd_user", cluster, as_user="root", name="app", user_password=old_pw, update_password="always"), False)
    # on_create never touches an existing user's password.
    result = ok(mod("etcd_user", cluster, as_user="root", name="app", user_password=new_pw), False)
    assert result["password_changed"] is False
    assert can_login(cluster, "app", old_pw)

    result = ok(mod("etcd_user", cluster, as_user="root", check=True, name="app", user_password=new_pw,
                    update_password="always"), True)
    assert result["password_changed"] is True
    assert can_login(cluster, "app", old_pw) and not can_login(cluster, "app", new_pw)  # still the old one

    result = ok(mod("etcd_user", cluster, as_user="root", name="app", user_password=new_pw,
                    update_password="always"), True)
    assert result["password_changed"] is True
    assert result["diff"] == {"before": {"state": "present", "roles": ["app"], "password": "(not shown)"},
                              "after": {"state": "present", "roles": ["app"], "password": "(changed)"}}
    assert new_pw not in repr(result) and old_pw not in repr(result)
    assert not can_login(cluster, "app", old_pw) and can_login(cluster, "app", new_pw)
    res = cluster.etcdctl_run("get", "/service/x/k", user="app", password=old_pw)
    assert res.returncode != 0 and "authentication failed" in res.stderr
    ok(mod("etcd_user", cluster, as_user="root", name="app", user_password=new_pw, update_password="always"), False)

    # root can rotate its own password in the task that logs in with it.
    root_new = "root-new-" + secrets.token_hex(4)
    ok(mod("etcd_user", cluster, as_user="root", name="root", user_password=root_new, roles=["root"],
           update_password="always"), True)
    ok(mod("etcd_user", cluster, as_user="root", as_password=root_new, name="root", user_password=root_new,
           roles=["root"], update_password="always"), False)
    failed = mod("etcd_user", cluster, as_user="root", name="app")
    assert failed["failed"] and "wrong username or password" in failed["msg"]


def test_update_password_always_without_auth_changes_every_time(fresh):
    # etcd cannot check a password while authentication is off: documented, the module sets it each run.
    cluster = fresh
    ok(mod("etcd_user", cluster, name="app", user_password="pw-1"), True)
    for dummy in range(2):
        result = ok(mod("etcd_user", cluster, name="app", user_password="pw-2", update_password="always"), True)
        assert result["password_changed"] is True
    ok(mod("etcd_user", cluster, name="app", user_password="pw-3"), False)  # on_create


# ---------------------------------------------------------------------------
# etcd_auth, credentials and permissions
# ---------------------------------------------------------------------------

def test_auth_enable_refused_without_root(fresh):
    cluster = fresh
    failed = mod("etcd_auth", cluster, state="enabled")
    assert failed["failed"] and failed["auth_enabled"] is False
    assert "no user 'root'" in failed["msg"] and "pgha.cluster.etcd_user" in failed["msg"]
    assert "Nothing was changed" in failed["msg"]
    result = ok(mod("etcd_auth", cluster, state="enabled", check=True), True)
    assert result["auth_enabled"] is True
    assert any("enabling authentication would fail now" in w for w in get_warning_messages())

    ok(mod("etcd_role", cluster, name="root"), True)
    ok(mod("etcd_user", cluster, name="root", user_password=ROOT_PW), True)  # no role yet
    failed = mod("etcd_auth", cluster, state="enabled")
    assert failed["failed"] and "does not hold role 'root'" in failed["msg"]
    # Authentication is still off.
    assert client_for(cluster, user=None).auth_status() is False
    assert cluster.etcdctl("put", "/open", "1", user=None).strip() == "OK"
    ok(mod("etcd_auth", cluster, state="disabled"), False)


def test_auth_disable_needs_root_credentials(fresh):
    cluster = fresh
    enable_auth(cluster)
    ok(mod("etcd_role", cluster, as_user="root", name="reader", permissions=[{"key": "/k"}]), True)
    ok(mod("etcd_user", cluster, as_user="root", name="reader", user_password="reader-pw", roles=["reader"]), True)

    failed = mod("etcd_auth", cluster, state="disabled")
    assert failed["failed"] and "set username and password" in failed["msg"]
    failed = mod("etcd_auth", cluster, state="disabled", as_user="reader", as_password="reader-pw")
    assert failed["failed"] and "permission denied" in failed["msg"] and "root role" in failed["msg"]
    failed = mod("etcd_auth", cluster, state="disabled", as_user="root", as_password="wrong")
    assert failed["failed"] and "wrong username or password" in failed["msg"]
    assert failed["error_type"] == "EtcdAuthError"
    result = ok(mod("etcd_auth", cluster, state="disabled", as_user="root", check=True), True)
    assert result["diff"] == {"before": {"auth_enabled": True}, "after": {"auth_enabled": False}}
    assert client_for(cluster, user=None).auth_status() is True

    # root stays root while authentication is on: etcd refuses, the message says what to do.
    for module_name, args in (("etcd_user", dict(name="root", state="absent")),
                              ("etcd_user", dict(name="root", roles=[])),
                              ("etcd_role", dict(name="root", state="absent"))):
        failed = mod(module_name, cluster, as_user="root", **args)
        assert failed["failed"] and "invalid auth management" in failed["msg"], failed
        assert "disable authentication first with pgha.cluster.etcd_auth" in failed["msg"]
    assert user_roles(cluster, "root") == ["root"]

    ok(mod("etcd_auth", cluster, state="disabled", as_user="root"), True)
    ok(mod("etcd_auth", cluster, state="disabled"), False)
    assert cluster.etcdctl("put", "/open", "1", user=None).strip() == "OK"


def test_wrong_credentials_and_non_root_user(fresh_tls):
    cluster = fresh_tls
    enable_auth(cluster)
    ok(mod("etcd_role", cluster, as_user="root", name="app", permissions=PATRONI_PERMS), True)
    ok(mod("etcd_user", cluster, as_user="root", name="app", user_password="app-pw", roles=["app"]), True)

    failed = mod("etcd_role", cluster, as_user="root", as_password="not-it", name="new")
    assert failed["failed"] and "wrong username or password" in failed["msg"]
    assert failed["endpoint"] == cluster.endpoints[0]
    failed = mod("etcd_role", cluster, as_user="app", as_password="app-pw", name="new")
    assert failed["failed"] and "permission denied" in failed["msg"] and "root" in failed["msg"]
    failed = mod("etcd_user", cluster, as_user="app", as_password="app-pw", name="other", user_password="x-pw")
    assert failed["failed"] and "permission denied" in failed["msg"]
    assert "x-pw" not in failed["msg"]
    assert ctl(cluster, "role", "list").split() == ["app", "root"]
    assert ctl(cluster, "user", "list").split() == ["app", "root"]


# ---------------------------------------------------------------------------
# through ansible-playbook: the password never shows
# ---------------------------------------------------------------------------

def test_playbook_with_diff_and_vvv_never_shows_passwords(fresh_tls):
    cluster = fresh_tls
    secret = "Pl4ybook-" + secrets.token_hex(8)
    rotated = "R0tated-" + secrets.token_hex(8)
    # Passwords come from variables, as in real playbooks (Ansible shows task source lines on errors).
    defaults = dict(conn(cluster, "root"), password="{{ root_pw }}")
    tasks = [
        {"name": "root role", "pgha.cluster.etcd_role": {"name": "root"}},
        {"name": "root user", "pgha.cluster.etcd_user": {"name": "root", "user_password": "{{ root_pw }}",
                                                         "roles": ["root"]}},
        {"name": "app role", "pgha.cluster.etcd_role": {"name": "app", "permissions": PATRONI_PERMS}},
        {"name": "app user", "pgha.cluster.etcd_user": {"name": "app", "user_password": "{{ app_pw }}",
                                                        "roles": ["app"]}},
        {"name": "enable auth", "pgha.cluster.etcd_auth": {"state": "enabled"}},
        {"name": "app user again", "pgha.cluster.etcd_user": {"name": "app", "user_password": "{{ app_pw }}",
                                                              "update_password": "always"},
         "register": "again"},
        {"name": "rotate", "pgha.cluster.etcd_user": {"name": "app", "user_password": "{{ rotated_pw }}",
                                                      "update_password": "always"},
         "register": "rotation"},
        {"name": "a user that cannot be made", "pgha.cluster.etcd_user": {
            "name": "other", "user_password": "{{ app_pw }}", "roles": ["no-such-role"]},
         "ignore_errors": True, "register": "bad"},
        {"name": "results", "ansible.builtin.assert": {"that": [
            "again is not changed", "rotation is changed", "rotation.password_changed",
            "bad is failed"]}},
    ]
    play = [{"hosts": "localhost", "connection": "local", "gather_facts": False,
             "module_defaults": {"group/pgha.cluster.etcd": defaults}, "tasks": tasks}]
    run = run_playbook(play, diff=True, verbosity=3,
                       extra_vars={"root_pw": ROOT_PW, "app_pw": secret, "rotated_pw": rotated})
    assert run.rc == 0, run.output[-3000:]
    assert run.recap["localhost"]["changed"] == 6 and run.recap["localhost"]["failed"] == 0, run.recap
    assert "(changed)" in run.output  # the diff is shown ...
    for password in (secret, rotated, ROOT_PW):
        assert password not in run.output  # ... but never a password
    assert can_login(cluster, "app", rotated) and not can_login(cluster, "app", secret)
