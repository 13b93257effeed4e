"""Real Patroni + PostgreSQL nodes for the integration tests, on this host.

A plain module (no pytest, no Ansible imports), like ``etcd_harness``: each
node is one ``patroni`` process (from ``.venv-patroni``, see
``requirements-patroni.txt``) with its own YAML config, REST API and
PostgreSQL data dir, all in a private temp dir, registered in an etcd cluster
of :mod:`etcd_harness` (plain HTTP, or TLS + RBAC with a CN-less client
certificate and the scope's etcd user).

Main entry points:

* :class:`PatroniCluster` - 1..N nodes of one Patroni scope.
* :class:`PatroniNode` - one node: start / stop / kill, REST API, SQL.
* :func:`missing_requirements` - why nodes cannot run here (empty: they can).

PostgreSQL refuses to run as root, so when the tests run as root, Patroni
(and the postgres it starts) run as the ``postgres`` user (``PGHA_PATRONI_USER``
overrides it) and the temp dir is handed to that user.

Patroni starts postgres in a session of its own (so that a signal meant for
Patroni does not stop the database), hence killing a node means killing two
process groups: Patroni's and the postmaster's.  Every node is registered for
an ``atexit`` kill; Patroni gets a parent-death signal; a postmaster left
behind by a pytest that was SIGKILLed is found and killed by the next
:meth:`PatroniCluster.start` (each temp dir names the process that owns it).
"""

import atexit
import glob
import http.client
import json
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import threading
import time

import etcd_harness

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PATRONI_BIN = os.environ.get("PGHA_PATRONI_BIN") or os.path.join(REPO_ROOT, ".venv-patroni", "bin", "patroni")
PG_BIN_DIR = os.environ.get("PGHA_PG_BIN_DIR") or "/usr/lib/postgresql/15/bin"
RUN_AS = os.environ.get("PGHA_PATRONI_USER") or "postgres"
PG_BINARIES = ("postgres", "initdb", "pg_ctl", "pg_basebackup", "pg_controldata", "pg_rewind")
PSQL_BIN = os.environ.get("PGHA_PSQL_BIN") or shutil.which("psql") or "/usr/bin/psql"

DIR_PREFIX = "pgha-patroni-"
POLL_INTERVAL = 0.1

# Patroni's smallest accepted timings (it raises ttl to 20 and keeps
# loop_wait + 2 * retry_timeout <= ttl): a lost leader is replaced within
# about ttl seconds, a replica notices changes within loop_wait.
DEFAULT_TTL = 20
DEFAULT_LOOP_WAIT = 2
DEFAULT_RETRY_TIMEOUT = 3

PRIMARY_ROLES = ("primary", "master", "standby_leader")


def default_ips(size):
    """Loopback addresses of a cluster's nodes: 127.0.0.31, .32, ... (etcd's are .10-.2x)."""
    return ["127.0.0.%d" % (31 + i) for i in range(size)]


def missing_requirements():
    """What is missing to run nodes here, as readable reasons (empty list: nothing)."""
    missing = []
    if not os.access(PATRONI_BIN, os.X_OK):
        missing.append("patroni (%s; `make venv-patroni` builds it from requirements-patroni.txt)"
                       % PATRONI_BIN)
    absent = [b for b in PG_BINARIES if not os.access(os.path.join(PG_BIN_DIR, b), os.X_OK)]
    if absent:
        missing.append("PostgreSQL 15 binaries in %s: %s (Debian package postgresql-15; "
                       "tests/setup/system-deps.sh installs it)" % (PG_BIN_DIR, ", ".join(absent)))
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(RUN_AS)
        except KeyError:
            missing.append("user %r to run PostgreSQL as (not root; set PGHA_PATRONI_USER)" % RUN_AS)
    if not missing:
        problem = _interpreter_problem()
        if problem:
            missing.append(problem)
    return missing


_INTERPRETER_CHECKED = []


def _interpreter_problem():
    """Why the run-as user cannot run Patroni's interpreter again (Patroni re-executes it to start postgres).

    A venv made from an interpreter under root's home (e.g. pyenv) starts,
    but cannot start itself again as another user; Patroni then fails to
    start postgres without a word in its log.
    """
    if not _INTERPRETER_CHECKED:
        python = os.path.join(os.path.dirname(PATRONI_BIN), "python")
        check = "import subprocess, sys; sys.exit(subprocess.call([sys.executable, '-c', 'import patroni']))"
        try:
            res = subprocess.run(_run_as_prefix(pdeathsig=False) + [python, "-c", check], capture_output=True,
                                 text=True, timeout=30, check=False, stdin=subprocess.DEVNULL, cwd="/")
            ok, detail = res.returncode == 0, (res.stderr.strip().splitlines() or [""])[-1]
        except (OSError, subprocess.SubprocessError) as exc:
            ok, detail = False, str(exc)
        _INTERPRETER_CHECKED.append(None if ok else (
            "%s cannot be run by user %s: %s (build .venv-patroni from a python3 every user can "
            "run, e.g. `make venv-patroni`, which uses Debian's)" % (python, _run_as_name(), detail)))
    return _INTERPRETER_CHECKED[0]


class PatroniHarnessError(RuntimeError):
    pass


# --------------------------------------------------------------------------
# Process bookkeeping
# --------------------------------------------------------------------------

_LIVE_NODES = set()
_LIVE_LOCK = threading.Lock()
_LIVE_CLUSTERS = []


def _kill_all_live():
    with _LIVE_LOCK:
        nodes = list(_LIVE_NODES)
        clusters = list(_LIVE_CLUSTERS)
    etcd_harness.kill_quietly(nodes)
    for cluster in clusters:
        shutil.rmtree(cluster.base_dir, ignore_errors=True)


atexit.register(_kill_all_live)


def _pid_alive(pid):
    """True while ``pid`` runs; a zombie counts as dead (without an init that reaps, they stay)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def _killpg(pgid, sig):
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _postmaster_pid(data_dir):
    """The postmaster's pid from its pid file, if that process still runs this data dir."""
    try:
        with open(os.path.join(data_dir, "postmaster.pid")) as f:
            pid = int(f.readline().strip())
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            argv = f.read().split(b"\0")
    except (OSError, ValueError):
        return None
    # A stale pid file may name a pid reused by something else.
    if not argv or not argv[0].endswith(b"postgres") or not _pid_alive(pid):
        return None
    return pid


def _kill_postmaster(data_dir):
    pid = _postmaster_pid(data_dir)
    if pid is None:
        return
    try:
        pgid = os.getpgid(pid)
    except ProcessLookupError:
        return
    # The postmaster and its backends share the group Patroni's helper made.
    _killpg(pgid, signal.SIGKILL)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + 10
    while _pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.01)


def sweep_orphans(tmp_root=None):
    """Kill nodes and remove temp dirs left by a harness process that no longer runs."""
    for owner_file in glob.glob(os.path.join(tmp_root or tempfile.gettempdir(), DIR_PREFIX + "*", "owner")):
        base = os.path.dirname(owner_file)
        try:
            with open(owner_file) as f:
                owner = int(f.read().strip())
        except (OSError, ValueError):
            continue
        if _pid_alive(owner):
            continue
        for pid_file in glob.glob(os.path.join(base, "*", "patroni.pid")):
            try:
                with open(pid_file) as f:
                    _killpg(int(f.read().strip()), signal.SIGKILL)
            except (OSError, ValueError):
                pass
        for data_dir in glob.glob(os.path.join(base, "*", "data")):
            _kill_postmaster(data_dir)
        shutil.rmtree(base, ignore_errors=True)


def _clean_env(home):
    """Environment for Patroni: none of the caller's PATRONI_*/PG*/ETCD*/proxy settings.

    Patroni reads PATRONI_* variables as configuration, libpq reads PG*, and a
    proxy variable would send loopback traffic elsewhere.
    """
    env = {k: v for k, v in os.environ.items()
           if not k.upper().startswith(("PATRONI", "PG", "ETCD", "PYTHON", "VIRTUAL_ENV"))
           and k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")}
    env.update(HOME=home, LANG="C.UTF-8", LC_ALL="C.UTF-8")
    return env


def _run_as_name():
    return RUN_AS if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name


def _run_as_prefix(pdeathsig=True):
    """setpriv arguments that start a program as the run-as user (with a parent-death signal)."""
    ids = _run_as_ids()
    prefix = []
    if ids is not None:
        prefix += ["--reuid", str(ids[0]), "--regid", str(ids[1]), "--init-groups"]
    if pdeathsig and threading.current_thread() is threading.main_thread():
        # Fires when the forking thread dies: only the main thread's end is the process's end.
        prefix += ["--pdeathsig", "KILL"]
    return ["setpriv"] + prefix + ["--"] if prefix else []


def _run_as_ids():
    """(uid, gid) to hand files and processes to, or None to stay who we are."""
    if os.geteuid() != 0:
        return None
    entry = pwd.getpwnam(RUN_AS)
    return entry.pw_uid, entry.pw_gid


def _give(path, ids):
    if ids is not None:
        os.chown(path, *ids)


def _yaml(value, indent=0):
    """YAML for plain dicts/lists/scalars (JSON scalars are valid YAML): no PyYAML in .venv needed."""
    pad = "  " * indent
    lines = []
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(v, (dict, list)) and v:
                lines.append("%s%s:" % (pad, json.dumps(str(k))))
                lines.append(_yaml(v, indent + 1))
            else:
                lines.append("%s%s: %s" % (pad, json.dumps(str(k)), json.dumps(v)))
    else:
        for v in value:
            if isinstance(v, (dict, list)) and v:
                lines.append("%s-" % pad)
                lines.append(_yaml(v, indent + 1))
            else:
                lines.append("%s- %s" % (pad, json.dumps(v)))
    return "\n".join(lines)


# --------------------------------------------------------------------------
# One node
# --------------------------------------------------------------------------

class PatroniNode:
    """One Patroni process and the PostgreSQL it manages.  Built by :class:`PatroniCluster`."""

    def __init__(self, cluster, index, ip, pg_port, api_port):
        self.cluster = cluster
        self.index = index
        self.name = "%s-%d" % (cluster.scope, index + 1)
        self.ip = ip
        self.pg_port = pg_port
        self.api_port = api_port
        self.base_dir = os.path.join(cluster.base_dir, self.name)
        self.data_dir = os.path.join(self.base_dir, "data")
        self.config_path = os.path.join(self.base_dir, "patroni.yml")
        self.log_path = os.path.join(self.base_dir, "patroni.log")
        self.process = None
        self.start_count = 0

    def __repr__(self):
        return "<PatroniNode %s api=%s pg=%s:%d %s>" % (
            self.name, self.api_url, self.ip, self.pg_port, "running" if self.is_running else "stopped")

    @property
    def api_url(self):
        return "http://%s:%d" % (self.ip, self.api_port)

    @property
    def pid(self):
        return self.process.pid if self.process else None

    @property
    def is_running(self):
        """True while the Patroni process runs (says nothing about PostgreSQL)."""
        return self.process is not None and self.process.poll() is None

    @property
    def postmaster_pid(self):
        return _postmaster_pid(self.data_dir)

    # -- process control ----------------------------------------------------

    def start(self, wait=True, timeout=60.0):
        """Start Patroni (no-op if running); with ``wait``, until it reports PostgreSQL running.

        A restarted node keeps its ports and data dir, as a rebooted host would.
        """
        if not self.is_running:
            argv = _run_as_prefix() + [PATRONI_BIN, self.config_path]
            with open(self.log_path, "ab") as log:
                self.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                                cwd=self.base_dir, env=_clean_env(self.base_dir),
                                                start_new_session=True, close_fds=True)
            with open(os.path.join(self.base_dir, "patroni.pid"), "w") as f:
                f.write("%d\n" % self.process.pid)
            self.start_count += 1
            with _LIVE_LOCK:
                _LIVE_NODES.add(self)
        if wait:
            self.wait_running(timeout)
        return self

    def stop(self, timeout=30.0):
        """SIGTERM: Patroni stops PostgreSQL (fast) and gives up the leader key; SIGKILL after ``timeout``."""
        if self.is_running:
            _killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        self.kill()

    def restart_patroni(self, timeout=60.0):
        """What ``systemctl restart patroni`` does with the role's unit (``KillMode=process``): SIGTERM to Patroni
        alone, wait until it has exited, start it again and wait until it reports running.

        Outside maintenance mode Patroni stops its PostgreSQL on the way out; in maintenance mode it leaves it
        running and the new Patroni takes it over.
        """
        if self.is_running:
            os.kill(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout)
        return self.start(wait=True, timeout=timeout)

    def reload(self):
        """SIGHUP, as ``systemctl reload patroni`` sends it: Patroni re-reads its configuration file at the start of
        its next cycle."""
        if not self.is_running:
            raise PatroniHarnessError("patroni %s does not run: nothing to reload" % self.name)
        os.kill(self.process.pid, signal.SIGHUP)

    def kill(self):
        """SIGKILL Patroni and PostgreSQL: a crashed host.  The leader key stays until its ttl ends."""
        if self.process is not None:
            if self.process.poll() is None:
                _killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
            else:
                _killpg(self.process.pid, signal.SIGKILL)  # helpers it left in its group
        _kill_postmaster(self.data_dir)
        with _LIVE_LOCK:
            _LIVE_NODES.discard(self)

    # -- REST API -----------------------------------------------------------

    def rest(self, path, method="GET", body=None, timeout=3.0):
        """One request to the REST API: ``(status, parsed JSON or text)``; raises OSError when down."""
        conn = http.client.HTTPConnection(self.ip, self.api_port, timeout=timeout)
        try:
            headers = {}
            data = None
            if body is not None:
                data = json.dumps(body).encode()
                headers["Content-Type"] = "application/json"
            if self.cluster.restapi_auth:
                headers["Authorization"] = self.cluster.restapi_auth_header
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            raw = resp.read().decode("utf-8", "replace")
        finally:
            conn.close()
        try:
            return resp.status, json.loads(raw)
        except ValueError:
            return resp.status, raw

    def status(self):
        """``GET /patroni`` (state, role, timeline, replication_state, ...), or None when unreachable."""
        try:
            code, data = self.rest("/patroni", timeout=1.0)
        except (OSError, http.client.HTTPException):
            return None
        return data if isinstance(data, dict) else None

    def wait_running(self, timeout=60.0, streaming=True):
        """Until ``/patroni`` says state running (and, for a replica with ``streaming``, streaming)."""
        deadline = time.monotonic() + timeout
        while True:
            if not self.is_running:
                raise PatroniHarnessError("patroni %s exited with code %s\n%s" % (
                    self.name, self.process.returncode if self.process else None, self.log_tail()))
            st = self.status()
            if st and st.get("state") == "running":
                if not streaming or st.get("role") in PRIMARY_ROLES or st.get("replication_state") == "streaming":
                    return st
            if time.monotonic() > deadline:
                raise PatroniHarnessError("patroni %s not running after %.1fs (last /patroni: %s)\n%s" % (
                    self.name, timeout, st, self.log_tail()))
            time.sleep(POLL_INTERVAL)

    # -- SQL ----------------------------------------------------------------

    def dsn(self, dbname="postgres"):
        c = self.cluster
        return "host=%s port=%d dbname=%s user=%s password=%s connect_timeout=5" % (
            self.ip, self.pg_port, dbname, c.superuser, c.superuser_password)

    def connect(self, dbname="postgres", autocommit=True):
        """A psycopg2 connection as the superuser (psycopg2-binary is in .venv)."""
        import psycopg2  # noqa: PLC0415 - only tests that run SQL need it

        conn = psycopg2.connect(self.dsn(dbname))
        conn.autocommit = autocommit
        return conn

    def execute(self, sql, params=None, dbname="postgres"):
        """Run one statement in autocommit; rows as a list of tuples (``[]`` when it returns none)."""
        conn = self.connect(dbname)
        try:
            with conn.cursor() as cur:
                cur.execute(sql, params)
                return cur.fetchall() if cur.description is not None else []
        finally:
            conn.close()

    def psql(self, sql, dbname="postgres", check=True):
        """Run ``sql`` with the real ``psql -At`` (postgresql-client); returns stdout."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["PGPASSWORD"] = self.cluster.superuser_password
        res = subprocess.run([PSQL_BIN, "-X", "-At", "-v", "ON_ERROR_STOP=1", "-h", self.ip,
                              "-p", str(self.pg_port), "-U", self.cluster.superuser, "-d", dbname,
                              "-c", sql], env=env, capture_output=True, text=True, check=False,
                             stdin=subprocess.DEVNULL, timeout=30)
        if check and res.returncode != 0:
            raise PatroniHarnessError("psql on %s failed (exit %d): %s" % (self.name, res.returncode,
                                                                           res.stderr.strip()))
        return res.stdout

    # -- logs ---------------------------------------------------------------

    def log_tail(self, lines=30):
        """The end of Patroni's log (PostgreSQL's own messages go there too)."""
        return "\n".join(["==== %s %s" % (self.name, self.log_path)] + etcd_harness._tail(self.log_path, lines))


# --------------------------------------------------------------------------
# A cluster
# --------------------------------------------------------------------------

class PatroniCluster:
    """``size`` Patroni nodes of ``scope`` under ``namespace`` in ``etcd_cluster``.

    On an auth cluster Patroni logs in as ``etcd_user`` (default
    ``patroni-<scope>``, e.g. ``patroni-demo`` for scope ``demo`` on the
    shared ``etcd_tls``) with the password the etcd harness made.
    ``sync_mode`` turns on Patroni's synchronous_mode; ``restapi_auth``
    protects the REST API's unsafe endpoints with generated credentials.
    ``pg_parameters`` / ``dcs`` are merged into the bootstrap configuration.
    The scope's keys in etcd are deleted at :meth:`start` and :meth:`cleanup`.
    """

    def __init__(self, etcd_cluster, scope, size=1, namespace="/service", sync_mode=False,
                 ttl=DEFAULT_TTL, loop_wait=DEFAULT_LOOP_WAIT, retry_timeout=DEFAULT_RETRY_TIMEOUT,
                 etcd_user=None, etcd_password=None, ips=None, restapi_auth=False,
                 pg_parameters=None, dcs=None, tmp_root=None):
        if not 1 <= size <= 9:
            raise ValueError("size must be 1..9")
        if loop_wait + 2 * retry_timeout > ttl:
            raise ValueError("Patroni needs loop_wait + 2 * retry_timeout <= ttl")
        self.etcd = etcd_cluster
        self.scope = scope
        self.size = size
        self.namespace = "/" + namespace.strip("/")
        self.sync_mode = sync_mode
        self.ttl, self.loop_wait, self.retry_timeout = ttl, loop_wait, retry_timeout
        if etcd_cluster.auth:
            self.etcd_user = etcd_user or "patroni-%s" % scope
            self.etcd_password = etcd_password or etcd_cluster.users.get(self.etcd_user)
            if self.etcd_password is None:
                raise PatroniHarnessError("no password for etcd user %r: pass etcd_password" % self.etcd_user)
        else:
            self.etcd_user, self.etcd_password = etcd_user, etcd_password
        self.superuser, self.superuser_password = "postgres", secrets.token_urlsafe(12)
        self.replication_user, self.replication_password = "replicator", secrets.token_urlsafe(12)
        self.restapi_auth = restapi_auth
        self.restapi_user, self.restapi_password = "patroni", secrets.token_urlsafe(12)
        self.pg_parameters = dict(pg_parameters or {})
        self.dcs_extra = dict(dcs or {})
        self.startup_seconds = None

        self.tmp_root = tmp_root or tempfile.gettempdir()
        self.base_dir = tempfile.mkdtemp(prefix="%s%s-" % (DIR_PREFIX, scope), dir=self.tmp_root)
        with open(os.path.join(self.base_dir, "owner"), "w") as f:
            f.write("%d\n" % os.getpid())
        with _LIVE_LOCK:
            _LIVE_CLUSTERS.append(self)
        ids = _run_as_ids()
        _give(self.base_dir, ids)
        self._etcd_files = self._copy_etcd_tls(ids)

        ips = list(ips or default_ips(size))
        self.nodes = []
        for i in range(size):
            ip = ips[i % len(ips)]
            pg_port, api_port = etcd_harness.pick_free_ports(ip, 2)
            node = PatroniNode(self, i, ip, pg_port, api_port)
            os.mkdir(node.base_dir, 0o700)
            _give(node.base_dir, ids)
            self.write_config(node)
            self.nodes.append(node)

    def __repr__(self):
        return "<PatroniCluster %s/%s size=%d on %r>" % (self.namespace, self.scope, self.size, self.etcd)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()

    @property
    def prefix(self):
        """The scope's key prefix in etcd: ``/service/<scope>/``."""
        return "%s/%s/" % (self.namespace.rstrip("/"), self.scope)

    @property
    def restapi_auth_header(self):
        import base64  # noqa: PLC0415

        token = base64.b64encode(("%s:%s" % (self.restapi_user, self.restapi_password)).encode()).decode()
        return "Basic " + token

    def node(self, which):
        """Node by 0-based index or by name (``<scope>-1`` is index 0)."""
        return etcd_harness.by_index_or_name(self.nodes, which)

    # -- configuration ------------------------------------------------------

    def _copy_etcd_tls(self, ids):
        """The CA and CN-less client pair, readable by the user Patroni runs as."""
        if not self.etcd.tls:
            return {}
        d = os.path.join(self.base_dir, "etcd-tls")
        os.mkdir(d, 0o700)
        _give(d, ids)
        files = {}
        for key, src in (("cacert", self.etcd.ca_cert), ("cert", self.etcd.client_cert),
                         ("key", self.etcd.client_key)):
            dst = os.path.join(d, os.path.basename(src))
            shutil.copyfile(src, dst)
            os.chmod(dst, 0o600)
            _give(dst, ids)
            files[key] = dst
        return files

    def etcd_config(self):
        """The ``etcd3`` section: every member as host:port, TLS files and credentials as needed."""
        conf = {"hosts": ["%s:%d" % (m.ip, m.client_port) for m in self.etcd.members],
                "protocol": "https" if self.etcd.tls else "http"}
        conf.update(self._etcd_files)
        if self.etcd_user:
            conf.update(username=self.etcd_user, password=self.etcd_password)
        return conf

    def write_config(self, node):
        """(Re)write ``node``'s patroni.yml from the cluster's settings now (e.g. after ``etcd_password``
        changed); a running Patroni reads it again on :meth:`PatroniNode.reload`."""
        fd = os.open(node.config_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(_yaml(self.node_config(node)) + "\n")
        _give(node.config_path, _run_as_ids())

    def node_config(self, node):
        parameters = {
            # Small, so that 3 nodes fit next to everything else on a test host.
            "max_connections": 30, "shared_buffers": "16MB",
            "max_wal_senders": 10, "max_replication_slots": 10, "wal_keep_size": "64MB",
            "unix_socket_directories": node.base_dir,
            "fsync": "off", "synchronous_commit": "on", "full_page_writes": "on",
        }
        parameters.update(self.pg_parameters)
        dcs = {
            "ttl": self.ttl, "loop_wait": self.loop_wait, "retry_timeout": self.retry_timeout,
            "maximum_lag_on_failover": 1048576,
            "synchronous_mode": bool(self.sync_mode),
            "postgresql": {"use_pg_rewind": True, "use_slots": True, "parameters": parameters},
        }
        dcs.update(self.dcs_extra)
        restapi = {"listen": "%s:%d" % (node.ip, node.api_port),
                   "connect_address": "%s:%d" % (node.ip, node.api_port)}
        if self.restapi_auth:
            restapi["authentication"] = {"username": self.restapi_user, "password": self.restapi_password}
        return {
            "scope": self.scope,
            "namespace": self.namespace + "/",
            "name": node.name,
            "log": {"level": "INFO"},
            "restapi": restapi,
            "etcd3": self.etcd_config(),
            "bootstrap": {
                "dcs": dcs,
                "initdb": [{"encoding": "UTF8"}, {"locale": "C.UTF-8"}, "data-checksums"],
            },
            "postgresql": {
                "listen": "%s:%d" % (node.ip, node.pg_port),
                "connect_address": "%s:%d" % (node.ip, node.pg_port),
                "data_dir": node.data_dir,
                "bin_dir": PG_BIN_DIR,
                "pgpass": os.path.join(node.base_dir, "pgpass"),
                "authentication": {
                    "superuser": {"username": self.superuser, "password": self.superuser_password},
                    "replication": {"username": self.replication_user, "password": self.replication_password},
                },
                "pg_hba": [
                    "local all all trust",  # the socket is in the node's private dir
                    "host replication %s 127.0.0.0/8 scram-sha-256" % self.replication_user,
                    "host all all 127.0.0.0/8 scram-sha-256",
                ],
            },
            "watchdog": {"mode": "off"},
        }

    # -- lifecycle ----------------------------------------------------------

    def clear_dcs(self):
        """Delete the scope's keys in etcd (as the scope's own etcd user on auth clusters)."""
        user = self.etcd_user if self.etcd.auth else None
        self.etcd.etcdctl("del", "--prefix", self.prefix, user=user, password=self.etcd_password)

    def start(self, timeout=120.0):
        """Bootstrap: node 0 initialises and leads, the others clone it with pg_basebackup.

        Returns when the leader holds the leader key and every node reports
        running (replicas streaming).  ``startup_seconds`` says how long it took.
        """
        t0 = time.monotonic()
        sweep_orphans(self.tmp_root)
        self.clear_dcs()
        deadline = t0 + timeout
        first = self.nodes[0]
        first.start(wait=False)
        self.wait_leader(timeout=timeout)
        for n in self.nodes[1:]:
            n.start(wait=False)
        self.wait_running(timeout=max(1.0, deadline - time.monotonic()))
        self.startup_seconds = time.monotonic() - t0
        return self

    def running_nodes(self):
        return [n for n in self.nodes if n.is_running]

    def wait_running(self, timeout=60.0, streaming=True):
        """Until every running node reports state running (replicas streaming, with ``streaming``)."""
        deadline = time.monotonic() + timeout
        for n in self.running_nodes():
            n.wait_running(max(0.5, deadline - time.monotonic()), streaming=streaming)
        return self

    def leader(self):
        """The node that holds the leader key and runs as primary now, else None (no waiting)."""
        for n in self.running_nodes():
            st = n.status()
            if not st or st.get("state") != "running" or st.get("role") not in PRIMARY_ROLES:
                continue
            try:
                code, data = n.rest("/cluster", timeout=1.0)
            except (OSError, http.client.HTTPException):
                continue
            members = data.get("members", []) if isinstance(data, dict) else []
            if any(m.get("name") == n.name and m.get("role") in ("leader", "standby_leader") for m in members):
                return n
        return None

    def wait_leader(self, timeout=60.0, exclude=()):
        """The leader node, once there is one (not in ``exclude``: names or nodes, e.g. a killed one)."""
        excluded = set(x if isinstance(x, str) else x.name for x in exclude)
        deadline = time.monotonic() + timeout
        while True:
            if not self.running_nodes():
                raise PatroniHarnessError("no Patroni node runs in %r\n%s" % (self, self.logs_tail()))
            node = self.leader()
            if node is not None and node.name not in excluded:
                return node
            if time.monotonic() > deadline:
                raise PatroniHarnessError("no leader in %r after %.1fs\n%s" % (self, timeout, self.logs_tail()))
            time.sleep(POLL_INTERVAL)

    def replicas(self):
        """Running nodes that report role replica."""
        out = []
        for n in self.running_nodes():
            st = n.status()
            if st and st.get("role") == "replica":
                out.append(n)
        return out

    def wait_caught_up(self, timeout=15.0):
        """Until every running replica has replayed what the leader has written so far; the leader's LSN."""
        leader = self.wait_leader(timeout)
        lsn = leader.execute("SELECT pg_current_wal_lsn()::text")[0][0]
        deadline = time.monotonic() + timeout
        for node in self.replicas():
            while not node.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (lsn,))[0][0]:
                if time.monotonic() > deadline:
                    raise PatroniHarnessError("replica %s has not replayed %s after %.1fs" % (node.name, lsn, timeout))
                time.sleep(POLL_INTERVAL)
        return lsn

    def rest(self, which, path, **kwargs):
        """``node(which).rest(path, ...)``: ``(status, data)``."""
        return self.node(which).rest(path, **kwargs)

    def stop(self, timeout=30.0):
        """Graceful stop: replicas first, then the leader (so nobody fails over on the way down)."""
        leader = self.leader()
        for n in self.nodes:
            if n is not leader:
                n.stop(timeout)
        if leader is not None:
            leader.stop(timeout)

    def kill_all(self):
        for n in self.nodes:
            n.kill()

    def cleanup(self):
        """Kill every node, delete the scope's keys in etcd, remove the temp dir."""
        try:
            self.kill_all()
            try:
                self.clear_dcs()
            except (etcd_harness.EtcdctlError, subprocess.SubprocessError, OSError):
                pass  # etcd may be gone already (e.g. a private cluster torn down first)
        finally:
            shutil.rmtree(self.base_dir, ignore_errors=True)
            with _LIVE_LOCK:
                if self in _LIVE_CLUSTERS:
                    _LIVE_CLUSTERS.remove(self)

    def logs_tail(self, lines=30):
        return "\n".join(n.log_tail(lines) for n in self.nodes)
