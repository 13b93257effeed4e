# -*- coding: utf-8 -*-
# Copyright: pgha.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the haproxy role derives from its cluster list. Each filter is documented in the YAML file of its name here.

Policies are checked with the same parser the module and the agent use (module_utils/lb_policy.py), so a policy
the role accepts is one they accept.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError
from ansible_collections.pgha.cluster.plugins.module_utils.lb_policy import (
    LbPolicyError, parse_policy, policy_ports)
from ansible_collections.pgha.cluster.plugins.plugin_utils.hostvars import check_hosts, first_set, vars_of

# The fact each load balancer of a play publishes with its policies (roles/haproxy/tasks/validate.yml).
POLICIES_FACT = '__haproxy_policies_fact'


def _clusters(clusters, filter_name):
    if isinstance(clusters, (str, bytes)) or not isinstance(clusters, (list, tuple)):
        raise AnsibleFilterError('%s expects haproxy_clusters as a list, got %r' % (filter_name, clusters))
    for cluster in clusters:
        if not isinstance(cluster, Mapping) or not isinstance(cluster.get('scope'), str):
            raise AnsibleFilterError('%s: each entry of haproxy_clusters needs a scope, got %r'
                                     % (filter_name, cluster))
    return clusters


def _merged(base, override):
    """``override`` over ``base``, nested mappings merged key by key (like combine(recursive=true))."""
    result = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(result.get(key), Mapping):
            value = _merged(result[key], value)
        result[key] = value
    return result


def haproxy_policies(clusters, base_policy):
    """{scope: the policy to publish}: ``base_policy`` with the cluster's own ``policy`` fields over it, each checked."""
    _clusters(clusters, 'haproxy_policies')
    if not isinstance(base_policy, Mapping):
        raise AnsibleFilterError('haproxy_policies expects haproxy_policy as a mapping, got %r' % (base_policy,))
    policies = {}
    for cluster in clusters:
        own = cluster.get('policy') or {}
        if not isinstance(own, Mapping):
            raise AnsibleFilterError('haproxy_clusters[scope=%s].policy must be a mapping, got %r'
                                     % (cluster['scope'], own))
        policy = _merged(base_policy, own)
        field = 'haproxy_policy' + (' + haproxy_clusters[scope=%s].policy' % cluster['scope'] if own else '')
        try:
            parse_policy(policy, field=field)
        except LbPolicyError as exc:
            raise AnsibleFilterError('the LB policy of cluster %s is invalid: %s' % (cluster['scope'], exc))
        policies[cluster['scope']] = policy
    return policies


def haproxy_listener_ports(policies):
    """{scope: [the ports its listeners use]}, the policy's defaults filled in."""
    if not isinstance(policies, Mapping):
        raise AnsibleFilterError('haproxy_listener_ports expects {scope: policy}, got %r' % (policies,))
    try:
        return dict((scope, [port for _kind, port in policy_ports(parse_policy(policy))])
                    for scope, policy in policies.items())
    except LbPolicyError as exc:
        raise AnsibleFilterError('haproxy_listener_ports: %s' % exc)


def haproxy_by_scope(clusters, attribute, default):
    """{scope: the cluster's ``attribute``, or ``default`` where it is missing or empty}."""
    _clusters(clusters, 'haproxy_by_scope')
    return dict((cluster['scope'], cluster.get(attribute) or default) for cluster in clusters)


def haproxy_lb_credentials(clusters):
    """{scope: the etcd login of its read-only user lb-<scope>}."""
    _clusters(clusters, 'haproxy_lb_credentials')
    return dict((cluster['scope'], {'username': 'lb-' + cluster['scope'], 'password': cluster.get('lb_password')})
                for cluster in clusters)


def haproxy_policy_conflicts(policies, hosts, hostvars):
    """['<scope> on <host>'] for each host of ``hosts`` that publishes another policy for one of ``policies``' scopes."""
    check_hosts(hosts, 'haproxy_policy_conflicts')
    conflicts = []
    for host in hosts:
        published = first_set(vars_of(hostvars, host), [POLICIES_FACT], {})
        for scope in sorted(published):
            if scope in policies and policies[scope] != published[scope]:
                conflicts.append('%s on %s' % (scope, host))
    return conflicts


def haproxy_null_empty(settings):
    """The mapping with '' values as null (the agent's JSON leaves a directive out for null)."""
    if not isinstance(settings, Mapping):
        raise AnsibleFilterError('haproxy_null_empty expects a mapping, got %r' % (settings,))
    return dict((name, None if value == '' else value) for name, value in settings.items())


class FilterModule(object):
    def filters(self):
        return {
            'haproxy_by_scope': haproxy_by_scope,
            'haproxy_lb_credentials': haproxy_lb_credentials,
            'haproxy_listener_ports': haproxy_listener_ports,
            'haproxy_null_empty': haproxy_null_empty,
            'haproxy_policies': haproxy_policies,
            'haproxy_policy_conflicts': haproxy_policy_conflicts,
        }
