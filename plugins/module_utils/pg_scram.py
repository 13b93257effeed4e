# -*- coding: utf-8 -*-
# Copyright: pgha.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""PostgreSQL's stored password secrets (pg_authid.rolpassword), computed and checked without a server.

A SCRAM-SHA-256 secret (RFC 5802/7677, as PostgreSQL stores it) is
``SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`` in base64. Setting a role's
password as such a secret keeps the clear text out of the statement, the server's logs and
pg_stat_activity, which is what psql's \\password does too.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import hashlib
import hmac
import os
import stringprep
import unicodedata

SCRAM_PREFIX = 'SCRAM-SHA-256$'
# PostgreSQL's default (scram_iterations in 16 and later, fixed in 15).
DEFAULT_ITERATIONS = 4096
SALT_BYTES = 16


def _prohibited(char):
    # RFC 4013 section 2.3 (the characters SASLprep rejects) and table A.1 (unassigned in Unicode 3.2).
    return any(check(char) for check in (
        stringprep.in_table_c12, stringprep.in_table_c21_c22, stringprep.in_table_c3, stringprep.in_table_c4,
        stringprep.in_table_c5, stringprep.in_table_c6, stringprep.in_table_c7, stringprep.in_table_c8,
        stringprep.in_table_c9, stringprep.in_table_a1))


def _map(text):
    # A non-ASCII space becomes a space before anything is mapped to nothing: U+200B, in both tables, ends up as
    # a space in PostgreSQL.
    return ''.join(' ' if stringprep.in_table_c12(c) else c for c in text
                   if stringprep.in_table_c12(c) or not stringprep.in_table_b1(c))


def _prepare(text):
    """``text`` prepared as PostgreSQL's pg_saslprep does it, or None where it refuses (SASLPREP_PROHIBITED).

    Unlike RFC 4013's order, PostgreSQL checks the mapped text before NFKC: a character that NFKC would
    replace by an allowed one (U+0341 -> U+0301) still makes the preparation fail.
    """
    mapped = _map(text)
    if not mapped or any(_prohibited(c) for c in mapped):
        return None
    # RFC 3454 section 6: text with right-to-left characters must start and end with one and hold no
    # left-to-right characters.
    if any(stringprep.in_table_d1(c) for c in mapped):
        if any(stringprep.in_table_d2(c) for c in mapped):
            return None
        if not (stringprep.in_table_d1(mapped[0]) and stringprep.in_table_d1(mapped[-1])):
            return None
    return unicodedata.normalize('NFKC', mapped)


def password_bytes(password):
    """The bytes a client sends for ``password`` (bytes as they are; text as UTF-8, undecodable bytes that
    Python carries as surrogate escapes given back as they were)."""
    if isinstance(password, bytes):
        return password
    try:
        return password.encode('utf-8', 'surrogateescape')
    except UnicodeEncodeError:
        raise ValueError('the password holds a lone surrogate (U+%04X), which no client can send'
                         % next(ord(c) for c in password if 0xD800 <= ord(c) <= 0xDFFF))


def saslprep(password):
    """The bytes SCRAM hashes for ``password`` (str or bytes), as PostgreSQL's pg_saslprep decides them.

    PostgreSQL (server and libpq alike) normalises passwords with SASLprep and, when a password is not
    UTF-8 or SASLprep refuses it, hashes the raw bytes instead of refusing the password; so does this.
    """
    raw = password_bytes(password)
    if all(b < 0x80 for b in bytearray(raw)):
        return raw
    try:
        text = raw.decode('utf-8')
    except UnicodeDecodeError:
        return raw
    prepared = _prepare(text)
    return raw if prepared is None else prepared.encode('utf-8')


def _keys(password, salt, iterations):
    salted = hashlib.pbkdf2_hmac('sha256', saslprep(password), salt, iterations)
    client_key = hmac.new(salted, b'Client Key', hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b'Server Key', hashlib.sha256).digest()
    return stored_key, server_key


def _b64(data):
    return base64.b64encode(data).decode('ascii')


def scram_secret(password, salt=None, iterations=DEFAULT_ITERATIONS):
    """A new SCRAM-SHA-256 secret for ``password`` (a random salt unless one is given)."""
    if salt is None:
        salt = os.urandom(SALT_BYTES)
    stored_key, server_key = _keys(password, salt, iterations)
    return '%s%d:%s$%s:%s' % (SCRAM_PREFIX, iterations, _b64(salt), _b64(stored_key), _b64(server_key))


def parse_scram_secret(secret):
    """(iterations, salt, stored_key, server_key) of a SCRAM-SHA-256 secret; ValueError if it is not one."""
    if not secret.startswith(SCRAM_PREFIX):
        raise ValueError('not a SCRAM-SHA-256 secret')
    try:
        params, keys = secret[len(SCRAM_PREFIX):].split('$')
        iterations, salt = params.split(':')
        stored_key, server_key = keys.split(':')
        return (int(iterations), base64.b64decode(salt, validate=True),
                base64.b64decode(stored_key, validate=True), base64.b64decode(server_key, validate=True))
    except (ValueError, TypeError) as exc:
        raise ValueError('malformed SCRAM-SHA-256 secret: %s' % exc)


def secret_matches(password, secret, role):
    """Whether ``secret`` (a role's pg_authid.rolpassword, maybe None) lets ``password`` log in with SCRAM-SHA-256.

    Only a SCRAM-SHA-256 secret can: an MD5 secret never matches, because the collection's pg_hba
    accepts scram-sha-256 alone, and a role holding one cannot log in whatever its password (nor can a
    role without a password). ``role`` is kept for the callers' sake: SCRAM secrets are not salted
    with it.
    """
    del role
    if not secret or not secret.startswith(SCRAM_PREFIX):
        return False
    try:
        iterations, salt, stored_key, server_key = parse_scram_secret(secret)
    except ValueError:
        return False
    ours = _keys(password, salt, iterations)
    return hmac.compare_digest(ours[0], stored_key) and hmac.compare_digest(ours[1], server_key)


def libpq_scram_secret(password, role):
    """The SCRAM-SHA-256 secret libpq itself computes (PQencryptPasswordConn, through psycopg 3), or None when
    psycopg 3 cannot be imported here.

    libpq is what PostgreSQL's clients prepare passwords with, so its secret is right by definition; the
    local computation above is kept equal to it and checks it before use.
    """
    try:
        from psycopg import pq  # pylint: disable=import-outside-toplevel
    except ImportError:
        return None
    # PQencryptPasswordConn wants a connection only to put its error text in when the algorithm is given;
    # one that can never connect (no such socket directory) does, without touching any server.
    conn = pq.PGconn.connect_start(b'host=/nonexistent/pgha-cluster-no-server')
    try:
        secret = conn.encrypt_password(password_bytes(password), role.encode('utf-8'), b'scram-sha-256')
    except Exception as exc:  # pylint: disable=broad-except
        raise ValueError('libpq could not compute the secret of role %s: %s' % (role, exc))
    finally:
        conn.finish()
    return secret.decode('ascii')
