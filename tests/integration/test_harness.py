"""Self-tests of the etcd harness: the fixtures give what other tests rely on."""

import http.client
import json
import os
import ssl
import stat
import time

import pytest

import etcd_harness


def test_plain_node_put_get(etcd_plain, unique_prefix):
    key = unique_prefix + "hello"
    assert etcd_plain.endpoints[0].startswith("http://127.0.0.10:")
    etcd_plain.etcdctl("put", key, "world")
    assert etcd_plain.etcdctl("get", key, "--print-value-only").strip() == "world"


def test_tls_cluster_members_healthy_and_agree_on_leader(etcd_tls):
    assert len(etcd_tls.endpoints) == 3
    assert all(url.startswith("https://") for url in etcd_tls.endpoints)
    status = json.loads(etcd_tls.etcdctl("endpoint", "status", "-w", "json"))
    assert sorted(s["Endpoint"] for s in status) == sorted(etcd_tls.endpoints)
    leaders = {s["Status"]["leader"] for s in status}
    member_ids = {s["Status"]["header"]["member_id"] for s in status}
    assert len(leaders) == 1 and leaders <= member_ids
    health = json.loads(etcd_tls.etcdctl("endpoint", "health", "-w", "json"))
    assert [h["health"] for h in health] == [True] * 3


def test_tls_certificate_files(etcd_tls):
    from cryptography import x509
    from cryptography.x509.oid import ExtendedKeyUsageOID

    for path in (etcd_tls.client_key, etcd_tls.root_key, etcd_tls.wrong_ca_client_key,
                 etcd_tls.member(0).key, etcd_tls.jwt_private_key):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path
    m = etcd_tls.member(1)
    with open(m.cert, "rb") as f:
        cert = x509.load_pem_x509_certificate(f.read())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {str(ip) for ip in san.get_values_for_type(x509.IPAddress)} == {m.ip, "127.0.0.1"}
    assert set(san.get_values_for_type(x509.DNSName)) == {"localhost", m.name}
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH} <= set(eku)
    cn = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
    assert cn == "etcd-member-2" and cn not in etcd_tls.users


def _get_health(member, context):
    conn = http.client.HTTPSConnection(member.ip, member.client_port, timeout=5, context=context)
    try:
        conn.request("GET", "/health")
        return conn.getresponse().status
    finally:
        conn.close()


def test_tls_refuses_clients_without_a_valid_cert(etcd_tls):
    m = etcd_tls.member(0)
    ok = ssl.create_default_context(cafile=etcd_tls.ca_cert)
    ok.load_cert_chain(etcd_tls.client_cert, etcd_tls.client_key)
    assert _get_health(m, ok) == 200  # the control: same path with a good cert works

    no_cert = ssl.create_default_context(cafile=etcd_tls.ca_cert)
    wrong_ca_client = ssl.create_default_context(cafile=etcd_tls.ca_cert)
    wrong_ca_client.load_cert_chain(etcd_tls.wrong_ca_client_cert, etcd_tls.wrong_ca_client_key)
    for ctx in (no_cert, wrong_ca_client):
        # TLS 1.3: the server's refusal may only surface on the first read.
        with pytest.raises((ssl.SSLError, ConnectionError)):
            _get_health(m, ctx)

    trusts_wrong_ca = ssl.create_default_context(cafile=etcd_tls.wrong_ca_cert)
    trusts_wrong_ca.load_cert_chain(etcd_tls.client_cert, etcd_tls.client_key)
    with pytest.raises(ssl.SSLCertVerificationError):
        _get_health(m, trusts_wrong_ca)


def test_auth_is_enabled(etcd_tls, unique_prefix):
    etcd_tls.etcdctl("put", unique_prefix + "k", "v")  # as root
    # No --user: etcd falls back to the client cert's CN, which is no etcd user.
    with pytest.raises(etcd_harness.EtcdctlError, match="permission denied"):
        etcd_tls.etcdctl("get", unique_prefix + "k", user=None)
    res = etcd_tls.etcdctl_run("get", unique_prefix + "k", user="root", password="wrong")
    assert res.returncode != 0 and "authentication failed" in res.stderr


def test_rbac_users(etcd_tls, unique_prefix):
    assert set(etcd_tls.users) == {"root", "patroni-demo", "lb-demo"}
    demo_key = "/service/demo/" + unique_prefix.strip("/").replace("/", "-")
    etcd_tls.etcdctl("put", demo_key, "v1", user="patroni-demo")
    assert etcd_tls.etcdctl("get", demo_key, "--print-value-only", user="lb-demo").strip() == "v1"
    with pytest.raises(etcd_harness.EtcdctlError, match="permission denied"):
        etcd_tls.etcdctl("put", unique_prefix + "outside", "x", user="patroni-demo")
    with pytest.raises(etcd_harness.EtcdctlError, match="permission denied"):
        etcd_tls.etcdctl("put", demo_key, "v2", user="lb-demo")
    etcd_tls.etcdctl("del", demo_key, user="patroni-demo")


def test_etcd3_lib_reads_what_etcdctl_wrote(etcd_tls, etcd_plain, etcd3_lib, unique_prefix):
    etcd_plain.etcdctl("put", unique_prefix + "p", "plain-value")
    assert etcd3_lib(etcd_plain).get(unique_prefix + "p")[0] == b"plain-value"

    etcd_tls.etcdctl("put", unique_prefix + "k", "tls-value")
    lib = etcd3_lib(etcd_tls)
    assert lib.get(unique_prefix + "k")[0] == b"tls-value"
    raw = etcd_harness.etcd3_client(etcd_tls)  # one token, never renewed
    assert raw.get(unique_prefix + "k")[0] == b"tls-value"
    try:
        time.sleep(etcd_tls.token_ttl + 0.5)
        # The short JWT TTL is really in force: the plain etcd3 client is now refused ...
        with pytest.raises(Exception, match="invalid auth token"):
            raw.get(unique_prefix + "k")
    finally:
        raw.close()
    # ... and the fixture's client re-authenticates.
    assert lib.get(unique_prefix + "k")[0] == b"tls-value"


def test_kill_leader_then_ensure_all_running(etcd_tls_restored, unique_prefix):
    cluster = etcd_tls_restored
    leader = cluster.leader()
    old_pid = leader.pid
    leader.kill()
    assert not leader.is_running
    cluster.wait_healthy(timeout=10, only_running=True)  # survivors elect a new leader
    new_leader = cluster.leader()
    assert new_leader is not leader
    cluster.etcdctl("put", unique_prefix + "during-outage", "x")

    cluster.ensure_all_running(timeout=10)
    assert leader.is_running and leader.pid != old_pid
    assert all(m.is_healthy() for m in cluster.members)
    # The restarted member caught up: a local (serializable) read on it sees the key.
    out = cluster.etcdctl("get", unique_prefix + "during-outage", "--print-value-only",
                          "--consistency=s", endpoints=leader.client_url)
    assert out.strip() == "x"


def test_private_cluster_plain_http_with_auth(etcd_cluster_factory, unique_prefix):
    cluster = etcd_cluster_factory(size=1, tls=False, auth=True, token_ttl=60, name="private")
    assert cluster.endpoints[0].startswith("http://")
    cluster.etcdctl("put", unique_prefix + "k", "v")  # root by default
    res = cluster.etcdctl_run("get", unique_prefix + "k", user=None)
    assert res.returncode != 0 and "user name is empty" in res.stderr
