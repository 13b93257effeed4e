"""When etcd has lost a cluster's keys but its members hold data, the patroni role starts the member whose data
goes furthest first, never simply the first host: real Patroni 4.1 + PostgreSQL 15 nodes (scope demo in the TLS +
RBAC etcd) whose data directories the role's tasks/bootstrap_leader.yml reads with the real pg_controldata.

The old primary wrote a row the replica never received; both were stopped and the cluster's keys deleted from
etcd. The inventory lists the lagging replica first. Started first, it would take the cluster and the old
primary's row would be rewound away (the first test shows that this is real); the role names the old primary
instead, and started in that order the row survives. A primary that crashed has no known end of WAL: the role
refuses to guess, and patroni_bootstrap_leader decides.
"""

import pytest

from playbook_runner import run_playbook

ROW_ONLY_ON_THE_PRIMARY = 'written after the replica stopped'


@pytest.fixture
def diverged(etcd_tls, patroni_cluster_factory):
    """A cluster stopped with the old primary ahead of the replica, its keys wiped: (cluster, old primary,
    lagging replica)."""
    cluster = patroni_cluster_factory(etcd_tls, scope='demo', size=2)
    primary = cluster.wait_leader()
    replica = [n for n in cluster.nodes if n is not primary][0]
    primary.execute('CREATE TABLE rows_kept (note text)')
    primary.execute("INSERT INTO rows_kept VALUES ('on both')")
    cluster.wait_caught_up()
    replica.stop()
    primary.execute('INSERT INTO rows_kept VALUES (%s)', (ROW_ONLY_ON_THE_PRIMARY,))
    return cluster, primary, replica


def _wipe_and_stop(cluster, primary, crash=False):
    if crash:
        primary.kill()
    else:
        primary.stop()
    cluster.clear_dcs()


def _decide(cluster, tmp_path, order, **overrides):
    """tasks/bootstrap_leader.yml (after validate.yml, which publishes the member names) for hosts pg1, pg2 whose
    data directories are those of ``order`` (nodes, in inventory order)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    inventory = tmp_path / 'hosts.ini'
    inventory.write_text('[postgres]\n' + ''.join(
        'pg%d ansible_connection=local patroni_name=%s patroni_data_dir=%s\n' % (i + 1, node.name, node.data_dir)
        for i, node in enumerate(order)))
    role = {'name': 'pgha.cluster.patroni'}
    play = {'name': 'bootstrap leader', 'hosts': 'postgres', 'gather_facts': False, 'tasks': [
        {'name': 'Validate', 'ansible.builtin.include_role': dict(role, tasks_from='validate.yml')},
        {'name': 'Choose', 'ansible.builtin.include_role': dict(role, tasks_from='bootstrap_leader.yml', public=True)},
        {'name': 'Report', 'ansible.builtin.debug': {'msg': 'first={{ __patroni_bootstrap_host }}'}},
    ]}
    extra = {'patroni_address': '127.0.0.1', 'patroni_scope': cluster.scope,
             'patroni_etcd_endpoints': cluster.etcd.endpoints,
             'patroni_superuser_password': 'superuser-Secret-1', 'patroni_replication_password': 'replication-Secret-2',
             'patroni_rewind_password': 'rewind-Secret-3', 'patroni_restapi_password': 'restapi-Secret-4',
             'pgha_etcd_patroni_password': 'etcd-Secret-5'}
    extra.update(overrides)
    run = run_playbook([play], inventory=str(inventory), extra_vars=extra, workdir=str(tmp_path))
    return run, ' '.join(run.output.split())


def _start_in_order(cluster, first, second):
    first.start(wait=False)
    leader = cluster.wait_leader(timeout=90)
    second.start(wait=False)
    cluster.wait_running(timeout=90)
    return leader


def _rows(node):
    return sorted(r[0] for r in node.execute('SELECT note FROM rows_kept'))


def test_starting_the_lagging_member_first_loses_the_primarys_last_commits(diverged):
    cluster, primary, replica = diverged
    _wipe_and_stop(cluster, primary)
    leader = _start_in_order(cluster, replica, primary)
    assert leader is replica
    cluster.wait_caught_up(timeout=60)
    # The old primary followed the replica: its last row is gone everywhere.
    assert _rows(primary) == _rows(replica) == ['on both']


def test_the_role_starts_the_member_with_the_newest_data_first(diverged, tmp_path):
    cluster, primary, replica = diverged
    _wipe_and_stop(cluster, primary)
    run, text = _decide(cluster, tmp_path, [replica, primary])
    assert run.rc == 0, run.tail()
    assert 'first=pg2' in text and 'first=pg1' not in text, run.tail()
    assert ('etcd holds no state of cluster demo: pg2 starts first, its data goes furthest (%s: timeline'
            % replica.name) in text, run.tail()
    assert '(shut down in recovery)' in text and '(shut down))' in text
    assert all(r['changed'] == 0 and r['failed'] == 0 for r in run.recap.values()), run.recap
    leader = _start_in_order(cluster, primary, replica)
    assert leader is primary
    cluster.wait_caught_up(timeout=60)
    assert _rows(primary) == _rows(replica) == sorted(['on both', ROW_ONLY_ON_THE_PRIMARY])


def test_the_role_refuses_to_guess_after_a_crash_and_follows_the_named_member(diverged, tmp_path):
    cluster, primary, replica = diverged
    _wipe_and_stop(cluster, primary, crash=True)
    run, text = _decide(cluster, tmp_path / 'guess', [replica, primary])
    assert run.rc != 0
    assert ('etcd holds no state of cluster demo, but members hold data (%s: timeline' % replica.name) in text
    assert ('and it cannot be told: %s cannot be compared: it stopped in state "in production" (not shut down '
            'cleanly), so its WAL may end anywhere after its last checkpoint. Set patroni_bootstrap_leader'
            % primary.name) in text, run.tail()
    assert 'first=' not in text
    named, text = _decide(cluster, tmp_path / 'named', [replica, primary], patroni_bootstrap_leader=primary.name)
    assert named.rc == 0, named.tail()
    assert 'first=pg2' in text and 'pg2 starts first, as patroni_bootstrap_leader says' in text, named.tail()
    wrong, text = _decide(cluster, tmp_path / 'wrong', [replica, primary], patroni_bootstrap_leader='pg9')
    assert wrong.rc != 0 and 'patroni_bootstrap_leader names pg9, which is not a member of this cluster' in text


def test_a_new_cluster_is_bootstrapped_by_the_first_host(etcd_tls, tmp_path, patroni_cluster_factory):
    cluster = patroni_cluster_factory(etcd_tls, scope='demo', size=2, start=False)
    run, text = _decide(cluster, tmp_path, cluster.nodes)
    assert run.rc == 0, run.tail()
    assert 'first=pg1' in text and 'etcd holds no state of cluster' not in text, run.tail()
