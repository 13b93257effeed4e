"""Sequential put/get ops/s of our etcd client against the etcd3 library and etcdctl.

Run from the repository root with the project venv::

    .venv/bin/python bench/etcd_client.py [--ops 2000] [--rounds 3] [--json FILE]

It starts a throw-away 3-member etcd cluster (TLS, client-cert-auth, RBAC with
JWT tokens) with the integration-test harness, drives the first member with
each client in turn, and prints ops/s and the ratios of our client to the
fastest etcd3-library variant measured in the same run.  See bench/README.md.

The same file is also the etcd3 worker (``--worker etcd3``): that mode runs
under another interpreter (e.g. Debian's /usr/bin/python3) and must only need
the stdlib and etcd3, so everything that touches the collection or the
harness is imported inside the functions of the main mode.
"""

import argparse
import json
import os
import platform
import secrets
import select
import shutil
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import traceback

KEY_PREFIX = "/pgha-bench/"
VALUE_LEN = 16
WORKER_TIMEOUT = 300.0


def bench_keys(count):
    return ["%sk%05d" % (KEY_PREFIX, i) for i in range(count)]


def bench_value(tag):
    # Fixed size so that every client moves the same bytes whatever its tag.
    return (tag + "-" * VALUE_LEN)[:VALUE_LEN]


# The two loops are shared by the main process and the workers so that every
# client is timed by exactly the same code; keys and value are built before
# the clock starts.

def timed_puts(put, keys, value):
    t0 = time.perf_counter()
    for key in keys:
        put(key, value)
    return time.perf_counter() - t0


def timed_gets(get, keys):
    missing = 0
    t0 = time.perf_counter()
    for key in keys:
        if get(key) is None:
            missing += 1
    return time.perf_counter() - t0, missing


# --------------------------------------------------------------------------
# Worker mode: the etcd3 library, stdlib + etcd3 only
# --------------------------------------------------------------------------

def _say(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def _etcd3_get_value(client, key):
    value, _meta = client.get(key)
    return value


def run_etcd3_worker():
    """Line protocol on stdin/stdout: one JSON config line, then one JSON command per line.

    The config (with the password) comes over stdin rather than argv so that it
    does not show in the process list.
    """
    cfg = json.loads(sys.stdin.readline())
    try:
        import warnings
        with warnings.catch_warnings():
            # Its generated code uses long-deprecated protobuf APIs.
            warnings.simplefilter("ignore", DeprecationWarning)
            import etcd3
        import grpc
        import google.protobuf
        from google.protobuf.internal import api_implementation
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which skips this variant
        _say({"ok": False, "stage": "import", "error": "%s: %s" % (type(exc).__name__, exc)})
        return 3
    info = {
        "protobuf_impl": api_implementation.Type(),
        "protobuf": google.protobuf.__version__,
        "grpcio": grpc.__version__,
        "etcd3": getattr(etcd3, "__version__", "?"),
        "python": platform.python_version(),
    }
    try:
        client = etcd3.client(host=cfg["host"], port=cfg["port"], ca_cert=cfg["ca_cert"],
                              cert_cert=cfg["cert"], cert_key=cfg["key"], user=cfg["user"],
                              password=cfg["password"], timeout=cfg["timeout"],
                              # gRPC would follow http(s)_proxy even for loopback.
                              grpc_options=[("grpc.enable_http_proxy", 0)])
    except Exception as exc:  # noqa: BLE001
        _say({"ok": False, "stage": "connect", "error": "%s: %s" % (type(exc).__name__, exc), "info": info})
        return 3
    _say({"ok": True, "info": info})

    def get(key):
        return _etcd3_get_value(client, key)

    for line in sys.stdin:
        cmd = json.loads(line)
        try:
            op = cmd["op"]
            if op == "quit":
                break
            if op == "put":
                _say({"ok": True, "seconds": timed_puts(client.put, bench_keys(cmd["count"]), cmd["value"])})
            elif op == "get":
                seconds, missing = timed_gets(get, bench_keys(cmd["count"]))
                _say({"ok": True, "seconds": seconds, "missing": missing})
            elif op == "write":
                client.put(cmd["key"], cmd["value"])
                _say({"ok": True})
            elif op == "read":
                value = get(cmd["key"])
                _say({"ok": True, "value": None if value is None else value.decode("utf-8")})
            else:
                _say({"ok": False, "error": "unknown command %r" % op})
        except Exception:  # noqa: BLE001 - the parent turns it into an error with this text
            _say({"ok": False, "error": traceback.format_exc()})
    client.close()
    return 0


# --------------------------------------------------------------------------
# Main mode: clients
# --------------------------------------------------------------------------

class BenchError(RuntimeError):
    pass


class Skip(Exception):
    pass


class OursClient:
    def __init__(self, mod, cluster, endpoint, keep_alive, label):
        self.label = label
        self.kind = "ours"
        self.client = mod.EtcdClient([endpoint], ca_cert=cluster.ca_cert, client_cert=cluster.client_cert,
                                     client_key=cluster.client_key, username="root",
                                     password=cluster.users["root"], timeout=10.0, keep_alive=keep_alive)
        self.backend = "JSON gateway, http.client + %s, %s" % (
            _openssl_short(), "persistent connection" if keep_alive else "new TLS connection per request")

    def _get(self, key):
        return self.client.get(key)

    def put_loop(self, count, value):
        return timed_puts(self.client.put, bench_keys(count), value)

    def get_loop(self, count):
        return timed_gets(self._get, bench_keys(count))

    def write(self, key, value):
        self.client.put(key, value)

    def read(self, key):
        kv = self.client.get(key)
        return None if kv is None else kv.value.decode("utf-8")

    @property
    def connects(self):
        return self.client.transport.connects

    def close(self):
        self.client.close()


def _openssl_short():
    parts = ssl.OPENSSL_VERSION.split()
    return " ".join(parts[:2])


def _worker_env(force_pure_python, scrub_python_vars):
    env = {k: v for k, v in os.environ.items()
           if not k.upper().startswith("GRPC_") and k != "PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION"
           and k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "grpc_proxy")}
    if scrub_python_vars:
        # Another interpreter must see its own packages, not this venv's.
        env.pop("PYTHONPATH", None)
        env.pop("PYTHONHOME", None)
    if force_pure_python:
        # etcd3 0.12's generated code loads with protobuf >= 4 only on this backend.
        env["PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION"] = "python"
    return env


class Etcd3WorkerClient:
    """etcd3 in a child interpreter; only the worker's own loop timing counts."""

    def __init__(self, label, python, env, cluster, member):
        self.label = label
        self.kind = "etcd3"
        self.python = python
        self._buf = b""
        self._stderr = tempfile.TemporaryFile()
        try:
            self.proc = subprocess.Popen([python, os.path.abspath(__file__), "--worker", "etcd3"],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
                                         env=env, close_fds=True)
        except OSError as exc:
            self._stderr.close()
            raise Skip("cannot run %s: %s" % (python, exc))
        self._send({"host": member.ip, "port": member.client_port, "ca_cert": cluster.ca_cert,
                    "cert": cluster.client_cert, "key": cluster.client_key, "user": "root",
                    "password": cluster.users["root"], "timeout": 10})
        hello = self._recv(60.0)
        if not hello.get("ok"):
            self.close()
            if hello.get("stage") == "import":
                raise Skip("cannot import etcd3: %s" % hello.get("error"))
            raise BenchError("%s: etcd3 worker failed at %s: %s" % (label, hello.get("stage"), hello.get("error")))
        self.info = hello["info"]
        self.backend = "gRPC %s, protobuf %s (%s backend), Python %s" % (
            self.info["grpcio"], self.info["protobuf"], self.info["protobuf_impl"], self.info["python"])

    def _send(self, obj):
        try:
            self.proc.stdin.write((json.dumps(obj) + "\n").encode("utf-8"))
            self.proc.stdin.flush()
        except OSError as exc:
            raise BenchError("%s: worker is gone (%s)%s" % (self.label, exc, self._stderr_tail()))

    def _stderr_tail(self):
        try:
            self._stderr.seek(0)
            text = self._stderr.read().decode("utf-8", "replace").strip()
        except (OSError, ValueError):
            return ""
        return ("\nworker stderr:\n" + text[-3000:]) if text else ""

    def _recv(self, timeout=WORKER_TIMEOUT):
        # Own buffering on the raw fd: select() cannot see data a buffered
        # reader has already pulled in.
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buf:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BenchError("%s: no answer from the worker within %.0f s%s"
                                 % (self.label, timeout, self._stderr_tail()))
            if not select.select([fd], [], [], remaining)[0]:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                self.proc.wait(5)
                raise BenchError("%s: worker exited (code %s)%s"
                                 % (self.label, self.proc.returncode, self._stderr_tail()))
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return json.loads(line.decode("utf-8"))

    def _call(self, **cmd):
        self._send(cmd)
        reply = self._recv()
        if not reply.get("ok"):
            raise BenchError("%s: %s failed in the worker: %s" % (self.label, cmd["op"], reply.get("error")))
        return reply

    def put_loop(self, count, value):
        return self._call(op="put", count=count, value=value)["seconds"]

    def get_loop(self, count):
        reply = self._call(op="get", count=count)
        return reply["seconds"], reply["missing"]

    def write(self, key, value):
        self._call(op="write", key=key, value=value)

    def read(self, key):
        return self._call(op="read", key=key)["value"]

    def close(self):
        proc = getattr(self, "proc", None)
        if proc is not None and proc.poll() is None:
            try:
                self.proc.stdin.write(b'{"op": "quit"}\n')
                self.proc.stdin.close()
                proc.wait(5)
            except (OSError, subprocess.TimeoutExpired):
                proc.kill()
                proc.wait(5)
        self._stderr.close()


class EtcdctlClient:
    """One etcdctl process per operation: what a shell script would pay."""

    def __init__(self, harness, cluster, endpoint):
        self.label = "etcdctl"
        self.kind = "etcdctl"
        self.cluster = cluster
        self.endpoint = endpoint
        version = subprocess.run([harness.ETCDCTL_BIN, "version"], capture_output=True, text=True,
                                 check=False, env={"ETCDCTL_API": "3", "PATH": os.environ.get("PATH", "")})
        first = (version.stdout.splitlines() or ["etcdctl ?"])[0].replace("etcdctl version:", "").strip()
        self.backend = "etcdctl %s (Go gRPC), one process per op" % first

    def _argv(self, *args):
        return self.cluster.etcdctl_cmd(*args, endpoints=[self.endpoint])

    def _run(self, argv, env):
        res = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                             check=False, timeout=30)
        if res.returncode != 0:
            raise BenchError("etcdctl failed (exit %d): %s" % (res.returncode, res.stderr.strip()))
        return res.stdout

    def put_loop(self, count, value):
        cmds = [self._argv("put", key, value) for key in bench_keys(count)]
        t0 = time.perf_counter()
        for argv, env in cmds:
            self._run(argv, env)
        return time.perf_counter() - t0

    def get_loop(self, count):
        cmds = [self._argv("get", "--print-value-only", key) for key in bench_keys(count)]
        missing = 0
        t0 = time.perf_counter()
        for argv, env in cmds:
            if not self._run(argv, env).strip():
                missing += 1
        return time.perf_counter() - t0, missing

    def write(self, key, value):
        self._run(*self._argv("put", key, value))

    def read(self, key):
        out = self._run(*self._argv("get", "--print-value-only", key))
        return out[:-1] if out.endswith("\n") else (out or None)

    def close(self):
        pass


# --------------------------------------------------------------------------
# Main mode: orchestration
# --------------------------------------------------------------------------

def _import_project(repo_root):
    """The harness from tests/integration, and our client under its collection name.

    Ansible resolves collection code only below ansible_collections/<ns>/<name>,
    so a temporary tree with that shape points back at the checkout.
    """
    sys.path.insert(0, os.path.join(repo_root, "tests", "integration"))
    import etcd_harness
    tree = tempfile.mkdtemp(prefix="pgha-bench-collections-")
    os.makedirs(os.path.join(tree, "ansible_collections", "pgha"))
    os.symlink(repo_root, os.path.join(tree, "ansible_collections", "pgha", "cluster"))
    sys.path.insert(0, tree)
    from ansible_collections.pgha.cluster.plugins.module_utils import etcd_client
    return etcd_harness, etcd_client, tree


def _rate(count, seconds):
    return count / seconds if seconds > 0 else float("inf")


def _fmt_rate(value):
    return "-" if value is None else "%.0f" % value


def _fmt_ratio(num, den):
    if not num or not den:
        return "n/a"
    return "%.2fx" % (num / den)


class Result:
    def __init__(self, client, ops):
        self.client = client
        self.ops = ops
        self.put_rates = []
        self.get_rates = []

    @property
    def put(self):
        return statistics.median(self.put_rates) if self.put_rates else None

    @property
    def get(self):
        return statistics.median(self.get_rates) if self.get_rates else None


def warm_up(client, count):
    if count <= 0:
        return
    client.put_loop(count, bench_value("warmup"))
    _secs, missing = client.get_loop(count)
    if missing:
        raise BenchError("%s: %d of %d keys missing right after writing them" % (client.label, missing, count))


def measure_round(result, round_no):
    client, ops = result.client, result.ops
    put_secs = client.put_loop(ops, bench_value("%s-r%d" % (client.kind, round_no)))
    get_secs, missing = client.get_loop(ops)
    if missing:
        raise BenchError("%s: %d of %d gets found no value" % (client.label, missing, ops))
    result.put_rates.append(_rate(ops, put_secs))
    result.get_rates.append(_rate(ops, get_secs))


def check_consistency(clients, reference):
    """Every client reads what one wrote, and writes what one reads: cheap proof they all did real work."""
    key = KEY_PREFIX + "check"
    value = "check-" + secrets.token_hex(8)
    reference.write(key, value)
    problems = []
    for c in clients:
        got = c.read(key)
        if got != value:
            problems.append("%s read %r from %s, expected %r" % (c.label, got, key, value))
    for i, c in enumerate(clients):
        own_key = "%scheck-%d" % (KEY_PREFIX, i)
        own_value = "by-%d-%s" % (i, secrets.token_hex(4))
        c.write(own_key, own_value)
        got = reference.read(own_key)
        if got != own_value:
            problems.append("%s wrote %r to %s but %s read %r" % (c.label, own_value, own_key, reference.label, got))
    if problems:
        raise BenchError("read-back check failed:\n  " + "\n  ".join(problems))
    return key


def print_table(results, skipped):
    # Backend last: it is the long column, and nothing after it needs aligning.
    rows = [("client", "ops/round", "put ops/s", "get ops/s", "backend")]
    for r in results:
        rows.append((r.client.label, str(r.ops), _fmt_rate(r.put), _fmt_rate(r.get), r.client.backend))
    for label, reason in skipped:
        rows.append((label, "-", "-", "-", "SKIPPED: " + reason))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for n, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])] + [row[i].rjust(widths[i]) for i in (1, 2, 3)] + [row[4]]
        print("  ".join(cells).rstrip())
        if n == 0:
            print("  ".join("-" * w for w in widths + [len(row[4])]))


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    p.add_argument("--ops", type=int, default=2000,
                   help="sequential puts and gets per client per round (default 2000)")
    p.add_argument("--new-conn-ops", type=int, default=None,
                   help="ops per round for ours with keep_alive=False (default: --ops / 4, each op is a TLS handshake)")
    p.add_argument("--etcdctl-ops", type=int, default=40,
                   help="etcdctl puts and gets per round, one process each (default 40; 0 skips etcdctl)")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the median counts (default 3)")
    p.add_argument("--warmup", type=int, default=100, help="untimed puts and gets per client first (default 100)")
    p.add_argument("--system-python", default="/usr/bin/python3",
                   help="interpreter with a system-installed etcd3 and its default protobuf backend "
                        "(default /usr/bin/python3; empty string skips it)")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON to FILE")
    p.add_argument("--worker", choices=["etcd3"], help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        return args
    if args.ops < 1 or args.rounds < 1 or args.warmup < 0 or args.etcdctl_ops < 0:
        p.error("--ops and --rounds must be >= 1, --warmup and --etcdctl-ops >= 0")
    if args.new_conn_ops is None:
        args.new_conn_ops = max(1, args.ops // 4)
    elif args.new_conn_ops < 1:
        p.error("--new-conn-ops must be >= 1")
    return args


def run(args):
    repo_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    harness, ours_mod, tree = _import_project(repo_root)
    missing = harness.binaries_missing()
    if missing:
        raise BenchError("etcd binaries not found: %s" % ", ".join(missing))

    started = time.monotonic()
    # A token TTL far beyond the run: etcd3 0.12 authenticates once and never again.
    cluster = harness.EtcdCluster(size=3, tls=True, auth=True, token_ttl=600, name="bench")
    clients = []
    skipped = []
    try:
        cluster.start()
        member = cluster.member(0)
        endpoint = member.client_url
        leader = cluster.leader()
        role = "leader" if leader is member else "follower (writes are forwarded to %s)" % leader.name
        print("etcd cluster: 3 members, TLS + client-cert-auth, RBAC + JWT; started in %.1f s"
              % cluster.startup_seconds)
        print("target member: %s %s, %s" % (member.name, endpoint, role))
        print("ops per round: %d (ours new-conn: %d, etcdctl: %d), rounds: %d, warm-up: %d"
              % (args.ops, args.new_conn_ops, args.etcdctl_ops, args.rounds, args.warmup))
        print()

        ours = OursClient(ours_mod, cluster, endpoint, True, "ours")
        clients.append(ours)
        ours_nc = OursClient(ours_mod, cluster, endpoint, False, "ours keep_alive=False")
        clients.append(ours_nc)
        variants = [("etcd3 (this interpreter)", sys.executable, _worker_env(True, False))]
        if args.system_python:
            variants.append(("etcd3 (%s)" % args.system_python, args.system_python, _worker_env(False, True)))
        for label, python, env in variants:
            try:
                clients.append(Etcd3WorkerClient(label, python, env, cluster, member))
            except Skip as exc:
                print("SKIPPED %s: %s" % (label, exc))
                skipped.append((label, str(exc)))
        if args.etcdctl_ops:
            clients.append(EtcdctlClient(harness, cluster, endpoint))

        ops_for = {"ours": args.ops, "ours keep_alive=False": args.new_conn_ops, "etcdctl": args.etcdctl_ops}
        results = [Result(c, ops_for.get(c.label, args.ops)) for c in clients]

        for c in clients:
            warm_up(c, min(args.warmup, 5) if c.kind == "etcdctl" else args.warmup)
        connects_before = (ours.connects, ours_nc.connects)

        for rnd in range(args.rounds):
            # Rotating the order spreads slow phases of the machine over all clients.
            shift = rnd % len(results)
            for result in results[shift:] + results[:shift]:
                measure_round(result, rnd)
            print("round %d/%d done (%.0f s elapsed)" % (rnd + 1, args.rounds, time.monotonic() - started))

        conn_note = {
            "ours": ours.connects - connects_before[0],
            "ours keep_alive=False": ours_nc.connects - connects_before[1],
        }
        check_key = check_consistency(clients, ours)
    finally:
        for c in clients:
            try:
                c.close()
            except Exception as exc:  # noqa: BLE001 - keep closing the others
                print("warning: closing %s: %s" % (c.label, exc), file=sys.stderr)
        cluster.cleanup()
        shutil.rmtree(tree, ignore_errors=True)

    print()
    print_table(results, skipped)
    print()
    print("TLS connections opened during the timed rounds: ours %d for %d requests, "
          "ours keep_alive=False %d for %d requests"
          % (conn_note["ours"], 2 * args.rounds * args.ops,
             conn_note["ours keep_alive=False"], 2 * args.rounds * args.new_conn_ops))

    etcd3_results = [r for r in results if r.client.kind == "etcd3"]
    if not etcd3_results:
        raise BenchError("no etcd3 variant could be measured, so there is no baseline: %s"
                         % "; ".join("%s: %s" % s for s in skipped))
    by_label = {r.client.label: r for r in results}
    ours_r, nc_r = by_label["ours"], by_label["ours keep_alive=False"]
    base_put = max(etcd3_results, key=lambda r: r.put)
    base_get = max(etcd3_results, key=lambda r: r.get)
    print()
    print("baseline = fastest etcd3-library variant in this run, per operation:")
    for op, base in (("put", base_put), ("get", base_get)):
        print("  %s: %s [protobuf %s backend], %s ops/s"
              % (op, base.client.label, base.client.info["protobuf_impl"], _fmt_rate(getattr(base, op))))
    # (name in the JSON, printed text, numerator, denominator)
    pairs = [("ours/baseline", "ours / baseline", ours_r, (base_put, base_get)),
             ("ours_keepalive/ours_new_connection", "ours keep-alive / ours new connection per request",
              ours_r, (nc_r, nc_r))]
    pairs += [("ours/" + r.client.label, "ours / " + r.client.label, ours_r, (r, r)) for r in etcd3_results]
    if "etcdctl" in by_label:
        ctl = by_label["etcdctl"]
        pairs.append(("ours/etcdctl", "ours / etcdctl (one process per op)", ours_r, (ctl, ctl)))
    ratios = {}
    width = max(len(p[1]) for p in pairs) + 1
    print()
    for name, text, num, (den_put, den_get) in pairs:
        ratios[name] = {"put": num.put / den_put.put, "get": num.get / den_get.get}
        print("%s  put %-7s get %s" % ((text + ":").ljust(width), _fmt_ratio(num.put, den_put.put),
                                       _fmt_ratio(num.get, den_get.get)))
    print()
    print("check: %s written by ours, read back identically by all %d clients; each client's own write "
          "read back by ours" % (check_key, len(clients)))
    print("total run time: %.0f s" % (time.monotonic() - started))

    if args.json:
        report = {
            "benchmark": "etcd_client",
            "settings": {"ops": args.ops, "new_conn_ops": args.new_conn_ops, "etcdctl_ops": args.etcdctl_ops,
                         "rounds": args.rounds, "warmup": args.warmup, "value_bytes": VALUE_LEN},
            "target": {"member": member.name, "role": "leader" if leader is member else "follower"},
            "host": {"python": platform.python_version(), "cpus": os.cpu_count(), "machine": platform.machine()},
            "clients": [{"label": r.client.label, "backend": r.client.backend, "ops_per_round": r.ops,
                         "versions": getattr(r.client, "info", None),
                         "put_ops_s": r.put, "get_ops_s": r.get,
                         "put_ops_s_rounds": r.put_rates, "get_ops_s_rounds": r.get_rates}
                        for r in results],
            "skipped": [{"label": label, "reason": reason} for label, reason in skipped],
            "baseline": {"put": base_put.client.label, "get": base_get.client.label},
            "ratios": ratios,
            "connections_during_timed_rounds": conn_note,
            "check": {"key": check_key, "ok": True},
        }
        parent = os.path.dirname(os.path.abspath(args.json))
        os.makedirs(parent, exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
            f.write("\n")
        print("results written to %s" % args.json)


def _sigterm(signum, frame):
    # Unwinds through run()'s finally, which kills the etcd members and workers.
    raise SystemExit(128 + signum)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.worker:
        return run_etcd3_worker()
    signal.signal(signal.SIGTERM, _sigterm)
    try:
        run(args)
    except BenchError as exc:
        print("error: %s" % exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
