"""The LB agent (roles/haproxy/files/pgha-lb-sync) as a local process, with real etcd and real HAProxy.

HAProxy runs master-worker with its master CLI (``-S``) and admin socket in a temporary directory; its
configuration comes from the haproxy_config module. Stand-ins play Patroni's REST API (HTTPS, verified
with the test CA) and PostgreSQL (a TCP server that says its member's name). HAProxy's own checks are
slow on purpose (every 3 s, rise 2, as Patroni documents), so what moves traffic within a second is the
agent.
"""

import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from ansible_collections.pgha.cluster.plugins.module_utils import lb_agent
from ansible_collections.pgha.cluster.plugins.module_utils.etcd_client import Op
from ansible_collections.pgha.cluster.plugins.module_utils.lb_policy import policy_key

import etcd_harness
from collection_client import client_for
from module_runner import connection_args, run_module
from patroni_standin import (PRIMARY_PATHS, REPLICA_PATHS, member_json, read_banner, start_api, start_banner,
                             stat_rows, stop_process, stop_servers, wait_for)

HAPROXY = '/usr/sbin/haproxy'
NAMESPACE = '/pgha-lb-agent'
HERE = os.path.dirname(os.path.abspath(__file__))
LAUNCHER = os.path.join(os.path.dirname(os.path.dirname(HERE)), 'roles', 'haproxy', 'files', 'pgha-lb-sync')
# The directory holding ansible_collections/pgha/cluster, as the role ships it.
LIB = os.path.abspath(os.path.join(os.path.dirname(lb_agent.__file__), *(['..'] * 5)))

pytestmark = pytest.mark.skipif(not os.access(HAPROXY, os.X_OK),
                                reason='%s not found (Debian package haproxy)' % HAPROXY)


@pytest.fixture(scope='module')
def etcd(tmp_path_factory):
    """A private one-member etcd: a test kills it."""
    if etcd_harness.binaries_missing():
        pytest.skip('etcd binaries not found: %s' % ', '.join(etcd_harness.binaries_missing()))
    cluster = etcd_harness.EtcdCluster(base_dir=str(tmp_path_factory.mktemp('etcd')), size=1, name='lbagent')
    cluster.start()
    yield cluster
    cluster.cleanup()


@pytest.fixture(scope='module')
def pki(tmp_path_factory):
    members = [('pg1', '127.0.0.1', 'pg1'), ('pg2', '127.0.0.1', 'pg2')]
    return etcd_harness.Pki(str(tmp_path_factory.mktemp('pki')), members)


class Lb(object):
    """One scope in etcd, its stand-ins, HAProxy and the agent."""

    def __init__(self, etcd, pki, directory):
        self.etcd, self.pki, self.dir = etcd, pki, directory
        self.scope = 'lba%s' % secrets.token_hex(3)
        self.apis = {'pg1': start_api(pki.servers['pg1'].cert, pki.servers['pg1'].key, PRIMARY_PATHS),
                     'pg2': start_api(pki.servers['pg2'].cert, pki.servers['pg2'].key, REPLICA_PATHS)}
        self.sqls = dict((name, start_banner(name.encode())) for name in self.apis)
        self.primary_port, self.replicas_port, self.stats_port, self.status_port = etcd_harness.pick_free_ports(
            '127.0.0.1', 4)
        self.config = os.path.join(directory, 'haproxy.cfg')
        self.admin_socket = os.path.join(directory, 'admin.sock')
        self.master_socket = os.path.join(directory, 'master.sock')
        self.client = client_for(etcd)
        self.haproxy = self.agent = None
        self.agent_log = os.path.join(directory, 'agent.log')

    def key(self, name):
        return '%s/%s/%s' % (NAMESPACE, self.scope, name)

    def member(self, name, role):
        return Op.put(self.key('members/' + name), member_json(
            self.sqls[name].server_address[1], self.apis[name].server_address[1], role))

    def set_leader(self, leader):
        """One transaction, as a switchover ends: roles swapped and the leader key moved."""
        other = 'pg2' if leader == 'pg1' else 'pg1'
        self.client.txn(success=[self.member(leader, 'primary'), self.member(other, 'replica'),
                                 Op.put(self.key('leader'), leader)])

    def policy(self, **extra):
        policy = {'ports': {'primary': self.primary_port, 'replicas': self.replicas_port}}
        policy.update(extra)
        return json.dumps(policy)

    def settings(self, empty=None):
        return {'admin_socket': self.admin_socket, 'server_state_file': os.path.join(self.dir, 'state'),
                'user': empty, 'group': empty, 'admin_socket_group': empty, 'log_target': empty,
                'stats_port': self.stats_port, 'hard_stop_after_s': 5}

    def start(self):
        self.client.put(policy_key(self.scope), self.policy())
        self.set_leader('pg1')
        args = connection_args(self.etcd)
        args.update(namespace=NAMESPACE, scopes=[self.scope], ca_file=self.pki.ca_cert, dest=self.config,
                    settings=self.settings(''))
        result = run_module('haproxy_config', args)
        assert not result.get('failed'), result
        self.haproxy_log = open(os.path.join(self.dir, 'haproxy.log'), 'wb')
        self.haproxy = subprocess.Popen([HAPROXY, '-W', '-db', '-f', self.config, '-S', self.master_socket],
                                        stdout=self.haproxy_log, stderr=subprocess.STDOUT)
        wait_for(lambda: (os.path.exists(self.admin_socket), None), 'the admin socket')
        self.start_agent()

    def start_agent(self):
        config = {'etcd': {'endpoints': self.etcd.endpoints}, 'namespace': NAMESPACE, 'scopes': [self.scope],
                  'ca_file': self.pki.ca_cert, 'rest': {'ca_cert': self.pki.ca_cert, 'timeout': 1.0},
                  'settings': self.settings(), 'config_path': self.config,
                  'validate': HAPROXY + ' -c -q -f %s', 'master_socket': self.master_socket,
                  'status_port': self.status_port, 'retry_max_s': 0.5}
        path = os.path.join(self.dir, 'agent.json')
        with open(path, 'w') as handle:
            json.dump(config, handle)
        log = open(self.agent_log, 'ab')
        self.agent = subprocess.Popen([sys.executable, LAUNCHER, '--config', path, '--lib', LIB],
                                      stdout=log, stderr=subprocess.STDOUT)
        log.close()
        wait_for(lambda: (self.status_or_none() is not None, None), 'the agent\'s /status', timeout=10)

    def stop_agent(self):
        stop_process(self.agent)

    def status_or_none(self):
        try:
            return self.status()
        except OSError:
            return None

    def status(self):
        with urllib.request.urlopen('http://127.0.0.1:%d/status' % self.status_port, timeout=2) as answer:
            return json.loads(answer.read())

    def metrics(self):
        with urllib.request.urlopen('http://127.0.0.1:%d/metrics' % self.status_port, timeout=2) as answer:
            return answer.read().decode()

    def cluster_status(self):
        return self.status()['clusters'][self.scope]

    def haproxy_status(self, kind, server):
        return stat_rows(self.admin_socket)[('pgha_%s_%s' % (self.scope, kind), server)]['status']

    def banner(self, port=None):
        try:
            return read_banner(port or self.primary_port, timeout=1)
        except OSError:
            return None

    def routes_to(self, name, port=None):
        return lambda: (self.banner(port) == name.encode(), self.banner(port))

    def log_tail(self):
        try:
            with open(self.agent_log, 'rb') as handle:
                return handle.read().decode()[-3000:]
        except FileNotFoundError:
            return ''

    def close(self):
        stop_process(self.agent)
        stop_process(self.haproxy)
        if self.haproxy is not None:
            self.haproxy_log.close()
        stop_servers(list(self.apis.values()) + list(self.sqls.values()))
        try:
            self.client.delete_prefix('%s/%s/' % (NAMESPACE, self.scope))
            self.client.delete(policy_key(self.scope))
        except Exception:  # noqa: BLE001 (a test may have left etcd down)
            pass
        self.client.close()


@pytest.fixture
def lb(etcd, pki, tmp_path):
    made = Lb(etcd, pki, str(tmp_path))
    try:
        made.start()
        wait_for(made.routes_to('pg1'), 'pg1 behind the primary port')
        yield made
    finally:
        made.close()
        print('agent log:\n' + made.log_tail())  # shown when the test failed


def wait_verified(lb, member, timeout=10):
    return wait_for(lambda: (lb.cluster_status()['verified_primary'] == member, lb.cluster_status()),
                    '%s verified by the agent' % member, timeout=timeout)


def test_leader_change_moves_the_primary_port_within_a_second(lb):
    wait_verified(lb, 'pg1')
    assert lb.banner(lb.replicas_port) == b'pg2'
    lb.apis['pg1'].ok_paths, lb.apis['pg2'].ok_paths = REPLICA_PATHS, PRIMARY_PATHS
    written = time.monotonic()
    lb.set_leader('pg2')
    wait_for(lb.routes_to('pg2'), 'pg2 behind the primary port', timeout=5, interval=0.005)
    seconds = time.monotonic() - written
    print('\nleader key written -> first connection to the new primary through HAProxy: %.3f s' % seconds)
    assert seconds < 1.0, lb.log_tail()
    assert lb.haproxy_status('primary', 'pg1') == 'MAINT'
    status = wait_verified(lb, 'pg2')
    assert status['leader'] == 'pg2'
    servers = dict((s['name'], s) for s in status['backends']['primary']['servers'])
    assert servers['pg2']['wanted'] is True and servers['pg2']['haproxy'] == 'up'
    assert servers['pg1']['wanted'] is False and servers['pg1']['haproxy'] == 'maint'
    metrics = lb.metrics()
    assert 'pgha_lb_leader_changes_total 1' in metrics and 'pgha_lb_convergence_seconds_count 1' in metrics
    assert 'pgha_lb_reloads_total 0' in metrics  # leader changes go through the runtime API only
    wait_for(lb.routes_to('pg1', lb.replicas_port), 'pg1 behind the replicas port')


def test_a_new_leader_is_routed_before_its_member_key_says_primary(lb):
    """As in a Patroni switchover: the leader key moves first; the new leader rewrites its member key with role
    primary only on its next loop (a second or more later), and its REST API knows before."""
    wait_verified(lb, 'pg1')
    lb.apis['pg1'].ok_paths, lb.apis['pg2'].ok_paths = REPLICA_PATHS, PRIMARY_PATHS
    lb.client.txn(success=[lb.member('pg1', 'replica'), Op.delete(lb.key('leader'))])
    lb.client.put(lb.key('leader'), 'pg2')
    wait_for(lb.routes_to('pg2'), 'pg2 behind the primary port while its member key says replica', timeout=2,
             interval=0.005)
    status = wait_verified(lb, 'pg2')
    assert (status['leader'], status['verified_primary']) == ('pg2', 'pg2')
    assert lb.haproxy_status('replicas', 'pg2') == 'MAINT'  # the key holder serves no replica reads
    lb.set_leader('pg2')  # the member keys catch up: nothing moves
    time.sleep(0.5)
    assert lb.banner() == b'pg2' and lb.haproxy_status('primary', 'pg1') == 'MAINT'


def test_a_leader_whose_primary_check_fails_is_never_enabled(lb):
    wait_verified(lb, 'pg1')
    lb.apis['pg1'].ok_paths = REPLICA_PATHS  # pg2 keeps answering 503 on /primary
    lb.set_leader('pg2')
    wait_for(lambda: (lb.haproxy_status('primary', 'pg1') == 'MAINT', None), 'pg1 out of the primary backend',
             timeout=2)
    time.sleep(1.5)
    assert lb.haproxy_status('primary', 'pg2') == 'MAINT'
    assert lb.banner() in (None, b'')
    status = lb.cluster_status()
    assert (status['leader'], status['primary'], status['verified_primary']) == ('pg2', 'pg2', None)
    assert any(path.startswith('/primary') for path in lb.apis['pg2'].seen)
    lb.apis['pg2'].ok_paths = PRIMARY_PATHS
    wait_for(lb.routes_to('pg2'), 'pg2 once its /primary answers 200', timeout=3)


def test_etcd_killed_keeps_config_and_routing(lb, etcd):
    wait_verified(lb, 'pg1')
    with open(lb.config) as handle:
        before = handle.read()
    member = etcd.members[0]
    member.kill()
    try:
        status = wait_for(lambda: (lb.status()['etcd']['ok'] is False, lb.status()['etcd']), 'the etcd error',
                          timeout=10)
        assert 'unreachable' in status['error'] or 'refused' in status['error'], status
        assert lb.banner() == b'pg1' and lb.banner(lb.replicas_port) == b'pg2'
        with open(lb.config) as handle:
            assert handle.read() == before
        assert 'pgha_lb_etcd_up 0' in lb.metrics()
    finally:
        member.start()
    wait_for(lambda: (lb.status()['etcd']['ok'] is True, lb.status()['etcd']), 'etcd back', timeout=10)
    lb.apis['pg1'].ok_paths, lb.apis['pg2'].ok_paths = REPLICA_PATHS, PRIMARY_PATHS
    lb.set_leader('pg2')  # the watches are back too
    wait_for(lb.routes_to('pg2'), 'pg2 behind the primary port', timeout=5)


def test_malformed_policy_keeps_the_previous_config_then_a_good_one_reloads(lb):
    wait_verified(lb, 'pg1')
    with open(lb.config) as handle:
        before = handle.read()
    lb.client.put(policy_key(lb.scope), '{"ports": {"primary": "x"')
    status = wait_for(lambda: (lb.cluster_status()['error'] is not None, lb.cluster_status()), 'the policy error',
                      timeout=5)
    assert 'is not valid JSON' in status['error'] and policy_key(lb.scope) in status['error']
    lb.client.put(policy_key(lb.scope), lb.policy(balance='leastconn', check={'interval_ms': 1000}))
    wait_for(lambda: ('balance leastconn' in open(lb.config).read(), None), 'the new policy in the file', timeout=5)
    assert before != open(lb.config).read()
    wait_for(lambda: (lb.status()['haproxy']['reloads'] == 1, lb.status()['haproxy']), 'one reload', timeout=5)
    assert lb.cluster_status()['error'] is None
    assert lb.banner() == b'pg1' and lb.haproxy_status('primary', 'pg2') == 'MAINT'
    lb.client.put(policy_key(lb.scope), json.dumps({'ports': {'primary': 'x'}}))
    status = wait_for(lambda: (lb.cluster_status()['error'] is not None, lb.cluster_status()), 'the policy error',
                      timeout=5)
    assert 'policy.ports.primary: must be an integer' in status['error']
    assert 'balance leastconn' in open(lb.config).read()
    assert 'pgha_lb_policy_errors_total 2' in lb.metrics()


def test_restarted_agent_resyncs_without_interrupting_writes(lb):
    wait_verified(lb, 'pg1')
    lb.stop_agent()
    lb.start_agent()
    wait_verified(lb, 'pg1')
    assert lb.haproxy_status('primary', 'pg1') == 'UP'
    assert 'pgha_lb_demotions_total 0' in lb.metrics()
    lb.stop_agent()
    # The leader moves while the agent is down: HAProxy's checks alone would take 6 s (3 s x rise 2).
    lb.apis['pg1'].ok_paths, lb.apis['pg2'].ok_paths = REPLICA_PATHS, PRIMARY_PATHS
    lb.set_leader('pg2')
    lb.start_agent()
    wait_for(lb.routes_to('pg2'), 'pg2 behind the primary port after the restart', timeout=3)
    assert wait_verified(lb, 'pg2')['verified_primary'] == 'pg2'


def test_watch_resumed_after_compaction_rereads_in_full(lb, etcd):
    wait_verified(lb, 'pg1')
    lb.agent.send_signal(signal.SIGSTOP)  # the agent misses everything below, then its watches must resume
    try:
        lb.apis['pg1'].ok_paths, lb.apis['pg2'].ok_paths = REPLICA_PATHS, PRIMARY_PATHS
        lb.set_leader('pg2')
        lb.client.compact(lb.client.put(lb.key('marker'), 'x').revision)
        member = etcd.members[0]
        member.kill()  # the agent's watch streams break: they reconnect from a compacted revision
        member.start()
    finally:
        lb.agent.send_signal(signal.SIGCONT)
    wait_for(lb.routes_to('pg2'), 'pg2 behind the primary port', timeout=10)
    # The leader change may already sit in the broken stream's buffer and be applied before the resumed watch
    # is refused for the compaction: the full re-read can come after the route moved.
    wait_for(lambda: ('have been compacted' in lb.log_tail(), lb.log_tail()[-300:]), 'the resume refused as compacted',
             timeout=10)
