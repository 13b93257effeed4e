# -*- coding: utf-8 -*-
# Copyright: pgha.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible glue shared by the Patroni modules: which cluster (the options documented in the
pgha.cluster.patroni doc fragment), how to reach its REST API (pgha.cluster.patroni_rest), the
module built from both plus the etcd connection options, and the clients built from its params.

The pure part - checking scope and namespace and building the cluster's key prefix - is
patroni_state.cluster_prefix, which needs no Ansible.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy

from .etcd_module import etcd_module, run_with_client
from .patroni_rest import PatroniRestClient
from .patroni_state import DEFAULT_NAMESPACE, cluster_prefix, read_cluster_state

PATRONI_CLUSTER_SPEC = {
    'scope': {'type': 'str', 'required': True},
    'namespace': {'type': 'str', 'default': DEFAULT_NAMESPACE},
}

PATRONI_REST_SPEC = {
    'rest_ca_cert': {'type': 'path'},
    'rest_client_cert': {'type': 'path'},
    # A path, not a secret: without no_log=False Ansible warns about the word "key".
    'rest_client_key': {'type': 'path', 'no_log': False},
    'rest_username': {'type': 'str'},
    'rest_password': {'type': 'str', 'no_log': True},
    'rest_validate_certs': {'type': 'bool', 'default': True},
    'rest_timeout': {'type': 'float', 'default': 5.0},
}


def patroni_argument_spec(**extra):
    """The cluster and REST API options plus a module's own ones (a copy: callers may change it)."""
    spec = copy.deepcopy(PATRONI_CLUSTER_SPEC)
    spec.update(copy.deepcopy(PATRONI_REST_SPEC))
    spec.update(extra)
    return spec


def patroni_module(argument_spec=None, **kwargs):
    """An AnsibleModule with the etcd connection, cluster and REST API options added to ``argument_spec``.

    An invalid scope or namespace ends the module with a message that names it.
    """
    module = etcd_module(argument_spec=patroni_argument_spec(**(argument_spec or {})), **kwargs)
    try:
        cluster_prefix(module.params['namespace'], module.params['scope'])
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    return module


def run_patroni_module(action, argument_spec=None):
    """Build the module (check mode supported), connect to etcd, exit with ``action(module, client)``."""
    module = patroni_module(argument_spec, supports_check_mode=True)
    run_with_client(module, lambda client: action(module, client))


def read_state(module, client):
    """The ClusterState of the module's cluster, read from etcd with ``client``."""
    return read_cluster_state(client, module.params['namespace'], module.params['scope'])


def rest_client(params):
    """A PatroniRestClient from module params (the rest_* option names)."""
    return PatroniRestClient(ca_cert=params.get('rest_ca_cert'), client_cert=params.get('rest_client_cert'),
                             client_key=params.get('rest_client_key'), username=params.get('rest_username'),
                             password=params.get('rest_password'), timeout=params.get('rest_timeout'),
                             validate_certs=params.get('rest_validate_certs', True))
