#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: pgha.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: etcd_key
short_description: Put or delete an etcd key, or delete every key under a prefix
version_added: 0.1.0
description:
  - Makes sure a key in etcd holds a value (O(state=present)) or does not exist (O(state=absent)).
  - With O(prefix=true) and O(state=absent), deletes every key that starts with O(key).
  - The key is read, compared and written in one etcd transaction that checks the key was not modified since it
    was read, so a concurrent change by another client is never overwritten blindly. When that happens, the module
    reads and compares once more; if the key changed again, it fails and says so.
options:
  key:
    description:
      - The etcd key, or with O(prefix=true) the prefix of the keys to delete.
      - Must not be empty (except for a prefix deletion with O(force=true)).
    type: str
    required: true
  state:
    description:
      - V(present) writes O(value) or O(value_json) unless the key already holds it.
      - V(absent) deletes the key (or, with O(prefix=true), every key under it) if it exists.
    type: str
    choices: [present, absent]
    default: present
  value:
    description:
      - The value to store, as text; compared byte for byte with the stored value.
      - One of O(value) and O(value_json) is required with O(state=present). Ignored with O(state=absent).
    type: str
  value_json:
    description:
      - Data to store as JSON, written compact with sorted keys.
      - Compared as data with the stored value (parsed as JSON), so a stored value that differs only in key order or
        white space counts as unchanged; a stored value that is not JSON always differs.
      - A string is taken as JSON text and must parse (for example the content of a file); to store a JSON string,
        quote it (V('"text"')).
      - Ignored with O(state=absent).
    type: raw
  prefix:
    description:
      - With O(state=absent), delete every key that starts with O(key).
      - Not allowed with O(state=present).
    type: bool
    default: false
  force:
    description:
      - Allow a prefix deletion of V('') or V(/), which removes (nearly) every key in etcd.
    type: bool
    default: false
  lease_ttl:
    description:
      - Attach the key to a new lease with this TTL in seconds, so that etcd deletes the key when the lease expires.
      - The module does not keep the lease alive.
      - A new lease is granted when the value is written, or when the value already matches but the key has no lease;
        when the value matches and the key already has a live lease, nothing is changed.
      - When not set, a value change keeps the lease the key already has (if any).
      - Ignored with O(state=absent).
    type: int
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
      - For a prefix deletion, the diff lists the keys to delete (at most 100, then a count).
      - With O(value_json), the diff shows both values pretty-printed.
  platform:
    platforms: posix
notes:
  - The etcd user needs read and write permission on the key (or the whole prefix).
seealso:
  - module: pgha.cluster.etcd_info
author:
  - pgha.cluster maintainers (@pgha)
'''

EXAMPLES = r'''
- name: Store a plain value
  pgha.cluster.etcd_key:
    endpoints: ["https://etcd1.example.com:2379"]
    ca_cert: /etc/pgha/ca.crt
    client_cert: /etc/pgha/admin.crt
    client_key: /etc/pgha/admin.key
    username: root
    password: "{{ etcd_root_password }}"
    key: /pgha/lb/main/maintenance
    value: "off"

- name: Store structured data as JSON (unchanged when only key order differs)
  pgha.cluster.etcd_key:
    endpoints: ["https://etcd1.example.com:2379"]
    ca_cert: /etc/pgha/ca.crt
    key: /pgha/lb/main/policy
    value_json:
      max_lag: 1048576
      replicas: true

- name: A key that disappears after 60 seconds unless refreshed
  pgha.cluster.etcd_key:
    key: /pgha/lb/main/drain
    value: pg2
    lease_ttl: 60

- name: Delete every key of an old cluster
  pgha.cluster.etcd_key:
    key: /service/old/
    prefix: true
    state: absent
'''

RETURN = r'''
key:
  description: The key (or prefix) the task was about.
  returned: always
  type: str
  sample: /pgha/lb/main/maintenance
value:
  description:
    - The value the key holds after the task (in check mode, the value it would hold).
    - V(null) for O(state=absent).
  returned: always
  type: str
  sample: "off"
previous:
  description: The value before the task; V(null) when the key did not exist or for a prefix deletion.
  returned: always
  type: str
  sample: "on"
revision:
  description: The etcd revision after the change, or of the read when nothing changed (and in check mode).
  returned: always
  type: int
  sample: 1042
deleted:
  description: How many keys were deleted (in check mode, would be deleted).
  returned: when O(state=absent)
  type: int
  sample: 1
lease:
  description:
    - ID of the lease the key is attached to after the task (the new one when the task granted it).
    - V(null) when the key has no lease, or in check mode when a new lease would be granted.
  returned: when O(state=present)
  type: int
  sample: 7587869389541286000
'''

from ansible_collections.pgha.cluster.plugins.module_utils.etcd_client import Compare, Op
from ansible_collections.pgha.cluster.plugins.module_utils.etcd_errors import EtcdError
from ansible_collections.pgha.cluster.plugins.module_utils.etcd_key_logic import (
    DIFF_KEYS_CAP,
    check_params,
    desired_text,
    key_diff,
    prefix_diff,
    value_matches,
)
from ansible_collections.pgha.cluster.plugins.module_utils.etcd_module import (
    etcd_module,
    run_with_client,
)
from ansible_collections.pgha.cluster.plugins.module_utils.etcd_types import b64, key_range

ATTEMPTS = 2


class ConcurrentChange(Exception):
    pass


def _read(client, key):
    res = client.range(key)
    return (res.kvs[0] if res.kvs else None), res.revision


def _unchanged_since_read(key, kv):
    """Transaction guard: the key is exactly as read (or still absent)."""
    if kv is None:
        return Compare.create_revision(key, '==', 0)
    return Compare.mod_revision(key, '==', kv.mod_revision)


def _prefix_unchanged_since(key, revision):
    """Transaction guard: no key under the prefix was created or modified after ``revision``."""
    start, end = key_range(key, prefix=True)
    guard = Compare.mod_revision(start, '<', revision + 1)
    guard['range_end'] = b64(end)
    return guard


def _revoke_quietly(client, lease_id):
    # An unused lease would expire by itself; revoking just tidies up.
    try:
        client.lease_revoke(lease_id)
    except EtcdError:
        pass


def _written_by_us(client, key, text, is_json, lease_id, keep_lease):
    """The key as our own transaction left it, or None.

    A transaction whose reply was lost is resent by the client to the next
    endpoint (see etcd_client), and the resend's comparison then fails
    against the write the first attempt made. Telling that from another
    client's change matters: revoking the lease our write carries would
    delete the key we just wrote.
    """
    kv = client.get(key)
    if kv is None or not value_matches(kv.value, text, is_json):
        return None
    if lease_id and kv.lease != lease_id:
        return None
    if not lease_id and not keep_lease and kv.lease:
        return None
    return kv


def ensure_present(module, client, text, is_json):
    key, lease_ttl = module.params['key'], module.params['lease_ttl']
    for dummy in range(ATTEMPTS):
        kv, read_revision = _read(client, key)
        previous = kv.value_text if kv else None
        same_value = value_matches(kv.value if kv else None, text, is_json)
        has_lease = bool(kv and kv.lease)
        result = {'key': key, 'previous': previous}
        if same_value and (lease_ttl is None or has_lease):
            result.update(changed=False, value=previous, revision=read_revision, lease=kv.lease or None)
            return result
        result['changed'] = True
        if module._diff:
            result['diff'] = key_diff(key, previous, text, is_json)
        # Without lease_ttl a rewrite keeps the key's lease: the module manages the value, not its expiry.
        keep_lease = has_lease and lease_ttl is None
        if module.check_mode:
            result.update(value=text, revision=read_revision, lease=kv.lease if keep_lease else None)
            return result
        lease_id = client.lease_grant(lease_ttl).id if lease_ttl is not None else 0
        put = Op.put(key, text, lease=lease_id)
        if keep_lease:
            put['request_put']['ignore_lease'] = True
        txn = client.txn([_unchanged_since_read(key, kv)], [put])
        if txn.succeeded:
            result.update(value=text, revision=txn.revision, lease=lease_id or (kv.lease if keep_lease else None))
            return result
        ours = _written_by_us(client, key, text, is_json, lease_id, keep_lease)
        if ours is not None:
            result.update(value=text, revision=ours.mod_revision, lease=ours.lease or None)
            return result
        if lease_id:
            _revoke_quietly(client, lease_id)
    raise ConcurrentChange('key %s was changed by another client while this task was writing it (%d attempts); '
                           'not overwriting it blindly: check who else writes it and run the task again'
                           % (key, ATTEMPTS))


def ensure_absent(module, client):
    key = module.params['key']
    for dummy in range(ATTEMPTS):
        kv, read_revision = _read(client, key)
        result = {'key': key, 'value': None, 'previous': kv.value_text if kv else None}
        if kv is None:
            result.update(changed=False, deleted=0, revision=read_revision)
            return result
        result['changed'] = True
        if module._diff:
            result['diff'] = key_diff(key, kv.value_text, None)
        if module.check_mode:
            result.update(deleted=1, revision=read_revision)
            return result
        txn = client.txn([_unchanged_since_read(key, kv)], [Op.delete(key)])
        if txn.succeeded:
            result.update(deleted=txn.responses[0].deleted, revision=txn.revision)
            return result
        gone = client.range(key)
        if not gone.kvs:
            # Deleted by our own transaction, whose reply was lost and whose resend then compared against the
            # deletion (see _written_by_us), or by someone else meanwhile: either way the key is gone.
            result.update(deleted=1, revision=gone.revision)
            return result
    raise ConcurrentChange('key %s was changed by another client while this task was deleting it (%d attempts); '
                           'not deleting a value it has not seen: run the task again' % (key, ATTEMPTS))


def ensure_prefix_absent(module, client):
    key = module.params['key']
    cap = DIFF_KEYS_CAP
    for dummy in range(ATTEMPTS):
        # One request: the total count, the first keys for the diff, and the revision of the read.
        seen = client.range(key, prefix=True, keys_only=True, limit=cap)
        result = {'key': key, 'value': None, 'previous': None}
        if seen.count == 0:
            result.update(changed=False, deleted=0, revision=seen.revision)
            return result
        result['changed'] = True
        if module._diff:
            result['diff'] = prefix_diff(key, [kv.key_text for kv in seen.kvs], total=seen.count, cap=cap)
        if module.check_mode:
            result.update(deleted=seen.count, revision=seen.revision)
            return result
        txn = client.txn([_prefix_unchanged_since(key, seen.revision)], [Op.delete(key, prefix=True)])
        if txn.succeeded:
            result.update(deleted=txn.responses[0].deleted, revision=txn.revision)
            return result
    raise ConcurrentChange('keys under %s were changed by other clients while this task was deleting them '
                           '(%d attempts); not deleting keys it has not seen: run the task again' % (key, ATTEMPTS))


def main():
    module = etcd_module(
        argument_spec=dict(
            key=dict(type='str', required=True, no_log=False),
            state=dict(type='str', choices=['present', 'absent'], default='present'),
            value=dict(type='str'),
            value_json=dict(type='raw'),
            prefix=dict(type='bool', default=False),
            force=dict(type='bool', default=False),
            lease_ttl=dict(type='int'),
        ),
        mutually_exclusive=[('value', 'value_json')],
        required_if=[('state', 'present', ('value', 'value_json'), True)],
        supports_check_mode=True,
    )
    params = module.params
    problem = check_params(params)
    if problem:
        module.fail_json(msg=problem, key=params['key'])
    text = is_json = None
    if params['state'] == 'present':
        try:
            text, is_json = desired_text(params['value'], params['value_json'])
        except ValueError as exc:
            module.fail_json(msg=str(exc), key=params['key'])

    def action(client):
        try:
            if params['state'] == 'present':
                return ensure_present(module, client, text, is_json)
            if params['prefix']:
                return ensure_prefix_absent(module, client)
            return ensure_absent(module, client)
        except ConcurrentChange as exc:
            module.fail_json(msg=str(exc), key=params['key'])

    run_with_client(module, action)


if __name__ == '__main__':
    main()
