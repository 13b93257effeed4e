"""haproxy_runtime against a fake HAProxy CLI: a UNIX socket server that answers as HAProxy 2.6 does
(answers recorded from the real one; tests/integration/test_lb_agent.py uses the real one)."""

import os
import socket
import tempfile
import threading

import pytest

from ansible_collections.pgha.cluster.plugins.module_utils.haproxy_runtime import (
    HaproxyCommandError,
    HaproxyMaster,
    HaproxyRuntime,
    HaproxySocketError,
    parse_servers_state,
    server_status,
)

STATE_HEADER = ('# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight '
                'srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state '
                'srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl '
                'srv_check_port srv_check_addr srv_agent_addr srv_agent_port')
STATE = ('1\n' + STATE_HEADER + '\n'
         '3 pgha_main_primary 1 pg1 127.0.0.1 2 0 100 100 12 15 3 4 6 0 0 0 localhost 5432 - 0 8008 - - 0\n'
         '3 pgha_main_primary 2 pg2 127.0.0.1 0 5 100 100 12 7 2 0 6 0 0 0 localhost 5433 - 0 8009 - - 0\n'
         '4 pgha_main_replicas 1 pg2 127.0.0.1 2 8 100 100 3 15 3 4 6 0 0 0 localhost 5433 - 0 8009 - - 0\n\n')
SHOW_PROC = ('#<PID>          <type>          <reloads>       <uptime>        <version>      \n'
             '13527           master          1 [failed: 0]   0d00h00m01s     2.6.12-1+deb12u4\n'
             '# workers\n14048           worker          0               0d00h00m00s     2.6.12-1+deb12u4\n'
             '13551           worker          1               0d00h00m01s     2.6.12-1+deb12u4\n'
             '# programs\n\n')
ANSWERS = {
    'show servers state': STATE,
    'show servers state pgha_main_primary': STATE,
    'show servers state nope': "Can't find backend.\n\n",
    'set server pgha_main_primary/pg1 state maint': '\n',
    'set server pgha_main_primary/pg1 health up': '\n',
    'shutdown sessions server pgha_main_primary/pg1': '\n',
    'set server pgha_main_primary/nope state ready': 'No such server.\n\n',
    'show info': 'Name: HAProxy\nVersion: 2.6.12\nPid: 10774\nUptime: 0d 0h00m01s\n',
    'show proc': SHOW_PROC,
    'reload': '',
}


class FakeCli(object):
    """A UNIX socket answering one command per connection, after the client closed its side (like the master)."""

    def __init__(self, answers):
        self.directory = tempfile.mkdtemp(prefix='pgha-fake-cli-')
        self.path = os.path.join(self.directory, 'cli.sock')
        self.answers = answers
        self.received = []
        self.held = []
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(self.path)
        self.server.listen(8)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                conn, _addr = self.server.accept()
            except OSError:
                return
            self._answer(conn)

    def _answer(self, conn):
        with conn:
            data = b''
            while True:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                data += chunk
            line = data.decode().strip()
            self.received.append(line)
            answer = self.answers.get(line)
            if answer is None:
                self.held.append(conn.dup())  # never answers: the client's timeout is tested with it
                return
            conn.sendall(answer.encode())

    def close(self):
        for conn in self.held:
            conn.close()
        self.server.close()
        os.unlink(self.path)
        os.rmdir(self.directory)


@pytest.fixture
def cli():
    fake = FakeCli(ANSWERS)
    yield fake
    fake.close()


def test_show_servers_state_is_parsed(cli):
    rows = HaproxyRuntime(cli.path).show_servers_state()
    assert [(r['be_name'], r['srv_name'], r['status']) for r in rows] == [
        ('pgha_main_primary', 'pg1', 'up'), ('pgha_main_primary', 'pg2', 'maint'),
        ('pgha_main_replicas', 'pg2', 'drain')]
    assert rows[0]['srv_addr'] == '127.0.0.1' and rows[0]['srv_port'] == '5432'
    assert HaproxyRuntime(cli.path).servers_state_text() == STATE


def test_actions_succeed_on_an_empty_answer(cli):
    runtime = HaproxyRuntime(cli.path)
    runtime.set_server_state('pgha_main_primary', 'pg1', 'maint')
    runtime.set_server_health('pgha_main_primary', 'pg1', 'up')
    runtime.shutdown_sessions('pgha_main_primary', 'pg1')
    assert cli.received == ['set server pgha_main_primary/pg1 state maint',
                            'set server pgha_main_primary/pg1 health up',
                            'shutdown sessions server pgha_main_primary/pg1']


def test_an_answer_to_an_action_is_an_error_naming_the_command(cli):
    with pytest.raises(HaproxyCommandError) as err:
        HaproxyRuntime(cli.path).set_server_state('pgha_main_primary', 'nope', 'ready')
    assert 'refused "set server pgha_main_primary/nope state ready": No such server.' in str(err.value)
    assert err.value.socket_path == cli.path
    with pytest.raises(HaproxyCommandError, match="Can't find backend"):
        HaproxyRuntime(cli.path).show_servers_state('nope')


def test_arguments_are_checked_before_sending(cli):
    runtime = HaproxyRuntime(cli.path)
    with pytest.raises(HaproxyCommandError, match='state must be one of ready, maint, drain'):
        runtime.set_server_state('b', 's', 'up')
    with pytest.raises(HaproxyCommandError, match='health must be one of'):
        runtime.set_server_health('b', 's', 'ready')
    with pytest.raises(HaproxyCommandError, match='invalid server name'):
        runtime.shutdown_sessions('b', 's; shutdown frontend x')
    with pytest.raises(HaproxyCommandError, match='one command at a time'):
        runtime.command('show info; show stat')
    assert cli.received == []


def test_process_id_and_master_processes(cli):
    assert HaproxyRuntime(cli.path).process_id() == 10774
    master = HaproxyMaster(cli.path)
    assert master.processes() == {'master': 13527, 'reloads': 1, 'failed_reloads': 0, 'workers': [14048, 13551]}
    master.reload()
    assert cli.received[-1] == 'reload'


def test_socket_errors_are_typed_and_name_the_socket(tmp_path, cli):
    missing = str(tmp_path / 'none.sock')
    with pytest.raises(HaproxySocketError) as err:
        HaproxyRuntime(missing).show_servers_state()
    assert missing in str(err.value) and 'no such socket' in str(err.value)
    refused = str(tmp_path / 'stale.sock')
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(refused)
    stale.close()
    with pytest.raises(HaproxySocketError, match='connection refused'):
        HaproxyMaster(refused).reload()
    with pytest.raises(HaproxySocketError, match='timed out'):
        HaproxyRuntime(cli.path, timeout=0.2).command('show silence')


def test_parse_rejects_what_is_not_a_state_dump():
    with pytest.raises(HaproxyCommandError, match='unexpected answer'):
        parse_servers_state('Unknown command.\n')
    with pytest.raises(HaproxyCommandError, match='unreadable line'):
        parse_servers_state('1\n# be_id be_name srv_op_state srv_admin_state\n3 b x y\n')
    assert parse_servers_state('1\n' + STATE_HEADER + '\n') == []


@pytest.mark.parametrize('op_state, admin_state, status', [
    (2, 0, 'up'), (0, 0, 'down'), (1, 0, 'starting'), (3, 0, 'stopping'), (2, 1, 'maint'), (0, 5, 'maint'),
    (2, 4, 'up'), (2, 0x20, 'maint'), (2, 8, 'drain'), (2, 0x10, 'drain'), (2, 9, 'maint'), (7, 0, 'unknown')])
def test_server_status(op_state, admin_state, status):
    assert server_status(op_state, admin_state) == status
