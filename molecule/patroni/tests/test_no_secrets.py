"""patroni.yml is private to postgres, and a --check run of the site playbook (etcd, Patroni, load balancer) on
the converged hosts reports no change.
(The --diff -v run whose output must hold no secret is test_password_change's last run.)"""


def test_patroni_config_file_is_private(scenario):
    proc = scenario.docker_exec(scenario.members[0], ['stat', '-c', '%U %a', '/etc/pgha/patroni/patroni.yml'])
    assert proc.stdout.split() == ['postgres', '600']


def test_check_mode_on_the_converged_hosts_changes_nothing(scenario):
    leaders = {group: c.wait_healthy().primary().name for group, c in scenario.clusters.items()}
    run = scenario.playbook('site', check=True, label='check-mode')
    assert run.rc == 0, run.tail()
    changed = {host: r['changed'] for host, r in run.recap.items() if r['changed']}
    assert not changed, 'check mode reports changes on a converged cluster: %s (%s)' % (changed, run.log_file)
    assert {group: c.wait_healthy().primary().name for group, c in scenario.clusters.items()} == leaders
