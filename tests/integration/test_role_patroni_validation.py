"""pgha.cluster.patroni refuses bad settings before its first change, with a message naming them.

The role runs against this machine over a local connection: its validation
only reads, and a failure there must stop it before the first task that
would install or write anything (the recap shows changed=0).
"""

import pytest

from playbook_runner import run_playbook

GOOD = {
    'patroni_address': '127.0.0.1',
    'patroni_superuser_password': 'superuser-Secret-1',
    'patroni_replication_password': 'replication-Secret-2',
    'patroni_rewind_password': 'rewind-Secret-3',
    'patroni_restapi_password': 'restapi-Secret-4',
    'pgha_etcd_patroni_password': 'etcd-Secret-5',
    'patroni_etcd_endpoints': ['https://127.0.0.1:2379'],
}


def _inventory(tmp_path, hosts=1, text=None):
    """``hosts`` local hosts in group postgres, or the INI inventory ``text``."""
    lines = ['[postgres]'] + ['pg%d ansible_connection=local' % (i + 1) for i in range(hosts)]
    path = tmp_path / 'hosts.ini'
    path.write_text(text or '\n'.join(lines) + '\n')
    return str(path)


def _run_role(tmp_path, hosts=1, tasks_from=None, inventory=None, **overrides):
    role = {'name': 'pgha.cluster.patroni'}
    if tasks_from:
        role['tasks_from'] = tasks_from
    play = {'name': 'patroni role', 'hosts': 'postgres', 'gather_facts': False,
            'tasks': [{'name': 'Run the role', 'ansible.builtin.include_role': role}]}
    extra = dict(GOOD)
    extra.update(overrides)
    extra = {k: v for k, v in extra.items() if v is not None}
    return run_playbook([play], inventory=_inventory(tmp_path, hosts, inventory), extra_vars=extra,
                        workdir=str(tmp_path))


def test_good_settings_pass_validation(tmp_path):
    run = _run_role(tmp_path, hosts=3, tasks_from='validate.yml', patroni_synchronous_mode=True,
                    patroni_synchronous_mode_strict=True)
    assert run.rc == 0, run.output[-3000:]
    assert all(r['failed'] == 0 and r['changed'] == 0 for r in run.recap.values()), run.recap


@pytest.mark.parametrize('hosts, overrides, needle', [
    (1, {'patroni_synchronous_mode': True, 'patroni_synchronous_mode_strict': True},
     'patroni_synchronous_mode_strict needs patroni_synchronous_mode and at least two members'),
    (3, {'patroni_synchronous_mode_strict': True}, 'patroni_synchronous_mode_strict needs'),
    (3, {'patroni_synchronous_mode': True, 'patroni_synchronous_node_count': 3}, 'patroni_synchronous_node_count'),
    (1, {'patroni_superuser_password': None}, 'Set patroni_superuser_password'),
    (1, {'patroni_restapi_password': 'short', 'patroni_rewind_password': ''},
     'Set patroni_rewind_password, patroni_restapi_password'),
    (1, {'pgha_etcd_patroni_password': None}, 'patroni_etcd_password (or pgha_etcd_patroni_password)'),
    (1, {'patroni_ttl': 15}, 'Patroni needs ttl >= 20'),
    (1, {'patroni_loop_wait': 10, 'patroni_retry_timeout': 10}, 'loop_wait + 2 * retry_timeout <= ttl'),
    (1, {'patroni_scope': 'bad/scope'}, "patroni_scope ('bad/scope')"),
    (1, {'patroni_etcd_endpoints': ['http://127.0.0.1:2379']}, 'Patroni needs the etcd members as https://host:port'),
    (1, {'patroni_install_from': 'conda'}, 'patroni_install_from'),
    (1, {'patroni_replication_username': 'repl user'}, 'must be three different names'),
    (1, {'patroni_rewind_username': 'postgres'}, 'found postgres, replicator, postgres'),
])
def test_bad_settings_fail_before_any_change(tmp_path, hosts, overrides, needle):
    run = _run_role(tmp_path, hosts=hosts, **overrides)
    assert run.rc != 0
    assert needle in run.output, run.output[-3000:]
    assert all(r['changed'] == 0 for r in run.recap.values()), run.recap
    assert 'Traceback' not in run.output
    for secret in GOOD.values():
        if isinstance(secret, str) and 'Secret' in secret:
            assert secret not in run.output


# Two clusters in one play: child groups main and beta of postgres, each naming itself in patroni_group.
TWO_CLUSTERS = """
[main]
pg1 ansible_connection=local
pg2 ansible_connection=local
[beta]
pg5 ansible_connection=local
pg6 ansible_connection=local
[postgres:children]
main
beta
[main:vars]
patroni_group=main
pgha_cluster_name=main
[beta:vars]
patroni_group=beta
pgha_cluster_name=beta
"""


def _run_two_clusters(tmp_path, inventory=TWO_CLUSTERS, tasks_from=None, **overrides):
    return _run_role(tmp_path, tasks_from=tasks_from, inventory=inventory, **overrides)


def test_two_clusters_pass_validation(tmp_path):
    run = _run_two_clusters(tmp_path, tasks_from='validate.yml')
    assert run.rc == 0, run.output[-3000:]
    assert sorted(run.recap) == ['pg1', 'pg2', 'pg5', 'pg6']
    assert all(r['failed'] == 0 and r['changed'] == 0 for r in run.recap.values()), run.recap


@pytest.mark.parametrize('inventory, needle', [
    (TWO_CLUSTERS.replace('pgha_cluster_name=beta', 'pgha_cluster_name=main'),
     'Groups main and beta both use the Patroni scope main: give each cluster its own patroni_scope'),
    (TWO_CLUSTERS.replace('[beta]\n', '[beta]\npg2 ansible_connection=local\n'),
     # Of two groups at one depth the later in alphabetical order sets pg2's patroni_group: main.
     'pg2 is in group beta, the hosts of one Patroni cluster, but its patroni_group is main'),
    (TWO_CLUSTERS.replace('patroni_group=main', 'patroni_group=postgres'),
     'pg5 is in group postgres, the hosts of one Patroni cluster, but its patroni_group is beta'),
    (TWO_CLUSTERS + '[all:vars]\npatroni_name=db\n', 'Members of the cluster of group main share the member name db'),
    (TWO_CLUSTERS.replace('pg6 ansible_connection=local', 'pg6 ansible_connection=local pgha_cluster_name=gamma'),
     'found pg5: /service/beta, pg6: /service/gamma'),
], ids=['shared-scope', 'host-in-two-clusters', 'parent-group-as-cluster', 'member-names', 'scope-within-cluster'])
def test_bad_cluster_layouts_fail_before_any_change(tmp_path, inventory, needle):
    run = _run_two_clusters(tmp_path, inventory=inventory)
    assert run.rc != 0
    assert needle in run.output, run.output[-3000:]
    assert all(r['changed'] == 0 for r in run.recap.values()), run.recap
    assert 'Traceback' not in run.output


@pytest.mark.parametrize('overrides, needle', [
    ({}, 'This play spans several Patroni clusters (main: pg1, pg2; beta: pg5, pg6): name the candidate'),
    ({'patroni_switchover_candidate': 'pg9'}, 'No cluster of this play has a member named pg9 (main: pg1, pg2; '
                                              'beta: pg5, pg6)'),
    ({'patroni_switchover_candidate': 'pg2', 'patroni_switchover_leader': 'pg5'},
     'and pg2, pg5 are members of more than one'),
])
def test_switchover_of_several_clusters_is_refused_before_any_request(tmp_path, overrides, needle):
    run = _run_two_clusters(tmp_path, tasks_from='switchover.yml', **overrides)
    assert run.rc != 0
    assert needle in ' '.join(run.output.split()), run.output[-3000:]
    assert 'Switch the primary over' not in run.output
    assert all(r['changed'] == 0 for r in run.recap.values()), run.recap
