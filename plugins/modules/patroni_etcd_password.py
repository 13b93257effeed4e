#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: pgha.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: patroni_etcd_password
short_description: Change the etcd password of a running Patroni cluster without cutting Patroni off from etcd
version_added: 0.1.0
description:
  - Makes etcd accept O(patroni_password) for the etcd user Patroni logs in as (O(patroni_user)), after every
    running member's Patroni has taken that password from its reloaded configuration file.
  - The order is what keeps Patroni connected. etcd invalidates every token when a password changes, and Patroni
    then logs in again with the password its configuration holds, so that configuration must hold the new
    password first. Patroni applies a reloaded configuration at the start of its next cycle; the module waits
    until each running member's REST API shows a cycle begun after the module started (two new values of
    C(dcs_last_seen) in C(GET /patroni)), changes the password right away, and then waits until every member
    has reached etcd again and the leader still holds the leader key.
  - The caller writes the new password into every member's configuration file and reloads Patroni before the
    module runs; running the module in maintenance mode (C(pause)) keeps a primary that cannot log in for a
    moment from demoting itself.
  - Nothing is changed when etcd already accepts O(patroni_password), or when etcd has authentication disabled.
  - Changing a password needs a user with etcd's C(root) role - O(username) and O(password) are its login.
    Patroni's own user cannot change its password (etcd 3.4).
  - Fails before changing anything when a member runs Patroni in the cluster but is not one of O(members) (it was
    not given the new password), or when a running member does not show a new cycle within O(wait_timeout).
options:
  patroni_user:
    description: The etcd user Patroni logs in as (the pgha.cluster.etcd role creates C(patroni-<scope>)).
    type: str
    required: true
  patroni_password:
    description: The password Patroni's configuration holds now, which etcd must accept.
    type: str
    required: true
  members:
    description:
      - Names of the members whose Patroni was given O(patroni_password) (configuration written and reloaded).
      - Every member that runs Patroni in the cluster must be one of them.
    type: list
    elements: str
    default: []
  wait_timeout:
    description: Seconds to wait for the members, before and after the change.
    type: float
    default: 120
extends_documentation_fragment:
  - pgha.cluster.patroni
  - pgha.cluster.patroni.actiongroup
  - pgha.cluster.etcd
  - pgha.cluster.patroni_rest
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details:
      - Reports whether the password would change; it checks the login of O(username) when it would.
  diff_mode:
    support: none
  platform:
    platforms: posix
notes:
  - The module never shows a password, in its output or in its messages.
seealso:
  - module: pgha.cluster.etcd_user
  - module: pgha.cluster.patroni_config
author:
  - pgha.cluster maintainers (@pgha)
'''

EXAMPLES = r'''
- name: Hand Patroni its new etcd password (patroni.yml written and reloaded on every member before)
  pgha.cluster.patroni_etcd_password:
    scope: main
    endpoints: ["https://10.0.0.1:2379", "https://10.0.0.2:2379"]
    ca_cert: /etc/pgha/pki/ca.crt
    client_cert: /etc/pgha/pki/client-patroni.crt
    client_key: /etc/pgha/pki/client-patroni.key
    username: root
    password: "{{ etcd_root_password }}"
    patroni_user: patroni-main
    patroni_password: "{{ patroni_etcd_password }}"
    members: [pg1, pg2, pg3]
    rest_ca_cert: /etc/pgha/pki/ca.crt
  no_log: true
'''

RETURN = r'''
user:
  description: The etcd user whose password was checked.
  returned: always
  type: str
  sample: patroni-main
accepted_before:
  description: Whether etcd accepted O(patroni_password) before the module ran (V(null) when authentication is off).
  returned: always
  type: bool
  sample: false
confirmed:
  description: The running members that showed a cycle begun after their configuration was reloaded.
  returned: always
  type: list
  elements: str
  sample: [pg1, pg2, pg3]
leader:
  description: The member holding the leader key before and after the change.
  returned: always
  type: str
  sample: pg1
'''

import time

from ansible_collections.pgha.cluster.plugins.module_utils.etcd_errors import EtcdUserNotFound
from ansible_collections.pgha.cluster.plugins.module_utils.etcd_module import run_with_client
from ansible_collections.pgha.cluster.plugins.module_utils.patroni_cycles import CycleTracker
from ansible_collections.pgha.cluster.plugins.module_utils.patroni_module import (
    patroni_module,
    read_state,
    rest_client,
)
from ansible_collections.pgha.cluster.plugins.module_utils.patroni_rest import PatroniRestError

POLL_SECONDS = 0.5


def _answer(rest, member):
    try:
        return rest.patroni(member.api_url) if member.api_url else None
    except PatroniRestError:
        return None


def wait_for_cycles(module, state, what, changed):
    """Until every member of ``state`` has begun a Patroni cycle after now; fails naming those that have not
    (``changed``: whether etcd has the new password already)."""
    members = dict((m.name, m) for m in state.members if not m.invalid)
    tracker = CycleTracker(members)
    rest = rest_client(module.params)
    deadline = time.monotonic() + module.params['wait_timeout']
    while True:
        for name in tracker.pending():
            tracker.observe(name, _answer(rest, members[name]))
        pending = tracker.pending()
        if not pending:
            return sorted(members)
        if time.monotonic() > deadline:
            module.fail_json(msg='%s: the Patroni of %s showed no cycle begun %s within %ss (its REST API at %s '
                                 'answered %s)' % (
                                     state.scope, ', '.join(pending), what, module.params['wait_timeout'],
                                     ', '.join(members[n].api_url or '(none advertised)' for n in pending),
                                     '; '.join('%s: %s' % (n, _describe(tracker.last_answer(n))) for n in pending)),
                             changed=changed, user=module.params['patroni_user'], pending=pending)
        time.sleep(POLL_SECONDS)


def _describe(answer):
    if answer is None:
        return 'nothing'
    return 'state %s, dcs_last_seen %s' % (answer.get('state'), answer.get('dcs_last_seen'))


def rotate(module, client):
    params = module.params
    user, password = params['patroni_user'], params['patroni_password']
    accepted = client.check_password(user, password)
    result = {'changed': False, 'user': user, 'accepted_before': accepted, 'confirmed': [], 'leader': None}
    if accepted is not False:
        # None: authentication is disabled, etcd checks no password at all.
        return result
    if not params['username']:
        module.fail_json(msg='etcd refuses the password given for %s: changing it needs the login of a user with '
                             "etcd's root role (username and password); nothing was changed" % user, **result)
    try:
        client.user_get(user)
    except EtcdUserNotFound:
        module.fail_json(msg='etcd has no user %s: the pgha.cluster.etcd role creates it (run it first); nothing '
                             'was changed' % user, **result)
    state = read_state(module, client)
    result['leader'] = state.leader
    strangers = sorted(m.name for m in state.members if m.name not in params['members'])
    if strangers:
        module.fail_json(msg='%s runs Patroni on %s, which %s not given the new password (members: %s): every '
                             'member of the cluster must have it before etcd does; nothing was changed' % (
                                 state.scope, ', '.join(strangers), 'was' if len(strangers) == 1 else 'were',
                                 ', '.join(params['members']) or 'none'), **result)
    result['changed'] = True
    if module.check_mode:
        return result
    result['confirmed'] = wait_for_cycles(module, state, 'since its configuration was reloaded', changed=False)
    client.user_change_password(user, password)
    if client.check_password(user, password) is not True:
        module.fail_json(msg='etcd still refuses the new password of %s after changing it' % user, **result)
    wait_for_cycles(module, state, 'since etcd took the new password', changed=True)
    after = read_state(module, client)
    if state.leader and after.leader != state.leader:
        module.fail_json(msg='%s: the leader key was held by %s before the password of %s changed and is held by %s '
                             'now' % (state.scope, state.leader, user, after.leader or 'nobody'), **result)
    return result


def main():
    module = patroni_module(dict(
        patroni_user=dict(type='str', required=True),
        patroni_password=dict(type='str', required=True, no_log=True),
        members=dict(type='list', elements='str', default=[]),
        wait_timeout=dict(type='float', default=120.0),
    ), supports_check_mode=True)
    run_with_client(module, lambda client: rotate(module, client))


if __name__ == '__main__':
    main()
