#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: pgha.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: haproxy_config
short_description: Write haproxy.cfg for Patroni clusters from their state and LB policy in etcd
version_added: 0.1.0
description:
  - Reads, for every cluster in O(scopes), the keys Patroni keeps under C(/<namespace>/<scope>/) and the load
    balancer policy at C(/pgha/lb/<scope>/policy) in etcd (one transaction per cluster), derives which members
    each backend should send traffic to, and renders the complete HAProxy configuration for this load balancer.
  - The new file is checked with O(validate) (C(haproxy -c)) in a temporary file next to O(dest) before it
    replaces O(dest) atomically; a configuration HAProxy rejects, an invalid policy or an etcd error fails the
    module and leaves O(dest) untouched.
  - A missing policy key means the default policy (primary on port 5000, replicas on 5001). An invalid policy
    fails with a message naming the cluster, the field and the etcd key.
  - Every member with usable addresses is a server of every backend; the servers not wanted now are written
    C(disabled), so the C(pgha-lb-sync) agent can move them between states through HAProxy's runtime API.
  - The module does not reload HAProxy; notify a handler when the module reports a change.
options:
  namespace:
    description:
      - Patroni's C(namespace) setting, the etcd key prefix above the scopes.
    type: str
    default: /service
  scopes:
    description:
      - The Patroni clusters (C(scope) names) this load balancer serves, each with its own listeners.
    type: list
    elements: str
    required: true
  ca_file:
    description:
      - CA certificate (PEM, on the load balancer) that signed the Patroni REST API certificates of every
        cluster. HAProxy's health checks verify the members' certificates against it.
      - Required for a cluster whose members advertise an C(https://) C(api_url), unless O(ca_files) names one.
    type: path
  ca_files:
    description:
      - CA certificate per cluster, C(scope) to path; overrides O(ca_file) for the clusters it names.
    type: dict
    default: {}
  settings:
    description:
      - Host-wide HAProxy settings. For the options that may be left out of the file, an empty string
        leaves the directive out.
    type: dict
    default: {}
    suboptions:
      admin_socket:
        description: Path of the runtime API socket (admin level), used by the C(pgha-lb-sync) agent.
        type: path
        default: /run/haproxy/admin.sock
      admin_socket_group:
        description: Group owning the runtime API socket (mode 660); empty for the default group.
        type: str
        default: haproxy
      user:
        description: User HAProxy's workers run as; empty to keep the user HAProxy was started as.
        type: str
        default: haproxy
      group:
        description: Group HAProxy's workers run as; empty to keep the group HAProxy was started as.
        type: str
        default: haproxy
      server_state_file:
        description: File the server states are loaded from at a reload (C(show servers state) is saved there
          before each reload).
        type: path
        default: /var/lib/haproxy/server-state
      log_target:
        description: Syslog target of HAProxy's logs; empty for no logging.
        type: str
        default: /dev/log
      maxconn:
        description: Maximum number of concurrent connections of the process.
        type: int
        default: 4096
      hard_stop_after_s:
        description: Seconds old workers may keep their sessions after a reload.
        type: int
        default: 1800
      timeout_connect_s:
        description: Seconds to wait for a connection to a server.
        type: int
        default: 4
      timeout_client_s:
        description: Seconds a client connection may stay idle.
        type: int
        default: 1800
      timeout_server_s:
        description: Seconds a server connection may stay idle.
        type: int
        default: 1800
      timeout_check_s:
        description: Seconds a health check may take once connected.
        type: int
        default: 3
      timeout_queue_s:
        description: Seconds a connection may wait in the queue for a free server slot.
        type: int
        default: 30
      bind_address:
        description: IP address the cluster listeners bind to; empty (the default) for all addresses.
        type: str
      stats_address:
        description:
          - IP address of the stats page; empty for all addresses.
          - An address that is not loopback needs O(settings.stats_user) and O(settings.stats_password).
        type: str
        default: 127.0.0.1
      stats_port:
        description: Port of the stats page.
        type: int
        default: 7000
      stats_user:
        description: User name of the stats page's basic authentication.
        type: str
      stats_password:
        description: Password of O(settings.stats_user).
        type: str
  dest:
    description: The HAProxy configuration file to write. Its directory must exist.
    type: path
    default: /etc/haproxy/haproxy.cfg
  backup:
    description: Keep a timestamped copy of the previous O(dest) when it changes.
    type: bool
    default: false
  validate:
    description:
      - Command that checks the new file before it replaces O(dest); C(%s) is replaced by the temporary file's
        path. It must exit with status 0 for a valid file.
    type: str
    default: haproxy -c -f %s
extends_documentation_fragment:
  - pgha.cluster.etcd
  - ansible.builtin.files
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reads etcd and validates the new configuration in a temporary directory, but writes nothing.
  diff_mode:
    support: full
  platform:
    platforms: posix
notes:
  - The etcd user needs read access to C(/<namespace>/<scope>/) and C(/pgha/lb/<scope>/policy) of each cluster
    (the load balancer's read-only user is enough).
seealso:
  - module: pgha.cluster.patroni_info
author:
  - pgha.cluster maintainers (@pgha)
'''

EXAMPLES = r'''
- name: Write haproxy.cfg for the cluster main, reading etcd as the load balancer's read-only user
  pgha.cluster.haproxy_config:
    scopes: [main]
    ca_file: /etc/haproxy/pgha/main-ca.crt
    backup: true
    endpoints: ["https://10.0.0.1:2379", "https://10.0.0.2:2379"]
    ca_cert: /etc/pgha/ca.crt
    username: lb-main
    password: "{{ etcd_lb_password }}"
  notify: Reload haproxy

- name: Two clusters on one load balancer, stats page on the network with a password
  pgha.cluster.haproxy_config:
    scopes: [main, reporting]
    endpoints: ["https://10.0.0.1:2379"]
    ca_cert: /etc/pgha/ca.crt
    ca_files:
      main: /etc/haproxy/pgha/main-ca.crt
      reporting: /etc/haproxy/pgha/reporting-ca.crt
    settings:
      stats_address: 10.0.0.20
      stats_user: admin
      stats_password: "{{ haproxy_stats_password }}"
  register: lb
'''

RETURN = r'''
dest:
  description: The configuration file.
  returned: always
  type: str
  sample: /etc/haproxy/haproxy.cfg
backup_file:
  description: The copy of the previous file, when O(backup=true) and the file changed.
  returned: changed
  type: str
  sample: /etc/haproxy/haproxy.cfg.12345.2026-01-01@10:00:00~
backends:
  description:
    - Per scope, the backends derived from Patroni's state and the policy. C(primary_member) is the member
      receiving writes (V(null) when there is none), C(backends) holds C(primary), C(replicas) and C(read_any)
      (V(null) when the policy turns that listener off), C(excluded) the members without usable addresses.
    - Each backend has C(name), C(kind), C(port), C(check_path) and C(servers); each server C(name), C(member),
      C(address), C(port), C(weight), C(enabled) and the C(reason) it is not enabled.
  returned: success
  type: dict
  sample:
    main:
      scope: main
      primary_member: pg-1
      excluded: []
      backends:
        primary:
          name: pgha_main_primary
          kind: primary
          port: 5000
          check_path: /primary
          servers:
            - {name: pg-1, member: pg-1, address: pg-1.example.net, port: 5432, weight: 100, enabled: true,
               reason: null}
            - {name: pg-2, member: pg-2, address: pg-2.example.net, port: 5432, weight: 100, enabled: false,
               reason: not the leader (the leader key names pg-1)}
        replicas: null
        read_any: null
policies:
  description: Per scope, the LB policy in effect, every field filled in (defaults where the key sets none).
  returned: success
  type: dict
  sample:
    main:
      ports: {primary: 5000, replicas: 5001, read_any: null}
      max_replica_lag_bytes: 1048576
      primary_reads_fallback: false
      balance: roundrobin
      weights: {}
      drain: []
      check: {interval_ms: 3000, fall: 3, rise: 2}
      max_connections: null
'''

from ansible_collections.pgha.cluster.plugins.module_utils.lb_module import main

if __name__ == '__main__':
    main()
