"""A setting that needs a PostgreSQL restart, changed for one cluster (its group's variables) by re-running
the playbook: Patroni's way (the dynamic configuration through the REST API), then a restart of each member
flagged pending_restart, one at a time, the replicas before the primary, with the leader kept. The other
cluster of the play keeps its configuration and its servers."""

import re


def test_restart_only_setting_of_one_cluster_is_rolled_out_there_only(scenario, tmp_path, report):
    changed, other = scenario.beta, scenario.main
    leader = changed.wait_healthy().primary().name
    other_before = other.wait_healthy()
    kept = other_before.config.postgresql_parameters.get('max_connections')
    # Above what every member runs now, so that each one needs a restart.
    wanted = max(int(scenario.sql_value(h, 'SHOW max_connections')) for h in changed.members) + 10
    params = dict(changed.vars['patroni_pg_parameters'], max_connections=wanted)
    inventory = scenario.write_inventory(tmp_path / 'inventory.yml',
                                         group_vars={changed.group: {'patroni_pg_parameters': params}})
    run = scenario.playbook('patroni', inventory=inventory, label='max-connections')
    assert run.rc == 0, run.tail()
    assert run.recap and all(r['failed'] == 0 for r in run.recap.values()), run.tail()

    # One cluster restarted, the one that changed.
    reports = re.findall(r'PostgreSQL restarted on: ([\w.,\- ]+) \(cluster ([\w.-]+)\)', run.output)
    assert [scope for _names, scope in reports] == [changed.scope], run.tail()
    restarted = reports[0][0].strip().split(', ')
    assert sorted(restarted) == changed.members, run.tail()
    assert restarted[-1] == leader, 'the primary must restart last: %s' % restarted

    state = changed.wait_healthy(leader=leader)
    assert not [m.name for m in state.members if m.pending_restart]
    assert state.config.postgresql_parameters.get('max_connections') == wanted
    for host in changed.members:
        assert scenario.sql_value(host, 'SHOW max_connections') == str(wanted), host

    other_after = other.wait_healthy(leader=other_before.primary().name)
    assert other_after.config.postgresql_parameters.get('max_connections') == kept
    assert not [m.name for m in other_after.members if m.pending_restart]
    for host in other.members:
        assert scenario.sql_value(host, 'SHOW max_connections') == str(kept), host
    report('max_connections of cluster %s rolled out to %d members (restart each, primary last) by the playbook '
           'in %.0f s; cluster %s kept %s' % (changed.scope, len(restarted), run.seconds, other.scope, kept))
