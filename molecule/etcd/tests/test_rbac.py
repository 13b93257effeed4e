"""RBAC as the etcd role set it up for the scope `main`.

patroni-main may read and write exactly /service/main/; lb-main may only read
/service/main/ and /pgha/lb/main/; a request without credentials gets nothing;
root may do everything. Requests go through the collection's own client (with
the pki role's CN-less client certificates), and a few are repeated with
etcdctl inside a member.
"""

import re
import uuid

import pytest

from ansible_collections.pgha.cluster.plugins.module_utils.etcd_errors import EtcdNotFound, EtcdPermissionDenied

USERS = {'patroni': ('patroni-main', 'patroni'), 'lb': ('lb-main', 'lb-agent'), 'anonymous': (None, 'admin'),
         'root': ('root', 'admin')}

# Key templates ({id} makes them unique to the run); each area holds a key `seed` written by root beforehand.
AREAS = {
    'own': '/service/main/{id}/',
    'other scope': '/service/other/{id}/',
    'prefix lookalike': '/service/main-{id}/',  # shares the text "/service/main" but not the prefix "/service/main/"
    'lb policy': '/pgha/lb/main/{id}/',
    'other lb policy': '/pgha/lb/other/{id}/',
    'top level': '/pgha-verify-{id}/',
}

# (user, area): (may read, may write)
ALLOWED = {
    ('patroni', 'own'): (True, True),
    ('lb', 'own'): (True, False),
    ('lb', 'lb policy'): (True, False),
}
CASES = [(user, area) for user in USERS for area in AREAS]


@pytest.fixture(scope='module')
def areas(scenario):
    """{area: key prefix}, each seeded by root; removed afterwards."""
    run_id = uuid.uuid4().hex[:8]
    prefixes = {area: template.format(id=run_id) for area, template in AREAS.items()}
    root = scenario.client()
    for prefix in prefixes.values():
        root.put(prefix + 'seed', 'seeded by root')
    yield prefixes
    for prefix in prefixes.values():
        root.delete_prefix(prefix)
    root.close()


@pytest.fixture(scope='module')
def clients(scenario):
    made = {who: scenario.client(user=user, cert=cert) for who, (user, cert) in USERS.items()}
    yield made
    for client in made.values():
        client.close()


def _allowed(user, area):
    if user == 'root':
        return True, True
    return ALLOWED.get((user, area), (False, False))


@pytest.mark.parametrize('user,area', CASES, ids=['%s-%s' % (u, a.replace(' ', '-')) for u, a in CASES])
def test_read(clients, areas, user, area):
    client = clients[user]
    key = areas[area] + 'seed'
    if _allowed(user, area)[0]:
        assert client.get(key).value == b'seeded by root'
        assert key in [kv.key.decode() for kv in client.get_prefix(areas[area])]
    else:
        with pytest.raises(EtcdPermissionDenied):
            client.get(key)
        with pytest.raises(EtcdPermissionDenied):
            client.get_prefix(areas[area])


@pytest.mark.parametrize('user,area', CASES, ids=['%s-%s' % (u, a.replace(' ', '-')) for u, a in CASES])
def test_write_and_delete(clients, areas, user, area):
    client = clients[user]
    root = clients['root']
    key = areas[area] + 'written-by-' + user
    if _allowed(user, area)[1]:
        client.put(key, 'x')
        assert root.get(key).value == b'x'
        assert client.delete(key).deleted == 1
        assert root.get(key) is None
    else:
        with pytest.raises(EtcdPermissionDenied):
            client.put(key, 'x')
        assert root.get(key) is None, '%s was written although the write was refused' % key
        with pytest.raises(EtcdPermissionDenied):
            client.delete(areas[area] + 'seed')
        assert root.get(areas[area] + 'seed').value == b'seeded by root'


@pytest.mark.parametrize('user', sorted(u for u in USERS if u != 'root'))
def test_only_root_reads_the_whole_keyspace_and_manages_auth(clients, user):
    with pytest.raises(EtcdPermissionDenied):
        clients[user].range('/', prefix=True, count_only=True)
    with pytest.raises(EtcdPermissionDenied):
        clients[user].range('', prefix=True, count_only=True)  # every key
    # Without a token, etcd checks auth-management calls against the user named by the CN of the certificate
    # the gateway presents (the member's server certificate): no such user exists, so etcd says "not found".
    with pytest.raises((EtcdPermissionDenied, EtcdNotFound)) as refused:
        clients[user].user_list()
    assert re.search('permission denied|user name not found', str(refused.value)), refused.value


def test_root_reads_the_whole_keyspace_and_manages_auth(clients, areas):
    root = clients['root']
    assert root.range('', prefix=True, count_only=True).count >= len(areas)
    assert {'root', 'patroni-main', 'lb-main'} <= set(root.user_list())
    assert root.user_get('patroni-main') == ['patroni-main']
    assert root.user_get('lb-main') == ['lb-main']
    assert [(p.perm_type, p.key, p.range_end) for p in root.role_get('patroni-main')] == [
        ('READWRITE', b'/service/main/', b'/service/main0')]
    assert sorted((p.perm_type, p.key, p.range_end) for p in root.role_get('lb-main')) == [
        ('READ', b'/pgha/lb/main/', b'/pgha/lb/main0'), ('READ', b'/service/main/', b'/service/main0')]


def test_etcdctl_agrees(scenario, areas):
    """The same rules over etcd's gRPC API, from inside a member."""
    host = scenario.members[1]
    own, other, lb_policy = areas['own'], areas['other scope'], areas['lb policy']

    proc = scenario.etcdctl(host, ['put', own + 'by-etcdctl', 'y'], user='patroni-main')
    assert proc.returncode == 0 and proc.stdout.strip() == 'OK', proc.stdout + proc.stderr
    proc = scenario.etcdctl(host, ['get', '--print-value-only', own + 'by-etcdctl'], user='patroni-main')
    assert proc.returncode == 0 and proc.stdout.strip() == 'y', proc.stdout + proc.stderr

    for user, args in (('patroni-main', ['put', other + 'by-etcdctl', 'y']),
                       ('patroni-main', ['get', other + 'seed']),
                       ('lb-main', ['put', own + 'by-etcdctl', 'z']),
                       ('lb-main', ['put', lb_policy + 'by-etcdctl', 'z']),
                       (None, ['get', own + 'seed'])):
        proc = scenario.etcdctl(host, args, user=user)
        assert proc.returncode != 0 and 'permission denied' in proc.stderr, (user, args, proc.stdout, proc.stderr)

    proc = scenario.etcdctl(host, ['get', '--print-value-only', lb_policy + 'seed'], user='lb-main')
    assert proc.returncode == 0 and proc.stdout.strip() == 'seeded by root', proc.stdout + proc.stderr
    proc = scenario.etcdctl(host, ['get', '--print-value-only', own + 'by-etcdctl'], user='root')
    assert proc.stdout.strip() == 'y', proc.stdout + proc.stderr
