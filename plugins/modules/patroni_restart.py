#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: pgha.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: patroni_restart
short_description: Restart PostgreSQL on the members of a Patroni cluster whose settings need it
version_added: 0.1.0
description:
  - Restarts the PostgreSQL of every member that Patroni flags C(pending_restart) (a changed setting that
    PostgreSQL only takes at start), one member at a time, through Patroni's REST API (C(POST /restart) with
    C(restart_pending)). Patroni answers once PostgreSQL runs again; the module then waits until the member
    reports C(running) and the cluster has a primary before it restarts the next one.
  - Replicas go first, by name, and the leader last, so that the leader restarts at most once and only after
    every replica runs the new settings.
  - Lowering C(max_connections), C(max_wal_senders), C(max_worker_processes), C(max_prepared_transactions) or
    C(max_locks_per_transaction) needs a second pass - a replica keeps the primary's old, higher value until it
    has replayed the restarted primary's change, so the replicas still pending then are restarted again once
    they have replayed it.
  - The module ends when etcd shows a primary and no member with a pending restart.
  - Whether a member is pending is asked of its own REST API (C(GET /patroni)); the members and the leader
    are read from etcd. Only etcd and the members' REST APIs have to be reachable, so the module can run on any
    host.
options:
  wait_for_config:
    description:
      - First wait until every running member has applied the dynamic configuration that etcd holds (Patroni
        does that within about two of its cycles, C(loop_wait)), so that a change just made, for example by
        M(pgha.cluster.patroni_config) or a reloaded configuration file, shows as pending where it needs a
        restart.
      - Set to V(false) to act on what the members report right away.
    type: bool
    default: true
  wait_timeout:
    description:
      - Seconds each wait may take, and each restart request (Patroni answers it once PostgreSQL is up again).
    type: float
    default: 300
extends_documentation_fragment:
  - pgha.cluster.patroni
  - pgha.cluster.patroni.actiongroup
  - pgha.cluster.etcd
  - pgha.cluster.patroni_rest
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Nothing is restarted; RV(restarted) lists the members the first pass would restart.
  diff_mode:
    support: none
  platform:
    platforms: posix
notes:
  - Patroni protects C(POST /restart) with C(restapi.authentication) when it is configured; pass
    O(rest_username) and O(rest_password) then.
  - Clients connected to a member are disconnected when its PostgreSQL restarts.
seealso:
  - module: pgha.cluster.patroni_config
  - module: pgha.cluster.patroni_info
  - name: Patroni REST API
    description: The restart endpoint.
    link: https://patroni.readthedocs.io/en/latest/rest_api.html
author:
  - pgha.cluster maintainers (@pgha)
'''

EXAMPLES = r'''
- name: Change a setting that needs a restart, then restart the members that need it
  delegate_to: localhost
  run_once: true
  module_defaults:
    group/pgha.cluster.patroni:
      scope: main
      endpoints: ["https://10.0.0.1:2379"]
      ca_cert: /etc/pgha/ca.crt
      username: patroni-main
      password: "{{ etcd_patroni_password }}"
      rest_ca_cert: /etc/pgha/ca.crt
      rest_username: patroni
      rest_password: "{{ patroni_rest_password }}"
  block:
    - name: Raise max_connections (PostgreSQL takes it only at start)
      pgha.cluster.patroni_config:
        settings:
          postgresql:
            parameters:
              max_connections: 200

    - name: Restart the members that need it, replicas first and the leader last
      pgha.cluster.patroni_restart: {}
      register: restart

- name: Only list the members that need a restart now
  pgha.cluster.patroni_restart:
    scope: main
    wait_for_config: false
  check_mode: true
  register: would_restart
'''

RETURN = r'''
pending:
  description: The members that had a pending restart when the module looked, sorted.
  returned: always
  type: list
  elements: str
  sample: [pg-1, pg-2]
restarted:
  description:
    - The members whose PostgreSQL was restarted, in the order of the restarts; a replica restarted in both
      passes is named twice.
    - In check mode, the members the first pass would restart.
  returned: always
  type: list
  elements: str
  sample: [pg-2, pg-1]
'''

from ansible_collections.pgha.cluster.plugins.module_utils.patroni_module import (
    read_state,
    rest_client,
    run_patroni_module,
)
from ansible_collections.pgha.cluster.plugins.module_utils.patroni_restart import PendingRestarts, RestartError


def run(module, client):
    state = read_state(module, client)
    config = state.config
    if not config.present or config.invalid:
        problem = 'cannot be used: %s' % config.reason if config.present else 'does not exist'
        module.fail_json(msg='%sconfig in etcd %s' % (state.prefix, problem))
    restarts = PendingRestarts(rest_client(module.params), lambda: read_state(module, client),
                               module.params['wait_timeout'])
    try:
        result = restarts.run(wait_for_config=module.params['wait_for_config'], check_mode=module.check_mode)
    except RestartError as exc:
        module.fail_json(msg=str(exc), changed=bool(exc.restarted), restarted=exc.restarted)
    result['changed'] = bool(result['restarted'])
    return result


def main():
    run_patroni_module(run, dict(
        wait_for_config=dict(type='bool', default=True),
        wait_timeout=dict(type='float', default=300.0),
    ))


if __name__ == '__main__':
    main()
