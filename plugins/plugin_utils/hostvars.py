# -*- coding: utf-8 -*-
# Copyright: pgha.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading other hosts' variables from ``hostvars`` in controller plugins.

A variable counts as set when the host defines it, whatever its value (as with Jinja's ``default``
filter); one whose template cannot be resolved counts as not set.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError, AnsibleUndefinedVariable

NOT_SET = object()


def is_undefined(value):
    # A lazily templated hostvar can come back as Jinja's Undefined instead of raising.
    return type(value).__name__.endswith('Undefined')


def vars_of(hostvars, host):
    """The variables of inventory host ``host``."""
    try:
        host_vars = hostvars[host]
    except (KeyError, TypeError):
        raise AnsibleFilterError('%r is not an inventory host' % (host,))
    if not isinstance(host_vars, Mapping):
        raise AnsibleFilterError('the hostvars of %r are not a mapping' % (host,))
    return host_vars


def check_hosts(hosts, filter_name):
    if isinstance(hosts, (str, bytes)) or not isinstance(hosts, (list, tuple)):
        raise AnsibleFilterError('%s expects a list of inventory host names, got %r' % (filter_name, hosts))


def first_set(host_vars, names, default=NOT_SET):
    """The value of the first of ``names`` the host sets, else ``default``."""
    if isinstance(names, str) or not isinstance(names, (list, tuple)):
        raise AnsibleFilterError('expected a list of variable names, got %r' % (names,))
    for name in names:
        try:
            value = host_vars[name]
        except (KeyError, AnsibleUndefinedVariable):
            continue
        if not is_undefined(value):
            return value
    return default


def default_ipv4_address(host_vars, default=''):
    """The address of the host's default IPv4 route from its facts, else ``default``."""
    facts = first_set(host_vars, ['ansible_facts'], {})
    route = facts.get('default_ipv4') if isinstance(facts, Mapping) else None
    address = route.get('address', default) if isinstance(route, Mapping) else default
    return default if is_undefined(address) else address
