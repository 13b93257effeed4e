"""pg_scram: PostgreSQL's password secrets computed and checked without a server.

The secrets below were read from pg_authid of a PostgreSQL 15 server after CREATE ROLE ... PASSWORD with the
clear text shown, so the checks are against what the server computes (SASLprep included); the integration
test of postgresql_password checks the other direction (libpq logs in with a secret computed here).
"""

import base64

import pytest

from ansible_collections.pgha.cluster.plugins.module_utils.pg_scram import (
    parse_scram_secret,
    saslprep,
    scram_secret,
    secret_matches,
)

SERVER_SECRETS = {
    # role: (password given to the server, rolpassword it stored)
    'ascii': (
        'pencil',
        'SCRAM-SHA-256$4096:1L+WphSijPCBNZSkk7BdVw==$/HToUUj4zo8MQOKcBSDLpjuYClj9n7h3n2P7J3tXe0U=:i1V2q61H+F//aIxQOcW9mT+08+9vtqc+N1mFnFEdOjU='),
    'umlaut': (
        'p\u00e4ssw\u00f6rd',
        'SCRAM-SHA-256$4096:Kgtb5aYSXE68TUmxawsd7A==$MggX5++gnmxcsN2oCAnsJVRwlJ6mGCaH7OQwscZ+zqw=:h9moSvjv3A/vrh2Ji24XPCJSF2LH4d/TXeiukmvG/pA='),
    'nbsp': (
        'a\u00a0b',
        'SCRAM-SHA-256$4096:8pjwcZxXy14OTkniV0Hnag==$+ESwQJ1yrfV8srzmDPf/WXsigzzL4WEcJIvWHQjJFEk=:3GoHOZm7XP5RjibzDL/yoOr+tNZlzdGBzW4XRlsQrNA='),
    'fullwidth': (
        '\uff50\uff41\uff53\uff53',
        'SCRAM-SHA-256$4096:+ahEdkpjJMnNkdUgJZjMKg==$LMT9P8fTyEhD0sGlxpmZ9xC0jGlvzNTgK75uOoSkqOI=:kGgDxTV7NUP5+EPY8iJrSgjuBD0kRUJZpXORPimq6pU='),
    'ctrl': (
        'a\u0007b',
        'SCRAM-SHA-256$4096:po7wGUdY5umtf/xJCz1B8w==$OQZb4ZyFGPNXKiv06Qwnn2wbkfV3nQ+fuuMgLok7Hj8=:TzPbVlj3mm0Xnr6dvk0pb+xkFq+2ArWiAlYCjJIKpBI='),
    'softhyphen': (
        'a\u00adb',
        'SCRAM-SHA-256$4096:o6H4+dtaNIrbIvL4CycT6g==$QMbWIJKtiR7C+lm2y0LjuuQ1BI0yNtpui/ZPvWoaG4s=:HBb6IqbfsGXYP+AePuskBjjlkYv10I1WC3W48ubFWaY='),
    'md5role': (
        'pencil',
        'md581c1086c5692427f7a518b9e0647c43e'),
}


@pytest.mark.parametrize('role', sorted(SERVER_SECRETS))
def test_the_servers_secret_accepts_its_password_and_nothing_else(role):
    password, secret = SERVER_SECRETS[role]
    assert secret_matches(password, secret, role)
    assert not secret_matches(password + 'x', secret, role)
    assert not secret_matches(password[:-1], secret, role)


@pytest.mark.parametrize('role, equivalent', [
    ('nbsp', 'a b'),          # a non-ASCII space maps to a space
    ('softhyphen', 'ab'),     # a soft hyphen maps to nothing
    ('fullwidth', 'pass'),    # NFKC folds full-width letters
])
def test_saslprep_equivalents_match_like_on_the_server(role, equivalent):
    assert secret_matches(equivalent, SERVER_SECRETS[role][1], role)


def test_md5_secrets_are_salted_with_the_role_name():
    password, secret = SERVER_SECRETS['md5role']
    assert not secret_matches(password, secret, 'another_role')


def test_a_new_secret_round_trips_with_its_salt_and_iterations():
    salt = base64.b64decode('1L+WphSijPCBNZSkk7BdVw==')
    # The same password and salt give exactly the secret the server computed.
    assert scram_secret('pencil', salt=salt) == SERVER_SECRETS['ascii'][1]
    fresh = scram_secret('pencil', iterations=8192)
    iterations, salt2, stored, server = parse_scram_secret(fresh)
    assert iterations == 8192 and len(salt2) == 16 and len(stored) == len(server) == 32
    assert secret_matches('pencil', fresh, 'any')
    assert scram_secret('pencil') != scram_secret('pencil'), 'each secret gets its own random salt'


@pytest.mark.parametrize('secret', [
    None, '', 'pencil', 'md5short', 'SCRAM-SHA-256$', 'SCRAM-SHA-256$4096:abc', 'SCRAM-SHA-256$x:AAAA$AAAA:AAAA',
    'SCRAM-SHA-256$4096:!!!!$AAAA:AAAA',
])
def test_no_or_malformed_secret_never_matches(secret):
    assert not secret_matches('pencil', secret, 'role')


def test_parse_refuses_what_is_not_a_scram_secret():
    with pytest.raises(ValueError, match='not a SCRAM'):
        parse_scram_secret('md581c1086c5692427f7a518b9e0647c43e')
    with pytest.raises(ValueError, match='malformed'):
        parse_scram_secret('SCRAM-SHA-256$4096:abc')


def test_saslprep_keeps_ascii_and_falls_back_to_raw_bytes_when_prohibited():
    assert saslprep('pencil') == b'pencil'
    # U+200E (a bidi mark, table C.8) is prohibited: SASLprep fails, the raw bytes count.
    assert saslprep('a\u200eb') == 'a\u200eb'.encode('utf-8')
    # Right-to-left text must start and end with a right-to-left character.
    assert saslprep('\u05d0a') == '\u05d0a'.encode('utf-8')
    assert saslprep('\u05d0\u05d1') == '\u05d0\u05d1'.encode('utf-8')
