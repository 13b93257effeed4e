# -*- coding: utf-8 -*-
# Copyright: pgha.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible glue for modules that talk to etcd: the shared connection options
(documented in the pgha.cluster.etcd doc fragment) and error reporting."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy

from ansible.module_utils.basic import AnsibleModule, env_fallback

from .etcd_client import client_from_options
from .etcd_errors import EtcdError, reported_kind

ETCD_CONNECTION_SPEC = {
    'endpoints': {'type': 'list', 'elements': 'str', 'default': ['127.0.0.1:2379'],
                  'fallback': (env_fallback, ['PGHA_ETCD_ENDPOINTS', 'ETCDCTL_ENDPOINTS'])},
    'ca_cert': {'type': 'path', 'aliases': ['cacert'],
                'fallback': (env_fallback, ['PGHA_ETCD_CA_CERT', 'ETCDCTL_CACERT'])},
    'client_cert': {'type': 'path',
                    'fallback': (env_fallback, ['PGHA_ETCD_CLIENT_CERT', 'ETCDCTL_CERT'])},
    'client_key': {'type': 'path', 'no_log': False,
                   'fallback': (env_fallback, ['PGHA_ETCD_CLIENT_KEY', 'ETCDCTL_KEY'])},
    'username': {'type': 'str', 'aliases': ['user'],
                 'fallback': (env_fallback, ['PGHA_ETCD_USERNAME'])},
    'password': {'type': 'str', 'no_log': True,
                 'fallback': (env_fallback, ['PGHA_ETCD_PASSWORD', 'ETCDCTL_PASSWORD'])},
    'timeout': {'type': 'float', 'default': 5.0,
                'fallback': (env_fallback, ['PGHA_ETCD_TIMEOUT'])},
    'validate_certs': {'type': 'bool', 'default': True,
                       'fallback': (env_fallback, ['PGHA_ETCD_VALIDATE_CERTS'])},
}

CONNECTION_OPTIONS = tuple(ETCD_CONNECTION_SPEC)


def etcd_argument_spec(**extra):
    """The shared connection options plus a module's own ones."""
    spec = copy.deepcopy(ETCD_CONNECTION_SPEC)
    spec.update(extra)
    return spec


def client_from_params(params):
    """An EtcdClient from module params (the connection option names)."""
    return client_from_options(params)


def fail_on_etcd_error(module, exc, **result):
    """fail_json with the error's own message (it names endpoint and cause) and its kind."""
    result.setdefault('error_type', reported_kind(exc))
    if getattr(exc, 'endpoint', None):
        result.setdefault('endpoint', exc.endpoint)
    module.fail_json(msg=str(exc), **result)


def connect(module):
    """An EtcdClient for a module; bad connection options (credentials over plain HTTP to another host among
    them) end the module with a clear message, and what the options weaken becomes the module's warnings."""
    try:
        client = client_from_params(module.params)
    except EtcdError as exc:
        fail_on_etcd_error(module, exc)
    for warning in client.warnings:
        module.warn(warning)
    return client


def etcd_module(argument_spec=None, **kwargs):
    """An AnsibleModule with the shared etcd connection options added to ``argument_spec``."""
    return AnsibleModule(argument_spec=etcd_argument_spec(**(argument_spec or {})), **kwargs)


def run_with_client(module, action):
    """Connect, run ``action(client)`` -> result dict, and exit; any EtcdError becomes fail_json.

    The client is closed in every case so no connection outlives the module.
    """
    client = connect(module)
    try:
        result = action(client)
    except EtcdError as exc:
        fail_on_etcd_error(module, exc)
    finally:
        client.close()
    module.exit_json(**result)
