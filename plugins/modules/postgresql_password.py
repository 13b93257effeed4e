#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: pgha.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: postgresql_password
short_description: Keep the passwords of existing PostgreSQL roles in step with the wanted ones
version_added: 0.1.0
description:
  - Checks, for each role in O(passwords), whether the secret PostgreSQL stores for it (C(pg_authid.rolpassword))
    accepts the wanted password, and sets a new one where it does not. Roles whose password already matches are
    left alone, so a re-run changes nothing.
  - The new password is sent as a SCRAM-SHA-256 secret, like psql's C(\password) does, so the clear text never
    reaches the server, its logs or C(pg_stat_activity). See O(hash_with) for what computes the secret.
  - A stored secret matches only if it is a SCRAM-SHA-256 secret that accepts the wanted password after
    PostgreSQL's own SASLprep (the one in C(src/common/saslprep.c), used by the server and libpq alike). An MD5
    secret never matches, because a C(scram-sha-256) line in C(pg_hba.conf) cannot log in with it; the role gets
    a SCRAM-SHA-256 secret instead.
  - Patroni sets the passwords of its superuser, replication and rewind roles only when it bootstraps a cluster.
    Run this module on the primary before a changed password is handed to Patroni, so that replicas keep
    connecting.
  - The module runs C(psql) on the target host over the local socket, as the OS user O(os_user) when it runs as
    root (peer authentication). It must run on the primary; on a server in recovery it fails and changes nothing.
  - All roles are changed in one transaction, and read back afterwards.
options:
  passwords:
    description:
      - Role name to wanted password. Every role must exist.
    type: dict
    required: true
  login_user:
    description:
      - The database role C(psql) logs in as; it must be allowed to change the passwords (a superuser, or
        C(CREATEROLE) for roles that are not superusers).
    type: str
    default: postgres
  login_password:
    description:
      - Password of O(login_user), when the local socket asks for one. Passed to C(psql) in its environment.
    type: str
  os_user:
    description:
      - OS user to run C(psql) as when the module runs as root, for peer authentication on the local socket.
    type: str
    default: postgres
  unix_socket_dir:
    description:
      - Directory of PostgreSQL's local socket.
    type: path
    default: /var/run/postgresql
  port:
    description:
      - Port of the server (part of the socket's name).
    type: int
    default: 5432
  database:
    description:
      - Database to connect to.
    type: str
    default: postgres
  bin_dir:
    description:
      - Directory holding C(psql), for example C(/usr/lib/postgresql/15/bin). By default C(psql) is looked up in
        the PATH.
    type: path
  hash_with:
    description:
      - What computes a new SCRAM-SHA-256 secret.
      - V(libpq) has libpq compute it (C(PQencryptPasswordConn), the function psql's C(\password) uses) through
        psycopg 3, which must be importable by the Python the module runs with (for example the virtualenv
        Patroni is installed in, set as C(ansible_python_interpreter) for the task). The module checks libpq's
        secret with its own SASLprep before using it and fails, changing nothing, if they disagree.
      - V(python) has the module compute it with its own implementation of PostgreSQL's SASLprep.
      - V(auto) uses libpq when psycopg 3 can be imported, the module's own implementation otherwise.
    type: str
    choices: [auto, libpq, python]
    default: auto
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: The passwords are checked; nothing is set.
  diff_mode:
    support: full
    details: Names the roles whose password changes, never a password or a secret.
  platform:
    platforms: posix
notes:
  - A password the module sets is always stored as SCRAM-SHA-256.
  - Error messages never include what C(psql) printed on its standard output (it holds the roles' secrets), and
    secrets are cut out of what it printed on its standard error.
seealso:
  - module: pgha.cluster.patroni_info
  - name: PostgreSQL password authentication
    description: How PostgreSQL stores and checks passwords.
    link: https://www.postgresql.org/docs/current/auth-password.html
author:
  - pgha.cluster maintainers (@pgha)
'''

EXAMPLES = r'''
- name: New replication password, set on the primary before Patroni's configuration uses it
  pgha.cluster.postgresql_password:
    passwords:
      replicator: "{{ patroni_replication_password }}"
      rewind_user: "{{ patroni_rewind_password }}"
    bin_dir: /usr/lib/postgresql/15/bin
  delegate_to: "{{ primary_host }}"
  run_once: true
  no_log: true

- name: Check only
  pgha.cluster.postgresql_password:
    passwords:
      postgres: "{{ superuser_password }}"
  check_mode: true
  register: superuser_password_check
'''

RETURN = r'''
changed_roles:
  description: The roles whose password was set (in check mode, would be set), sorted.
  returned: always
  type: list
  elements: str
  sample: [replicator]
unchanged_roles:
  description: The roles whose stored password already was the wanted one, sorted.
  returned: always
  type: list
  elements: str
  sample: [postgres, rewind_user]
hashed_with:
  description: What computed the new secrets (V(libpq) or V(python)); V(null) when no password was set.
  returned: always
  type: str
  sample: libpq
'''

import json
import os
import pwd
import re
import sys

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.pgha.cluster.plugins.module_utils.pg_scram import (
    libpq_scram_secret,
    password_bytes,
    scram_secret,
    secret_matches,
)

# What a password secret looks like in text psql printed: cut out of messages.
_SECRET_RE = re.compile(r'SCRAM-SHA-256\$[^\s\'"]*|md5[0-9a-f]{32}')


def sql_literal(text):
    # standard_conforming_strings is on in every supported PostgreSQL: only quotes are doubled.
    return "'%s'" % text.replace("'", "''")


def sql_identifier(name):
    return '"%s"' % name.replace('"', '""')


class Psql(object):
    """psql on the local socket, as the OS user the server trusts."""

    def __init__(self, module):
        self.module = module
        params = module.params
        exe = os.path.join(params['bin_dir'], 'psql') if params['bin_dir'] else module.get_bin_path('psql')
        if not exe or not os.access(exe, os.X_OK):
            module.fail_json(msg='psql not found%s; install the PostgreSQL client or set bin_dir' % (
                ' in %s' % params['bin_dir'] if params['bin_dir'] else ' in the PATH'))
        # VERBOSITY=terse: an error is reported without the statement text (LINE 1: ...) it points into.
        command = [exe, '-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-v', 'VERBOSITY=terse',
                   '-h', params['unix_socket_dir'], '-p', str(params['port']), '-U', params['login_user'],
                   '-d', params['database']]
        if os.geteuid() == 0 and params['os_user'] != 'root':
            try:
                pwd.getpwnam(params['os_user'])
            except KeyError:
                module.fail_json(msg='OS user %r (os_user) does not exist on this host' % params['os_user'])
            command = [module.get_bin_path('runuser', required=True), '-u', params['os_user'], '--'] + command
        self.command = command
        self.environ = {'PGAPPNAME': 'pgha.cluster.postgresql_password', 'PGCONNECT_TIMEOUT': '10'}
        if params['login_password']:
            self.environ['PGPASSWORD'] = params['login_password']

    def run(self, sql):
        # The statements go through stdin so that no secret shows on a command line.
        rc, out, err = self.module.run_command(self.command, data=sql, binary_data=False,
                                               environ_update=self.environ, cwd='/')
        if rc != 0:
            self.module.fail_json(msg='psql as %s on %s (port %d) failed: %s' % (
                self.module.params['login_user'], self.module.params['unix_socket_dir'], self.module.params['port'],
                psql_failure(rc, err)))
        return out


def psql_failure(rc, err):
    """Why psql failed, from its standard error only: its standard output answers the SELECT of pg_authid."""
    reason = _SECRET_RE.sub('(secret not shown)', ' '.join((err or '').split()))
    return reason or 'exit code %d, no error message (its output is not shown: it may hold password secrets)' % rc


def read_secrets(psql, roles):
    """(in recovery?, role -> stored secret or None) for the roles that exist."""
    names = ', '.join(sql_literal(r) for r in roles)
    out = psql.run("SELECT json_build_object('recovery', pg_is_in_recovery(), 'roles', "
                   "(SELECT coalesce(json_object_agg(rolname, rolpassword), '{}') FROM pg_authid "
                   "WHERE rolname IN (%s)));\n" % names)
    try:
        answer = json.loads(out.strip())
        recovery, secrets = answer['recovery'], answer['roles']
    except (ValueError, KeyError, TypeError):
        psql.module.fail_json(msg='unexpected answer from psql to the query of pg_authid (%d characters, not shown: '
                                  'it may hold password secrets); nothing was changed' % len(out))
    # Ansible then masks them wherever they would show up in the result.
    psql.module.no_log_values.update(s for s in secrets.values() if s)
    return recovery, secrets


def new_secrets(module, passwords, roles):
    """(role -> new SCRAM secret, what computed them), as hash_with says; fails, changing nothing, when libpq
    is wanted but missing or when its secret does not accept the password under the module's own check."""
    hash_with = module.params['hash_with']
    if hash_with != 'python':
        try:
            secrets = dict((r, libpq_scram_secret(passwords[r], r)) for r in roles)
        except ValueError as exc:
            module.fail_json(msg='%s; nothing was changed' % exc)
        if all(secrets.values()):
            module.no_log_values.update(secrets.values())
            disagree = [r for r in roles if not secret_matches(passwords[r], secrets[r], r)]
            if disagree:
                module.fail_json(msg='the secrets libpq computed for %s do not accept their passwords under the '
                                     'module\'s own SASLprep check, so later runs could not tell them apart; nothing '
                                     'was changed (hash_with=python avoids libpq)' % ', '.join(disagree))
            return secrets, 'libpq'
        if hash_with == 'libpq':
            module.fail_json(msg='hash_with=libpq, but psycopg 3 cannot be imported by %s: run the module with a '
                                 'Python that has it (ansible_python_interpreter), or use hash_with=auto; nothing '
                                 'was changed' % (sys.executable or 'this Python'))
    secrets = dict((r, scram_secret(passwords[r])) for r in roles)
    module.no_log_values.update(secrets.values())
    return secrets, 'python'


def unusable(password):
    """Why ``password`` cannot be a PostgreSQL password, or None."""
    if not isinstance(password, str) or not password:
        return 'an empty password'
    if '\0' in password:
        return 'a NUL character, which PostgreSQL cannot store'
    try:
        password_bytes(password)
    except ValueError as exc:
        return str(exc)
    return None


def run(module):
    passwords = module.params['passwords']
    bad = sorted(name for name, password in passwords.items()
                 if not name or not isinstance(password, str) or not password)
    if bad:
        module.fail_json(msg='every role needs a name and a non-empty password: %s; nothing was changed' % (
            ', '.join(repr(b) for b in bad)))
    bad = sorted('%s (%s)' % (name, unusable(password)) for name, password in passwords.items() if unusable(password))
    if bad:
        module.fail_json(msg='unusable password for role(s) %s; nothing was changed' % ', '.join(bad))
    psql = Psql(module)
    roles = sorted(passwords)
    recovery, stored = read_secrets(psql, roles)
    if recovery:
        module.fail_json(msg='the server is in recovery (a replica): passwords can only be set on the primary; '
                             'nothing was changed')
    missing = [r for r in roles if r not in stored]
    if missing:
        module.fail_json(msg='role(s) %s do not exist; nothing was changed' % ', '.join(missing))
    changing = [r for r in roles if not secret_matches(passwords[r], stored[r], r)]
    result = {'changed': bool(changing), 'changed_roles': changing,
              'unchanged_roles': [r for r in roles if r not in changing], 'hashed_with': None}
    if module._diff:
        result['diff'] = {'before': ''.join('%s: current password\n' % r for r in changing),
                          'after': ''.join('%s: new password\n' % r for r in changing)}
    if not changing or module.check_mode:
        return result
    secrets, result['hashed_with'] = new_secrets(module, passwords, changing)
    psql.run('BEGIN;\n%sCOMMIT;\n' % ''.join(
        'ALTER ROLE %s PASSWORD %s;\n' % (sql_identifier(r), sql_literal(secrets[r])) for r in changing))
    stored = read_secrets(psql, changing)[1]
    still = [r for r in changing if not secret_matches(passwords[r], stored.get(r), r)]
    if still:
        module.fail_json(msg='the passwords of %s were set but do not match when read back' % ', '.join(still),
                         **result)
    return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            passwords=dict(type='dict', required=True, no_log=True),
            login_user=dict(type='str', default='postgres'),
            login_password=dict(type='str', no_log=True),
            os_user=dict(type='str', default='postgres'),
            unix_socket_dir=dict(type='path', default='/var/run/postgresql'),
            port=dict(type='int', default=5432),
            database=dict(type='str', default='postgres'),
            bin_dir=dict(type='path'),
            hash_with=dict(type='str', choices=['auto', 'libpq', 'python'], default='auto'),
        ),
        supports_check_mode=True,
    )
    module.exit_json(**run(module))


if __name__ == '__main__':
    main()
