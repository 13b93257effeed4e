"""A host added to a cluster's group (a child group of postgres) becomes a streaming replica when the
patroni playbook runs again; the other members let it in (pg_hba) and keep their leader. pg4 is no etcd
member: Patroni on it reaches etcd on the other hosts."""

import time
import uuid

SPARE = 'pg4'


def _wait_member_gone(scenario, name, timeout=90):
    deadline = time.monotonic() + timeout
    while scenario.state().member(name) is not None:
        assert time.monotonic() < deadline, '%s still registered in etcd after %ss' % (name, timeout)
        time.sleep(1)


def test_new_host_in_the_group_joins_as_a_streaming_replica(scenario, tmp_path, report):
    leader = scenario.wait_healthy().primary().name
    token = uuid.uuid4().hex
    scenario.sql_value(leader, 'CREATE TABLE IF NOT EXISTS verify_rows (token text PRIMARY KEY, '
                               'written timestamptz DEFAULT now())')
    scenario.sql_value(leader, "INSERT INTO verify_rows (token) VALUES ('%s')" % token)

    inventory = scenario.write_inventory(tmp_path / 'inventory.yml', add_hosts={scenario.main.group: [SPARE]})
    try:
        run = scenario.playbook('patroni', inventory=inventory, label='add-%s' % SPARE)
        assert run.rc == 0, run.tail()
        # Nothing but pg_hba changed on the members that were there.
        assert scenario.state().leader == leader

        deadline = time.monotonic() + 120
        while True:
            member = scenario.state().member(SPARE)
            if member is not None and member.running and member.replication_state == 'streaming':
                break
            assert time.monotonic() < deadline, 'pg4 is not streaming: %r' % (member and member.to_dict())
            time.sleep(1)
        assert scenario.sql_value(SPARE, 'SELECT pg_is_in_recovery()') == 't'
        assert scenario.sql_value(SPARE, "SELECT count(*) FROM verify_rows WHERE token = '%s'" % token) == '1'
        streaming = scenario.sql_value(leader, "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")
        assert int(streaming) == len(scenario.members)
        report('added %s as a replica with the patroni playbook in %.0f s' % (SPARE, run.seconds))
    finally:
        # Back to the scenario's three members: pg4 stops and its key expires with its lease.
        scenario.docker_exec(SPARE, ['systemctl', 'disable', '--now', 'patroni.service'])
        _wait_member_gone(scenario, SPARE)
