"""haproxy_config: the rendered haproxy.cfg, compared with golden files per scenario.

Each scenario's output is kept in tests/unit/golden/haproxy/<scenario>.cfg;
tests/integration/test_haproxy_config_valid.py runs the real HAProxy on every
one of them. After an intended change of the output, regenerate them with

    PGHA_UPDATE_GOLDEN=1 .venv/bin/python -m pytest -q tests/unit/test_haproxy_config.py

and review the diff. The CA files named in them live under GOLDEN_CA_DIR,
which the integration test replaces with a directory holding real files.
"""

import json
import os
import random

import pytest

from ansible_collections.pgha.cluster.plugins.module_utils.haproxy_config import (
    SETTINGS_DEFAULTS,
    LbCluster,
    LbSettings,
    render_haproxy_config,
)
from ansible_collections.pgha.cluster.plugins.module_utils.lb_policy import LbPolicyError, desired_backends
from ansible_collections.pgha.cluster.plugins.module_utils.patroni_state import parse_cluster_state

# The fixture helpers of the Patroni parser's tests (tests/unit is on sys.path under pytest).
from patroni_fixtures import F302, F415, F415_SYNC, LSN_415, load_keys

HERE = os.path.dirname(os.path.abspath(__file__))
GOLDEN_DIR = os.path.join(HERE, 'golden', 'haproxy')
GOLDEN_CA_DIR = '/etc/haproxy/pgha/'


def edit(keys, scope, name, **changes):
    key = '/service/%s/members/%s' % (scope, name)
    data = json.loads(keys[key])
    data.update(changes)
    keys[key] = json.dumps(data)


def k415(name=F415):
    return load_keys(name)


def tls415(scope='anchor', domain='db.example.net'):
    """The 4.1.5 fixture as our roles deploy it: REST API over HTTPS, DNS names (optionally another scope)."""
    keys = {}
    for key, value in k415().items():
        if key.startswith('/service/anchor/members/'):
            data = json.loads(value)
            host = '%s.%s' % (key.rsplit('/', 1)[1], domain)
            data['conn_url'] = 'postgres://%s:5432/postgres' % host
            data['api_url'] = 'https://%s:8008/patroni' % host
            value = json.dumps(data)
        keys[key.replace('/service/anchor/', '/service/%s/' % scope)] = value
    return keys


def state(keys, scope='anchor'):
    return parse_cluster_state(keys, '/service', scope)


def ca(scope):
    return '%s%s-ca.crt' % (GOLDEN_CA_DIR, scope)


def cluster(keys, scope='anchor', policy=None, ca_file=True):
    return {'scope': scope, 'state': state(keys, scope), 'policy': policy,
            'ca_file': ca(scope) if ca_file else None}


# ------------------------------------------------------------------ scenarios

def _fixture_415():
    return [cluster(k415(), ca_file=False)], None


def _fixture_415_sync_read_any():
    return [cluster(k415(F415_SYNC), policy={'ports': {'read_any': 5002}},
                    ca_file=False)], None


def _legacy_master_302():
    return [cluster(load_keys(F302), 'legacy', ca_file=False)], None


def _tls_default():
    return [cluster(tls415())], None


def _no_leader():
    keys = tls415()
    del keys['/service/anchor/leader']
    return [cluster(keys)], None


def _leader_not_running():
    keys = tls415()
    edit(keys, 'anchor', 'anc3', state='stopped')
    return [cluster(keys, policy={'ports': {'read_any': 5002}})], None


def _replicas_lagging():
    keys = tls415()
    for name in ('anc1', 'anc2'):
        edit(keys, 'anchor', name, replay_lsn=LSN_415 - 5000000, xlog_location=LSN_415 - 5000000)
    return [cluster(keys)], None


def _noloadbalance():
    keys = tls415()
    edit(keys, 'anchor', 'anc2', tags={'noloadbalance': True, 'nofailover': True})
    return [cluster(keys)], None


def _invalid_member():
    keys = tls415()
    keys['/service/anchor/members/anc2'] = '{"conn_url": "postgres://anc2'
    keys['/service/anchor/members/anc4'] = json.dumps({'state': 'running', 'role': 'replica'})
    return [cluster(keys)], None


def _two_clusters():
    other = load_keys(F302)
    edit(other, 'legacy', 'leg1', api_url='https://127.0.0.1:8008/patroni')
    return [cluster(other, 'legacy', policy={'ports': {'primary': 5100, 'replicas': 5101, 'read_any': 5102}}),
            cluster(tls415(), 'anchor', policy={'ports': {'read_any': 5002}})], None


def _drained_weights():
    policy = {'drain': ['anc1'], 'weights': {'anc2': 50, 'anc3': 10}, 'balance': 'leastconn',
              'ports': {'read_any': 5002}, 'max_connections': 90,
              'check': {'interval_ms': 1500, 'fall': 2, 'rise': 1}, 'max_replica_lag_bytes': 16777216}
    return [cluster(tls415(), policy=policy)], None


def _primary_reads_fallback():
    keys = tls415()
    edit(keys, 'anchor', 'anc1', replay_lsn=LSN_415 - 5000000, xlog_location=LSN_415 - 5000000)
    edit(keys, 'anchor', 'anc2', state='starting')
    return [cluster(keys, policy={'primary_reads_fallback': True})], None


def _stats_auth():
    settings = {'stats_address': '0.0.0.0', 'stats_port': 7001, 'stats_user': 'admin',
                'stats_password': 's3cr#t"pass', 'bind_address': '10.0.0.10', 'hard_stop_after_s': 600,
                'admin_socket': '/run/haproxy/pgha-admin.sock', 'server_state_file': '/var/lib/haproxy/pgha.state'}
    return [cluster(tls415())], settings


def _ip_addresses():
    keys = tls415()
    edit(keys, 'anchor', 'anc1', conn_url='postgres://10.0.0.11:5432/postgres',
         api_url='https://10.0.0.11:8008/patroni')
    edit(keys, 'anchor', 'anc2', conn_url='postgres://[fd00::12]:5433/postgres',
         api_url='https://[fd00::12]:8008/patroni')
    edit(keys, 'anchor', 'anc3', conn_url='postgres://anc3.db.example.net:5432/postgres',
         api_url='https://10.0.1.13:8008/patroni')
    return [cluster(keys)], {'bind_address': '::', 'stats_address': '::1'}


SCENARIOS = {
    'fixture-4.1.5': _fixture_415,
    'fixture-4.1.5-sync-read-any': _fixture_415_sync_read_any,
    'legacy-master-3.0.2': _legacy_master_302,
    'tls-default': _tls_default,
    'no-leader': _no_leader,
    'leader-not-running': _leader_not_running,
    'replicas-lagging': _replicas_lagging,
    'noloadbalance': _noloadbalance,
    'invalid-member': _invalid_member,
    'two-clusters': _two_clusters,
    'drained-weights': _drained_weights,
    'primary-reads-fallback': _primary_reads_fallback,
    'stats-auth': _stats_auth,
    'ip-addresses': _ip_addresses,
}


def render_scenario(name):
    clusters, settings = SCENARIOS[name]()
    return render_haproxy_config(clusters, settings)


@pytest.mark.parametrize('name', sorted(SCENARIOS))
def test_golden(name):
    text = render_scenario(name)
    path = os.path.join(GOLDEN_DIR, name + '.cfg')
    if os.environ.get('PGHA_UPDATE_GOLDEN') == '1':
        os.makedirs(GOLDEN_DIR, exist_ok=True)
        with open(path, 'w', encoding='utf-8', newline='\n') as handle:
            handle.write(text)
    if not os.path.isfile(path):
        pytest.fail('golden file %s is missing: run with PGHA_UPDATE_GOLDEN=1 to write it' % path)
    with open(path, encoding='utf-8', newline='') as handle:
        assert text == handle.read()


def test_every_golden_file_has_a_scenario():
    found = sorted(f[:-len('.cfg')] for f in os.listdir(GOLDEN_DIR) if f.endswith('.cfg'))
    assert found == sorted(SCENARIOS)


# ------------------------------------------------------------------ properties of the output

def section(text, title):
    """The lines of one section (without the title), stripped."""
    lines = text.split('\n')
    start = lines.index(title) + 1
    body = []
    for line in lines[start:]:
        if not line.startswith('    '):
            break
        body.append(line.strip())
    return body


def server_lines(text, backend):
    return dict((line.split()[1], line) for line in section(text, 'listen ' + backend) if line.startswith('server '))


def test_deterministic_whatever_the_input_order():
    text = render_scenario('two-clusters')
    clusters, settings = SCENARIOS['two-clusters']()
    assert render_haproxy_config(list(reversed(clusters)), settings) == text
    keys = list(tls415().items())
    random.Random(7).shuffle(keys)
    shuffled = parse_cluster_state(keys, '/service', 'anchor')
    assert render_haproxy_config([{'scope': 'anchor', 'state': shuffled, 'ca_file': ca('anchor')}]) == \
        render_scenario('tls-default')


def test_shape_of_the_file():
    text = render_scenario('tls-default')
    assert text.startswith('# Generated by the pgha.cluster collection')
    assert text.endswith('\n') and not text.endswith('\n\n')
    assert '\t' not in text and all(line == line.rstrip() for line in text.split('\n'))
    glob = section(text, 'global')
    assert 'master-worker' in glob
    assert 'stats socket /run/haproxy/admin.sock mode 660 level admin group haproxy' in glob
    assert 'server-state-file /var/lib/haproxy/server-state' in glob
    assert 'hard-stop-after 1800s' in glob
    assert 'log /dev/log local0' in glob
    defaults = section(text, 'defaults')
    assert 'load-server-state-from-file global' in defaults
    assert 'timeout client 1800s' in defaults and 'timeout connect 4s' in defaults
    assert section(text, 'listen stats')[1] == 'bind 127.0.0.1:7000'
    assert not any(line.startswith('stats auth') for line in section(text, 'listen stats'))


def test_primary_backend_checks_primary_over_verified_https():
    text = render_scenario('tls-default')
    body = [line for line in section(text, 'listen pgha_anchor_primary') if not line.startswith('#')]
    assert body[:5] == ['bind :5000', 'retries 0', 'option httpchk', 'http-check send meth OPTIONS uri /primary',
                        'http-check expect status 200']
    assert 'default-server inter 3s fall 3 rise 2 on-marked-down shutdown-sessions init-addr last,libc,none' in body
    servers = server_lines(text, 'pgha_anchor_primary')
    assert servers['anc3'] == (
        'server anc3 anc3.db.example.net:5432 check port 8008 check-ssl verify required ca-file '
        '/etc/haproxy/pgha/anchor-ca.crt verifyhost anc3.db.example.net check-sni anc3.db.example.net weight 100')
    assert servers['anc1'].endswith(' disabled')
    for line in servers.values():
        assert ' ssl ' not in line and 'verify none' not in line
    assert 'verify none' not in text


def test_only_read_backends_retry_a_refused_connection():
    text = render_scenario('two-clusters')
    assert 'retries 2' in section(text, 'defaults') and 'option redispatch 1' in section(text, 'defaults')
    for title in [line for line in text.split('\n') if line.startswith('listen pgha_')]:
        assert ('retries 0' in section(text, title)) == title.endswith('_primary'), title


def test_replicas_backend_checks_lag_and_balances():
    text = render_scenario('drained-weights')
    body = section(text, 'listen pgha_anchor_replicas')
    assert 'balance leastconn' in body
    assert 'http-check send meth OPTIONS uri /replica?lag=16777216' in body
    assert 'default-server inter 1500ms fall 2 rise 1 on-marked-down shutdown-sessions init-addr last,libc,none ' \
           'maxconn 90' in body
    servers = server_lines(text, 'pgha_anchor_replicas')
    assert '# anc1: disabled: drained by policy' in body
    assert servers['anc1'].endswith('weight 100 disabled')
    assert servers['anc2'].endswith('weight 50')
    read_any = section(text, 'listen pgha_anchor_read_any')
    assert 'http-check send meth OPTIONS uri /read-only?lag=16777216' in read_any
    assert server_lines(text, 'pgha_anchor_read_any')['anc3'].endswith('weight 10')


def test_fallback_backups_track_the_primary_backend():
    text = render_scenario('primary-reads-fallback')
    servers = server_lines(text, 'pgha_anchor_replicas')
    assert servers['anc3:primary'] == ('server anc3:primary anc3.db.example.net:5432 backup track '
                                       'pgha_anchor_primary/anc3 weight 100')
    assert servers['anc1:primary'].endswith(' disabled')
    assert servers['anc1'].endswith(' disabled') and servers['anc2'].endswith(' disabled')


def test_stats_with_auth_and_bind_address():
    text = render_scenario('stats-auth')
    stats = section(text, 'listen stats')
    assert 'bind 0.0.0.0:7001' in stats
    assert "stats auth 'admin:s3cr#t\"pass'" in stats
    assert section(text, 'listen pgha_anchor_primary')[0] == 'bind 10.0.0.10:5000'


def test_ip_addresses_and_ipv6():
    text = render_scenario('ip-addresses')
    servers = server_lines(text, 'pgha_anchor_primary')
    assert servers['anc1'].startswith('server anc1 10.0.0.11:5432 check port 8008 check-ssl verify required ca-file ')
    assert 'verifyhost' not in servers['anc1']
    assert servers['anc2'].startswith('server anc2 [fd00::12]:5433 check port 8008 ')
    assert ' addr 10.0.1.13 ' in servers['anc3']
    assert section(text, 'listen pgha_anchor_primary')[0] == 'bind [::]:5000'
    assert 'bind [::1]:7000' in section(text, 'listen stats')
    assert '# REST API at an IP address: certificate chain verified, name not' in text


def test_plain_http_api_is_said_so():
    text = render_scenario('fixture-4.1.5')
    assert '# REST API over plain HTTP (api_url), checked without TLS: anc1, anc2, anc3' in text
    assert 'check-ssl' not in text


def test_left_out_members_are_named():
    text = render_scenario('invalid-member')
    body = section(text, 'listen pgha_anchor_primary')
    assert any(line.startswith('# left out: anc2: invalid member key: value is not JSON') for line in body)
    assert '# left out: anc4: no usable PostgreSQL address in conn_url None' in body
    assert set(server_lines(text, 'pgha_anchor_primary')) == {'anc1', 'anc3'}


def test_two_clusters_on_one_host():
    text = render_scenario('two-clusters')
    assert text.index('listen pgha_anchor_primary') < text.index('listen pgha_legacy_primary')
    assert '# Clusters: anchor, legacy' in text
    assert section(text, 'listen pgha_legacy_replicas')[0] == 'bind :5101'
    assert 'ca-file /etc/haproxy/pgha/legacy-ca.crt' in server_lines(text, 'pgha_legacy_primary')['leg1']


def test_backends_input_renders_like_state_input():
    keys = tls415()
    policy = {'ports': {'read_any': 5002}}
    backends = desired_backends(state(keys), policy)
    from_backends = render_haproxy_config([LbCluster('anchor', policy, ca('anchor'), backends=backends)])
    assert from_backends == render_haproxy_config([cluster(keys, policy=policy)])


def test_no_clusters_renders_global_and_stats_only():
    text = render_haproxy_config([])
    assert '# Clusters: none' in text and 'listen stats' in text and 'pgha_' not in text


def test_settings_round_trip():
    settings = LbSettings.from_value({'maxconn': 100})
    assert LbSettings.from_value(settings) is settings
    assert settings.to_dict() == dict(SETTINGS_DEFAULTS, maxconn=100)


# ------------------------------------------------------------------ errors name the field

def two(policy_a=None, policy_b=None):
    return [cluster(tls415('a'), 'a', policy=policy_a), cluster(tls415('b'), 'b', policy=policy_b)]


@pytest.mark.parametrize('clusters, settings, message', [
    (two, None,
     r'clusters\[b\]\.policy\.ports\.primary: port 5000 is already used by clusters\[a\]\.policy\.ports\.primary'),
    (lambda: two({'ports': {'primary': 6000, 'replicas': 6001}}, {'ports': {'primary': 6001, 'replicas': 6002}}),
     None, r'clusters\[b\]\.policy\.ports\.primary: port 6001 is already used by clusters\[a\]\.policy\.ports\.repl'),
    (lambda: two({'ports': {'primary': 7000}}), None,
     r'clusters\[a\]\.policy\.ports\.primary: port 7000 is already used by settings\.stats_port'),
    (lambda: two({'balance': 'random'}), None, r'clusters\[a\]\.policy\.balance: must be one of'),
    (lambda: [cluster(tls415(), ca_file=False)], None,
     r'clusters\[anchor\]\.ca_file: required: Patroni serves its REST API over HTTPS'),
    (lambda: [dict(cluster(tls415()), ca_file='relative/ca.crt')], None, r'clusters\[anchor\]\.ca_file: must be'),
    (lambda: [dict(cluster(tls415()), ca_file='/etc/my ca.crt')], None, r'clusters\[anchor\]\.ca_file: must be'),
    (lambda: [cluster(tls415()), cluster(tls415())], None, r'clusters\[anchor\]: scope listed twice'),
    (lambda: [{'scope': 'anchor'}], None, r'clusters\[anchor\]: give exactly one of state and backends'),
    (lambda: [{'scope': '', 'state': None}], None, r'clusters\[0\]\.scope: must be a non-empty string'),
    (lambda: [{'scope': 'a', 'state': None, 'ca': 1}], None, r'clusters\[0\]\.ca: unknown field'),
    (lambda: ['x'], None, r'clusters\[0\]: must be an object'),
    (lambda: 'x', None, r'clusters: must be a list'),
    (lambda: [{'scope': 'other', 'backends': desired_backends(state(tls415()))}], None,
     r"clusters\[other\]\.backends: they are for scope 'anchor'"),
    (lambda: [], {'stats_address': '0.0.0.0'},
     r'settings\.stats_address: 0\.0\.0\.0 is not a loopback address: .* needs settings\.stats_user'),
    (lambda: [], {'stats_address': None}, r'settings\.stats_address: all addresses is not a loopback address'),
    (lambda: [], {'stats_address': 'localhost'}, r"settings\.stats_address: must be an IP address, got 'localhost'"),
    (lambda: [], {'stats_user': 'admin'}, r'settings\.stats_password: stats_user and stats_password go together'),
    (lambda: [], {'stats_password': 'x'}, r'settings\.stats_user: stats_user and stats_password go together'),
    (lambda: [], {'stats_user': 'a:b', 'stats_password': 'x'}, r'settings\.stats_user: must be printable ASCII'),
    (lambda: [], {'stats_user': 'a', 'stats_password': "it's"}, r'settings\.stats_password: must be printable'),
    (lambda: [], {'stats_user': 'a', 'stats_password': 'two words'}, r'settings\.stats_password: must be'),
    (lambda: [], {'stats_port': 0}, r'settings\.stats_port: must be an integer 1-65535, got 0'),
    (lambda: [], {'maxconn': True}, r'settings\.maxconn: must be an integer'),
    (lambda: [], {'admin_socket': 'admin.sock'}, r'settings\.admin_socket: must be an absolute path'),
    (lambda: [], {'server_state_file': '/var/lib/x y'}, r'settings\.server_state_file: must be an absolute path'),
    (lambda: [], {'user': 'bad user'}, r'settings\.user: must be a user or group name or null'),
    (lambda: [], {'bind_address': '1.2.3'}, r'settings\.bind_address: must be an IP address'),
    (lambda: [], {'stats': 1}, r'settings\.stats: unknown setting'),
    (lambda: [], [1], r'settings: must be an object'),
])
def test_invalid_input_names_the_field(clusters, settings, message):
    with pytest.raises(LbPolicyError, match='^' + message):
        render_haproxy_config(clusters(), settings)


def test_optional_accounts_and_log_can_be_left_out():
    settings = {'user': None, 'group': None, 'admin_socket_group': None, 'log_target': None}
    text = render_haproxy_config([cluster(tls415())], settings)
    glob = section(text, 'global')
    assert not any(line.startswith(('user ', 'group ', 'log ')) for line in glob)
    assert 'stats socket /run/haproxy/admin.sock mode 660 level admin' in glob
    assert 'log global' not in section(text, 'defaults')
