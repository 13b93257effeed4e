#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: pgha.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: etcd_user
short_description: Manage an etcd RBAC user, its password and its roles
version_added: 0.1.0
description:
  - Creates or deletes a user in etcd's role-based access control, sets its password, and makes it hold the roles
    listed (exactly those, or at least those with O(append=true)), like M(ansible.builtin.user) does with groups.
  - The password never appears in the module's output, its diff or its error messages.
options:
  name:
    description: Name of the user.
    type: str
    required: true
  state:
    description:
      - V(present) creates the user if needed and applies O(user_password) and O(roles).
      - V(absent) deletes the user if it exists. etcd refuses to delete V(root) while authentication is enabled.
    type: str
    choices: [present, absent]
    default: present
  user_password:
    description:
      - The password of the user this task manages.
      - Required to create a user, unless O(no_password=true). For an existing user, see O(update_password).
      - Not to be confused with O(password), the password this module logs in to etcd with (together with
        O(username)); both names are kept apart so that O(username) and O(password) can be set once for every
        etcd module with C(module_defaults) (the C(group/pgha.cluster.etcd) action group).
    type: str
  update_password:
    description:
      - V(on_create) sets O(user_password) only when the module creates the user; an existing user keeps its password.
      - V(always) makes sure an existing user has O(user_password). The module checks it by logging in as the
        user with O(user_password) and changes the password only when that fails.
      - etcd can only check a password while its authentication is enabled. While it is disabled, V(always) sets
        the password on every run and reports a change each time.
    type: str
    choices: [on_create, always]
    default: on_create
  roles:
    description:
      - Roles the user must hold. The roles must exist (see M(pgha.cluster.etcd_role)).
      - Roles the user holds but the list does not name are revoked, unless O(append=true).
      - When not set, the user's roles are left as they are (a new user gets none).
    type: list
    elements: str
  append:
    description:
      - When V(true), roles missing from O(roles) are granted and the user's other roles are kept.
    type: bool
    default: false
  no_password:
    description:
      - Create a user that cannot log in with a password (etcd 3.5 and later; for example for users that only
        authenticate with a client certificate through gRPC).
      - Only takes effect when the user is created; an existing user's kind is never changed.
      - Cannot be combined with O(user_password).
    type: bool
    default: false
extends_documentation_fragment:
  - pgha.cluster.etcd
  - pgha.cluster.etcd.actiongroup
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details:
      - "The diff shows whether the user exists and its roles before and after; a password change shows as
        C(password: (changed)), never the password itself."
  platform:
    platforms: posix
notes:
  - Once authentication is enabled, managing users needs the credentials of a user holding the V(root) role
    (O(username) and O(password)).
  - A user's roles are granted before its password is changed, so a task can change the password of the user it
    connects as (for example V(root)); later tasks must then use the new password.
seealso:
  - module: pgha.cluster.etcd_role
  - module: pgha.cluster.etcd_auth
  - module: ansible.builtin.user
author:
  - pgha.cluster maintainers (@pgha)
'''

EXAMPLES = r'''
- name: The root user, which etcd needs before authentication can be enabled
  pgha.cluster.etcd_user:
    endpoints: ["https://etcd1.example.com:2379"]
    ca_cert: /etc/pgha/ca.crt
    client_cert: /etc/pgha/admin.crt
    client_key: /etc/pgha/admin.key
    name: root
    user_password: "{{ etcd_root_password }}"
    roles: [root]

- name: Patroni's user for cluster "main"; its password follows the variable
  pgha.cluster.etcd_user:
    username: root                                # who the module logs in as
    password: "{{ etcd_root_password }}"
    name: patroni-main                            # the user it manages
    user_password: "{{ patroni_etcd_password }}"
    update_password: always
    roles: [patroni-main]

- name: Give a user one more role, keep the others
  pgha.cluster.etcd_user:
    name: ops
    roles: [lb-main]
    append: true

- name: Remove a user
  pgha.cluster.etcd_user:
    name: patroni-old
    state: absent
'''

RETURN = r'''
user:
  description: Name of the user.
  returned: always
  type: str
  sample: patroni-main
roles:
  description: The user's roles after the task (in check mode, the ones it would hold); empty for O(state=absent).
  returned: always
  type: list
  elements: str
  sample: [patroni-main]
granted:
  description: Roles granted by the task.
  returned: always
  type: list
  elements: str
  sample: [patroni-main]
revoked:
  description: Roles revoked by the task (for O(state=absent), the roles the deleted user held).
  returned: always
  type: list
  elements: str
  sample: []
password_changed:
  description: Whether the task set the password (the user was created with one, or its password was changed).
  returned: always
  type: bool
  sample: false
'''

from ansible_collections.pgha.cluster.plugins.module_utils.etcd_errors import (
    EtcdAuthError,
    EtcdError,
    EtcdUserNotFound,
)
from ansible_collections.pgha.cluster.plugins.module_utils.etcd_module import etcd_module, run_with_client
from ansible_collections.pgha.cluster.plugins.module_utils.etcd_rbac import (
    NO_CREDENTIALS,
    RbacSpecError,
    explain_error,
    normalize_roles,
    plan_roles,
)

PASSWORD_CHANGED = '(changed)'
PASSWORD_SET = '(set)'
PASSWORD_HIDDEN = '(not shown)'


def read_roles(client, name):
    """The user's roles, or None when there is no such user."""
    try:
        return sorted(client.user_get(name))
    except EtcdUserNotFound:
        return None


def missing_roles(client, wanted):
    if not wanted:
        return []
    existing = set(client.role_list())
    return [r for r in wanted if r not in existing]


def _state(roles):
    if roles is None:
        return {'state': 'absent'}
    return {'state': 'present', 'roles': list(roles)}


def ensure_absent(module, client, name, current):
    result = {'changed': current is not None, 'user': name, 'roles': [], 'granted': [],
              'revoked': list(current or []), 'password_changed': False}
    if current is not None and not module.check_mode:
        client.user_delete(name)
    if module._diff:
        result['diff'] = {'before': _state(current), 'after': _state(None)}
    return result


def ensure_present(module, client, name, current, desired_roles):
    params = module.params
    password = params['user_password']
    creating = current is None
    if creating and not password and not params['no_password']:
        module.fail_json(msg='user %s does not exist and no user_password was given: set user_password, or '
                             'no_password=true for a user that cannot log in with a password' % name, user=name)
    plan = plan_roles(current or [], desired_roles, params['append'])

    missing = missing_roles(client, plan.grant)
    if missing:
        msg = ('role(s) %s do not exist in etcd: create them first with pgha.cluster.etcd_role'
               % ', '.join(missing))
        if not module.check_mode:
            module.fail_json(msg='user %s: %s; nothing was changed' % (name, msg), user=name)
        module.warn('user %s: %s (in check mode a task before this one may be meant to create them)' % (name, msg))

    if creating:
        set_password = bool(password)
    else:
        # While authentication is off etcd checks no password (None): set it to be sure.
        set_password = bool(password) and params['update_password'] == 'always' \
            and client.check_password(name, password) is not True

    result = {'changed': creating or set_password or bool(plan.grant or plan.revoke), 'user': name,
              'roles': plan.after, 'granted': plan.grant, 'revoked': plan.revoke,
              'password_changed': set_password}
    if result['changed'] and not module.check_mode:
        if creating:
            client.user_add(name, password, no_password=params['no_password'] and not password)
        for role in plan.grant:
            client.user_grant_role(name, role)
        for role in plan.revoke:
            client.user_revoke_role(name, role)
        # Last: a task may be changing the password of the user it connects as.
        if set_password and not creating:
            client.user_change_password(name, password)

    if module._diff:
        before, after = _state(current), _state(plan.after)
        if set_password:
            after['password'] = PASSWORD_SET if creating else PASSWORD_CHANGED
            if not creating:
                before['password'] = PASSWORD_HIDDEN
        result['diff'] = {'before': before, 'after': after}
    return result


def main():
    module = etcd_module(
        argument_spec=dict(
            name=dict(type='str', required=True),
            state=dict(type='str', choices=['present', 'absent'], default='present'),
            # "password" is the connection's (shared by every etcd module through module_defaults).
            user_password=dict(type='str', no_log=True),
            update_password=dict(type='str', choices=['on_create', 'always'], default='on_create', no_log=False),
            roles=dict(type='list', elements='str'),
            append=dict(type='bool', default=False),
            no_password=dict(type='bool', default=False, no_log=False),
        ),
        supports_check_mode=True,
    )
    params = module.params
    name = params['name']
    if not name or not name.strip():
        module.fail_json(msg='name must not be empty', user=name)
    if params['no_password'] and params['user_password']:
        module.fail_json(msg='user %s: user_password and no_password=true exclude each other' % name, user=name)
    try:
        desired_roles = normalize_roles(params['roles'])
    except RbacSpecError as exc:
        module.fail_json(msg='user %s: %s' % (name, exc), user=name)

    def action(client):
        try:
            # Without a token etcd would judge the request by a certificate name (see EtcdUserNotFound).
            if not client.username and client.auth_status():
                raise EtcdAuthError('etcd at %s: %s' % (', '.join(client.endpoints), NO_CREDENTIALS))
            current = read_roles(client, name)
            if params['state'] == 'absent':
                return ensure_absent(module, client, name, current)
            return ensure_present(module, client, name, current, desired_roles)
        except EtcdError as exc:
            raise explain_error(exc)

    run_with_client(module, action)


if __name__ == '__main__':
    main()
