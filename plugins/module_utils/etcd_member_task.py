# -*- coding: utf-8 -*-
# Copyright: pgha.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The work of the pgha.cluster.etcd_member module: add, update, promote or remove one
member after the quorum checks of etcd_membership, retrying what etcd refuses for a
passing reason.

Stdlib only. A MemberTask talks to etcd through an etcd_client.EtcdClient and
ends in a result dict, or in MemberTaskFailed carrying the message and the
result keys to fail with (the module hands both to ``fail_json``).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from .etcd_errors import (
    STRICT_RECONFIG_REFUSALS,
    EtcdConnectionError,
    EtcdError,
    EtcdLearnerNotReady,
    EtcdMemberNotFound,
    EtcdNotALearner,
    EtcdPeerURLsExist,
    EtcdTLSError,
    EtcdTokenRejected,
    EtcdTooManyLearners,
    EtcdTransient,
    EtcdUnreachable,
)
from .etcd_health import member_health, survey
from .etcd_membership import (
    Health,
    MembershipConflict,
    canonical_peer_url,
    check_add,
    check_promote,
    check_remove,
    describe,
    diff_view,
    find_member,
    find_member_to_remove,
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
from .etcd_types import Member

POLL_SECONDS = 0.5

# Worth asking again: etcd's passing refusals, and endpoints that did not answer
# (a member may be restarting or electing; the member list read right after
# tells whether the change was applied all the same).
RETRYABLE = (EtcdTransient, EtcdUnreachable)


class MemberTaskFailed(Exception):
    """The task cannot be done; ``result`` holds the keys to report with the message (changed, members...)."""

    def __init__(self, msg, **result):
        super(MemberTaskFailed, self).__init__(msg)
        self.msg = msg
        self.result = result


def checked_peer_urls(params):
    """The task's peer URLs in canonical form, without repeats; ValueError naming the problem with the params."""
    if not params['name'] or not params['name'].strip():
        raise ValueError('name must not be empty')
    if params['wait_timeout'] < 0:
        raise ValueError('wait_timeout must not be negative, not %s' % params['wait_timeout'])
    peer_urls = []
    for url in params['peer_urls'] or []:
        url = canonical_peer_url(url)
        if url not in peer_urls:
            peer_urls.append(url)
    if params['state'] == 'present' and not peer_urls:
        raise ValueError('peer_urls must list at least one URL with state=present')
    return peer_urls


class MemberTask(object):
    """One run of the module. ``params`` are the module's (name, state, learner, promote, wait_timeout,
    health_check); ``connect(url)`` opens a client with the same settings to one URL (for the leader);
    ``warn(text)`` reports a warning."""

    def __init__(self, client, params, peer_urls, connect, warn, check_mode=False, diff=False,
                 clock=time.monotonic, sleep=time.sleep):
        self.client = client
        self.params = params
        self.name = params['name']
        self.peer_urls = peer_urls
        self.wait_timeout = params['wait_timeout']
        self.connect, self.warn = connect, warn
        self.check_mode, self.diff = check_mode, diff
        self.clock, self.sleep = clock, sleep  # replaceable in tests
        # {member id: a client URL of it that answered a health probe}
        self.reachable = {}

    # ------------------------------------------------------------ plumbing

    def refuse(self, msg, members, health=None):
        """Fail without having changed anything."""
        extra = {'changed': False, 'action': 'none', 'members': [member_dict(m) for m in members]}
        if self.params['state'] == 'absent':
            extra['removed'] = False
        if health is not None:
            extra['health'] = self.health_report(members, health)
        raise MemberTaskFailed(msg, **extra)

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
        if self.diff:
            result['diff'] = {'before': diff_view(before, target_id, self.name),
                              'after': diff_view(after, target_id, self.name)}
        return result

    def health(self, members):
        """{member id: Health} for ``members``, measured as health_check says (see etcd_health)."""
        health, reachable = member_health(members, survey(self.client, members, self.params['health_check']))
        self.reachable.update(reachable)
        return health

    # ------------------------------------------------------------ changes with retries

    def reconfigure(self, what, call, already_done):
        """Run one membership change; retry what etcd refuses for a passing reason, until wait_timeout.

        ``already_done(members)`` says whether the change is in the member list
        (a request that timed out or lost its connection may have been applied,
        and the client may have sent it again to another endpoint); it returns
        the member list to report then, else None.
        """
        deadline = self.clock() + self.wait_timeout
        while True:
            try:
                return call()
            except EtcdError as exc:
                members = self.client.members()
                done = already_done(members)
                if done is not None:
                    return done
                if not isinstance(exc, RETRYABLE):
                    raise
                if isinstance(exc, STRICT_RECONFIG_REFUSALS):
                    # etcd refuses while it sees a voter disconnected: tell the user which one at once when our
                    # own check sees it too, rather than retrying for wait_timeout.
                    health = self.health(voters(members))
                    down = [m for m in voters(members) if not health[m.id].healthy]
                    if down:
                        self.refuse('etcd refused to %s: %s. Its strict reconfiguration check allows membership '
                                    'changes only while every voting member is connected, and these are not: %s'
                                    % (what, exc, '; '.join('%s: %s' % (describe(m), health[m.id].reason)
                                                            for m in down)), members, health)
                if self.clock() >= deadline:
                    raise MemberTaskFailed('etcd kept refusing to %s for %ss (wait_timeout): %s'
                                           % (what, self.wait_timeout, exc), changed=False,
                                           members=[member_dict(m) for m in members])
                self.sleep(POLL_SECONDS)

    # ------------------------------------------------------------ state=absent

    def absent(self, members):
        try:
            target, matched_by = find_member_to_remove(members, self.name, self.peer_urls)
        except MembershipConflict as exc:
            self.refuse(str(exc), members)
        if target is None:
            result = self.result(False, 'none', members, members, None)
            result.update(removed=False, matched_by=[],
                          msg='no member is named %s%s: nothing to remove' % (
                              self.name, ' or has peer URLs %s' % ', '.join(self.peer_urls) if self.peer_urls else ''))
            return result
        if 'name' not in matched_by:
            self.warn('no member is named %s; %s has its peer URLs %s and is the one %s'
                      % (self.name, describe(target), ', '.join(self.peer_urls),
                         'that would be removed' if self.check_mode else 'removed'))
        health = {}
        if not target.is_learner:
            health = self.health(voters(members))
        reason = check_remove(members, health, target)
        if reason:
            self.refuse(reason, members, health if health else None)
        after = [m for m in members if m.id != target.id]
        if not self.check_mode:
            def gone(current):
                return current if all(m.id != target.id for m in current) else None

            def remove():
                try:
                    return self.client.member_remove(target.id)
                except EtcdMemberNotFound:
                    # Removed meanwhile (or by our own request, resent after a lost reply).
                    return self.client.members()

            after = self.reconfigure('remove %s' % describe(target), remove, gone)
        own = url_set(target.client_urls)
        if own and url_set(self.client.endpoints) <= own:
            self.warn('every configured endpoint belongs to %s, which is %s: later tasks need the client URLs '
                      'of the remaining members' % (describe(target),
                                                    'about to be removed' if self.check_mode else 'removed now'))
        result = self.result(True, 'removed', members, after, target)
        found_by = ' and '.join(m.replace('_', ' ') for m in matched_by)
        result.update(removed=True, matched_by=matched_by,
                      msg='%s %s (found by %s)' % ('would remove' if self.check_mode else 'removed', describe(target),
                                                   found_by))
        return result

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
            self.warn('%s is a voting member that has not started: the cluster counts it for quorum '
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
                self.warn('adding a voting member to a cluster with one voting member: the cluster has no '
                          'quorum until %s has started and joined' % self.name)
        if self.check_mode:
            planned = Member(id=0, name='', peer_urls=list(self.peer_urls), client_urls=[], is_learner=learner)
            after = members + [planned]
            return self.result(True, 'added', members, after, planned, initial_cluster(after, planned, self.name))

        def added_meanwhile(current):
            return current if self.find(current) is not None else None

        def add():
            try:
                return self.client.member_add(self.peer_urls, is_learner=learner)[1]
            except EtcdPeerURLsExist:
                # Our own request, applied but its reply lost and resent: the URLs were free when we looked.
                current = self.client.members()
                if self.find(current) is not None:
                    return current
                raise
            except EtcdTooManyLearners as exc:
                pending = [describe(m) for m in members if m.is_learner]
                exc.message += ('; etcd allows one learner at a time: promote or remove %s first'
                                % (', '.join(pending) or 'the existing learner'))
                raise

        after = self.reconfigure('add %s' % self.name, add, added_meanwhile)
        target = self.find(after)
        if target is None:
            raise MemberTaskFailed('etcd accepted the new member %s but does not list it (peer URLs %s)'
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
        if not self.check_mode:
            def already(current):
                now = next((m for m in current if m.id == target.id), None)
                return current if now is not None and same_urls(now.peer_urls, self.peer_urls) else None

            after = self.reconfigure('update the peer URLs of %s' % describe(target, self.name),
                                     lambda: self.client.member_update(target.id, self.peer_urls), already)
        return self.result(True, 'updated', members, after, target, self.initial_cluster_for(after, target))

    def promote(self, members, target):
        if self.check_mode:
            if is_started(target):
                health = self.health(voters(members) + [target])
                reason = check_promote(members, health, target, assume_target_healthy=True)
                if reason:
                    self.refuse(reason, members, health)
            else:
                self.warn('%s has not started yet: a real run waits up to %ss for it to start and catch up '
                          'before promoting it' % (describe(target, self.name), self.wait_timeout))
            after = [m._replace(is_learner=False) if m.id == target.id else m for m in members]
            return self.result(True, 'promoted', members, after, target, self.initial_cluster_for(members, target))

        deadline = self.clock() + self.wait_timeout
        attempted = False
        current_members = members
        while True:
            current = next((m for m in current_members if m.id == target.id), None)
            if current is None:
                raise MemberTaskFailed('%s was removed from the cluster while waiting to promote it'
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
                    except EtcdLearnerNotReady as exc:
                        waiting_for = '%s has not caught up with the leader yet (etcd: %s)' % (describe(current), exc)
                    except (EtcdNotALearner,) + RETRYABLE as exc:
                        waiting_for = str(exc)  # promoted meanwhile, or a passing refusal: look again
                    except EtcdTokenRejected as exc:
                        # The leader changed under us and a follower forwarded the request (see below).
                        waiting_for = 'the leader changed while promoting (etcd: %s)' % exc
            if self.clock() >= deadline:
                failure = {'changed': False, 'action': 'none', 'members': [member_dict(m) for m in current_members]}
                if not is_started(current):
                    failure['initial_cluster'] = initial_cluster(current_members, current, self.name)
                    failure['initial_cluster_state'] = 'existing'
                if health is not None:
                    failure['health'] = self.health_report(current_members, health)
                raise MemberTaskFailed('%s was not promoted within %ss (wait_timeout): %s'
                                       % (describe(current, self.name), self.wait_timeout, waiting_for), **failure)
            self.sleep(min(POLL_SECONDS, max(0.0, deadline - self.clock())))
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
        leader_client = self.connect(url)
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
