# -*- coding: utf-8 -*-
# Copyright: pgha.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure decisions of the pgha.cluster.etcd_member module: which member a task
means, whether a membership change keeps quorum, and what a new member must be
started with.

No I/O and stdlib only, so all of it is unit-tested without a server.

Members are anything with the attributes of ``etcd_types.Member`` (id, name,
peer_urls, client_urls, is_learner). Health is a mapping ``{member id:
Health}``; a member missing from it counts as unhealthy, so an incomplete
health check can only make the module more careful, never less.

Quorum arithmetic (only voting members count; learners never vote):

* a cluster of ``n`` voters needs ``n // 2 + 1`` of them to agree;
* removing a voter shrinks ``n`` by one, so the voters that stay and are
  healthy must reach the quorum of ``n - 1``;
* promoting a learner grows ``n`` by one, so the healthy voters plus the
  learner (if healthy) must reach the quorum of ``n + 1``;
* adding a voter grows ``n`` before the new member has even started: etcd
  needs it to connect before the cluster can commit anything again whenever a
  healthy majority of ``n + 1`` is not there without it; a voter that is down
  already makes that loss likely, so adding voters is refused then.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import collections
import re

Health = collections.namedtuple('Health', ['healthy', 'reason'])

UNSTARTED_REASON = 'has not started yet (it advertises no client URLs)'


class MembershipConflict(ValueError):
    """The request cannot be matched to one member without guessing (message says why)."""


def quorum(voters):
    """Votes a cluster of ``voters`` voting members needs to commit anything."""
    return voters // 2 + 1


def hex_id(member_id):
    """A member ID as etcdctl prints it."""
    return '%x' % member_id


_URL_RE = re.compile(r'^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<host>\[[0-9A-Fa-f:.%A-Za-z_-]+\]|[^/:?#\[\]@]+)'
                     r'(?::(?P<port>[0-9]+))?(?P<rest>.*)$')


def canonical_peer_url(url):
    """``scheme://host:port`` with scheme and host lower-cased; ValueError naming the problem.

    etcd compares peer URLs as strings and rejects a path, so ``HTTPS://Node1:2380/``
    and ``https://node1:2380`` must be found equal here and the one sent to etcd
    must be the bare form. A port is required: there is no sensible default for
    a peer URL (2380 is a convention, not something etcd assumes).
    """
    if not isinstance(url, str) or not url.strip():
        raise ValueError('invalid peer URL %r: it is empty' % (url,))
    text = url.strip()
    m = _URL_RE.match(text)
    if not m:
        raise ValueError('invalid peer URL %r: write it as scheme://host:port, for example https://10.0.0.4:2380'
                         % text)
    scheme = m.group('scheme').lower()
    if scheme not in ('http', 'https'):
        raise ValueError('invalid peer URL %r: the scheme must be http or https, not %r' % (text, scheme))
    if m.group('rest') not in ('', '/'):
        raise ValueError('invalid peer URL %r: etcd peer URLs have no path, query or user info' % text)
    port = m.group('port')
    if not port:
        raise ValueError('invalid peer URL %r: the port is missing (etcd peers usually listen on 2380)' % text)
    if not 0 < int(port) < 65536:
        raise ValueError('invalid peer URL %r: the port must be between 1 and 65535' % text)
    return '%s://%s:%d' % (scheme, m.group('host').lower(), int(port))


def _canonical_or_raw(url):
    try:
        return canonical_peer_url(url)
    except ValueError:
        return url


def url_set(urls):
    """Peer URLs as a set for comparison (URLs etcd holds are compared in canonical form too)."""
    return frozenset(_canonical_or_raw(u) for u in urls or ())


def same_urls(a, b):
    return url_set(a) == url_set(b)


def is_started(member):
    """etcd fills in a member's name and client URLs only once its process has joined."""
    return bool(member.name) or bool(member.client_urls)


def voters(members):
    return [m for m in members if not m.is_learner]


def learners(members):
    return [m for m in members if m.is_learner]


def describe(member, name=None):
    """``etcd-2 (id 8e9e05c52164694d)``, or for a member that has not started, its peer URLs."""
    label = member.name or name
    if label:
        return '%s (id %s)' % (label, hex_id(member.id))
    return 'unstarted member %s (peer URLs %s)' % (hex_id(member.id), ', '.join(member.peer_urls) or 'none')


def find_member(members, name, peer_urls=None):
    """The member a task means, or None when there is none (MembershipConflict when ambiguous).

    A member is found by name; a member that was added but has not started has
    an empty name in etcd's list, so it is found by its peer URLs instead (any
    URL in common with ``peer_urls`` counts, which lets a task change the URLs
    of an unstarted member too).
    """
    named = [m for m in members if m.name == name]
    if len(named) > 1:
        raise MembershipConflict('%d members are named %r (%s): etcd allows duplicate names, but this module '
                                 'cannot tell which one is meant; remove the extra one with etcdctl'
                                 % (len(named), name, ', '.join(describe(m) for m in named)))
    if named:
        return named[0]
    wanted = url_set(peer_urls)
    if not wanted:
        return None
    unstarted = [m for m in members if not m.name and wanted & url_set(m.peer_urls)]
    if len(unstarted) > 1:
        raise MembershipConflict('peer URLs %s match %d members that have not started (%s): remove the extra one '
                                 'first' % (', '.join(sorted(wanted)), len(unstarted),
                                            ', '.join(describe(m) for m in unstarted)))
    return unstarted[0] if unstarted else None


def find_member_to_remove(members, name, peer_urls=None):
    """(the member a removal means or None, how it was found: a list of 'name' and 'peer_urls').

    Unlike find_member, a started member is found by its peer URLs too: the
    name etcd knows it by may not be the one the task gives (a renamed host),
    while a peer URL belongs to one member only. MembershipConflict when the
    name and the peer URLs point at different members, or either at several.
    """
    named = [m for m in members if m.name == name]
    if len(named) > 1:
        raise MembershipConflict('%d members are named %r (%s): etcd allows duplicate names, but this module '
                                 'cannot tell which one is meant; remove the extra one with etcdctl'
                                 % (len(named), name, ', '.join(describe(m) for m in named)))
    wanted = url_set(peer_urls)
    by_url = [m for m in members if wanted & url_set(m.peer_urls)] if wanted else []
    if len(by_url) > 1:
        raise MembershipConflict('peer URLs %s belong to %d members (%s): name one peer URL of the member to remove'
                                 % (', '.join(sorted(wanted)), len(by_url), ', '.join(describe(m) for m in by_url)))
    if named and by_url and named[0].id != by_url[0].id:
        raise MembershipConflict('%s is named %r, but peer URLs %s belong to %s: not guessing which member to '
                                 'remove; fix name or peer_urls' % (describe(named[0]), name, ', '.join(sorted(wanted)),
                                                                    describe(by_url[0])))
    target = (named or by_url or [None])[0]
    matched_by = [how for how, found in (('name', named), ('peer_urls', by_url)) if found]
    return target, matched_by


def url_conflicts(members, peer_urls, target=None):
    """Messages for peer URLs in ``peer_urls`` that another member than ``target`` already holds."""
    wanted = url_set(peer_urls)
    problems = []
    for m in members:
        if target is not None and m.id == target.id:
            continue
        taken = sorted(wanted & url_set(m.peer_urls))
        if taken:
            problems.append('peer URL %s already belongs to %s' % (', '.join(taken), describe(m)))
    return problems


def is_healthy(health, member):
    entry = health.get(member.id)
    return bool(entry and entry.healthy)


def _unhealthy_text(health, members, names=None):
    parts = []
    for m in members:
        if not is_healthy(health, m):
            entry = health.get(m.id)
            reason = entry.reason if entry and entry.reason else 'health unknown'
            parts.append('%s: %s' % (describe(m, (names or {}).get(m.id)), reason))
    return '; '.join(parts)


def check_remove(members, health, target):
    """None when removing ``target`` keeps quorum, else the reason to refuse."""
    others = [m for m in members if m.id != target.id]
    if not others:
        return ('refusing to remove %s: it is the last member of the cluster (etcd cannot run without members; '
                'stop etcd and delete its data instead)' % describe(target))
    if target.is_learner:
        return None  # learners do not vote: quorum does not change
    remaining = voters(others)
    if not remaining:
        return ('refusing to remove %s: it is the last voting member (only learners would remain, and learners '
                'cannot elect a leader); promote a learner first' % describe(target))
    need = quorum(len(remaining))
    healthy = sum(1 for m in remaining if is_healthy(health, m))
    if healthy < need:
        return ('refusing to remove %s: the %d voting members left would need %d healthy for quorum, but only %d '
                'of them %s healthy (%s). Bring the unhealthy members back, or remove an unhealthy member '
                'instead of a healthy one'
                % (describe(target), len(remaining), need, healthy, 'is' if healthy == 1 else 'are',
                   _unhealthy_text(health, remaining)))
    return None


def check_add(members, health, is_learner):
    """None when a new member may be added now, else the reason to refuse."""
    if is_learner:
        return None  # a learner does not vote: quorum does not change, whatever happens to it
    current = voters(members)
    if any(not is_healthy(health, m) for m in current):
        return ('refusing to add a voting member while a voting member is unhealthy (%s): the cluster would need '
                '%d healthy voters out of %d, and if the new member does not start it could lose quorum. '
                'Repair the cluster first, or add the member as a learner (learner: true)'
                % (_unhealthy_text(health, current), quorum(len(current) + 1), len(current) + 1))
    return None


def check_promote(members, health, target, assume_target_healthy=False):
    """None when promoting learner ``target`` keeps a healthy quorum, else the reason to refuse.

    ``assume_target_healthy`` tells whether waiting for the learner could ever
    help: when the promotion is refused even with a healthy learner, the other
    voters are the problem.
    """
    current = voters(members)
    after = len(current) + 1
    need = quorum(after)
    healthy = sum(1 for m in current if is_healthy(health, m))
    target_ok = assume_target_healthy or is_healthy(health, target)
    if healthy + (1 if target_ok else 0) >= need:
        return None
    problems = _unhealthy_text(health, current + ([] if target_ok else [target]))
    return ('refusing to promote %s: the cluster would have %d voting members and need %d healthy for quorum, '
            'but only %d would be healthy (%s)'
            % (describe(target), after, need, healthy + (1 if target_ok else 0), problems))


def initial_cluster(members, target, name):
    """The ``--initial-cluster`` value a new member must be started with: every member, itself included.

    etcd matches members by peer URL when a member joins, and needs the new
    member's own name in the list; other members that have not started yet
    have no name, so they are listed under their hex ID.
    """
    parts = []
    for m in members:
        label = name if m.id == target.id else (m.name or hex_id(m.id))
        for url in m.peer_urls:
            parts.append('%s=%s' % (label, url))
    return ','.join(parts)


def member_dict(member):
    return {'id': hex_id(member.id) if member.id else None, 'name': member.name,
            'peer_urls': list(member.peer_urls), 'client_urls': list(member.client_urls),
            'is_learner': bool(member.is_learner)}


def diff_view(members, target_id=None, name=None):
    """The member list for diff mode: {name: {peer_urls, is_learner}}.

    Members that have not started are shown under ``unstarted <hex id>``,
    except the task's own member, which is shown under the name it asked for,
    so that a check-mode diff and the real one look the same.
    """
    view = {}
    for m in members:
        if target_id is not None and m.id == target_id and name:
            label = name
        else:
            label = m.name or 'unstarted %s' % hex_id(m.id)
        view[label] = {'peer_urls': sorted(m.peer_urls), 'is_learner': bool(m.is_learner)}
    return {'members': view}
