"""Real etcd servers for the integration tests.

A plain module (no pytest, no Ansible imports) so that tests, benchmarks and
ad-hoc scripts can all start the same clusters.  ``conftest.py`` wraps it in
fixtures.

Main entry points:

* :class:`Pki` - a throw-away CA, server/peer/client certificates, a second
  unrelated CA for "wrong CA" tests, and the RSA key pair for etcd's JWT tokens.
* :class:`EtcdMember` - one real ``etcd`` process.
* :class:`EtcdCluster` - 1..N members, plain HTTP or TLS with client-cert-auth,
  optionally RBAC + JWT auth, plus an ``etcdctl`` runner.
* :func:`etcd3_client` / :class:`Etcd3Reauth` - the PyPI ``etcd3`` library as
  an independent client against a cluster.

Every etcd process is started in its own session (so a signal to pytest's
process group does not reach it half-way, and we can kill its whole group),
is registered for an ``atexit`` kill, and - when started from the main thread -
gets a parent-death signal so that even a SIGKILLed pytest leaves no orphan.
"""


import atexit
import collections
import datetime
import http.client
import ipaddress
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import warnings

ETCD_BIN = os.environ.get("PGHA_ETCD_BIN") or shutil.which("etcd") or "/usr/bin/etcd"
ETCDCTL_BIN = os.environ.get("PGHA_ETCDCTL_BIN") or shutil.which("etcdctl") or "/usr/bin/etcdctl"
_SETPRIV_BIN = shutil.which("setpriv")

# Fast Raft timings: failover tests should take about a second, not the
# production defaults' several seconds.
HEARTBEAT_MS = 50
ELECTION_MS = 500
POLL_INTERVAL = 0.05


def default_ips(size, tls):
    """Loopback addresses for a cluster's members (Linux routes all of 127/8 to lo).

    TLS members on 127.0.0.11, .12, ...; a single plain node on 127.0.0.10,
    bigger plain clusters on 127.0.0.21, ...  Distinct addresses per member
    make logs and certificates readable; ports are picked free at start, so
    two clusters (or two pytest sessions) sharing an address do not clash,
    and nothing listens on 127.0.0.1 where a system etcd may run.
    """
    if tls:
        return ["127.0.0.%d" % (11 + i) for i in range(size)]
    if size == 1:
        return ["127.0.0.10"]
    return ["127.0.0.%d" % (21 + i) for i in range(size)]


# RBAC laid out on auth-enabled clusters: {user: [(permission, key prefix)]};
# each user gets a role of the same name holding those permissions.
RBAC_USERS = {
    "patroni-demo": [("readwrite", "/service/demo/")],
    "lb-demo": [("read", "/service/demo/")],
}


def binaries_missing():
    """Names of the etcd binaries that cannot be executed (empty list: all there)."""
    return [b for b in (ETCD_BIN, ETCDCTL_BIN) if not (os.path.isfile(b) and os.access(b, os.X_OK))]


class EtcdHarnessError(RuntimeError):
    pass


class EtcdStartError(EtcdHarnessError):
    pass


class EtcdctlError(subprocess.CalledProcessError):
    """etcdctl exited non-zero; ``str()`` carries its stderr, unlike the base class."""

    def __str__(self):
        return "etcdctl failed (exit %s): %s\nstderr: %s\nstdout: %s" % (
            self.returncode, " ".join(self.cmd), (self.stderr or "").strip(), (self.output or "").strip())


# --------------------------------------------------------------------------
# Process bookkeeping
# --------------------------------------------------------------------------

_LIVE_MEMBERS = set()
_LIVE_LOCK = threading.Lock()
_OWNED_DIRS = []  # temp dirs the harness made itself (no base_dir given)


def kill_quietly(processes):
    """kill() each of ``processes``, whatever fails: best effort at interpreter exit."""
    for process in processes:
        try:
            process.kill()
        except Exception:  # noqa: BLE001 - best effort at interpreter exit
            pass


def _kill_all_live():
    with _LIVE_LOCK:
        members = list(_LIVE_MEMBERS)
    kill_quietly(members)
    for d in _OWNED_DIRS:
        shutil.rmtree(d, ignore_errors=True)


atexit.register(_kill_all_live)


def _clean_env(extra=None):
    """Environment for etcd/etcdctl: none of the caller's ETCD*/proxy settings.

    etcd and etcdctl read ETCD_* / ETCDCTL_* variables as flags, and a proxy
    variable could send loopback gRPC through a proxy; either would make the
    harness depend on whoever runs it.
    """
    env = {k: v for k, v in os.environ.items()
           if not k.upper().startswith(("ETCD", "GRPC_"))
           and k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "grpc_proxy")}
    if extra:
        env.update(extra)
    return env


def pick_free_ports(ip, count):
    """``count`` distinct free TCP ports on ``ip``.

    All sockets are held until every port is chosen, so the kernel cannot hand
    out the same port twice; a later race with another program is handled by
    the cluster's retry on "address already in use".
    """
    socks = []
    try:
        while len(socks) < count:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((ip, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


# --------------------------------------------------------------------------
# Certificates
# --------------------------------------------------------------------------

CertPair = collections.namedtuple("CertPair", "cert key")


def _write_private(path, data):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, 0o600)  # O_CREAT's mode does not apply to an existing file


def _write_public(path, data):
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, 0o644)


class Pki:
    """Certificates for one test cluster, written under ``directory``.

    Keys are EC P-256: generating them takes microseconds, where RSA would add
    visible time to every session; etcd, Go, OpenSSL and gRPC all accept them.
    The JWT signing key is RSA because the cluster runs RS256.

    Attributes (all file paths, keys mode 0600):
      ca_cert, ca_key
      servers: {member name: CertPair}   (SANs: member IP, 127.0.0.1, localhost,
                                          member name; EKU serverAuth+clientAuth)
      root: CertPair (CN root), client: CertPair (no CN: what the JSON gateway needs),
      cn_client: CertPair (CN pgha-test-client: refused by the gateway once auth is on)
      wrong_ca_cert, wrong_ca_key, wrong_ca_server: CertPair, wrong_ca_client: CertPair
      jwt_private_key, jwt_public_key
    """

    CLIENT_CN = "pgha-test-client"
    VALID_DAYS = 30

    def __init__(self, directory, members, wrong_ca_ips=()):
        """``members``: iterable of (name, ip, common_name)."""
        # Imported here so that importing the harness (e.g. for binaries_missing())
        # does not need cryptography.
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec, rsa
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

        self._x509, self._hashes, self._ser, self._ec = x509, hashes, serialization, ec
        self._eku, self._nameoid = ExtendedKeyUsageOID, NameOID
        self.directory = directory
        os.makedirs(directory, exist_ok=True)
        os.chmod(directory, 0o700)

        self._ca = self._make_ca("pgha test CA")
        self.ca_cert, self.ca_key = self._write_pair("ca", *self._ca)
        self.servers = {}
        member_ips = []
        for name, ip, cn in members:
            member_ips.append(ip)
            self.servers[name] = self._issue(self._ca, "server-" + name, cn,
                                             server_names=(name, "localhost"),
                                             ips=(ip, "127.0.0.1"), server=True)
        self.root = self.issue_client_cert("root", "root")
        # With client-cert-auth and auth enabled, etcd's JSON gateway refuses
        # any client certificate that carries a CommonName (it cannot pass the
        # CN on as the user), so the everyday client certificate has none.
        self.client = self.issue_client_cert("client", None)
        self.cn_client = self.issue_client_cert("cn-client", self.CLIENT_CN)

        # An unrelated CA whose certificates look right in every other way
        # (same SANs, a client CN of "root"): only the issuer is wrong, so a
        # test that passes with them proves the chain is really checked.
        self._wrong_ca = self._make_ca("pgha WRONG test CA")
        self.wrong_ca_cert, self.wrong_ca_key = self._write_pair("wrong-ca", *self._wrong_ca)
        wrong_ips = tuple(dict.fromkeys(tuple(wrong_ca_ips) + tuple(member_ips) + ("127.0.0.1",)))
        self.wrong_ca_server = self._issue(self._wrong_ca, "wrong-ca-server", "wrong-ca-server",
                                           server_names=("localhost",) + tuple(self.servers),
                                           ips=wrong_ips, server=True)
        self.wrong_ca_client = self._issue(self._wrong_ca, "wrong-ca-client", "root", client=True)

        jwt_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.jwt_private_key = os.path.join(directory, "jwt-private.pem")
        self.jwt_public_key = os.path.join(directory, "jwt-public.pem")
        _write_private(self.jwt_private_key, jwt_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        _write_public(self.jwt_public_key, jwt_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))

    # -- public helpers ---------------------------------------------------

    def issue_client_cert(self, label, common_name):
        """Another client certificate from the test CA (files ``<label>.crt/.key``)."""
        return self._issue(self._ca, label, common_name, client=True)

    def issue_server_cert(self, label, common_name, dns_names=("localhost",), ips=("127.0.0.1",)):
        """Another server certificate from the test CA (e.g. for a fake server)."""
        return self._issue(self._ca, label, common_name, server_names=dns_names, ips=ips, server=True)

    # -- internals --------------------------------------------------------

    def _name(self, cn):
        if cn is None:
            return self._x509.Name([self._x509.NameAttribute(self._nameoid.ORGANIZATION_NAME, "pgha tests")])
        return self._x509.Name([self._x509.NameAttribute(self._nameoid.COMMON_NAME, cn)])

    def _validity(self, builder):
        now = datetime.datetime.now(datetime.timezone.utc)
        # Backdated so a slightly different clock in a container still accepts it.
        return builder.not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(
            now + datetime.timedelta(days=self.VALID_DAYS))

    def _make_ca(self, cn):
        x509 = self._x509
        key = self._ec.generate_private_key(self._ec.SECP256R1())
        name = self._name(cn)
        b = x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        b = self._validity(b.serial_number(x509.random_serial_number()))
        b = b.add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        b = b.add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                          content_commitment=False, key_encipherment=False,
                                          data_encipherment=False, key_agreement=False,
                                          encipher_only=False, decipher_only=False), critical=True)
        b = b.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        return b.sign(key, self._hashes.SHA256()), key

    def _issue(self, ca, label, cn, server_names=(), ips=(), server=False, client=False):
        x509 = self._x509
        ca_cert, ca_key = ca
        key = self._ec.generate_private_key(self._ec.SECP256R1())
        b = x509.CertificateBuilder().subject_name(self._name(cn)).issuer_name(ca_cert.subject)
        b = self._validity(b.public_key(key.public_key()).serial_number(x509.random_serial_number()))
        b = b.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        b = b.add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=False, crl_sign=False,
                                          content_commitment=False, key_encipherment=False,
                                          data_encipherment=False, key_agreement=True,
                                          encipher_only=False, decipher_only=False), critical=True)
        usages = []
        if server:
            # etcd 3.4's gRPC gateway dials its own gRPC port presenting the
            # *server* certificate when client-cert-auth is on, and peers present
            # it to each other: it must be good for clientAuth as well.
            usages += [self._eku.SERVER_AUTH, self._eku.CLIENT_AUTH]
        elif client:
            usages.append(self._eku.CLIENT_AUTH)
        b = b.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        sans = [x509.DNSName(n) for n in dict.fromkeys(server_names)]
        sans += [x509.IPAddress(ipaddress.ip_address(i)) for i in dict.fromkeys(ips)]
        if sans:
            b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        b = b.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        b = b.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                            critical=False)
        cert = b.sign(ca_key, self._hashes.SHA256())
        return CertPair(*self._write_pair(label, cert, key))

    def _write_pair(self, label, cert, key):
        ser = self._ser
        cert_path = os.path.join(self.directory, label + ".crt")
        key_path = os.path.join(self.directory, label + ".key")
        _write_public(cert_path, cert.public_bytes(ser.Encoding.PEM))
        _write_private(key_path, key.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.PKCS8,
                                                   ser.NoEncryption()))
        return cert_path, key_path


# --------------------------------------------------------------------------
# One etcd process
# --------------------------------------------------------------------------

class EtcdMember:
    """One real etcd process.

    Built by :class:`EtcdCluster`; ``initial_cluster`` etc. are filled in by it.
    Ports never change over restarts: the other members know this one by URL.
    """

    def __init__(self, name, ip, client_port, peer_port, base_dir, tls=None, extra_args=(), config_file=None):
        self.name = name
        self.ip = ip
        self.client_port = client_port
        self.peer_port = peer_port
        self.base_dir = base_dir
        self.data_dir = os.path.join(base_dir, "data")
        self.log_path = os.path.join(base_dir, "etcd.log")
        # zap writes to log_path; Go panics and flag errors go to stderr.
        self.stderr_path = os.path.join(base_dir, "etcd.stderr")
        # dict: cert, key, ca, health_cert, health_key (or None); optionally
        # peer_cert, peer_key, peer_ca when peers use other certificates.
        self.tls = tls
        self.extra_args = list(extra_args)
        # A configuration file (e.g. one a role rendered): etcd then reads
        # nothing but it, and the addresses and TLS files above must match it.
        self.config_file = config_file
        self.initial_cluster = None
        self.cluster_token = None
        self.auth_token_arg = None
        # "existing" for a member that joins a running cluster (see
        # EtcdCluster.start_joining_member); etcd ignores it once the data dir exists.
        self.initial_cluster_state = "new"
        self.process = None
        self.start_count = 0
        self._ssl_ctx = None
        os.makedirs(base_dir, exist_ok=True)

    def __repr__(self):
        state = "running" if self.is_running else "stopped"
        return "<EtcdMember %s %s pid=%s %s>" % (self.name, self.client_url, self.pid, state)

    # -- addresses ----------------------------------------------------------

    @property
    def scheme(self):
        return "https" if self.tls else "http"

    @property
    def client_url(self):
        return "%s://%s:%d" % (self.scheme, self.ip, self.client_port)

    @property
    def peer_url(self):
        return "%s://%s:%d" % (self.scheme, self.ip, self.peer_port)

    @property
    def cert(self):
        return self.tls["cert"] if self.tls else None

    @property
    def key(self):
        return self.tls["key"] if self.tls else None

    # Peers reuse the server certificate unless ``tls`` names peer files: it
    # already has the member's SANs and clientAuth, which is all peer mutual
    # TLS needs.
    @property
    def peer_cert(self):
        return self.tls.get("peer_cert", self.tls["cert"]) if self.tls else None

    @property
    def peer_key(self):
        return self.tls.get("peer_key", self.tls["key"]) if self.tls else None

    @property
    def peer_ca(self):
        return self.tls.get("peer_ca", self.tls["ca"]) if self.tls else None

    # -- process control ----------------------------------------------------

    @property
    def pid(self):
        return self.process.pid if self.process else None

    @property
    def is_running(self):
        return self.process is not None and self.process.poll() is None

    def command(self):
        if self.config_file:
            return [ETCD_BIN, "--config-file", self.config_file]
        args = [
            ETCD_BIN,
            "--name", self.name,
            "--data-dir", self.data_dir,
            "--listen-client-urls", self.client_url,
            "--advertise-client-urls", self.client_url,
            "--listen-peer-urls", self.peer_url,
            "--initial-advertise-peer-urls", self.peer_url,
            "--initial-cluster", self.initial_cluster,
            # Ignored by etcd once the data dir exists, so restarts rejoin as-is.
            "--initial-cluster-state", self.initial_cluster_state,
            "--initial-cluster-token", self.cluster_token,
            "--heartbeat-interval", str(HEARTBEAT_MS),
            "--election-timeout", str(ELECTION_MS),
            "--logger", "zap",
            "--log-outputs", self.log_path,
        ]
        if self.tls:
            args += [
                "--cert-file", self.cert, "--key-file", self.key,
                "--trusted-ca-file", self.tls["ca"], "--client-cert-auth",
                "--peer-cert-file", self.peer_cert, "--peer-key-file", self.peer_key,
                "--peer-trusted-ca-file", self.peer_ca, "--peer-client-cert-auth",
            ]
        if self.auth_token_arg:
            args += ["--auth-token", self.auth_token_arg]
        return args + self.extra_args

    def start(self, wait=True, timeout=30.0):
        """Start etcd (no-op if running); with ``wait``, block until /health is true.

        Waiting needs a quorum: when several members of a cluster are down,
        start them with ``wait=False`` and use :meth:`EtcdCluster.wait_healthy`.
        """
        if self.is_running:
            if wait:
                self.wait_healthy(timeout)
            return self
        argv = self.command()
        if _SETPRIV_BIN and threading.current_thread() is threading.main_thread():
            # The parent-death signal fires when the *thread* that forked dies,
            # so it is only safe from the main thread (whose end is the
            # process's end).  It covers what atexit cannot: pytest SIGKILLed
            # or os._exit()ed by a timeout.
            argv = [_SETPRIV_BIN, "--pdeathsig", "KILL", "--"] + argv
        with open(os.path.join(self.base_dir, "etcd.cmd"), "a") as f:
            f.write("%s %s\n" % (time.strftime("%H:%M:%S"), " ".join(argv)))
        with open(self.stderr_path, "ab") as err:
            self.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                            env=_clean_env(), start_new_session=True, close_fds=True)
        self.start_count += 1
        with _LIVE_LOCK:
            _LIVE_MEMBERS.add(self)
        if wait:
            self.wait_healthy(timeout)
        return self

    def _signal_group(self, sig):
        try:
            os.killpg(self.process.pid, sig)
        except ProcessLookupError:
            pass

    def stop(self, timeout=10.0):
        """SIGTERM (etcd hands over leadership and exits cleanly), SIGKILL after ``timeout``.

        A follower takes about 1 s to shut down gracefully with etcd 3.4; when
        the test does not care how etcd went away, :meth:`kill` is instant.
        """
        self._terminate()
        self._wait_stopped(timeout)

    def _terminate(self):
        if self.process is not None and self.process.poll() is None:
            self._signal_group(signal.SIGTERM)

    def _wait_stopped(self, timeout):
        if self.process is None:
            return
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._signal_group(signal.SIGKILL)
            self.process.wait(10)
        self._forget()

    def kill(self):
        """SIGKILL: a crash, no leadership hand-over."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self._signal_group(signal.SIGKILL)
            self.process.wait(10)
        self._forget()

    def _forget(self):
        with _LIVE_LOCK:
            _LIVE_MEMBERS.discard(self)

    def restart(self, wait=True, timeout=30.0):
        """Graceful :meth:`stop`, then :meth:`start` on the same ports and data dir."""
        self.stop()
        return self.start(wait=wait, timeout=timeout)

    # -- health -------------------------------------------------------------

    def _ssl_context(self):
        if self._ssl_ctx is None:
            ctx = ssl.create_default_context(cafile=self.tls["ca"])
            ctx.load_cert_chain(self.tls["health_cert"], self.tls["health_key"])
            self._ssl_ctx = ctx
        return self._ssl_ctx

    def http_get(self, path, timeout=1.0):
        """GET on the client URL (TLS with the harness's client cert); returns (status, body)."""
        if self.tls:
            conn = http.client.HTTPSConnection(self.ip, self.client_port, timeout=timeout,
                                               context=self._ssl_context())
        else:
            conn = http.client.HTTPConnection(self.ip, self.client_port, timeout=timeout)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def _peer_ssl_context(self):
        ctx = ssl.create_default_context(cafile=self.peer_ca)
        ctx.load_cert_chain(self.peer_cert, self.peer_key)
        return ctx

    def wait_peer_serving(self, timeout=30.0):
        """Block until the peer listener answers HTTP (before any leader exists)."""
        deadline = time.monotonic() + timeout
        ctx = self._peer_ssl_context() if self.tls else None
        while True:
            if not self.is_running:
                raise EtcdStartError("etcd member %s exited with code %s\n%s"
                                     % (self.name, self.process.returncode, self.log_tail()))
            if ctx:
                conn = http.client.HTTPSConnection(self.ip, self.peer_port, timeout=1.0, context=ctx)
            else:
                conn = http.client.HTTPConnection(self.ip, self.peer_port, timeout=1.0)
            try:
                conn.request("GET", "/version")
                if conn.getresponse().status == 200:
                    return self
            except (OSError, http.client.HTTPException):
                pass
            finally:
                conn.close()
            if time.monotonic() > deadline:
                raise EtcdStartError("etcd member %s: peer port not serving after %.1fs\n%s"
                                     % (self.name, timeout, self.log_tail()))
            time.sleep(0.02)

    def is_healthy(self, timeout=1.0):
        """True when the process runs and /health says so (has a leader, quorum read works)."""
        if not self.is_running:
            return False
        try:
            status, body = self.http_get("/health", timeout)
        except (OSError, http.client.HTTPException):
            return False
        if status != 200:
            return False
        try:
            return json.loads(body).get("health") == "true"
        except ValueError:
            return False

    def wait_healthy(self, timeout=30.0):
        deadline = time.monotonic() + timeout
        while True:
            if self.process is not None and self.process.poll() is not None:
                raise EtcdStartError("etcd member %s exited with code %s\n%s"
                                     % (self.name, self.process.returncode, self.log_tail()))
            if self.is_healthy():
                return self
            if time.monotonic() > deadline:
                raise EtcdStartError("etcd member %s not healthy after %.1fs\n%s"
                                     % (self.name, timeout, self.log_tail()))
            time.sleep(POLL_INTERVAL)

    # -- logs ---------------------------------------------------------------

    def log_tail(self, lines=40):
        """Last ``lines`` lines of the zap log, and of stderr if etcd wrote anything there."""
        out = ["==== %s (%s) %s" % (self.name, self.client_url, self.log_path)]
        out += _tail(self.log_path, lines)
        err = _tail(self.stderr_path, lines)
        if err:
            out += ["==== %s stderr %s" % (self.name, self.stderr_path)] + err
        return "\n".join(out)


def by_index_or_name(items, which):
    """``items[which]`` for an index, else the item whose ``name`` is ``which`` (KeyError when none is)."""
    if isinstance(which, str):
        for item in items:
            if item.name == which:
                return item
        raise KeyError(which)
    return items[which]


def _tail(path, lines):
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 1000 * lines))  # zap lines run to several hundred bytes
            data = f.read().decode("utf-8", "replace")
    except OSError:
        return []
    return data.splitlines()[-lines:]


# --------------------------------------------------------------------------
# A cluster
# --------------------------------------------------------------------------

_AUTO = object()


class EtcdCluster:
    """N real etcd members (1 or 3 in the fixtures), plain or TLS, with optional RBAC.

    ``tls=True`` means TLS-only client and peer listeners, ``--client-cert-auth``
    and ``--peer-client-cert-auth``.  ``auth=True`` means JWT tokens (RS256,
    ``token_ttl`` seconds), the users in :data:`RBAC_USERS` plus ``root`` with
    random passwords, then ``auth enable`` - all done with etcdctl.
    ``jwt=True`` runs etcd with those JWT tokens even with ``auth=False``
    (for tests that create users and enable auth themselves; etcd's default
    is "simple" tokens).

    ``base_dir`` holds certs, logs and data dirs; without one a temp dir is
    made and removed by :meth:`cleanup`.  Data dirs are always removed by
    :meth:`cleanup` (etcd preallocates 64 MB of WAL per member); logs stay.
    """

    def __init__(self, base_dir=None, size=1, tls=False, auth=False, token_ttl=3,
                 ips=None, name="etcd", extra_args=(), jwt=False):
        if size < 1:
            raise ValueError("size must be >= 1")
        self.name = name
        self.size = size
        self.tls = tls
        self.auth = auth
        self.token_ttl = token_ttl
        self.ips = list(ips or default_ips(size, tls))
        if len(self.ips) < size:
            # Fewer addresses than members: share them round-robin, ports keep them apart.
            self.ips = [self.ips[i % len(self.ips)] for i in range(size)]
        self._own_dir = base_dir is None
        self.base_dir = base_dir or tempfile.mkdtemp(prefix="pgha-etcd-%s-" % name)
        if self._own_dir:
            _OWNED_DIRS.append(self.base_dir)
        os.makedirs(self.base_dir, exist_ok=True)
        self.startup_seconds = None
        self.users = {}
        self.pki = None
        self._extra_args = list(extra_args)
        self._made_members = size
        # Members made by new_member() and not (or no longer) in the cluster.
        self._detached = []

        names = ["%s-%d" % (name, i + 1) for i in range(size)]
        if tls or auth or jwt:
            # The server CN must not be an etcd user: a request that reaches
            # etcd without a token (e.g. through the JSON gateway, which dials
            # with the server cert) is authorised as the certificate's CN.
            self.pki = Pki(os.path.join(self.base_dir, "pki"),
                           [(n, ip, "%s-member-%d" % (name, i + 1))
                            for i, (n, ip) in enumerate(zip(names, self.ips))])
        self.members = []
        for i, n in enumerate(names):
            tls_files = None
            if tls:
                pair = self.pki.servers[n]
                tls_files = {"cert": pair.cert, "key": pair.key, "ca": self.pki.ca_cert,
                             "health_cert": self.pki.client.cert, "health_key": self.pki.client.key}
            self.members.append(EtcdMember(n, self.ips[i], 0, 0, os.path.join(self.base_dir, n),
                                           tls=tls_files, extra_args=self._extra_args))
        self.cluster_token = "pgha-test-%s-%s" % (name, secrets.token_hex(6))
        if auth:
            self.users = {"root": secrets.token_urlsafe(12)}
            for user in RBAC_USERS:
                self.users[user] = secrets.token_urlsafe(12)
        if auth or jwt:
            self._auth_token_arg = "jwt,pub-key=%s,priv-key=%s,sign-method=RS256,ttl=%ss" % (
                self.pki.jwt_public_key, self.pki.jwt_private_key, token_ttl)
        else:
            self._auth_token_arg = None

    def __repr__(self):
        return "<EtcdCluster %s size=%d tls=%s auth=%s %s>" % (self.name, self.size, self.tls,
                                                               self.auth, self.endpoints)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()

    # -- file paths ---------------------------------------------------------

    def _pki_path(self, attr, index=None):
        if self.pki is None:
            return None
        value = getattr(self.pki, attr)
        return value[index] if index is not None else value

    ca_cert = property(lambda self: self._pki_path("ca_cert"))
    ca_key = property(lambda self: self._pki_path("ca_key"))
    client_cert = property(lambda self: self._pki_path("client", 0))
    client_key = property(lambda self: self._pki_path("client", 1))
    cn_client_cert = property(lambda self: self._pki_path("cn_client", 0))
    cn_client_key = property(lambda self: self._pki_path("cn_client", 1))
    root_cert = property(lambda self: self._pki_path("root", 0))
    root_key = property(lambda self: self._pki_path("root", 1))
    wrong_ca_cert = property(lambda self: self._pki_path("wrong_ca_cert"))
    wrong_ca_key = property(lambda self: self._pki_path("wrong_ca_key"))
    wrong_ca_server_cert = property(lambda self: self._pki_path("wrong_ca_server", 0))
    wrong_ca_server_key = property(lambda self: self._pki_path("wrong_ca_server", 1))
    wrong_ca_client_cert = property(lambda self: self._pki_path("wrong_ca_client", 0))
    wrong_ca_client_key = property(lambda self: self._pki_path("wrong_ca_client", 1))
    jwt_public_key = property(lambda self: self._pki_path("jwt_public_key"))
    jwt_private_key = property(lambda self: self._pki_path("jwt_private_key"))

    @property
    def root_password(self):
        return self.users.get("root")

    @property
    def endpoints(self):
        return [m.client_url for m in self.members]

    def member(self, which):
        """Member by 0-based index (``member(0).name == "etcd-1"``) or by name."""
        return by_index_or_name(self.members, which)

    # -- lifecycle ----------------------------------------------------------

    def _assign_ports(self):
        for m in self.members:
            m.client_port, m.peer_port = pick_free_ports(m.ip, 2)
        initial = ",".join("%s=%s" % (m.name, m.peer_url) for m in self.members)
        for m in self.members:
            m.initial_cluster = initial
            m.cluster_token = self.cluster_token
            m.auth_token_arg = self._auth_token_arg

    def start(self, timeout=60.0):
        """Bootstrap the cluster, lay out RBAC if ``auth``; returns self."""
        t0 = time.monotonic()
        for attempt in range(3):
            self._assign_ports()
            try:
                for m in self.members:
                    m.start(wait=False)
                    # One at a time: a new member first asks its peers whether
                    # it already belongs to a cluster, and a peer whose port is
                    # open but not yet served makes it wait a full second per
                    # peer.  Refused connections (not started) or a serving
                    # peer answer at once, so a short stagger saves ~2 s.
                    m.wait_peer_serving(timeout)
                self.wait_healthy(timeout)
                break
            except EtcdStartError:
                in_use = any("address already in use" in m.log_tail(200) for m in self.members)
                self.stop_all()
                if not in_use or attempt == 2:
                    raise
                # Lost a port race with another program: wipe and retry on new ports.
                for m in self.members:
                    shutil.rmtree(m.data_dir, ignore_errors=True)
        if self.auth:
            self._setup_rbac()
        self.startup_seconds = time.monotonic() - t0
        return self

    def wait_healthy(self, timeout=30.0, only_running=False):
        """Block until every member runs and reports healthy; error with log tails otherwise.

        ``only_running=True``: check just the members that run now, e.g. to
        wait for the survivors to elect a new leader after a kill.
        """
        deadline = time.monotonic() + timeout
        members = [m for m in self.members if m.is_running] if only_running else self.members
        if not members:
            raise EtcdHarnessError("no running member in %r" % self)
        while True:
            dead = [m for m in members if not m.is_running]
            if dead:
                raise EtcdStartError("etcd member(s) not running: %s\n%s" % (
                    ", ".join(m.name for m in dead), self.logs_tail()))
            if all(m.is_healthy() for m in members):
                return self
            if time.monotonic() > deadline:
                raise EtcdStartError("etcd cluster %s not healthy after %.1fs\n%s" % (
                    self.name, timeout, self.logs_tail()))
            time.sleep(POLL_INTERVAL)

    def ensure_all_running(self, timeout=30.0):
        """Restart every stopped/killed member (same ports and data), wait for all healthy."""
        for m in self.members:
            if not m.is_running:
                m.start(wait=False)
        return self.wait_healthy(timeout)

    def stop_all(self, timeout=10.0):
        """Graceful stop of every member: followers together, then the leader.

        Signalling the leader together with its followers makes it try to hand
        leadership to a member that is going away (about 6 s here); followers
        first and the leader alone takes about 1 s.
        """
        running = [m for m in self.members if m.is_running]
        try:
            leader = self.leader() if len(running) > 1 else None
        except (EtcdHarnessError, subprocess.SubprocessError, ValueError, KeyError):
            leader = None  # no quorum / no answer: just stop them in order
        batches = [[m] for m in running] if leader is None else [
            [m for m in running if m is not leader], [leader]]
        deadline = time.monotonic() + timeout
        for batch in batches:
            for m in batch:
                m._terminate()
            for m in batch:
                m._wait_stopped(max(0.1, deadline - time.monotonic()))

    def kill_all(self):
        for m in self.members + self._detached:
            m.kill()

    def cleanup(self):
        """Kill every member and remove data dirs (and base_dir if the harness made it).

        SIGKILL, not a graceful stop: the data is thrown away, and a graceful
        stop of a whole cluster spends seconds on leadership hand-over.
        """
        try:
            self.kill_all()
        finally:
            for m in self.members + self._detached:
                shutil.rmtree(m.data_dir, ignore_errors=True)
            if self._own_dir:
                shutil.rmtree(self.base_dir, ignore_errors=True)

    def logs_tail(self, lines=40):
        return "\n".join(m.log_tail(lines) for m in self.members + self._detached)

    # -- membership changes -------------------------------------------------

    def new_member(self, name=None, ip=None):
        """An extra :class:`EtcdMember` for this cluster: free ports, certificates, NOT started.

        It is not in :attr:`members` yet.  The usual sequence is: add it to the
        cluster through the API (``member add`` with ``new.peer_url``), then
        :meth:`start_joining_member`; :meth:`drop_member` after removing it.
        Default name ``<cluster name>-<n>`` (n counts every member ever made),
        default address the next loopback address of the cluster's scheme.
        """
        self._made_members += 1
        n = self._made_members
        name = name or "%s-%d" % (self.name, n)
        if any(m.name == name for m in self.members + self._detached):
            raise EtcdHarnessError("member name %r is taken in %r" % (name, self))
        ip = ip or default_ips(n, self.tls)[-1]  # n >= 2 here: never the single plain node's address
        tls_files = None
        if self.tls:
            pair = self.pki.issue_server_cert("server-" + name, "%s-member-%d" % (self.name, n),
                                              dns_names=(name, "localhost"), ips=(ip, "127.0.0.1"))
            tls_files = {"cert": pair.cert, "key": pair.key, "ca": self.pki.ca_cert,
                         "health_cert": self.pki.client.cert, "health_key": self.pki.client.key}
        member = EtcdMember(name, ip, 0, 0, os.path.join(self.base_dir, name), tls=tls_files,
                            extra_args=self._extra_args)
        member.client_port, member.peer_port = pick_free_ports(ip, 2)
        member.cluster_token = self.cluster_token
        member.auth_token_arg = self._auth_token_arg
        member.initial_cluster_state = "existing"
        self._detached.append(member)
        return member

    def start_joining_member(self, member, initial_cluster=None, wait=True, timeout=30.0):
        """Start a member from :meth:`new_member` that was already added through the API.

        It runs with ``--initial-cluster-state existing`` and an initial
        cluster of :attr:`members` plus itself (or ``initial_cluster`` as
        given: etcd wants exactly the current membership, names as started),
        and becomes part of :attr:`members` (etcdctl, ``wait_healthy`` and
        ``cleanup`` then include it).  ``wait``: block until its /health is
        true - a learner reports healthy too once it has a leader.
        """
        if member in self.members:
            raise EtcdHarnessError("%r is already a member of %r" % (member, self))
        member.initial_cluster = initial_cluster or ",".join(
            "%s=%s" % (m.name, m.peer_url) for m in self.members + [member])
        if member in self._detached:
            self._detached.remove(member)
        self.members.append(member)
        self.size = len(self.members)
        return member.start(wait=wait, timeout=timeout)

    def drop_member(self, member, graceful=False):
        """Stop (``graceful``) or kill a member and forget it, e.g. after removing it through the API.

        It leaves :attr:`members`; its data dir is deleted, its log is kept
        (and still shown by :meth:`logs_tail`).  Peer URLs known to etcd are
        not touched: remove the member through the API first.
        """
        if graceful:
            member.stop()
        else:
            member.kill()
        if member in self.members:
            self.members.remove(member)
            self.size = len(self.members)
        if member not in self._detached:
            self._detached.append(member)
        shutil.rmtree(member.data_dir, ignore_errors=True)

    # -- etcdctl ------------------------------------------------------------

    def etcdctl_cmd(self, *args, user=_AUTO, password=None, endpoints=None,
                    cert=_AUTO, key=_AUTO, cacert=_AUTO):
        """(argv, env) for etcdctl against this cluster; see :meth:`etcdctl` for the options."""
        if endpoints is None:
            endpoints = [m.client_url for m in self.members if m.is_running] or self.endpoints
        elif isinstance(endpoints, str):
            endpoints = [endpoints]
        argv = [ETCDCTL_BIN, "--endpoints", ",".join(endpoints),
                "--dial-timeout", "3s", "--command-timeout", "10s"]
        if self.tls:
            cacert = self.ca_cert if cacert is _AUTO else cacert
            cert = self.client_cert if cert is _AUTO else cert
            key = self.client_key if key is _AUTO else key
            if cacert:
                argv += ["--cacert", cacert]
            if cert:
                argv += ["--cert", cert, "--key", key]
        if user is _AUTO:
            user = "root" if self.auth else None
        if user is not None:
            if password is None:
                password = self.users.get(user)
            argv += ["--user", user if password is None else "%s:%s" % (user, password)]
        return argv + [str(a) for a in args], _clean_env({"ETCDCTL_API": "3"})

    def etcdctl_run(self, *args, input=None, timeout=30.0, **kw):
        """Run etcdctl, return the ``subprocess.CompletedProcess`` (text, never raises on exit code)."""
        argv, env = self.etcdctl_cmd(*args, **kw)
        return subprocess.run(argv, env=env, input=input, capture_output=True, text=True, check=False,
                              timeout=timeout, stdin=None if input is not None else subprocess.DEVNULL)

    def etcdctl(self, *args, check=True, input=None, timeout=30.0, **kw):
        """Run the real etcdctl (API v3) and return its stdout.

        Options: ``user`` - default ``root`` when auth is on, ``None`` for no
        ``--user`` (then etcd authorises the TLS client cert's CN), or any name
        in :attr:`users` (password looked up) / any name plus ``password=``.
        ``cert``/``key``/``cacert`` default to the ``client`` cert (CN
        pgha-test-client, not an etcd user) and the test CA; ``None`` leaves
        the flag out.  ``endpoints``: URL or list, default every running member.
        ``check``: raise :class:`EtcdctlError` on a non-zero exit.
        """
        res = self.etcdctl_run(*args, input=input, timeout=timeout, **kw)
        if check and res.returncode != 0:
            raise EtcdctlError(res.returncode, res.args, res.stdout, res.stderr)
        return res.stdout

    def status(self):
        """``etcdctl endpoint status -w json`` for every running member (parsed)."""
        running = [m.client_url for m in self.members if m.is_running]
        return json.loads(self.etcdctl("endpoint", "status", "-w", "json", endpoints=running))

    def leader(self):
        """The member that currently leads (by ``endpoint status``)."""
        by_id = {}
        leader_ids = set()
        for st in self.status():
            by_id[st["Status"]["header"]["member_id"]] = st["Endpoint"]
            leader_ids.add(st["Status"]["leader"])
        if len(leader_ids) != 1:
            raise EtcdHarnessError("members disagree on the leader: %s" % leader_ids)
        url = by_id.get(leader_ids.pop())
        for m in self.members:
            if m.client_url == url:
                return m
        raise EtcdHarnessError("leader is not a running member")

    # -- RBAC ---------------------------------------------------------------

    def _setup_rbac(self):
        # etcdctl, not the code under test, lays this out; before `auth enable`
        # no credentials are needed.
        ctl = self.etcdctl
        ctl("role", "add", "root", user=None)
        ctl("user", "add", "root", "--new-user-password", self.users["root"], user=None)
        ctl("user", "grant-role", "root", "root", user=None)
        for user, perms in RBAC_USERS.items():
            ctl("role", "add", user, user=None)
            for perm, prefix in perms:
                ctl("role", "grant-permission", "--prefix=true", user, perm, prefix, user=None)
            ctl("user", "add", user, "--new-user-password", self.users[user], user=None)
            ctl("user", "grant-role", user, user, user=None)
        ctl("auth", "enable", user=None)


# --------------------------------------------------------------------------
# The PyPI etcd3 library as an independent client
# --------------------------------------------------------------------------

def _import_etcd3():
    # etcd3 0.12's generated code needs protobuf's pure-Python backend with
    # protobuf >= 4; the variable only counts before protobuf is first imported.
    if "etcd3" not in sys.modules:
        os.environ["PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION"] = "python"
        if "google.protobuf" in sys.modules:
            from google.protobuf.internal import api_implementation  # noqa: PLC0415
            if api_implementation.Type() != "python":
                raise EtcdHarnessError(
                    "protobuf was imported with the %r backend before etcd3; set "
                    "PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python before importing protobuf"
                    % api_implementation.Type())
    with warnings.catch_warnings():
        # Its generated *_pb2 modules use protobuf APIs deprecated since 2022:
        # ~100 warnings per session that say nothing about our code.
        warnings.simplefilter("ignore", DeprecationWarning)
        import etcd3  # noqa: PLC0415
    return etcd3


def etcd3_client(cluster, user=_AUTO, password=None, member=None, cert=_AUTO, key=_AUTO, timeout=10):
    """A raw ``etcd3.Etcd3Client`` to one member (first running one by default).

    With auth it holds ONE token, valid ``cluster.token_ttl`` seconds: etcd3
    0.12 never re-authenticates, so later calls fail with gRPC UNAUTHENTICATED
    "invalid auth token".  Prefer :class:`Etcd3Reauth` in tests.
    """
    etcd3 = _import_etcd3()
    m = _pick_member(cluster, member)
    if user is _AUTO:
        user = "root" if cluster.auth else None
    if user is not None and password is None:
        password = cluster.users[user]
    kwargs = {"host": m.ip, "port": m.client_port, "timeout": timeout,
              # gRPC honours http(s)_proxy; loopback test traffic must not go there.
              "grpc_options": [("grpc.enable_http_proxy", 0)]}
    if cluster.tls:
        kwargs["ca_cert"] = cluster.ca_cert
        cert = cluster.client_cert if cert is _AUTO else cert
        key = cluster.client_key if key is _AUTO else key
        if cert:
            kwargs["cert_cert"], kwargs["cert_key"] = cert, key
    if user is not None:
        kwargs["user"], kwargs["password"] = user, password
    return etcd3.client(**kwargs)


def _pick_member(cluster, member):
    if member is not None:
        return cluster.member(member)
    for m in cluster.members:
        if m.is_running:
            return m
    raise EtcdHarnessError("no running member in %r" % cluster)


class Etcd3Reauth:
    """An ``etcd3`` client that stays usable past the JWT token TTL.

    Attribute access is forwarded to a real ``etcd3.Etcd3Client``; that client
    is replaced by a freshly authenticated one when its token is older than
    half the TTL, and a call failing with "invalid auth token" is retried once
    on a new client (etcd rejects such a request before proposing it, so the
    retry cannot apply anything twice).  ``.client`` gives the current raw
    client, e.g. for objects like leases/locks that keep a reference to it -
    those, and watches, live only as long as that client's token for new
    requests.  Without auth it is just one client.  ``close()`` closes all.
    """

    def __init__(self, cluster, **kwargs):
        self._cluster = cluster
        self._kwargs = kwargs
        self._clients = []
        self._client = None
        self._born = 0.0
        user = kwargs.get("user", _AUTO)
        self._authenticated = cluster.auth and (user is _AUTO or user is not None)

    @property
    def client(self):
        if self._client is None or (
                self._authenticated and time.monotonic() - self._born > self._cluster.token_ttl / 2.0):
            self._renew()
        return self._client

    def _renew(self):
        self._born = time.monotonic()
        self._client = etcd3_client(self._cluster, **self._kwargs)
        self._clients.append(self._client)
        # Old clients stay open until close(): a watch on one would die otherwise.

    def __getattr__(self, name):
        attr = getattr(self.client, name)
        if not callable(attr) or not self._authenticated:
            return attr

        def call(*args, **kwargs):
            try:
                return getattr(self.client, name)(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - only the token case is retried
                if "invalid auth token" not in str(getattr(exc, "details", lambda: "")()) \
                        and "invalid auth token" not in str(exc):
                    raise
                self._renew()
                return getattr(self._client, name)(*args, **kwargs)

        call.__name__ = name
        return call

    def close(self):
        for c in self._clients:
            try:
                c.close()
            except Exception:  # noqa: BLE001
                pass
        self._clients = []
        self._client = None
