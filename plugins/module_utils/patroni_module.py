# -*- coding: utf-8 -*-
# Copyright: pgha.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible glue shared by the Patroni modules: the REST API options (documented in the
pgha.cluster.patroni_rest doc fragment) and the client built from them."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy

from .patroni_rest import PatroniRestClient

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


def rest_argument_spec(**extra):
    """The REST API options plus a module's own ones (a copy: callers may change it)."""
    spec = copy.deepcopy(PATRONI_REST_SPEC)
    spec.update(extra)
    return spec


def rest_client(params):
    """A PatroniRestClient from module params (the rest_* option names)."""
    return PatroniRestClient(ca_cert=params.get('rest_ca_cert'), client_cert=params.get('rest_client_cert'),
                             client_key=params.get('rest_client_key'), username=params.get('rest_username'),
                             password=params.get('rest_password'), timeout=params.get('rest_timeout'),
                             validate_certs=params.get('rest_validate_certs', True))
