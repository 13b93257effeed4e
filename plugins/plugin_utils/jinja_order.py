# -*- coding: utf-8 -*-
# Copyright: pgha.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Deduplicating and sorting lists of strings the way Ansible's ``unique`` and ``sort`` filters do by default:
strings are compared without regard to case, and the first of equal items is kept."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


def _key(item):
    return item.lower() if isinstance(item, str) else item


def unique(items):
    seen = set()
    result = []
    for item in items:
        key = _key(item)
        if key not in seen:
            seen.add(key)
            result.append(item)
    return result


def sort(items):
    return sorted(items, key=_key)
