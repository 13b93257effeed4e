"""pg_scram's SASLprep and secrets against a real PostgreSQL 15 (a one-node Patroni cluster) and real libpq.

What the server stores for a password given in clear (its own pg_saslprep), what libpq computes
(PQencryptPasswordConn through psycopg 3, run with the Patroni virtualenv's Python), what pg_scram checks and
computes, and whether a client logs in must all agree. The vectors are the ones tests/unit/test_pg_scram.py
checks without a server (tests/unit/golden/pg_scram/), plus every boundary of the stringprep tables.
"""

import json
import os
import stringprep
import subprocess

import pytest

import patroni_harness
from ansible_collections.pgha.cluster.plugins.module_utils.pg_scram import (
    parse_scram_secret,
    scram_secret,
    secret_matches,
)

GOLDEN = os.path.join(patroni_harness.REPO_ROOT, 'tests', 'unit', 'golden', 'pg_scram')
PATRONI_PYTHON = os.path.join(patroni_harness.REPO_ROOT, '.venv-patroni', 'bin', 'python')
ROLE = 'scram_vector'


def _golden(name):
    with open(os.path.join(GOLDEN, name)) as f:
        return json.load(f)['secrets']


SERVER = _golden('pg15_secrets.json')
LIBPQ = _golden('libpq_secrets.json')


@pytest.fixture(scope='module')
def node(etcd_plain):
    missing = patroni_harness.missing_requirements()
    if missing:
        pytest.skip('Patroni nodes cannot run here: %s' % '; '.join(missing))
    cluster = patroni_harness.PatroniCluster(etcd_plain, 'scram', size=1)
    try:
        cluster.start()
        leader = cluster.wait_leader()
        assert leader.execute('SHOW password_encryption')[0][0] == 'scram-sha-256'
        leader.execute('CREATE ROLE %s LOGIN' % ROLE)
        yield leader
    finally:
        cluster.cleanup()


def server_secret(node, password):
    """What the server stores for ``password`` given in clear."""
    conn = node.connect()
    try:
        with conn.cursor() as cur:
            cur.execute('ALTER ROLE %s PASSWORD %%s' % ROLE, (password,))
            cur.execute('SELECT rolpassword FROM pg_authid WHERE rolname = %s', (ROLE,))
            return cur.fetchone()[0]
    finally:
        conn.close()


def set_secret(node, secret):
    node.execute("ALTER ROLE %s PASSWORD '%s'" % (ROLE, secret))


def logs_in(node, password):
    """A libpq login over TCP (scram-sha-256 in pg_hba); ``password`` as bytes goes to libpq as it is."""
    env = {'PATH': os.environ['PATH']}
    env = dict((k.encode(), v.encode()) for k, v in env.items())
    env[b'PGPASSWORD'] = password if isinstance(password, bytes) else password.encode('utf-8')
    done = subprocess.run([patroni_harness.PSQL_BIN, '-X', '-At', '-h', node.ip, '-p', str(node.pg_port),
                           '-U', ROLE, '-d', 'postgres', '-c', 'SELECT 1'], env=env, capture_output=True,
                          stdin=subprocess.DEVNULL, timeout=30, check=False)
    if done.returncode != 0:
        assert b'password authentication failed' in done.stderr, done.stderr
    return done.returncode == 0


def libpq_secrets(passwords):
    """Secrets libpq computes for ``passwords`` (bytes), from the Patroni virtualenv's psycopg 3."""
    script = ('import json, sys\nfrom psycopg import pq\n'
              'conn = pq.PGconn.connect_start(b"host=/nonexistent/pgha-test")\n'
              'print(json.dumps([conn.encrypt_password(bytes.fromhex(p), b"%s", b"scram-sha-256").decode()'
              ' for p in json.load(sys.stdin)]))\n' % ROLE)
    done = subprocess.run([PATRONI_PYTHON, '-c', script], input=json.dumps([p.hex() for p in passwords]),
                          capture_output=True, text=True, check=True, timeout=60)
    return json.loads(done.stdout)


@pytest.mark.parametrize('name', sorted(SERVER))
def test_the_server_stores_what_pg_scram_computes_and_the_password_logs_in(node, name):
    password = SERVER[name]['password']
    stored = server_secret(node, password)
    assert secret_matches(password, stored, ROLE), SERVER[name]['why']
    iterations, salt, dummy, dummy = parse_scram_secret(stored)
    assert scram_secret(password, salt=salt, iterations=iterations) == stored
    assert logs_in(node, password)
    # A secret computed here (another salt) logs in too.
    set_secret(node, scram_secret(password))
    assert logs_in(node, password)


def test_libpq_agrees_with_the_server_and_with_pg_scram(node):
    names = sorted(SERVER)
    passwords = [SERVER[n]['password'].encode('utf-8') for n in names]
    for name, password, secret in zip(names, passwords, libpq_secrets(passwords)):
        assert secret_matches(password, secret, ROLE), name
        set_secret(node, secret)
        assert logs_in(node, password), name


@pytest.mark.parametrize('name', sorted(LIBPQ))
def test_passwords_that_are_not_utf8_are_hashed_as_bytes(node, name):
    password = bytes.fromhex(LIBPQ[name]['password_hex'])
    secret = libpq_secrets([password])[0]
    assert secret_matches(password, secret, ROLE), LIBPQ[name]['why']
    set_secret(node, secret)
    assert logs_in(node, password)
    set_secret(node, scram_secret(password))
    assert logs_in(node, password)
    assert not logs_in(node, password + b'x')


_TABLES = (stringprep.in_table_a1, stringprep.in_table_b1, stringprep.in_table_c12, stringprep.in_table_c21_c22,
           stringprep.in_table_c3, stringprep.in_table_c4, stringprep.in_table_c6, stringprep.in_table_c7,
           stringprep.in_table_c8, stringprep.in_table_c9, stringprep.in_table_d1, stringprep.in_table_d2)


def table_boundaries():
    """Every non-ASCII code point where membership of any stringprep table changes, and the one before it."""
    points = set()
    previous = None
    for cp in range(0x80, 0x110000):
        if 0xD800 <= cp <= 0xDFFF:  # surrogates: no UTF-8 text can hold them
            previous = None
            continue
        where = tuple(table(chr(cp)) for table in _TABLES)
        if where != previous:
            points.update((cp - 1, cp))
            previous = where
    return sorted(p for p in points if p >= 0x80 and not 0xD800 <= p <= 0xDFFF)


def test_saslprep_agrees_with_the_server_at_every_table_boundary(node):
    # Each code point between two characters NFKC changes, once among left-to-right text (full-width a) and once
    # among right-to-left text (wide alef): whether PostgreSQL prepares or falls back to the raw bytes shows in
    # the secret either way.
    passwords = []
    for cp in table_boundaries():
        passwords += ['\uff41%s\uff41' % chr(cp), '\ufb21%s\ufb21' % chr(cp)]
    conn = node.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("""
                CREATE FUNCTION pg_temp.secrets_for(passwords text[]) RETURNS text[] LANGUAGE plpgsql AS $$
                DECLARE p text; result text[] := '{}';
                BEGIN
                  FOREACH p IN ARRAY passwords LOOP
                    EXECUTE format('ALTER ROLE %s PASSWORD %%L', p);
                    result := result || (SELECT rolpassword FROM pg_authid WHERE rolname = '%s');
                  END LOOP;
                  RETURN result;
                END $$""" % (ROLE, ROLE))
            cur.execute('SELECT pg_temp.secrets_for(%s)', (passwords,))
            stored = cur.fetchone()[0]
    finally:
        conn.close()
    assert len(stored) == len(passwords) > 3000
    wrong = [ascii(p) for p, s in zip(passwords, stored) if not secret_matches(p, s, ROLE)]
    assert wrong == [], '%d of %d passwords are prepared differently from PostgreSQL' % (len(wrong), len(passwords))
