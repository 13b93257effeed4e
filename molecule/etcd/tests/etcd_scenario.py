"""What the etcd scenario's tests know about the scenario, and how they act on it.

Everything comes from what Molecule wrote for the scenario: its inventory (the
`etcd` and `etcd_spare` groups, the connection settings), the group_vars next
to it (passwords, ``pki_ca_dir``), and Docker (the containers' addresses on the
scenario's network). The controller reaches those addresses directly; commands
inside a container go through ``docker exec``.
"""

import base64
import json
import os
import subprocess
import time

import yaml

from ansible_collections.pgha.cluster.plugins.module_utils.etcd_client import EtcdClient
from ansible_collections.pgha.cluster.plugins.module_utils.etcd_errors import EtcdError
from scenario_base import ScenarioBase, run_playbook

CLIENT_PORT = 2379
PEER_PORT = 2380
# Where the pki role installs the certificates on the hosts, and where the etcd role keeps its configuration
# (with the JWT signing key and etcd's copies of the TLS files) and its data.
HOST_PKI_DIR = '/etc/pgha/pki'
HOST_CONFIG_DIR = '/etc/pgha/etcd'
HOST_DATA_DIR = '/var/lib/etcd/pgha'


class ClusterProblems(AssertionError):
    pass


class Scenario(ScenarioBase):
    def __init__(self, inventory_file, ephemeral_dir, scenario_dir):
        super(Scenario, self).__init__(inventory_file, ephemeral_dir, scenario_dir)
        self.members = self.group('etcd')
        self.spares = self.group('etcd_spare')
        self.passwords = {
            'root': self.group_vars['etcd_root_password'],
            'patroni-main': self.group_vars['pgha_etcd_patroni_password'],
            'lb-main': self.group_vars['pgha_etcd_lb_password'],
        }
        self.pki_ca_dir = self.group_vars['pki_ca_dir']

    # ------------------------------------------------------------------ addresses

    def client_url(self, host):
        return 'https://%s:%d' % (self.ip(host), CLIENT_PORT)

    def peer_url(self, host):
        return 'https://%s:%d' % (self.ip(host), PEER_PORT)

    # ------------------------------------------------------------------ certificates (controller copies)

    @property
    def ca_cert(self):
        return os.path.join(self.pki_ca_dir, 'ca.crt')

    def client_cert(self, name, host=None):
        """(cert, key) of client certificate ``name`` (admin, patroni, lb-agent) issued for ``host``."""
        base = os.path.join(self.pki_ca_dir, 'hosts', host or self.members[0], 'client-%s' % name)
        return base + '.crt', base + '.key'

    def host_cert(self, host, name):
        """(cert, key) ``name`` issued for ``host``: its server certificate (``name`` = host) or ``etcd-peer``."""
        base = os.path.join(self.pki_ca_dir, 'hosts', host, name)
        return base + '.crt', base + '.key'

    @property
    def peer_ca_cert(self):
        """The CA the etcd peer ports trust (and only they)."""
        return os.path.join(self.pki_ca_dir, 'etcd-peer-ca.crt')

    def private_keys(self):
        """Every private key file the scenario's CA directory holds (CA, hosts, JWT)."""
        found = []
        for root, _dirs, files in os.walk(self.pki_ca_dir):
            found.extend(os.path.join(root, f) for f in files if f.endswith('.key'))
        return sorted(found)

    # ------------------------------------------------------------------ clients

    def client(self, user='root', cert='admin', hosts=None, timeout=10.0, password=None):
        """Our EtcdClient; ``user=None`` sends no credentials, ``cert=None`` presents no client certificate;
        ``password`` defaults to the user's from the inventory."""
        cert_file, key_file = self.client_cert(cert) if cert else (None, None)
        return EtcdClient([self.client_url(h) for h in hosts or self.members], ca_cert=self.ca_cert,
                          client_cert=cert_file, client_key=key_file, username=user,
                          password=(password or self.passwords[user]) if user else None, timeout=timeout)

    def etcdctl(self, container, args, user='root', endpoints=None, timeout=120):
        """etcdctl (v3 API) in ``container``, as ``user`` (None: no credentials), with the admin client certificate."""
        env = {'ETCDCTL_API': '3'}
        if user:
            env['ETCDCTL_USER'] = '%s:%s' % (user, self.passwords[user])
        cmd = ['etcdctl', '--endpoints', ','.join(endpoints or ['https://127.0.0.1:%d' % CLIENT_PORT]),
               '--cacert', HOST_PKI_DIR + '/ca.crt', '--cert', HOST_PKI_DIR + '/client-admin.crt',
               '--key', HOST_PKI_DIR + '/client-admin.key', '--command-timeout', '15s'] + list(args)
        return self.docker_exec(container, cmd, env=env, timeout=timeout)

    def etcdctl_get_prefix(self, container, prefix):
        """{key: value} under ``prefix`` as etcdctl in ``container`` reads it (linearizable)."""
        proc = self.etcdctl(container, ['get', '--prefix', prefix, '-w', 'json'])
        assert proc.returncode == 0, 'etcdctl get --prefix %s in %s failed: %s' % (prefix, container, proc.stderr)
        reply = json.loads(proc.stdout)
        return {base64.b64decode(kv['key']).decode(): base64.b64decode(kv.get('value', '')).decode()
                for kv in reply.get('kvs') or []}

    # ------------------------------------------------------------------ Ansible

    def run_plays(self, plays, workdir, extra_vars=None, label='plays'):
        """ansible-playbook of ``plays`` (a list of plays, written to ``workdir``) on Molecule's inventory."""
        log_file = os.path.join(self.log_dir, '%s-%s.log' % (label, time.strftime('%H%M%S')))
        env = {'ANSIBLE_CONFIG': os.environ.get('ANSIBLE_CONFIG', os.path.join(self.ephemeral_dir, 'ansible.cfg')),
               'ANSIBLE_FORKS': '5'}
        return run_playbook(plays, self.inventory_file, extra_vars=extra_vars, env=env, timeout=1200,
                            workdir=str(workdir), log_file=log_file)

    def write_inventory(self, path, members, spares=(), down=(), extra_host_vars=None):
        """A YAML inventory like Molecule's, with ``members`` in group etcd and ``spares`` in etcd_spare.

        Ansible reaches the hosts in ``down`` over SSH at their address, where
        nothing listens: to Ansible they are down (unreachable), as a dead host is.
        ``extra_host_vars``: {host: {variable: value}} set for those hosts.
        """
        host_vars = {h: dict(self.host_vars[h]) for h in list(members) + list(spares)}
        for host, settings in (extra_host_vars or {}).items():
            host_vars[host].update(settings)
        for host in down:
            host_vars[host].update({'ansible_connection': 'ssh', 'ansible_host': self.ip(host),
                                    'ansible_ssh_common_args': '-o ConnectTimeout=10 -o StrictHostKeyChecking=no '
                                                               '-o UserKnownHostsFile=/dev/null'})
        inventory = {'all': {
            'hosts': host_vars,
            'vars': self.group_vars,
            'children': {
                'etcd': {'hosts': {h: None for h in members}},
                'etcd_spare': {'hosts': {h: None for h in spares}},
            },
        }}
        with open(str(path), 'w') as handle:
            yaml.safe_dump(inventory, handle, sort_keys=False)
        return str(path)

    # ------------------------------------------------------------------ cluster state

    def cluster_problems(self, names, via=None):
        """What is wrong with the cluster compared with "exactly ``names``, all voting, healthy, one leader".

        Returns (problems, details): an empty list when all is well, and what
        was seen. ``via`` are the hosts whose client URLs are used to ask.
        """
        problems = []
        details = {}
        try:
            client = self.client(hosts=via or names, timeout=5.0)
        except EtcdError as exc:
            return ['cannot build a client: %s' % exc], details
        try:
            members = client.members()
        except EtcdError as exc:
            client.close()
            return ['member list failed: %s' % exc], details
        try:
            details['members'] = {m.name or '<unstarted %x>' % m.id: m for m in members}
            if sorted(details['members']) != sorted(names):
                problems.append('members are %s, expected %s' % (sorted(details['members']), sorted(names)))
            leaders = {}
            for m in members:
                label = m.name or '%x' % m.id
                if m.is_learner:
                    problems.append('%s is a learner' % label)
                if not m.client_urls:
                    problems.append('%s has not started' % label)
                    continue
                url = m.client_urls[0]
                try:
                    status = client.status(url)
                except EtcdError as exc:
                    problems.append('%s: status failed: %s' % (label, exc))
                    continue
                healthy, reason = client.health(url)
                if not healthy:
                    problems.append('%s unhealthy: %s' % (label, reason))
                if status.errors:
                    problems.append('%s reports errors %s' % (label, status.errors))
                if status.member_id != m.id:
                    problems.append('%s answered as member %x' % (label, status.member_id))
                leaders[label] = status.leader
            details['leaders'] = leaders
            if len(set(leaders.values())) != 1:
                problems.append('members disagree on the leader: %s'
                                % {k: '%x' % v for k, v in sorted(leaders.items())})
            elif leaders and next(iter(leaders.values())) not in {m.id for m in members}:
                problems.append('the leader %x is not a member' % next(iter(leaders.values())))
        finally:
            client.close()
        return problems, details

    def wait_cluster(self, names, timeout=180, via=None):
        """Poll until the cluster is exactly ``names``, all voting, healthy and agreeing on one leader."""
        deadline = time.monotonic() + timeout
        while True:
            problems, details = self.cluster_problems(names, via=via)
            if not problems:
                return details
            if time.monotonic() >= deadline:
                raise ClusterProblems('after %ss the cluster is not %s, all voting and healthy: %s'
                                      % (timeout, sorted(names), '; '.join(problems)))
            time.sleep(1)

    def wait_unhealthy(self, host, timeout=60):
        """Poll until ``host``'s etcd no longer answers as healthy."""
        deadline = time.monotonic() + timeout
        client = self.client(hosts=[host], timeout=3.0)
        try:
            while client.health(self.client_url(host))[0]:
                assert time.monotonic() < deadline, '%s still reports healthy after %ss' % (host, timeout)
                time.sleep(0.5)
        finally:
            client.close()

    def move_leader(self, host, timeout=90):
        """Make ``host`` the leader (etcdctl move-leader, sent to the current leader); poll until it is."""
        deadline = time.monotonic() + timeout
        client = self.client(timeout=5.0)
        try:
            while True:
                members = {m.id: m for m in client.members()}
                target = next(m for m in members.values() if m.name == host)
                leader = client.status(self.client_url(host)).leader
                if leader == target.id:
                    return
                assert time.monotonic() < deadline, '%s is not the leader after %ss' % (host, timeout)
                if leader in members:
                    self.etcdctl(host, ['move-leader', '%x' % target.id], endpoints=members[leader].client_urls[:1])
                time.sleep(1)
        finally:
            client.close()

    def service_state(self, host):
        return self.docker_exec(host, ['systemctl', 'is-active', 'etcd.service']).stdout.strip()

    def restore(self):
        """Best effort: etcd running on the inventory's members, any other member removed, spares stopped and empty."""
        notes = []
        for host in self.members:
            self.docker_exec(host, ['systemctl', 'start', 'etcd.service'])
        try:
            client = self.client(timeout=5.0)
            for m in client.members():
                if m.name not in self.members:
                    client.member_remove(m.id)
                    notes.append('removed member %s (%x)' % (m.name or '<unstarted>', m.id))
            client.close()
        except EtcdError as exc:
            notes.append('could not clean up the member list: %s' % exc)
        for host in self.spares:
            subprocess.run(['docker', 'unpause', host], capture_output=True, timeout=60, check=False)
            self.docker_exec(host, ['systemctl', 'disable', '--now', 'etcd.service'])
            self.docker_exec(host, ['rm', '-rf', HOST_DATA_DIR, HOST_CONFIG_DIR])
        return notes
