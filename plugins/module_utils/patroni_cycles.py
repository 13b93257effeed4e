# -*- coding: utf-8 -*-
# Copyright: pgha.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""When has a member's Patroni begun an HA cycle after a given moment? Told from its REST API.

Pure and stdlib only. Patroni re-reads patroni.yml (SIGHUP, ``POST /reload``)
at the start of its next main-loop iteration, not when the signal arrives, and
says nothing when it has. What it does say, in ``GET /patroni``, is
``dcs_last_seen``: the second (an int) of its last successful read of the
cluster from etcd, which every HA cycle does once.

After the signal, a first answer gives some value; a different value later
means a read that happened after that answer (cycle *k*, which may have begun
before the signal). A second change means the read of the cycle after it,
*k+1*, which began after cycle *k*'s read and therefore after the signal: by
then Patroni has applied what it was signalled to reload. Two reads within one
second leave the value unchanged, which only makes the wait longer.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

# Changes of dcs_last_seen after the first answer that prove a cycle begun after that answer.
CHANGES_NEEDED = 2


def dcs_last_seen(answer):
    """``dcs_last_seen`` of a ``GET /patroni`` answer as an int, None when it has none (or not an int)."""
    if not isinstance(answer, dict):
        return None
    value = answer.get('dcs_last_seen')
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value


class CycleTracker(object):
    """Follows ``dcs_last_seen`` per member until each has begun a cycle after the tracker was made.

    Feed it with :meth:`observe` (the first observation of a member must come after the moment that counts);
    :meth:`pending` names the members still waited for.
    """

    def __init__(self, names):
        self._values = dict((name, []) for name in names)
        self._last_answer = dict((name, None) for name in names)

    def observe(self, name, answer):
        """Record a ``GET /patroni`` answer (or None when there was none) of member ``name``."""
        if name not in self._values:
            raise KeyError('member %r is not tracked' % (name,))
        self._last_answer[name] = answer
        value = dcs_last_seen(answer)
        if value is None:
            return
        values = self._values[name]
        if not values or values[-1] != value:
            values.append(value)

    def done(self, name):
        return len(self._values[name]) > CHANGES_NEEDED

    def pending(self):
        """Names of the members that have not yet shown a cycle begun after the start, sorted."""
        return sorted(name for name in self._values if not self.done(name))

    def last_answer(self, name):
        return self._last_answer[name]
