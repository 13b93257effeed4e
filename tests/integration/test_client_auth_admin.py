"""The etcd client's authentication management against real etcd 3.4.

Users, roles, permissions and auth enable/disable run on private clusters
(TLS with client-cert-auth, JWT tokens, NO auth at start: each test lays out
its own RBAC through the client under test).  What the client created is
checked with etcdctl and with the PyPI etcd3 library's gRPC Auth service.
Read-only RBAC checks use the shared ``etcd_tls`` cluster and its users
(``patroni-demo``: readwrite on /service/demo/, ``lb-demo``: read).
"""

import re

import pytest

from ansible_collections.pgha.cluster.plugins.module_utils.etcd_client import EtcdClient
from ansible_collections.pgha.cluster.plugins.module_utils.etcd_errors import (
    EtcdAuthError,
    EtcdError,
    EtcdInvalidArgument,
    EtcdNotFound,
    EtcdPermissionDenied,
    EtcdUnreachable,
)
from ansible_collections.pgha.cluster.plugins.module_utils.etcd_types import Permission, permission_is_prefix

ROOT_PW = "root-Secret-1"
PREFIX = "/service/alpha/"


@pytest.fixture
def make_client():
    """``make_client(cluster, user=None, password=None, endpoints=None)`` -> EtcdClient (closed after the test).

    On the shared auth cluster ``password`` defaults to the harness's password of ``user``.
    """
    made = []

    def make(cluster, user=None, password=None, endpoints=None):
        if user is not None and password is None:
            password = cluster.users[user]
        kwargs = {}
        if cluster.tls:
            kwargs = {"ca_cert": cluster.ca_cert, "client_cert": cluster.client_cert,
                      "client_key": cluster.client_key}
        client = EtcdClient(endpoints or cluster.endpoints, username=user, password=password, **kwargs)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture
def noauth_cluster(etcd_cluster_factory):
    """One TLS member (client-cert-auth), JWT tokens configured, auth NOT enabled, no users."""
    return etcd_cluster_factory(size=1, tls=True, auth=False, jwt=True, token_ttl=30, name="authadm")


def bootstrap_root(client):
    """What a playbook does before ``auth enable``: user root with the root role."""
    client.user_add("root", ROOT_PW)
    client.role_add("root")
    client.user_grant_role("root", "root")


def ctl_root(cluster, *args, **kw):
    """etcdctl as root (password ROOT_PW) on a private cluster whose auth this test enabled."""
    return cluster.etcdctl(*args, user="root", password=ROOT_PW, **kw)


def offline_client():
    """A client whose only endpoint refuses connections: any request it sends fails with EtcdUnreachable."""
    return EtcdClient(["http://127.0.0.1:1"], timeout=1)


def grpc_auth(lib):
    """(call, messages): etcd's gRPC Auth service through the etcd3 library's channel and token."""
    from etcd3 import etcdrpc  # noqa: PLC0415 - imported by the etcd3_lib fixture first

    raw = lib.client
    stub = etcdrpc.AuthStub(raw.channel)

    def call(method, request):
        return getattr(stub, method)(request, raw.timeout, metadata=raw.metadata)

    return call, etcdrpc


# ---------------------------------------------------------------------------
# auth on / off
# ---------------------------------------------------------------------------

def test_auth_enable_needs_root_user_and_role_then_status_and_disable(noauth_cluster, make_client, unique_prefix):
    cluster = noauth_cluster
    anon = make_client(cluster)
    root = make_client(cluster, "root", ROOT_PW)
    unused_root = make_client(cluster, "root", ROOT_PW)  # made now, first used after enable
    endpoint = cluster.endpoints[0]

    # etcd 3.4 has no AuthStatus call: the client probes with an authenticate.
    assert anon.auth_status() is False
    assert root.auth_status() is False

    with pytest.raises(EtcdError) as excinfo:
        anon.auth_enable()
    assert "root user does not exist" in str(excinfo.value) and endpoint in str(excinfo.value)
    assert not isinstance(excinfo.value, (EtcdUnreachable, EtcdAuthError))
    anon.user_add("root", ROOT_PW)
    with pytest.raises(EtcdError, match="root user does not have root role"):
        anon.auth_enable()
    assert anon.auth_status() is False
    assert cluster.etcdctl("put", unique_prefix + "still-open", "1", user=None).strip() == "OK"

    anon.role_add("root")
    anon.user_grant_role("root", "root")
    root.auth_enable()
    # The client that enabled auth logs in lazily for its next request.
    assert root.authentications == 0
    root.put(unique_prefix + "k", "v1")
    assert root.authentications == 1

    assert anon.auth_status() is True
    assert root.auth_status() is True
    # Really on: etcdctl without a user is refused, as root it works.
    res = cluster.etcdctl_run("get", unique_prefix + "still-open", user=None)
    assert res.returncode != 0 and "permission denied" in res.stderr
    assert ctl_root(cluster, "get", unique_prefix + "still-open", "--print-value-only").strip() == "1"
    with pytest.raises(EtcdPermissionDenied, match="permission denied"):
        anon.put(unique_prefix + "anon", "x")

    assert root.get(unique_prefix + "k").value == b"v1"
    assert root.user_list() == ["root"]
    # A client made before enable but not used yet logs in on its first call.
    assert unused_root.get(unique_prefix + "k").value == b"v1"
    assert unused_root.authentications == 1
    assert ctl_root(cluster, "get", unique_prefix + "k", "--print-value-only").strip() == "v1"

    root.auth_disable()
    assert anon.auth_status() is False
    assert root.auth_status() is False
    anon.put(unique_prefix + "anon", "x")  # open again, no credentials needed
    assert cluster.etcdctl("get", unique_prefix + "anon", "--print-value-only", user=None).strip() == "x"
    root.put(unique_prefix + "k", "v2")  # with credentials it keeps working too
    assert anon.get(unique_prefix + "k").value == b"v2"


# On a client-cert-auth cluster etcd answers a tokenless request after auth was
# enabled with "permission denied" (admin calls: "user name not found"), on
# plain HTTP with "user name is empty": both must make the client log in.
@pytest.mark.parametrize("tls", [pytest.param(False, id="plain"), pytest.param(True, id="tls")])
def test_client_used_before_auth_enable_logs_in_after_enable(etcd_cluster_factory, make_client, tls):
    cluster = etcd_cluster_factory(size=1, tls=tls, auth=False, jwt=True, token_ttl=30, name="lazy")
    admin = make_client(cluster)
    bootstrap_root(admin)
    admin.user_add("app", "app-pw")
    admin.role_add("app")
    admin.role_grant_permission("app", PREFIX, "READWRITE", prefix=True)
    admin.user_grant_role("app", "app")
    app = make_client(cluster, "app", "app-pw")
    app.put(PREFIX + "k", "before")  # auth off: works, and the client notes that no token is needed
    early_root = make_client(cluster, "root", ROOT_PW)
    assert "app" in early_root.user_list()

    make_client(cluster, "root", ROOT_PW).auth_enable()
    app.put(PREFIX + "k", "after")
    assert app.authentications == 1
    assert app.get(PREFIX + "k").value == b"after"
    assert "app" in early_root.user_list()  # tokenless, etcd would answer "user name not found"
    assert early_root.authentications == 1


def test_auth_status_does_not_need_valid_credentials(etcd_tls):
    from collection_client import client_for
    assert client_for(etcd_tls, user="root", password="wrong-password").auth_status() is True
    assert client_for(etcd_tls, user=None).auth_status() is True


# ---------------------------------------------------------------------------
# users
# ---------------------------------------------------------------------------

def test_user_add_get_list_grant_revoke_delete(noauth_cluster, make_client, etcd3_lib):
    cluster = noauth_cluster
    client = make_client(cluster)
    client.role_add("reader")
    client.role_add("writer")

    client.user_add("alice", "alice-pw")
    client.user_add("certonly", no_password=True)
    with pytest.raises(EtcdInvalidArgument, match="needs a password"):
        offline_client().user_add("nopass")  # refused before any request
    with pytest.raises(EtcdError, match="user name already exists"):
        client.user_add("alice", "other")
    assert client.user_list() == ["alice", "certonly"]
    assert client.user_get("alice") == []

    client.user_grant_role("alice", "reader")
    client.user_grant_role("alice", "writer")
    assert sorted(client.user_get("alice")) == ["reader", "writer"]
    out = cluster.etcdctl("user", "get", "alice", user=None)
    assert re.search(r"^Roles: reader writer$", out, re.M), out
    call, rpc = grpc_auth(etcd3_lib(cluster, user=None))
    assert sorted(call("UserGet", rpc.AuthUserGetRequest(name="alice")).roles) == ["reader", "writer"]
    assert sorted(call("UserList", rpc.AuthUserListRequest()).users) == ["alice", "certonly"]

    client.user_revoke_role("alice", "writer")
    assert client.user_get("alice") == ["reader"]
    assert list(call("UserGet", rpc.AuthUserGetRequest(name="alice")).roles) == ["reader"]
    with pytest.raises(EtcdError, match="role is not granted to the user"):
        client.user_revoke_role("alice", "writer")
    with pytest.raises(EtcdNotFound, match="role name not found"):
        client.user_grant_role("alice", "no-such-role")
    with pytest.raises(EtcdNotFound, match="user name not found"):
        client.user_grant_role("nobody", "reader")

    with pytest.raises(EtcdNotFound) as excinfo:
        client.user_get("nobody")
    assert "user name not found" in str(excinfo.value) and cluster.endpoints[0] in str(excinfo.value)

    # A user made with no_password exists (etcdctl sees it) but cannot log in with a password.
    assert "User: certonly" in cluster.etcdctl("user", "get", "certonly", user=None)
    client.user_add("root", ROOT_PW)
    client.role_add("root")
    client.user_grant_role("root", "root")
    client.auth_enable()
    with pytest.raises(EtcdAuthError, match="wrong username or password"):
        make_client(cluster, "certonly", "anything").get("/x")

    admin = make_client(cluster, "root", ROOT_PW)
    admin.user_delete("alice")
    assert admin.user_list() == ["certonly", "root"]
    with pytest.raises(EtcdNotFound, match="user name not found"):
        admin.user_get("alice")
    with pytest.raises(EtcdNotFound, match="user name not found"):
        admin.user_delete("alice")
    assert "alice" not in ctl_root(cluster, "user", "list").split()


def test_user_change_password(noauth_cluster, make_client, etcd3_lib):
    cluster = noauth_cluster
    admin = make_client(cluster)
    bootstrap_root(admin)
    admin.user_add("alice", "old-pw")
    admin.role_add("alice")
    admin.role_grant_permission("alice", PREFIX, "READWRITE", prefix=True)
    admin.user_grant_role("alice", "alice")
    admin.auth_enable()
    admin = make_client(cluster, "root", ROOT_PW)
    admin.put(PREFIX + "k", "v")

    alice_old = make_client(cluster, "alice", "old-pw")
    assert alice_old.get(PREFIX + "k").value == b"v"  # logged in with the old password
    with pytest.raises(EtcdInvalidArgument, match="is empty"):
        admin.user_change_password("alice", "")

    admin.user_change_password("alice", "new-pw")
    # Its token predates the change; logging in again with the old password fails.
    with pytest.raises(EtcdAuthError) as excinfo:
        alice_old.get(PREFIX + "k")
    assert "wrong username or password" in str(excinfo.value)
    assert cluster.endpoints[0] in str(excinfo.value)
    with pytest.raises(EtcdAuthError, match="wrong username or password"):
        make_client(cluster, "alice", "old-pw").get(PREFIX + "k")

    assert make_client(cluster, "alice", "new-pw").get(PREFIX + "k").value == b"v"
    out = cluster.etcdctl("get", PREFIX + "k", "--print-value-only", user="alice", password="new-pw")
    assert out.strip() == "v"
    res = cluster.etcdctl_run("get", PREFIX + "k", user="alice", password="old-pw")
    assert res.returncode != 0 and "authentication failed" in res.stderr
    assert etcd3_lib(cluster, user="alice", password="new-pw").get(PREFIX + "k")[0] == b"v"
    # root's own client was logged in before the change and keeps working.
    assert admin.get(PREFIX + "k").value == b"v"


# ---------------------------------------------------------------------------
# roles and permissions
# ---------------------------------------------------------------------------

def test_roles_and_permissions_round_trip(noauth_cluster, make_client, etcd3_lib):
    cluster = noauth_cluster
    client = make_client(cluster)
    client.role_add("app")
    with pytest.raises(EtcdError, match="role name already exists"):
        client.role_add("app")
    assert client.role_get("app") == []

    client.role_grant_permission("app", PREFIX, "READ", prefix=True)
    client.role_grant_permission("app", "/single/key", "write")  # case-insensitive
    client.role_grant_permission("app", "/range/a", "READWRITE", range_end="/range/m")

    perms = sorted(client.role_get("app"), key=lambda p: p.key)
    assert all(isinstance(p, Permission) for p in perms)
    assert perms == [
        Permission("READWRITE", b"/range/a", b"/range/m"),
        Permission("READ", PREFIX.encode(), b"/service/alpha0"),
        Permission("WRITE", b"/single/key", None),
    ]
    assert [permission_is_prefix(p) for p in perms] == [False, True, False]

    out = cluster.etcdctl("role", "get", "app", user=None)
    read_part, write_part = out.split("KV Write:")
    assert "[%s, /service/alpha0) (prefix %s)" % (PREFIX, PREFIX) in read_part
    assert "[/range/a, /range/m)" in read_part and "[/range/a, /range/m)" in write_part
    assert "/single/key" in write_part and "/single/key" not in read_part
    assert PREFIX not in write_part

    call, rpc = grpc_auth(etcd3_lib(cluster, user=None))
    from etcd3.etcdrpc import auth_pb2  # noqa: PLC0415
    lib_perms = sorted((auth_pb2.Permission.Type.Name(p.permType), p.key, p.range_end or None)
                       for p in call("RoleGet", rpc.AuthRoleGetRequest(role="app")).perm)
    assert lib_perms == sorted(tuple(p) for p in perms)

    client.role_add("other")
    assert client.role_list() == ["app", "other"]
    assert sorted(call("RoleList", rpc.AuthRoleListRequest()).roles) == ["app", "other"]

    client.role_revoke_permission("app", "/single/key")
    client.role_revoke_permission("app", PREFIX, prefix=True)
    assert client.role_get("app") == [Permission("READWRITE", b"/range/a", b"/range/m")]
    with pytest.raises(EtcdError, match="permission is not granted to the role"):
        client.role_revoke_permission("app", PREFIX, prefix=True)
    client.role_revoke_permission("app", "/range/a", range_end="/range/m")
    assert client.role_get("app") == []
    assert "KV Read:\nKV Write:" in cluster.etcdctl("role", "get", "app", user=None)

    with pytest.raises(EtcdInvalidArgument) as excinfo:
        offline_client().role_grant_permission("app", PREFIX, "ADMIN", prefix=True)  # no request sent
    assert "'ADMIN'" in str(excinfo.value) and "READWRITE" in str(excinfo.value)

    with pytest.raises(EtcdNotFound) as excinfo:
        client.role_get("no-such-role")
    assert "role name not found" in str(excinfo.value) and cluster.endpoints[0] in str(excinfo.value)
    with pytest.raises(EtcdNotFound, match="role name not found"):
        client.role_grant_permission("no-such-role", PREFIX, "READ", prefix=True)

    client.user_add("carol", "carol-pw")
    client.user_grant_role("carol", "other")
    client.role_delete("other")
    assert client.role_list() == ["app"]
    assert client.user_get("carol") == []  # deleting a role takes it from its users
    with pytest.raises(EtcdNotFound, match="role name not found"):
        client.role_delete("other")
    assert "other" not in cluster.etcdctl("role", "list", user=None).split()


def test_permissions_are_enforced(noauth_cluster, make_client, etcd3_lib):
    cluster = noauth_cluster
    admin = make_client(cluster)
    bootstrap_root(admin)
    admin.role_add("reader")
    admin.role_grant_permission("reader", PREFIX, "READ", prefix=True)
    admin.role_add("writer")
    admin.role_grant_permission("writer", PREFIX, "READWRITE", prefix=True)
    admin.user_add("reader", "reader-pw")
    admin.user_grant_role("reader", "reader")
    admin.user_add("writer", "writer-pw")
    admin.user_grant_role("writer", "writer")
    admin.put(PREFIX + "k", "v")
    admin.put("/outside/k", "o")
    admin.auth_enable()
    endpoint = cluster.endpoints[0]
    root = make_client(cluster, "root", ROOT_PW)

    reader = make_client(cluster, "reader", "reader-pw")
    writer = make_client(cluster, "writer", "writer-pw")
    assert reader.get(PREFIX + "k").value == b"v"
    assert [kv.key for kv in reader.get_prefix(PREFIX)] == [(PREFIX + "k").encode()]
    for call in (lambda: reader.put(PREFIX + "x", "1"), lambda: reader.delete(PREFIX + "k"),
                 lambda: reader.get("/outside/k"), lambda: reader.get_prefix("/service/")):
        with pytest.raises(EtcdPermissionDenied) as excinfo:
            call()
        assert "permission denied" in str(excinfo.value) and endpoint in str(excinfo.value)
    with pytest.raises(EtcdPermissionDenied):
        reader.user_list()  # admin calls are root's

    writer.put(PREFIX + "w", "from-writer")
    assert reader.get(PREFIX + "w").value == b"from-writer"
    with pytest.raises(EtcdPermissionDenied, match="permission denied"):
        writer.put("/outside/w", "x")
    with pytest.raises(EtcdPermissionDenied):
        writer.get("/outside/k")
    assert writer.delete(PREFIX + "w").deleted == 1
    assert root.get("/outside/k").value == b"o"  # nothing outside changed
    assert root.get("/outside/w") is None

    # Independent check over gRPC: the users the client made are enforced there too.
    lib_reader = etcd3_lib(cluster, user="reader", password="reader-pw")
    assert lib_reader.get(PREFIX + "k")[0] == b"v"
    with pytest.raises(Exception, match="permission denied"):
        lib_reader.put(PREFIX + "x", "1")
    res = cluster.etcdctl_run("put", PREFIX + "x", "1", user="reader", password="reader-pw")
    assert res.returncode != 0 and "permission denied" in res.stderr

    # An RBAC change while clients hold tokens: their next calls still work
    # (etcd answers "revision of auth store is old"; the client logs in again),
    # and a revoked role is enforced at once.
    root.user_revoke_role("writer", "writer")
    assert reader.get(PREFIX + "k").value == b"v"
    with pytest.raises(EtcdPermissionDenied):
        writer.put(PREFIX + "w", "again")
    assert writer.authentications == 2
    root.user_grant_role("writer", "writer")
    writer.put(PREFIX + "w", "again")
    assert root.get(PREFIX + "w").value == b"again"


# ---------------------------------------------------------------------------
# the shared RBAC cluster (read-only checks)
# ---------------------------------------------------------------------------

def demo_key(unique_prefix, leaf):
    return "/service/demo/" + unique_prefix.strip("/").replace("/", "-") + "/" + leaf


def test_shared_cluster_patroni_user_reads_and_writes_only_its_scope(etcd_tls, make_client, unique_prefix):
    patroni = make_client(etcd_tls, "patroni-demo")
    key = demo_key(unique_prefix, "leader")
    try:
        patroni.put(key, "pg-1")
        assert patroni.get(key).value == b"pg-1"
        assert etcd_tls.etcdctl("get", key, "--print-value-only", user="lb-demo").strip() == "pg-1"
        for call in (lambda: patroni.put(unique_prefix + "outside", "x"), lambda: patroni.get(unique_prefix + "x"),
                     lambda: patroni.get_prefix("/service/")):
            with pytest.raises(EtcdPermissionDenied) as excinfo:
                call()
            message = str(excinfo.value)
            assert "permission denied" in message
            assert excinfo.value.endpoint in etcd_tls.endpoints and excinfo.value.endpoint in message
        assert etcd_tls.etcdctl("get", unique_prefix + "outside", user="root").strip() == ""
        with pytest.raises(EtcdPermissionDenied):
            patroni.user_list()
        with pytest.raises(EtcdPermissionDenied):
            patroni.role_get("lb-demo")
        with pytest.raises(EtcdPermissionDenied):
            patroni.user_get("lb-demo")
        # etcd lets a user read its own user and roles.
        assert patroni.user_get("patroni-demo") == ["patroni-demo"]
        assert patroni.role_get("patroni-demo") == [
            Permission("READWRITE", b"/service/demo/", b"/service/demo0")]
    finally:
        etcd_tls.etcdctl("del", key)


def test_shared_cluster_lb_user_reads_but_cannot_write(etcd_tls, make_client, unique_prefix):
    key = demo_key(unique_prefix, "members/pg-1")
    etcd_tls.etcdctl("put", key, '{"role": "primary"}', user="patroni-demo")
    try:
        lb = make_client(etcd_tls, "lb-demo")
        assert lb.get(key).value == b'{"role": "primary"}'
        assert [kv.key_text for kv in lb.get_prefix(demo_key(unique_prefix, ""))] == [key]
        with pytest.raises(EtcdPermissionDenied, match="permission denied"):
            lb.put(key, "tampered")
        with pytest.raises(EtcdPermissionDenied, match="permission denied"):
            lb.delete(key)
        with pytest.raises(EtcdPermissionDenied):
            lb.user_list()
        assert etcd_tls.etcdctl("get", key, "--print-value-only").strip() == '{"role": "primary"}'
    finally:
        etcd_tls.etcdctl("del", key)


def test_shared_cluster_wrong_password_and_auth_status(etcd_tls, make_client):
    with pytest.raises(EtcdAuthError) as excinfo:
        make_client(etcd_tls, "patroni-demo", "not-the-password").get("/service/demo/x")
    assert "wrong username or password" in str(excinfo.value)
    assert excinfo.value.endpoint in etcd_tls.endpoints
    with pytest.raises(EtcdAuthError, match="wrong username or password"):
        make_client(etcd_tls, "no-such-user", "pw").get("/service/demo/x")

    assert make_client(etcd_tls).auth_status() is True
    assert make_client(etcd_tls, "lb-demo").auth_status() is True
    root = make_client(etcd_tls, "root")
    assert root.auth_status() is True
    assert sorted(root.user_list()) == ["lb-demo", "patroni-demo", "root"]
    assert root.user_get("patroni-demo") == ["patroni-demo"]
    assert root.role_get("lb-demo") == [Permission("READ", b"/service/demo/", b"/service/demo0")]
