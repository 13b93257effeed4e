# -*- coding: utf-8 -*-
# Copyright: pgha.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the patroni role derives from the inventory. Each filter is documented in the YAML file of its name here."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError
from ansible_collections.pgha.cluster.plugins.plugin_utils.hostvars import NOT_SET, check_hosts, first_set, vars_of
from ansible_collections.pgha.cluster.plugins.plugin_utils.jinja_order import unique
from ansible_collections.pgha.cluster.plugins.module_utils.patroni_bootstrap import MemberData, choose_bootstrap_leader
from ansible_collections.pgha.cluster.plugins.module_utils.patroni_names import (
    cluster_places, namespace_problem, prefix_overlaps, slot_collisions)
from ansible_collections.pgha.cluster.plugins.module_utils.pg_hba_check import network_problems, pg_hba_problems
from ansible_collections.pgha.cluster.plugins.module_utils.patroni_state import cluster_prefix


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


def patroni_cluster_prefix(scope, namespace=None):
    """``/<namespace>/<scope>/`` exactly as Patroni and the collection's modules build it."""
    try:
        return cluster_prefix(namespace, scope)
    except ValueError as exc:
        raise AnsibleFilterError('patroni_cluster_prefix: %s' % exc)


def patroni_member_host(hosts, hostvars, member_name):
    """The inventory host whose Patroni member name is ``member_name``, or '' when there is none.

    A host's member name is the one it published in this run, else its patroni_name, else its inventory name.
    """
    check_hosts(hosts, 'patroni_member_host')
    for host in hosts:
        if first_set(vars_of(hostvars, host), ['__patroni_name_fact', 'patroni_name'], host) == member_name:
            return host
    return ''


# What each host of a play publishes about its cluster (the patroni role's tasks/cluster.yml sets it).
CLUSTER_FACT = '__patroni_cluster_fact'
_CLUSTER_KEYS = ('group', 'scope', 'namespace', 'name')


def _cluster_fact(hostvars, host, filter_name):
    fact = first_set(vars_of(hostvars, host), [CLUSTER_FACT], None)
    if not isinstance(fact, Mapping) or any(key not in fact for key in _CLUSTER_KEYS):
        raise AnsibleFilterError('%s: host %r has not published its cluster (%s with %s): the patroni role sets it '
                                 'in tasks/cluster.yml' % (filter_name, host, CLUSTER_FACT, ', '.join(_CLUSTER_KEYS)))
    return fact


def patroni_clusters(hosts, hostvars):
    """The Patroni clusters of ``hosts``, by the group each host published, in the order of their first host:
    ``{group: {'scope', 'namespace', 'hosts', 'members'}}`` (scope and namespace of the group's first host)."""
    check_hosts(hosts, 'patroni_clusters')
    clusters = {}
    for host in hosts:
        fact = _cluster_fact(hostvars, host, 'patroni_clusters')
        cluster = clusters.setdefault(fact['group'], {'scope': fact['scope'], 'namespace': fact['namespace'],
                                                      'hosts': [], 'members': []})
        cluster['hosts'].append(host)
        cluster['members'].append(fact['name'])
    return clusters


def _describe(clusters):
    return '; '.join('%s: %s' % (group, ', '.join(c['hosts'])) for group, c in clusters.items())


def _duplicates(items):
    seen, repeated = set(), []
    for item in items:
        if item in seen and item not in repeated:
            repeated.append(item)
        seen.add(item)
    return repeated


def _distinct(items):
    """``items`` without repeats, in order; unlike jinja_order.unique, case counts (etcd keys are case-sensitive)."""
    found = []
    for item in items:
        if item not in found:
            found.append(item)
    return found


def _place(fact):
    """The cluster's key prefix without its last slash, as a message shows it (the namespace as written when the
    prefix cannot be built)."""
    try:
        return cluster_prefix(fact['namespace'], fact['scope']).rstrip('/')
    except ValueError:
        return '%s/%s' % (fact['namespace'], fact['scope'])


def _place_text(label, prefix, clusters):
    return 'cluster %s (%s)' % (label, prefix) if label in clusters else label


def _reserved_places(reserved):
    if isinstance(reserved, str) or not isinstance(reserved, (list, tuple)):
        raise AnsibleFilterError('patroni_layout_problems expects the reserved key prefixes as a list, got %r'
                                 % (reserved,))
    places = []
    for prefix in reserved:
        if isinstance(prefix, str) and prefix.strip('/'):
            normal = '/%s/' % '/'.join(p for p in prefix.split('/') if p)
            places.append(('the key prefix %s' % normal, normal))
    return places


def patroni_layout_problems(hosts, hostvars, groups, reserved=()):
    """What keeps the clusters of ``hosts`` from being run in one play, as messages (none: the layout is sound).

    A cluster is the group a host names in patroni_group: every host of that group must belong to it alone, its
    hosts share one scope and namespace (compared as Patroni places the keys) and have distinct member names that
    do not share a replication slot, no two clusters share a scope, and no cluster's keys lie within another's or
    within one of the ``reserved`` key prefixes (the load balancer's).
    """
    check_hosts(hosts, 'patroni_layout_problems')
    if not isinstance(groups, Mapping):
        raise AnsibleFilterError('patroni_layout_problems expects Ansible\'s groups as a mapping, got %r' % (groups,))
    clusters = patroni_clusters(hosts, hostvars)
    problems = []
    scope_owner = {}
    for group, cluster in clusters.items():
        facts = [_cluster_fact(hostvars, host, 'patroni_layout_problems') for host in cluster['hosts']]
        for namespace in _distinct(f['namespace'] for f in facts):
            problem = namespace_problem(namespace)
            if problem:
                problems.append('patroni_namespace of group %s %s.' % (group, problem))
        places = _distinct(_place(f) for f in facts)
        if len(places) > 1:
            problems.append('The hosts of group %s form one Patroni cluster and need one patroni_scope and '
                            'patroni_namespace, found %s.' % (group, ', '.join(
                                '%s: %s' % (h, _place(f)) for h, f in zip(cluster['hosts'], facts))))
        for scope in unique(f['scope'] for f in facts):
            owner = scope_owner.setdefault(scope, group)
            if owner != group:
                problems.append('Groups %s and %s both use the Patroni scope %s: give each cluster its own '
                                'patroni_scope (pgha_cluster_name).' % (owner, group, scope))
        for host in groups.get(group) or []:
            if host in cluster['hosts']:
                continue
            other = (_cluster_fact(hostvars, host, 'patroni_layout_problems')['group'] if host in hosts
                     else first_set(vars_of(hostvars, host), ['patroni_group'], NOT_SET))
            if other is not NOT_SET and other != group:
                problems.append('%s is in group %s, the hosts of one Patroni cluster, but its patroni_group is %s: '
                                'a host belongs to one cluster only (make each cluster a child group of postgres '
                                'with its own patroni_group).' % (host, group, other))
        names = [f['name'] for f in facts]
        repeated = _duplicates(names)
        if repeated:
            problems.append('Members of the cluster of group %s share the member name %s: patroni_name must differ '
                            'within a cluster.' % (group, ', '.join(repeated)))
        for slot, sharing in sorted(slot_collisions([n for n in names if isinstance(n, str)]).items()):
            problems.append('Members %s of the cluster of group %s would share the replication slot %s (Patroni '
                            'lowers the case and turns "-" and "." into "_"): give them names that differ '
                            'otherwise.' % (', '.join(sharing), group, slot))
    places = cluster_places(clusters) + _reserved_places(reserved)
    for label, prefix, other_label, other in prefix_overlaps(places):
        if label in clusters and other_label in clusters and prefix == other:
            continue  # the same scope twice: said above
        problems.append('The etcd keys of %s and %s overlap: the etcd user of one could read and write the other\'s '
                        'keys. Give each cluster a scope and namespace of its own.' % (
                            _place_text(label, prefix, clusters), _place_text(other_label, other, clusters)))
    return problems


def patroni_pg_hba_problems(lines, allow_trust=False):
    """What keeps ``lines`` (patroni_pg_hba_extra) out of pg_hba.conf, one message per line; [] when nothing."""
    return pg_hba_problems(lines, allow_trust=bool(allow_trust))


def patroni_network_problems(networks):
    """What keeps ``networks`` (patroni_extra_client_networks) out of pg_hba.conf, one message each; [] when
    nothing."""
    return network_problems(networks)


# What each member publishes about its data directory before a cluster without state in etcd starts (the patroni
# role's tasks/bootstrap_leader.yml sets it).
DATA_FACT = '__patroni_data_fact'


def patroni_bootstrap_leader(hosts, hostvars, named='', all_hosts=None):
    """Which of ``hosts`` (a cluster's hosts in the play) starts first when etcd holds nothing of the cluster: a dict
    with ``leader`` ('' for a new cluster), ``problems`` (why no member can be chosen), ``positions`` and ``named``.

    ``named`` is patroni_bootstrap_leader; ``all_hosts``, every host of the cluster's group: one outside the play
    may hold data nobody read, so then only a named member is accepted.
    """
    check_hosts(hosts, 'patroni_bootstrap_leader')
    members = []
    for host in hosts:
        fact = first_set(vars_of(hostvars, host), [DATA_FACT], None)
        if not isinstance(fact, Mapping) or 'has_data' not in fact:
            raise AnsibleFilterError('patroni_bootstrap_leader: host %r has not published what its data directory '
                                     'holds (%s): the patroni role sets it in tasks/bootstrap_leader.yml'
                                     % (host, DATA_FACT))
        members.append(MemberData(host, first_set(vars_of(hostvars, host), ['__patroni_name_fact', 'patroni_name'],
                                                  host),
                                  has_data=_truth(fact.get('has_data')), controldata=fact.get('controldata') or '',
                                  error=fact.get('error') or None, running=_truth(fact.get('running'))))
    choice = choose_bootstrap_leader(members, named or '')
    outside = [h for h in (all_hosts or []) if h not in hosts]
    if outside and not choice.named and any(m.has_data for m in members):
        choice.problems.append('%s %s not in the play, so %s data cannot be compared' % (
            ', '.join(outside), 'is' if len(outside) == 1 else 'are', 'its' if len(outside) == 1 else 'their'))
        choice.leader = ''
    return choice.to_dict()


def _truth(value):
    if isinstance(value, str):
        return value.strip().lower() in ('true', 'yes', 'on', '1')
    return bool(value)


def patroni_switchover_clusters(hosts, hostvars, member_names):
    """The groups of the clusters a switchover of this play is for: the one cluster of ``hosts``, else those with
    a member named in ``member_names`` (candidate, leader; empty ones are ignored), else every cluster."""
    clusters = patroni_clusters(hosts, hostvars)
    if isinstance(member_names, str) or not isinstance(member_names, (list, tuple)):
        raise AnsibleFilterError('patroni_switchover_clusters expects the member names as a list, got %r'
                                 % (member_names,))
    names = [name for name in member_names if name]
    if len(clusters) <= 1 or not names:
        return list(clusters)
    return [group for group, cluster in clusters.items() if set(names) & set(cluster['members'])]


def patroni_clusters_text(hosts, hostvars):
    """The clusters of ``hosts`` for a message: ``group: host, host; group: host``."""
    return _describe(patroni_clusters(hosts, hostvars))


class FilterModule(object):

    def filters(self):
        return {
            'patroni_pg_hba': patroni_pg_hba,
            'patroni_cluster_prefix': patroni_cluster_prefix,
            'patroni_member_host': patroni_member_host,
            'patroni_clusters_text': patroni_clusters_text,
            'patroni_layout_problems': patroni_layout_problems,
            'patroni_switchover_clusters': patroni_switchover_clusters,
            'patroni_bootstrap_leader': patroni_bootstrap_leader,
            'patroni_pg_hba_problems': patroni_pg_hba_problems,
            'patroni_network_problems': patroni_network_problems,
        }
