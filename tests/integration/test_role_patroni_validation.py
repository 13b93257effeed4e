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


def _run_role(tmp_path, hosts=1, tasks_from=None, inventory=None, verbosity=0, **overrides):
    role = {'name': 'pgha.cluster.patroni'}
    if tasks_from:
        role['tasks_from'] = tasks_from
    play = {'name': 'patroni role', 'hosts': 'postgres', 'gather_facts': False,
            'tasks': [{'name': 'Run the role', 'ansible.builtin.include_role': role}]}
    extra = dict(GOOD)
    extra.update(overrides)
    extra = {k: v for k, v in extra.items() if v is not None}
    return run_playbook([play], inventory=_inventory(tmp_path, hosts, inventory), extra_vars=extra,
                        workdir=str(tmp_path), verbosity=verbosity)


def test_good_settings_pass_validation(tmp_path):
    run = _run_role(tmp_path, hosts=3, tasks_from='validate.yml', patroni_synchronous_mode=True,
                    patroni_synchronous_mode_strict=True,
                    patroni_extra_client_networks=['10.20.0.0/16', 'fd00:1::/64', '192.0.2.7/32'],
                    patroni_pg_hba_extra=['hostssl app app 10.20.0.0/16 scram-sha-256',
                                          'hostssl all all db.example.com cert clientcert=verify-full',
                                          'host all all 10.0.0.1 255.255.255.255 reject'],
                    # Patroni places the keys under /service/main/ for each way of writing the namespace.
                    patroni_namespace='service/')
    assert run.rc == 0, run.output[-3000:]
    assert all(r['failed'] == 0 and r['changed'] == 0 for r in run.recap.values()), run.recap


def test_trust_lines_pass_when_allowed(tmp_path):
    run = _run_role(tmp_path, tasks_from='validate.yml', patroni_pg_hba_extra=['local all backup trust'],
                    patroni_pg_hba_allow_trust=True)
    assert run.rc == 0, run.output[-3000:]


SECRETS = [v for v in GOOD.values() if isinstance(v, str) and 'Secret' in v]


@pytest.mark.parametrize('verbosity', [1, 3])
@pytest.mark.parametrize('tasks_from, overrides', [
    ('validate.yml', {}),
    # The role's argument validation, then a failing check: nothing past it runs.
    (None, {'patroni_ttl': 15, 'patroni_etcd_admin_password': 'admin-Secret-6'}),
    # A secret of another type: the argument validation turns it into text, the role refuses a list.
    (None, {'patroni_ttl': 15, 'patroni_restapi_password': 12345678}),
    (None, {'patroni_rewind_password': ['rewind-Secret-3']}),
    (None, {'patroni_superuser_password': 'sh0rt!', 'patroni_replication_password': ''}),
], ids=['validation-passes', 'validation-fails', 'secret-as-a-number', 'secret-as-a-list', 'secret-too-short'])
def test_no_secret_in_the_output(tmp_path, verbosity, tasks_from, overrides):
    run = _run_role(tmp_path, tasks_from=tasks_from, verbosity=verbosity, **overrides)
    assert (run.rc == 0) == (tasks_from is not None), run.output[-3000:]
    assert all(r['changed'] == 0 for r in run.recap.values()), run.recap
    secrets = SECRETS + ['admin-Secret-6', '12345678', 'sh0rt!'] + [
        v for v in overrides.values() if isinstance(v, str) and len(v) >= 8]
    leaked = [s for s in secrets if s in run.output]
    assert not leaked, 'secrets in the output: %s\n%s' % (leaked, run.output[-3000:])


@pytest.mark.parametrize('hosts, overrides, needle', [
    (1, {'patroni_synchronous_mode': True, 'patroni_synchronous_mode_strict': True},
     'patroni_synchronous_mode_strict needs patroni_synchronous_mode and at least two members'),
    (3, {'patroni_synchronous_mode_strict': True}, 'patroni_synchronous_mode_strict needs'),
    (3, {'patroni_synchronous_mode': True, 'patroni_synchronous_node_count': 3}, 'patroni_synchronous_node_count'),
    (1, {'patroni_superuser_password': None}, 'Set patroni_superuser_password'),
    (1, {'patroni_restapi_password': 'short', 'patroni_rewind_password': ''},
     'Set patroni_rewind_password, patroni_restapi_password'),
    (1, {'pgha_etcd_patroni_password': None}, 'patroni_etcd_password (or pgha_etcd_patroni_password)'),
    (1, {'patroni_rewind_password': ['rewind-Secret-3', 'x']}, 'Set patroni_rewind_password (at least 8'),
    (1, {'patroni_restapi_password': 1234567}, 'Set patroni_restapi_password (at least 8'),
    (1, {'patroni_ttl': 15}, 'Patroni needs ttl >= 20'),
    (1, {'patroni_loop_wait': 10, 'patroni_retry_timeout': 10}, 'loop_wait + 2 * retry_timeout <= ttl'),
    (1, {'patroni_scope': 'bad/scope'}, "patroni_scope ('bad/scope')"),
    (1, {'patroni_etcd_endpoints': ['http://127.0.0.1:2379']}, 'Patroni needs the etcd members as https://host:port'),
    (1, {'patroni_install_from': 'conda'}, 'patroni_install_from'),
    (1, {'patroni_replication_username': 'repl user'}, 'must be three different names'),
    (1, {'patroni_rewind_username': 'postgres'}, 'found postgres, replicator, postgres'),
    # pg_hba lines go into pg_hba.conf as they are: trust only when allowed, and only lines PostgreSQL reads.
    (1, {'patroni_pg_hba_extra': ['hostssl all all 10.0.0.0/8 scram-sha-256', 'host all all 0.0.0.0/0 trust']},
     "patroni_pg_hba_extra line 2 ('host all all 0.0.0.0/0 trust') uses trust, which lets everyone who reaches it "
     'in as that user without a password; set patroni_pg_hba_allow_trust to true to allow it'),
    (1, {'patroni_pg_hba_extra': ['host all all 10.0.0.1 md5']},
     "patroni_pg_hba_extra line 1 ('host all all 10.0.0.1 md5') the address 10.0.0.1 needs a prefix length"),
    (1, {'patroni_pg_hba_extra': ['hostssl all all 10.0.0.0/8 md5\nhost all all 0.0.0.0/0 trust']},
     'holds a line break: give each pg_hba line as its own list item'),
    (1, {'patroni_pg_hba_extra': ['include_dir conf.d']}, "starts with 'include_dir', which is not a connection type"),
    (1, {'patroni_extra_client_networks': ['10.0.0.1/8']},
     "patroni_extra_client_networks: '10.0.0.1/8' has host bits set: PostgreSQL would admit all of 10.0.0.0/8"),
    (1, {'patroni_extra_client_networks': ['0.0.0.0/0', 'all']},
     "patroni_extra_client_networks: 'all' is not a network in CIDR notation"),
    (1, {'patroni_namespace': '/ser vice'}, "patroni_namespace of group postgres '/ser vice' has the part(s) 'ser vice'"),
    (1, {'patroni_namespace': '/'}, "patroni_namespace of group postgres holds no name ('/')"),
    (1, {'patroni_namespace': '/pgha/lb'}, 'The etcd keys of cluster postgres (/pgha/lb/main/) and the key prefix '
                                           '/pgha/lb/ overlap'),
    (1, {'patroni_name': 'p' * 64}, 'and patroni_name at most 63 of them'),
    (1, {'patroni_pg_port': 8008}, 'PostgreSQL and the REST API need two different ones'),
    (1, {'patroni_restapi_port': 70000}, 'must be ports from 1 to 65535'),
    (1, {'pgha_etcd_client_port': 0}, 'patroni_etcd_client_port (0) must be'),
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


def test_one_namespace_written_several_ways_is_one_place(tmp_path):
    # Patroni adds the leading slash and collapses doubled ones: /service, service and //service/ are one place.
    inventory = TWO_CLUSTERS.replace('pg1 ansible_connection=local', 'pg1 ansible_connection=local '
                                     'pgha_etcd_namespace=service').replace(
        'pg2 ansible_connection=local', 'pg2 ansible_connection=local pgha_etcd_namespace=//service/')
    run = _run_two_clusters(tmp_path, inventory=inventory, tasks_from='validate.yml')
    assert run.rc == 0, run.output[-3000:]


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
    # Scope b under namespace /service/main: its keys would lie within cluster main's, whose etcd user could write
    # them.
    (TWO_CLUSTERS + '[beta:vars]\npgha_etcd_namespace=/service/main\npgha_cluster_name=b\n',
     'The etcd keys of cluster main (/service/main/) and cluster beta (/service/main/b/) overlap'),
    (TWO_CLUSTERS.replace('pg2 ansible_connection=local', 'pg2 ansible_connection=local patroni_name=PG.1')
     .replace('pg1 ansible_connection=local', 'pg1 ansible_connection=local patroni_name=pg-1'),
     'Members pg-1, PG.1 of the cluster of group main would share the replication slot pg_1'),
], ids=['shared-scope', 'host-in-two-clusters', 'parent-group-as-cluster', 'member-names', 'scope-within-cluster',
        'prefix-within-prefix', 'shared-slot'])
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
