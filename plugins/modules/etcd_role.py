#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: pgha.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: etcd_role
short_description: Manage an etcd RBAC role and its key permissions
version_added: 0.1.0
description:
  - Creates or deletes a role in etcd's role-based access control, and makes the role hold exactly the key
    permissions listed (or at least them, with O(exclusive=false)).
  - etcd identifies a permission by its key range (a single key, every key under a prefix, or an explicit range);
    when a listed range is already granted with another type, the module grants it again with the listed type,
    which replaces the old one.
  - Every permission entry is checked before the first request to etcd, so a bad entry changes nothing.
options:
  name:
    description:
      - Name of the role.
      - The built-in role V(root) may be created or deleted, but its permissions cannot be managed, because etcd
        gives V(root) access to everything. O(permissions) must not be set for it.
    type: str
    required: true
  state:
    description:
      - V(present) creates the role if needed and applies O(permissions).
      - V(absent) deletes the role if it exists; its users lose it. etcd refuses to delete V(root) while
        authentication is enabled.
    type: str
    choices: [present, absent]
    default: present
  permissions:
    description:
      - Key permissions the role must hold.
      - When not set, the permissions of an existing role are left as they are (a new role gets none).
      - An empty list with O(exclusive=true) revokes every permission of the role.
      - A key range may be listed once; listing the same range twice with different types is an error.
    type: list
    elements: dict
    suboptions:
      key:
        description:
          - The key, or the first key of the range. Must not be empty.
        type: str
        required: true
      prefix:
        description:
          - Cover every key that starts with O(permissions[].key), for example V(/service/main/).
          - Cannot be combined with O(permissions[].range_end).
        type: bool
        default: false
      range_end:
        description:
          - Cover the keys from O(permissions[].key) up to, not including, this key (etcd's C([key, range_end))).
          - Must sort after O(permissions[].key). A single zero byte means every key from O(permissions[].key) on.
          - Cannot be combined with O(permissions[].prefix=true).
        type: str
      type:
        description:
          - V(read), V(write) or V(readwrite), in any capitalisation.
        type: str
        default: read
  exclusive:
    description:
      - When V(true), permissions the role holds but O(permissions) does not list are revoked.
      - When V(false), they are kept and only missing or differently typed ones are granted.
      - Has no effect when O(permissions) is not set.
    type: bool
    default: true
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
      - The diff shows the role's permissions before and after, each as O(permissions[].key),
        O(permissions[].prefix), O(permissions[].range_end) and O(permissions[].type).
  platform:
    platforms: posix
notes:
  - Once authentication is enabled, managing roles needs the credentials of a user holding the V(root) role
    (O(username) and O(password)).
seealso:
  - module: pgha.cluster.etcd_user
  - module: pgha.cluster.etcd_auth
author:
  - pgha.cluster maintainers (@pgha)
'''

EXAMPLES = r'''
- name: Patroni of cluster "main" reads and writes its own keys, nothing else
  pgha.cluster.etcd_role:
    endpoints: ["https://etcd1.example.com:2379"]
    ca_cert: /etc/pgha/ca.crt
    client_cert: /etc/pgha/admin.crt
    client_key: /etc/pgha/admin.key
    username: root
    password: "{{ etcd_root_password }}"
    name: patroni-main
    permissions:
      - key: /service/main/
        prefix: true
        type: readwrite

- name: The load balancer agent only reads
  pgha.cluster.etcd_role:
    name: lb-main
    permissions:
      - key: /service/main/
        prefix: true
      - key: /pgha/lb/main/
        prefix: true
        type: read

- name: Add one permission, keep whatever else the role holds
  pgha.cluster.etcd_role:
    name: ops
    exclusive: false
    permissions:
      - key: /pgha/maintenance
        type: write

- name: The root role must exist before etcd's authentication can be enabled
  pgha.cluster.etcd_role:
    name: root

- name: Remove a role
  pgha.cluster.etcd_role:
    name: patroni-old
    state: absent
'''

RETURN = r'''
role:
  description: Name of the role.
  returned: always
  type: str
  sample: patroni-main
permissions:
  description:
    - The role's permissions after the task (in check mode, the ones it would hold); empty for O(state=absent).
  returned: always
  type: list
  elements: dict
  contains:
    key:
      description: The key, or the first key of the range.
      type: str
      sample: /service/main/
    prefix:
      description: Whether the permission covers every key that starts with RV(permissions[].key).
      type: bool
      sample: true
    range_end:
      description: End of an explicit range (not included); V(null) for a single key or a prefix.
      type: str
      sample: null
    type:
      description: V(read), V(write) or V(readwrite).
      type: str
      sample: readwrite
  sample: [{key: /service/main/, prefix: true, range_end: null, type: readwrite}]
granted:
  description: Permissions granted by the task (new ranges and ranges whose type changed), in the same shape.
  returned: always
  type: list
  elements: dict
  sample: [{key: /service/main/, prefix: true, range_end: null, type: readwrite}]
revoked:
  description:
    - Permissions revoked by the task, in the same shape.
    - For O(state=absent), the permissions the deleted role held.
  returned: always
  type: list
  elements: dict
  sample: []
'''

from ansible_collections.pgha.cluster.plugins.module_utils.etcd_errors import EtcdAuthError, EtcdError, EtcdRoleNotFound
from ansible_collections.pgha.cluster.plugins.module_utils.etcd_module import etcd_module, run_with_client
from ansible_collections.pgha.cluster.plugins.module_utils.etcd_rbac import (
    NO_CREDENTIALS,
    ROOT,
    RbacSpecError,
    explain_error,
    from_etcd,
    normalize_permissions,
    permissions_to_dicts,
    plan_permissions,
)


def read_permissions(client, name):
    """The role's permissions as PermSpecs, or None when there is no such role."""
    try:
        return [from_etcd(p) for p in client.role_get(name)]
    except EtcdRoleNotFound:
        return None


def _state(current):
    if current is None:
        return {'state': 'absent'}
    return {'state': 'present', 'permissions': permissions_to_dicts(current)}


def ensure_role(module, client, desired):
    name, state = module.params['name'], module.params['state']
    current = read_permissions(client, name)
    result = {'changed': False, 'role': name, 'granted': [], 'revoked': []}

    if state == 'absent':
        result['permissions'] = []
        if current is not None:
            result.update(changed=True, revoked=permissions_to_dicts(current))
            if not module.check_mode:
                client.role_delete(name)
        after = None
    else:
        plan = plan_permissions(current or [], desired, module.params['exclusive'])
        result.update(permissions=permissions_to_dicts(plan.after), granted=permissions_to_dicts(plan.grant),
                      revoked=permissions_to_dicts(plan.revoke))
        result['changed'] = current is None or bool(plan.grant or plan.revoke)
        if result['changed'] and not module.check_mode:
            if current is None:
                client.role_add(name)
            for spec in plan.grant:
                client.role_grant_permission(name, spec.key, spec.perm_type, range_end=spec.range_end)
            for spec in plan.revoke:
                client.role_revoke_permission(name, spec.key, range_end=spec.range_end)
        after = plan.after

    if module._diff:
        result['diff'] = {'before': _state(current), 'after': _state(after)}
    return result


def main():
    module = etcd_module(
        argument_spec=dict(
            name=dict(type='str', required=True),
            state=dict(type='str', choices=['present', 'absent'], default='present'),
            permissions=dict(type='list', elements='dict', options=dict(
                key=dict(type='str', required=True, no_log=False),
                prefix=dict(type='bool', default=False),
                range_end=dict(type='str'),
                type=dict(type='str', default='read'),
            )),
            exclusive=dict(type='bool', default=True),
        ),
        supports_check_mode=True,
    )
    params = module.params
    name = params['name']
    if not name or not name.strip():
        module.fail_json(msg='name must not be empty', role=name)
    if name == ROOT and params['permissions'] is not None and params['state'] == 'present':
        module.fail_json(msg="the permissions of etcd's built-in role 'root' cannot be managed: etcd grants it "
                             "access to every key and ignores its permission list; remove 'permissions' from "
                             "this task (state=present then only makes sure the role exists)", role=name)
    desired = None
    if params['state'] == 'present':
        try:
            desired = normalize_permissions(params['permissions'])
        except RbacSpecError as exc:
            module.fail_json(msg='role %s: %s' % (name, exc), role=name)

    def action(client):
        try:
            # Without a token etcd would judge the request by a certificate name (see EtcdUserNotFound).
            if not client.username and client.auth_status():
                raise EtcdAuthError('etcd at %s: %s' % (', '.join(client.endpoints), NO_CREDENTIALS))
            return ensure_role(module, client, desired)
        except EtcdError as exc:
            raise explain_error(exc)

    run_with_client(module, action)


if __name__ == '__main__':
    main()
