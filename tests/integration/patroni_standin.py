"""Small stand-ins for what sits behind a load balancer: Patroni's REST API and PostgreSQL.

- :func:`start_api`: an HTTPS server answering like Patroni's health endpoints: 200 on the paths in
  ``server.ok_paths`` (query strings ignored), 503 on any other, for OPTIONS (HAProxy's checks) and GET
  (the LB agent's polls). ``ok_paths`` may be changed while it runs; ``seen`` lists the paths asked.
- :func:`start_banner`: a TCP server that sends its banner (a member's name) to whoever connects, so a
  connection through HAProxy tells which member it reached.
- :func:`member_json`: a Patroni 4.1 ``members/<name>`` value pointing at those two.
- :func:`admin`, :func:`stat_rows`: HAProxy's runtime API, written independently of the collection's
  client so that tests check it with a second implementation; :func:`stop_process` ends HAProxy.
"""

import http.server
import json
import socket
import socketserver
import ssl
import subprocess
import threading
import time

import pytest

PRIMARY_PATHS = ('/primary', '/read-only')
REPLICA_PATHS = ('/replica', '/read-only')


class _PatroniStandIn(http.server.BaseHTTPRequestHandler):
    """Answers like Patroni's health endpoints: 200 on the paths given, else 503."""

    def _answer(self):
        self.server.seen.append(self.path)
        path = self.path.split('?', 1)[0]
        self.send_response(200 if path in self.server.ok_paths else 503)
        self.send_header('Content-Length', '0')
        self.end_headers()

    do_OPTIONS = _answer  # noqa: N815 (http.server's naming)
    do_GET = _answer  # noqa: N815

    def log_message(self, *args):  # quiet
        pass


class _TlsHttpServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


def start_api(cert, key, ok_paths):
    server = _TlsHttpServer(('127.0.0.1', 0), _PatroniStandIn)
    server.ok_paths = ok_paths
    server.seen = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class _Banner(socketserver.BaseRequestHandler):
    def handle(self):
        self.request.sendall(self.server.banner)


class _TcpServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True


def start_banner(banner):
    """Stands in for PostgreSQL: says who it is to whoever connects."""
    server = _TcpServer(('127.0.0.1', 0), _Banner)
    server.banner = banner
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def stop_servers(servers):
    for server in servers:
        server.shutdown()
        server.server_close()


def stop_process(process, timeout=10):
    """SIGTERM, then SIGKILL if it is still there after ``timeout`` seconds."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def member_json(sql_port, api_port, role, state='running'):
    return json.dumps({'conn_url': 'postgres://localhost:%d/postgres' % sql_port,
                       'api_url': 'https://localhost:%d/patroni' % api_port,
                       'state': state, 'role': role, 'version': '4.1.5', 'timeline': 2,
                       'xlog_location': 5000, 'replay_lsn': 5000, 'receive_lsn': 5000,
                       'replication_state': 'streaming'})


def admin(socket_path, command):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.connect(socket_path)
        sock.sendall(command.encode() + b'\n')
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return b''.join(chunks).decode()
            chunks.append(chunk)


def stat_rows(socket_path):
    """{(proxy, server): row} from ``show stat`` (CSV)."""
    lines = admin(socket_path, 'show stat').strip().split('\n')
    header = lines[0].lstrip('# ').split(',')
    return dict(((r['pxname'], r['svname']), r) for r in (dict(zip(header, line.split(','))) for line in lines[1:]))


def read_banner(port, timeout=5):
    with socket.create_connection(('127.0.0.1', port), timeout=timeout) as sock:
        return sock.recv(64)


def wait_for(predicate, what, timeout=15, interval=0.1):
    """Call ``predicate`` -> (ok, seen) until ok; fail the test with the last ``seen`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        ok, last = predicate()
        if ok:
            return last
        time.sleep(interval)
    pytest.fail('timed out after %ss waiting for %s; last seen: %s' % (timeout, what, last))
