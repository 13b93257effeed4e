#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: pgha.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: etcd_auth
short_description: Enable or disable etcd's authentication
version_added: 0.1.0
description:
  - Switches etcd's authentication (and with it role-based access control) on or off for the whole cluster.
  - Once it is enabled, every request needs a user's credentials and is limited to the user's roles; the user
    V(root) with the role V(root) may do everything, including managing users and roles.
  - Before enabling, the module checks that the user V(root) exists and holds the role V(root), which etcd
    requires; when it does not, the module fails without changing anything and says how to create it.
options:
  state:
    description:
      - V(enabled) turns authentication on, V(disabled) turns it off.
      - Disabling needs the credentials of a user with the V(root) role in O(username) and O(password).
    type: str
    choices: [enabled, disabled]
    default: enabled
extends_documentation_fragment:
  - pgha.cluster.etcd
  - pgha.cluster.etcd.actiongroup
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details:
      - In check mode a missing V(root) user only gives a warning (a task before this one may be meant to create
        it), where a real run fails.
  diff_mode:
    support: full
    details:
      - The diff shows C(auth_enabled) before and after.
  platform:
    platforms: posix
notes:
  - etcd 3.4 has no call that reports whether authentication is enabled; the module then finds out by trying to
    log in, which works with or without credentials.
  - Keep the root password. With authentication enabled and no root credentials, users, roles and authentication
    itself can no longer be managed.
seealso:
  - module: pgha.cluster.etcd_user
  - module: pgha.cluster.etcd_role
author:
  - pgha.cluster maintainers (@pgha)
'''

EXAMPLES = r'''
- name: Users and roles are in place; switch RBAC on
  pgha.cluster.etcd_auth:
    endpoints: ["https://etcd1.example.com:2379"]
    ca_cert: /etc/pgha/ca.crt
    client_cert: /etc/pgha/admin.crt
    client_key: /etc/pgha/admin.key
    username: root
    password: "{{ etcd_root_password }}"
    state: enabled

- name: Switch authentication off again (needs root's credentials)
  pgha.cluster.etcd_auth:
    username: root
    password: "{{ etcd_root_password }}"
    state: disabled
'''

RETURN = r'''
auth_enabled:
  description: Whether authentication is enabled after the task (in check mode, whether it would be).
  returned: always
  type: bool
  sample: true
'''

from ansible_collections.pgha.cluster.plugins.module_utils.etcd_errors import (
    EtcdAuthError,
    EtcdPermissionDenied,
    EtcdUserNotFound,
)
from ansible_collections.pgha.cluster.plugins.module_utils.etcd_module import etcd_module, run_with_client
from ansible_collections.pgha.cluster.plugins.module_utils.etcd_rbac import ROOT

ROOT_FIX = ("create them first, for example with pgha.cluster.etcd_role (name: root) and then pgha.cluster.etcd_user "
            "(name: root, user_password: <a secret you keep>, roles: [root])")
DISABLE_HINT = "disabling authentication needs the credentials of a user with the root role: set username and password"


def root_problem(client):
    """Why etcd would refuse to enable authentication (no root user, or it lacks the root role); None if ready."""
    try:
        roles = client.user_get(ROOT)
    except EtcdUserNotFound:
        return "etcd has no user 'root' (etcd enables authentication only when user 'root' holds role 'root')"
    if ROOT not in roles:
        return "etcd's user 'root' does not hold role 'root' (etcd enables authentication only when it does)"
    return None


def ensure_auth(module, client):
    want = module.params['state'] == 'enabled'
    before = client.auth_status()
    result = {'changed': before != want, 'auth_enabled': want}
    if module._diff:
        result['diff'] = {'before': {'auth_enabled': before}, 'after': {'auth_enabled': want}}
    if not result['changed']:
        return result
    if want:
        problem = root_problem(client)
        if problem:
            if not module.check_mode:
                module.fail_json(msg='cannot enable authentication: %s; %s. Nothing was changed.' % (problem, ROOT_FIX),
                                 auth_enabled=False)
            module.warn('enabling authentication would fail now: %s' % problem)
        if not module.check_mode:
            client.auth_enable()
    elif not module.check_mode:
        try:
            client.auth_disable()
        except (EtcdPermissionDenied, EtcdAuthError) as exc:
            exc.message = '%s (%s)' % (exc.message, DISABLE_HINT)
            raise
    return result


def main():
    module = etcd_module(
        argument_spec=dict(
            state=dict(type='str', choices=['enabled', 'disabled'], default='enabled'),
        ),
        supports_check_mode=True,
    )

    run_with_client(module, lambda client: ensure_auth(module, client))


if __name__ == '__main__':
    main()
