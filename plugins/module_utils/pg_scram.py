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
    # RFC 4013 section 2.3: the characters SASLprep rejects.
    return any(check(char) for check in (
        stringprep.in_table_c12, stringprep.in_table_c21_c22, stringprep.in_table_c3, stringprep.in_table_c4,
        stringprep.in_table_c5, stringprep.in_table_c6, stringprep.in_table_c7, stringprep.in_table_c8,
        stringprep.in_table_c9))


def saslprep(password):
    """The bytes SCRAM hashes for ``password``.

    PostgreSQL (server and libpq alike) normalises passwords with SASLprep and, when a password
    is not valid under it, uses the raw UTF-8 bytes instead of refusing it; so does this.
    """
    raw = password.encode('utf-8')
    if all(ord(c) < 0x80 for c in password):
        # Printable ASCII maps to itself; ASCII control characters make SASLprep fail, and then
        # the raw bytes count, which are the same.
        return raw
    mapped = ''.join(' ' if stringprep.in_table_c12(c) else c for c in password
                     if not stringprep.in_table_b1(c))
    prepared = unicodedata.normalize('NFKC', mapped)
    if not prepared or any(_prohibited(c) for c in prepared):
        return raw
    # RFC 3454 section 6: a string with right-to-left characters must start and end with one and
    # hold no left-to-right characters.
    if any(stringprep.in_table_d1(c) for c in prepared):
        if any(stringprep.in_table_d2(c) for c in prepared):
            return raw
        if not (stringprep.in_table_d1(prepared[0]) and stringprep.in_table_d1(prepared[-1])):
            return raw
    return prepared.encode('utf-8')


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
    """Whether ``secret`` (a role's pg_authid.rolpassword, maybe None) accepts ``password``.

    Both kinds PostgreSQL 10 and later store are understood: SCRAM-SHA-256 and MD5 (which salts
    with the role name). Anything else, or no password at all, does not match.
    """
    if not secret:
        return False
    if secret.startswith(SCRAM_PREFIX):
        try:
            iterations, salt, stored_key, server_key = parse_scram_secret(secret)
        except ValueError:
            return False
        ours = _keys(password, salt, iterations)
        return hmac.compare_digest(ours[0], stored_key) and hmac.compare_digest(ours[1], server_key)
    if secret.startswith('md5') and len(secret) == 35:
        digest = 'md5' + hashlib.md5((password + role).encode('utf-8')).hexdigest()  # nosec - PostgreSQL's format
        return hmac.compare_digest(digest, secret)
    return False
