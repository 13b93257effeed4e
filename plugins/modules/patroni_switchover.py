#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: pgha.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: patroni_switchover
short_description: Planned switchover of a Patroni cluster, or failover when it has no healthy leader
version_added: 0.1.0
description:
  - Moves the primary role of a Patroni cluster to another member through Patroni's REST API
    (C(POST /switchover) to the leader, or C(POST /failover)), schedules such a switchover, or cancels a
    scheduled one (C(DELETE /switchover)).
  - The cluster's state is read from etcd first, and the request is checked against Patroni's own rules
    before anything is sent. A member can be promoted when it runs as a replica, is not tagged C(nofailover)
    (or C(failover_priority) 0), advertises an C(api_url), and is not more than C(maximum_lag_on_failover)
    bytes behind (this collection's rule; Patroni applies it only to automatic failovers). With
    C(synchronous_mode) on (not C(quorum)), Patroni switches over only to a synchronous standby. When no
    member qualifies, the module fails, names each member and why, and sends nothing.
  - Idempotent - when O(candidate) already runs as primary, or the same switchover is already scheduled,
    nothing is sent. Without O(candidate) every run is a new switchover; pass O(leader) to make a re-run
    fail instead.
  - For an immediate request the module waits (O(wait)) until etcd's leader key names the new leader and
    that member runs as primary.
  - Only etcd and the REST API of the member the request goes to have to be reachable, so the module can run
    on any host, for example the controller with C(delegate_to). Reading etcd is enough; the etcd user needs
    no write access.
options:
  candidate:
    description:
      - The member to promote.
      - When not set, Patroni picks the healthiest eligible replica for a switchover; for a failover (which
        Patroni only does to a named member) the module picks the eligible replica with the highest
        C(failover_priority), then the least lag.
    type: str
  leader:
    description:
      - The member expected to be the leader now. When the leader key names another member (or none), the
        module fails without sending anything.
    type: str
  scheduled_at:
    description:
      - When the switchover should happen, ISO 8601 with a time zone (for example V(2030-01-31T02:00:00+00:00)).
      - Patroni keeps the request in etcd and carries it out at that time; the module does not wait for it.
      - Only switchovers can be scheduled, and not while the cluster is paused.
    type: str
  mode:
    description:
      - V(switchover) needs a running primary holding the leader key.
      - V(failover) promotes O(candidate) whatever the state of the leader (Patroni then allows a replica that
        is not a synchronous standby).
      - V(auto) is V(switchover) when there is a running primary, else V(failover).
    type: str
    choices: [auto, switchover, failover]
    default: auto
  state:
    description:
      - V(present) requests the switchover or failover.
      - V(absent) cancels a scheduled switchover; the other options but the connection ones are ignored then.
    type: str
    choices: [present, absent]
    default: present
  wait:
    description:
      - Wait until the new leader is confirmed in etcd (immediate requests only).
      - Patroni itself answers an immediate request only once it sees a new leader, or after about 20 seconds.
    type: bool
    default: true
  wait_timeout:
    description:
      - Seconds to wait for the new leader, counted from the request.
    type: float
    default: 120
extends_documentation_fragment:
  - pgha.cluster.patroni
  - pgha.cluster.patroni.actiongroup
  - pgha.cluster.etcd
  - pgha.cluster.patroni_rest
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Nothing is sent; the module reports what it would do, and fails when it could not do it.
  diff_mode:
    support: none
  platform:
    platforms: posix
notes:
  - Patroni protects these endpoints with C(restapi.authentication) when it is configured; pass
    O(rest_username) and O(rest_password) then.
  - A switchover restarts the old primary as a replica; clients connected to it are disconnected.
seealso:
  - module: pgha.cluster.patroni_info
  - module: pgha.cluster.patroni_config
  - name: Patroni REST API
    description: The switchover and failover endpoints.
    link: https://patroni.readthedocs.io/en/latest/rest_api.html
author:
  - pgha.cluster maintainers (@pgha)
'''

EXAMPLES = r'''
- name: Switch over from pg-1 to pg-2 (nothing happens when pg-2 already is the primary)
  pgha.cluster.patroni_switchover:
    scope: main
    leader: pg-1
    candidate: pg-2
    endpoints: ["https://10.0.0.1:2379"]
    ca_cert: /etc/pgha/ca.crt
    client_cert: /etc/pgha/admin.crt
    client_key: /etc/pgha/admin.key
    username: lb-main
    password: "{{ etcd_lb_password }}"
    rest_ca_cert: /etc/pgha/ca.crt
    rest_username: patroni
    rest_password: "{{ patroni_rest_password }}"
  delegate_to: localhost
  run_once: true
  register: switchover

- name: Schedule a switchover for the maintenance window
  pgha.cluster.patroni_switchover:
    scope: main
    candidate: pg-3
    scheduled_at: "2030-01-31T02:00:00+00:00"
    rest_username: patroni
    rest_password: "{{ patroni_rest_password }}"

- name: Cancel it
  pgha.cluster.patroni_switchover:
    scope: main
    state: absent
    rest_username: patroni
    rest_password: "{{ patroni_rest_password }}"
'''

RETURN = r'''
action:
  description: What was done (or would be done in check mode) - V(switchover), V(failover), V(cancel) or V(none).
  returned: always
  type: str
  sample: switchover
previous_leader:
  description: The member named by the leader key before; V(null) when there was none.
  returned: always
  type: str
  sample: pg-1
leader:
  description:
    - The member named by the leader key at the end (for a scheduled switchover or with O(wait=false), still
      the old one).
  returned: always
  type: str
  sample: pg-2
candidate:
  description: The member asked for (or picked, for a failover); V(null) when Patroni picks.
  returned: always
  type: str
  sample: pg-2
scheduled_at:
  description: The time of the scheduled switchover (requested, found pending, or cancelled); V(null) otherwise.
  returned: always
  type: str
  sample: "2030-01-31T02:00:00+00:00"
message:
  description: Patroni's answer, or why nothing was sent.
  returned: always
  type: str
  sample: Successfully switched over to "pg-2"
elapsed:
  description: Seconds from the request until the new leader was confirmed in etcd; V(null) when not waited for.
  returned: always
  type: float
  sample: 6.2
cluster:
  description:
    - The cluster's state in etcd at the end, as returned by M(pgha.cluster.patroni_info) in RV(ignore:cluster).
  returned: always
  type: dict
members:
  description: Per member name, why it cannot be promoted (an empty list when it can).
  returned: when the module fails because no member or not the candidate can be promoted
  type: dict
  sample: {"pg-1": ["it holds the leader key"], "pg-3": ["it is tagged nofailover"]}
'''

import time

from ansible_collections.pgha.cluster.plugins.module_utils.patroni_module import (
    read_state,
    rest_client,
    run_patroni_module,
)
from ansible_collections.pgha.cluster.plugins.module_utils.patroni_rest import PatroniRestError, one_line
from ansible_collections.pgha.cluster.plugins.module_utils.patroni_switchover_plan import (
    PlanError,
    plan_cancel,
    plan_switchover,
    switch_outcome,
)

POLL_INTERVAL = 0.5
# Patroni answers an immediate switchover after polling for 2 * max(10, loop_wait) seconds at most.
PATRONI_POLL_MARGIN = 15


def summary(state):
    """The cluster in one line, for messages."""
    members = ', '.join('%s %s/%s' % (m.name, m.raw_role or '?', m.state or '?') for m in state.members)
    return 'leader key: %s; members: %s' % (state.leader or 'none', members or 'none')


def result_for(plan, state, **extra):
    result = {
        'changed': False, 'action': plan.action, 'previous_leader': state.leader, 'leader': state.leader,
        'candidate': plan.candidate, 'scheduled_at': plan.scheduled_at, 'message': plan.message,
        'elapsed': None, 'cluster': state.to_dict(),
    }
    result.update(extra)
    return result


def send(module, plan, method, path, body=None, timeout=None):
    rest = rest_client(module.params)
    try:
        return rest.request(plan.api_url, method, path, body=body, timeout=timeout), rest.url(plan.api_url, path)
    except PatroniRestError as exc:
        module.fail_json(msg=str(exc), action=plan.action, candidate=plan.candidate)


def cancel(module, client, state):
    try:
        plan = plan_cancel(state)
    except PlanError as exc:
        module.fail_json(msg=str(exc), action='cancel')
    if plan.action == 'none' or module.check_mode:
        return result_for(plan, state, changed=plan.action != 'none')
    answer, url = send(module, plan, 'DELETE', '/switchover')
    if answer.status == 404:
        # Carried out or cancelled by someone else between our read and the request.
        after = read_state(module, client)
        return result_for(plan, after, action='none', message=one_line(answer.text))
    if answer.status != 200:
        module.fail_json(msg='Patroni REST API at %s refused to cancel the scheduled switchover (HTTP %d): %s' % (
            url, answer.status, one_line(answer.text) or 'no message'), action='cancel')
    after = read_state(module, client)
    if after.failover.pending and after.failover.scheduled_at:
        module.fail_json(msg='Patroni answered %r but a switchover is still scheduled for %s' % (
            one_line(answer.text), after.failover.scheduled_at), changed=True, action='cancel')
    return result_for(plan, after, changed=True, previous_leader=state.leader, message=one_line(answer.text))


def wait_for_leader(module, client, plan, state, started):
    deadline = started + module.params['wait_timeout']
    while True:
        now = read_state(module, client)
        outcome = switch_outcome(now, plan.leader, plan.candidate)
        if outcome is not None:
            return now, outcome, time.monotonic() - started
        if time.monotonic() >= deadline:
            module.fail_json(msg='no new leader confirmed in etcd %.0f seconds after the %s request (%s); last '
                                 'state seen: %s' % (module.params['wait_timeout'], plan.action, plan.message,
                                                     summary(now)),
                             changed=True, action=plan.action, previous_leader=state.leader, cluster=now.to_dict())
        time.sleep(POLL_INTERVAL)


def request(module, client, state):
    params = module.params
    try:
        plan = plan_switchover(state, candidate=params['candidate'], leader=params['leader'],
                               scheduled_at=params['scheduled_at'], mode=params['mode'])
    except PlanError as exc:
        module.fail_json(msg='%s; nothing was sent' % exc, members=exc.members, cluster=state.to_dict())
    if plan.action == 'none':
        return result_for(plan, state)
    if module.check_mode:
        return result_for(plan, state, changed=True, message='would request a %s' % plan.message)

    loop_wait = state.config.effective('loop_wait') or 10
    timeout = max(params['rest_timeout'], 2 * max(10, loop_wait) + PATRONI_POLL_MARGIN)
    started = time.monotonic()
    answer, url = send(module, plan, 'POST', '/' + plan.action, body=plan.body, timeout=timeout)
    text = one_line(answer.text)
    # 503 "... status unknown": Patroni stopped polling before the new leader showed; it may still come.
    still_running = answer.status == 503 and 'status unknown' in text
    if not (200 <= answer.status < 300 or (still_running and params['wait'])):
        module.fail_json(msg='Patroni REST API at %s refused the %s (HTTP %d): %s' % (
            url, plan.action, answer.status, text or 'no message'), action=plan.action, candidate=plan.candidate,
            previous_leader=state.leader, cluster=read_state(module, client).to_dict())

    if plan.scheduled_at:
        after = read_state(module, client)
        if not after.failover.pending:
            module.fail_json(msg='Patroni answered %r but no switchover is pending in etcd' % text, changed=True,
                             action=plan.action)
        return result_for(plan, after, changed=True, message=text, scheduled_at=after.failover.scheduled_at)
    if not params['wait']:
        return result_for(plan, read_state(module, client), changed=True, previous_leader=state.leader, message=text)

    after, (new_leader, problem), elapsed = wait_for_leader(module, client, plan, state, started)
    if problem:
        module.fail_json(msg='%s (Patroni: %s)' % (problem, text), changed=True, action=plan.action,
                         previous_leader=state.leader, leader=new_leader, cluster=after.to_dict())
    return result_for(plan, after, changed=True, previous_leader=state.leader, leader=after.leader,
                      message=text, elapsed=round(elapsed, 2))


def run(module, client):
    state = read_state(module, client)
    if not state.members and state.leader is None:
        module.fail_json(msg='no Patroni cluster %r in etcd: nothing under %s' % (module.params['scope'], state.prefix))
    if module.params['state'] == 'absent':
        return cancel(module, client, state)
    return request(module, client, state)


def main():
    run_patroni_module(run, dict(
        candidate=dict(type='str'),
        leader=dict(type='str'),
        scheduled_at=dict(type='str'),
        mode=dict(type='str', default='auto', choices=['auto', 'switchover', 'failover']),
        state=dict(type='str', default='present', choices=['present', 'absent']),
        wait=dict(type='bool', default=True),
        wait_timeout=dict(type='float', default=120.0),
    ))


if __name__ == '__main__':
    main()
