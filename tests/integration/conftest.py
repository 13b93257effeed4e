"""Fixtures that start REAL etcd servers (see etcd_harness.py for the machinery).

Fixtures:
  etcd_plain          session  1 member, plain HTTP, no auth
  etcd_tls            session  3 members, TLS + client-cert-auth, RBAC, JWT (ttl 3 s)
  etcd_tls_restored   function etcd_tls, made whole again after the test (kills/stops allowed)
  etcd_cluster_factory function factory: a private EtcdCluster, killed after the test
  etcd3_lib           function factory: etcd3_lib(cluster, ...) -> PyPI etcd3 client
  unique_prefix       function "/pgha-test/<test name>-<random>/"

Tests using an etcd fixture are skipped (with the reason) only when the etcd /
etcdctl binaries are missing; ``make test`` installs them.
"""

import os

# etcd3 0.12's generated protobuf code only loads with the pure-Python protobuf
# backend (protobuf >= 4); the choice is made once, when protobuf is first
# imported, so it has to be in the environment before anything imports etcd3.
os.environ["PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION"] = "python"

import re  # noqa: E402
import secrets  # noqa: E402
import sys  # noqa: E402

import pytest  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import etcd_harness  # noqa: E402

ETCD_FIXTURES = frozenset(("etcd_plain", "etcd_tls", "etcd_tls_restored", "etcd3_lib",
                           "etcd_cluster_factory"))
TLS_TOKEN_TTL = 3  # seconds; short on purpose so re-authentication is exercised

_startup_times = {}


def pytest_configure(config):
    config.addinivalue_line("markers", "integration: runs against real processes started by fixtures")
    config.addinivalue_line("markers", "etcd: needs the etcd/etcdctl binaries (skipped when missing)")


def pytest_collection_modifyitems(config, items):
    here = os.path.dirname(os.path.abspath(__file__)) + os.sep
    missing = etcd_harness.binaries_missing()
    skip = pytest.mark.skip(reason="etcd binaries not found: %s (Debian packages etcd-server and "
                                   "etcd-client; `make test` installs them)" % ", ".join(missing))
    for item in items:
        if not str(item.fspath).startswith(here):
            continue
        item.add_marker(pytest.mark.integration)
        if ETCD_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.etcd)
            if missing:
                item.add_marker(skip)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed and call.when in ("setup", "call"):
        funcargs = getattr(item, "funcargs", {})
        for name in sorted(ETCD_FIXTURES.intersection(funcargs)):
            value = funcargs[name]
            for cluster in [value] + list(getattr(value, "clusters", ())):
                if isinstance(cluster, etcd_harness.EtcdCluster):
                    rep.sections.append(("etcd logs: %s %s" % (name, cluster.name), cluster.logs_tail(25)))


def pytest_terminal_summary(terminalreporter):
    if _startup_times:
        terminalreporter.write_line("etcd fixture start-up: " + ", ".join(
            "%s %.2fs" % kv for kv in sorted(_startup_times.items())))


def _start(tmp_path_factory, fixture_name, **kwargs):
    cluster = etcd_harness.EtcdCluster(base_dir=str(tmp_path_factory.mktemp(fixture_name)), **kwargs)
    try:
        cluster.start()
    except BaseException:
        cluster.cleanup()
        raise
    if fixture_name != "etcd_private":
        _startup_times[fixture_name] = cluster.startup_seconds
    return cluster


@pytest.fixture(scope="session")
def etcd_plain(tmp_path_factory):
    """One plain-HTTP member on 127.0.0.10, no auth."""
    cluster = _start(tmp_path_factory, "etcd_plain", size=1, tls=False, auth=False, name="plain")
    yield cluster
    cluster.cleanup()


@pytest.fixture(scope="session")
def etcd_tls(tmp_path_factory):
    """Three members on 127.0.0.11-13: TLS only, client-cert-auth, RBAC, JWT tokens (ttl 3 s)."""
    cluster = _start(tmp_path_factory, "etcd_tls", size=3, tls=True, auth=True,
                     token_ttl=TLS_TOKEN_TTL, name="etcd")
    yield cluster
    cluster.cleanup()


@pytest.fixture
def etcd_tls_restored(etcd_tls):
    """etcd_tls for tests that kill/stop members: every member runs and is healthy afterwards."""
    yield etcd_tls
    etcd_tls.ensure_all_running()


@pytest.fixture
def etcd_cluster_factory(tmp_path_factory):
    """Factory for a private cluster, killed after the test: ``etcd_cluster_factory(**EtcdCluster kwargs)``.

    For tests that must change membership, RBAC, ``auth`` or TTLs, which would
    spoil the shared session clusters.  E.g. ``etcd_cluster_factory(size=3, tls=True)``.
    """
    made = []

    def factory(**kwargs):
        kwargs.setdefault("name", "etcd")
        cluster = _start(tmp_path_factory, "etcd_private", **kwargs)
        made.append(cluster)
        return cluster

    factory.clusters = made  # lets the failure hook show their logs
    yield factory
    for cluster in made:
        cluster.cleanup()


@pytest.fixture
def etcd3_lib():
    """Factory: ``etcd3_lib(cluster, user=<auto>, password=None, member=None, cert=<auto>, key=<auto>)``.

    Returns an :class:`etcd_harness.Etcd3Reauth` - the PyPI etcd3 client that
    re-authenticates before the cluster's short JWT tokens expire (etcd3 0.12
    itself never does).  ``user`` defaults to root on auth clusters; ``None``
    sends no token (etcd then authorises the client cert's CN).  ``.client``
    is the raw etcd3 client.  All clients are closed after the test.
    """
    made = []

    def factory(cluster, **kwargs):
        client = etcd_harness.Etcd3Reauth(cluster, **kwargs)
        client.client  # connect and authenticate now, so bad credentials fail here  # noqa: B018
        made.append(client)
        return client

    yield factory
    for client in made:
        client.close()


@pytest.fixture
def unique_prefix(request):
    """A key prefix no other test uses: ``/pgha-test/<test name>-<random>/``."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name).strip("-")[:60]
    return "/pgha-test/%s-%s/" % (name, secrets.token_hex(4))


# --------------------------------------------------------------------------
# Patroni + PostgreSQL (see patroni_harness.py)
# --------------------------------------------------------------------------

import patroni_harness  # noqa: E402


class _PatroniReport:
    """Start-up times in the terminal summary and node logs in failure reports.

    A plugin registered by the first patroni fixture used, so this block adds
    no second definition of the hooks above.
    """

    def __init__(self):
        self.startup_times = []

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item, call):
        outcome = yield
        rep = outcome.get_result()
        if rep.failed and call.when in ("setup", "call"):
            factory = getattr(item, "funcargs", {}).get("patroni_cluster_factory")
            for cluster in getattr(factory, "clusters", ()):
                rep.sections.append(("patroni logs: %s" % cluster.scope, cluster.logs_tail(25)))

    def pytest_terminal_summary(self, terminalreporter):
        if self.startup_times:
            terminalreporter.write_line("patroni cluster start-up: " + ", ".join(
                "%s %.2fs" % kv for kv in self.startup_times))


@pytest.fixture
def patroni_cluster_factory(request):
    """Factory: ``patroni_cluster_factory(etcd_cluster, scope=None, start=True, **PatroniCluster kwargs)``.

    Starts a :class:`patroni_harness.PatroniCluster` (``size`` 1..3 nodes of
    Patroni 4.1 + PostgreSQL 15 registered in ``etcd_cluster``) and returns it
    once a leader holds the leader key and every node runs (replicas
    streaming); everything is killed and the scope's keys deleted after the
    test.  ``scope`` defaults to a fresh random name.  Skipped (with the
    reason) when .venv-patroni or the PostgreSQL binaries are missing.
    """
    missing = patroni_harness.missing_requirements()
    if missing:
        pytest.skip("Patroni nodes cannot run here: %s" % "; ".join(missing))
    report = request.config.pluginmanager.get_plugin("pgha-patroni-report")
    if report is None:
        report = _PatroniReport()
        request.config.pluginmanager.register(report, "pgha-patroni-report")
    made = []

    def factory(etcd_cluster, scope=None, start=True, **kwargs):
        scope = scope or "pg%s" % secrets.token_hex(3)
        cluster = patroni_harness.PatroniCluster(etcd_cluster, scope, **kwargs)
        made.append(cluster)
        if start:
            cluster.start()
            report.startup_times.append(("%s x%d" % (request.node.name, cluster.size),
                                         cluster.startup_seconds))
        return cluster

    factory.clusters = made
    yield factory
    for cluster in made:
        cluster.cleanup()


@pytest.fixture
def demo_scope(etcd_tls):
    """The patroni-demo client, with /service/demo/ (the only prefix the demo users may touch) emptied
    before and after the test."""
    from ansible_collections.pgha.cluster.plugins.module_utils.patroni_state import cluster_prefix
    from collection_client import client_for
    prefix = cluster_prefix('/service', 'demo')
    with client_for(etcd_tls, user='patroni-demo') as patroni:
        patroni.delete_prefix(prefix)
        try:
            yield patroni
        finally:
            patroni.delete_prefix(prefix)


@pytest.fixture(scope="module")
def demo_cluster(etcd_tls):
    """Two Patroni nodes of scope demo in the TLS + RBAC etcd, with the REST API's unsafe endpoints behind
    basic auth: one cluster for a whole test file, killed after it."""
    missing = patroni_harness.missing_requirements()
    if missing:
        pytest.skip("Patroni nodes cannot run here: %s" % "; ".join(missing))
    demo = patroni_harness.PatroniCluster(etcd_tls, "demo", size=2, restapi_auth=True)
    try:
        demo.start()
        yield demo
    finally:
        demo.cleanup()
