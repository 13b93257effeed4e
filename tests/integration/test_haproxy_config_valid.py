"""The real HAProxy (Debian's 2.6) on the rendered configuration.

1. ``haproxy -c`` accepts every golden file of tests/unit/golden/haproxy
   (their CA paths pointed at real files in a temporary directory).
2. One real HAProxy, started from a rendered configuration on free loopback
   ports, health-checks tiny local stand-ins for Patroni members over HTTPS
   verified with the cluster CA: the member answering ``/primary`` is UP in
   the primary backend, a member answering 503 and one whose certificate
   comes from another CA are DOWN, and a TCP connection through the primary
   port reaches the primary's stand-in. The servers are moved between states
   through the runtime API, as the load balancer agent does.
"""

import concurrent.futures
import glob
import os
import re
import shutil
import subprocess
import time

import pytest

from ansible_collections.pgha.cluster.plugins.module_utils.haproxy_config import render_haproxy_config
from ansible_collections.pgha.cluster.plugins.module_utils.patroni_state import parse_cluster_state

import etcd_harness
from patroni_standin import (PRIMARY_PATHS, REPLICA_PATHS, admin, member_json, read_banner, start_api, start_banner,
                             stat_rows, stop_process, stop_servers, wait_for)

HAPROXY = '/usr/sbin/haproxy'
HERE = os.path.dirname(os.path.abspath(__file__))
GOLDEN_DIR = os.path.join(os.path.dirname(HERE), 'unit', 'golden', 'haproxy')
GOLDEN_CA_DIR = '/etc/haproxy/pgha/'

pytestmark = pytest.mark.skipif(not os.access(HAPROXY, os.X_OK),
                                reason='%s not found (Debian package haproxy)' % HAPROXY)


@pytest.fixture(scope='module')
def pki(tmp_path_factory):
    directory = str(tmp_path_factory.mktemp('pki'))
    return etcd_harness.Pki(directory, [('pg1', '127.0.0.1', 'pg1'), ('pg2', '127.0.0.1', 'pg2')])


def golden_files():
    return sorted(glob.glob(os.path.join(GOLDEN_DIR, '*.cfg')))


def test_there_are_golden_files():
    assert len(golden_files()) >= 10


def haproxy_check(path, ca_cert, directory):
    """(returncode, output) of ``haproxy -c`` on one golden file, its CA paths made real."""
    with open(path, encoding='utf-8') as handle:
        text = handle.read()
    ca_dir = os.path.join(directory, os.path.basename(path)[:-len('.cfg')]) + '/'
    os.makedirs(ca_dir)
    for name in set(re.findall(re.escape(GOLDEN_CA_DIR) + r'([^\s/]+)', text)):
        shutil.copy(ca_cert, ca_dir + name)
    config = ca_dir + 'haproxy.cfg'
    with open(config, 'w', encoding='utf-8') as handle:
        handle.write(text.replace(GOLDEN_CA_DIR, ca_dir))
    done = subprocess.run(offline_names(text, ca_dir) + [HAPROXY, '-c', '-f', config], capture_output=True,
                          text=True, timeout=60, check=False)
    return done.returncode, done.stdout + done.stderr


def offline_names(text, directory):
    """A command prefix under which the config's host names resolve from a hosts file of the test's own.

    HAProxy resolves every server address when it checks a file; the golden files use example names, and
    asking a DNS server for them costs a resolver timeout each on a machine without one. As root, a
    private mount namespace gets /etc/hosts bind-mounted from a file that maps them to a TEST-NET address.
    """
    names = sorted(set(re.findall(r'^\s*server \S+ ([A-Za-z][A-Za-z0-9.-]*):\d+', text, re.M))
                   | set(re.findall(r'\baddr ([A-Za-z][A-Za-z0-9.-]*)\b', text)))
    if not names or os.geteuid() != 0 or not shutil.which('unshare'):
        return []
    hosts = os.path.join(directory, 'hosts')
    with open(hosts, 'w', encoding='utf-8') as handle:
        handle.write('127.0.0.1 localhost\n192.0.2.10 %s\n' % ' '.join(names))
    return ['unshare', '--mount', '--propagation', 'private', '--', 'sh', '-c',
            'mount --bind "$0" /etc/hosts && exec "$@"', hosts]


@pytest.fixture(scope='module')
def checked(pki, tmp_path_factory):
    """Every golden file checked at once (HAProxy starts quickly; most of a check is its start)."""
    directory = str(tmp_path_factory.mktemp('golden'))
    paths = golden_files()
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(paths)) as pool:
        results = pool.map(lambda p: haproxy_check(p, pki.ca_cert, directory), paths)
        return dict(zip(paths, results))


@pytest.mark.parametrize('path', golden_files(), ids=os.path.basename)
def test_haproxy_accepts_golden_file(path, checked):
    returncode, output = checked[path]
    assert returncode == 0, output
    assert 'Configuration file is valid' in output
    assert '[ALERT]' not in output


# ------------------------------------------------------------------ a live HAProxy

@pytest.fixture
def live(pki, tmp_path):
    """Three stand-in members (pg1 primary, pg2 replica, pg3 with a certificate of another CA) and HAProxy."""
    cert3 = pki.wrong_ca_server
    apis = {'pg1': start_api(pki.servers['pg1'].cert, pki.servers['pg1'].key, PRIMARY_PATHS),
            'pg2': start_api(pki.servers['pg2'].cert, pki.servers['pg2'].key, REPLICA_PATHS),
            'pg3': start_api(cert3.cert, cert3.key, ('/primary', '/replica', '/read-only'))}
    sqls = dict((name, start_banner(name.encode())) for name in apis)
    roles = {'pg1': 'primary', 'pg2': 'replica', 'pg3': 'replica'}
    keys = {'/service/live/leader': 'pg1'}
    for name in apis:
        keys['/service/live/members/' + name] = member_json(
            sqls[name].server_address[1], apis[name].server_address[1], roles[name])
    primary_port, replicas_port, stats_port = etcd_harness.pick_free_ports('127.0.0.1', 3)
    policy = {'ports': {'primary': primary_port, 'replicas': replicas_port},
              'check': {'interval_ms': 200, 'fall': 1, 'rise': 1}}
    settings = {'admin_socket': str(tmp_path / 'admin.sock'), 'server_state_file': str(tmp_path / 'state'),
                'user': None, 'group': None, 'admin_socket_group': None, 'log_target': None,
                'stats_port': stats_port, 'hard_stop_after_s': 5}
    state = parse_cluster_state(keys, '/service', 'live')
    text = render_haproxy_config([{'scope': 'live', 'state': state, 'policy': policy, 'ca_file': pki.ca_cert}],
                                 settings)
    config = tmp_path / 'haproxy.cfg'
    config.write_text(text, encoding='utf-8')
    log = open(str(tmp_path / 'haproxy.log'), 'wb')
    process = subprocess.Popen([HAPROXY, '-W', '-db', '-f', str(config)], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: (os.path.exists(settings['admin_socket']), None), 'the admin socket')
        yield {'socket': settings['admin_socket'], 'primary_port': primary_port, 'replicas_port': replicas_port,
               'apis': apis, 'config': text, 'log': str(tmp_path / 'haproxy.log')}
    finally:
        stop_process(process)
        log.close()
        stop_servers(list(apis.values()) + list(sqls.values()))


def test_live_haproxy_routes_to_the_verified_primary(live):
    started = time.monotonic()
    sock = live['socket']
    primary, replicas = 'pgha_live_primary', 'pgha_live_replicas'
    # As rendered: only the leader is enabled in the primary backend, only the replica in the replicas one.
    rows = stat_rows(sock)
    assert rows[(primary, 'pg2')]['status'] == 'MAINT'
    assert rows[(replicas, 'pg1')]['status'] == 'MAINT'

    # Let the checks decide, as the agent does when it enables servers through the runtime API.
    for server in ('pg2', 'pg3'):
        assert admin(sock, 'set server %s/%s state ready' % (primary, server)).strip() == ''
    assert admin(sock, 'set server %s/pg3 state ready' % replicas).strip() == ''

    def settled():
        rows = stat_rows(sock)
        seen = dict((key, (row['status'], row['check_status'])) for key, row in rows.items() if key[1] != 'BACKEND')
        ok = (rows[(primary, 'pg1')]['status'] == 'UP' and rows[(primary, 'pg1')]['check_status'] == 'L7OK'
              and rows[(primary, 'pg2')]['status'] == 'DOWN' and rows[(primary, 'pg3')]['status'] == 'DOWN'
              and rows[(replicas, 'pg2')]['status'] == 'UP' and rows[(replicas, 'pg3')]['status'] == 'DOWN')
        return ok, seen

    seen = wait_for(settled, 'pg1 UP and pg2, pg3 DOWN in the primary backend')
    assert seen[(primary, 'pg2')][1] == 'L7STS'  # Patroni's 503
    assert seen[(primary, 'pg3')][1] == 'L6RSP'  # TLS refused: certificate from another CA
    assert seen[(replicas, 'pg3')][1] == 'L6RSP'
    assert live['apis']['pg3'].seen == []  # no check ever got through to the impostor

    assert read_banner(live['primary_port']) == b'pg1'
    assert read_banner(live['replicas_port']) == b'pg2'
    assert any(path == '/primary' for path in live['apis']['pg1'].seen)
    assert any(path == '/replica?lag=1048576' for path in live['apis']['pg2'].seen)

    state = admin(sock, 'show servers state %s' % primary)
    assert re.search(r'^\d+ %s \d+ pg1 127\.0\.0\.1 2 0 ' % primary, state, re.M), state
    assert time.monotonic() - started < 25
