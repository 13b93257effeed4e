"""pgha.cluster.postgresql_password against a real Patroni 4.1 + PostgreSQL 15 pair (primary and replica):
psql over each node's local socket, as the postgres OS user when the tests run as root.

Whether a password works is proven by logging in with it over TCP (scram-sha-256 in the nodes' pg_hba), with
libpq: a secret the module computed has to satisfy the real client, SASLprep included.
"""

import json
import os
import shutil
import tempfile

import psycopg2
import pytest

import patroni_harness
from module_runner import run_module
from playbook_runner import run_playbook


@pytest.fixture(scope='module')
def cluster(etcd_tls):
    missing = patroni_harness.missing_requirements()
    if missing:
        pytest.skip('Patroni nodes cannot run here: %s' % '; '.join(missing))
    demo = patroni_harness.PatroniCluster(etcd_tls, 'demo', size=2)
    try:
        demo.start()
        demo.wait_running()
        yield demo
    finally:
        demo.cleanup()


@pytest.fixture
def primary(cluster):
    return cluster.wait_leader()


@pytest.fixture
def role(primary):
    """A login role made for one test, with the password 'initial-pw', dropped afterwards."""
    primary.execute("CREATE ROLE pw_test LOGIN PASSWORD 'initial-pw'")
    yield 'pw_test'
    primary.execute('DROP ROLE IF EXISTS pw_test')


def set_passwords(node, passwords, check_mode=False, diff=False, **options):
    # The bootstrap configuration sets one socket directory for every node (the first one's).
    socket_dir = node.execute('SHOW unix_socket_directories')[0][0]
    args = dict(passwords=passwords, unix_socket_dir=socket_dir, port=node.pg_port,
                login_user=node.cluster.superuser, bin_dir=patroni_harness.PG_BIN_DIR)
    args.update(options)
    return run_module('postgresql_password', args, check_mode=check_mode, diff=diff)


def stored_secret(node, role):
    return node.execute('SELECT rolpassword FROM pg_authid WHERE rolname = %s', (role,))[0][0]


def can_log_in(node, role, password):
    try:
        psycopg2.connect(host=node.ip, port=node.pg_port, dbname='postgres', user=role, password=password,
                         connect_timeout=5).close()
        return True
    except psycopg2.OperationalError as exc:
        assert 'password authentication failed' in str(exc), exc
        return False


def test_matching_passwords_change_nothing(cluster, primary):
    before = stored_secret(primary, cluster.replication_user)
    result = set_passwords(primary, {cluster.superuser: cluster.superuser_password,
                                     cluster.replication_user: cluster.replication_password})
    assert not result.get('failed'), result
    assert result['changed'] is False
    assert result['unchanged_roles'] == sorted([cluster.superuser, cluster.replication_user])
    assert result['changed_roles'] == []
    # Not even rewritten with a new salt.
    assert stored_secret(primary, cluster.replication_user) == before


def test_check_mode_and_diff_name_the_role_and_change_nothing(primary, role):
    before = stored_secret(primary, role)
    result = set_passwords(primary, {role: 'next-pw'}, check_mode=True, diff=True)
    assert result['changed'] is True and result['changed_roles'] == [role]
    assert role in result['diff']['after']
    assert 'next-pw' not in json.dumps(result) and before not in json.dumps(result)
    assert stored_secret(primary, role) == before
    assert can_log_in(primary, role, 'initial-pw')


def test_new_password_is_set_as_scram_secret_replicated_and_idempotent(cluster, primary, role):
    result = set_passwords(primary, {role: 'next-pw'}, diff=True)
    assert not result.get('failed'), result
    assert result['changed'] is True and result['changed_roles'] == [role]
    assert 'next-pw' not in json.dumps(result)
    secret = stored_secret(primary, role)
    assert secret.startswith('SCRAM-SHA-256$4096:')
    assert can_log_in(primary, role, 'next-pw')
    assert not can_log_in(primary, role, 'initial-pw')
    # The replica got the same secret through replication: the new password works there too.
    cluster.wait_caught_up()
    replica = cluster.replicas()[0]
    assert stored_secret(replica, role) == secret
    assert can_log_in(replica, role, 'next-pw')
    again = set_passwords(primary, {role: 'next-pw'})
    assert again['changed'] is False and stored_secret(primary, role) == secret


def test_password_set_by_the_server_is_recognised_and_saslprep_matches_libpq(primary, role):
    # The server hashes this one itself; the module must see it as current.
    primary.execute("ALTER ROLE pw_test PASSWORD 'p\u00e4ssw\u00f6rd'")
    assert set_passwords(primary, {role: 'p\u00e4ssw\u00f6rd'})['changed'] is False
    # Full-width letters: the module's secret must be what libpq derives after SASLprep (NFKC), so the
    # plain ASCII spelling logs in too.
    assert set_passwords(primary, {role: '\uff50\uff57\uff11\uff12'})['changed'] is True
    assert can_log_in(primary, role, 'pw12')
    assert set_passwords(primary, {role: 'pw12'})['changed'] is False


def test_on_a_replica_it_fails_and_changes_nothing(cluster, primary, role):
    cluster.wait_caught_up()
    replica = cluster.replicas()[0]
    result = set_passwords(replica, {role: 'next-pw'})
    assert result['failed'] and 'in recovery' in result['msg'] and 'nothing was changed' in result['msg']
    assert can_log_in(primary, role, 'initial-pw')


def test_a_missing_role_fails_before_any_role_is_changed(primary, role):
    before = stored_secret(primary, role)
    result = set_passwords(primary, {role: 'next-pw', 'no_such_role': 'x-pw'})
    assert result['failed'] and 'no_such_role' in result['msg'] and 'nothing was changed' in result['msg']
    assert 'next-pw' not in json.dumps(result)
    assert stored_secret(primary, role) == before


@pytest.mark.parametrize('passwords', [{'pw_test': ''}, {'': 'x-pw'}, {'pw_test': None}])
def test_empty_names_or_passwords_are_refused(primary, role, passwords):
    before = stored_secret(primary, role)
    result = set_passwords(primary, passwords)
    assert result['failed'] and 'non-empty password' in result['msg']
    assert stored_secret(primary, role) == before


def test_an_unreachable_server_gives_psqls_reason(primary):
    result = set_passwords(primary, {'pw_test': 'x-pw'}, port=1)
    assert result['failed'] and 'psql' in result['msg'] and 'port 1' in result['msg']
    assert 'x-pw' not in json.dumps(result)


# ---------------------------------------------------------------------------
# SASLprep as PostgreSQL does it, MD5 secrets, and what error messages may show
# ---------------------------------------------------------------------------

# Passwords PostgreSQL prepares differently from RFC 4013 read literally (see tests/unit/test_pg_scram.py).
TRICKY = ['p\u00e4ss\u0341', '\U0001F130x\u00e4', 'a\u200bb', '\uff41\u0221']


@pytest.mark.parametrize('password', TRICKY, ids=ascii)
def test_tricky_passwords_set_by_the_module_log_in_and_stay_unchanged(primary, role, password):
    result = set_passwords(primary, {role: password})
    assert result['changed'] is True
    assert can_log_in(primary, role, password), 'libpq cannot log in with the secret the module set'
    assert set_passwords(primary, {role: password})['changed'] is False
    assert result['hashed_with'] == 'python'  # no psycopg 3 in the test venv


@pytest.mark.parametrize('password', TRICKY, ids=ascii)
def test_tricky_passwords_set_by_the_server_are_recognised(primary, role, password):
    primary.execute('ALTER ROLE pw_test PASSWORD %s', (password,))
    assert set_passwords(primary, {role: password})['changed'] is False


def test_an_md5_secret_is_replaced_by_a_scram_secret(primary, role):
    primary.execute("SET password_encryption = 'md5'; ALTER ROLE pw_test PASSWORD 'md5-pw'")
    assert stored_secret(primary, role).startswith('md5')
    # pg_hba asks for scram-sha-256: with an MD5 secret the right password does not log in.
    assert not can_log_in(primary, role, 'md5-pw')
    result = set_passwords(primary, {role: 'md5-pw'}, diff=True)
    assert result['changed'] is True and result['changed_roles'] == [role]
    assert stored_secret(primary, role).startswith('SCRAM-SHA-256$')
    assert can_log_in(primary, role, 'md5-pw')
    assert set_passwords(primary, {role: 'md5-pw'})['changed'] is False


def _fake_psql_dir(script):
    """A directory holding a ``psql`` that runs the real one as ``script`` says; readable by the postgres user."""
    directory = tempfile.mkdtemp(prefix='pgha-fake-psql-')
    os.chmod(directory, 0o755)
    path = os.path.join(directory, 'psql')
    with open(path, 'w') as f:
        f.write('#!/bin/sh\n' + script % {'psql': os.path.join(patroni_harness.PG_BIN_DIR, 'psql')} + '\n')
    os.chmod(path, 0o755)
    return directory


@pytest.mark.parametrize('script', [
    '%(psql)s "$@"\nexit 1',                 # psql answers, then fails: its output is all there is to show
    '%(psql)s "$@"\necho not-json',          # an answer the module cannot read
], ids=['fails-after-answering', 'unreadable-answer'])
def test_psql_output_never_shows_in_an_error(cluster, primary, script):
    secrets = [stored_secret(primary, cluster.superuser), stored_secret(primary, cluster.replication_user)]
    assert all(s.startswith('SCRAM-SHA-256$') for s in secrets)
    directory = _fake_psql_dir(script)
    try:
        result = set_passwords(primary, {cluster.superuser: 'x-pw', cluster.replication_user: 'y-pw'},
                               bin_dir=directory)
    finally:
        shutil.rmtree(directory)
    assert result['failed'] and 'psql' in result['msg'], result
    text = json.dumps(result)
    for secret in secrets:
        assert secret not in text and secret.split('$')[2] not in text, 'a stored secret shows in the result'
    assert 'not shown' in result['msg']


def test_the_secrets_libpq_computes_are_used_where_psycopg_runs(tmp_path, cluster, primary, role):
    """Through ansible-playbook, with the Python of the Patroni virtualenv (psycopg 3) as the interpreter."""
    python = os.path.join(patroni_harness.REPO_ROOT, '.venv-patroni', 'bin', 'python')
    socket_dir = primary.execute('SHOW unix_socket_directories')[0][0]
    args = dict(passwords={role: 'p\u00e4ss\u0341-libpq'}, unix_socket_dir=socket_dir, port=primary.pg_port,
                login_user=cluster.superuser, bin_dir=patroni_harness.PG_BIN_DIR, hash_with='libpq')
    run = run_playbook([{'hosts': 'localhost', 'connection': 'local', 'gather_facts': False, 'tasks': [
        {'pgha.cluster.postgresql_password': args, 'register': 'set_pw'},
        {'ansible.builtin.copy': {'content': '{{ set_pw | to_json }}', 'dest': str(tmp_path / 'result.json')}},
    ]}], env={'ANSIBLE_PYTHON_INTERPRETER': python})
    assert run.rc == 0, run.output
    result = json.loads((tmp_path / 'result.json').read_text())
    assert result['changed'] is True and result['hashed_with'] == 'libpq'
    assert can_log_in(primary, role, 'p\u00e4ss\u0341-libpq')
    # The module's own check recognises libpq's secret: a second run (without libpq) changes nothing.
    assert set_passwords(primary, {role: 'p\u00e4ss\u0341-libpq'})['changed'] is False


def test_hash_with_libpq_without_psycopg_fails_and_changes_nothing(primary, role):
    before = stored_secret(primary, role)
    result = set_passwords(primary, {role: 'next-pw'}, hash_with='libpq')
    assert result['failed'] and 'psycopg 3' in result['msg'] and 'nothing was changed' in result['msg']
    assert stored_secret(primary, role) == before
