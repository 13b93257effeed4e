"""The operational playbooks on the scenario: pgha.cluster.status prints tables naming each cluster's live primary and
lb1's backends, and pgha.cluster.remove_cluster tears cluster beta down (pg5, pg6) while main (and the etcd it shares)
is left as it was. These tests run last: beta stays removed (bringing it back would cost a whole site run), and
the health check around each test looks at main only from then on."""

import os

from ansible_collections.pgha.cluster.plugins.module_utils.etcd_client import EtcdClient
from lb_probe import LB, PORTS
import status_report  # tests/lib, on the path through scenario_base

DATA_DIR = '/var/lib/postgresql/15/%s'


def _root(scenario):
    """etcd as root with the admin client certificate, as the etcd role connects."""
    base = os.path.join(scenario.pki_ca_dir, 'hosts', scenario.etcd_members[0], 'client-admin')
    return EtcdClient(['https://%s:2379' % scenario.ip(h) for h in scenario.etcd_members], ca_cert=scenario.ca_cert,
                      client_cert=base + '.crt', client_key=base + '.key', username='root',
                      password=scenario.group_vars['etcd_root_password'], timeout=10)


def _etcd_view(scenario, scope):
    """What etcd holds of cluster ``scope``: its key names, the values Patroni does not rewrite as it runs, its
    policy, its users with their roles and its roles with their permissions."""
    with _root(scenario) as root:
        keys = dict((kv.key_text, kv.value_text) for kv in root.get_prefix('/service/%s/' % scope))
        policy = root.get('/pgha/lb/%s/policy' % scope)
        users = dict((u, root.user_get(u)) for u in root.user_list() if u.endswith('-' + scope))
        roles = dict((r, root.role_get(r)) for r in root.role_list() if r.endswith('-' + scope))
    fixed = ['/service/%s/%s' % (scope, name) for name in ('initialize', 'config', 'leader')]
    return {'keys': sorted(keys), 'fixed': dict((k, keys[k]) for k in fixed if k in keys),
            'policy': policy.value_text if policy is not None else None, 'users': users, 'roles': roles}


def test_status_names_each_live_primary_and_lb1s_backends(scenario, report):
    states = scenario.wait_all_healthy()
    run = scenario.playbook('status', label='status')
    assert run.rc == 0, run.tail()
    assert not [h for h, r in run.recap.items() if r['changed']], run.recap
    lines = status_report.report(run)

    etcd = status_report.section(lines, 'etcd: ')
    assert etcd[0].startswith('etcd: healthy, %d members, leader ' % len(scenario.etcd_members)), etcd
    assert sorted(c[0] for c in status_report.cells(etcd)) == scenario.etcd_members
    assert {c[3] for c in status_report.cells(etcd)} == {'healthy'}

    lb = status_report.section(lines, 'Load balancer %s: ' % LB)
    assert lb[0].startswith('Load balancer %s: etcd ok, HAProxy ok' % LB), lb
    lb_rows = [' '.join(c) for c in status_report.cells(lb)]
    for group, cluster in scenario.clusters.items():
        primary = states[group].primary().name
        section = status_report.section(lines, 'Patroni cluster %s ' % cluster.scope)
        replicas = len(cluster.members) - 1
        assert ', primary %s, %d replica%s running' % (primary, replicas, '' if replicas == 1 else 's') in section[0], \
            section
        roles = {c[0]: c[2] for c in status_report.cells(section)}
        assert roles == {m: 'primary' if m == primary else 'replica' for m in cluster.members}, section
        # lb1 routes writes to the primary and reads to the replicas, and HAProxy runs them so.
        assert '  cluster %s: leader %s, writes to %s' % (cluster.scope, primary, primary) in lb, lb
        ports = PORTS[group]
        assert '%s primary %d %s ready up -' % (cluster.scope, ports['primary'], primary) in lb_rows, lb_rows
        for member in cluster.members:
            if member != primary:
                assert '%s replicas %d %s ready up -' % (cluster.scope, ports['replicas'], member) in lb_rows, lb_rows
    report('status playbook: %.1f s for etcd, %d clusters and %s' % (run.seconds, len(scenario.clusters), LB))

    checked = scenario.playbook('status', label='status-check', check=True)
    assert checked.rc == 0, checked.tail()
    assert not [h for h, r in checked.recap.items() if r['changed']], checked.recap


def test_remove_cluster_beta_leaves_main_alone(scenario, report):
    beta = scenario.beta
    main_leader = scenario.main.wait_healthy().primary().name
    beta.wait_healthy()
    main_before, beta_before = _etcd_view(scenario, 'main'), _etcd_view(scenario, 'beta')
    assert beta_before['keys'] and beta_before['policy']
    assert beta_before['users'] == {'lb-beta': ['lb-beta'], 'patroni-beta': ['patroni-beta']}
    extra_vars = {'pgha_remove_cluster': beta.scope, 'pgha_remove_cluster_data': beta.scope}

    checked = scenario.playbook('remove_cluster', extra_vars=extra_vars, label='remove-beta-check', check=True)
    assert checked.rc == 0, checked.tail()
    assert beta.wait_healthy() and _etcd_view(scenario, 'beta')['users'] == beta_before['users']

    try:
        run = scenario.playbook('remove_cluster', extra_vars=extra_vars, label='remove-beta')
        assert run.rc == 0, run.tail()
        # beta is gone: its services, its PostgreSQL, its data, its keys, policy, users and roles.
        for host in beta.members:
            assert scenario.docker_exec(host, ['systemctl', 'is-active', 'patroni.service']).stdout.strip() in (
                'inactive', 'failed')
            assert scenario.docker_exec(host, ['systemctl', 'is-enabled', 'patroni.service']).stdout.strip() == \
                'disabled'
            assert scenario.docker_exec(host, ['pgrep', '-u', 'postgres', '-x', 'postgres']).returncode == 1
            assert scenario.docker_exec(host, ['test', '-e', DATA_DIR % beta.scope]).returncode == 1
        assert _etcd_view(scenario, 'beta') == {'keys': [], 'fixed': {}, 'policy': None, 'users': {}, 'roles': {}}
        text = ' '.join(run.output.split())
        assert 'Load balancers are not changed by this playbook: take beta out of haproxy_clusters on lb1' in text
        # main: the same leader, healthy, its keys, policy, users and roles as they were.
        assert scenario.main.wait_healthy(leader=main_leader)
        assert _etcd_view(scenario, 'main') == main_before
        report('remove_cluster beta: %.1f s' % run.seconds)
    finally:
        # Whatever happened to beta, the checks around the tests look at main alone from here on.
        scenario.clusters.pop('beta', None)
