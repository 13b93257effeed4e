# -*- coding: utf-8 -*-
# Copyright: pgha.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Patches to Patroni's dynamic configuration: the result predicted, the patch to send, the result checked.

Pure and stdlib only. ``PATCH /config`` applies a JSON merge patch (RFC 7386)
the way Patroni's ``patch_config`` does, which differs from the RFC twice;
:func:`merge_patch` follows Patroni so that what it predicts is what lands in
etcd, and :func:`patch_to_send` builds a patch that gives the RFC's result:

* a value whose text equals the current one (``10`` and ``"10"``) is left as
  it is: Patroni compares ``str()`` of both;
* ``null`` removes a key, but inside an object that is added whole Patroni
  keeps ``null`` values; the RFC (and :func:`merge_patch`) drops them, and
  :func:`patch_to_send` never sends them.

:func:`validate` refuses what Patroni would silently change or choke on:
Patroni raises ``ttl`` to 20, ``loop_wait`` to 1 and ``retry_timeout`` to 3,
then lowers ``loop_wait`` (or ``retry_timeout``) until
``loop_wait + 2 * retry_timeout <= ttl`` (``patroni/config.py``), and calls
``int()`` on the timings.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy

# Patroni's defaults for the timings when the config key does not set them.
TIMING_DEFAULTS = {'ttl': 30, 'loop_wait': 10, 'retry_timeout': 10}

# Integer settings and their smallest accepted value.
INTEGER_MINIMUMS = {
    'ttl': 20,
    'loop_wait': 1,
    'retry_timeout': 3,
    'maximum_lag_on_failover': 0,
    'maximum_lag_on_syncnode': -1,
    'synchronous_node_count': 1,
    'primary_start_timeout': 0,
    'primary_stop_timeout': 0,
    'master_start_timeout': 0,
    'master_stop_timeout': 0,
    'max_timelines_history': 0,
}
BOOLEAN_SETTINGS = ('synchronous_mode_strict', 'failsafe_mode', 'pause', 'check_timeline')
POSTGRESQL_BOOLEANS = ('use_pg_rewind', 'use_slots')
OBJECT_SETTINGS = ('postgresql', 'standby_cluster', 'slots')


def _strip_nulls(value):
    if isinstance(value, dict):
        return dict((k, _strip_nulls(v)) for k, v in value.items() if v is not None)
    return copy.deepcopy(value)


def merge_patch(current, patch):
    """``current`` with ``patch`` applied as Patroni applies it (see the module doc); a new dict."""
    result = copy.deepcopy(current) if isinstance(current, dict) else {}
    for name, value in patch.items():
        if value is None:
            # Patroni removes a key whose value is null but reports no change, so it never writes that alone.
            if result.get(name) is not None:
                del result[name]
        elif isinstance(value, dict) and isinstance(result.get(name), dict):
            result[name] = merge_patch(result[name], value)
        elif name not in result or isinstance(value, dict) or str(result[name]) != str(value):
            result[name] = _strip_nulls(value)
    return result


def patch_to_send(before, after):
    """The smallest merge patch turning ``before`` into ``after`` under Patroni's rules; {} when equal."""
    patch = {}
    for name in before:
        if name not in after and before[name] is not None:
            patch[name] = None
    for name, value in after.items():
        if name in before and before[name] == value:
            continue
        if isinstance(value, dict) and isinstance(before.get(name), dict):
            inner = patch_to_send(before[name], value)
            if inner:
                patch[name] = inner
        else:
            patch[name] = copy.deepcopy(value)
    return patch


def changed_paths(before, after, prefix=''):
    """Dotted names of every setting that differs (added, removed or changed), sorted."""
    paths = []
    for name in sorted(set(before) | set(after), key=str):
        path = '%s%s' % (prefix, name)
        old, new = before.get(name), after.get(name)
        if name in before and name in after and old == new:
            continue
        if isinstance(old, dict) and isinstance(new, dict):
            paths.extend(changed_paths(old, new, path + '.'))
        else:
            paths.append(path)
    return paths


def _kind(value):
    if value is None:
        return 'null'
    if isinstance(value, bool):
        return 'a boolean'
    if isinstance(value, str):
        return 'the string %r' % value
    if isinstance(value, (int, float)):
        return 'the number %r' % value
    return 'a JSON %s' % ('object' if isinstance(value, dict) else 'array' if isinstance(value, list) else 'value')


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def validate(config):
    """Every reason ``config`` (a whole dynamic configuration) must not be written; [] when it is fine."""
    errors = []
    for name, minimum in sorted(INTEGER_MINIMUMS.items()):
        if name not in config or config[name] is None:
            continue
        value = config[name]
        if not _is_int(value):
            errors.append('%s must be an integer, not %s' % (name, _kind(value)))
        elif value < minimum:
            errors.append('%s must be at least %d (Patroni would silently raise %d to %d)' % (
                name, minimum, value, minimum))
    timings = dict((name, config.get(name, default)) for name, default in TIMING_DEFAULTS.items())
    if all(_is_int(v) for v in timings.values()) \
            and timings['loop_wait'] + 2 * timings['retry_timeout'] > timings['ttl']:
        errors.append('loop_wait + 2 * retry_timeout must not exceed ttl: %d + 2 * %d > %d (Patroni would silently '
                      'lower loop_wait or retry_timeout)' % (timings['loop_wait'], timings['retry_timeout'],
                                                             timings['ttl']))
    mode = config.get('synchronous_mode')
    if mode is not None and not isinstance(mode, bool) and mode != 'quorum':
        errors.append('synchronous_mode must be true, false or "quorum", not %s' % _kind(mode))
    for name in BOOLEAN_SETTINGS:
        if config.get(name) is not None and not isinstance(config[name], bool):
            errors.append('%s must be true or false, not %s' % (name, _kind(config[name])))
    if config.get('synchronous_mode_strict') is True and mode not in (True, 'quorum'):
        errors.append('synchronous_mode_strict needs synchronous_mode (true or "quorum")')
    for name in OBJECT_SETTINGS:
        if config.get(name) is not None and not isinstance(config[name], dict):
            errors.append('%s must be a JSON object, not %s' % (name, _kind(config[name])))
    if config.get('ignore_slots') is not None and not isinstance(config['ignore_slots'], list):
        errors.append('ignore_slots must be a JSON array, not %s' % _kind(config['ignore_slots']))
    postgresql = config.get('postgresql')
    if isinstance(postgresql, dict):
        parameters = postgresql.get('parameters')
        if parameters is not None and not isinstance(parameters, dict):
            errors.append('postgresql.parameters must be a JSON object, not %s' % _kind(parameters))
        for name in POSTGRESQL_BOOLEANS:
            if postgresql.get(name) is not None and not isinstance(postgresql[name], bool):
                errors.append('postgresql.%s must be true or false, not %s' % (name, _kind(postgresql[name])))
    return errors
