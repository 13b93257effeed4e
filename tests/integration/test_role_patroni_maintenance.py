"""The patroni role's maintenance mode around Patroni service restarts, on real Patroni 4.1 + PostgreSQL 15 nodes
(scope demo in the TLS + RBAC etcd): the role pauses a cluster only when nobody has, and resumes only its own
pause, so that an operator's pause survives a run of the role.

ansible-playbook runs the role's own task files (maintenance_pause.yml, then maintenance_resume.yml) on this
machine with the connection the role gives its Patroni modules. Between the two, where the role restarts the
Patroni service of each member (tasks/restart_service.yml, ``systemctl restart``), the test restarts each
Patroni process the same way (SIGTERM to Patroni alone, then start it again): there is no systemd here.
"""

import os
import threading
import time

import pytest

from playbook_runner import run_playbook


@pytest.fixture(scope='module')
def cluster(demo_cluster):
    return demo_cluster


def _module_defaults(cluster):
    etcd = cluster.etcd
    return {'scope': cluster.scope, 'namespace': cluster.namespace, 'endpoints': etcd.endpoints,
            'ca_cert': etcd.ca_cert, 'client_cert': etcd.client_cert, 'client_key': etcd.client_key,
            'username': cluster.etcd_user, 'password': cluster.etcd_password,
            'rest_username': cluster.restapi_user, 'rest_password': cluster.restapi_password}


def _paused(cluster):
    """(pause in the dynamic configuration, {member: pause its REST API reports})."""
    code, config = cluster.wait_leader().rest('/config')
    assert code == 200, config
    return bool(config.get('pause')), {n.name: bool((n.status() or {}).get('pause')) for n in cluster.nodes}


def _wait_paused(cluster, wanted, timeout=30):
    deadline = time.monotonic() + timeout
    while True:
        config, members = _paused(cluster)
        if config == wanted and set(members.values()) == {wanted}:
            return
        assert time.monotonic() < deadline, 'pause is %s (members %s), expected %s' % (config, members, wanted)
        time.sleep(0.2)


def _operator_pause(cluster, pause):
    """What ``patronictl pause`` / ``resume`` send."""
    code, answer = cluster.wait_leader().rest('/config', method='PATCH', body={'pause': True if pause else None})
    assert code == 200, answer
    _wait_paused(cluster, pause)


def _restart_path(cluster, tmp_path):
    """The role's maintenance path around service restarts: pause, restart every member's Patroni, resume.

    Returns the playbook run and, per member, (postmaster pid before, after) its Patroni restart.
    """
    paused_marker, restarted_marker = tmp_path / 'paused', tmp_path / 'restarted'
    role = {'name': 'pgha.cluster.patroni'}
    play = {
        'name': 'maintenance around restarts', 'hosts': 'localhost', 'gather_facts': False,
        'module_defaults': {'group/pgha.cluster.patroni': _module_defaults(cluster)},
        'tasks': [
            {'name': 'Pause', 'ansible.builtin.include_role': dict(role, tasks_from='maintenance_pause.yml')},
            {'name': 'Tell the test to restart Patroni',
             'ansible.builtin.copy': {'content': 'paused\n', 'dest': str(paused_marker), 'mode': '0644'}},
            {'name': 'Wait for the restarts',
             'ansible.builtin.wait_for': {'path': str(restarted_marker), 'timeout': 180}},
            {'name': 'Resume', 'ansible.builtin.include_role': dict(role, tasks_from='maintenance_resume.yml')},
        ],
    }
    inventory = tmp_path / 'hosts.ini'
    inventory.write_text('localhost ansible_connection=local\n')
    outcome = {}
    runner = threading.Thread(target=lambda: outcome.update(run=run_playbook(
        [play], inventory=str(inventory), extra_vars={'patroni_scope': cluster.scope, 'patroni_wait_timeout': 60},
        workdir=str(tmp_path))))
    runner.start()
    postmasters = {}
    try:
        deadline = time.monotonic() + 120
        while not paused_marker.exists():
            assert runner.is_alive() or paused_marker.exists(), outcome['run'].tail()
            assert time.monotonic() < deadline, 'the role did not reach its restarts'
            time.sleep(0.2)
        # Every member is paused now (the role waited for it): Patroni restarts leave PostgreSQL running.
        _wait_paused(cluster, True, timeout=1)
        for node in cluster.nodes:
            before = node.postmaster_pid
            node.restart_patroni()
            postmasters[node.name] = (before, node.postmaster_pid)
    finally:
        restarted_marker.write_text('restarted\n')
        runner.join(300)
    run = outcome['run']
    assert run.rc == 0, run.tail()
    return run, postmasters


def _assert_postgresql_kept_running(postmasters):
    for name, (before, after) in postmasters.items():
        assert before is not None and before == after, 'PostgreSQL of %s restarted: %s' % (name, (before, after))


def test_the_role_resumes_the_pause_it_took(cluster, tmp_path):
    _wait_paused(cluster, False)
    leader = cluster.wait_leader().name
    run, postmasters = _restart_path(cluster, tmp_path)
    _assert_postgresql_kept_running(postmasters)
    assert 'TASK [pgha.cluster.patroni : Pause the cluster]' in run.output
    _wait_paused(cluster, False)
    assert cluster.wait_leader().name == leader
    assert 'was in maintenance mode before this run' not in run.output


def test_an_operators_pause_survives_the_role(cluster, tmp_path):
    _operator_pause(cluster, True)
    try:
        leader = cluster.wait_leader().name
        run, postmasters = _restart_path(cluster, tmp_path)
        _assert_postgresql_kept_running(postmasters)
        # Still paused, in etcd and on every member, a while after the run: nothing resumed it.
        time.sleep(cluster.loop_wait + 1)
        config, members = _paused(cluster)
        assert config and set(members.values()) == {True}, (config, members, run.tail())
        assert cluster.wait_leader().name == leader
        assert 'Cluster %s was in maintenance mode before this run and stays in it' % cluster.scope in \
            ' '.join(run.output.split()), run.tail()
    finally:
        _operator_pause(cluster, False)
    assert os.path.exists(str(tmp_path / 'paused'))
