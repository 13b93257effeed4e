# -*- coding: utf-8 -*-
# Copyright: pgha.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure logic of the RBAC modules (etcd_role, etcd_user, etcd_auth): no I/O, stdlib only.

Permission specs as users write them are validated and normalised into
PermSpec tuples, compared with what etcd holds, and turned into a plan (what
to grant, what to revoke, what the role holds afterwards). etcd identifies a
permission by its key range, so (key, range_end) is the identity and the type
is the payload: granting an existing range again overwrites its type.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import collections

from .etcd_errors import EtcdInvalidAuthManagement, EtcdPermissionDenied, EtcdTokenRejected
from .etcd_types import PERM_TYPES, permission_is_prefix, prefix_range_end, to_bytes

# key and range_end are bytes; range_end is None for a single key. perm_type is READ, WRITE or READWRITE.
PermSpec = collections.namedtuple('PermSpec', ['key', 'range_end', 'perm_type'])
PermissionPlan = collections.namedtuple('PermissionPlan', ['grant', 'revoke', 'after'])
RolePlan = collections.namedtuple('RolePlan', ['grant', 'revoke', 'after'])

# etcd grants the role of this name every permission and refuses to enable
# authentication unless a user of this name holds it.
ROOT = 'root'

ADMIN_HINT = ("managing etcd users, roles and authentication needs the credentials of a user with the root "
              "role: set username (e.g. root) and password")
ROOT_PROTECTED_HINT = ("while authentication is enabled, etcd refuses to delete user 'root' or role 'root' and to "
                       "revoke role 'root' from user 'root': disable authentication first with pgha.cluster.etcd_auth")
NO_CREDENTIALS = "authentication is enabled on this etcd cluster and no credentials were given: " + ADMIN_HINT


class RbacSpecError(ValueError):
    """A permission or role spec that cannot be applied; the message names the offending entry."""


def _text(data):
    return data.decode('utf-8', 'replace') if isinstance(data, bytes) else data


def _describe(entry, index):
    """How an entry is named in error messages: its position and, when readable, its key."""
    where = 'permissions[%d]' % index
    if isinstance(entry, dict) and isinstance(entry.get('key'), str) and entry.get('key'):
        return '%s (key %r)' % (where, entry['key'])
    return where


def normalize_type(value):
    """READ, WRITE or READWRITE from any capitalisation; None when ``value`` is none of them."""
    text = str(value).strip().upper() if value is not None else 'READ'
    return text if text in PERM_TYPES else None


def normalize_permission(entry, index=0):
    """One user-written permission (dict with key, prefix, range_end, type) -> PermSpec.

    Raises RbacSpecError naming the entry when it is not a dict, has no key,
    sets both prefix and range_end, has an unknown type, or a range that ends
    before it starts.
    """
    where = _describe(entry, index)
    if not isinstance(entry, dict):
        raise RbacSpecError('%s must be a dict with key, prefix, range_end and type, not %r' % (where, entry))
    unknown = sorted(set(entry) - {'key', 'prefix', 'range_end', 'type'})
    if unknown:
        raise RbacSpecError('%s has unknown fields %s: use key, prefix, range_end and type'
                            % (where, ', '.join(unknown)))
    key = entry.get('key')
    if not isinstance(key, str) or key == '':
        raise RbacSpecError('%s: key must be a non-empty string, not %r' % (where, key))
    perm_type = normalize_type(entry.get('type'))
    if perm_type is None:
        raise RbacSpecError('%s: unknown permission type %r: use read, write or readwrite'
                            % (where, entry.get('type')))
    prefix = entry.get('prefix') or False
    if not isinstance(prefix, bool):
        raise RbacSpecError('%s: prefix must be true or false, not %r' % (where, prefix))
    range_end = entry.get('range_end')
    if range_end == '':
        range_end = None  # an empty variable means "no explicit range"
    if range_end is not None and not isinstance(range_end, str):
        raise RbacSpecError('%s: range_end must be a string, not %r' % (where, range_end))
    if prefix and range_end is not None:
        raise RbacSpecError('%s sets both prefix and range_end: give prefix: true for every key starting '
                            'with key, or range_end for the keys from key up to (not including) range_end'
                            % where)
    key_bytes = to_bytes(key)
    if prefix:
        end = prefix_range_end(key_bytes)
    elif range_end is not None:
        end = to_bytes(range_end)
        # b'\0' is etcd's "every key from key on"; any other end must sort after the key.
        if end != b'\0' and end <= key_bytes:
            raise RbacSpecError('%s: range_end %r must sort after key %r (etcd ranges are [key, range_end))'
                                % (where, range_end, key))
    else:
        end = None
    return PermSpec(key_bytes, end, perm_type)


def _sort_key(perm):
    return (perm.key, perm.range_end or b'')


def normalize_permissions(entries):
    """Validate a list of permission entries -> sorted list of PermSpec without repeats.

    An entry repeated with the same type is kept once; the same key range
    listed with different types is an error (which one should win?).
    """
    if entries is None:
        return None
    if not isinstance(entries, (list, tuple)):
        raise RbacSpecError('permissions must be a list of dicts, not %r' % (entries,))
    seen = {}
    for index, entry in enumerate(entries):
        spec = normalize_permission(entry, index)
        identity = (spec.key, spec.range_end)
        if identity in seen:
            first_index, first = seen[identity]
            if first.perm_type != spec.perm_type:
                raise RbacSpecError(
                    '%s and %s cover the same keys (%s) with different types (%s, %s): list each key range once'
                    % (_describe(entries[first_index], first_index), _describe(entry, index),
                       describe_range(spec), first.perm_type.lower(), spec.perm_type.lower()))
            continue
        seen[identity] = (index, spec)
    return sorted((spec for dummy, spec in seen.values()), key=_sort_key)


def from_etcd(permission):
    """A Permission as the client reads it (etcd_types.Permission) -> PermSpec."""
    return PermSpec(to_bytes(permission.key), permission.range_end or None, str(permission.perm_type).upper())


def _covers_everything(spec):
    # etcdctl's `grant-permission --prefix role read ''` stores key \0 .. \0.
    return spec.key == b'\0' and spec.range_end == b'\0'


def describe_range(spec):
    """Human wording of a permission's key range, for messages."""
    if _covers_everything(spec):
        return 'every key'
    if spec.range_end is None:
        return 'key %r' % _text(spec.key)
    if permission_is_prefix(spec):
        return 'prefix %r' % _text(spec.key)
    return 'range [%r, %r)' % (_text(spec.key), _text(spec.range_end))


def permission_to_dict(spec):
    """A PermSpec in the shape users write permissions in (for results and diffs)."""
    prefix = spec.range_end is not None and permission_is_prefix(spec)
    return {
        'key': _text(spec.key),
        'prefix': prefix,
        'range_end': None if prefix or spec.range_end is None else _text(spec.range_end),
        'type': spec.perm_type.lower(),
    }


def permissions_to_dicts(specs):
    return [permission_to_dict(s) for s in sorted(specs, key=_sort_key)]


def plan_permissions(current, desired, exclusive=True):
    """What to do to turn the ``current`` PermSpecs into ``desired`` ones.

    ``desired`` None means "leave the permissions alone". Returns a
    PermissionPlan: ``grant`` (missing ranges, and ranges whose type differs:
    etcd's grant overwrites the type), ``revoke`` (ranges not desired, only
    when ``exclusive``), ``after`` (what the role holds once applied), each a
    sorted list of PermSpec.
    """
    current_by_range = {}
    for spec in current:
        current_by_range[(spec.key, spec.range_end)] = spec
    if desired is None:
        return PermissionPlan([], [], sorted(current_by_range.values(), key=_sort_key))
    desired_by_range = dict(((s.key, s.range_end), s) for s in desired)
    grant = [s for r, s in desired_by_range.items()
             if r not in current_by_range or current_by_range[r].perm_type != s.perm_type]
    revoke = [s for r, s in current_by_range.items() if exclusive and r not in desired_by_range]
    after = dict(current_by_range)
    for spec in revoke:
        del after[(spec.key, spec.range_end)]
    after.update(desired_by_range)
    return PermissionPlan(sorted(grant, key=_sort_key), sorted(revoke, key=_sort_key),
                          sorted(after.values(), key=_sort_key))


def normalize_roles(roles):
    """A list of role names -> sorted list without repeats; RbacSpecError on an empty or non-string name."""
    if roles is None:
        return None
    result = set()
    for index, role in enumerate(roles):
        if not isinstance(role, str) or not role.strip():
            raise RbacSpecError('roles[%d]: a role name must be a non-empty string, not %r' % (index, role))
        result.add(role)
    return sorted(result)


def plan_roles(current, desired, append=False):
    """Role changes for a user, like ansible.builtin.user's groups/append.

    ``desired`` None leaves the roles alone; otherwise missing roles are
    granted and, unless ``append``, roles not listed are revoked.
    """
    current = sorted(set(current))
    if desired is None:
        return RolePlan([], [], current)
    grant = sorted(set(desired) - set(current))
    revoke = [] if append else sorted(set(current) - set(desired))
    after = sorted((set(current) - set(revoke)) | set(grant))
    return RolePlan(grant, revoke, after)


def explain_error(exc):
    """Append what to do to an etcd error the RBAC modules commonly meet; returns ``exc``.

    "permission denied" (or no credentials at all) means the module does not
    log in as a root user; "invalid auth management" is etcd refusing to
    delete root, or to take role root from user root, while authentication is on.
    """
    hint = None
    if isinstance(exc, (EtcdPermissionDenied, EtcdTokenRejected)):
        hint = ADMIN_HINT
    elif isinstance(exc, EtcdInvalidAuthManagement):
        hint = ROOT_PROTECTED_HINT
    if hint and hint not in exc.message:
        exc.message = '%s (%s)' % (exc.message, hint)
    return exc
