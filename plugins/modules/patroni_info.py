#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: pgha.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: patroni_info
short_description: State of a Patroni cluster as Patroni keeps it in etcd - leader, primary, replicas, lag
version_added: 0.1.0
description:
  - Reads the keys Patroni keeps for one cluster under C(/<namespace>/<scope>/) in etcd (one range read) and
    reports the leader, the primary, the replicas with their lag, the dynamic configuration, a pending switchover
    and anything inconsistent. Changes nothing.
  - Only etcd has to be reachable, so the module can run on any host, for example the controller with
    C(delegate_to).
  - With O(rest_api=true) it also asks every member's REST API (C(GET /patroni) at the C(api_url) the member
    advertises) for its own view. A member whose API does not answer is reported in its entry of RV(rest); the
    module does not fail for it.
  - A scope without any key in etcd is not an error; the module returns RV(exists=false).
options:
  rest_api:
    description:
      - Also query each member's REST API (C(GET /patroni)) and report the answers in RV(rest).
      - The API URLs are the ones the members advertise in etcd; they must be reachable from the host the module
        runs on.
    type: bool
    default: false
extends_documentation_fragment:
  - pgha.cluster.patroni
  - pgha.cluster.patroni.actiongroup
  - pgha.cluster.etcd
  - pgha.cluster.patroni_rest
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: The module only reads, so it does the same in check mode.
  diff_mode:
    support: none
  platform:
    platforms: posix
notes:
  - The etcd user needs read access to C(/<namespace>/<scope>/) only (for example the load balancer's
    read-only user).
seealso:
  - module: pgha.cluster.etcd_info
author:
  - pgha.cluster maintainers (@pgha)
'''

EXAMPLES = r'''
- name: Read the state of the Patroni cluster from the controller
  pgha.cluster.patroni_info:
    scope: main
    endpoints: ["https://10.0.0.1:2379", "https://10.0.0.2:2379"]
    ca_cert: /etc/pgha/ca.crt
    client_cert: /etc/pgha/admin.crt
    client_key: /etc/pgha/admin.key
    username: lb-main
    password: "{{ etcd_lb_password }}"
  delegate_to: localhost
  run_once: true
  register: patroni

- name: Stop when there is no primary
  ansible.builtin.assert:
    that: patroni.primary is not none
    fail_msg: "no primary: {{ patroni.cluster.warnings }}"

- name: Ask every member's REST API too
  pgha.cluster.patroni_info:
    scope: main
    endpoints: ["https://10.0.0.1:2379"]
    ca_cert: /etc/pgha/ca.crt
    rest_api: true
    rest_ca_cert: /etc/pgha/ca.crt
  register: patroni
'''

RETURN = r'''
exists:
  description: Whether etcd holds any key of the scope. When V(false), the other values describe an empty cluster.
  returned: always
  type: bool
  sample: true
primary:
  description:
    - Name of the member to send writes to (it holds the leader key, runs, and its role is primary); V(null) when
      there is none (no leader, leader not running, or a standby cluster).
  returned: always
  type: str
  sample: pg-1
replicas:
  description: Names of the running replicas (members tagged C(noloadbalance) left out), sorted.
  returned: always
  type: list
  elements: str
  sample: [pg-2, pg-3]
leader:
  description: The member named by the leader key; V(null) when there is no leader key.
  returned: always
  type: str
  sample: pg-1
members:
  description: Number of member keys (valid or not).
  returned: always
  type: int
  sample: 3
cluster:
  description:
    - Everything parsed from the scope's keys; see the C(ClusterState) of the collection's
      C(patroni_state) module utility for every field.
    - Each entry of C(members) has, among others, C(name), C(role), C(state), C(running), C(is_leader),
      C(host), C(port), C(api_url), C(timeline), C(lag) (bytes behind the leader, V(null) when unknown), C(tags)
      and C(warnings).
  returned: always
  type: dict
  contains:
    scope:
      description: The scope.
      type: str
      sample: main
    prefix:
      description: The etcd key prefix read.
      type: str
      sample: /service/main/
    leader:
      description: The leader key's value.
      type: str
      sample: pg-1
    members:
      description: One entry per member key, sorted by name.
      type: list
      elements: dict
    config:
      description: The dynamic configuration (C(ttl), C(loop_wait), C(synchronous_mode), C(paused), ...).
      type: dict
    failover:
      description: A requested switchover or failover (C(pending), C(leader), C(candidate), C(scheduled_at)).
      type: dict
    history:
      description: Timeline switches.
      type: list
      elements: dict
    warnings:
      description: Every inconsistency found (no leader, a member that is not running, invalid keys, ...).
      type: list
      elements: str
rest:
  description:
    - Per member name, what its REST API answered to C(GET /patroni).
  returned: when O(rest_api=true)
  type: dict
  sample:
    pg-1:
      api_url: http://10.0.0.1:8008/patroni
      ok: true
      error: null
      state: running
      role: primary
      response: {"state": "running", "role": "primary", "timeline": 1}
  contains:
    api_url:
      description: The member's advertised C(api_url); V(null) when it advertises none.
      type: str
    ok:
      description: Whether the API answered.
      type: bool
    error:
      description: Why the API could not be queried (unreachable, TLS, authentication...); V(null) when it answered.
      type: str
    state:
      description: The C(state) the API reports (for example V(running)).
      type: str
    role:
      description: The C(role) the API reports (for example V(primary) or V(replica)).
      type: str
    response:
      description: The whole answer of C(GET /patroni).
      type: dict
'''

from ansible_collections.pgha.cluster.plugins.module_utils.patroni_module import rest_client, run_patroni_module
from ansible_collections.pgha.cluster.plugins.module_utils.patroni_rest import PatroniRestError
from ansible_collections.pgha.cluster.plugins.module_utils.patroni_state import cluster_prefix, parse_cluster_state


def rest_entry(rest, member):
    entry = {'api_url': member.api_url, 'ok': False, 'error': None, 'state': None, 'role': None, 'response': None}
    if not member.api_url:
        entry['error'] = 'member %s advertises no api_url in etcd' % member.name
        return entry
    try:
        answer = rest.patroni(member.api_url)
    except PatroniRestError as exc:
        entry['error'] = str(exc)
        return entry
    if not isinstance(answer, dict):
        entry['error'] = 'Patroni REST API at %s answered with JSON that is not an object' % member.api_url
        return entry
    entry.update(ok=True, state=answer.get('state'), role=answer.get('role'), response=answer)
    return entry


def gather(module, client):
    params = module.params
    prefix = cluster_prefix(params['namespace'], params['scope'])
    # One read, parsed by the one parser; the raw keys also tell whether the scope exists at all
    # (an empty ClusterState cannot distinguish "no keys" from "keys that say nothing").
    keys = client.get_prefix(prefix)
    state = parse_cluster_state(keys, params['namespace'], params['scope'])
    data = state.to_dict()
    result = {
        'changed': False,
        'exists': bool(keys),
        'cluster': data,
        'primary': data['primary'],
        'replicas': data['replicas'],
        'leader': state.leader,
        'members': len(state.members),
    }
    if params['rest_api']:
        rest = rest_client(params)
        result['rest'] = dict((m.name, rest_entry(rest, m)) for m in state.members)
    return result


def main():
    run_patroni_module(gather, dict(
        rest_api=dict(type='bool', default=False),
    ))


if __name__ == '__main__':
    main()
