"""pgha.cluster.haproxy_config against real etcd and the real ``haproxy -c``.

Patroni-shaped keys (as tests/unit/test_patroni_state.py and the fixtures show them) and LB policies are
written to etcd; the module must write what the one renderer makes of them, validated by HAProxy first,
and leave the old file untouched whenever anything is wrong.
"""

import json
import os
import secrets
import stat

import pytest

from ansible_collections.pgha.cluster.plugins.module_utils.haproxy_config import render_haproxy_config
from ansible_collections.pgha.cluster.plugins.module_utils.lb_policy import policy_key
from ansible_collections.pgha.cluster.plugins.module_utils.patroni_state import parse_cluster_state

import etcd_harness
from collection_client import client_for
from module_runner import connection_args, run_module
from patroni_standin import member_json

HAPROXY = '/usr/sbin/haproxy'
NAMESPACE = '/pgha-lb-module'
OLD_TEXT = '# the previous configuration\n'

pytestmark = pytest.mark.skipif(not os.access(HAPROXY, os.X_OK),
                                reason='%s not found (Debian package haproxy)' % HAPROXY)


@pytest.fixture(scope='module')
def pki(tmp_path_factory):
    return etcd_harness.Pki(str(tmp_path_factory.mktemp('pki')), [('pg1', '127.0.0.1', 'pg1')])


def cluster_keys(scope, leader='pg1', roles=(('pg1', 'primary'), ('pg2', 'replica'))):
    prefix = '%s/%s/' % (NAMESPACE, scope)
    keys = {prefix + 'leader': leader} if leader else {}
    for index, (name, role) in enumerate(roles):
        keys[prefix + 'members/' + name] = member_json(15432 + index, 18008 + index, role)
    return keys


@pytest.fixture
def cluster(etcd_plain):
    """A fresh scope with pg1 primary and pg2 replica; writes its keys, deletes them afterwards."""
    scope = 'lbm%s' % secrets.token_hex(3)
    client = client_for(etcd_plain)
    keys = cluster_keys(scope)
    for key, value in keys.items():
        client.put(key, value)
    yield {'scope': scope, 'client': client, 'keys': keys}
    client.delete_prefix('%s/%s/' % (NAMESPACE, scope))
    client.delete(policy_key(scope))
    client.close()


def settings(tmp_path, **extra):
    values = {'admin_socket': str(tmp_path / 'admin.sock'), 'server_state_file': str(tmp_path / 'state'),
              'user': '', 'group': '', 'admin_socket_group': '', 'log_target': ''}
    values.update(extra)
    return values


def haproxy_config(etcd, scopes, tmp_path, pki, check_mode=False, diff=False, **options):
    args = connection_args(etcd)
    args.update(namespace=NAMESPACE, scopes=scopes, ca_file=pki.ca_cert, dest=str(tmp_path / 'haproxy.cfg'),
                settings=settings(tmp_path))
    args.update(options)
    return run_module('haproxy_config', args, check_mode=check_mode, diff=diff)


def expected_text(scope, keys, tmp_path, pki, policy=None):
    state = parse_cluster_state(keys, NAMESPACE, scope)
    none = dict((name, None) for name in ('user', 'group', 'admin_socket_group', 'log_target'))
    return render_haproxy_config([{'scope': scope, 'state': state, 'policy': policy, 'ca_file': pki.ca_cert}],
                                 dict(settings(tmp_path), **none))


def write_old(tmp_path):
    path = tmp_path / 'haproxy.cfg'
    path.write_text(OLD_TEXT)
    return path


def only_config_files(tmp_path):
    """Nothing but haproxy.cfg (and backups) is left in the directory: no staged temporary file."""
    return sorted(name for name in os.listdir(str(tmp_path)) if name.startswith('.haproxy.cfg'))


def test_writes_the_rendered_config_then_is_idempotent(etcd_plain, cluster, tmp_path, pki):
    scope = cluster['scope']
    result = haproxy_config(etcd_plain, [scope], tmp_path, pki, mode='0640')
    assert not result.get('failed'), result
    assert result['changed'] is True
    text = (tmp_path / 'haproxy.cfg').read_text()
    assert text == expected_text(scope, cluster['keys'], tmp_path, pki)
    assert stat.S_IMODE(os.stat(str(tmp_path / 'haproxy.cfg')).st_mode) == 0o640
    backends = result['backends'][scope]
    assert backends['primary_member'] == 'pg1'
    primary = dict((s['name'], s['enabled']) for s in backends['backends']['primary']['servers'])
    assert primary == {'pg1': True, 'pg2': False}
    assert result['policies'][scope]['ports'] == {'primary': 5000, 'replicas': 5001, 'read_any': None}
    json.dumps(result)
    again = haproxy_config(etcd_plain, [scope], tmp_path, pki, mode='0640')
    assert again['changed'] is False, again
    assert only_config_files(tmp_path) == []


def test_policy_from_etcd_two_clusters_backup_and_diff(etcd_plain, cluster, tmp_path, pki):
    scope = cluster['scope']
    other = scope + 'b'
    client = cluster['client']
    for key, value in cluster_keys(other, leader='pg2', roles=(('pg1', 'replica'), ('pg2', 'primary'))).items():
        client.put(key, value)
    try:
        client.put(policy_key(other), json.dumps({'ports': {'primary': 6000, 'replicas': None}}))
        write_old(tmp_path)
        result = haproxy_config(etcd_plain, [scope, other], tmp_path, pki, backup=True, diff=True)
        assert not result.get('failed'), result
        assert result['changed'] is True
        assert result['diff']['before'] == OLD_TEXT
        text = (tmp_path / 'haproxy.cfg').read_text()
        assert result['diff']['after'] == text
        assert 'listen pgha_%s_primary\n    bind :6000' % other in text
        assert 'pgha_%s_replicas' % other not in text
        assert result['backends'][other]['primary_member'] == 'pg2'
        with open(result['backup_file']) as handle:
            assert handle.read() == OLD_TEXT
    finally:
        client.delete_prefix('%s/%s/' % (NAMESPACE, other))
        client.delete(policy_key(other))


def test_check_mode_reports_and_writes_nothing(etcd_plain, cluster, tmp_path, pki):
    path = write_old(tmp_path)
    result = haproxy_config(etcd_plain, [cluster['scope']], tmp_path, pki, check_mode=True, diff=True)
    assert not result.get('failed'), result
    assert result['changed'] is True
    assert result['diff']['before'] == OLD_TEXT
    assert 'listen pgha_%s_primary' % cluster['scope'] in result['diff']['after']
    assert path.read_text() == OLD_TEXT
    assert only_config_files(tmp_path) == []


def test_invalid_policy_fails_naming_field_and_key(etcd_plain, cluster, tmp_path, pki):
    scope = cluster['scope']
    cluster['client'].put(policy_key(scope), json.dumps({'ports': {'primary': 'x'}}))
    path = write_old(tmp_path)
    result = haproxy_config(etcd_plain, [scope], tmp_path, pki)
    assert result['failed'] is True
    assert 'policy.ports.primary: must be an integer' in result['msg']
    assert scope in result['msg'] and policy_key(scope) in result['msg']
    assert path.read_text() == OLD_TEXT


def test_config_haproxy_rejects_leaves_the_old_file(etcd_plain, cluster, tmp_path, pki):
    path = write_old(tmp_path)
    # A CA file that does not exist: the renderer cannot know, HAProxy refuses to load it.
    result = haproxy_config(etcd_plain, [cluster['scope']], tmp_path, pki, ca_file=str(tmp_path / 'missing-ca.crt'),
                            backup=True)
    assert result['failed'] is True
    assert 'HAProxy rejected the new configuration' in result['msg'], result['msg']
    assert 'missing-ca.crt' in result['msg']
    assert 'left untouched' in result['msg']
    assert path.read_text() == OLD_TEXT
    assert only_config_files(tmp_path) == []
    assert sorted(os.listdir(str(tmp_path))) == ['haproxy.cfg']


def test_etcd_unreachable_fails_and_leaves_the_old_file(etcd_plain, cluster, tmp_path, pki):
    path = write_old(tmp_path)
    port = etcd_harness.pick_free_ports('127.0.0.1', 1)[0]
    result = haproxy_config(etcd_plain, [cluster['scope']], tmp_path, pki, endpoints=['127.0.0.1:%d' % port],
                            timeout=1.0)
    assert result['failed'] is True
    assert result['error_type'] == 'EtcdUnreachable', result
    assert '127.0.0.1:%d' % port in result['msg']
    assert path.read_text() == OLD_TEXT


def test_bad_settings_fail_before_reading_etcd(etcd_plain, cluster, tmp_path, pki):
    result = haproxy_config(etcd_plain, [cluster['scope']], tmp_path, pki,
                            settings=settings(tmp_path, stats_address='10.0.0.1'))
    assert result['failed'] is True
    assert 'settings.stats_address' in result['msg']
    assert not (tmp_path / 'haproxy.cfg').exists()
