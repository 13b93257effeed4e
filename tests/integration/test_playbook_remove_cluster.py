"""The remove_cluster playbook (pgha.cluster.remove_cluster) on this machine, against one etcd member with TLS and RBAC
shared by three Patroni clusters: main (a real Patroni + PostgreSQL), beta (two real members: the cluster removed) and
beta2 (keys and users only; its name starts like beta's on purpose).

The inventory's hosts are local, as in test_playbook_status.py; main's host is one that cannot be reached (ssh to a
closed port), so a run that contacted another cluster's host would fail. There is no systemd here: the playbook runs
with --skip-tags services, and the test stops each beta member's Patroni the way `systemctl stop patroni` does with the
role's unit (SIGTERM to Patroni alone) in maintenance mode, where Patroni leaves PostgreSQL running: the playbook's own
steps stop PostgreSQL, delete the data directories (with the confirmation only), and delete beta's etcd users, roles
and keys. Everything of main and beta2 is compared before and after, and every refused request must change nothing.
"""

import os
import signal
import socket
import time

import pytest

import etcd_harness
import ops_inventory
import patroni_harness
from collection_client import client_for
from playbook_runner import run_playbook

SKIP_SERVICES = ['--skip-tags', 'services']
GONE = ('patroni-beta', 'lb-beta')
KEPT_USERS = ('patroni-main', 'lb-main', 'patroni-beta2', 'lb-beta2', 'root')
RUNNING = ('main', 'beta')  # the scopes with real Patroni members


def closed_port():
    sock = socket.socket()
    sock.bind(('127.0.0.1', 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def build(etcd, beta_nodes, directory):
    """The users and keys of main, beta and beta2 in ``etcd``, and the inventory: main's host m1 (unreachable),
    beta's b1, b2 (one per node of ``beta_nodes``)."""
    pki = ops_inventory.install_pki(etcd, os.path.join(directory, 'pki'))
    unreachable = {'ansible_connection': 'ssh', 'ansible_host': '127.0.0.1', 'ansible_port': closed_port()}
    clusters = {
        'main': {'scope': 'main', 'hosts': {'m1': dict(unreachable, patroni_name='main-1')}},
        'beta': {'scope': 'beta', 'hosts': dict(
            ('b%d' % (i + 1), {'patroni_name': node.name, 'patroni_data_dir': node.data_dir})
            for i, node in enumerate(beta_nodes))},
    }
    lbs = {'lb1': {'haproxy_clusters': [{'scope': 'main'}, {'scope': 'beta'}]}, 'lb2': {'pgha_cluster_name': 'main'}}
    return ops_inventory.write_inventory(os.path.join(directory, 'hosts.yml'), etcd, pki, clusters, lb_hosts=lbs)


def start(etcd, made, directory):
    """main (one member) and beta (two) running in ``etcd``, beta2's keys, everyone's users: the test's stack."""
    for scope in ('main', 'beta', 'beta2'):
        ops_inventory.add_cluster_users(etcd, scope)
        etcd.etcdctl('put', '/pgha/lb/%s/policy' % scope, '{"ports": {"primary": 5000}}')
    etcd.etcdctl('put', '/service/beta2/members/beta2-1', '{"state": "running", "role": "primary"}',
                 user='patroni-beta2')
    etcd.etcdctl('put', '/service/beta2/leader', 'beta2-1', user='patroni-beta2')
    clusters = {}
    for scope, size in (('main', 1), ('beta', 2)):
        clusters[scope] = patroni_harness.PatroniCluster(etcd, scope, size=size)
        made.append(clusters[scope])
        clusters[scope].start()
    return {'etcd': etcd, 'main': clusters['main'], 'beta': clusters['beta'], 'dir': directory,
            'inventory': build(etcd, clusters['beta'].nodes, directory)}


def skip_unless_runnable():
    if etcd_harness.binaries_missing():
        pytest.skip('etcd binaries not found: %s' % ', '.join(etcd_harness.binaries_missing()))
    missing = patroni_harness.missing_requirements()
    if missing:
        pytest.skip('Patroni nodes cannot run here: %s' % '; '.join(missing))


@pytest.fixture(scope='module')
def untouched(tmp_path_factory):
    """A stack for the refused requests, which must leave it as it is: one for all of them."""
    skip_unless_runnable()
    directory = str(tmp_path_factory.mktemp('refused'))
    etcd = etcd_harness.EtcdCluster(base_dir=os.path.join(directory, 'etcd'), size=1, tls=True, auth=True,
                                    name='rmv')
    made = []
    try:
        etcd.start()
        yield start(etcd, made, directory)
    finally:
        for cluster in made:
            cluster.cleanup()
        etcd.cleanup()


@pytest.fixture
def stack(etcd_cluster_factory, tmp_path):
    """A stack of its own for a test that removes beta."""
    skip_unless_runnable()
    made = []
    try:
        yield start(etcd_cluster_factory(size=1, tls=True, auth=True, name='rmv'), made, str(tmp_path))
    finally:
        for cluster in made:
            cluster.cleanup()


def remove(stack, check=False, args=(), **extra_vars):
    variables = {'pgha_remove_cluster': 'beta'}
    variables.update(extra_vars)
    variables = {k: v for k, v in variables.items() if v is not None}
    return run_playbook('pgha.cluster.remove_cluster', inventory=stack['inventory'], extra_vars=variables,
                        check=check, args=SKIP_SERVICES + list(args), workdir=stack['dir'])


def etcd_state(etcd):
    """Every key with its value, every user with its roles, every role with its permissions: read as root. Of
    the running Patroni clusters, whose keys Patroni rewrites as it goes (a slow host may even see a failover),
    only the values written once are compared: initialize and config; the others by name."""
    with client_for(etcd) as root:
        keys = dict((kv.key_text, kv.value_text) for kv in root.get_prefix('/'))
        users = dict((user, root.user_get(user)) for user in root.user_list())
        roles = dict((role, root.role_get(role)) for role in root.role_list())
    running = tuple('/service/%s/' % scope for scope in RUNNING)
    kept = tuple(prefix + name for prefix in running for name in ('initialize', 'config'))
    keys = dict((k, None if k.startswith(running) and k not in kept else v) for k, v in keys.items())
    return {'keys': keys, 'users': users, 'roles': roles}


def without_beta(state):
    return {'keys': {k: v for k, v in state['keys'].items()
                     if not k.startswith('/service/beta/') and not k.startswith('/pgha/lb/beta/')},
            'users': {u: v for u, v in state['users'].items() if u not in GONE},
            'roles': {r: v for r, v in state['roles'].items() if r not in GONE}}


def postmasters(cluster):
    return [node.postmaster_pid for node in cluster.nodes]


def stop_patroni_in_maintenance_mode(beta):
    """What `systemctl stop patroni` does in a paused cluster: Patroni exits, PostgreSQL keeps running."""
    code, answer = beta.wait_leader().rest('/config', method='PATCH', body={'pause': True})
    assert code == 200, answer
    deadline = time.monotonic() + 30
    while not all((node.status() or {}).get('pause') for node in beta.nodes):
        assert time.monotonic() < deadline, 'beta did not pause'
        time.sleep(0.2)
    for node in beta.nodes:
        os.kill(node.process.pid, signal.SIGTERM)
        node.process.wait(30)
    assert all(postmasters(beta)), 'PostgreSQL stopped with Patroni in maintenance mode'


@pytest.mark.parametrize('extra_vars, args, message', [
    ({'pgha_remove_cluster': None}, [], 'Set pgha_remove_cluster to the scope'),
    ({'pgha_remove_cluster': ''}, [], 'Set pgha_remove_cluster to the scope'),
    ({'pgha_remove_cluster': 'gamma'}, [], "No Patroni cluster of this play has the scope 'gamma'; the play's "
                                           'clusters are main: m1; beta: b1, b2 with the scopes main, beta.'),
    ({'pgha_remove_cluster': 'bet'}, [], "No Patroni cluster of this play has the scope 'bet'"),
    ({'pgha_remove_cluster_data': 'main'}, [], "pgha_remove_cluster_data is 'main' but the cluster to remove is "
                                               "'beta'"),
    ({}, ['--limit', 'all:!b2'], 'b2 of group beta (cluster beta) is not in this play (--limit?)'),
    ({}, ['--limit', 'beta:localhost'], 'No host of the etcd group took part in this run (--limit?)'),
    ({'etcd_root_password': 'not-the-password'}, [], 'authentication failed'),
    ({'pgha_remove_cluster_data': 'beta', 'patroni_data_dir': '/tmp'}, [],
     '/tmp on b1 does not look like a PostgreSQL data directory'),
])
def test_a_refused_request_changes_nothing(untouched, extra_vars, args, message):
    etcd, beta = untouched['etcd'], untouched['beta']
    before, running = etcd_state(etcd), postmasters(beta)
    run = remove(untouched, args=args, **extra_vars)
    assert run.rc != 0, run.tail()
    assert message in ' '.join(run.output.split()), run.tail()
    assert not [host for host, recap in run.recap.items() if recap['changed']], run.recap
    assert 'Stop PostgreSQL' not in run.output and 'Delete the cluster' not in run.output
    assert etcd_state(etcd) == before
    assert postmasters(beta) == running and all(node.is_running for node in beta.nodes)
    assert all(os.path.isfile(os.path.join(node.data_dir, 'PG_VERSION')) for node in beta.nodes)


def test_beta_goes_and_nothing_of_main_or_beta2_is_touched(stack):
    etcd, main, beta = stack['etcd'], stack['main'], stack['beta']
    leader = main.wait_leader()
    main_postmaster = leader.postmaster_pid
    before = etcd_state(etcd)
    assert {'/service/beta/leader', '/service/beta/initialize', '/pgha/lb/beta/policy'} <= set(before['keys'])
    assert set(GONE) <= set(before['users']) and set(GONE) <= set(before['roles'])

    # Check mode: the changes are announced, none is made.
    checked = remove(stack, check=True, pgha_remove_cluster_data='beta')
    assert checked.rc == 0, checked.tail()
    assert checked.recap['rmv-1']['changed'] == 3 and checked.recap['m1'] == dict(checked.recap['m1'], unreachable=0)
    assert 'Check mode, nothing changed: this is what a run does. Cluster beta (group beta)' in checked.output
    assert etcd_state(etcd) == before
    assert all(node.is_running for node in beta.nodes)
    assert all(os.path.isdir(node.data_dir) for node in beta.nodes)

    # Without the confirmation: PostgreSQL stopped, data kept, beta's users, roles and keys gone.
    stop_patroni_in_maintenance_mode(beta)
    data_dirs = [node.data_dir for node in beta.nodes]
    run = remove(stack)
    assert run.rc == 0, run.tail()
    assert run.recap['m1']['unreachable'] == 0  # another cluster's host is never contacted
    assert run.recap['b1']['changed'] == 1 and run.recap['b2']['changed'] == 1  # pg_ctl stop
    assert postmasters(beta) == [None, None]
    assert all(os.path.isfile(os.path.join(d, 'PG_VERSION')) for d in data_dirs)
    after = etcd_state(etcd)
    assert not [k for k in after['keys'] if k.startswith('/service/beta/') or k.startswith('/pgha/lb/beta/')]
    assert not set(GONE) & (set(after['users']) | set(after['roles']))
    assert without_beta(after) == without_beta(before)
    assert set(KEPT_USERS) <= set(after['users'])
    report = ' '.join(run.output.split())
    assert ('Cluster beta (group beta): Patroni and PostgreSQL stopped, Patroni disabled on b1, b2; data directories '
            'kept (set pgha_remove_cluster_data=beta to delete them); etcd users and roles patroni-beta and lb-beta '
            'deleted; etcd keys under /service/beta/ and /pgha/lb/beta/ deleted.') in report
    assert ('Load balancers are not changed by this playbook: take beta out of haproxy_clusters on lb1 and run '
            'pgha.cluster.haproxy') in report

    # main runs on, as its own etcd user, with the same leader and PostgreSQL.
    assert main.wait_leader().name == leader.name and leader.postmaster_pid == main_postmaster
    leader.execute('CREATE TABLE IF NOT EXISTS still_here (n int)')
    leader.execute('INSERT INTO still_here VALUES (1)')
    assert etcd.etcdctl('get', '/service/main/leader', '--print-value-only', user='patroni-main').strip() == leader.name
    assert etcd.etcdctl('get', '/pgha/lb/main/policy', '--print-value-only', user='lb-main').strip()
    assert etcd.etcdctl('get', '/service/beta2/leader', '--print-value-only', user='lb-beta2').strip() == 'beta2-1'
    refused = etcd.etcdctl_run('get', '/service/beta/leader', user='patroni-beta', password='whatever')
    assert refused.returncode != 0 and 'authentication failed' in refused.stderr

    # With the confirmation: the data directories and the password files go too; etcd has nothing left to do.
    pgpass_files = [os.path.join(os.path.dirname(d), '.pgpass-beta') for d in data_dirs]
    for path in pgpass_files:  # where the patroni role has Patroni keep it
        with open(path, 'w') as handle:
            handle.write('*:*:*:replicator:secret\n')
    run = remove(stack, pgha_remove_cluster_data='beta')
    assert run.rc == 0, run.tail()
    assert not [d for d in data_dirs if os.path.exists(d)]
    assert not [path for path in pgpass_files if os.path.exists(path)]
    assert run.recap['rmv-1']['changed'] == 0
    assert run.recap['b1']['changed'] == 1 and run.recap['b2']['changed'] == 1
    assert 'data directories deleted;' in ' '.join(run.output.split())

    # Once more: nothing left to change anywhere.
    run = remove(stack, pgha_remove_cluster_data='beta')
    assert run.rc == 0, run.tail()
    assert not [host for host, recap in run.recap.items() if recap['changed']], run.recap
    assert without_beta(etcd_state(etcd)) == without_beta(before)
    assert main.wait_leader().name == leader.name and leader.postmaster_pid == main_postmaster
