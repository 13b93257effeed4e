#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: pgha.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: etcd_info
short_description: Facts about an etcd cluster - members, leader, per-endpoint status and health
version_added: 0.1.0
description:
  - Reads the member list, the leader, the status and health of each endpoint, the cluster version, whether
    authentication is enabled, and the active alarms of an etcd cluster. Changes nothing.
  - An endpoint that does not answer is reported in its entry of RV(endpoints) (with V(healthy=false) and the
    error); the module fails only when no endpoint answers at all.
options:
  status_of:
    description:
      - Which client URLs to query for RV(endpoints).
      - V(configured) queries the URLs of O(endpoints).
      - V(members) queries the client URLs that the members advertise; those may be unreachable from the host the
        module runs on (for example addresses of a private network). A member that has not started yet (no client
        URLs) gets an entry without an endpoint.
      - An endpoint is healthy when its member answers its status without errors, knows a leader, and its
        C(/health) says so; M(pgha.cluster.etcd_member) measures health the same way, where the same choice is called
        O(pgha.cluster.etcd_member#module:health_check). The defaults differ on purpose - this module only reports,
        so it asks the URLs it was given; etcd_member guards quorum, so it asks every member.
    type: str
    choices: [configured, members]
    default: configured
extends_documentation_fragment:
  - pgha.cluster.etcd
  - pgha.cluster.etcd.actiongroup
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
  - Any etcd user can read these facts, and so can a client without credentials.
seealso:
  - module: pgha.cluster.etcd_key
author:
  - pgha.cluster maintainers (@pgha)
'''

EXAMPLES = r'''
- name: Read the state of the etcd cluster
  pgha.cluster.etcd_info:
    endpoints: "{{ groups['etcd'] | map('regex_replace', '^(.*)$', 'https://\\1:2379') | list }}"
    ca_cert: /etc/pgha/ca.crt
    client_cert: /etc/pgha/admin.crt
    client_key: /etc/pgha/admin.key
    username: root
    password: "{{ etcd_root_password }}"
  register: etcd

- name: Stop when the cluster is not healthy
  ansible.builtin.assert:
    that: etcd.healthy
    fail_msg: "etcd is not healthy: {{ etcd.endpoints | rejectattr('healthy') | map(attribute='error') | list }}"

- name: Query every member by the client URL it advertises
  pgha.cluster.etcd_info:
    endpoints: ["https://10.0.0.1:2379"]
    ca_cert: /etc/pgha/ca.crt
    status_of: members
'''

RETURN = r'''
members:
  description: The cluster members as etcd lists them.
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: Member ID in hexadecimal, as C(etcdctl member list) shows it.
      type: str
      sample: 8e9e05c52164694d
    name:
      description: Member name; empty for a member that was added but has not started yet.
      type: str
      sample: etcd-1
    peer_urls:
      description: Peer URLs.
      type: list
      elements: str
      sample: ["https://10.0.0.1:2380"]
    client_urls:
      description: Advertised client URLs (empty until the member has started).
      type: list
      elements: str
      sample: ["https://10.0.0.1:2379"]
    is_learner:
      description: Whether the member is a non-voting learner.
      type: bool
      sample: false
leader:
  description: The leader most endpoints report; V(null) when no endpoint knows one.
  returned: always
  type: dict
  contains:
    id:
      description: Leader's member ID in hexadecimal.
      type: str
      sample: 8e9e05c52164694d
    name:
      description: Leader's member name.
      type: str
      sample: etcd-1
endpoints:
  description: Status and health of each queried endpoint (see O(status_of)).
  returned: always
  type: list
  elements: dict
  contains:
    endpoint:
      description: The client URL queried; V(null) for a member without client URLs.
      type: str
      sample: https://10.0.0.1:2379
    healthy:
      description: The endpoint answered and its C(/health) says it is healthy.
      type: bool
      sample: true
    reason:
      description: Why the endpoint is not healthy; empty when it is.
      type: str
      sample: ""
    version:
      description: etcd server version of the member.
      type: str
      sample: 3.4.23
    db_size:
      description: Size of the member's database file in bytes.
      type: int
      sample: 20480
    db_size_in_use:
      description: Bytes of the database actually in use.
      type: int
      sample: 16384
    leader:
      description: Member ID (hexadecimal) of the leader as this member sees it.
      type: str
      sample: 8e9e05c52164694d
    raft_term:
      description: Raft term of the member.
      type: int
      sample: 2
    raft_index:
      description: Raft index of the member.
      type: int
      sample: 1042
    is_learner:
      description: Whether the member is a learner.
      type: bool
      sample: false
    member_id:
      description: Member ID (hexadecimal) of the member that answered.
      type: str
      sample: 8e9e05c52164694d
    error:
      description:
        - Why the endpoint could not be queried (unreachable, TLS, authentication...), or the errors the member
          reports in its status (such as an active alarm); V(null) otherwise.
      type: str
      sample: "etcd at https://10.0.0.2:2379 is unreachable: connection refused"
cluster_version:
  description: The cluster version etcd reports on C(/version) (for example V(3.4.0)).
  returned: always
  type: str
  sample: 3.4.0
auth_enabled:
  description: Whether etcd authentication (RBAC) is enabled.
  returned: always
  type: bool
  sample: true
alarms:
  description: Active alarms; V(null) (and a warning) when etcd refuses to list them.
  returned: always
  type: list
  elements: dict
  contains:
    member_id:
      description: Member ID (hexadecimal) that raised the alarm.
      type: str
      sample: 8e9e05c52164694d
    alarm:
      description: Alarm type, for example V(NOSPACE) or V(CORRUPT).
      type: str
      sample: NOSPACE
healthy:
  description: Every queried endpoint is healthy and they all report the same leader.
  returned: always
  type: bool
  sample: true
'''

import collections

from ansible_collections.pgha.cluster.plugins.module_utils.etcd_errors import EtcdPermissionDenied
from ansible_collections.pgha.cluster.plugins.module_utils.etcd_health import SOURCES, survey
from ansible_collections.pgha.cluster.plugins.module_utils.etcd_membership import member_dict
from ansible_collections.pgha.cluster.plugins.module_utils.etcd_module import etcd_module, run_with_client


def hex_id(member_id):
    """Member IDs as etcdctl prints them; None for 0 (etcd's "none", e.g. no leader)."""
    return '%x' % member_id if member_id else None


def endpoint_entry(probe):
    """One element of RV(endpoints) from an etcd_health.Probe."""
    entry = {'endpoint': probe.url, 'healthy': probe.healthy, 'reason': probe.reason, 'version': None,
             'db_size': None, 'db_size_in_use': None, 'leader': None, 'raft_term': None, 'raft_index': None,
             'is_learner': None, 'member_id': None, 'error': probe.error}
    status = probe.status
    if status is not None:
        entry.update(version=status.version, db_size=status.db_size, db_size_in_use=status.db_size_in_use,
                     leader=hex_id(status.leader), raft_term=status.raft_term, raft_index=status.raft_index,
                     is_learner=status.is_learner, member_id=hex_id(status.member_id))
    elif probe.member is not None and probe.url is None:
        entry.update(member_id=hex_id(probe.member.id), is_learner=probe.member.is_learner)
    return entry


def leader_of(endpoints, names):
    votes = collections.Counter(e['leader'] for e in endpoints if e['leader'])
    if not votes:
        return None
    leader = votes.most_common(1)[0][0]
    return {'id': leader, 'name': names.get(leader)}


def all_healthy(endpoints):
    leaders = set(e['leader'] for e in endpoints)
    return bool(endpoints) and all(e['healthy'] for e in endpoints) and len(leaders) == 1 and None not in leaders


def gather(module, client):
    # The member list fails over across the endpoints: when it fails, no endpoint answers and the client's
    # error (naming each endpoint and why) ends the module.
    members = client.members()
    names = dict((hex_id(m.id), m.name) for m in members)
    endpoints = [endpoint_entry(p) for p in survey(client, members, module.params['status_of'])]
    try:
        alarms = [{'member_id': hex_id(a.member_id), 'alarm': a.alarm} for a in client.alarms()]
    except EtcdPermissionDenied as exc:
        module.warn('cannot read the etcd alarms: %s' % exc)
        alarms = None
    return {
        'changed': False,
        'members': [member_dict(m) for m in members],
        'leader': leader_of(endpoints, names),
        'endpoints': endpoints,
        'cluster_version': client.version().get('etcdcluster'),
        'auth_enabled': client.auth_status(),
        'alarms': alarms,
        'healthy': all_healthy(endpoints),
    }


def main():
    module = etcd_module(
        argument_spec=dict(
            status_of=dict(type='str', choices=list(SOURCES), default='configured'),
        ),
        supports_check_mode=True,
    )
    run_with_client(module, lambda client: gather(module, client))


if __name__ == '__main__':
    main()
