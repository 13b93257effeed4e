# -*- coding: utf-8 -*-
# Copyright: pgha.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
name: patroni
short_description: Members of Patroni clusters, from their state in etcd
version_added: 0.1.0
description:
  - Makes one inventory host of every member of the Patroni clusters whose state is in etcd
    (C(/<namespace>/<scope>/)), with its role, state, lag and addresses as host variables, and groups that
    follow the live topology, so that C(--limit patroni_primary) reaches the primary of the moment.
  - "The inventory source is a YAML file whose name ends in C(patroni.yml) or C(patroni.yaml) and which sets
    C(plugin: pgha.cluster.patroni)."
  - Reads with prefix range requests of 1000 keys each, never one request per key, and parses Patroni's keys
    with the same code as the collection's modules and load balancer agent.
  - Every value read from etcd is marked unsafe, so Ansible never evaluates it as a template.
  - "Host variables of a Patroni member: C(ansible_host) (the host of its C(conn_url)), C(patroni_member)
    (its name in Patroni), C(patroni_scope), C(patroni_role) (V(primary), V(replica), V(sync_standby),
    V(standby_leader), or another role Patroni wrote; V(master) is shown as V(primary)), C(patroni_state)
    (V(invalid) when its key in etcd cannot be read), C(patroni_timeline), C(patroni_lag_bytes),
    C(patroni_api_url), C(patroni_conn_url), C(patroni_tags), C(patroni_pending_restart), C(patroni_version),
    C(patroni_paused) (the cluster is in maintenance mode)."
  - "Groups: C(patroni) (every member), C(patroni_<scope>), C(patroni_primary) and C(patroni_<scope>_primary)
    (the member holding the leader key, running as primary), C(patroni_replica) and C(patroni_<scope>_replica)
    (running replicas), C(patroni_sync) (running synchronous standbys). A member in another state (stopped,
    starting, invalid) is only in C(patroni) and C(patroni_<scope>). Characters not allowed in group names
    become C(_)."
  - With O(include_etcd_members), group C(etcd) holds etcd's members, with C(etcd_member_id),
    C(etcd_client_urls), C(etcd_peer_urls), C(etcd_is_learner), and C(ansible_host) from their client URLs.
  - When etcd cannot be read the inventory source fails with a message naming the endpoint and the cause,
    unless O(cache) is on and the cache holds data younger than O(cache_timeout).
extends_documentation_fragment:
  - ansible.builtin.constructed
  - ansible.builtin.inventory_cache
  - pgha.cluster.etcd.plugin
options:
  plugin:
    description: Marks the file as a source for this plugin.
    required: true
    choices: ['pgha.cluster.patroni']
    type: str
  namespace:
    description:
      - Patroni's C(namespace) setting, the etcd key prefix above the clusters.
    type: str
    default: /service
  scopes:
    description:
      - The Patroni clusters (their C(scope)) to list; each is read with its own prefix reads.
      - When empty, every cluster found under O(namespace), read with one paginated prefix read; that needs read
        access to the whole namespace, while a user limited to some clusters' prefixes can read them when they
        are listed here.
      - A listed cluster without any key in etcd has its groups, no hosts, and a warning.
    type: list
    elements: str
    default: []
  include_etcd_members:
    description:
      - Add etcd's members (from its member list) as hosts of group C(etcd).
      - A member with the name of a Patroni member is the same host, in both groups.
    type: bool
    default: false
  hostname:
    description:
      - How a member's inventory name is made.
      - V(member) is the member's name in Patroni. Should two clusters have members of the same name, the first
        cluster's (by scope) is listed and the other left out, with a warning.
      - V(scope_member) is C(<scope>_<member>), so that equal member names in two clusters never meet.
    type: str
    choices: [member, scope_member]
    default: member
notes:
  - The connection to etcd is made from the controller, to etcd's v3 JSON gateway (etcd 3.4 or later).
  - "The values are read when the inventory is built; a play that must act on the primary of a later moment
    reads it again (C(ansible.builtin.meta: refresh_inventory) or M(pgha.cluster.patroni_info))."
seealso:
  - module: pgha.cluster.patroni_info
'''

EXAMPLES = r'''
# prod.patroni.yml: every cluster under /service, as a read-only etcd user
plugin: pgha.cluster.patroni
endpoints:
  - https://10.0.0.1:2379
  - https://10.0.0.2:2379
  - https://10.0.0.3:2379
ca_cert: /etc/pgha/etcd-ca.crt
client_cert: /etc/pgha/etcd-client.crt
client_key: /etc/pgha/etcd-client.key
username: inventory
# The password from the environment (PGHA_ETCD_PASSWORD), or vaulted here:
# password: !vault |
#   $ANSIBLE_VAULT;1.1;AES256 ...

---
# main.patroni.yml: one cluster, hosts named <scope>_<member>, with constructed groups and a cache
plugin: pgha.cluster.patroni
endpoints: https://etcd1.example.com:2379
scopes: [main]
hostname: scope_member
keyed_groups:
  - key: patroni_tags.datacenter | default('none')
    prefix: dc
groups:
  lagging: (patroni_lag_bytes or 0) > 16777216
compose:
  ansible_user: "'admin'"
cache: true
cache_plugin: ansible.builtin.jsonfile
cache_connection: ~/.cache/pgha-inventory
cache_timeout: 60

# Then, for example:
#   ansible-inventory -i prod.patroni.yml --graph
#   ansible-playbook -i prod.patroni.yml --limit patroni_primary maintenance.yml
'''

import time

from ansible.errors import AnsibleParserError
from ansible.inventory.group import to_safe_group_name
from ansible.plugins.inventory import BaseInventoryPlugin, Cacheable, Constructable
from ansible.utils.unsafe_proxy import wrap_var

from ansible_collections.pgha.cluster.plugins.module_utils.etcd_errors import EtcdError, EtcdPermissionDenied
from ansible_collections.pgha.cluster.plugins.plugin_utils.etcd_options import plugin_client
from ansible_collections.pgha.cluster.plugins.plugin_utils.patroni_inventory import (
    add_etcd_members,
    cache_payload,
    cluster_states,
    fetch_keys,
    from_cache_payload,
    patroni_layout,
)

_FILE_ENDINGS = ('patroni.yml', 'patroni.yaml')


def _unsafe(variables):
    """The variables with every text in them marked unsafe (numbers, booleans and None need no mark)."""
    return dict((name, wrap_var(value) if isinstance(value, (str, dict, list)) else value)
                for name, value in variables.items())


def _safe_group_name(name):
    # Forced: a scope may hold any character, and a group name that Ansible would only warn about cannot be
    # used in a host pattern.
    return to_safe_group_name(name, force=True, silent=True)


class InventoryModule(BaseInventoryPlugin, Constructable, Cacheable):

    NAME = 'pgha.cluster.patroni'

    def verify_file(self, path):
        return super(InventoryModule, self).verify_file(path) and path.endswith(_FILE_ENDINGS)

    def parse(self, inventory, loader, path, cache=True):
        super(InventoryModule, self).parse(inventory, loader, path, cache)
        self._read_config_data(path)
        source = {
            'endpoints': list(self.get_option('endpoints') or []),
            'namespace': self.get_option('namespace'),
            'scopes': [str(s) for s in self.get_option('scopes') or []],
            'include_etcd_members': bool(self.get_option('include_etcd_members')),
        }
        use_cache = self.get_option('cache')
        cache_key = self.get_cache_key(path)
        found = None
        if use_cache and cache:
            try:
                found = from_cache_payload(self._cache[cache_key], source)
            except KeyError:
                found = None
            if found is not None:
                self.display.vv('pgha.cluster.patroni: %s served from the inventory cache' % path)
        if found is None:
            keys, members = self._read_etcd(source)
            if use_cache:
                self._cache[cache_key] = cache_payload(source, keys, members)
            found = keys, members
        self._populate(source, *found)

    def _read_etcd(self, source):
        started = time.monotonic()
        try:
            client = plugin_client(self.get_option)
        except EtcdError as exc:
            raise AnsibleParserError('pgha.cluster.patroni: invalid etcd connection options: %s' % exc)
        # What the connection options weaken (validate_certs=false), when the client reports it.
        for warning in getattr(client, 'warnings', ()):
            self.display.warning('pgha.cluster.patroni: %s' % warning)
        try:
            keys = fetch_keys(client, source['namespace'], source['scopes'])
            members = client.members() if source['include_etcd_members'] else None
        except ValueError as exc:
            raise AnsibleParserError('pgha.cluster.patroni: %s' % exc)
        except EtcdError as exc:
            hint = ''
            if isinstance(exc, EtcdPermissionDenied) and not source['scopes']:
                hint = ('; reading every cluster of namespace %s needs read access to all of it: list the '
                        'clusters this etcd user may read in option scopes' % source['namespace'])
            raise AnsibleParserError('pgha.cluster.patroni: cannot read the Patroni clusters from etcd: %s%s'
                                     % (exc, hint))
        finally:
            client.close()
        self.display.vv('pgha.cluster.patroni: read %d keys from etcd in %.3f s'
                        % (len(keys), time.monotonic() - started))
        return keys, members

    def _populate(self, source, keys, members):
        try:
            states, warnings = cluster_states(keys, source['namespace'], source['scopes'])
            layout = patroni_layout(states, self.get_option('hostname'), _safe_group_name)
        except ValueError as exc:
            raise AnsibleParserError('pgha.cluster.patroni: %s' % exc)
        if members is not None:
            add_etcd_members(layout, members)
        for warning in warnings + layout.warnings:
            self.display.warning('pgha.cluster.patroni: %s' % warning)
        for scope in sorted(states):
            for warning in states[scope].warnings:
                self.display.vvv('pgha.cluster.patroni: cluster %s: %s' % (scope, warning))

        inventory = self.inventory
        for group, parents in layout.groups:
            inventory.add_group(group)
            for parent in parents:
                inventory.add_child(parent, group)
        compose = self.get_option('compose')
        groups = self.get_option('groups')
        keyed_groups = self.get_option('keyed_groups')
        constructed = compose or groups or keyed_groups
        strict = self.get_option('strict')
        for entry in layout.hosts.values():
            known = entry.name in inventory.hosts
            # The name comes from etcd as well: unsafe, so that inventory_hostname is never a template either.
            name = inventory.add_host(wrap_var(entry.name), group=entry.groups[0])
            for group in entry.groups[1:]:
                inventory.add_child(group, name)
            variables = _unsafe(entry.variables)
            if known:
                # Another source listed the host: Ansible's own rules combine the variables.
                for variable, value in variables.items():
                    inventory.set_variable(name, variable, value)
            else:
                # A host of this source only: its variables (valid names, plain data) in one step rather than one
                # call per variable, which costs a tenth of the whole inventory's time with thousands of hosts.
                inventory.get_host(name).vars.update(variables)
            if constructed:
                host_vars = inventory.get_host(name).get_vars()
                self._set_composite_vars(compose, host_vars, name, strict=strict)
                self._add_host_to_composed_groups(groups, host_vars, name, strict=strict)
                self._add_host_to_keyed_groups(keyed_groups, host_vars, name, strict=strict)
