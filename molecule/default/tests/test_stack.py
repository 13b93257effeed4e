"""The whole stack as a client and an operator see it: through the load balancer demo-lb, writes land on the
primary and reads on replicas only, TLS and RBAC turn away clients without certificates or credentials, and the
inventory plugin shows the live topology from etcd. A switchover under a steady write load is among the fault
tests (test_failures.py).
"""

import json
import os
import ssl
import subprocess
import sys

import psycopg2
import pytest

from demo_scenario import LB
from lb_probe import connect, eventually, landing
from scenario_base import BIN_DIR
from inventory_listing import group_hosts, plain  # tests/lib, on the path through scenario_base

from ansible_collections.pgha.cluster.plugins.module_utils.etcd_client import EtcdClient
from ansible_collections.pgha.cluster.plugins.module_utils.etcd_errors import EtcdError

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
import demo  # noqa: E402  pylint: disable=wrong-import-position

WRITE_PORT, READ_PORT = demo.PORTS['primary'], demo.PORTS['replicas']


def _landings(scenario, port, count):
    cluster = scenario.main
    return [eventually(lambda: landing(scenario, cluster, port, host=LB), 'a connection through %s:%d' % (LB, port))
            for _attempt in range(count)]


def test_writes_land_on_the_primary_and_reads_on_the_replicas(scenario, report):
    state = scenario.main.wait_healthy()
    primary = state.primary().name
    replicas = set(scenario.members) - {primary}
    assert set(_landings(scenario, WRITE_PORT, 3)) == {(primary, False)}
    reads = _landings(scenario, READ_PORT, 3 * len(replicas))
    assert all(in_recovery for _member, in_recovery in reads), reads
    assert {member for member, _in_recovery in reads} == replicas, reads
    conn = connect(scenario, scenario.main, WRITE_PORT, host=LB)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute('CREATE TABLE IF NOT EXISTS demo_check (id serial PRIMARY KEY, note text)')
            cur.execute("INSERT INTO demo_check (note) VALUES ('through the load balancer') RETURNING id")
            row_id = cur.fetchone()[0]
    finally:
        conn.close()

    def replicated():
        conn = connect(scenario, scenario.main, READ_PORT, host=LB)
        try:
            with conn.cursor() as cur:
                cur.execute('SELECT note FROM demo_check WHERE id = %s', (row_id,))
                return cur.fetchone()
        finally:
            conn.close()

    assert eventually(replicated, 'the row read back through %s:%d' % (LB, READ_PORT)) == (
        'through the load balancer',)
    report('writes through %s:%d land on %s; reads through :%d on %s'
           % (LB, WRITE_PORT, primary, READ_PORT, ', '.join(sorted(replicas))))


def test_postgresql_refuses_clients_without_tls_or_the_password(scenario):
    cluster = scenario.main
    with pytest.raises(psycopg2.OperationalError, match='no pg_hba.conf entry|SSL off'):
        psycopg2.connect(host=scenario.ip(LB), port=WRITE_PORT, dbname='postgres', user='postgres',
                         password=cluster.superuser_password, sslmode='disable', connect_timeout=5)
    with pytest.raises(psycopg2.OperationalError, match='password authentication failed'):
        psycopg2.connect(host=scenario.ip(LB), port=WRITE_PORT, dbname='postgres', user='postgres',
                         password='not-the-password', sslmode='verify-ca', sslrootcert=scenario.ca_cert,
                         connect_timeout=5)


def _etcd(scenario, **options):
    return EtcdClient(['https://%s:2379' % scenario.ip(h) for h in scenario.etcd_members], timeout=5, **options)


def test_etcd_refuses_clients_without_a_certificate_or_credentials(scenario):
    prefix = '/service/%s/' % scenario.main.scope
    without_cert = _etcd(scenario, ca_cert=scenario.ca_cert)
    with pytest.raises((EtcdError, ssl.SSLError, OSError)):
        without_cert.get_prefix(prefix)
    without_cert.close()
    client = os.path.join(scenario.pki_ca_dir, 'hosts', LB, 'client-lb-agent')
    anonymous = _etcd(scenario, ca_cert=scenario.ca_cert, client_cert=client + '.crt', client_key=client + '.key')
    with pytest.raises(EtcdError):
        anonymous.get_prefix(prefix)
    anonymous.close()
    read_only = _etcd(scenario, ca_cert=scenario.ca_cert, client_cert=client + '.crt', client_key=client + '.key',
                      username='lb-%s' % scenario.main.scope, password=scenario.group_vars['pgha_etcd_lb_password'])
    try:
        assert any(kv.key.endswith(b'/leader') for kv in read_only.get_prefix(prefix))
        with pytest.raises(EtcdError, match='permission denied'):
            read_only.put(prefix + 'leader', 'intruder')
    finally:
        read_only.close()


def test_the_inventory_plugin_shows_the_live_topology(scenario, tmp_path, report):
    primary = scenario.main.wait_healthy().primary().name
    path = tmp_path / 'demo.patroni.yml'
    path.write_text(demo.inventory_file_text(['https://%s:2379' % scenario.ip(h) for h in scenario.etcd_members],
                                             scenario.pki_ca_dir, scenario.group_vars['pgha_etcd_lb_password']))
    proc = subprocess.run([os.path.join(BIN_DIR, 'ansible-inventory'), '-i', str(path), '--list'],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    inventory = plain(json.loads(proc.stdout))
    assert group_hosts(inventory, 'patroni_primary') == {primary}, inventory
    assert group_hosts(inventory, 'patroni_replica') == set(scenario.members) - {primary}
    assert group_hosts(inventory, 'etcd') == set(scenario.etcd_members)
    hostvars = inventory['_meta']['hostvars']
    assert hostvars[primary]['patroni_role'] == 'primary'
    assert hostvars[primary]['ansible_host'] in (scenario.ip(primary), primary)  # from its conn_url
    assert scenario.group_vars['pgha_etcd_lb_password'] not in proc.stdout
    report('inventory plugin: primary %s, replicas %s'
           % (primary, ', '.join(sorted(group_hosts(inventory, 'patroni_replica')))))
