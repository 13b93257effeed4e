"""What the patroni scenario's tests know about the scenario, and how they act on it.

The cluster's state comes from etcd through the collection's own parser
(patroni_state, as patroni_info reads it) with the Patroni cluster's own etcd
user, and from each member's REST API; SQL runs in the containers with psql.
"""

import base64
import json
import os
import ssl
import time
import urllib.error
import urllib.request

import yaml

from ansible_collections.pgha.cluster.plugins.module_utils.etcd_client import EtcdClient
from ansible_collections.pgha.cluster.plugins.module_utils.patroni_state import read_cluster_state
from lb_probe import LB, PORTS
from scenario_base import ScenarioBase

NAMESPACE = '/service'
API_PORT = 8008
PG_PORT = 5432
# The copies of the CA and keys the patroni role makes for the postgres user.
HOST_TLS_DIR = '/etc/pgha/patroni/tls'
# The scenario's Patroni clusters: child groups of postgres, each named like its scope.
CLUSTERS = ('main', 'beta')


class Cluster(object):
    """One Patroni cluster of the scenario: its members, its variables (group_vars/all, then its group's) and its
    state in etcd, read as its own etcd user."""

    def __init__(self, scenario, group):
        self.scenario = scenario
        self.group = group
        self.vars = dict(scenario.group_vars)
        self.vars.update(scenario.own_group_vars(group))
        self.scope = self.vars['pgha_cluster_name']
        self.members = scenario.group(group)
        self.superuser_password = self.vars['patroni_superuser_password']
        self.restapi_password = self.vars['patroni_restapi_password']

    def etcd(self, leave_out=None, timeout=10):
        """An etcd client as the cluster's own user, with the patroni client certificate; ``leave_out`` names a
        host whose member it never asks (with etcd colocated, a killed host would cost every request a time-out
        before the client tried the next endpoint)."""
        base = os.path.join(self.scenario.pki_ca_dir, 'hosts', self.members[0], 'client-patroni')
        return EtcdClient(['https://%s:2379' % self.scenario.ip(h) for h in self.scenario.etcd_members
                           if h != leave_out],
                          ca_cert=self.scenario.ca_cert, client_cert=base + '.crt', client_key=base + '.key',
                          username='patroni-%s' % self.scope, password=self.vars['pgha_etcd_patroni_password'],
                          timeout=timeout)

    def patch_config(self, changes, host=None):
        """PATCH Patroni's dynamic configuration through ``host``'s REST API (default: the primary)."""
        host = host or self.wait_healthy().primary().name
        status, body = self.scenario.rest(host, '/config', method='PATCH', body=changes,
                                          auth=('patroni', self.restapi_password))
        if status != 200:
            raise RuntimeError('PATCH /config %s on %s: %s %s' % (changes, host, status, body))

    def state(self):
        client = self.etcd()
        try:
            return read_cluster_state(client, NAMESPACE, self.scope)
        finally:
            client.close()

    def wait_healthy(self, timeout=120, leader=None):
        """The state once one member leads and runs as primary and every other member streams from it."""
        deadline = time.monotonic() + timeout
        while True:
            state = self.state()
            problems = self.problems(state, leader)
            if not problems:
                return state
            if time.monotonic() >= deadline:
                raise AssertionError('cluster %s not healthy after %ss: %s'
                                     % (self.scope, timeout, '; '.join(problems)))
            time.sleep(1)

    def problems(self, state, leader=None):
        found = []
        primary = state.primary()
        if primary is None:
            found.append('no running primary (leader key: %s)' % state.leader)
        elif leader and primary.name != leader:
            found.append('%s leads, not %s' % (primary.name, leader))
        names = sorted(m.name for m in state.members)
        if names != self.members:
            found.append('members in etcd %s, expected %s' % (names, self.members))
        streaming = sorted(m.name for m in state.replicas(include_noloadbalance=True)
                           if m.replication_state == 'streaming')
        expected = sorted(set(self.members) - {primary.name if primary else None})
        if primary is not None and streaming != expected:
            found.append('streaming replicas %s, expected %s' % (streaming, expected))
        return found


class Scenario(ScenarioBase):
    """The scenario; what concerns one cluster only is the first cluster's (main) unless a test picks one from
    ``clusters``."""

    # The inventory groups of its Patroni clusters; the first is the one tests act on unless they pick another.
    CLUSTER_GROUPS = CLUSTERS
    # The load balancer in front of them, and each cluster's ports on it (by group).
    LB = LB
    LB_PORTS = PORTS

    def __init__(self, inventory_file, ephemeral_dir, scenario_dir):
        super(Scenario, self).__init__(inventory_file, ephemeral_dir, scenario_dir)
        self.etcd_members = self.group('etcd')
        self.pki_ca_dir = self.group_vars['pki_ca_dir']
        self.ca_cert = os.path.join(self.pki_ca_dir, 'ca.crt')
        self.clusters = {group: Cluster(self, group) for group in self.CLUSTER_GROUPS}
        self.main, self.beta = self.clusters[self.CLUSTER_GROUPS[0]], self.clusters.get('beta')
        self.members = self.main.members
        self.superuser_password = self.main.superuser_password
        self.restapi_password = self.main.restapi_password

    def playbook(self, name, inventory=None, **kwargs):
        """As ScenarioBase's, with Molecule's whole inventory directory (its `hosts` file makes the clusters'
        groups children of postgres) unless ``inventory`` says otherwise."""
        return super(Scenario, self).playbook(name, inventory=inventory or os.path.dirname(self.inventory_file),
                                              **kwargs)

    def own_group_vars(self, name):
        """The variables Molecule wrote to group_vars/<name> (none: {})."""
        path = os.path.join(os.path.dirname(self.group_vars_file), name)
        if not os.path.isfile(path):
            return {}
        with open(path) as handle:
            return yaml.safe_load(handle) or {}

    def write_inventory(self, path, group_vars=None, add_hosts=None):
        """An inventory like Molecule's, written to ``path`` with every group's variables inline:
        ``group_vars`` ({group: {name: value}}) replaces variables of a cluster's group, ``add_hosts``
        ({group: [host]}) adds hosts to a cluster's group."""
        group_vars, add_hosts = group_vars or {}, add_hosts or {}
        clusters = {}
        for group, cluster in self.clusters.items():
            variables = self.own_group_vars(group)
            variables.update(group_vars.get(group, {}))
            clusters[group] = {'hosts': {h: None for h in cluster.members + list(add_hosts.get(group, []))},
                               'vars': variables}
        inventory = {'all': {
            'hosts': {h: dict(v) for h, v in self.host_vars.items()},
            'vars': self.group_vars,
            'children': {
                'etcd': {'hosts': {h: None for h in self.etcd_members}, 'vars': self.own_group_vars('etcd')},
                'postgres': {'children': clusters},
                # The load balancers: pg_hba lets them in.
                'lb': {'hosts': {h: None for h in self.group('lb')}, 'vars': self.own_group_vars('lb')},
            },
        }}
        with open(str(path), 'w') as handle:
            yaml.safe_dump(inventory, handle, sort_keys=False)
        return str(path)

    # ------------------------------------------------------------------ the first cluster's state

    def state(self):
        return self.main.state()

    def wait_healthy(self, timeout=120, leader=None):
        return self.main.wait_healthy(timeout=timeout, leader=leader)

    def wait_all_healthy(self, timeout=120):
        """Every cluster healthy: {group: state}."""
        return {group: cluster.wait_healthy(timeout=timeout) for group, cluster in self.clusters.items()}

    def journal_since(self, host, since, until=None, unit='patroni.service'):
        """The journal of ``unit`` on ``host`` between two `date +%s` times of the containers."""
        args = ['journalctl', '--no-pager', '-o', 'cat', '-u', unit, '--since', '@%d' % since]
        if until is not None:
            args += ['--until', '@%d' % until]
        proc = self.docker_exec(host, args)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    def now(self):
        """The containers' clock (the host's), in seconds."""
        return int(self.docker_exec(self.members[0], ['date', '+%s']).stdout.strip())

    # ------------------------------------------------------------------ REST API

    def tls_context(self):
        return ssl.create_default_context(cafile=self.ca_cert)

    def api_url(self, host, path):
        return 'https://%s:%d%s' % (self.ip(host), API_PORT, path)

    def rest(self, host, path, method='GET', body=None, auth=None, context=None, timeout=10):
        """(status, parsed JSON or text) of a REST call; ``auth`` is (user, password)."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.api_url(host, path), data=data, method=method)
        if data is not None:
            req.add_header('Content-Type', 'application/json')
        if auth:
            req.add_header('Authorization', 'Basic ' + base64.b64encode(('%s:%s' % auth).encode()).decode())
        try:
            with urllib.request.urlopen(req, context=context or self.tls_context(), timeout=timeout) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        text = raw.decode('utf-8', 'replace')
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text

    # ------------------------------------------------------------------ SQL

    def conninfo(self, host, user='postgres', sslmode='verify-full', replication=False):
        """libpq conninfo for a connection from one member to ``host`` over the network."""
        return ('host=%s port=%d user=%s dbname=postgres connect_timeout=10 sslmode=%s sslrootcert=%s/ca.crt%s'
                % (self.ip(host), PG_PORT, user, sslmode, HOST_TLS_DIR, ' replication=true' if replication else ''))

    def psql(self, host, sql, conninfo=None, password=None, timeout=60):
        """psql in ``host`` as the postgres OS user: the local socket unless ``conninfo`` says otherwise."""
        args = ['runuser', '-u', 'postgres', '--', 'psql', '-XAt', '-v', 'ON_ERROR_STOP=1']
        if conninfo:
            args += ['-d', conninfo]
        args += ['-c', sql]
        env = {'PGPASSWORD': password} if password else None
        return self.docker_exec(host, args, env=env, timeout=timeout)

    def sql_value(self, host, sql):
        proc = self.psql(host, sql)
        assert proc.returncode == 0, 'psql on %s failed: %s' % (host, proc.stderr.strip())
        return proc.stdout.strip()
