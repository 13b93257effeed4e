"""pg_scram: PostgreSQL's password secrets computed and checked without a server.

The secrets in golden/pg_scram/ were made by PostgreSQL's own code, so these checks are against what it computes,
SASLprep included:

* pg15_secrets.json: pg_authid.rolpassword of a PostgreSQL 15 server after CREATE ROLE ... PASSWORD with the clear
  text (the server's pg_saslprep), each one logged in with over TCP by libpq at the time;
* libpq_secrets.json: PQencryptPasswordConn (libpq's pg_saslprep) for passwords no SQL statement can carry (bytes
  that are not UTF-8), each one logged in with by psql at the time.

tests/integration/test_pg_scram_server.py makes the same checks against a running server.
"""

import base64
import json
import os

import pytest

from ansible_collections.pgha.cluster.plugins.module_utils.pg_scram import (
    parse_scram_secret,
    saslprep,
    scram_secret,
    secret_matches,
)

GOLDEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'golden', 'pg_scram')


def _load(name):
    with open(os.path.join(GOLDEN, name)) as f:
        return json.load(f)['secrets']


SERVER = _load('pg15_secrets.json')
LIBPQ = _load('libpq_secrets.json')

# An MD5 secret PostgreSQL 15 stored for role md5role, password 'pencil' (password_encryption=md5).
MD5_SECRET = 'md581c1086c5692427f7a518b9e0647c43e'


@pytest.mark.parametrize('name', sorted(SERVER))
def test_the_servers_secret_accepts_its_password_and_nothing_else(name):
    vector = SERVER[name]
    password, secret = vector['password'], vector['rolpassword']
    assert secret_matches(password, secret, name), vector['why']
    assert not secret_matches(password + 'x', secret, name)
    assert not secret_matches(password[:-1] + '\uff58', secret, name)


@pytest.mark.parametrize('name', sorted(SERVER))
def test_a_secret_computed_here_with_the_servers_salt_is_the_servers(name):
    password, secret = SERVER[name]['password'], SERVER[name]['rolpassword']
    iterations, salt, dummy, dummy = parse_scram_secret(secret)
    assert scram_secret(password, salt=salt, iterations=iterations) == secret


@pytest.mark.parametrize('name', sorted(LIBPQ))
def test_libpqs_secret_accepts_its_password(name):
    vector = LIBPQ[name]
    password = bytes.fromhex(vector['password_hex'])
    assert secret_matches(password, vector['secret'], name), vector['why']
    assert not secret_matches(password + b'x', vector['secret'], name)
    iterations, salt, dummy, dummy = parse_scram_secret(vector['secret'])
    assert scram_secret(password, salt=salt, iterations=iterations) == vector['secret']


def test_seen_differences_from_postgresql_are_gone():
    # Both were prepared with NFKC here while PostgreSQL hashes their raw bytes: U+0341 is prohibited before NFKC
    # turns it into U+0301, and U+1F130 was not assigned in Unicode 3.2.
    assert saslprep('p\u00e4ss\u0341') == 'p\u00e4ss\u0341'.encode('utf-8')
    assert saslprep('\U0001F130x\u00e4') == '\U0001F130x\u00e4'.encode('utf-8')
    # U+200B is both a non-ASCII space and "mapped to nothing": PostgreSQL makes it a space.
    assert saslprep('a\u200bb') == b'a b'


@pytest.mark.parametrize('password, prepared', [
    ('pencil', b'pencil'),
    ('a\u0007b', b'a\x07b'),
    ('\uff50\uff41\uff53\uff53', b'pass'),
    ('a\u00a0b', b'a b'),
    ('a\u00adb', b'ab'),
    ('I\u2168', b'IIX'),
    ('\ufb21\u05d0', '\u05d0\u05d0'.encode('utf-8')),
])
def test_saslprep_maps_and_normalises(password, prepared):
    assert saslprep(password) == prepared


@pytest.mark.parametrize('password', [
    'a\u200eb',                   # a bidi mark (C.8)
    '\u05d0a',                    # right-to-left text must start and end with a right-to-left character ...
    '\u05d0\uff41\u05d0',         # ... and hold no left-to-right one
    '\u00ad',                     # nothing left after mapping
    '\uff41\u0221',               # unassigned in Unicode 3.2 (A.1)
    '\uff41\u0007',               # a control character with non-ASCII text
])
def test_saslprep_falls_back_to_the_raw_bytes(password):
    assert saslprep(password) == password.encode('utf-8')


@pytest.mark.parametrize('raw', [b'caf\xe9', b'\xff\xfe\xfd', b'a\xed\xa0\x80'])
def test_bytes_that_are_not_utf8_are_hashed_as_they_are(raw):
    assert saslprep(raw) == raw
    # A str carrying such bytes as surrogate escapes (how Python hands over undecodable bytes) is the same password.
    assert saslprep(raw.decode('utf-8', 'surrogateescape')) == raw


def test_md5_secrets_never_match():
    # pg_hba of the cluster allows scram-sha-256 only: a role with an MD5 secret cannot log in, whatever the password.
    assert not secret_matches('pencil', MD5_SECRET, 'md5role')


def test_a_new_secret_round_trips_with_its_salt_and_iterations():
    fresh = scram_secret('pencil', iterations=8192)
    iterations, salt, stored, server = parse_scram_secret(fresh)
    assert iterations == 8192 and len(salt) == 16 and len(stored) == len(server) == 32
    assert secret_matches('pencil', fresh, 'any')
    assert scram_secret('pencil') != scram_secret('pencil'), 'each secret gets its own random salt'
    assert scram_secret('pencil', salt=base64.b64decode('AAAAAAAAAAAAAAAAAAAAAA==')).startswith(
        'SCRAM-SHA-256$4096:AAAAAAAAAAAAAAAAAAAAAA==$')


@pytest.mark.parametrize('secret', [
    None, '', 'pencil', 'md5short', 'SCRAM-SHA-256$', 'SCRAM-SHA-256$4096:abc', 'SCRAM-SHA-256$x:AAAA$AAAA:AAAA',
    'SCRAM-SHA-256$4096:!!!!$AAAA:AAAA',
])
def test_no_or_malformed_secret_never_matches(secret):
    assert not secret_matches('pencil', secret, 'role')


def test_parse_refuses_what_is_not_a_scram_secret():
    with pytest.raises(ValueError, match='not a SCRAM'):
        parse_scram_secret(MD5_SECRET)
    with pytest.raises(ValueError, match='malformed'):
        parse_scram_secret('SCRAM-SHA-256$4096:abc')
