# -*- coding: utf-8 -*-
# Copyright: pgha.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # Connection options shared by every module that talks to etcd. They must
    # match ETCD_CONNECTION_SPEC in plugins/module_utils/etcd_module.py (a unit
    # test compares the two).
    DOCUMENTATION = r'''
options:
  endpoints:
    description:
      - etcd client URLs, tried in order; the next one is used when one is unreachable.
      - A URL without a scheme gets C(https://) when O(ca_cert) or O(client_cert) is set, C(http://) otherwise;
        without a port it gets C(2379). Write IPv6 addresses in brackets, for example C(https://[fd00::1]:2379).
      - If not set, the environment variable E(PGHA_ETCD_ENDPOINTS) or E(ETCDCTL_ENDPOINTS) (comma-separated) is used.
    type: list
    elements: str
    default: ['127.0.0.1:2379']
  ca_cert:
    description:
      - PEM file with the CA certificate that signed the etcd server certificates.
      - If not set, E(PGHA_ETCD_CA_CERT) or E(ETCDCTL_CACERT) is used; when none is set the system trust store is used.
    type: path
    aliases: [cacert]
  client_cert:
    description:
      - PEM client certificate presented to etcd (needed when etcd runs with C(--client-cert-auth)).
      - If not set, E(PGHA_ETCD_CLIENT_CERT) or E(ETCDCTL_CERT) is used.
    type: path
  client_key:
    description:
      - PEM private key of O(client_cert).
      - If not set, E(PGHA_ETCD_CLIENT_KEY) or E(ETCDCTL_KEY) is used.
    type: path
  username:
    description:
      - etcd user to authenticate as when etcd has authentication enabled.
      - etcd's gateway cannot map a client certificate to a user, so RBAC needs a username and password even with
        client certificates.
      - Never sent over plain C(http://) to another host (the module fails naming the endpoint); plain http is
        accepted on the loopback interface only.
      - If not set, E(PGHA_ETCD_USERNAME) is used.
    type: str
    aliases: [user]
  password:
    description:
      - Password of O(username).
      - If not set, E(PGHA_ETCD_PASSWORD) or E(ETCDCTL_PASSWORD) is used.
    type: str
  timeout:
    description:
      - Seconds to wait for one etcd endpoint to answer before trying the next.
      - If not set, E(PGHA_ETCD_TIMEOUT) is used.
    type: float
    default: 5.0
  validate_certs:
    description:
      - Verify the etcd server certificate and that it names the host connected to.
      - Set to V(false) only for throw-away test setups; the module then warns.
      - If not set, E(PGHA_ETCD_VALIDATE_CERTS) is used.
    type: bool
    default: true
notes:
  - The connection to etcd is made from the host the module runs on (use C(delegate_to) to run it elsewhere).
  - Talks to etcd's v3 JSON gateway, so etcd 3.4 or later is needed.
'''

    # The same options for the inventory plugin, whose options are read from its
    # YAML source and the environment rather than from an argument spec.
    PLUGIN = r'''
options:
  endpoints:
    description:
      - etcd client URLs, tried in order; the next one is used when one is unreachable.
      - A URL without a scheme gets C(https://) when O(ca_cert) or O(client_cert) is set, C(http://) otherwise;
        without a port it gets C(2379).
    type: list
    elements: str
    default: ['127.0.0.1:2379']
    env:
      - name: PGHA_ETCD_ENDPOINTS
      - name: ETCDCTL_ENDPOINTS
  ca_cert:
    description: PEM file with the CA certificate that signed the etcd server certificates.
    type: path
    aliases: [cacert]
    env:
      - name: PGHA_ETCD_CA_CERT
      - name: ETCDCTL_CACERT
  client_cert:
    description: PEM client certificate presented to etcd.
    type: path
    env:
      - name: PGHA_ETCD_CLIENT_CERT
      - name: ETCDCTL_CERT
  client_key:
    description: PEM private key of O(client_cert).
    type: path
    env:
      - name: PGHA_ETCD_CLIENT_KEY
      - name: ETCDCTL_KEY
  username:
    description: etcd user to authenticate as when etcd has authentication enabled.
    type: str
    aliases: [user]
    env:
      - name: PGHA_ETCD_USERNAME
  password:
    description: Password of O(username).
    type: str
    env:
      - name: PGHA_ETCD_PASSWORD
      - name: ETCDCTL_PASSWORD
  timeout:
    description: Seconds to wait for one etcd endpoint to answer before trying the next.
    type: float
    default: 5.0
    env:
      - name: PGHA_ETCD_TIMEOUT
  validate_certs:
    description: Verify the etcd server certificate and that it names the host connected to.
    type: bool
    default: true
    env:
      - name: PGHA_ETCD_VALIDATE_CERTS
'''

    # Every etcd module is in the pgha.cluster.etcd action group (meta/runtime.yml).
    ACTIONGROUP = r'''
attributes:
  action_group:
    description: Use C(group/pgha.cluster.etcd) in C(module_defaults) to set the connection options once for every etcd module.
    support: full
    membership:
      - pgha.cluster.etcd
'''
