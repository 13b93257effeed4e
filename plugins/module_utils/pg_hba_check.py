# -*- coding: utf-8 -*-
# Copyright: pgha.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Checks of what an inventory adds to pg_hba.conf: whole lines, and networks (CIDR) the role turns into lines.

Pure and stdlib only. PostgreSQL reads pg_hba.conf only when it starts or
reloads, and refuses the whole file (keeping the previous rules, or not
starting) when one line is wrong; a line that is valid but too wide (``trust``,
a network with host bits set) is worse, because nothing says so. The rules
follow PostgreSQL 15's ``hba.c``: whitespace separates fields, double quotes
group, ``#`` starts a comment; ``local`` lines have no address; an address is
a CIDR network, an IP address followed by a mask, a host name, or ``all``,
``samehost`` or ``samenet``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import re

CONNECTION_TYPES = ('local', 'host', 'hostssl', 'hostnossl', 'hostgssenc', 'hostnogssenc')
# PostgreSQL 15's authentication methods (bsd exists on OpenBSD only).
METHODS = ('trust', 'reject', 'scram-sha-256', 'md5', 'password', 'gss', 'sspi', 'ident', 'peer', 'pam', 'ldap',
           'radius', 'cert')
ADDRESS_KEYWORDS = ('all', 'samehost', 'samenet')
_HOST_NAME = re.compile(r'^\.?[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$')
_OPTION = re.compile(r'^[A-Za-z_]+=.*$')
_SHOWN = 80


def _shown(value):
    text = str(value)
    return repr(text if len(text) <= _SHOWN else text[:_SHOWN] + '...')


def network_problem(network):
    """Why ``network`` is not a CIDR network that PostgreSQL matches as written; None when it is one."""
    if not isinstance(network, str) or '/' not in network:
        return '%s is not a network in CIDR notation (address/prefix length, for example 10.0.0.0/24)' % (
            _shown(network))
    try:
        ipaddress.ip_network(network.strip(), strict=False)
    except ValueError:
        return '%s is not a network in CIDR notation (address/prefix length, for example 10.0.0.0/24)' % (
            _shown(network))
    try:
        ipaddress.ip_network(network.strip(), strict=True)
    except ValueError:
        address, length = network.strip().split('/', 1)
        return ('%s has host bits set: PostgreSQL would admit all of %s; write that network, or %s/%d for the '
                'one address' % (_shown(network), ipaddress.ip_network(network.strip(), strict=False),
                                 address, 128 if ':' in address else 32))
    return None


def network_problems(networks, what='patroni_extra_client_networks'):
    """One message per entry of ``networks`` that is not a CIDR network (see :func:`network_problem`)."""
    if isinstance(networks, str) or not isinstance(networks, (list, tuple)):
        return ['%s must be a list of networks, not %s' % (what, _shown(networks))]
    problems = []
    for network in networks:
        problem = network_problem(network)
        if problem:
            problems.append('%s: %s' % (what, problem))
    return problems


def tokens(line):
    """The fields of a pg_hba.conf line (quotes kept, comment dropped); ValueError for an unclosed quote."""
    fields, current, quoted, started = [], [], False, False
    for char in line:
        if quoted:
            current.append(char)
            if char == '"':
                quoted = False
            continue
        if char == '#':
            break
        if char in ' \t':
            if started:
                fields.append(''.join(current))
                current, started = [], False
            continue
        current.append(char)
        started = True
        if char == '"':
            quoted = True
    if quoted:
        raise ValueError('a quote is not closed')
    if started:
        fields.append(''.join(current))
    return fields


def _unquoted(field):
    return field[1:-1] if len(field) >= 2 and field[0] == field[-1] == '"' else field


def _is_ip(text):
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


def _address_problem(fields):
    """(problem or None, number of fields the address takes) for the address at ``fields[3]``."""
    address = fields[3]
    if address in ADDRESS_KEYWORDS:
        return None, 1
    if '/' in address:
        return network_problem(address), 1
    if _is_ip(address):
        mask = fields[4] if len(fields) > 4 else ''
        if not _is_ip(mask):
            return 'the address %s needs a prefix length (%s/32) or a mask after it' % (address, address), 1
        return None, 2
    if _HOST_NAME.match(address):
        return None, 1
    return '%s is neither a network, an IP address with a mask, a host name nor all/samehost/samenet' % (
        _shown(address)), 1


def line_problem(line, allow_trust=False):
    """Why ``line`` must not go into pg_hba.conf; None when it may."""
    if not isinstance(line, str):
        return 'is not a line of text: %s' % _shown(line)
    if '\n' in line or '\r' in line:
        return 'holds a line break: give each pg_hba line as its own list item'
    try:
        fields = tokens(line)
    except ValueError as exc:
        return 'cannot be read: %s' % exc
    if not fields:
        return None
    kind = _unquoted(fields[0])
    if kind not in CONNECTION_TYPES:
        return 'starts with %s, which is not a connection type (%s)' % (_shown(kind), ', '.join(CONNECTION_TYPES))
    wanted = 4 if kind == 'local' else 5
    if len(fields) < wanted:
        return 'has %d fields; a %s line needs the %s' % (
            len(fields), kind, 'database, user and method' if kind == 'local' else 'database, user, address and method')
    method_at = 3
    if kind != 'local':
        problem, width = _address_problem(fields)
        if problem:
            return problem
        method_at = 3 + width
        if len(fields) <= method_at:
            return 'has no authentication method after its address'
    # Quotes make no keyword of a method: "trust" is trust.
    method = _unquoted(fields[method_at])
    if method not in METHODS:
        return 'names the method %s, which PostgreSQL 15 does not know (%s)' % (_shown(method), ', '.join(METHODS))
    bad_options = [o for o in fields[method_at + 1:] if not _OPTION.match(o)]
    if bad_options:
        return 'has %s after its method, where only name=value options may follow' % ', '.join(
            _shown(o) for o in bad_options)
    if method == 'trust' and not allow_trust:
        return ('uses trust, which lets everyone who reaches it in as that user without a password; set '
                'patroni_pg_hba_allow_trust to true to allow it')
    return None


def pg_hba_problems(lines, allow_trust=False, what='patroni_pg_hba_extra'):
    """One message per line of ``lines`` that must not go into pg_hba.conf, naming the line."""
    if isinstance(lines, str) or not isinstance(lines, (list, tuple)):
        return ['%s must be a list of pg_hba lines, not %s' % (what, _shown(lines))]
    problems = []
    for number, line in enumerate(lines, 1):
        problem = line_problem(line, allow_trust)
        if problem:
            problems.append('%s line %d (%s) %s' % (what, number, _shown(line), problem))
    return problems
