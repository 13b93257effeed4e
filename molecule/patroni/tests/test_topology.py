"""One leader, two replicas streaming from it, data written on the leader read on both replicas, and
the cluster as patroni_info reads it from etcd matching what each member's REST API says. The second
cluster, formed by the same playbook run on the same etcd, has its own leader and replica."""

import json
import os
import subprocess
import time
import uuid

from scenario_base import BIN_DIR


def test_one_primary_and_two_streaming_replicas(scenario):
    state = scenario.wait_healthy()
    primary = state.primary().name
    replicas = sorted(set(scenario.members) - {primary})

    assert scenario.sql_value(primary, 'SELECT pg_is_in_recovery()') == 'f'
    for host in replicas:
        assert scenario.sql_value(host, 'SELECT pg_is_in_recovery()') == 't', host

    rows = scenario.sql_value(primary, "SELECT application_name || ' ' || state FROM pg_stat_replication "
                                       "ORDER BY application_name").splitlines()
    assert rows == ['%s streaming' % h for h in replicas]


def test_each_cluster_formed_with_one_primary_and_streaming_replicas(scenario):
    primaries = {}
    for group, cluster in scenario.clusters.items():
        state = cluster.wait_healthy()
        assert sorted(m.name for m in state.members) == cluster.members
        primary = state.primary().name
        primaries[group] = primary
        assert scenario.sql_value(primary, 'SELECT pg_is_in_recovery()') == 'f'
        rows = scenario.sql_value(primary, "SELECT application_name || ' ' || state FROM pg_stat_replication "
                                           "ORDER BY application_name").splitlines()
        assert rows == ['%s streaming' % h for h in sorted(set(cluster.members) - {primary})], group
    # Each cluster its own database: the system identifiers differ.
    identifiers = {scenario.sql_value(p, 'SELECT system_identifier FROM pg_control_system()')
                   for p in primaries.values()}
    assert len(identifiers) == len(scenario.clusters)
    assert not set(scenario.main.members) & set(scenario.beta.members)


def test_row_written_on_the_leader_appears_on_both_replicas(scenario):
    primary = scenario.wait_healthy().primary().name
    token = uuid.uuid4().hex
    scenario.sql_value(primary, 'CREATE TABLE IF NOT EXISTS verify_rows (token text PRIMARY KEY, '
                                'written timestamptz DEFAULT now())')
    scenario.sql_value(primary, "INSERT INTO verify_rows (token) VALUES ('%s')" % token)
    for host in sorted(set(scenario.members) - {primary}):
        deadline = time.monotonic() + 30
        while scenario.sql_value(host, "SELECT count(*) FROM verify_rows WHERE token = '%s'" % token) != '1':
            assert time.monotonic() < deadline, 'the row never reached %s' % host
            time.sleep(0.2)


def _patroni_info(scenario):
    """pgha.cluster.patroni_info run by Ansible on the controller, with the REST API queried too."""
    base = os.path.join(scenario.pki_ca_dir, 'hosts', scenario.members[0], 'client-patroni')
    args = {
        'scope': 'main',
        'endpoints': ['https://%s:2379' % scenario.ip(h) for h in scenario.etcd_members],
        'ca_cert': scenario.ca_cert, 'client_cert': base + '.crt', 'client_key': base + '.key',
        'username': 'patroni-main', 'password': scenario.group_vars['pgha_etcd_patroni_password'],
        'rest_api': True, 'rest_ca_cert': scenario.ca_cert,
    }
    env = dict(os.environ, ANSIBLE_NOCOLOR='1', ANSIBLE_LOAD_CALLBACK_PLUGINS='1', ANSIBLE_STDOUT_CALLBACK='json')
    proc = subprocess.run([os.path.join(BIN_DIR, 'ansible'), 'localhost', '-m', 'pgha.cluster.patroni_info',
                           '-a', json.dumps(args)], capture_output=True, text=True, env=env, timeout=120,
                          check=False, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return json.loads(proc.stdout)['plays'][0]['tasks'][0]['hosts']['localhost']


def test_patroni_info_from_etcd_matches_each_members_rest_api(scenario):
    scenario.wait_healthy()
    info = _patroni_info(scenario)
    members = {m['name']: m for m in info['cluster']['members']}
    assert sorted(members) == scenario.members
    for host in scenario.members:
        # Asked directly, not through the module, so the two sides are independent.
        status, own = scenario.rest(host, '/patroni')
        assert status == 200, own
        etcd_view = members[host]
        assert etcd_view['role'] == {'master': 'primary'}.get(own['role'], own['role']), host
        assert etcd_view['state'] == own['state'], host
        assert etcd_view['timeline'] == own['timeline'], host
        assert etcd_view['api_url'] == 'https://%s:8008/patroni' % scenario.ip(host)
        assert etcd_view['host'] == scenario.ip(host) and etcd_view['port'] == 5432
        assert info['rest'][host]['ok'] and info['rest'][host]['role'] == own['role'], info['rest'][host]
    status, cluster = scenario.rest(scenario.members[0], '/cluster')
    assert status == 200
    leaders = [m['name'] for m in cluster['members'] if m['role'] == 'leader']
    assert leaders == [info['leader']] and info['primary'] == info['leader']
    assert sorted(info['replicas']) == sorted(set(scenario.members) - {info['leader']})
