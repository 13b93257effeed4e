# -*- coding: utf-8 -*-
# Copyright: pgha.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Restarting the PostgreSQL of members that Patroni flags ``pending_restart``, one at a time.

Stdlib only (no Ansible import). Every REST call goes through PatroniRestClient; the cluster's
state comes from etcd through a ``read_state()`` callable that returns a ClusterState.

The order is decided by :func:`first_pass` and :func:`second_pass`:

* replicas first, by name, and the leader last, so that the leader restarts at most once and
  only after every replica runs the new settings (a standby must not run below its primary's
  ``max_connections`` and the like);
* lowering ``max_connections``, ``max_wal_senders``, ``max_worker_processes``,
  ``max_prepared_transactions`` or ``max_locks_per_transaction`` is the other way round: Patroni
  starts a replica with the higher value its pg_controldata still holds, and keeps it pending,
  until the replica has replayed the restarted primary's parameter change. Those replicas are
  restarted again in a second pass, once they have replayed up to the primary's position.

Whether a member is pending is asked of its own REST API (``GET /patroni`` reports it as soon as
Patroni knows it); etcd's member keys say it one Patroni cycle later. The run ends once etcd shows
a primary and no member with a pending restart, so that readers of etcd see the result.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from .patroni_rest import PatroniRestError, one_line
from .patroni_state import STATE_RUNNING

POLL_INTERVAL = 1.0
# What Patroni answers POST /restart with restart_pending when the member is not pending (any more).
_NOT_PENDING = ('restart conditions are not satisfied', 'pending restart flag is not set')


class RestartError(Exception):
    """A restart or a wait failed; ``restarted`` lists the members restarted before it."""

    def __init__(self, message, restarted=None):
        super(RestartError, self).__init__(message)
        self.restarted = list(restarted or [])


# ------------------------------------------------------------------ decisions (pure)

def first_pass(state, pending):
    """Names of the members to restart, in order: those ``pending`` holds, replicas by name, the leader last.

    ``pending`` is a set of member names. A member that is not in etcd is left out.
    """
    chosen = [m for m in state.members if m.name in pending and not m.invalid]
    return [m.name for m in chosen if not m.is_leader] + [m.name for m in chosen if m.is_leader]


def second_pass(state, pending):
    """Names of the replicas still ``pending`` after the first pass, by name (the leader is not restarted twice)."""
    return [m.name for m in state.members if m.name in pending and not m.invalid and not m.is_leader]


def pending_from(state, statuses):
    """The names of the members with a pending restart.

    ``statuses`` maps member name -> the answer of its ``GET /patroni`` (None when it did not answer);
    a member without an answer counts as etcd's member key says.
    """
    pending = set()
    for member in state.members:
        status = statuses.get(member.name)
        flag = status.get('pending_restart') if isinstance(status, dict) else member.pending_restart
        if flag:
            pending.add(member.name)
    return pending


def replayed(status, position):
    """Whether a replica's ``GET /patroni`` answer shows WAL replayed up to ``position`` (an int LSN).

    True when either is unknown: there is nothing to wait for then.
    """
    xlog = status.get('xlog') if isinstance(status, dict) else None
    done = xlog.get('replayed_location') if isinstance(xlog, dict) else None
    if not isinstance(done, int) or not isinstance(position, int):
        return True
    return done >= position


def settled(state):
    """Whether etcd shows a primary and no member with a pending restart."""
    return state.primary() is not None and not any(m.pending_restart for m in state.members)


class ConfigApplied(object):
    """Tells, from what a member's REST API answers, when it has applied the dynamic configuration ``config``.

    Patroni reports no version of the configuration it runs with. What it does report: ``GET /config``
    answers the configuration the member last read from etcd, and ``GET /patroni`` its ``dcs_last_seen``,
    the time (whole seconds) of that read. Patroni applies what it read at the end of the same cycle,
    before it reads etcd again; so once a member answers ``config`` and then a later ``dcs_last_seen``
    than when it first did, it has applied ``config``. The same holds for a configuration file reloaded
    (SIGHUP) before the first look: Patroni reloads it at the start of a cycle.
    """

    def __init__(self, config):
        self.config = config
        self._first_seen = {}

    def update(self, name, member_config, status):
        """True once applied, False while not yet, None when the member does not report ``dcs_last_seen``."""
        if member_config != self.config:
            self._first_seen.pop(name, None)
            return False
        last_seen = status.get('dcs_last_seen') if isinstance(status, dict) else None
        if not isinstance(last_seen, int) or isinstance(last_seen, bool):
            return None
        first = self._first_seen.setdefault(name, last_seen)
        return last_seen > first


# ------------------------------------------------------------------ the run

class PendingRestarts(object):
    """Restart every member with a pending restart through ``rest`` (a PatroniRestClient).

    ``read_state()`` returns the cluster's ClusterState from etcd; ``timeout`` bounds each wait and each
    restart request (seconds). ``clock`` and ``sleep`` are for tests.
    """

    def __init__(self, rest, read_state, timeout, clock=time.monotonic, sleep=time.sleep):
        self.rest = rest
        self.read_state = read_state
        self.timeout = timeout
        self.clock = clock
        self.sleep = sleep
        self.restarted = []

    def run(self, wait_for_config=True, check_mode=False):
        """{'pending': [names], 'restarted': [names in restart order]}; RestartError when something fails.

        In check mode nothing is restarted and ``restarted`` lists what the first pass would restart.
        """
        state = self.read_state()
        if wait_for_config:
            self.wait_config_applied(state)
            state = self.read_state()
        pending = pending_from(state, self.statuses(state))
        order = first_pass(state, pending)
        result = {'pending': sorted(pending), 'restarted': order if check_mode else self.restarted}
        if check_mode or not order:
            return result
        for name in order:
            self.restart(state, name)
        if self.restarted:
            state = self.read_state()
            statuses = self.statuses(state)
            for name in second_pass(state, pending_from(state, statuses)):
                self.wait_replayed(state, name)
                self.restart(state, name)
        self.poll('etcd to show a primary and no pending restart', lambda: settled(self.read_state()))
        return result

    # -------------------------------------------------------------- steps

    def status(self, member):
        """The member's ``GET /patroni`` answer, or None when it has no api_url or does not answer."""
        if member is None or not member.api_url:
            return None
        try:
            answer = self.rest.patroni(member.api_url)
        except PatroniRestError:
            return None
        return answer if isinstance(answer, dict) else None

    def statuses(self, state):
        return dict((m.name, self.status(m)) for m in state.members if not m.invalid)

    def wait_config_applied(self, state):
        members = [m for m in state.members if m.running and m.api_url]
        tracker = ConfigApplied(state.config.data)
        waiting = set(m.name for m in members)

        def applied():
            for member in members:
                if member.name not in waiting:
                    continue
                try:
                    member_config = self.rest.get(member.api_url, '/config')
                except PatroniRestError:
                    continue
                done = tracker.update(member.name, member_config, self.status(member))
                if done is None:
                    # A Patroni that does not report dcs_last_seen: within two of its cycles it has
                    # read and applied what etcd holds; that bounded wait is all that can be done.
                    self.sleep(2 * (state.config.effective('loop_wait') or 10) + 2)
                    waiting.clear()
                    return True
                if done:
                    waiting.discard(member.name)
            return not waiting

        self.poll('every running member to apply the dynamic configuration in etcd', applied,
                  lambda: 'still waiting for %s' % ', '.join(sorted(waiting)))

    def wait_replayed(self, state, name):
        """Wait until replica ``name`` has replayed the WAL the primary has written so far."""
        primary = state.primary()
        position = None
        if primary is not None and primary.name != name:
            xlog = (self.status(primary) or {}).get('xlog')
            position = xlog.get('location') if isinstance(xlog, dict) else None
        member = state.member(name)
        self.poll('%s to replay the primary\'s WAL up to %s' % (name, position),
                  lambda: replayed(self.status(member), position))

    def restart(self, state, name):
        """Restart the PostgreSQL of ``name`` if it is still pending, and wait until it runs again."""
        member = state.member(name)
        if member is None or not member.api_url:
            raise RestartError('member %s has a pending restart but advertises no api_url to restart it through'
                               % name, self.restarted)
        try:
            # Patroni answers once PostgreSQL is up again, or the restart failed.
            answer = self.rest.request(member.api_url, 'POST', '/restart', body={'restart_pending': True},
                                       timeout=self.timeout)
        except PatroniRestError as exc:
            raise RestartError(str(exc), self.restarted)
        text = one_line(answer.text)
        if answer.status == 503 and any(marker in text for marker in _NOT_PENDING):
            return
        if answer.status != 200:
            raise RestartError('Patroni REST API at %s refused to restart PostgreSQL of %s (HTTP %d): %s' % (
                self.rest.url(member.api_url, '/restart'), name, answer.status, text or 'no message'),
                self.restarted)
        self.restarted.append(name)

        def back():
            status = self.status(member)
            return bool(status) and status.get('state') == STATE_RUNNING and self.read_state().primary() is not None

        self.poll('PostgreSQL of %s to run again under a primary' % name, back)

    def poll(self, what, condition, detail=None):
        deadline = self.clock() + self.timeout
        while not condition():
            if self.clock() >= deadline:
                raise RestartError('timed out after %.0f s waiting for %s%s' % (
                    self.timeout, what, '; %s' % detail() if detail else ''), self.restarted)
            self.sleep(POLL_INTERVAL)
