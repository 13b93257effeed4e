# -*- coding: utf-8 -*-
# Copyright: pgha.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""How healthy each etcd member is: the one check behind etcd_info's endpoint list and
etcd_member's quorum safety checks.

A client URL is healthy when the member behind it answers its status without
errors (such as an active alarm), knows a leader, and its ``/health`` says so.
Which URLs are asked (``source``) is the caller's choice:

* ``configured``: the URLs the client was given;
* ``members``: the client URLs the members advertise (more precise, but the
  host running the check must reach them).

Stdlib only; ``client`` is an etcd_client.EtcdClient.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import collections

from .etcd_errors import EtcdError
from .etcd_membership import UNSTARTED_REASON, Health, hex_id

SOURCES = ('configured', 'members')

# One asked URL. ``status`` is the EndpointStatus, None when the member did not answer (or has no URL to ask);
# ``member`` is the Member the URL was taken from (source members), else None; ``error`` is what went wrong
# talking to it, or the errors the member reports; ``reason`` why it is unhealthy ('' when healthy).
Probe = collections.namedtuple('Probe', ['url', 'member', 'status', 'healthy', 'reason', 'error'])


def probe(client, url, member=None):
    """The Probe of the member behind client URL ``url``."""
    try:
        status = client.status(url)
    except EtcdError as exc:
        # No /health call: a member that did not answer this would only make us wait twice.
        return Probe(url, member, None, False, 'no answer: %s' % exc, str(exc))
    # etcd 3.4 lists active alarms here (e.g. "memberID:... alarm:NOSPACE"); its /health only says 503.
    problems = '; '.join(' '.join(str(e).split()) for e in status.errors)
    if problems:
        return Probe(url, member, status, False, 'the member reports: %s' % problems, problems)
    if not status.leader:
        return Probe(url, member, status, False, '%s has no leader' % url, None)
    healthy, reason = client.health(url)
    return Probe(url, member, status, healthy, reason, None)


def unstarted_probe(member):
    """The Probe standing for a member that advertises no client URL yet."""
    reason = 'member %s has not started yet: it advertises no client URLs' % hex_id(member.id)
    return Probe(None, member, None, False, reason, reason)


def survey(client, members, source):
    """A Probe for each URL ``source`` names, each URL once, in member order for ``members``.

    With ``members``, a member that advertises no client URL gets an unstarted_probe.
    """
    if source == 'configured':
        return [probe(client, url) for url in client.endpoints]
    probes = []
    asked = set()
    for member in members:
        if not member.client_urls:
            probes.append(unstarted_probe(member))
        for url in member.client_urls:
            if url not in asked:
                asked.add(url)
                probes.append(probe(client, url, member))
    return probes


def _with_url(p):
    return p.reason if p.url in p.reason else '%s: %s' % (p.url, p.reason or 'reports unhealthy')


def _member_id(p):
    """Which member a probe speaks for: the one whose URL was asked, else the one that answered."""
    if p.member is not None:
        return p.member.id
    return p.status.member_id if p.status is not None else None


def member_health(members, probes):
    """({member id: Health}, {member id: a client URL of it that answered healthy}) from ``probes``.

    Every member of ``members`` gets an entry: a member no probe speaks for is
    unhealthy (it has not started, or none of the URLs asked reaches it), so an
    incomplete check can only make a caller more careful.
    """
    reasons = collections.defaultdict(list)
    reachable = {}
    for p in probes:
        owner = _member_id(p)
        if owner is None or p.url is None:
            continue
        answered_as = p.status.member_id if p.status is not None else 0
        if answered_as and answered_as != owner:
            reasons[owner].append('%s answered as member %s, not as this member' % (p.url, hex_id(answered_as)))
        elif p.healthy:
            reachable.setdefault(owner, p.url)
        else:
            reasons[owner].append(_with_url(p))
    unanswered = [p.error for p in probes if p.member is None and p.status is None]
    health = {}
    for m in members:
        if m.id in reachable:
            health[m.id] = Health(True, '')
        elif reasons.get(m.id):
            health[m.id] = Health(False, '; '.join(reasons[m.id]))
        elif not m.client_urls:
            health[m.id] = Health(False, UNSTARTED_REASON)
        else:
            health[m.id] = Health(False, '; '.join(['not reachable through the configured endpoints'] + unanswered))
    return health, reachable
