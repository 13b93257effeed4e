"""Passwords changed after bootstrap, by re-running the playbook: set in the database on the primary before
patroni.yml hands them to the members, so that replication keeps running and reconnects with the new
replication password, and the old passwords stop working. The original passwords are put back the same way."""

import re
import time

PASSWORDS = ('patroni_superuser_password', 'patroni_replication_password', 'patroni_rewind_password')
TASK = r'TASK \[pgha\.cluster\.patroni : Set the changed passwords of Patroni\'s roles on the primary\]'


def _login(scenario, source, target, user, password, replication=False):
    """psql from member ``source`` to ``target`` over verified TLS with a password."""
    return scenario.psql(source, 'IDENTIFY_SYSTEM' if replication else 'SELECT 1',
                         conninfo=scenario.conninfo(target, user, replication=replication), password=password)


def _assert_logins(scenario, leader, passwords, refused=None):
    source = next(h for h in scenario.members if h != leader)
    users = {'patroni_superuser_password': ('postgres', False),
             'patroni_replication_password': ('replicator', True),
             'patroni_rewind_password': ('rewind_user', False)}
    for name, (user, replication) in users.items():
        proc = _login(scenario, source, leader, user, passwords[name], replication)
        assert proc.returncode == 0, '%s with its current password: %s' % (user, proc.stderr)
        if refused:
            proc = _login(scenario, source, leader, user, refused[name], replication)
            assert proc.returncode != 0 and 'password authentication failed' in proc.stderr, (user, proc.stderr)


def _rotate(scenario, leader, extra_vars, label):
    run = scenario.playbook('patroni', extra_vars=extra_vars, label=label)
    assert run.rc == 0, run.tail()
    block = re.search(TASK + r'[^\n]*\n(.*?)\n\n', run.output, re.S)
    assert block and re.search(r'changed: \[(?:\S+ -> )?%s\]' % re.escape(leader), block.group(1)), run.tail()
    return run


def _replicas_reconnect(scenario, leader):
    """End every replication connection; each replica logs in again with what patroni.yml now holds."""
    started = scenario.sql_value(leader, 'SELECT now()')
    scenario.sql_value(leader, 'SELECT count(pg_terminate_backend(pid)) FROM pg_stat_replication')
    scenario.wait_healthy(leader=leader)
    fresh = scenario.sql_value(leader, "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming' "
                                       "AND backend_start > '%s'" % started)
    assert int(fresh) == len(scenario.members) - 1


def test_changed_passwords_are_set_before_patroni_uses_them(scenario, report):
    leader = scenario.wait_healthy().primary().name
    old = {name: scenario.group_vars[name] for name in PASSWORDS}
    new = {name: value + '-rotated' for name, value in old.items()}
    scenario.sql_value(leader, 'CREATE TABLE IF NOT EXISTS password_change (id int)')
    try:
        run = _rotate(scenario, leader, new, 'passwords-new')
        assert not [p for p in list(new.values()) + list(old.values()) if p in run.output]
        # Replication never stopped: no member left the cluster while the passwords changed.
        state = scenario.wait_healthy(leader=leader)
        _assert_logins(scenario, leader, new, refused=old)
        _replicas_reconnect(scenario, leader)
        scenario.sql_value(leader, 'INSERT INTO password_change VALUES (1)')
        report('passwords of the superuser, replication and rewind roles changed by the playbook in %.0f s; '
               'replicas reconnected with the new one; timeline %s kept' % (run.seconds, state.primary().timeline))
    finally:
        back = _rotate(scenario, leader, old, 'passwords-back')
        scenario.wait_healthy(leader=leader)
    _assert_logins(scenario, leader, old, refused=new)
    _replicas_reconnect(scenario, leader)
    deadline = time.monotonic() + 30
    for host in scenario.members:
        while scenario.sql_value(host, 'SELECT count(*) FROM password_change') != '1':
            assert time.monotonic() < deadline, 'the row written after the change is missing on %s' % host
            time.sleep(1)
    assert back.recap and all(r['failed'] == 0 for r in back.recap.values())
