# -*- coding: utf-8 -*-
# Copyright: pgha.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""HAProxy's runtime API over its UNIX sockets: the admin ``stats socket`` and the master CLI (``-S``).

Without ``prompt`` HAProxy reads one command per connection, answers and
closes, so every call here is one connection: no session state to lose when
HAProxy reloads between two calls. The commands that change a server answer
nothing on success; any text back is HAProxy's error message, raised as
:class:`HaproxyCommandError`. A socket that cannot be reached raises
:class:`HaproxySocketError` naming the path and the cause.

Stdlib only, no Ansible import (the LB agent uses it).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
import socket

DEFAULT_TIMEOUT = 5.0
SERVER_STATES = ('ready', 'maint', 'drain')
SERVER_HEALTH = ('up', 'stopping', 'down')

# srv_admin_state bits (HAProxy's SRV_ADMF_*): forced, inherited, resolution and hostname maintenance; drain.
# CMAINT (0x04, the config's ``disabled``) stays set after ``set server state ready``: it only records the
# origin, FMAINT (0x01, set along with it) is what keeps the server out.
_ADMIN_MAINT = 0x01 | 0x02 | 0x20 | 0x40
_ADMIN_DRAIN = 0x08 | 0x10
# srv_op_state (SRV_ST_*).
_OP_STATES = {0: 'down', 1: 'starting', 2: 'up', 3: 'stopping'}
_NAME = re.compile(r'^[A-Za-z0-9_.:-]+$')
_MAX_ANSWER = 16 * 1024 * 1024


class HaproxyRuntimeError(Exception):
    """A runtime API call failed; ``socket_path`` and ``command`` say which."""

    def __init__(self, message, socket_path=None, command=None):
        super(HaproxyRuntimeError, self).__init__(message)
        self.socket_path = socket_path
        self.command = command


class HaproxySocketError(HaproxyRuntimeError):
    """The socket could not be reached (missing, refused, permission denied, timed out)."""


class HaproxyCommandError(HaproxyRuntimeError):
    """HAProxy answered the command with an error message."""


def _check_name(what, name):
    if not isinstance(name, str) or not _NAME.match(name):
        raise HaproxyCommandError('invalid %s name %r for the runtime API' % (what, name))


def _socket_reason(exc):
    if isinstance(exc, FileNotFoundError):
        return 'no such socket (is HAProxy running, with this socket configured?)'
    if isinstance(exc, ConnectionRefusedError):
        return 'connection refused (HAProxy is not listening on it)'
    if isinstance(exc, PermissionError):
        return 'permission denied (the user needs the socket\'s group)'
    if isinstance(exc, socket.timeout):
        return 'timed out'
    return str(exc)


class _UnixCli(object):
    """One command per connection to a HAProxy CLI socket."""

    kind = 'runtime API'

    def __init__(self, socket_path, timeout=DEFAULT_TIMEOUT):
        self.socket_path = socket_path
        self.timeout = timeout

    def command(self, line):
        """Send one command; HAProxy's answer as text."""
        if '\n' in line or ';' in line:
            raise HaproxyCommandError('one command at a time, without ";" or newlines: %r' % line,
                                      self.socket_path, line)
        chunks = []
        size = 0
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(self.timeout)
                sock.connect(self.socket_path)
                sock.sendall(line.encode('utf-8') + b'\n')
                # The master CLI answers only once the request side is closed.
                sock.shutdown(socket.SHUT_WR)
                while size <= _MAX_ANSWER:
                    chunk = sock.recv(65536)
                    if not chunk:
                        break
                    chunks.append(chunk)
                    size += len(chunk)
        except OSError as exc:
            raise HaproxySocketError('HAProxy %s at %s: %s (command: %s)' % (
                self.kind, self.socket_path, _socket_reason(exc), line), self.socket_path, line)
        return b''.join(chunks).decode('utf-8', 'replace')

    def action(self, line):
        """A command that answers nothing on success; its answer, if any, is an error."""
        answer = self.command(line).strip()
        if answer:
            raise HaproxyCommandError('HAProxy %s at %s refused "%s": %s' % (
                self.kind, self.socket_path, line, ' '.join(answer.split())[:300]), self.socket_path, line)


class HaproxyRuntime(_UnixCli):
    """The admin-level ``stats socket`` of the running worker."""

    def show_servers_state(self, backend=None):
        """[server dict] of ``show servers state`` (every backend, or one).

        Each dict holds the columns HAProxy names in its header (``be_name``,
        ``srv_name``, ``srv_addr``, ``srv_op_state``, ``srv_admin_state``, ...;
        numbers stay text) plus ``status``: ``maint``, ``drain``, ``up``,
        ``down``, ``starting`` or ``stopping``.
        """
        if backend is not None:
            _check_name('backend', backend)
        line = 'show servers state' + ('' if backend is None else ' ' + backend)
        return parse_servers_state(self.command(line), self.socket_path, line)

    def servers_state_text(self):
        """The raw ``show servers state`` dump, as the ``server-state-file`` wants it."""
        text = self.command('show servers state')
        parse_servers_state(text, self.socket_path, 'show servers state')
        return text

    def set_server_state(self, backend, server, state):
        if state not in SERVER_STATES:
            raise HaproxyCommandError('server state must be one of %s, got %r' % (', '.join(SERVER_STATES), state))
        self.action('set server %s state %s' % (_server_path(backend, server), state))

    def set_server_health(self, backend, server, health):
        if health not in SERVER_HEALTH:
            raise HaproxyCommandError('server health must be one of %s, got %r' % (', '.join(SERVER_HEALTH), health))
        self.action('set server %s health %s' % (_server_path(backend, server), health))

    def shutdown_sessions(self, backend, server):
        """Close every session established with the server now."""
        self.action('shutdown sessions server %s' % _server_path(backend, server))

    def process_id(self):
        """The worker's pid (``show info``), which changes with each reload."""
        match = re.search(r'^Pid:\s*(\d+)', self.command('show info'), re.M)
        if not match:
            raise HaproxyCommandError('HAProxy runtime API at %s: no Pid in "show info"' % self.socket_path,
                                      self.socket_path, 'show info')
        return int(match.group(1))


class HaproxyMaster(_UnixCli):
    """The master CLI of HAProxy in master-worker mode (``-S <socket>``)."""

    kind = 'master CLI'

    def processes(self):
        """``show proc``: {'master': pid, 'reloads': n, 'failed_reloads': n, 'workers': [pid, ...]}."""
        text = self.command('show proc')
        master = re.search(r'^(\d+)\s+master\s+(\d+)\s+\[failed:\s*(\d+)\]', text, re.M)
        if not master:
            raise HaproxyCommandError('HAProxy master CLI at %s: unexpected answer to "show proc": %s' % (
                self.socket_path, ' '.join(text.split())[:300]), self.socket_path, 'show proc')
        workers_part = text.split('# workers', 1)[-1].split('# programs', 1)[0]
        workers = [int(pid) for pid in re.findall(r'^(\d+)\s+worker\b', workers_part, re.M)]
        return {'master': int(master.group(1)), 'reloads': int(master.group(2)),
                'failed_reloads': int(master.group(3)), 'workers': workers}

    def reload(self):
        """Ask the master to reload: it re-reads the configuration and starts a new worker.

        HAProxy 2.6 answers nothing; the outcome shows in :meth:`processes`
        (another newest worker, or one more failed reload).
        """
        answer = self.command('reload').strip()
        if answer and 'success=1' not in answer.lower().replace(' ', ''):
            raise HaproxyCommandError('HAProxy master CLI at %s refused "reload": %s' % (
                self.socket_path, ' '.join(answer.split())[:300]), self.socket_path, 'reload')


def _server_path(backend, server):
    _check_name('backend', backend)
    _check_name('server', server)
    return '%s/%s' % (backend, server)


def server_status(op_state, admin_state):
    """``maint``, ``drain`` or the operational state (``up``, ``down``, ...) from the two numbers."""
    if admin_state & _ADMIN_MAINT:
        return 'maint'
    if admin_state & _ADMIN_DRAIN:
        return 'drain'
    return _OP_STATES.get(op_state, 'unknown')


def parse_servers_state(text, socket_path=None, command='show servers state'):
    """The rows of a ``show servers state`` answer (format version 1) as dicts; see HaproxyRuntime."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines or lines[0].strip() != '1' or len(lines) < 2 or not lines[1].startswith('#'):
        raise HaproxyCommandError('HAProxy runtime API at %s: unexpected answer to "%s": %s' % (
            socket_path, command, ' '.join(text.split())[:300]), socket_path, command)
    header = lines[1].lstrip('#').split()
    rows = []
    for line in lines[2:]:
        row = dict(zip(header, line.split()))
        try:
            row['status'] = server_status(int(row['srv_op_state']), int(row['srv_admin_state']))
        except (KeyError, ValueError):
            raise HaproxyCommandError('HAProxy runtime API at %s: unreadable line in "%s": %s' % (
                socket_path, command, line[:200]), socket_path, command)
        rows.append(row)
    return rows
