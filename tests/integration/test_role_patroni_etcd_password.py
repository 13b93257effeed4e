"""Changing Patroni's etcd password under a running cluster: real Patroni 4.1 + PostgreSQL 15 nodes in a private
TLS + RBAC etcd whose JWT tokens live 3 s (so every Patroni logs in again every few seconds, the hardest case),
with the role's timings (ttl 20, loop_wait 5, retry_timeout 7) and failsafe mode off (nothing but the order keeps
the primary).

The steps are exactly those of the role, in the role's order, with the collection's modules (run in-process):
tasks/etcd_password_check.yml (patroni_etcd_password in check mode), the state read as the admin user,
maintenance_pause.yml, the new patroni.yml on every member and a reload (what the template task and its
``Reload patroni`` handler do; the test rewrites the file and sends SIGHUP as ``systemctl reload`` does),
etcd_password_rotate.yml (patroni_etcd_password), maintenance_resume.yml. The leader key is watched from before
the first step: it must never be deleted or change hands, its lease must be kept alive past the ttl after the
change, and Patroni must keep writing to etcd afterwards, which only a login with the new password allows (etcd
refuses the old one and every earlier token).

Run in the order of the site playbook, the etcd play comes first: its step for the user patroni-<scope> (the
etcd_user task of roles/etcd/tasks/rbac.yml, with that task's update_password) must not change the password of
the existing user, or Patroni is cut off before the patroni role can hand it the new one.

The role's own refusals (a member outside the play, no admin login) run through ansible-playbook.
"""

import os
import threading
import time

import pytest
import yaml

from collection_client import client_for
from module_runner import connection_args, run_module
from playbook_runner import run_playbook

SCOPE = 'demo'
USER = 'patroni-demo'
TIMINGS = {'ttl': 20, 'loop_wait': 5, 'retry_timeout': 7}
RBAC_TASKS = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'roles', 'etcd', 'tasks',
                          'rbac.yml')


@pytest.fixture
def etcd(etcd_cluster_factory):
    return etcd_cluster_factory(size=1, tls=True, auth=True, token_ttl=3, name='rotation')


@pytest.fixture
def cluster(etcd, patroni_cluster_factory):
    return patroni_cluster_factory(etcd, scope=SCOPE, size=2, restapi_auth=True, dcs={'failsafe_mode': False},
                                   **TIMINGS)


# ----------------------------------------------------------------------------- watching the leader key

class LeaderKeyWatch(object):
    """Every event on the leader key from a revision on, through the collection's own watch (from etcd's history,
    so nothing between two reads can be missed)."""

    def __init__(self, cluster):
        self.etcd = cluster.etcd
        self.key = cluster.prefix + 'leader'
        self.client = client_for(cluster.etcd)
        self.start = self.client.get(self.key, must_exist=True)
        self.events = []
        self._watch = self.client.watch(self.key, start_revision=self.start.mod_revision + 1)
        self._thread = threading.Thread(target=self._collect, daemon=True)
        self._thread.start()

    def _collect(self):
        try:
            for response in self._watch:
                self.events.extend(response.events)
        except Exception as exc:  # noqa: BLE001 - reported by stop()
            self.events.append(exc)

    def stop(self):
        time.sleep(1)  # events up to now reach the stream
        self._watch.close()
        self._thread.join(10)
        self.client.close()
        return self.events

    def assert_kept(self, leader):
        """The key was never deleted nor written again, and ``leader`` holds it with its first lease still."""
        events = self.stop()
        described = [e if isinstance(e, Exception) else (e.type, e.kv.value, e.kv.mod_revision) for e in events]
        assert not events, 'the leader key changed: %s' % described
        with client_for(self.etcd) as client:
            now = client.get(self.key)
            assert now is not None, 'the leader key is gone'
            assert (now.value, now.create_revision, now.version, now.lease) == \
                (leader.encode(), self.start.create_revision, self.start.version, self.start.lease)
            # Kept alive by Patroni: a lease nobody refreshes ends within the ttl.
            assert client.lease_ttl(now.lease).ttl > 0


# ----------------------------------------------------------------------------- the role's steps

def _admin(cluster):
    return connection_args(cluster.etcd, user='root')


def _password_module(cluster, new_password, check_mode=False, members=None, **extra):
    args = _admin(cluster)
    args.update(scope=cluster.scope, namespace=cluster.namespace, patroni_user=USER, patroni_password=new_password,
                members=[n.name for n in cluster.nodes] if members is None else members,
                rest_username=cluster.restapi_user, rest_password=cluster.restapi_password, wait_timeout=60)
    args.update(extra)
    return run_module('patroni_etcd_password', args, check_mode=check_mode)


def _patroni_module(cluster, name, **options):
    args = _admin(cluster)
    args.update(scope=cluster.scope, namespace=cluster.namespace, rest_username=cluster.restapi_user,
                rest_password=cluster.restapi_password)
    args.update(options)
    result = run_module(name, args)
    assert not result.get('failed'), result
    return result


def _pause(cluster):
    """maintenance_pause.yml: pause unless paused, then wait until every running member shows it."""
    state = _patroni_module(cluster, 'patroni_info')
    owner = 'operator' if state['cluster']['config']['paused'] else 'role'
    if owner == 'role':
        _patroni_module(cluster, 'patroni_config', settings={'pause': True})
    deadline = time.monotonic() + 60
    while True:
        rest = _patroni_module(cluster, 'patroni_info', rest_api=True)['rest']
        if all((entry.get('response') or {}).get('pause') for entry in rest.values()):
            return owner
        assert time.monotonic() < deadline, rest
        time.sleep(1)


def _resume(cluster, owner):
    """maintenance_resume.yml."""
    if owner == 'role':
        _patroni_module(cluster, 'patroni_config', settings={'pause': None})


def _hand_over(cluster, new_password):
    """The template task and its Reload patroni handler on every member."""
    cluster.etcd_password = new_password
    for node in cluster.nodes:
        cluster.write_config(node)
        node.reload()


def _patroni_role(cluster, new_password):
    """The patroni role's steps for a changed patroni_etcd_password, in its order; the rotation result, or None
    when etcd accepted the password already (the role then only writes patroni.yml and reloads Patroni)."""
    check = _password_module(cluster, new_password, check_mode=True)
    assert not check.get('failed'), check
    if not check['changed']:
        _hand_over(cluster, new_password)
        return None
    assert check['accepted_before'] is False
    owner = _pause(cluster)
    try:
        _hand_over(cluster, new_password)
        rotated = _password_module(cluster, new_password)
        assert not rotated.get('failed'), rotated
        assert rotated['changed'] is True and sorted(rotated['confirmed']) == sorted(n.name for n in cluster.nodes)
        return rotated
    finally:
        _resume(cluster, owner)


# ----------------------------------------------------------------------------- what must hold afterwards

def _assert_primary_kept(cluster, leader, before):
    """``leader`` runs as primary on the same timeline with the same postmaster as ``before`` (from
    :func:`_primary_facts`), and no Patroni demoted itself on the way."""
    node = cluster.node(leader)
    assert _primary_facts(node) == before, 'the primary %s was demoted or restarted: %s -> %s\n%s' % (
        leader, before, _primary_facts(node), cluster.logs_tail(60))
    for member in cluster.nodes:
        with open(member.log_path) as log:
            text = log.read()
        assert 'demoted self' not in text and 'Demoting self' not in text, member.log_tail(60)


def _primary_facts(node):
    status = node.status() or {}
    return status.get('role'), status.get('timeline'), node.postmaster_pid


def _assert_patroni_uses_only_the_new_password(cluster, old, new, changed_at_revision):
    etcd = cluster.etcd
    with client_for(etcd) as root:
        assert root.check_password(USER, old) is False
        assert root.check_password(USER, new) is True
    leader = cluster.wait_leader()
    # WAL moves, so the leader writes its optime (the status key) and its member key again: writes need a token,
    # and after the change only a login with the new password gets one.
    leader.execute('CREATE TABLE IF NOT EXISTS rotation_check AS SELECT generate_series(1, 1000) AS n')
    deadline = time.monotonic() + 3 * TIMINGS['loop_wait']
    with client_for(etcd) as root:
        while True:
            status = root.get(cluster.prefix + 'status')
            member = root.get(cluster.prefix + 'members/' + leader.name)
            if status and member and min(status.mod_revision, member.mod_revision) > changed_at_revision:
                break
            assert time.monotonic() < deadline, 'Patroni wrote nothing to etcd after the password change'
            time.sleep(0.5)
    # A Patroni that starts now logs in with what its patroni.yml holds: only the new password.
    replica = [n for n in cluster.nodes if n is not leader][0]
    replica.stop()
    replica.start(timeout=90)
    cluster.wait_running(timeout=60)


def _revision(cluster):
    with client_for(cluster.etcd) as root:
        return root.range(cluster.prefix + 'leader').revision


def test_rotation_in_the_roles_order_keeps_the_leader_key(cluster):
    old, new = cluster.etcd_password, 'rotated-in-role-order-1'
    leader = cluster.wait_leader().name
    primary = _primary_facts(cluster.node(leader))
    watch = LeaderKeyWatch(cluster)
    rotated = _patroni_role(cluster, new)
    assert rotated is not None and rotated['leader'] == leader
    changed_at = _revision(cluster)
    # Past the leader key's ttl: its lease lived on, so Patroni kept it alive after the change.
    time.sleep(TIMINGS['ttl'] + 2)
    watch.assert_kept(leader)
    _assert_primary_kept(cluster, leader, primary)
    _assert_patroni_uses_only_the_new_password(cluster, old, new, changed_at)
    assert cluster.wait_leader().name == leader
    # Once etcd has it, the role finds nothing to do.
    again = _password_module(cluster, new)
    assert not again.get('failed') and again['changed'] is False and again['accepted_before'] is True


def _etcd_play_step(cluster, new_password):
    """What the etcd play does for the user patroni-<scope> when the site playbook runs: the etcd_user task of
    roles/etcd/tasks/rbac.yml with that task's update_password."""
    with open(RBAC_TASKS) as handle:
        tasks = yaml.safe_load(handle)
    found = []

    def walk(items):
        for task in items or []:
            walk(task.get('block'))
            user = task.get('pgha.cluster.etcd_user')
            if user and str(user.get('name', '')).startswith('patroni-'):
                found.append(user)
    walk(tasks)
    assert len(found) == 1, 'expected one etcd_user task for patroni-<scope> in %s: %s' % (RBAC_TASKS, found)
    args = _admin(cluster)
    args.update(name=USER, user_password=new_password, roles=[USER],
                update_password=found[0].get('update_password', 'on_create'))
    result = run_module('etcd_user', args)
    assert not result.get('failed'), result
    return result


def test_the_site_playbooks_order_leaves_the_password_to_the_patroni_role(cluster):
    old, new = cluster.etcd_password, 'rotated-in-site-order-2'
    leader = cluster.wait_leader().name
    primary = _primary_facts(cluster.node(leader))
    watch = LeaderKeyWatch(cluster)
    etcd_play = _etcd_play_step(cluster, new)
    # The rest of the etcd play, the PKI role and the installation steps of the patroni play run in between.
    time.sleep(15)
    _patroni_role(cluster, new)
    changed_at = _revision(cluster)
    time.sleep(TIMINGS['ttl'] + 2)
    watch.assert_kept(leader)
    _assert_primary_kept(cluster, leader, primary)
    # The etcd play must leave an existing user's password alone: only the patroni role can hand it to Patroni
    # first (update_password on_create in its patroni-<scope> task).
    assert etcd_play['password_changed'] is False, etcd_play
    _assert_patroni_uses_only_the_new_password(cluster, old, new, changed_at)


def test_a_member_not_given_the_password_stops_the_change_before_etcd_has_it(cluster):
    new = 'never-taken-3'
    first, second = cluster.nodes[0].name, cluster.nodes[1].name
    result = _password_module(cluster, new, members=[first])
    assert result.get('failed') and result['changed'] is False, result
    assert ('%s runs Patroni on %s, which was not given the new password (members: %s)' % (SCOPE, second, first)
            in result['msg']), result['msg']
    assert new not in str(result)
    with client_for(cluster.etcd) as root:
        assert root.check_password(USER, new) is False
        assert root.check_password(USER, cluster.etcd_password) is True


def test_a_member_that_shows_no_new_cycle_stops_the_change_before_etcd_has_it(cluster):
    new = 'never-taken-4'
    leader = cluster.wait_leader()
    replica = [n for n in cluster.nodes if n is not leader][0]
    os.kill(replica.pid, 19)  # SIGSTOP: the process is there, but neither its loop nor its REST API moves
    try:
        result = _password_module(cluster, new, wait_timeout=20)
    finally:
        os.kill(replica.pid, 18)  # SIGCONT
    assert result.get('failed') and result['changed'] is False, result
    assert 'the Patroni of %s showed no cycle begun since its configuration was reloaded within 20' % replica.name \
        in result['msg'], result['msg']
    with client_for(cluster.etcd) as root:
        assert root.check_password(USER, new) is False
    cluster.wait_running(timeout=60)


def _module_without_patroni(etcd, **options):
    args = connection_args(etcd, user='root')
    args.update(scope=SCOPE, patroni_user=USER, patroni_password='new-etcd-Secret-8', members=['pg1'],
                wait_timeout=5)
    args.update(options)
    return run_module('patroni_etcd_password', args)


def test_module_refusals_change_nothing(etcd):
    wrong_login = _module_without_patroni(etcd, password='not-the-root-password')
    assert wrong_login.get('failed') and 'authentication failed' in wrong_login['msg'], wrong_login
    no_user = _module_without_patroni(etcd, patroni_user='patroni-nobody')
    assert no_user.get('failed') and no_user['msg'] == (
        'etcd has no user patroni-nobody: the pgha.cluster.etcd role creates it (run it first); nothing was changed')
    with client_for(etcd) as root:
        assert root.check_password(USER, 'new-etcd-Secret-8') is False
        assert root.check_password(USER, etcd.users[USER]) is True
    # No member runs Patroni: nothing to wait for, etcd takes the password at once.
    done = _module_without_patroni(etcd)
    assert not done.get('failed') and done['changed'] is True and done['confirmed'] == [], done
    with client_for(etcd) as root:
        assert root.check_password(USER, 'new-etcd-Secret-8') is True
    assert 'new-etcd-Secret-8' not in str(done)


def test_module_without_etcd_authentication_has_nothing_to_change(etcd_plain):
    args = {'endpoints': etcd_plain.endpoints, 'scope': SCOPE, 'patroni_user': USER,
            'patroni_password': 'new-etcd-Secret-9'}
    result = run_module('patroni_etcd_password', args)
    assert not result.get('failed') and result['changed'] is False and result['accepted_before'] is None, result


# ----------------------------------------------------------------------------- the role's own checks

def _role_play(etcd, tmp_path, hosts, limit=None, **overrides):
    """validate.yml, then etcd_password_check.yml, with the module defaults main.yml gives the modules."""
    pki = tmp_path / 'pki'
    pki.mkdir(parents=True)
    for name, src in (('ca.crt', etcd.ca_cert), ('client-patroni.crt', etcd.client_cert),
                      ('client-patroni.key', etcd.client_key)):
        (pki / name).write_bytes(open(src, 'rb').read())
    inventory = tmp_path / 'hosts.ini'
    inventory.write_text('[postgres]\n' + ''.join('pg%d ansible_connection=local\n' % (i + 1) for i in range(hosts)))
    role = {'name': 'pgha.cluster.patroni'}
    play = {'name': 'etcd password check', 'hosts': 'postgres', 'gather_facts': False, 'tasks': [
        {'name': 'Validate', 'ansible.builtin.include_role': dict(role, tasks_from='validate.yml')},
        {'name': 'Check', 'ansible.builtin.include_role': dict(role, tasks_from='etcd_password_check.yml')},
        {'name': 'Report', 'ansible.builtin.debug': {'msg': 'rotating={{ __patroni_etcd_rotating }}'}},
    ]}
    extra = {'patroni_address': '127.0.0.1', 'patroni_scope': SCOPE, 'patroni_pki_dir': str(pki),
             'patroni_etcd_endpoints': etcd.endpoints,
             'patroni_superuser_password': 'superuser-Secret-1', 'patroni_replication_password': 'replication-Secret-2',
             'patroni_rewind_password': 'rewind-Secret-3', 'patroni_restapi_password': 'restapi-Secret-4',
             'patroni_etcd_password': etcd.users[USER], 'patroni_etcd_admin_password': etcd.users['root']}
    extra.update(overrides)
    args = ['--limit', limit] if limit else []
    return run_playbook([play], inventory=str(inventory), extra_vars=extra, workdir=str(tmp_path), args=args,
                        verbosity=1)


def _recap_ok(run):
    return run.rc == 0 and all(r['failed'] == 0 and r['changed'] == 0 for r in run.recap.values())


def _text(run):
    return ' '.join(run.output.split())


def test_role_finds_nothing_to_change_when_etcd_has_the_password(etcd, tmp_path):
    run = _role_play(etcd, tmp_path, hosts=2, patroni_etcd_admin_password='')
    assert _recap_ok(run), run.tail()
    assert run.output.count('rotating=False') == 2, run.tail()


def test_role_changes_the_password_only_with_every_member_in_the_play(etcd, tmp_path):
    new = 'new-etcd-Secret-6'
    run = _role_play(etcd, tmp_path, hosts=2, patroni_etcd_password=new)
    assert _recap_ok(run), run.tail()
    assert run.output.count('rotating=True') == 2, run.tail()
    limited = _role_play(etcd, tmp_path / 'limited', hosts=2, limit='pg1', patroni_etcd_password=new)
    assert limited.rc != 0
    text = ' '.join(limited.output.split())
    assert 'so every host of group postgres must be in the play (pg2 are not)' in text, limited.tail()
    for run_ in (run, limited):
        assert new not in run_.output and etcd.users['root'] not in run_.output
    with client_for(etcd) as root:
        assert root.check_password(USER, new) is False


def test_role_needs_the_admin_login_to_change_the_password(etcd, tmp_path):
    run = _role_play(etcd, tmp_path, hosts=1, patroni_etcd_password='new-etcd-Secret-7', patroni_etcd_admin_password='')
    assert run.rc != 0
    text = ' '.join(run.output.split())
    assert ("etcd refuses the password given for patroni-demo: changing it needs the login of a user with etcd's root "
            "role (username and password); nothing was changed (the role logs in as patroni_etcd_admin_username with "
            "patroni_etcd_admin_password, which defaults to etcd_root_password)") in text, run.tail()
    assert 'new-etcd-Secret-7' not in run.output
