"""A --diff -v run of the playbook shows no password and no private key, and leaves the settings of
the inventory in place again (it undoes what test_config_change changed); then a --check run of the
converged cluster reports no change."""


def test_playbook_output_has_no_secret(scenario):
    run = scenario.playbook('site', diff=True, verbosity=1, label='no-secrets')
    assert run.rc == 0, run.tail()
    secrets = {'%s %s' % (group, name): value for group, cluster in scenario.clusters.items()
               for name, value in cluster.vars.items() if name.endswith('_password') and value}
    assert len(set(secrets.values())) >= 13
    leaked = sorted(name for name, value in secrets.items() if value in run.output)
    assert not leaked, 'secrets in the output of %s: %s' % (run.log_file, leaked)
    assert 'PRIVATE KEY' not in run.output
    for cluster in scenario.clusters.values():
        wanted = str(cluster.vars['patroni_pg_parameters']['max_connections'])
        state = cluster.wait_healthy()
        assert not [m.name for m in state.members if m.pending_restart]
        for host in cluster.members:
            assert scenario.sql_value(host, 'SHOW max_connections') == wanted, host


def test_patroni_config_file_is_private(scenario):
    proc = scenario.docker_exec(scenario.members[0], ['stat', '-c', '%U %a', '/etc/pgha/patroni/patroni.yml'])
    assert proc.stdout.split() == ['postgres', '600']


def test_check_mode_on_the_converged_cluster_changes_nothing(scenario):
    leaders = {group: c.wait_healthy().primary().name for group, c in scenario.clusters.items()}
    run = scenario.playbook('patroni', check=True, label='check-mode')
    assert run.rc == 0, run.tail()
    changed = {host: r['changed'] for host, r in run.recap.items() if r['changed']}
    assert not changed, 'check mode reports changes on a converged cluster: %s (%s)' % (changed, run.log_file)
    assert {group: c.wait_healthy().primary().name for group, c in scenario.clusters.items()} == leaders
