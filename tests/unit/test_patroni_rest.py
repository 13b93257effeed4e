"""patroni_rest against a local stdlib HTTP server that answers like (or unlike) Patroni's REST API."""

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from ansible_collections.pgha.cluster.plugins.module_utils.patroni_rest import (
    PatroniRestClient,
    PatroniRestError,
    build_ssl_context,
)

PATRONI_ANSWER = {'state': 'running', 'role': 'primary', 'timeline': 1, 'patroni': {'version': '4.1.5'}}


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        self.server.seen.append((self.path, self.headers.get('Authorization')))
        self._answer()

    def do_POST(self):
        length = int(self.headers.get('Content-Length') or 0)
        self.rfile.read(length)
        self.server.seen.append((self.command + ' ' + self.path, self.headers.get('Authorization')))
        self._answer()

    do_PATCH = do_POST

    def _answer(self):
        status, body, ctype = self.server.answers.get(self.path, (404, 'not found', 'text/plain'))
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header('Content-Type', ctype)
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def server():
    httpd = HTTPServer(('127.0.0.1', 0), _Handler)
    httpd.seen = []
    httpd.answers = {
        '/patroni': (200, PATRONI_ANSWER, 'application/json'),
        '/cluster': (200, {'members': [{'name': 'pg-1', 'role': 'leader'}]}, 'application/json'),
        '/secret': (401, 'no auth', 'text/plain'),
        '/broken': (503, '  the   server\n is  sad ', 'text/plain'),
        '/html': (200, '<html>hello</html>', 'text/html'),
    }
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    httpd.base = 'http://127.0.0.1:%d' % httpd.server_address[1]
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def closed_port():
    sock = socket.socket()
    sock.bind(('127.0.0.1', 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def test_patroni_and_cluster_use_only_host_and_port_of_the_api_url(server):
    client = PatroniRestClient()
    # Members advertise api_url with the /patroni path.
    assert client.patroni(server.base + '/patroni') == PATRONI_ANSWER
    assert client.cluster(server.base + '/patroni')['members'][0]['name'] == 'pg-1'
    assert [path for path, _auth in server.seen] == ['/patroni', '/cluster']
    assert server.seen[0][1] is None


def test_basic_auth_goes_only_with_unsafe_requests(server):
    client = PatroniRestClient(username='patroni', password='s3cret')
    client.patroni(server.base)
    client.request(server.base, 'POST', '/patroni', body={})
    client.request(server.base, 'PATCH', '/patroni', body={})
    assert server.seen == [('/patroni', None), ('POST /patroni', 'Basic cGF0cm9uaTpzM2NyZXQ='),
                           ('PATCH /patroni', 'Basic cGF0cm9uaTpzM2NyZXQ=')]


@pytest.mark.parametrize('method', ['POST', 'PUT', 'PATCH', 'DELETE'])
def test_credentials_are_refused_for_plain_http_to_another_host(method):
    # 192.0.2.1 (TEST-NET-1): the refusal comes before any connection is tried.
    client = PatroniRestClient(username='patroni', password='s3cret', timeout=1)
    with pytest.raises(PatroniRestError, match='refusing to send rest_username/rest_password') as caught:
        client.request('http://192.0.2.1:8008/patroni', method, '/switchover', body={})
    assert caught.value.url == 'http://192.0.2.1:8008/switchover'
    # Without credentials there is nothing to protect: the request is tried (and fails on the network).
    with pytest.raises(PatroniRestError) as unprotected:
        PatroniRestClient(timeout=0.5).request('http://192.0.2.1:8008', method, '/switchover', body={})
    assert 'refusing' not in str(unprotected.value)


def test_unverified_tls_is_warned_about():
    assert PatroniRestClient().warnings == []
    assert 'validate_certs is false' in PatroniRestClient(validate_certs=False).warnings[0]


def test_http_errors_name_the_url_and_the_status(server):
    client = PatroniRestClient()
    with pytest.raises(PatroniRestError, match=r'/secret refused the request \(HTTP 401\): check rest_username') as err:
        client.get(server.base, '/secret')
    assert err.value.status == 401 and err.value.url == server.base + '/secret'
    with pytest.raises(PatroniRestError, match=r'answered HTTP 503: the server is sad$'):
        client.get(server.base, '/broken')
    with pytest.raises(PatroniRestError, match=r'/html did not answer with JSON'):
        client.get(server.base, '/html')


def test_unreachable_and_invalid_urls():
    url = 'http://127.0.0.1:%d/patroni' % closed_port()
    with pytest.raises(PatroniRestError, match=r'Patroni REST API at http://127\.0\.0\.1:\d+/patroni is unreachable: '
                                               r'connection refused'):
        PatroniRestClient(timeout=2).patroni(url)
    for bad in (None, '', 'ftp://host:1/', 'http:///patroni', 'http://host:notaport/'):
        with pytest.raises(PatroniRestError, match='invalid Patroni REST API URL'):
            PatroniRestClient().patroni(bad)


def test_https_to_a_plain_http_port_is_a_tls_error(server):
    https = server.base.replace('http://', 'https://')
    with pytest.raises(PatroniRestError, match=r'TLS error talking to Patroni REST API at https://|unreachable'):
        PatroniRestClient(validate_certs=False, timeout=2).patroni(https)


def test_tls_files_are_checked_only_for_https(tmp_path, server):
    missing = str(tmp_path / 'nope.pem')
    # Plain http: the TLS options are not needed, so a missing file does not matter.
    assert PatroniRestClient(ca_cert=missing).patroni(server.base)['role'] == 'primary'
    with pytest.raises(PatroniRestError, match=r'rest_ca_cert: file .*nope\.pem does not exist'):
        PatroniRestClient(ca_cert=missing).patroni('https://127.0.0.1:1/patroni')
    with pytest.raises(PatroniRestError, match='rest_client_key is set but rest_client_cert is not'):
        build_ssl_context(client_key=__file__)
    bad = tmp_path / 'bad.pem'
    bad.write_text('not a certificate')
    with pytest.raises(PatroniRestError, match='rest_ca_cert: .* does not hold a usable PEM CA certificate'):
        build_ssl_context(ca_cert=str(bad))
    with pytest.raises(PatroniRestError, match='rest_client_cert/rest_client_key: cannot load'):
        build_ssl_context(client_cert=str(bad))
