# -*- coding: utf-8 -*-
# Copyright: pgha.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # Options of every module that talks to Patroni's REST API. They must match
    # PATRONI_REST_SPEC in plugins/module_utils/patroni_module.py (a unit test
    # compares the two).
    DOCUMENTATION = r'''
options:
  rest_ca_cert:
    description:
      - PEM file with the CA certificate that signed the REST API server certificates (for C(https) API URLs).
      - When not set, the system trust store is used.
    type: path
  rest_client_cert:
    description:
      - PEM client certificate presented to the REST API (when Patroni requires one).
    type: path
  rest_client_key:
    description:
      - PEM private key of O(rest_client_cert).
    type: path
  rest_username:
    description:
      - User for HTTP basic authentication to the REST API (Patroni's C(restapi.authentication)).
      - Patroni asks for credentials only on its unsafe endpoints (switchover, configuration changes, ...), so
        reading needs none by default.
    type: str
  rest_password:
    description:
      - Password of O(rest_username).
    type: str
  rest_validate_certs:
    description:
      - Verify the REST API server certificates and that they name the host connected to.
    type: bool
    default: true
  rest_timeout:
    description:
      - Seconds to wait for one member's REST API to answer.
    type: float
    default: 5.0
notes:
  - The REST API is called from the host the module runs on, at the C(api_url) the members advertise in etcd.
'''
