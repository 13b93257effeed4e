# -*- coding: utf-8 -*-
# Copyright: pgha.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the patroni role derives from the inventory. Each filter is documented in the YAML file of its name here."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError
from ansible_collections.pgha.cluster.plugins.plugin_utils.hostvars import check_hosts, first_set, vars_of
from ansible_collections.pgha.cluster.plugins.plugin_utils.jinja_order import unique


def _host_network(address):
    return '%s/%d' % (address, 128 if ':' in address else 32)


def _list(value, what):
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise AnsibleFilterError('patroni_pg_hba expects %s as a list, got %r' % (what, value))
    return list(value)


def patroni_pg_hba(member_addresses, superuser, replication_user, ident_map, load_balancers=(), extra_lines=(),
                   extra_networks=()):
    """pg_hba lines: the local socket, then TLS + SCRAM from the members (replication too), 127.0.0.1 and the
    load balancers. Empty addresses (hosts whose address is unknown) are left out; duplicates are dropped."""
    for name, value in (('superuser', superuser), ('replication_user', replication_user), ('ident_map', ident_map)):
        if not isinstance(value, str) or not value:
            raise AnsibleFilterError('patroni_pg_hba needs %s as a non-empty string, got %r' % (name, value))
    members = [a for a in _list(member_addresses, 'the member addresses') if a] + ['127.0.0.1']
    networks = [_host_network(a) for a in members + [a for a in _list(load_balancers, 'load_balancers') if a]]
    lines = ['local all %s peer map=%s' % (superuser, ident_map), 'local all all scram-sha-256']
    lines += _list(extra_lines, 'extra_lines')
    lines += ['hostssl replication %s %s scram-sha-256' % (replication_user, _host_network(a)) for a in members]
    lines += ['hostssl all all %s scram-sha-256' % n for n in networks + _list(extra_networks, 'extra_networks')]
    return unique(lines)


def patroni_member_host(hosts, hostvars, member_name):
    """The inventory host whose Patroni member name is ``member_name``, or '' when there is none.

    A host's member name is the one it published in this run, else its patroni_name, else its inventory name.
    """
    check_hosts(hosts, 'patroni_member_host')
    for host in hosts:
        if first_set(vars_of(hostvars, host), ['__patroni_name_fact', 'patroni_name'], host) == member_name:
            return host
    return ''


class FilterModule(object):

    def filters(self):
        return {
            'patroni_pg_hba': patroni_pg_hba,
            'patroni_member_host': patroni_member_host,
        }
