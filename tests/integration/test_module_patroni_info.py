"""pgha.cluster.patroni_info against real etcd and real Patroni 4.1 + PostgreSQL 15 nodes: what it reports
must match what the nodes say about themselves; a missing scope or a dead REST API is not a failure."""

import json
import socket
import time

from module_runner import connection_args, run_module
from playbook_runner import run_playbook


def patroni_info(etcd, scope, user='root', check_mode=False, **options):
    args = connection_args(etcd, user=user, password=options.pop('password', None))
    args.update(scope=scope, **options)
    return run_module('patroni_info', args, check_mode=check_mode)


def ok(result):
    assert not result.get('failed'), result
    assert result['changed'] is False
    return result


def closed_port(ip='127.0.0.1'):
    s = socket.socket()
    s.bind((ip, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for(check, timeout=15.0, interval=0.2):
    """``check()``'s first truthy result; the test fails after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            assert result, 'still not true after %.0fs' % timeout
            return result
        time.sleep(interval)


def test_one_node_cluster_and_its_rest_api(etcd_plain, patroni_cluster_factory):
    cluster = patroni_cluster_factory(etcd_plain, size=1)
    node = cluster.wait_leader()

    result = ok(patroni_info(etcd_plain, cluster.scope, check_mode=True))
    assert (result['exists'], result['primary'], result['leader'], result['members'], result['replicas']) == (
        True, node.name, node.name, 1, [])
    assert 'rest' not in result
    state = result['cluster']
    assert state['prefix'] == cluster.prefix and state['warnings'] == []
    member = state['members'][0]
    assert (member['name'], member['role'], member['state'], member['is_leader']) == (
        node.name, 'primary', 'running', True)
    assert (member['host'], member['port'], member['api_port']) == (node.ip, node.pg_port, node.api_port)
    assert state['config']['ttl'] == cluster.ttl
    json.dumps(result)  # what Ansible will have to serialise

    rest = ok(patroni_info(etcd_plain, cluster.scope, rest_api=True))['rest']
    entry = rest[node.name]
    assert (entry['ok'], entry['error'], entry['state'], entry['role']) == (True, None, 'running', 'primary')
    assert entry['response']['patroni']['version'] == '4.1.5'
    assert entry['api_url'] == member['api_url']

    # A crashed node keeps its keys until their lease ends: its dead API is reported, not fatal.
    node.kill()
    result = ok(patroni_info(etcd_plain, cluster.scope, rest_api=True, rest_timeout=2))
    entry = result['rest'][node.name]
    assert result['leader'] == node.name
    assert entry['ok'] is False and entry['state'] is None
    assert 'Patroni REST API at http://%s:%d/patroni is unreachable: connection refused' % (
        node.ip, node.api_port) == entry['error']


def test_two_nodes_one_primary_one_replica(etcd_plain, patroni_cluster_factory):
    cluster = patroni_cluster_factory(etcd_plain, size=2)
    leader = cluster.wait_leader()
    replica = cluster.node(1)

    # A replica's member key says "running" only after its next loop once it streams.
    def settled():
        result = ok(patroni_info(etcd_plain, cluster.scope))
        return result if result['replicas'] == [replica.name] else None

    result = wait_for(settled, timeout=3 * cluster.loop_wait + 5)
    assert (result['primary'], result['leader'], result['members']) == (leader.name, leader.name, 2)
    members = {m['name']: m for m in result['cluster']['members']}
    assert members[replica.name]['role'] == 'replica' and members[replica.name]['is_leader'] is False
    assert members[replica.name]['lag'] is not None and members[replica.name]['lag'] >= 0
    assert members[leader.name]['lag'] is None  # measured against the leader, not for it

    rest = ok(patroni_info(etcd_plain, cluster.scope, rest_api=True))['rest']
    assert {name: (e['ok'], e['role']) for name, e in rest.items()} == {
        leader.name: (True, 'primary'), replica.name: (True, 'replica')}


def test_unknown_scope_does_not_exist(etcd_plain):
    result = ok(patroni_info(etcd_plain, 'no-such-scope', namespace='/pgha-test-nothing', rest_api=True))
    assert (result['exists'], result['primary'], result['leader'], result['members'], result['replicas']) == (
        False, None, None, 0, [])
    assert result['rest'] == {}
    assert result['cluster']['prefix'] == '/pgha-test-nothing/no-such-scope/'


def test_demo_scope_read_by_the_read_only_lb_user(etcd_tls, demo_scope):
    api_port = closed_port()
    member = {'conn_url': 'postgres://127.0.0.41:5432/postgres', 'api_url': 'http://127.0.0.1:%d/patroni' % api_port,
              'state': 'running', 'role': 'primary', 'version': '4.1.5', 'xlog_location': 50331648, 'timeline': 1}
    replica = dict((k, v) for k, v in member.items() if k != 'api_url')  # a member without an api_url
    replica.update(conn_url='postgres://127.0.0.42:5432/postgres', role='replica',
                   xlog_location=50331000, replay_lsn=50331000, receive_lsn=50331648)
    demo_scope.put('/service/demo/config', json.dumps({'ttl': 20, 'loop_wait': 2}))
    demo_scope.put('/service/demo/members/demo-1', json.dumps(member))
    demo_scope.put('/service/demo/members/demo-2', json.dumps(replica))
    demo_scope.put('/service/demo/leader', 'demo-1')

    result = ok(patroni_info(etcd_tls, 'demo', user='lb-demo', rest_api=True, rest_timeout=2))
    assert (result['exists'], result['primary'], result['leader'], result['members'], result['replicas']) == (
        True, 'demo-1', 'demo-1', 2, ['demo-2'])
    lags = {m['name']: m['lag'] for m in result['cluster']['members']}
    assert lags == {'demo-1': None, 'demo-2': 648}
    assert result['rest']['demo-1']['ok'] is False and 'connection refused' in result['rest']['demo-1']['error']
    assert result['rest']['demo-2'] == {'api_url': None, 'ok': False, 'state': None, 'role': None, 'response': None,
                                        'error': 'member demo-2 advertises no api_url in etcd'}

    # lb-demo may read /service/demo/ only: another scope is refused, with etcd's reason.
    denied = patroni_info(etcd_tls, 'other', user='lb-demo')
    assert denied['failed'] is True and 'permission denied' in denied['msg'].lower(), denied


def test_errors_are_clear_messages(etcd_tls):
    result = patroni_info(etcd_tls, 'demo', user='lb-demo', password='not-the-password')
    assert result['failed'] is True and 'wrong username or password' in result['msg'], result
    assert 'not-the-password' not in json.dumps(result)

    result = run_module('patroni_info', dict(connection_args(etcd_tls), scope='a/b'))
    assert result['failed'] is True and result['msg'] == 'invalid Patroni scope \'a/b\': it must be a non-empty name without "/"'

    result = run_module('patroni_info', {'scope': 'demo', 'endpoints': ['http://127.0.0.1:%d' % closed_port()],
                                         'timeout': 2})
    assert result['failed'] is True and 'unreachable' in result['msg'], result


def test_playbook_in_check_mode_hides_the_passwords(etcd_tls, demo_scope):
    task_args = connection_args(etcd_tls, user='lb-demo')
    task_args.update(scope='demo', rest_api=True, rest_username='patroni', rest_password='rest-secret-8e1f')
    plays = [{'name': 'patroni_info', 'hosts': 'localhost', 'connection': 'local', 'gather_facts': False,
              'tasks': [{'name': 'Read Patroni', 'pgha.cluster.patroni_info': task_args, 'register': 'patroni'},
                        {'name': 'Check', 'ansible.builtin.assert': {
                            'that': ['not patroni.exists', 'patroni.primary is none', 'patroni.members == 0',
                                     'patroni.rest == {}', 'patroni is not changed']}}]}]
    run = run_playbook(plays, check=True, verbosity=3)
    assert run.rc == 0, run.output
    assert run.recap['localhost'] == dict(ok=2, changed=0, unreachable=0, failed=0, skipped=0)
    assert task_args['password'] not in run.output and 'rest-secret-8e1f' not in run.output
