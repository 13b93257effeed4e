# -*- coding: utf-8 -*-
# Copyright: pgha.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure decisions of the pgha.cluster.etcd_key module: what to write, whether
it differs from what is stored, and how the change is shown in diff mode.

No I/O and stdlib only, so all of it is unit-tested without a server.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

# Prefix deletion diffs name at most this many keys (plus a count of the rest):
# a diff of a million keys helps nobody and would bloat the task result.
DIFF_KEYS_CAP = 100


def compact_json(data):
    """The canonical text for ``value_json``: compact, keys sorted, strict JSON (no NaN)."""
    return json.dumps(data, sort_keys=True, separators=(',', ':'), ensure_ascii=False, allow_nan=False)


def desired_text(value=None, value_json=None):
    """(text to store, is_json) for the module's value options; ValueError names what is wrong.

    A string given as ``value_json`` is taken as JSON text (what a lookup or a
    file holds), like the uri module's JSON body; any other data is encoded.
    """
    if value_json is None:
        return value, False
    if isinstance(value_json, str):
        try:
            data = json.loads(value_json)
        except ValueError as exc:
            raise ValueError('value_json is a string but not valid JSON text (%s); give the data itself, or '
                             'use value to store a plain string' % exc)
    else:
        data = value_json
    try:
        return compact_json(data), True
    except (TypeError, ValueError) as exc:
        raise ValueError('value_json cannot be encoded as JSON: %s' % exc)


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def json_equal(a, b):
    """Semantic equality of decoded JSON: key order never matters, 1 == 1.0, but true != 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if _is_number(a) or _is_number(b):
        return _is_number(a) and _is_number(b) and a == b
    if isinstance(a, dict) or isinstance(b, dict):
        if not (isinstance(a, dict) and isinstance(b, dict)) or set(a) != set(b):
            return False
        return all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) or isinstance(b, list):
        if not (isinstance(a, list) and isinstance(b, list)) or len(a) != len(b):
            return False
        return all(json_equal(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def value_matches(stored, text, is_json):
    """True when the stored bytes already hold ``text`` (for JSON: the same data)."""
    if stored is None:
        return False
    if not is_json:
        return stored == text.encode('utf-8')
    try:
        current = json.loads(stored.decode('utf-8'))
    except ValueError:  # also UnicodeDecodeError
        return False
    return json_equal(current, json.loads(text))


def is_whole_keyspace(key):
    """True for prefixes that select (nearly) every key: '' and '/'-only strings."""
    return key.strip('/') == ''


def check_params(params):
    """The first problem with a combination of etcd_key options, or None."""
    key = params.get('key')
    state = params.get('state')
    if params.get('prefix'):
        if state == 'present':
            return ('prefix=true only works with state=absent (delete every key under a prefix); to write keys, '
                    'use one task per key')
        if is_whole_keyspace(key or '') and not params.get('force'):
            return ('refusing to delete every key under %r: that is (nearly) the whole etcd keyspace; set '
                    'force=true if that is really meant' % (key or ''))
        return None
    if not key:
        return 'key must not be empty'
    lease_ttl = params.get('lease_ttl')
    if state == 'present' and lease_ttl is not None and lease_ttl < 1:
        return 'lease_ttl must be at least 1 second, not %d' % lease_ttl
    return None


def value_for_diff(text, is_json):
    """A value as shown in a diff: JSON pretty-printed (reviewable), anything else as stored."""
    if text is None:
        return ''
    if is_json:
        try:
            text = json.dumps(json.loads(text), sort_keys=True, indent=2, ensure_ascii=False)
        except ValueError:
            pass
    return text if text.endswith('\n') else text + '\n'


def key_diff(key, before, after, is_json=False):
    """Diff of one key: ``before``/``after`` are value texts, None when the key is absent."""
    return {
        'before_header': '%s (%s)' % (key, 'absent' if before is None else 'current'),
        'after_header': '%s (%s)' % (key, 'absent' if after is None else 'wanted'),
        'before': value_for_diff(before, is_json),
        'after': value_for_diff(after, is_json),
    }


def prefix_diff(prefix, keys, total=None, cap=DIFF_KEYS_CAP):
    """Diff of a prefix deletion: the keys that go (at most ``cap`` named, then a count)."""
    total = len(keys) if total is None else total
    lines = list(keys[:cap])
    if total > len(lines):
        lines.append('... and %d more key(s)' % (total - len(lines)))
    return {
        'before_header': 'keys under %s (%d)' % (prefix, total),
        'after_header': 'keys under %s (0)' % prefix,
        'before': ''.join(line + '\n' for line in lines),
        'after': '',
    }
