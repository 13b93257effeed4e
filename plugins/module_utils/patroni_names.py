# -*- coding: utf-8 -*-
# Copyright: pgha.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Names Patroni derives keys and slots from: namespaces, member names, and the key prefixes of clusters that share
one etcd.

Pure and stdlib only. Where a cluster's keys live is patroni_state.cluster_prefix
(Patroni's own normalisation of the namespace); this module says when names
are unsafe to use: a namespace segment that is not a plain name, two members
whose replication slots would be the same, two clusters one of which lives
inside the other's prefix (the etcd user of the outer one could read and write
the inner one's keys).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from .patroni_state import cluster_prefix

NAME = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.-]*$')
# PostgreSQL names (application_name, replication slots) keep 63 bytes.
MAX_NAME = 63


def namespace_problem(namespace):
    """Why ``namespace`` cannot be a Patroni namespace here; None when it can.

    Patroni accepts any string; the roles take ``/``-separated names of letters, digits, ``.``, ``_`` and ``-``,
    each starting with a letter or digit, so that a namespace is a key prefix and nothing else.
    """
    if not isinstance(namespace, str):
        return 'is not a string: %r' % (namespace,)
    segments = [s for s in namespace.split('/') if s]
    if not segments:
        return 'holds no name (%r): give one, for example /service' % namespace
    bad = [s for s in segments if not NAME.match(s)]
    if bad:
        return ('%r has the part(s) %s; each part between slashes may hold letters, digits, ".", "_" and "-" and '
                'starts with a letter or a digit' % (namespace, ', '.join(repr(s) for s in bad)))
    return None


def slot_name(member_name):
    """The replication slot Patroni gives ``member_name`` (``slot_name_from_member_name`` in patroni/dcs): lower case,
    ``-`` and ``.`` as ``_``, other characters as ``u<code point>``, at most 63 characters."""
    def replace(match):
        char = match.group(0)
        return '_' if char in '-.' else 'u%04d' % ord(char)
    return re.sub('[^a-z0-9_]', replace, member_name.lower())[:MAX_NAME]


def slot_collisions(member_names):
    """``{slot name: [member names]}`` for every slot name that two or more of ``member_names`` would share."""
    by_slot = {}
    for name in member_names:
        names = by_slot.setdefault(slot_name(name), [])
        if name not in names:
            names.append(name)
    return dict((slot, names) for slot, names in by_slot.items() if len(names) > 1)


def prefix_overlaps(places):
    """Pairs ``(label, prefix, other label, other prefix)`` where one key prefix lies within the other (equal ones
    included), from ``places``: ``[(label, prefix)]``, in order."""
    overlaps = []
    for index, (label, prefix) in enumerate(places):
        for other_label, other in places[index + 1:]:
            if prefix.startswith(other) or other.startswith(prefix):
                overlaps.append((label, prefix, other_label, other))
    return overlaps


def cluster_places(clusters):
    """``[(group, prefix)]`` of ``clusters`` (``{group: {'scope', 'namespace'}}``) whose prefix can be built."""
    places = []
    for group, cluster in clusters.items():
        try:
            places.append((group, cluster_prefix(cluster['namespace'], cluster['scope'])))
        except ValueError:
            continue
    return places
