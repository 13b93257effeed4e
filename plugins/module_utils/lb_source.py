# -*- coding: utf-8 -*-
# Copyright: pgha.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the load balancer reads from etcd: each cluster's Patroni state and LB policy.

One place for the haproxy_config module and the LB agent. Each cluster is
read with one transaction (its ``/<namespace>/<scope>/`` prefix and its
``/pgha/lb/<scope>/policy`` key), so state and policy come from the same
revision and the agent can start its watches right after it.

A missing policy key means the defaults. An invalid policy raises
lb_policy.LbPolicyError naming the cluster, the field and the etcd key,
unless the caller passes the policy to keep using instead (the agent keeps
the last valid one; the snapshot then carries the error). etcd errors
(etcd_errors.EtcdError) propagate to the caller.

Stdlib only, no Ansible import.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.pgha.cluster.plugins.module_utils.etcd_client import Op
from ansible_collections.pgha.cluster.plugins.module_utils.haproxy_config import LbCluster
from ansible_collections.pgha.cluster.plugins.module_utils.lb_policy import (
    LbPolicyError,
    desired_backends,
    parse_policy,
    policy_key,
)
from ansible_collections.pgha.cluster.plugins.module_utils.patroni_state import cluster_prefix, parse_cluster_state


class ClusterSnapshot(object):
    """One cluster as read at ``revision``: its ClusterState, LbPolicy and desired backends."""

    __slots__ = ('scope', 'state', 'policy', 'policy_present', 'policy_error', 'backends', 'ca_file', 'revision')

    def __init__(self, scope, state, policy, policy_present, ca_file, revision, policy_error=None):
        self.scope = scope
        self.policy_error = policy_error
        self.state = state
        self.policy = policy
        self.policy_present = policy_present
        self.backends = desired_backends(state, policy)
        self.ca_file = ca_file
        self.revision = revision

    def lb_cluster(self, backends=None):
        """The renderer's input for this cluster (``backends`` overrides the desired ones)."""
        return LbCluster(scope=self.scope, policy=self.policy, ca_file=self.ca_file,
                         backends=self.backends if backends is None else backends)


def ca_file_for(ca_file, scope):
    """The CA file of ``scope`` from one path for every cluster or a {scope: path} mapping."""
    if isinstance(ca_file, dict):
        return ca_file.get(scope)
    return ca_file


def parse_stored_policy(value, scope):
    """The LbPolicy of ``scope`` from the policy key's value (None: the key is missing -> defaults)."""
    try:
        return parse_policy(value)
    except LbPolicyError as exc:
        raise LbPolicyError('cluster %s: %s (etcd key %s)' % (scope, exc, policy_key(scope)))


def read_snapshot(client, namespace, scope, ca_file=None, keep_policy=None):
    """A ClusterSnapshot of ``scope`` read from etcd with one transaction (EtcdClient ``client``).

    With ``keep_policy`` (an LbPolicy), an invalid stored policy does not
    raise: ``keep_policy`` is used and the error is in ``policy_error``.
    """
    prefix = cluster_prefix(namespace, scope)
    key = policy_key(scope)
    reply = client.txn(success=[Op.get(prefix, prefix=True), Op.get(key)])
    keys, policy_kvs = reply.responses[0].kvs, reply.responses[1].kvs
    error = None
    try:
        policy = parse_stored_policy(policy_kvs[0].value if policy_kvs else None, scope)
    except LbPolicyError as exc:
        if keep_policy is None:
            raise
        policy, error = keep_policy, str(exc)
    state = parse_cluster_state(keys, namespace, scope)
    return ClusterSnapshot(scope, state, policy, bool(policy_kvs), ca_file_for(ca_file, scope), reply.revision,
                           policy_error=error)


def read_snapshots(client, namespace, scopes, ca_file=None):
    """[ClusterSnapshot] for every scope, in the order given; a scope listed twice is an error."""
    seen = set()
    snapshots = []
    for scope in scopes:
        if scope in seen:
            raise LbPolicyError('scopes: %s is listed twice' % scope)
        seen.add(scope)
        snapshots.append(read_snapshot(client, namespace, scope, ca_file))
    return snapshots
