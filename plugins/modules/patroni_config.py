#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: pgha.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: patroni_config
short_description: Read or patch the dynamic configuration of a Patroni cluster
version_added: 0.1.0
description:
  - Reads the dynamic configuration Patroni keeps in etcd (the C(/<namespace>/<scope>/config) key) and, with
    O(settings), changes it the way Patroni does it itself - C(PATCH /config) on a member's REST API - so that
    every member picks the change up.
  - O(settings) is a JSON merge patch (RFC 7386), which is what C(PATCH /config) applies - nested objects merge
    and V(null) removes a key. Two details follow Patroni rather than the RFC - a value whose text equals the
    current one (V(10) and V("10")) is left as it is, and V(null) for a key that is not set changes nothing.
  - The module reports a change only when the result differs from the current configuration, compared as data.
  - The result is checked before anything is sent - integer timings that are integers and not below Patroni's
    minimums (C(ttl) 20, C(loop_wait) 1, C(retry_timeout) 3), C(loop_wait + 2 * retry_timeout <= ttl),
    booleans that are booleans, C(synchronous_mode_strict) only with C(synchronous_mode), objects that are
    objects. Patroni itself would silently adjust such timings, or fail to load the configuration.
  - After the request the module reads the config key from etcd again and fails unless it holds the
    expected result.
  - Only etcd and the REST API of one member have to be reachable, so the module can run on any host, for
    example the controller with C(delegate_to). Reading etcd is enough; the etcd user needs no write access.
  - Changes of PostgreSQL parameters that need a restart are applied by Patroni as C(pending_restart) on every
    member (see M(pgha.cluster.patroni_info)); this module does not restart anything.
options:
  settings:
    description:
      - JSON merge patch for the dynamic configuration, for example a new C(loop_wait) next to a nested
        C(postgresql.parameters.work_mem) (see the examples).
      - A V(null) value removes the key.
      - When not set, the module only reads the configuration.
    type: dict
  api_url:
    description:
      - The REST API to send C(PATCH /config) to, for example C(https://10.0.0.1:8008).
      - By default the C(api_url) the leader advertises in etcd, or, when there is no running leader, the one of
        any running member.
    type: str
extends_documentation_fragment:
  - pgha.cluster.patroni
  - pgha.cluster.patroni.actiongroup
  - pgha.cluster.etcd
  - pgha.cluster.patroni_rest
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Nothing is sent; the module reports whether the configuration would change and how.
  diff_mode:
    support: full
    details: The configuration before and after, as data.
  platform:
    platforms: posix
notes:
  - Patroni protects C(PATCH /config) with C(restapi.authentication) when it is configured; pass
    O(rest_username) and O(rest_password) then.
seealso:
  - module: pgha.cluster.patroni_info
  - module: pgha.cluster.patroni_switchover
  - name: Patroni dynamic configuration
    description: The settings Patroni keeps in the DCS.
    link: https://patroni.readthedocs.io/en/latest/dynamic_configuration.html
author:
  - pgha.cluster maintainers (@pgha)
'''

EXAMPLES = r'''
- name: Shorter loop and a bigger work_mem for the cluster main
  pgha.cluster.patroni_config:
    scope: main
    settings:
      loop_wait: 5
      postgresql:
        parameters:
          work_mem: 8MB
    rest_ca_cert: /etc/pgha/ca.crt
    rest_username: patroni
    rest_password: "{{ patroni_rest_password }}"
  environment:  # the etcd connection, as etcdctl takes it
    ETCDCTL_ENDPOINTS: https://10.0.0.1:2379
    ETCDCTL_CACERT: /etc/pgha/ca.crt
    ETCDCTL_CERT: /etc/pgha/admin.crt
    ETCDCTL_KEY: /etc/pgha/admin.key
  delegate_to: localhost
  run_once: true

- name: Remove a parameter so that PostgreSQL's default applies again
  pgha.cluster.patroni_config:
    scope: main
    settings:
      postgresql:
        parameters:
          work_mem: null
    rest_username: patroni
    rest_password: "{{ patroni_rest_password }}"

- name: Read the dynamic configuration
  pgha.cluster.patroni_config:
    scope: main
  register: patroni_config
'''

RETURN = r'''
config:
  description:
    - The dynamic configuration after the module ran (in check mode, what it would be).
  returned: always
  type: dict
  sample: {"ttl": 30, "loop_wait": 10, "retry_timeout": 10, "maximum_lag_on_failover": 1048576,
           "postgresql": {"use_pg_rewind": true, "parameters": {"work_mem": "8MB"}}}
changes:
  description: Dotted names of the settings that changed (or would change), sorted.
  returned: always
  type: list
  elements: str
  sample: [loop_wait, postgresql.parameters.work_mem]
diff:
  description: The configuration before and after.
  returned: when diff mode is on
  type: dict
  contains:
    before:
      description: The configuration before.
      type: dict
    after:
      description: The configuration after.
      type: dict
'''

from ansible_collections.pgha.cluster.plugins.module_utils.patroni_config_patch import (
    changed_paths,
    merge_patch,
    patch_to_send,
    validate,
)
from ansible_collections.pgha.cluster.plugins.module_utils.patroni_module import (
    read_state,
    rest_client,
    run_patroni_module,
)
from ansible_collections.pgha.cluster.plugins.module_utils.patroni_rest import PatroniRestError, one_line
from ansible_collections.pgha.cluster.plugins.module_utils.patroni_state import running_member_api_url

# What Patroni's PATCH /config answers besides 200, and what it means for the caller.
_STATUS_HINTS = {
    409: 'the configuration changed in etcd while Patroni applied the patch; run the task again',
    503: 'Patroni found no configuration in etcd to patch',
}


def current_config(module, client):
    state = read_state(module, client)
    config = state.config
    where = '%sconfig' % state.prefix
    if not config.present:
        module.fail_json(msg='%s does not exist in etcd: no Patroni cluster %r has bootstrapped there' % (
            where, state.scope))
    if config.invalid:
        module.fail_json(msg='%s cannot be used: %s' % (where, config.reason))
    return state, config.data


def send_patch(module, state, patch):
    url = module.params['api_url'] or running_member_api_url(state, state.leader)
    if not url:
        module.fail_json(msg='no running member of cluster %r advertises an api_url to send PATCH /config to; '
                             'set api_url' % state.scope)
    rest = rest_client(module.params)
    try:
        answer = rest.request(url, 'PATCH', '/config', body=patch)
    except PatroniRestError as exc:
        module.fail_json(msg=str(exc))
    if answer.status != 200:
        hint = _STATUS_HINTS.get(answer.status)
        module.fail_json(msg='Patroni REST API at %s refused PATCH /config (HTTP %d): %s%s' % (
            rest.url(url, '/config'), answer.status, one_line(answer.text) or 'no message',
            '; %s' % hint if hint else ''))


def apply(module, client):
    params = module.params
    state, before = current_config(module, client)
    result = {'changed': False, 'config': before, 'changes': []}
    if params['settings'] is None:
        return result
    after = merge_patch(before, params['settings'])
    if after == before:
        if module._diff:
            result['diff'] = {'before': before, 'after': after}
        return result
    errors = validate(after)
    if errors:
        module.fail_json(msg='the dynamic configuration of %r would be invalid: %s; nothing was changed' % (
            state.scope, '; '.join(errors)), errors=errors)
    result.update(changed=True, config=after, changes=changed_paths(before, after))
    if module._diff:
        result['diff'] = {'before': before, 'after': after}
    if module.check_mode:
        return result
    send_patch(module, state, patch_to_send(before, after))
    # Patroni writes with a compare-and-swap on the key's revision: the key now holds our result
    # unless someone changed it right after.
    stored = current_config(module, client)[1]
    if stored != after:
        module.fail_json(msg='Patroni accepted PATCH /config but the config key in etcd does not hold the expected '
                             'result (changed concurrently?): %s differ' % ', '.join(changed_paths(after, stored)),
                         changed=True, config=stored, expected=after)
    result['config'] = stored
    return result


def main():
    run_patroni_module(apply, dict(
        settings=dict(type='dict'),
        api_url=dict(type='str'),
    ))


if __name__ == '__main__':
    main()
