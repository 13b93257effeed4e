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


def _inventory(tmp_path, hosts=1):
    lines = ['[postgres]'] + ['pg%d ansible_connection=local' % (i + 1) for i in range(hosts)]
    path = tmp_path / 'hosts.ini'
    path.write_text('\n'.join(lines) + '\n')
    return str(path)


def _run_role(tmp_path, hosts=1, tasks_from=None, **overrides):
    role = {'name': 'pgha.cluster.patroni'}
    if tasks_from:
        role['tasks_from'] = tasks_from
    play = {'name': 'patroni role', 'hosts': 'postgres', 'gather_facts': False,
            'tasks': [{'name': 'Run the role', 'ansible.builtin.include_role': role}]}
    extra = dict(GOOD)
    extra.update(overrides)
    extra = {k: v for k, v in extra.items() if v is not None}
    return run_playbook([play], inventory=_inventory(tmp_path, hosts), extra_vars=extra,
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
