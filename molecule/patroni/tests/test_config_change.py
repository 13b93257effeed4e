"""A setting that needs a PostgreSQL restart, changed by re-running the playbook: Patroni's way (the
dynamic configuration through the REST API), then a restart of each member flagged pending_restart,
one at a time, the replicas before the primary, with the leader kept."""

import re


def _parameters(scenario, **changes):
    params = dict(scenario.group_vars['patroni_pg_parameters'])
    params.update(changes)
    return params


def test_restart_only_setting_is_rolled_out_replicas_first(scenario, report):
    leader = scenario.wait_healthy().primary().name
    # Above what every member runs now, so that each one needs a restart.
    wanted = max(int(scenario.sql_value(h, 'SHOW max_connections')) for h in scenario.members) + 10
    run = scenario.playbook('patroni', extra_vars={'patroni_pg_parameters': _parameters(
        scenario, max_connections=wanted)}, label='max-connections')
    assert run.rc == 0, run.tail()
    assert run.recap and all(r['failed'] == 0 for r in run.recap.values()), run.tail()

    report_line = re.search(r'PostgreSQL restarted on: ([\w.,\- ]+)', run.output)
    assert report_line, run.tail()
    restarted = report_line.group(1).strip().split(', ')
    assert sorted(restarted) == scenario.members, run.tail()
    assert restarted[-1] == leader, 'the primary must restart last: %s' % restarted

    state = scenario.wait_healthy(leader=leader)
    assert not [m.name for m in state.members if m.pending_restart]
    assert state.config.postgresql_parameters.get('max_connections') == wanted
    for host in scenario.members:
        assert scenario.sql_value(host, 'SHOW max_connections') == str(wanted), host
    report('max_connections rolled out to %d members (restart each, primary last) by the playbook in %.0f s'
           % (len(restarted), run.seconds))
