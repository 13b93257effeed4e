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
  - The new password is sent as a SCRAM-SHA-256 secret computed by the module, like psql's C(\password) does,
    so the clear text never reaches the server, its logs or C(pg_stat_activity).
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
  - A role whose stored secret is MD5 is recognised as matching; a password the module sets is always stored as
    SCRAM-SHA-256.
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
'''

import json
import os
import pwd

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.pgha.cluster.plugins.module_utils.pg_scram import scram_secret, secret_matches


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
        command = [exe, '-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-h', params['unix_socket_dir'],
                   '-p', str(params['port']), '-U', params['login_user'], '-d', params['database']]
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
                ' '.join((err or out).split()) or 'exit code %d' % rc))
        return out


def read_secrets(psql, roles):
    """(in recovery?, role -> stored secret or None) for the roles that exist."""
    names = ', '.join(sql_literal(r) for r in roles)
    out = psql.run("SELECT json_build_object('recovery', pg_is_in_recovery(), 'roles', "
                   "(SELECT coalesce(json_object_agg(rolname, rolpassword), '{}') FROM pg_authid "
                   "WHERE rolname IN (%s)));\n" % names)
    try:
        answer = json.loads(out.strip())
    except ValueError:
        psql.module.fail_json(msg='unexpected answer from psql: %r' % out[:200])
    return answer['recovery'], answer['roles']


def run(module):
    passwords = module.params['passwords']
    bad = sorted(name for name, password in passwords.items()
                 if not name or not isinstance(password, str) or not password)
    if bad:
        module.fail_json(msg='every role needs a name and a non-empty password: %s; nothing was changed' % (
            ', '.join(repr(b) for b in bad)))
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
              'unchanged_roles': [r for r in roles if r not in changing]}
    if module._diff:
        result['diff'] = {'before': ''.join('%s: current password\n' % r for r in changing),
                          'after': ''.join('%s: new password\n' % r for r in changing)}
    if not changing or module.check_mode:
        return result
    psql.run('BEGIN;\n%sCOMMIT;\n' % ''.join(
        'ALTER ROLE %s PASSWORD %s;\n' % (sql_identifier(r), sql_literal(scram_secret(passwords[r])))
        for r in changing))
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
        ),
        supports_check_mode=True,
    )
    module.exit_json(**run(module))


if __name__ == '__main__':
    main()
