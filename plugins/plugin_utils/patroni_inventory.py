# -*- coding: utf-8 -*-
# Copyright: pgha.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Patroni clusters (ClusterState, from patroni_state) and etcd members as inventory hosts and groups.

Stdlib only, and pure but for :func:`fetch_keys` (prefix range reads through an EtcdClient): the inventory
plugin adds what this returns to Ansible's inventory, and marks every value unsafe on the way. Who counts as
primary or replica is patroni_state's answer (ClusterState.primary() and replicas()), the same one the modules
and the load balancer agent act on.

Groups, for every cluster (scope) ``s``::

    patroni                  patroni_primary            patroni_replica
      patroni_s                patroni_s_primary          patroni_s_replica
        patroni_s_primary
        patroni_s_replica

A member is put in ``patroni_s_primary`` or ``patroni_s_replica`` (and, as a synchronous standby, in
``patroni_sync``); a member that is neither (not running, still starting, invalid) goes straight into
``patroni_s``. The parent groups hold everything below them.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64

from ansible_collections.pgha.cluster.plugins.module_utils.etcd_errors import EtcdError
from ansible_collections.pgha.cluster.plugins.module_utils.etcd_membership import hex_id
from ansible_collections.pgha.cluster.plugins.module_utils.etcd_types import Member, parse_endpoint
from ansible_collections.pgha.cluster.plugins.module_utils.patroni_state import (
    ROLE_REPLICA,
    cluster_prefix,
    namespace_prefix,
    parse_cluster_state,
    parse_namespace,
)

HOSTNAME_MEMBER = 'member'
HOSTNAME_SCOPE_MEMBER = 'scope_member'
HOSTNAME_STYLES = (HOSTNAME_MEMBER, HOSTNAME_SCOPE_MEMBER)

ALL_GROUP = 'patroni'
PRIMARY_GROUP = 'patroni_primary'
REPLICA_GROUP = 'patroni_replica'
SYNC_GROUP = 'patroni_sync'
ETCD_GROUP = 'etcd'
TOP_GROUPS = (ALL_GROUP, PRIMARY_GROUP, REPLICA_GROUP, SYNC_GROUP)

INVALID_STATE = 'invalid'
SYNC_STANDBY_ROLE = 'sync_standby'


class Layout(object):
    """What the inventory gets: ``groups`` [(group, [parent groups])] in the order to create them, ``hosts``
    {name: HostEntry} in the order found, and ``warnings`` for the user."""

    def __init__(self):
        self.groups = [(name, []) for name in TOP_GROUPS]
        self.hosts = {}
        self.warnings = []


class HostEntry(object):
    """One inventory host: its variables and the groups it is put in directly."""

    __slots__ = ('name', 'variables', 'groups')

    def __init__(self, name, variables, groups):
        self.name = name
        self.variables = variables
        self.groups = groups

    def __repr__(self):
        return 'HostEntry(%r, groups=%r)' % (self.name, self.groups)


def _same(name):
    return name


def host_name(scope, member, style=HOSTNAME_MEMBER):
    """The inventory name of member ``member`` of cluster ``scope``."""
    if style == HOSTNAME_SCOPE_MEMBER:
        return '%s_%s' % (scope, member)
    if style == HOSTNAME_MEMBER:
        return member
    raise ValueError('invalid hostname %r: use one of %s' % (style, ', '.join(HOSTNAME_STYLES)))


def scope_groups(scope, safe_name=_same):
    """(cluster group, its primary group, its replica group) of ``scope``."""
    names = ('patroni_%s' % scope, 'patroni_%s_primary' % scope, 'patroni_%s_replica' % scope)
    return tuple(safe_name(name) for name in names)


def member_role(member):
    """The role shown for a member: Patroni's (``master`` already read as ``primary``), ``sync_standby`` for a
    replica the sync key names while synchronous mode is on; None for an invalid member."""
    if member.invalid:
        return None
    if member.sync_standby and not member.is_leader and member.role == ROLE_REPLICA:
        return SYNC_STANDBY_ROLE
    return member.role


def member_variables(state, member):
    """The host variables of one member of ``state``: values as read from etcd, None where unknown."""
    variables = {
        'patroni_member': member.name,
        'patroni_scope': state.scope,
        'patroni_role': member_role(member),
        'patroni_state': INVALID_STATE if member.invalid else member.state,
        'patroni_timeline': member.timeline,
        'patroni_lag_bytes': member.lag,
        'patroni_api_url': member.api_url,
        'patroni_conn_url': member.conn_url,
        'patroni_tags': member.tags,
        'patroni_pending_restart': member.pending_restart,
        'patroni_version': member.version,
        'patroni_paused': state.config.paused,
    }
    if member.host:
        variables['ansible_host'] = member.host
    return variables


def patroni_layout(states, hostname=HOSTNAME_MEMBER, safe_name=_same, layout=None):
    """The Layout of ``states`` ({scope: ClusterState}), clusters in order of scope, members by name.

    ``safe_name`` turns a group name built from a scope into one Ansible accepts. With ``hostname`` ``member``,
    a member whose name an earlier cluster already used is left out with a warning rather than merged into the
    other cluster's host.
    """
    layout = layout or Layout()
    owners = {}
    group_scopes = {}
    for scope in sorted(states):
        state = states[scope]
        cluster, primary_group, replica_group = scope_groups(scope, safe_name)
        if cluster in group_scopes:
            layout.warnings.append('Patroni clusters %s and %s share group %s: their names differ only in '
                                   'characters not allowed in group names' % (group_scopes[cluster], scope, cluster))
        group_scopes.setdefault(cluster, scope)
        layout.groups.extend([(cluster, [ALL_GROUP]), (primary_group, [cluster, PRIMARY_GROUP]),
                              (replica_group, [cluster, REPLICA_GROUP])])
        primary = state.primary()
        replicas = set(id(m) for m in state.replicas(include_noloadbalance=True))
        for member in state.members:
            name = host_name(scope, member.name, hostname)
            if name in owners:
                layout.warnings.append(
                    'member %s of Patroni cluster %s is left out: cluster %s has a member of that name; set '
                    'hostname: %s to list both' % (member.name, scope, owners[name], HOSTNAME_SCOPE_MEMBER))
                continue
            owners[name] = scope
            if member is primary:
                groups = [primary_group]
            elif id(member) in replicas:
                groups = [replica_group, SYNC_GROUP] if member.sync_standby else [replica_group]
            else:
                groups = [cluster]
            if member.invalid:
                layout.warnings.append('member %s of Patroni cluster %s is invalid (%s): listed with patroni_state '
                                       '%s' % (member.name, scope, member.reason, INVALID_STATE))
            layout.hosts[name] = HostEntry(name, member_variables(state, member), groups)
    return layout


def _url_host(urls):
    for url in urls:
        try:
            return parse_endpoint(url).host
        except EtcdError:
            continue
    return None


def add_etcd_members(layout, members):
    """Add etcd's members (etcd_types.Member) to ``layout`` in group ``etcd``.

    A member that has not started yet has no name and is left out. A host of the same name as a Patroni
    member (etcd and Patroni on one machine) is one host in both groups; it keeps the address its Patroni
    member advertises.
    """
    layout.groups.append((ETCD_GROUP, []))
    for member in sorted(members, key=lambda m: m.name):
        if not member.name:
            continue
        variables = {
            'etcd_member_id': hex_id(member.id),
            'etcd_client_urls': list(member.client_urls),
            'etcd_peer_urls': list(member.peer_urls),
            'etcd_is_learner': member.is_learner,
        }
        entry = layout.hosts.get(member.name)
        address = _url_host(list(member.client_urls) + list(member.peer_urls))
        if entry is None:
            if address:
                variables['ansible_host'] = address
            layout.hosts[member.name] = HostEntry(member.name, variables, [ETCD_GROUP])
        else:
            if address and 'ansible_host' not in entry.variables:
                variables['ansible_host'] = address
            entry.variables.update(variables)
            entry.groups.append(ETCD_GROUP)
    return layout


# ------------------------------------------------------------------ reading etcd, and the cache's form of it

PAGE_SIZE = 1000
CACHE_FORMAT = 1


def fetch_keys(client, namespace, scopes=()):
    """Every KeyValue under ``/<namespace>/``, or under each of ``scopes``' prefixes: prefix range reads of
    PAGE_SIZE keys each (a cluster's keys read at one revision), never one request per key."""
    if not scopes:
        return client.get_prefix(namespace_prefix(namespace), page_size=PAGE_SIZE)
    keys = []
    for scope in scopes:
        keys.extend(client.iter_prefix(cluster_prefix(namespace, scope), page_size=PAGE_SIZE))
    return keys


def cluster_states(keys, namespace, scopes=()):
    """({scope: ClusterState}, warnings): every cluster found in ``keys``, or the listed ``scopes`` (a scope
    without any key is an empty cluster, with a warning)."""
    states = parse_namespace(keys, namespace)
    warnings = []
    for scope in scopes:
        name = scope.strip('/')
        if name not in states:
            states[name] = parse_cluster_state((), namespace, name)
            warnings.append('no Patroni cluster found under %s' % cluster_prefix(namespace, name))
    return states, warnings


def cache_payload(source, keys, members):
    """What was read from etcd, as JSON-ready data for an inventory cache. Values stay base64 as etcd sends
    them, so that a value that is not UTF-8 is read back exactly and judged by the same parser."""
    return {
        'format': CACHE_FORMAT,
        'source': source,
        'keys': [[_text(kv.key), base64.b64encode(kv.value).decode('ascii')] for kv in keys],
        'etcd_members': None if members is None else [
            {'id': m.id, 'name': m.name, 'client_urls': list(m.client_urls), 'peer_urls': list(m.peer_urls),
             'is_learner': m.is_learner} for m in members],
    }


def from_cache_payload(payload, source):
    """(keys as (key, value bytes) pairs, etcd members or None) from :func:`cache_payload`'s data; None when
    it was read for other options or is not in this form."""
    try:
        if payload.get('format') != CACHE_FORMAT or payload.get('source') != source:
            return None
        keys = [(key, base64.b64decode(value)) for key, value in payload['keys']]
        members = payload['etcd_members']
        if members is not None:
            members = [Member(id=m['id'], name=m['name'], client_urls=m['client_urls'], peer_urls=m['peer_urls'],
                              is_learner=m['is_learner']) for m in members]
    except (AttributeError, KeyError, TypeError, ValueError):
        return None
    return keys, members


def _text(key):
    return key.decode('utf-8', 'replace') if isinstance(key, bytes) else key
