"""pgha.cluster.patroni_config against real Patroni 4.1 + PostgreSQL 15 nodes registered in the TLS + RBAC
etcd (scope demo), with PATCH /config behind the REST API's basic auth.

The module reads etcd as the read-only lb-demo user; the config key is checked independently with the real
etcdctl (its value and its revision, so "nothing changed" means not even a rewrite). One cluster serves the
whole file; the test that leaves a restart pending comes last.
"""

import base64
import json
import time

import pytest

from module_runner import connection_args, run_module


@pytest.fixture(scope='module')
def cluster(demo_cluster):
    return demo_cluster


def patroni_config(cluster, check_mode=False, diff=False, **options):
    args = connection_args(cluster.etcd, user='lb-demo')
    args.update(scope='demo', rest_username=cluster.restapi_user, rest_password=cluster.restapi_password)
    args.update(options)
    return run_module('patroni_config', args, check_mode=check_mode, diff=diff)


def ok(result, changed):
    assert not result.get('failed'), result
    assert result['changed'] is changed, result
    return result


def stored(cluster):
    """(config as data, mod_revision) of the config key, read with the real etcdctl as root."""
    out = json.loads(cluster.etcd.etcdctl('get', cluster.prefix + 'config', '-w', 'json'))
    kv = out['kvs'][0]
    return json.loads(base64.b64decode(kv['value'])), kv['mod_revision']


def test_read_only_returns_the_stored_config(cluster):
    config, _revision = stored(cluster)
    result = ok(patroni_config(cluster), changed=False)
    assert result['config'] == config and result['changes'] == []
    assert (config['ttl'], config['loop_wait'], config['retry_timeout']) == (20, 2, 3)


def test_patch_check_mode_diff_idempotence_and_null_removal(cluster):
    before, revision = stored(cluster)
    settings = {'retry_timeout': 4, 'postgresql': {'parameters': {'work_mem': '8MB'}}}

    preview = ok(patroni_config(cluster, check_mode=True, diff=True, settings=settings), changed=True)
    assert preview['changes'] == ['postgresql.parameters.work_mem', 'retry_timeout']
    assert preview['diff']['before'] == before
    assert preview['diff']['after']['retry_timeout'] == 4
    assert preview['diff']['after']['postgresql']['parameters']['work_mem'] == '8MB'
    assert stored(cluster) == (before, revision)  # check mode sent nothing

    result = ok(patroni_config(cluster, diff=True, settings=settings), changed=True)
    after, new_revision = stored(cluster)
    assert new_revision > revision
    assert result['config'] == after == preview['diff']['after'] == result['diff']['after']
    # Everything not in the patch is kept, nested objects included.
    assert after['postgresql']['parameters']['max_connections'] == before['postgresql']['parameters'][
        'max_connections']
    assert after['postgresql']['use_slots'] is True
    # Every member runs with it (Patroni's own view of the dynamic config).
    code, data = cluster.node(1).rest('/config')
    assert code == 200 and data == after

    again = ok(patroni_config(cluster, diff=True, settings=settings), changed=False)
    assert again['changes'] == [] and again['diff']['before'] == again['diff']['after'] == after
    assert stored(cluster)[1] == new_revision

    removed = ok(patroni_config(cluster, settings={'retry_timeout': 3,
                                                   'postgresql': {'parameters': {'work_mem': None}}}),
                 changed=True)
    assert removed['changes'] == ['postgresql.parameters.work_mem', 'retry_timeout']
    final, final_revision = stored(cluster)
    assert 'work_mem' not in final['postgresql']['parameters'] and final['retry_timeout'] == 3
    assert final == before
    ok(patroni_config(cluster, settings={'postgresql': {'parameters': {'work_mem': None}}}), changed=False)
    assert stored(cluster)[1] == final_revision


@pytest.mark.parametrize('settings, message', [
    ({'loop_wait': 15}, 'loop_wait + 2 * retry_timeout must not exceed ttl: 15 + 2 * 3 > 20'),
    ({'ttl': 10}, 'ttl must be at least 20 (Patroni would silently raise 10 to 20)'),
    ({'retry_timeout': 'ten'}, "retry_timeout must be an integer, not the string 'ten'"),
    ({'synchronous_mode_strict': True}, 'synchronous_mode_strict needs synchronous_mode'),
])
def test_invalid_settings_are_refused_before_anything_is_sent(cluster, settings, message):
    before = stored(cluster)
    result = patroni_config(cluster, settings=settings)
    assert result['failed'] is True, result
    assert result['msg'].startswith("the dynamic configuration of 'demo' would be invalid: ")
    assert message in result['msg'] and result['msg'].endswith('; nothing was changed')
    assert stored(cluster) == before


def test_wrong_rest_password_and_bad_api_url(cluster):
    before = stored(cluster)
    leader = cluster.wait_leader()
    result = patroni_config(cluster, settings={'loop_wait': 3}, rest_password='not-the-password')
    assert result['failed'] is True
    assert result['msg'] == ('Patroni REST API at %s/config refused the request (HTTP 401): check rest_username and '
                             'rest_password' % leader.api_url)
    assert 'not-the-password' not in json.dumps(result)
    result = patroni_config(cluster, settings={'loop_wait': 3}, api_url='ftp://nowhere')
    assert result['failed'] is True and "invalid Patroni REST API URL 'ftp://nowhere'" in result['msg']
    assert stored(cluster) == before

    # A replica's API works as well as the leader's: Patroni writes the key from any member.
    replica = [n for n in cluster.nodes if n is not leader][0]
    ok(patroni_config(cluster, settings={'loop_wait': 3}, api_url=replica.api_url), changed=True)
    assert stored(cluster)[0]['loop_wait'] == 3
    ok(patroni_config(cluster, settings={'loop_wait': 2}), changed=True)


def test_parameter_needing_a_restart_shows_as_pending_restart(cluster):
    before = stored(cluster)[0]
    assert before['postgresql']['parameters']['max_connections'] == 30
    ok(patroni_config(cluster, settings={'postgresql': {'parameters': {'max_connections': 40}}}), changed=True)

    info = None
    deadline = time.monotonic() + 6 * cluster.loop_wait + 10
    while time.monotonic() < deadline:
        args = connection_args(cluster.etcd, user='lb-demo')
        info = run_module('patroni_info', dict(args, scope='demo'))
        members = info['cluster']['members']
        if len(members) == 2 and all(m['pending_restart'] for m in members):
            break
        time.sleep(0.5)
    members = {m['name']: m for m in info['cluster']['members']}
    assert set(members) == set(n.name for n in cluster.nodes)
    for member in members.values():
        assert member['pending_restart'] is True, member
        assert 'max_connections' in json.dumps(member['pending_restart_reason']), member
    # Nothing was restarted: PostgreSQL still runs with the old value.
    assert cluster.wait_leader().execute('SHOW max_connections')[0][0] == '30'
