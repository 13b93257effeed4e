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
      - Required with O(state=present). With O(state=absent), they identify a member that was added but has not
        started (and so has no name yet).
      - When the member exists with other peer URLs, its peer URLs are updated. Start or restart the member so that
        it listens on the new URLs, or its peers cannot reach it.
    type: list
    elements: str
  state:
    description:
      - V(present) adds the member if needed, updates its peer URLs, and promotes it (see O(promote)).
      - V(absent) removes the member if it exists.
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
- name: Announce etcd4 as a learner (quorum unchanged)
  pgha.cluster.etcd_member:
    endpoints: ["https://10.0.0.1:2379", "https://10.0.0.2:2379", "https://10.0.0.3:2379"]
    ca_cert: /etc/pgha/ca.crt
    client_cert: /etc/pgha/admin.crt
    client_key: /etc/pgha/admin.key
    username: root
    password: "{{ etcd_root_password }}"
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
    endpoints: ["https://10.0.0.1:2379", "https://10.0.0.2:2379", "https://10.0.0.3:2379"]
    ca_cert: /etc/pgha/ca.crt
    client_cert: /etc/pgha/admin.crt
    client_key: /etc/pgha/admin.key
    username: root
    password: "{{ etcd_root_password }}"
    name: etcd4
    peer_urls: ["https://10.0.0.4:2380"]
    wait_timeout: 120

- name: Remove etcd2, unless the remaining healthy members would lose quorum
  pgha.cluster.etcd_member:
    endpoints: ["https://10.0.0.1:2379", "https://10.0.0.3:2379"]
    ca_cert: /etc/pgha/ca.crt
    client_cert: /etc/pgha/admin.crt
    client_key: /etc/pgha/admin.key
    username: root
    password: "{{ etcd_root_password }}"
    name: etcd2
    state: absent
    health_check: configured
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

import time

from ansible_collections.pgha.cluster.plugins.module_utils.etcd_errors import (
    EtcdAuthError,
    EtcdConnectionError,
    EtcdError,
    EtcdNotFound,
    EtcdTLSError,
)
from ansible_collections.pgha.cluster.plugins.module_utils.etcd_module import (
    client_from_params,
    etcd_module,
    run_with_client,
)
from ansible_collections.pgha.cluster.plugins.module_utils.etcd_quorum import (
    UNSTARTED_REASON,
    Health,
    MembershipConflict,
    canonical_peer_url,
    check_add,
    check_promote,
    check_remove,
    describe,
    diff_view,
    find_member,
    hex_id,
    initial_cluster,
    is_started,
    member_dict,
    quorum,
    same_urls,
    url_conflicts,
    url_set,
    voters,
)
from ansible_collections.pgha.cluster.plugins.module_utils.etcd_types import Member

POLL_SECONDS = 0.5

# etcd's answers to a membership change that may succeed when asked again: its
# strict reconfiguration check ("unhealthy cluster" for a few seconds after a
# peer (re)connected), elections, and proposals that timed out (and may have
# been applied: each caller checks the member list before calling it a failure).
TRANSIENT_MARKERS = ('unhealthy cluster', 'not enough started members', 'leader changed', 'no leader',
                     'timed out', 'too many requests', 'no etcd endpoint could serve')
STRICT_CHECK_MARKERS = ('unhealthy cluster', 'not enough started members')
NOT_IN_SYNC = 'in sync with leader'
NOT_A_LEARNER = 'can only promote a learner member'
URLS_TAKEN = 'peer urls already exists'


def _text(exc):
    return ('%s %s' % (exc, exc.cause or '')).lower()


def is_transient(exc):
    return any(marker in _text(exc) for marker in TRANSIENT_MARKERS)


class MemberTask(object):
    def __init__(self, module, client, peer_urls):
        self.module = module
        self.client = client
        self.params = module.params
        self.name = module.params['name']
        self.peer_urls = peer_urls
        self.wait_timeout = module.params['wait_timeout']
        # {member id: a client URL of it that answered a health probe}
        self.reachable = {}

    # ------------------------------------------------------------ plumbing

    def refuse(self, msg, members, health=None):
        """Fail without having changed anything."""
        extra = {'changed': False, 'action': 'none', 'members': [member_dict(m) for m in members]}
        if health is not None:
            extra['health'] = self.health_report(members, health)
        self.module.fail_json(msg=msg, **extra)

    def health_report(self, members, health):
        report = []
        for m in members:
            entry = health.get(m.id) or Health(False, 'not checked')
            report.append({'id': hex_id(m.id), 'name': m.name, 'is_learner': m.is_learner,
                           'healthy': entry.healthy, 'reason': entry.reason})
        return report

    def result(self, changed, action, before, after, target, initial=None):
        target_id = target.id if target is not None else None
        current = target
        if target is not None:
            current = next((m for m in after if m.id == target.id), target)
        result = {
            'changed': changed,
            'action': action,
            'member': member_dict(current) if current is not None else None,
            'members': [member_dict(m) for m in after],
        }
        if initial:
            result['initial_cluster'] = initial
            result['initial_cluster_state'] = 'existing'
        if self.module._diff:
            result['diff'] = {'before': diff_view(before, target_id, self.name),
                              'after': diff_view(after, target_id, self.name)}
        return result

    # ------------------------------------------------------------ health

    def probe(self, member, url):
        """Health of one member through one of its client URLs."""
        try:
            status = self.client.status(url)
        except EtcdError as exc:
            return Health(False, str(exc))
        if status.member_id and status.member_id != member.id:
            return Health(False, '%s answered as member %s, not as this member' % (url, hex_id(status.member_id)))
        if status.errors:
            return Health(False, '%s reports errors: %s' % (url, '; '.join(str(e) for e in status.errors)))
        if not status.leader:
            return Health(False, '%s has no leader' % url)
        healthy, reason = self.client.health(url)
        if not healthy:
            return Health(False, '%s: %s' % (url, reason or 'reports unhealthy'))
        self.reachable[member.id] = url
        return Health(True, '')

    def health(self, members):
        """{member id: Health} for ``members``, as health_check says to measure it."""
        if self.params['health_check'] == 'configured':
            return self.health_via_endpoints(members)
        result = {}
        for m in members:
            if not m.client_urls:
                result[m.id] = Health(False, UNSTARTED_REASON)
                continue
            reasons = []
            for url in m.client_urls:
                entry = self.probe(m, url)
                if entry.healthy:
                    result[m.id] = entry
                    break
                reasons.append(entry.reason)
            else:
                result[m.id] = Health(False, '; '.join(reasons))
        return result

    def health_via_endpoints(self, members):
        seen = {}
        failures = []
        for url in self.client.endpoints:
            try:
                status = self.client.status(url)
            except EtcdError as exc:
                failures.append(str(exc))
                continue
            if status.member_id in seen and seen[status.member_id].healthy:
                continue
            if status.errors or not status.leader:
                seen[status.member_id] = Health(False, '%s: %s' % (
                    url, '; '.join(str(e) for e in status.errors) or 'no leader'))
                continue
            healthy, reason = self.client.health(url)
            seen[status.member_id] = Health(True, '') if healthy else Health(False, '%s: %s' % (url, reason))
            if healthy:
                self.reachable[status.member_id] = url
        result = {}
        for m in members:
            if m.id in seen:
                result[m.id] = seen[m.id]
            elif not is_started(m):
                result[m.id] = Health(False, UNSTARTED_REASON)
            else:
                why = 'not reachable through the configured endpoints (health_check=configured)'
                if failures:
                    why += '; ' + '; '.join(failures)
                result[m.id] = Health(False, why)
        return result

    # ------------------------------------------------------------ changes with retries

    def reconfigure(self, what, call, already_done):
        """Run one membership change; retry what etcd refuses for a passing reason, until wait_timeout.

        ``already_done(members)`` says whether the change is in the member list
        (a request that timed out or lost its connection may have been applied,
        and the client may have sent it again to another endpoint); it returns
        the member list to report then, else None.
        """
        deadline = time.monotonic() + self.wait_timeout
        while True:
            try:
                return call()
            except EtcdError as exc:
                members = self.client.members()
                done = already_done(members)
                if done is not None:
                    return done
                if not is_transient(exc):
                    raise
                if any(marker in _text(exc) for marker in STRICT_CHECK_MARKERS):
                    # etcd refuses while it sees a voter disconnected: tell the user which one at once when our
                    # own check sees it too, rather than retrying for wait_timeout.
                    health = self.health(voters(members))
                    down = [m for m in voters(members) if not health[m.id].healthy]
                    if down:
                        self.refuse('etcd refused to %s: %s. Its strict reconfiguration check allows membership '
                                    'changes only while every voting member is connected, and these are not: %s'
                                    % (what, exc, '; '.join('%s: %s' % (describe(m), health[m.id].reason)
                                                            for m in down)), members, health)
                if time.monotonic() >= deadline:
                    self.module.fail_json(msg='etcd kept refusing to %s for %ss (wait_timeout): %s'
                                          % (what, self.wait_timeout, exc), changed=False,
                                          members=[member_dict(m) for m in members])
                time.sleep(POLL_SECONDS)

    # ------------------------------------------------------------ state=absent

    def absent(self, members):
        target = self.find(members)
        if target is None:
            return self.result(False, 'none', members, members, None)
        health = {}
        if not target.is_learner:
            health = self.health(voters(members))
        reason = check_remove(members, health, target)
        if reason:
            self.refuse(reason, members, health if health else None)
        after = [m for m in members if m.id != target.id]
        if not self.module.check_mode:
            def gone(current):
                return current if all(m.id != target.id for m in current) else None

            def remove():
                try:
                    return self.client.member_remove(target.id)
                except EtcdNotFound:
                    # Removed meanwhile (or by our own request, resent after a lost reply).
                    return self.client.members()

            after = self.reconfigure('remove %s' % describe(target), remove, gone)
        own = url_set(target.client_urls)
        if own and url_set(self.client.endpoints) <= own:
            self.module.warn('every configured endpoint belongs to %s, which is %s: later tasks need the client URLs '
                             'of the remaining members' % (describe(target),
                                                           'about to be removed' if self.module.check_mode
                                                           else 'removed now'))
        return self.result(True, 'removed', members, after, target)

    # ------------------------------------------------------------ state=present

    def find(self, members):
        try:
            return find_member(members, self.name, self.peer_urls)
        except MembershipConflict as exc:
            self.refuse(str(exc), members)

    def present(self, members):
        target = self.find(members)
        conflicts = url_conflicts(members, self.peer_urls, target)
        if conflicts:
            self.refuse('cannot give %s the peer URLs %s: %s'
                        % (self.name, ', '.join(self.peer_urls), '; '.join(conflicts)), members)
        if target is None:
            return self.add(members)
        if not same_urls(target.peer_urls, self.peer_urls):
            return self.update(members, target)
        if target.is_learner and self.params['promote']:
            return self.promote(members, target)
        if not is_started(target) and not target.is_learner:
            self.module.warn('%s is a voting member that has not started: the cluster counts it for quorum '
                             '(%d of %d voters needed) while it is down; start it with initial_cluster'
                             % (describe(target, self.name), quorum(len(voters(members))), len(voters(members))))
        return self.result(False, 'none', members, members, target, self.initial_cluster_for(members, target))

    def initial_cluster_for(self, members, target):
        if is_started(target):
            return None
        return initial_cluster(members, target, self.name)

    def add(self, members):
        learner = self.params['learner']
        if not learner:
            health = self.health(voters(members))
            reason = check_add(members, health, False)
            if reason:
                self.refuse(reason, members, health)
            if len(voters(members)) == 1:
                self.module.warn('adding a voting member to a cluster with one voting member: the cluster has no '
                                 'quorum until %s has started and joined' % self.name)
        if self.module.check_mode:
            planned = Member(id=0, name='', peer_urls=list(self.peer_urls), client_urls=[], is_learner=learner)
            after = members + [planned]
            return self.result(True, 'added', members, after, planned, initial_cluster(after, planned, self.name))

        def added_meanwhile(current):
            return current if self.find(current) is not None else None

        def add():
            try:
                return self.client.member_add(self.peer_urls, is_learner=learner)[1]
            except EtcdError as exc:
                if URLS_TAKEN in _text(exc):
                    # Our own request, applied but its reply lost and resent: the URLs were free when we looked.
                    current = self.client.members()
                    if self.find(current) is not None:
                        return current
                if 'too many learner' in _text(exc):
                    pending = [describe(m) for m in members if m.is_learner]
                    exc.message += ('; etcd allows one learner at a time: promote or remove %s first'
                                    % (', '.join(pending) or 'the existing learner'))
                raise

        after = self.reconfigure('add %s' % self.name, add, added_meanwhile)
        target = self.find(after)
        if target is None:
            self.module.fail_json(msg='etcd accepted the new member %s but does not list it (peer URLs %s)'
                                  % (self.name, ', '.join(self.peer_urls)), changed=True,
                                  members=[member_dict(m) for m in after])
        return self.result(True, 'added', members, after, target, self.initial_cluster_for(after, target))

    def update(self, members, target):
        if target.is_learner:
            self.refuse('%s is a learner with peer URLs %s, not %s: etcd\'s member update would forget that it is a '
                        'learner (while Raft still treats it as one), so the module does not update learners. '
                        'Remove it (state=absent) and add it again with the new peer URLs'
                        % (describe(target, self.name), ', '.join(target.peer_urls), ', '.join(self.peer_urls)),
                        members)
        updated = target._replace(peer_urls=list(self.peer_urls))
        after = [updated if m.id == target.id else m for m in members]
        if not self.module.check_mode:
            def already(current):
                now = next((m for m in current if m.id == target.id), None)
                return current if now is not None and same_urls(now.peer_urls, self.peer_urls) else None

            after = self.reconfigure('update the peer URLs of %s' % describe(target, self.name),
                                     lambda: self.client.member_update(target.id, self.peer_urls), already)
        return self.result(True, 'updated', members, after, target, self.initial_cluster_for(after, target))

    def promote(self, members, target):
        if self.module.check_mode:
            if is_started(target):
                health = self.health(voters(members) + [target])
                reason = check_promote(members, health, target, assume_target_healthy=True)
                if reason:
                    self.refuse(reason, members, health)
            else:
                self.module.warn('%s has not started yet: a real run waits up to %ss for it to start and catch up '
                                 'before promoting it' % (describe(target, self.name), self.wait_timeout))
            after = [m._replace(is_learner=False) if m.id == target.id else m for m in members]
            return self.result(True, 'promoted', members, after, target, self.initial_cluster_for(members, target))

        deadline = time.monotonic() + self.wait_timeout
        attempted = False
        current_members = members
        while True:
            current = next((m for m in current_members if m.id == target.id), None)
            if current is None:
                self.module.fail_json(msg='%s was removed from the cluster while waiting to promote it'
                                      % describe(target, self.name), changed=False,
                                      members=[member_dict(m) for m in current_members])
            if not current.is_learner:
                return self.result(attempted, 'promoted' if attempted else 'none', members, current_members, current)
            health = None
            if not is_started(current):
                waiting_for = ('%s has not started yet: start etcd on it with --initial-cluster %s and '
                               '--initial-cluster-state existing'
                               % (describe(current, self.name), initial_cluster(current_members, current, self.name)))
            else:
                health = self.health(voters(current_members) + [current])
                reason = check_promote(current_members, health, current, assume_target_healthy=True)
                if reason:
                    self.refuse(reason, current_members, health)
                waiting_for = check_promote(current_members, health, current)
                if waiting_for is None:
                    try:
                        attempted = True
                        current_members = self.promote_through_leader(current_members, current.id)
                        continue
                    except EtcdError as exc:
                        text = _text(exc)
                        if NOT_IN_SYNC in text:
                            waiting_for = ('%s has not caught up with the leader yet (etcd: %s)'
                                           % (describe(current), exc))
                        elif NOT_A_LEARNER in text or is_transient(exc):
                            waiting_for = str(exc)  # promoted meanwhile, or a passing refusal: look again
                        elif isinstance(exc, EtcdAuthError) and 'invalid auth token' in text:
                            # The leader changed under us and a follower forwarded the request (see below).
                            waiting_for = 'the leader changed while promoting (etcd: %s)' % exc
                        else:
                            raise
            if time.monotonic() >= deadline:
                failure = {'changed': False, 'action': 'none', 'members': [member_dict(m) for m in current_members]}
                if not is_started(current):
                    failure['initial_cluster'] = initial_cluster(current_members, current, self.name)
                    failure['initial_cluster_state'] = 'existing'
                if health is not None:
                    failure['health'] = self.health_report(current_members, health)
                self.module.fail_json(msg='%s was not promoted within %ss (wait_timeout): %s'
                                      % (describe(current, self.name), self.wait_timeout, waiting_for), **failure)
            time.sleep(min(POLL_SECONDS, max(0.0, deadline - time.monotonic())))
            current_members = self.client.members()

    def promote_through_leader(self, members, member_id):
        """Promote, sending the request to the leader itself.

        A follower forwards a promotion to the leader without the caller's
        credentials, so with authentication enabled it fails after etcd's
        request timeout with "invalid auth token" (etcd issue 20757, not fixed
        in 3.4). The leader answers it directly.
        """
        try:
            leader_id = self.client.status().leader
        except EtcdError:
            leader_id = 0
        url = self.reachable.get(leader_id)
        if url is None:
            leader = next((m for m in members if m.id == leader_id), None)
            url = leader.client_urls[0] if leader is not None and leader.client_urls else None
        if url is None:
            return self.client.member_promote(member_id)
        leader_client = client_from_params(dict(self.params, endpoints=[url]))
        try:
            return leader_client.member_promote(member_id)
        except EtcdConnectionError as exc:
            if isinstance(exc, EtcdTLSError):
                raise
            # The leader's advertised URL is not reachable from here: any member will do without auth.
            return self.client.member_promote(member_id)
        finally:
            leader_client.close()

    def run(self):
        members = self.client.members()
        if self.params['state'] == 'absent':
            return self.absent(members)
        return self.present(members)


def main():
    module = etcd_module(
        argument_spec=dict(
            name=dict(type='str', required=True),
            peer_urls=dict(type='list', elements='str'),
            state=dict(type='str', choices=['present', 'absent'], default='present'),
            learner=dict(type='bool', default=True),
            promote=dict(type='bool', default=True),
            wait_timeout=dict(type='float', default=60.0),
            health_check=dict(type='str', choices=['members', 'configured'], default='members'),
        ),
        required_if=[('state', 'present', ['peer_urls'])],
        supports_check_mode=True,
    )
    params = module.params
    if not params['name'] or not params['name'].strip():
        module.fail_json(msg='name must not be empty')
    if params['wait_timeout'] < 0:
        module.fail_json(msg='wait_timeout must not be negative, not %s' % params['wait_timeout'])
    peer_urls = []
    try:
        for url in params['peer_urls'] or []:
            url = canonical_peer_url(url)
            if url not in peer_urls:
                peer_urls.append(url)
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    if params['state'] == 'present' and not peer_urls:
        module.fail_json(msg='peer_urls must list at least one URL with state=present')
    run_with_client(module, lambda client: MemberTask(module, client, peer_urls).run())


if __name__ == '__main__':
    main()
