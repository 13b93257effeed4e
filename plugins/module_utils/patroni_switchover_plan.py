# -*- coding: utf-8 -*-
# Copyright: pgha.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a switchover or failover request should be, decided from a ClusterState before anything is sent.

Pure and stdlib only. The rules are Patroni's own (``patroni/api.py``
``do_POST_failover`` / ``is_failover_possible`` and ``patroni/ha.py``), checked
here first so that a request Patroni would refuse, or accept and then not carry
out, fails with a message that names every member and why it cannot take over:

* a switchover needs a running primary holding the leader key and is sent with
  ``leader``; a failover needs a ``candidate`` and is sent without ``leader``
  (Patroni turns a failover that names a leader into a switchover);
* only a running replica that is not tagged ``nofailover`` (or
  ``failover_priority`` <= 0) and advertises an ``api_url`` can be promoted;
* with ``synchronous_mode`` on (not ``quorum``), a switchover may only go to a
  synchronous standby (a failover may go to any replica: Patroni allows it);
* Patroni does not schedule failovers, nor anything while paused, and in a
  paused cluster it switches over only to a named candidate.

One rule is this collection's, not Patroni's: a replica more than
``maximum_lag_on_failover`` bytes behind is not a candidate (Patroni applies it
to automatic failovers only), because promoting it could lose or wait for
that much WAL. A lag that is unknown does not exclude a member.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import re

from collections import namedtuple

from .patroni_state import ROLE_REPLICA, running_member_api_url

MODES = ('auto', 'switchover', 'failover')
_UTC = datetime.timezone.utc
_ZULU = re.compile(r'[zZ]$')


class PlanError(Exception):
    """The request cannot be made; the message says why. ``members`` maps name -> reasons when relevant."""

    def __init__(self, message, members=None):
        super(PlanError, self).__init__(message)
        self.members = members or {}


# What to do: ``action`` is switchover, failover, cancel or none. ``body`` is the JSON to POST (None for
# none/cancel), ``api_url`` the REST API to send it to, ``leader`` the current leader (None when there is
# none), ``candidate`` the member to promote (None: Patroni picks), ``scheduled_at`` the normalised ISO 8601
# time, ``message`` a sentence for the user.
Plan = namedtuple('Plan', ['action', 'leader', 'candidate', 'scheduled_at', 'api_url', 'body', 'message'],
                  defaults=(None,) * 6)


# ------------------------------------------------------------------ time

def parse_scheduled_at(text, now=None):
    """An aware datetime from ISO 8601 text with a time zone; ValueError says what is wrong.

    ``now`` (aware) is when "in the past" is measured from (default: the current time).
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError('scheduled_at must be an ISO 8601 date and time with a time zone, e.g. '
                         '2030-01-31T02:00:00+00:00')
    # fromisoformat() only takes a trailing Z from Python 3.11 on.
    value = _ZULU.sub('+00:00', text.strip())
    try:
        when = datetime.datetime.fromisoformat(value)
    except ValueError:
        raise ValueError('scheduled_at %r is not an ISO 8601 date and time (e.g. 2030-01-31T02:00:00+00:00)' % text)
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError('scheduled_at %r has no time zone: Patroni needs one (e.g. +00:00 or Z)' % text)
    now = now or datetime.datetime.now(_UTC)
    if when < now:
        raise ValueError('scheduled_at %r is in the past: Patroni refuses to schedule a switchover then' % text)
    return when


def same_time(text_a, text_b):
    """Whether two ISO 8601 texts name the same instant (False when either does not parse)."""
    try:
        a = datetime.datetime.fromisoformat(_ZULU.sub('+00:00', text_a.strip()))
        b = datetime.datetime.fromisoformat(_ZULU.sub('+00:00', text_b.strip()))
    except (AttributeError, ValueError):
        return False
    if (a.tzinfo is None) != (b.tzinfo is None):
        return False
    return a == b


# ------------------------------------------------------------------ eligibility

def sync_rule_applies(state, action):
    """True when only synchronous standbys may be promoted (Patroni's rule, switchovers only)."""
    mode = state.config.synchronous_mode
    return action == 'switchover' and mode is True and not state.config.standby_cluster


def ineligible_reasons(state, member, action):
    """Why ``member`` cannot be promoted by ``action`` (switchover/failover); an empty list means it can."""
    if member.invalid:
        return ['its member key is invalid: %s' % member.reason]
    reasons = []
    if member.is_leader:
        reasons.append('it holds the leader key')
    if not member.running:
        reasons.append('its state is %s, not running' % (member.state or 'unknown'))
    if member.role != ROLE_REPLICA and not member.is_leader:
        reasons.append('its role is %s, not replica' % (member.raw_role or 'unknown'))
    if member.nofailover:
        if member.tags.get('nofailover') is not None:
            reasons.append('it is tagged nofailover')
        else:
            reasons.append('it is tagged failover_priority %s (0 or less means never promoted)'
                           % member.tags.get('failover_priority'))
    if not member.api_url:
        reasons.append('it advertises no api_url, so Patroni cannot check it')
    max_lag = state.config.effective('maximum_lag_on_failover')
    if member.lag is not None and max_lag is not None and member.lag > max_lag:
        reasons.append('it is %d bytes behind, more than maximum_lag_on_failover (%d)' % (member.lag, max_lag))
    if sync_rule_applies(state, action) and not member.sync_standby and not member.is_leader:
        reasons.append('it is not a synchronous standby, and synchronous_mode allows a switchover only to one')
    return reasons


def eligibility(state, action):
    """{member name: [reasons]} for every member; eligible members have no reason."""
    return dict((m.name, ineligible_reasons(state, m, action)) for m in state.members)


def describe_members(reasons):
    """One line per member: ``pg-2: eligible`` or ``pg-3: it is tagged nofailover; ...``."""
    if not reasons:
        return 'the cluster has no member keys'
    return '; '.join('%s: %s' % (name, ', '.join(why) if why else 'eligible') for name, why in sorted(reasons.items()))


def best_candidate(state, names):
    """Among eligible ``names``: the highest failover_priority, then the least lag, then the name."""
    members = [state.member(n) for n in names]
    members.sort(key=lambda m: (-m.failover_priority, m.lag if m.lag is not None else float('inf'), m.name))
    return members[0].name


# ------------------------------------------------------------------ plans

def choose_action(state, mode):
    """switchover or failover for ``mode`` (auto: switchover when a running primary holds the leader key)."""
    if mode not in MODES:
        raise PlanError('mode must be one of %s, not %r' % (', '.join(MODES), mode))
    primary = state.primary()
    if mode == 'auto':
        return 'switchover' if primary is not None else 'failover'
    if mode == 'switchover' and primary is None:
        raise PlanError('no switchover possible: %s; use mode=failover to promote a replica anyway'
                        % no_primary_reason(state))
    return mode


def no_primary_reason(state):
    leader = state.leader_member()
    if state.leader is None:
        return 'no member holds the leader key'
    if leader is None:
        return 'the leader key names %s, which has no valid member key' % state.leader
    if not leader.running:
        return 'the leader %s is %s, not running' % (leader.name, leader.state or 'in an unknown state')
    return 'the leader %s runs as %s, not primary' % (leader.name, leader.raw_role or 'unknown')


def plan_switchover(state, candidate=None, leader=None, scheduled_at=None, mode='auto', now=None):
    """The Plan for a switchover/failover request on ``state``; PlanError when it cannot be made.

    ``leader`` is the leader the caller expects (a mismatch is an error);
    ``scheduled_at`` ISO 8601 text with a time zone. A request that is already
    fulfilled (``candidate`` runs as primary) or already pending exactly as
    asked is a Plan with action ``none``.
    """
    primary = state.primary()
    if candidate and primary is not None and primary.name == candidate:
        return Plan('none', leader=primary.name, candidate=candidate,
                    message='%s is already the leader and runs as primary' % candidate)

    if leader and state.leader != leader:
        raise PlanError('the expected leader is %s but %s' % (
            leader, 'the leader key names %s' % state.leader if state.leader else 'no member holds the leader key'))

    action = choose_action(state, mode)
    when = None
    if scheduled_at:
        if action == 'failover':
            raise PlanError('Patroni cannot schedule a failover: %s' % no_primary_reason(state)
                            if primary is None else 'Patroni cannot schedule a failover; use mode=switchover')
        try:
            when = parse_scheduled_at(scheduled_at, now)
        except ValueError as exc:
            raise PlanError(str(exc))
    if state.config.paused:
        if when is not None:
            raise PlanError('the cluster is paused (maintenance mode): Patroni schedules no switchover then')
        if not candidate:
            raise PlanError('the cluster is paused (maintenance mode): Patroni switches over only to a named '
                            'candidate then')

    pending = _pending(state, action, candidate, when)
    if pending is not None:
        return pending

    reasons = eligibility(state, action)
    eligible = sorted(name for name, why in reasons.items() if not why)
    if candidate:
        if candidate not in reasons:
            raise PlanError('candidate %s is not a member of cluster %s; members: %s' % (
                candidate, state.scope, describe_members(reasons)), reasons)
        if reasons[candidate]:
            raise PlanError('candidate %s cannot be promoted by a %s: %s. Members: %s' % (
                candidate, action, ', '.join(reasons[candidate]), describe_members(reasons)), reasons)
    elif not eligible:
        raise PlanError('no member can be promoted by a %s: %s' % (action, describe_members(reasons)), reasons)

    when_text = when.isoformat() if when is not None else None
    if action == 'switchover':
        body = {'leader': primary.name}
        if candidate:
            body['candidate'] = candidate
        if when_text:
            body['scheduled_at'] = when_text
        return Plan('switchover', leader=primary.name, candidate=candidate, scheduled_at=when_text,
                    api_url=primary.api_url, body=body,
                    message='switchover from %s to %s%s' % (primary.name, candidate or 'a replica Patroni picks',
                                                            ' at %s' % when_text if when_text else ''))
    # Patroni only fails over to a named member: pick the best one when the caller did not.
    target = candidate or best_candidate(state, eligible)
    why = no_primary_reason(state) if primary is None else 'leader %s' % primary.name
    return Plan('failover', leader=state.leader, candidate=target, api_url=running_member_api_url(state, target),
                body={'candidate': target}, message='failover to %s (%s)' % (target, why))


def _pending(state, action, candidate, when):
    """A ``none`` Plan when the same scheduled switchover is pending; PlanError when another one is."""
    failover = state.failover
    if not failover.pending:
        return None
    if failover.scheduled_at and when is not None and action == 'switchover' \
            and failover.leader == state.leader and (failover.candidate or None) == (candidate or None) \
            and same_time(failover.scheduled_at, when.isoformat()):
        return Plan('none', leader=state.leader, candidate=candidate, scheduled_at=failover.scheduled_at,
                    message='this switchover is already scheduled for %s' % failover.scheduled_at)
    raise PlanError('another %s is already pending (leader %s, candidate %s, scheduled at %s); cancel it first '
                    'with state=absent' % ('switchover' if failover.leader else 'failover', failover.leader or '-',
                                           failover.candidate or '-', failover.scheduled_at or 'now'))


def plan_cancel(state):
    """The Plan to cancel a scheduled switchover (DELETE /switchover), or ``none`` when none is scheduled."""
    failover = state.failover
    if not (failover.pending and failover.scheduled_at):
        return Plan('none', leader=state.leader, message='no switchover is scheduled')
    url = running_member_api_url(state, state.leader)
    if url is None:
        raise PlanError('a switchover is scheduled for %s but no running member advertises an api_url to cancel '
                        'it through' % failover.scheduled_at)
    return Plan('cancel', leader=failover.leader, candidate=failover.candidate, scheduled_at=failover.scheduled_at,
                api_url=url, message='cancel the switchover scheduled for %s' % failover.scheduled_at)


def switch_outcome(state, old_leader, candidate):
    """After a request: None while it is not done, else (new primary name, problem or None).

    Done means a member other than ``old_leader`` holds the leader key and runs as primary. The
    problem is set when that member is not the ``candidate`` asked for (Patroni may pick another
    when the candidate turns out unhealthy).
    """
    primary = state.primary()
    if primary is None or (old_leader and primary.name == old_leader):
        return None
    if candidate and primary.name != candidate:
        return primary.name, 'Patroni promoted %s instead of the candidate %s' % (primary.name, candidate)
    return primary.name, None
