# -*- coding: utf-8 -*-
# Copyright: pgha.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which member starts first when etcd holds nothing of a cluster whose members hold data.

Pure and stdlib only. With no keys in etcd (no ``initialize``, no leader, no
``status`` with the last known position), the first Patroni to start with a
data directory takes the cluster: it finds no other member to compare its WAL
position with, promotes itself, and every member started after it follows it,
rewinding away whatever it had beyond the fork. Starting the members in
inventory order can thus make a lagging replica the primary and lose the old
primary's last commits. The member to start first is the one whose data goes
furthest, read from each data directory's control file (``pg_controldata``)
the way Patroni reads it for pg_rewind (``patroni/postgresql/rewind.py``):

* ``shut down``: a primary stopped cleanly; its WAL ends at the shutdown
  checkpoint (``Latest checkpoint location``, ``Latest checkpoint's
  TimeLineID``), an exact position;
* ``shut down in recovery`` / ``in archive recovery``: a replica; it has
  replayed at least to ``Minimum recovery ending location`` (on ``Min
  recovery ending loc's timeline``) and to its last restartpoint (``Latest
  checkpoint location``), a lower bound;
* anything else (``in production``: a primary that crashed; ``in crash
  recovery``, ``shutting down``...): its WAL may go anywhere beyond the last
  checkpoint, so no member can be named safely and the operator must name one.

Positions compare by timeline first, then LSN, as Patroni compares members
(a member on a later timeline has the later history); among equal positions
the first member in the given order wins.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from .patroni_state import format_lsn, parse_lsn

STATE = 'Database cluster state'
SYSTEM_ID = 'Database system identifier'
CHECKPOINT = 'Latest checkpoint location'
CHECKPOINT_TIMELINE = "Latest checkpoint's TimeLineID"
MIN_RECOVERY = 'Minimum recovery ending location'
MIN_RECOVERY_TIMELINE = "Min recovery ending loc's timeline"

CLEAN_PRIMARY = 'shut down'
REPLICA_STATES = ('shut down in recovery', 'in archive recovery')


def parse_controldata(text):
    """``pg_controldata`` output (run with ``LC_ALL=C``) as ``{field: value}``; lines without ``:`` are skipped."""
    fields = {}
    for line in (text or '').splitlines():
        name, sep, value = line.partition(':')
        if sep:
            fields[name.strip()] = value.strip()
    return fields


class Position(object):
    """How far a member's data goes: ``timeline``, ``lsn`` (ints), ``exact`` (False: at least this far)."""

    __slots__ = ('timeline', 'lsn', 'exact', 'state', 'system_id')

    def __init__(self, timeline, lsn, exact, state, system_id):
        self.timeline, self.lsn, self.exact, self.state, self.system_id = timeline, lsn, exact, state, system_id

    def key(self):
        return (self.timeline, self.lsn)

    def describe(self):
        bound = '' if self.exact else 'at least '
        return 'timeline %d, %s%s (%s)' % (self.timeline, bound, format_lsn(self.lsn), self.state)


def _int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def data_position(fields):
    """The Position of a data directory from its parsed control file; ValueError saying why there is none."""
    state = fields.get(STATE)
    if not state:
        raise ValueError('pg_controldata reported no "%s"' % STATE)
    system_id = fields.get(SYSTEM_ID)
    checkpoint, checkpoint_tl = parse_lsn(fields.get(CHECKPOINT)), _int(fields.get(CHECKPOINT_TIMELINE))
    if state == CLEAN_PRIMARY:
        if checkpoint is None or not checkpoint_tl:
            raise ValueError('its control file has no usable "%s"/"%s"' % (CHECKPOINT, CHECKPOINT_TIMELINE))
        return Position(checkpoint_tl, checkpoint, True, state, system_id)
    if state in REPLICA_STATES:
        minimum, minimum_tl = parse_lsn(fields.get(MIN_RECOVERY)), _int(fields.get(MIN_RECOVERY_TIMELINE))
        if not minimum or not minimum_tl:
            # A replica that has no minimum recovery point was a primary when it stopped uncleanly.
            raise ValueError('it stopped in state "%s" without a minimum recovery point, so its WAL may end '
                             'anywhere after its last checkpoint' % state)
        lsn = max(minimum, checkpoint) if checkpoint is not None and checkpoint_tl == minimum_tl else minimum
        return Position(minimum_tl, lsn, False, state, system_id)
    raise ValueError('it stopped in state "%s" (not shut down cleanly), so its WAL may end anywhere after its last '
                     'checkpoint' % state)


class MemberData(object):
    """What the role found on one member: ``host``, Patroni ``name``, whether its data directory holds a cluster
    (``has_data``), pg_controldata's output (``controldata``) or why it could not be read (``error``), and whether
    Patroni runs there (``running``)."""

    __slots__ = ('host', 'name', 'has_data', 'controldata', 'error', 'running')

    def __init__(self, host, name, has_data, controldata=None, error=None, running=False):
        self.host, self.name, self.has_data = host, name, has_data
        self.controldata, self.error, self.running = controldata, error, running


class BootstrapChoice(object):
    """``leader``: the host to start first ('' when no member holds data: a new cluster, the usual first host
    bootstraps); ``problems``: why none can be chosen (empty when ``leader`` is good); ``positions``: what was
    found, one line per member with data; ``named``: whether the operator chose."""

    def __init__(self, leader='', problems=(), positions=(), named=False):
        self.leader, self.problems, self.positions, self.named = leader, list(problems), list(positions), named

    def to_dict(self):
        return {'leader': self.leader, 'problems': self.problems, 'positions': self.positions, 'named': self.named}


def _named_member(members, named):
    for member in members:
        if named in (member.name, member.host):
            return member
    return None


def choose_bootstrap_leader(members, named=''):
    """The BootstrapChoice for ``members`` (MemberData, in inventory order); ``named``: the member (name or host)
    the operator says to start first, '' when not set."""
    with_data = [m for m in members if m.has_data]
    if named:
        member = _named_member(members, named)
        if member is None:
            return BootstrapChoice(problems=['patroni_bootstrap_leader names %s, which is not a member of this '
                                             'cluster (%s)' % (named, ', '.join(m.name for m in members))],
                                   named=True)
        if not member.has_data:
            return BootstrapChoice(problems=['patroni_bootstrap_leader names %s, whose data directory holds no '
                                             'cluster' % member.name], named=True)
        return BootstrapChoice(leader=member.host, named=True)
    if not with_data:
        return BootstrapChoice()
    problems, positions, found = [], [], []
    for member in with_data:
        if member.running:
            problems.append('Patroni runs on %s' % member.name)
            continue
        if member.error:
            problems.append('the control file of %s cannot be read: %s' % (member.name, member.error))
            continue
        try:
            position = data_position(parse_controldata(member.controldata))
        except ValueError as exc:
            problems.append('%s cannot be compared: %s' % (member.name, exc))
            continue
        positions.append('%s: %s' % (member.name, position.describe()))
        found.append((member, position))
    system_ids = sorted(set(p.system_id for _m, p in found))
    if len(system_ids) > 1:
        problems.append('the data directories belong to different clusters (system identifiers %s)'
                        % ', '.join('%s: %s' % (m.name, p.system_id) for m, p in found))
    if problems:
        return BootstrapChoice(problems=problems, positions=positions)
    best_member, best = found[0]
    for member, position in found[1:]:
        if position.key() > best.key():
            best_member, best = member, position
    return BootstrapChoice(leader=best_member.host, positions=positions)
