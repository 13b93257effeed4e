"""Passwords of one cluster changed after bootstrap (its group's variables), by re-running the playbook: set in
the database on that cluster's primary before patroni.yml hands them to its members, so that replication keeps
running and reconnects with the new replication password, and the old passwords stop working. The other
cluster of the play keeps its own passwords, and neither Patroni logs a refused password. The original
passwords are put back by a --diff -v run of the whole site playbook (etcd, Patroni, load balancer), whose output
must show no password and no private key; it also puts back the inventory's settings that test_config_change
changed."""

import re
import time

PASSWORDS = ('patroni_superuser_password', 'patroni_replication_password', 'patroni_rewind_password')
USERS = {'patroni_superuser_password': ('postgres', False),
         'patroni_replication_password': ('replicator', True),
         'patroni_rewind_password': ('rewind_user', False)}
TASK = r'TASK \[pgha\.cluster\.patroni : Set the changed passwords of Patroni\'s roles on the primary\]'


def _login(scenario, source, target, user, password, replication=False):
    """psql from member ``source`` to ``target`` over verified TLS with a password."""
    return scenario.psql(source, 'IDENTIFY_SYSTEM' if replication else 'SELECT 1',
                         conninfo=scenario.conninfo(target, user, replication=replication), password=password)


def _assert_logins(scenario, cluster, passwords, refused=None):
    """Each user logs in with ``passwords`` on every member of ``cluster`` (from another member), and is refused
    with ``refused``."""
    for target in cluster.members:
        source = next(h for h in cluster.members if h != target)
        for name, (user, replication) in USERS.items():
            proc = _login(scenario, source, target, user, passwords[name], replication)
            assert proc.returncode == 0, '%s on %s with its current password: %s' % (user, target, proc.stderr)
            if refused:
                proc = _login(scenario, source, target, user, refused[name], replication)
                assert proc.returncode != 0 and 'password authentication failed' in proc.stderr, \
                    (user, target, proc.stderr)


def _rotate(scenario, cluster, other, inventory, label, playbook='patroni', **options):
    """The playbook run on both clusters; the passwords task changes ``cluster``'s primary only."""
    leader, other_leader = cluster.state().leader, other.state().leader
    # The journal from here on: the refused logins of the checks before this run are older.
    time.sleep(1)
    since = scenario.now()
    run = scenario.playbook(playbook, inventory=inventory, label=label, **options)
    assert run.rc == 0, run.tail()
    # Up to the next task: with --diff a task's output has blank lines of its own.
    block = re.search(TASK + r'[^\n]*\n(.*?)\n(?:TASK|RUNNING HANDLER) \[', run.output, re.S)
    assert block, run.tail()
    changed = re.findall(r'changed: \[(?:\S+ -> )?(\S+?)\]', block.group(1))
    assert changed == [leader], 'passwords set on %s, expected %s only: %s' % (changed, leader, block.group(1))
    assert other_leader not in changed
    cluster.wait_healthy(leader=leader)
    other.wait_healthy(leader=other_leader)
    until = scenario.now() + 1
    for host in cluster.members + other.members:
        journal = scenario.journal_since(host, since, until)
        assert 'password authentication failed' not in journal, (host, journal[-3000:])
    return run


def _replicas_reconnect(scenario, cluster, leader):
    """End every replication connection; each replica logs in again with what patroni.yml now holds."""
    started = scenario.sql_value(leader, 'SELECT now()')
    scenario.sql_value(leader, 'SELECT count(pg_terminate_backend(pid)) FROM pg_stat_replication')
    cluster.wait_healthy(leader=leader)
    fresh = scenario.sql_value(leader, "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming' "
                                       "AND backend_start > '%s'" % started)
    assert int(fresh) == len(cluster.members) - 1


def test_changed_passwords_of_one_cluster_are_set_there_only(scenario, tmp_path, report):
    cluster, other = scenario.beta, scenario.main
    leader = cluster.wait_healthy().primary().name
    old = {name: cluster.vars[name] for name in PASSWORDS}
    new = {name: value + '-rotated' for name, value in old.items()}
    other_passwords = {name: other.vars[name] for name in PASSWORDS}
    scenario.sql_value(leader, 'CREATE TABLE IF NOT EXISTS password_change (id int)')
    try:
        inventory = scenario.write_inventory(tmp_path / 'inventory.yml', group_vars={cluster.group: new})
        run = _rotate(scenario, cluster, other, inventory, 'passwords-new')
        assert not [p for p in list(new.values()) + list(old.values()) if p in run.output]
        # Replication never stopped: no member left the cluster while the passwords changed.
        state = cluster.wait_healthy(leader=leader)
        _assert_logins(scenario, cluster, new, refused=old)
        _assert_logins(scenario, other, other_passwords, refused=new)
        _replicas_reconnect(scenario, cluster, leader)
        scenario.sql_value(leader, 'INSERT INTO password_change VALUES (1)')
        report('passwords of the superuser, replication and rewind roles of cluster %s changed by the playbook in '
               '%.0f s on its primary only; replicas reconnected with the new one; timeline %s kept; cluster %s '
               'kept its own' % (cluster.scope, run.seconds, state.primary().timeline, other.scope))
    finally:
        back = _rotate(scenario, cluster, other, None, 'passwords-back', playbook='site', diff=True, verbosity=1)
    _assert_no_secret(scenario, back, extra=new.values())
    _assert_inventory_settings(scenario)
    _assert_logins(scenario, cluster, old, refused=new)
    _replicas_reconnect(scenario, cluster, leader)
    deadline = time.monotonic() + 30
    for host in cluster.members:
        while scenario.sql_value(host, 'SELECT count(*) FROM password_change') != '1':
            assert time.monotonic() < deadline, 'the row written after the change is missing on %s' % host
            time.sleep(1)
    assert back.recap and all(r['failed'] == 0 for r in back.recap.values())


def _assert_no_secret(scenario, run, extra=()):
    secrets = {'%s %s' % (group, name): value for group, cluster in scenario.clusters.items()
               for name, value in cluster.vars.items() if name.endswith('_password') and value}
    secrets.update(('rotated %d' % i, value) for i, value in enumerate(extra))
    assert len(set(secrets.values())) >= 16
    leaked = sorted(name for name, value in secrets.items() if value in run.output)
    assert not leaked, 'secrets in the output of %s: %s' % (run.log_file, leaked)
    assert 'PRIVATE KEY' not in run.output


def _assert_inventory_settings(scenario):
    for cluster in scenario.clusters.values():
        wanted = str(cluster.vars['patroni_pg_parameters']['max_connections'])
        state = cluster.wait_healthy()
        assert not [m.name for m in state.members if m.pending_restart]
        for host in cluster.members:
            assert scenario.sql_value(host, 'SHOW max_connections') == wanted, host
