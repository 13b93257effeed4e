"""The status playbook (pgha.cluster.status) on this machine against a real stack: three etcd members with TLS and
RBAC, two real Patroni clusters (alpha: two members, bravo: one) registered in it as their own etcd users, and a load
balancer of both: real HAProxy run by the real pgha-lb-sync agent, whose /status the playbook reads.

The hosts of the inventory are local (ansible_connection: local): each etcd member, each database host and the load
balancer is a name for this machine with the variables a real host would have. What the tables say is checked
against what etcd, Patroni and the agent say themselves; a stopped etcd member, a stopped agent, an etcd that nobody
reaches and a host that does not answer are each reported in the tables, not as a failed read.
"""

import json
import os
import re
import socket
import subprocess
import sys
import urllib.request

import pytest

from ansible_collections.pgha.cluster.plugins.module_utils import lb_agent
from ansible_collections.pgha.cluster.plugins.module_utils.lb_policy import policy_key

import etcd_harness
import ops_inventory
import patroni_harness
from collection_client import client_for
from module_runner import connection_args, run_module
from patroni_standin import stop_process, wait_for
from playbook_runner import run_playbook
import status_report  # tests/lib, on the path through playbook_runner

HAPROXY = '/usr/sbin/haproxy'
HERE = os.path.dirname(os.path.abspath(__file__))
LAUNCHER = os.path.join(os.path.dirname(os.path.dirname(HERE)), 'roles', 'haproxy', 'files', 'pgha-lb-sync')
# The directory holding ansible_collections/pgha/cluster, as the haproxy role ships it.
LIB = os.path.abspath(os.path.join(os.path.dirname(lb_agent.__file__), *(['..'] * 5)))
SCOPES = ('alpha', 'bravo')
SIZES = {'alpha': 2, 'bravo': 1}


def closed_port():
    sock = socket.socket()
    sock.bind(('127.0.0.1', 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


class LoadBalancer(object):
    """HAProxy in front of both clusters, kept in step by the pgha-lb-sync agent reading each cluster as its own
    lb-<scope> user, as the haproxy role runs them (here as local processes in ``directory``)."""

    def __init__(self, etcd, directory):
        self.etcd, self.dir = etcd, directory
        ports = etcd_harness.pick_free_ports('127.0.0.1', 2 * len(SCOPES) + 2)
        self.ports = {scope: {'primary': ports[2 * i], 'replicas': ports[2 * i + 1]} for i, scope in enumerate(SCOPES)}
        self.stats_port, self.status_port = ports[-2:]
        self.config = os.path.join(directory, 'haproxy.cfg')
        self.admin_socket = os.path.join(directory, 'admin.sock')
        self.master_socket = os.path.join(directory, 'master.sock')
        self.agent_log = os.path.join(directory, 'agent.log')
        self.haproxy = self.agent = self.haproxy_log = None

    def settings(self, empty=None):
        return {'admin_socket': self.admin_socket, 'server_state_file': os.path.join(self.dir, 'state'),
                'user': empty, 'group': empty, 'admin_socket_group': empty, 'log_target': empty,
                'stats_port': self.stats_port, 'hard_stop_after_s': 5}

    def start(self):
        with client_for(self.etcd) as root:
            for scope in SCOPES:
                root.put(policy_key(scope), json.dumps({'ports': self.ports[scope]}))
        args = connection_args(self.etcd)
        args.update(namespace=ops_inventory.NAMESPACE, scopes=list(SCOPES), ca_file=self.etcd.ca_cert,
                    dest=self.config, settings=self.settings(''))
        result = run_module('haproxy_config', args)
        assert not result.get('failed'), result
        self.haproxy_log = open(os.path.join(self.dir, 'haproxy.log'), 'wb')
        self.haproxy = subprocess.Popen([HAPROXY, '-W', '-db', '-f', self.config, '-S', self.master_socket],
                                        stdout=self.haproxy_log, stderr=subprocess.STDOUT)
        wait_for(lambda: (os.path.exists(self.admin_socket), None), 'the admin socket')
        self.start_agent()

    def start_agent(self):
        etcd = self.etcd
        config = {'etcd': {'endpoints': etcd.endpoints, 'ca_cert': etcd.ca_cert, 'client_cert': etcd.client_cert,
                           'client_key': etcd.client_key},
                  'credentials': {scope: {'username': 'lb-%s' % scope, 'password': etcd.users['lb-%s' % scope]}
                                  for scope in SCOPES},
                  'namespace': ops_inventory.NAMESPACE, 'scopes': list(SCOPES), 'ca_file': etcd.ca_cert,
                  'rest': {'ca_cert': etcd.ca_cert, 'timeout': 1.0}, 'settings': self.settings(),
                  'config_path': self.config, 'validate': HAPROXY + ' -c -q -f %s',
                  'master_socket': self.master_socket, 'status_port': self.status_port, 'retry_max_s': 0.5}
        path = os.path.join(self.dir, 'agent.json')
        with open(path, 'w') as handle:
            json.dump(config, handle)
        with open(self.agent_log, 'ab') as log:
            self.agent = subprocess.Popen([sys.executable, LAUNCHER, '--config', path, '--lib', LIB],
                                          stdout=log, stderr=subprocess.STDOUT)
        wait_for(lambda: (self.status_or_none() is not None, None), 'the agent\'s /status', timeout=10)

    def stop_agent(self):
        stop_process(self.agent)

    def status_or_none(self):
        try:
            with urllib.request.urlopen('http://127.0.0.1:%d/status' % self.status_port, timeout=2) as answer:
                return json.loads(answer.read())
        except OSError:
            return None

    def close(self):
        stop_process(self.agent)
        stop_process(self.haproxy)
        if self.haproxy_log is not None:
            self.haproxy_log.close()


@pytest.fixture(scope='module')
def stack(tmp_path_factory):
    """etcd (3 members, TLS + RBAC), Patroni clusters alpha and bravo, and the load balancer; the inventory's
    directory in ``stack['dir']``."""
    if etcd_harness.binaries_missing():
        pytest.skip('etcd binaries not found: %s' % ', '.join(etcd_harness.binaries_missing()))
    missing = patroni_harness.missing_requirements()
    if missing:
        pytest.skip('Patroni nodes cannot run here: %s' % '; '.join(missing))
    if not os.access(HAPROXY, os.X_OK):
        pytest.skip('%s not found (Debian package haproxy)' % HAPROXY)
    directory = str(tmp_path_factory.mktemp('status'))
    etcd = etcd_harness.EtcdCluster(base_dir=os.path.join(directory, 'etcd'), size=3, tls=True, auth=True,
                                    name='sts')
    made = []
    try:
        etcd.start()
        for scope in SCOPES:
            ops_inventory.add_cluster_users(etcd, scope)
        clusters = {}
        for scope in SCOPES:
            clusters[scope] = patroni_harness.PatroniCluster(etcd, scope, size=SIZES[scope])
            made.append(clusters[scope])
            clusters[scope].start()
        lb = LoadBalancer(etcd, directory)
        made.append(lb)
        lb.start()
        yield {'etcd': etcd, 'clusters': clusters, 'lb': lb, 'dir': directory,
               'pki': ops_inventory.install_pki(etcd, os.path.join(directory, 'pki'))}
    finally:
        for thing in reversed(made):
            if isinstance(thing, LoadBalancer):
                thing.close()
                print('agent log:\n' + open(thing.agent_log).read()[-3000:])  # shown when a test failed
            else:
                thing.cleanup()
        etcd.cleanup()


def inventory(stack, name='hosts.yml', etcd_port=None, lb_hosts=None):
    """Hosts a1, a2 (cluster alpha), b1 (bravo), the etcd members, and lb1 asking the agent's port;
    ``etcd_port`` replaces every member's client port (a closed one: etcd unreachable)."""
    clusters = {scope: {'scope': scope, 'hosts': {
        '%s%d' % (scope[0], i + 1): {'patroni_name': node.name} for i, node in enumerate(cluster.nodes)}}
        for scope, cluster in stack['clusters'].items()}
    path = ops_inventory.write_inventory(
        os.path.join(stack['dir'], name), stack['etcd'], stack['pki'], clusters,
        lb_hosts=lb_hosts or {'lb1': {'haproxy_sync_status_port': stack['lb'].status_port}})
    if etcd_port is not None:
        with open(path) as handle:
            text = handle.read()
        for member in stack['etcd'].members:
            text = text.replace('etcd_client_port: %d' % member.client_port, 'etcd_client_port: %d' % etcd_port)
        with open(path, 'w') as handle:
            handle.write(text)
    return path


def rows(lines):
    """{first cell: cells} of a section's table."""
    return dict((row[0], row) for row in status_report.cells(lines))


def ran_on(run, task):
    """The hosts a task ran on (ok or changed), from the playbook's output."""
    block = run.output.split('TASK [%s]' % task, 1)[1].split('\nTASK [', 1)[0].split('\nPLAY [', 1)[0]
    return sorted(re.findall(r'^(?:ok|changed): \[([^\]\s]+)', block, re.M))


def settled(stack):
    """The agent's /status once it routes writes of every cluster to the leader and HAProxy agrees."""
    leaders = {scope: cluster.wait_leader().name for scope, cluster in stack['clusters'].items()}

    def check():
        status = stack['lb'].status_or_none()
        if not status:
            return False, status
        for scope, leader in leaders.items():
            entry = status['clusters'].get(scope) or {}
            servers = ((entry.get('backends') or {}).get('primary') or {}).get('servers') or []
            if entry.get('verified_primary') != leader or not any(
                    s['member'] == leader and s['haproxy'] == 'up' for s in servers):
                return False, status
        return True, status
    return wait_for(check, 'the agent routing writes to %s' % leaders, timeout=60)


def test_the_tables_show_etcd_each_cluster_once_and_the_load_balancer(stack):
    etcd, lb = stack['etcd'], stack['lb']
    for cluster in stack['clusters'].values():
        cluster.wait_running()
    agent = settled(stack)
    path = inventory(stack)
    run = run_playbook('pgha.cluster.status', inventory=path, workdir=stack['dir'])
    assert run.rc == 0, run.tail()
    assert sum(r['changed'] for r in run.recap.values()) == 0, run.recap
    lines = status_report.report(run)

    etcd_lines = status_report.section(lines, 'etcd: ')
    leader = etcd.leader()
    assert etcd_lines[0].startswith('etcd: healthy, 3 members, leader %s, ' % leader.name), etcd_lines
    assert 'auth enabled, no alarms' in etcd_lines[0]
    members = rows(etcd_lines)
    assert sorted(members) == sorted(m.name for m in etcd.members)
    for member in etcd.members:
        cells = members[member.name]
        assert cells[2:5] == [member.client_url, 'healthy', 'leader' if member is leader else 'follower'], cells

    # Each cluster once, read by its first host; every member with the role, state and timeline Patroni gives.
    assert ran_on(run, 'Read the cluster\'s state from etcd') == ['a1', 'b1']
    for scope, cluster in stack['clusters'].items():
        primary = cluster.wait_leader()
        lines_of = status_report.section(lines, 'Patroni cluster %s ' % scope)
        assert lines_of[0] == 'Patroni cluster %s (/service/%s/): leader %s, primary %s, %d replica%s running' % (
            scope, scope, primary.name, primary.name, len(cluster.nodes) - 1, '' if len(cluster.nodes) == 2 else 's')
        table = rows(lines_of)
        assert sorted(table) == sorted(n.name for n in cluster.nodes)
        for node in cluster.nodes:
            own = node.status()
            cells = table[node.name]
            assert cells[1] == '%s:%d' % (node.ip, node.pg_port)
            assert cells[2] == own['role']
            assert cells[4] == str(own['timeline'])
            if node is primary:
                assert cells[3] == 'running' and cells[5:] == ['-', 'leader', 'key'], cells
            else:
                assert cells[3] == own['replication_state'] == 'streaming', cells
                assert re.match(r'^\d+(\.\d)?$', cells[5]) and cells[6] in ('B', 'KiB', 'MiB'), cells

    # The load balancer: one row per server of each backend, each in the state the agent itself reports.
    lb_lines = status_report.section(lines, 'Load balancer lb1: ')
    assert lb_lines[0].startswith('Load balancer lb1: etcd ok, HAProxy ok, last change '), lb_lines[0]
    for scope in SCOPES:
        entry = agent['clusters'][scope]
        assert '  cluster %s: leader %s, writes to %s' % (scope, entry['leader'], entry['verified_primary']) in lb_lines
        for kind, backend in entry['backends'].items():
            for server in backend['servers']:
                wanted = 'ready' if server['wanted'] else 'maint'
                expected = '%s %s %d %s %s %s' % (scope, kind, backend['port'], server['name'], wanted,
                                                  server['haproxy'])
                assert any(' '.join(line.split()).startswith(expected) for line in lb_lines), (expected, lb_lines)
    assert agent['clusters']['alpha']['backends']['primary']['port'] == lb.ports['alpha']['primary']

    # Check mode: the same tables, nothing changed.
    checked = run_playbook('pgha.cluster.status', inventory=path, workdir=stack['dir'], check=True)
    assert checked.rc == 0, checked.tail()
    assert sum(r['changed'] for r in checked.recap.values()) == 0, checked.recap
    again = status_report.report(checked)
    for scope in SCOPES:
        assert rows(status_report.section(again, 'Patroni cluster %s ' % scope)).keys() == rows(
            status_report.section(lines, 'Patroni cluster %s ' % scope)).keys()
    assert status_report.section(again, 'Load balancer lb1: ')[1:] == lb_lines[1:]


def test_a_stopped_etcd_member_and_a_stopped_agent_are_shown_as_such(stack):
    etcd, lb = stack['etcd'], stack['lb']
    follower = next(m for m in etcd.members if m is not etcd.leader())
    follower.stop()
    lb.stop_agent()
    try:
        run = run_playbook('pgha.cluster.status', inventory=inventory(stack), workdir=stack['dir'])
        assert run.rc == 0, run.tail()
        lines = status_report.report(run)
        etcd_lines = status_report.section(lines, 'etcd: ')
        assert etcd_lines[0].startswith('etcd: NOT HEALTHY, 3 members, '), etcd_lines
        cells = rows(etcd_lines)[follower.name]
        assert cells[2:4] == [follower.client_url, 'UNHEALTHY'], cells
        assert 'no answer' in ' '.join(cells[8:]) and 'refused' in ' '.join(cells[8:]), cells
        assert all(rows(etcd_lines)[m.name][3] == 'healthy' for m in etcd.members if m is not follower)
        # The clusters are still read, through the members that answer.
        for scope, cluster in stack['clusters'].items():
            assert status_report.section(lines, 'Patroni cluster %s ' % scope)[0].startswith(
                'Patroni cluster %s (/service/%s/): leader %s' % (scope, scope, cluster.wait_leader().name))
        assert status_report.section(lines, 'Load balancer lb1: ') == [
            'Load balancer lb1: pgha-lb-sync NOT ANSWERING at http://127.0.0.1:%d/status - Status code was -1 and '
            'not [200]: Request failed: <urlopen error [Errno 111] Connection refused>' % lb.status_port]
    finally:
        follower.start()
        etcd.wait_healthy()
        lb.start_agent()


def test_etcd_that_nobody_reaches_and_a_host_that_does_not_answer(stack):
    down = closed_port()
    lb_hosts = {'lb1': {'haproxy_sync_status_port': stack['lb'].status_port},
                # ssh to a port nothing listens on: the host cannot be reached.
                'lb2': {'ansible_connection': 'ssh', 'ansible_host': '127.0.0.1', 'ansible_port': down}}
    run = run_playbook('pgha.cluster.status', inventory=inventory(stack, 'down.yml', etcd_port=down, lb_hosts=lb_hosts),
                       workdir=stack['dir'])
    assert run.recap['lb2']['unreachable'] == 1 and run.rc == 4, run.tail()
    assert not [h for h, r in run.recap.items() if r['failed']], run.recap
    lines = status_report.report(run)
    etcd_lines = status_report.section(lines, 'etcd: ')
    assert len(etcd_lines) == 1 and etcd_lines[0].startswith('etcd: NOT READ - '), etcd_lines
    for member in stack['etcd'].members:
        assert 'https://%s:%d' % (member.ip, down) in etcd_lines[0]
    for scope in SCOPES:
        cluster_lines = status_report.section(lines, 'Patroni cluster %s: ' % scope)
        assert len(cluster_lines) == 1 and cluster_lines[0].startswith('Patroni cluster %s: NOT READ - ' % scope)
        assert 'https://%s:%d' % (stack['etcd'].members[0].ip, down) in cluster_lines[0]
    assert status_report.section(lines, 'Load balancer lb1: ')[0].startswith('Load balancer lb1: etcd ok, HAProxy ok')
    assert not [line for line in lines if line.startswith('Load balancer lb2')]
    assert lines[-1] == 'NOT REACHED (see the recap): lb2'
