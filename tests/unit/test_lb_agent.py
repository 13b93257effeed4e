"""lb_agent's decisions and its configuration, lb_status's metrics text; no network.

tests/integration/test_lb_agent.py runs the agent against real etcd and HAProxy.
"""

import json
import urllib.request

import pytest

from ansible_collections.pgha.cluster.plugins.module_utils.haproxy_config import render_haproxy_config
from ansible_collections.pgha.cluster.plugins.module_utils.lb_agent import (
    AgentConfigError,
    etcd_clients_from_config,
    flagless,
    leader_to_verify,
    load_config,
    routed_backends,
    runtime_actions,
    scope_etcd_options,
)
from ansible_collections.pgha.cluster.plugins.module_utils.lb_policy import desired_backends
from ansible_collections.pgha.cluster.plugins.module_utils.lb_status import Histogram, Metrics, start_status_server
from ansible_collections.pgha.cluster.plugins.module_utils.patroni_state import parse_cluster_state


def member(role, port, state='running'):
    return json.dumps({'conn_url': 'postgres://10.0.0.%d:5432/postgres' % port,
                       'api_url': 'http://10.0.0.%d:8008/patroni' % port, 'state': state, 'role': role,
                       'timeline': 2, 'xlog_location': 100, 'replay_lsn': 100, 'receive_lsn': 100,
                       'replication_state': 'streaming'})


def backends(leader='pg1', policy=None):
    keys = {'/service/main/members/pg1': member('primary' if leader == 'pg1' else 'replica', 1),
            '/service/main/members/pg2': member('primary' if leader == 'pg2' else 'replica', 2)}
    if leader:
        keys['/service/main/leader'] = leader
    return desired_backends(parse_cluster_state(keys, '/service', 'main'), policy)


def servers(routed, kind):
    return dict((s['name'], (s['enabled'], s['reason'])) for s in routed['backends'][kind]['servers'])


def rows(**statuses):
    """show servers state rows: ``primary_pg1='up'`` -> backend pgha_main_primary, server pg1."""
    return [{'be_name': 'pgha_main_' + key.rsplit('_', 1)[0], 'srv_name': key.rsplit('_', 1)[1], 'status': status}
            for key, status in statuses.items()]


# ------------------------------------------------------------------ routing decisions

def test_the_leader_is_routed_only_once_verified():
    desired = backends('pg2', {'primary_reads_fallback': True})
    waiting = routed_backends(desired, verified_primary=None)
    assert servers(waiting, 'primary')['pg2'] == (False, 'the leader; waiting for its /primary to answer 200')
    assert servers(waiting, 'replicas')['pg2:primary'][0] is False
    assert servers(waiting, 'replicas')['pg1'] == (True, None)  # replicas are not held back
    verified = routed_backends(desired, verified_primary='pg2')
    assert servers(verified, 'primary') == servers(desired, 'primary')
    assert servers(verified, 'replicas') == servers(desired, 'replicas')
    assert desired['backends']['primary']['servers'][1]['enabled'] is True  # the input is not changed


def state_after_promotion(new_leader_role='replica', state='running'):
    """pg2 holds the leader key; its member key is not rewritten yet (Patroni does so on its next loop)."""
    return parse_cluster_state({'/service/main/members/pg1': member('replica', 1),
                                '/service/main/members/pg2': member(new_leader_role, 2, state),
                                '/service/main/leader': 'pg2'}, '/service', 'main')


@pytest.mark.parametrize('role, state, expected', [
    ('replica', 'running', 'pg2'),  # just promoted: the key moved, the member key not yet
    ('primary', 'running', 'pg2'),
    ('promoted', 'running', 'pg2'),  # Patroni's role while PostgreSQL promotes
    ('standby_leader', 'running', None),  # a standby cluster's leader never takes writes
    ('primary', 'stopped', None),
    ('replica', 'starting', None),
])
def test_the_leader_to_verify_is_the_running_key_holder(role, state, expected):
    found = leader_to_verify(state_after_promotion(role, state))
    assert (found.name if found is not None else None) == expected


def test_no_leader_key_no_leader_to_verify():
    assert leader_to_verify(parse_cluster_state({'/service/main/members/pg1': member('primary', 1)},
                                                '/service', 'main')) is None


def test_a_verified_leader_is_routed_before_its_member_key_says_primary():
    desired = desired_backends(state_after_promotion(), {'primary_reads_fallback': True})
    assert servers(desired, 'primary')['pg2'][0] is False  # etcd alone: no primary yet
    routed = routed_backends(desired, verified_primary='pg2')
    assert servers(routed, 'primary') == {'pg1': servers(desired, 'primary')['pg1'], 'pg2': (True, None)}
    assert servers(routed, 'replicas')['pg2:primary'] == (True, None)
    assert servers(routed, 'replicas')['pg2'][0] is False  # the key holder serves no replica reads
    drained = routed_backends(desired, verified_primary='pg2', drained=['pg2'])
    assert servers(drained, 'primary')['pg2'] == (True, None)  # drain is for the read listeners only
    assert servers(drained, 'replicas')['pg2:primary'][0] is False


def test_runtime_actions_bring_haproxy_to_the_routed_states():
    routed = {'main': routed_backends(backends('pg2'), verified_primary=None)}
    actions = runtime_actions(routed, rows(primary_pg1='up', primary_pg2='maint', replicas_pg1='maint',
                                           replicas_pg2='up'))
    assert actions == [('maint', 'pgha_main_primary', 'pg1'), ('shutdown', 'pgha_main_primary', 'pg1'),
                       ('ready', 'pgha_main_replicas', 'pg1'), ('maint', 'pgha_main_replicas', 'pg2')]
    settled = rows(primary_pg1='maint', primary_pg2='maint', replicas_pg1='down', replicas_pg2='maint')
    assert runtime_actions(routed, settled) == []  # a down replica is left to HAProxy's checks


def test_runtime_actions_skip_servers_haproxy_does_not_have_yet():
    routed = {'main': routed_backends(backends('pg1'), verified_primary='pg1')}
    assert runtime_actions(routed, rows(primary_pg1='maint')) == [('ready', 'pgha_main_primary', 'pg1')]
    assert runtime_actions(routed, []) == []


def test_flagless_ignores_only_the_enabled_flags():
    settings = {'stats_address': '127.0.0.1'}
    one = render_haproxy_config([{'scope': 'main', 'backends': backends('pg1')}], settings)
    two = render_haproxy_config([{'scope': 'main', 'backends': backends('pg2')}], settings)
    assert one != two and flagless(one) == flagless(two)
    assert ' disabled' not in flagless(one)
    other = render_haproxy_config([{'scope': 'main', 'backends': backends('pg1'), 'policy': {'balance': 'first'}}],
                                  settings)
    assert flagless(one) != flagless(other)


# ------------------------------------------------------------------ configuration

def minimal(**extra):
    config = {'etcd': {'endpoints': ['https://10.0.0.1:2379'], 'ca_cert': '/etc/ca.crt'}, 'scopes': ['main']}
    config.update(extra)
    return config


def test_load_config_fills_in_defaults():
    config = load_config(minimal())
    assert config['namespace'] == '/service' and config['status_address'] == '127.0.0.1'
    assert config['settings'].admin_socket == '/run/haproxy/admin.sock'
    assert config['validate'] == 'haproxy -c -f %s'


@pytest.mark.parametrize('config, message', [
    ([], 'config: must be a JSON object'),
    (minimal(scope=['x']), 'config.scope: unknown field'),
    (minimal(etcd={}), 'config.etcd: required'),
    (minimal(etcd={'endpoints': ['x'], 'cert': 'y'}), 'config.etcd.cert: unknown field'),
    (minimal(scopes=[]), 'config.scopes: required'),
    (minimal(scopes=['a', 'a']), 'config.scopes: required, a list of distinct'),
    (minimal(scopes=['a/b']), 'config.scopes: invalid Patroni scope'),
    (minimal(settings={'maxconn': 0}), 'config.settings.maxconn: must be an integer'),
    (minimal(rest={'ca': 'x'}), 'config.rest.ca: unknown field'),
    (minimal(primary_poll_interval_s=0), 'config.primary_poll_interval_s: must be a positive number'),
    (minimal(credentials={'other': {'username': 'lb-other'}}), 'config.credentials.other: unknown field'),
    (minimal(credentials={'main': {'user': 'lb-main'}}), 'config.credentials.main.user: unknown field'),
    (minimal(credentials={'main': 'lb-main'}), 'config.credentials.main: must be an object'),
])
def test_load_config_errors_name_the_field(config, message):
    with pytest.raises(AgentConfigError) as err:
        load_config(config)
    assert str(err.value).startswith(message), str(err.value)


def test_each_scope_is_read_with_its_own_credentials():
    etcd = {'endpoints': ['https://10.0.0.1:2379'], 'ca_cert': '/etc/ca.crt', 'username': 'lb-main',
            'password': 'main-secret'}
    config = load_config(minimal(etcd=etcd, scopes=['main', 'beta', 'gamma'], credentials={
        'beta': {'username': 'lb-beta', 'password_file': '/etc/beta.pw'},
        'gamma': {'username': 'lb-main', 'password': 'main-secret'}}))
    assert scope_etcd_options(config, 'main') == etcd
    beta = scope_etcd_options(config, 'beta')
    assert beta == {'endpoints': etcd['endpoints'], 'ca_cert': '/etc/ca.crt', 'username': 'lb-beta',
                    'password_file': '/etc/beta.pw'}


def test_scopes_with_the_same_credentials_share_one_client(tmp_path):
    password_file = tmp_path / 'beta.pw'
    password_file.write_text('beta-secret\n')
    etcd = {'endpoints': ['https://10.0.0.1:2379'], 'username': 'lb-main', 'password': 'main-secret'}
    config = load_config(minimal(etcd=etcd, scopes=['main', 'beta', 'gamma'], credentials={
        'beta': {'username': 'lb-beta', 'password_file': str(password_file)},
        'gamma': {'username': 'lb-main', 'password': 'main-secret'}}))
    clients = etcd_clients_from_config(config)
    assert clients['main'] is clients['gamma'] and clients['beta'] is not clients['main']
    assert (clients['main'].username, clients['beta'].username) == ('lb-main', 'lb-beta')
    assert clients['beta']._password == 'beta-secret'


# ------------------------------------------------------------------ /metrics and /status

def test_histogram_is_cumulative():
    histogram = Histogram((0.1, 1.0))
    for value in (0.05, 0.5, 3.0):
        histogram.observe(value)
    assert histogram.lines('x') == ['x_bucket{le="0.1"} 1', 'x_bucket{le="1"} 2', 'x_bucket{le="+Inf"} 3',
                                    'x_sum 3.55', 'x_count 3']


def test_metrics_text_and_the_http_endpoints():
    metrics = Metrics()
    metrics.inc('reloads')
    metrics.inc('leader_changes', 2)
    metrics.observe_convergence(0.04)
    metrics.set_etcd_up(True)
    text = metrics.text()
    for line in ('pgha_lb_reloads_total 1', 'pgha_lb_leader_changes_total 2', 'pgha_lb_etcd_up 1',
                 'pgha_lb_convergence_seconds_bucket{le="0.05"} 1', 'pgha_lb_convergence_seconds_count 1',
                 '# TYPE pgha_lb_convergence_seconds histogram', '# TYPE pgha_lb_etcd_errors_total counter'):
        assert line in text.splitlines()
    server = start_status_server('127.0.0.1', 0, lambda: {'etcd': {'ok': True}}, metrics)
    try:
        base = 'http://127.0.0.1:%d' % server.server_address[1]
        with urllib.request.urlopen(base + '/status', timeout=5) as answer:
            assert answer.headers['Content-Type'] == 'application/json'
            assert json.loads(answer.read()) == {'etcd': {'ok': True}}
        with urllib.request.urlopen(base + '/metrics', timeout=5) as answer:
            assert answer.read().decode() == metrics.text()
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(base + '/', timeout=5)
        assert err.value.code == 404
    finally:
        server.shutdown()
        server.server_close()
