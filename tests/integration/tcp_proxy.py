"""A TCP proxy in front of a real server, for faults the server does not make on cue.

* ``record``: every byte clients sent is kept in ``received`` (what crossed the wire);
* ``lose_reply_to``: the reply to the first request holding one of these byte strings is dropped and the
  client's connection closed - the server applied the request, the client never hears of it (a lost reply);
* ``cut_after_reply``: every connection is closed as soon as the server has answered something (a watch stream
  that breaks right after it opened).

Plain TCP, so it works for HTTP; with TLS only ``record`` and plain forwarding make sense.
"""

import socket
import threading


class TcpProxy(object):
    def __init__(self, upstream, listen_ip='127.0.0.1', lose_reply_to=(), cut_after_reply=False):
        self.upstream = upstream  # (host, port)
        self.lose_reply_to = list(lose_reply_to)
        self.cut_after_reply = cut_after_reply
        self.received = b''
        self.connections = 0
        self.lost = []  # the markers whose reply was dropped
        self._lock = threading.Lock()
        self._sockets = []
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((listen_ip, 0))
        self._listener.listen(16)
        self.host, self.port = self._listener.getsockname()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self):
        return 'http://%s:%d' % (self.host, self.port)

    def close(self):
        """Stop listening and break every connection (the clients see them closed at once)."""
        self._closed = True
        for sock in [self._listener] + self._sockets:
            _close(sock)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _accept(self):
        while not self._closed:
            try:
                client, dummy = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream, timeout=10)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self._lock:
                self.connections += 1
                self._sockets += [client, server]
            state = {'lose': None}
            threading.Thread(target=self._client_to_server, args=(client, server, state), daemon=True).start()
            threading.Thread(target=self._server_to_client, args=(server, client, state), daemon=True).start()

    def _client_to_server(self, client, server, state):
        try:
            while True:
                data = client.recv(65536)
                if not data:
                    break
                with self._lock:
                    self.received += data
                    marker = next((m for m in self.lose_reply_to if m in data), None)
                    if marker is not None:
                        self.lose_reply_to.remove(marker)
                        state['lose'] = marker
                server.sendall(data)
        except OSError:
            pass
        finally:
            _shut(server)

    def _server_to_client(self, server, client, state):
        try:
            while True:
                data = server.recv(65536)
                if not data:
                    break
                if state['lose'] is not None:
                    with self._lock:
                        self.lost.append(state['lose'])
                    break  # the reply is dropped; closing tells the client nothing more
                client.sendall(data)
                if self.cut_after_reply:
                    break
        except OSError:
            pass
        finally:
            _close(client)
            _close(server)


def _shut(sock):
    try:
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def _close(sock):
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass
