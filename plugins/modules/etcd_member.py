#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: pgha.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: etcd_member
short_description: Add, promote, update or remove an etcd cluster member without losing quorum
version_added: 0.1.0
description:
  - Makes sure a member of a running etcd cluster is present (added, its peer URLs up to date, and promoted from
    learner to voting member) or absent (removed).
  - A new member is added as a learner by default. A learner receives the data but does not vote, so adding it never
    changes the quorum, even if its etcd process never starts. Once its process has started and caught up, a later
    run with O(promote=true) makes it a voting member.
  - The module refuses, with a message that says why and without changing anything, a change that could leave the
    cluster without a healthy quorum; see O(health_check) for how health is measured.
  - "Adding a member is only half of the job: etcd must then be started on the new host with
    C(--initial-cluster) set to RV(initial_cluster) and C(--initial-cluster-state existing)."
options:
  name:
    description:
      - The member's name (etcd's C(--name)).
      - A member that was added but has not started yet has no name in etcd's member list; it is found by its
        O(peer_urls) instead.
    type: str
    required: true
  peer_urls:
    description:
      - The member's peer URLs (etcd's C(--initial-advertise-peer-urls)), each C(scheme://host:port).
      - Required with O(state=present). With O(state=absent), they identify the member as well as O(name) does,
        be it a member that was added but has not started (and so has no name yet) or one that etcd knows by
        another name. Give them whenever the host's peer URL is known, so that a member whose name differs is still
        found; RV(matched_by) tells how it was found. When O(name) and O(peer_urls) point at different members,
        the module refuses.
      - When the member exists with other peer URLs, its peer URLs are updated. Start or restart the member so that
        it listens on the new URLs, or its peers cannot reach it.
    type: list
    elements: str
  state:
    description:
      - V(present) adds the member if needed, updates its peer URLs, and promotes it (see O(promote)).
      - V(absent) removes the member if one has the name or one of the peer URLs. RV(removed) says whether it did.
    type: str
    choices: [present, absent]
    default: present
  learner:
    description:
      - Add a new member as a learner (non-voting). Has no effect on a member that exists already.
      - V(false) adds a voting member at once. That is refused while any voting member is unhealthy, because the
        cluster's quorum then depends on a member that has not started yet.
    type: bool
    default: true
  promote:
    description:
      - When the member already exists as a learner, promote it to a voting member once it has caught up with the
        leader. etcd refuses to promote a learner that is not in sync yet; the module tries again until
        O(wait_timeout) and then fails, saying why.
      - A learner that has not started yet cannot catch up; the module waits for it to start, then fails after
        O(wait_timeout) with RV(initial_cluster) in the result.
      - A member added by this very run is never promoted in the same run (its etcd process cannot have started
        before it knows RV(initial_cluster)); run the module again after starting it.
    type: bool
    default: true
  wait_timeout:
    description:
      - Seconds to wait for a learner to catch up before promoting it, and to retry a change that etcd refuses for a
        passing reason (its strict reconfiguration check refuses changes for a few seconds after a member
        (re)connected, and during leader elections).
    type: float
    default: 60
  health_check:
    description:
      - How the health of each member is measured before a change that could affect quorum (removing a voting
        member, adding a voting member, promoting a learner).
      - V(members) queries every member's status and C(/health) at the client URLs the member advertises. This is
        the most precise, but the host the module runs on must reach those URLs (use C(delegate_to) to run it on an
        etcd host if needed).
      - V(configured) only queries the URLs of O(endpoints); a member that cannot be reached through them counts as
        unhealthy. List every member's client URL in O(endpoints) to use it.
      - Either way, a member that cannot be checked counts as unhealthy, so a doubtful check makes the module refuse,
        never proceed.
      - A member is healthy when it answers its status without errors, knows a leader, and its C(/health) says so.
        This is the check M(pgha.cluster.etcd_info) reports per endpoint, where the same choice is called
        O(pgha.cluster.etcd_info#module:status_of) and defaults to V(configured).
    type: str
    choices: [members, configured]
    default: members
extends_documentation_fragment:
  - pgha.cluster.etcd
  - pgha.cluster.etcd.actiongroup
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details:
      - Reports the action that would be taken (RV(action)) and runs the same safety checks, without changing the
        member list. A promotion is reported without waiting for the learner to catch up.
  diff_mode:
    support: full
    details: The member list before and after (in check mode, as it would be).
  platform:
    platforms: posix
notes:
  - Removing the member the module is connected to is allowed. etcd answers before the member leaves, and later
    requests go to the next URL of O(endpoints). Give O(endpoints) more than one member so that later tasks still
    reach the cluster.
  - A removed member's etcd process stops by itself; delete its data directory before it could ever be started again.
  - etcd 3.4 and 3.5 allow one learner at a time; grow a cluster one member after the other (add, start, promote).
  - The peer URLs of a learner are never updated, because etcd's member update forgets that the member is a learner
    (while Raft still treats it as one). Remove the learner and add it again instead.
  - Adding a voting member to a cluster with a single member leaves the cluster without quorum until the new member
    has started (the module warns); add a learner instead.
seealso:
  - module: pgha.cluster.etcd_info
  - name: etcd learner design
    description: Why new members should join as learners.
    link: https://etcd.io/docs/v3.4/learning/design-learner/
author:
  - pgha.cluster maintainers (@pgha)
'''

EXAMPLES = r'''
- name: Change the etcd members, connected as root through every member's client URL
  module_defaults:
    group/pgha.cluster.etcd:
      endpoints: ["https://10.0.0.1:2379", "https://10.0.0.2:2379", "https://10.0.0.3:2379"]
      ca_cert: /etc/pgha/ca.crt
      client_cert: /etc/pgha/admin.crt
      client_key: /etc/pgha/admin.key
      username: root
      password: "{{ etcd_root_password }}"
  block:
    - name: Announce etcd4 as a learner (quorum unchanged)
      pgha.cluster.etcd_member:
        name: etcd4
        peer_urls: ["https://10.0.0.4:2380"]
        promote: false
      register: etcd4

    - name: Start etcd on the new host with what the module returned
      ansible.builtin.debug:
        msg: >-
          etcd --name etcd4 --initial-cluster {{ etcd4.initial_cluster }}
          --initial-cluster-state {{ etcd4.initial_cluster_state }} ...

    - name: Promote etcd4 once it has caught up (waits up to 2 minutes)
      pgha.cluster.etcd_member:
        name: etcd4
        peer_urls: ["https://10.0.0.4:2380"]
        wait_timeout: 120

    - name: Remove etcd2 (by its name or its peer URL), unless the remaining healthy members would lose quorum
      pgha.cluster.etcd_member:
        endpoints: ["https://10.0.0.1:2379", "https://10.0.0.3:2379"]
        name: etcd2
        peer_urls: ["https://10.0.0.2:2380"]
        state: absent
        health_check: configured
      register: etcd2_removal

    - name: Wipe etcd2's data only when it is certainly no member any more
      ansible.builtin.debug:
        msg: etcd2 may be stopped and its data deleted
      when: etcd2_removal.removed or etcd2_removal.matched_by | length == 0
'''

RETURN = r'''
action:
  description: What the task did (in check mode, what it would do).
  returned: always
  type: str
  choices: [added, promoted, updated, removed, none]
  sample: added
member:
  description:
    - The member after the task; for O(state=absent), the member that was (or would be) removed.
    - V(null) when no member matched and none was added.
    - In check mode, a member that would be added has V(null) as its RV(member.id).
  returned: always
  type: dict
  contains:
    id:
      description: Member ID in hexadecimal, as C(etcdctl member list) shows it.
      type: str
      sample: 8e9e05c52164694d
    name:
      description: Member name; empty while the member has not started yet.
      type: str
      sample: etcd4
    peer_urls:
      description: Peer URLs.
      type: list
      elements: str
      sample: ["https://10.0.0.4:2380"]
    client_urls:
      description: Advertised client URLs; empty while the member has not started yet.
      type: list
      elements: str
      sample: ["https://10.0.0.4:2379"]
    is_learner:
      description: Whether the member is a non-voting learner.
      type: bool
      sample: true
members:
  description: Every member after the task (in check mode, as it would be), with the same keys as RV(member).
  returned: always
  type: list
  elements: dict
  sample:
    - id: 8e9e05c52164694d
      name: etcd1
      peer_urls: ["https://10.0.0.1:2380"]
      client_urls: ["https://10.0.0.1:2379"]
      is_learner: false
removed:
  description:
    - Whether the task removed a member (in check mode, would remove one).
    - V(false) with an empty RV(matched_by) means that no member has the name or any of the peer URLs; V(false)
      on a failure means that nothing was removed.
  returned: when O(state=absent)
  type: bool
  sample: true
matched_by:
  description:
    - How the removed member was found - V(name), V(peer_urls) or both; empty when no member matched.
  returned: when O(state=absent) and the task did not fail
  type: list
  elements: str
  sample: [peer_urls]
initial_cluster:
  description:
    - The C(--initial-cluster) value to start the member's etcd with - every member as C(name=peerURL), the member
      itself included. Members that have not started yet appear under their hexadecimal ID.
    - Returned when O(state=present) and the member has not started yet (in particular, right after it was added).
  returned: when the member has not started yet
  type: str
  sample: etcd1=https://10.0.0.1:2380,etcd2=https://10.0.0.2:2380,etcd3=https://10.0.0.3:2380,etcd4=https://10.0.0.4:2380
initial_cluster_state:
  description: The C(--initial-cluster-state) to start the member's etcd with (always V(existing)).
  returned: when RV(initial_cluster) is returned
  type: str
  sample: existing
health:
  description:
    - The health of each member as measured for the safety check that refused the change (see O(health_check));
      members that were not checked show V(not checked) as their reason.
  returned: when the module refuses a change because of the members' health
  type: list
  elements: dict
  contains:
    id:
      description: Member ID in hexadecimal.
      type: str
      sample: 8e9e05c52164694d
    name:
      description: Member name (empty while it has not started).
      type: str
      sample: etcd3
    is_learner:
      description: Whether the member is a learner.
      type: bool
      sample: false
    healthy:
      description: Whether the member answered its status and C(/health) checks.
      type: bool
      sample: false
    reason:
      description: Why the member counts as unhealthy; empty when it is healthy.
      type: str
      sample: "etcd at https://10.0.0.3:2379 is unreachable: connection refused"
'''

from ansible_collections.pgha.cluster.plugins.module_utils.etcd_health import SOURCES
from ansible_collections.pgha.cluster.plugins.module_utils.etcd_member_task import (
    MemberTask,
    MemberTaskFailed,
    checked_peer_urls,
)
from ansible_collections.pgha.cluster.plugins.module_utils.etcd_module import (
    client_from_params,
    etcd_module,
    run_with_client,
)


def main():
    module = etcd_module(
        argument_spec=dict(
            name=dict(type='str', required=True),
            peer_urls=dict(type='list', elements='str'),
            state=dict(type='str', choices=['present', 'absent'], default='present'),
            learner=dict(type='bool', default=True),
            promote=dict(type='bool', default=True),
            wait_timeout=dict(type='float', default=60.0),
            health_check=dict(type='str', choices=list(SOURCES), default='members'),
        ),
        required_if=[('state', 'present', ['peer_urls'])],
        supports_check_mode=True,
    )
    params = module.params
    try:
        peer_urls = checked_peer_urls(params)
    except ValueError as exc:
        module.fail_json(msg=str(exc))

    def connect(url):
        return client_from_params(dict(params, endpoints=[url]))

    def run(client):
        task = MemberTask(client, params, peer_urls, connect, module.warn, check_mode=module.check_mode,
                          diff=module._diff)
        try:
            return task.run()
        except MemberTaskFailed as exc:
            module.fail_json(msg=exc.msg, **exc.result)

    run_with_client(module, run)


if __name__ == '__main__':
    main()
