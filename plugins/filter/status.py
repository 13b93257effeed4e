# -*- coding: utf-8 -*-
# Copyright: pgha.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The status playbook's tables. Each filter is documented in the YAML file of its name here.

Each section filter takes what one task registered (etcd_info, patroni_info, ansible.builtin.uri on the agent's
/status) and returns text lines. A read that failed is a section that says so, never an error: the playbook
registers its reads with ``failed_when: false`` so that a stopped etcd or agent shows up in the report instead
of ending it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

_INDENT = '  '
_COLUMN_GAP = '  '
_NONE = '-'
_SIZE_UNITS = ('KiB', 'MiB', 'GiB', 'TiB')
# The agent's backend kinds (lb_policy) in the order a reader expects them.
_BACKEND_ORDER = ('primary', 'replicas', 'read_any')
_MEMBER_FLAGS = ('nofailover', 'noloadbalance', 'nosync', 'nostream')


# ------------------------------------------------------------------ text helpers

def _text(value):
    if value is None or value == '':
        return _NONE
    if isinstance(value, bool):
        return 'yes' if value else 'no'
    # Remote data may hold line breaks; a table row must stay one line.
    return ' '.join(str(value).split())


def _size(value):
    """Bytes for a reader: ``512 B``, ``1.5 MiB``; ``-`` when unknown."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return _NONE
    if abs(value) < 1024:
        return '%d B' % value
    amount = float(value)
    for unit in _SIZE_UNITS:
        amount /= 1024.0
        if abs(amount) < 1024 or unit == _SIZE_UNITS[-1]:
            return '%.1f %s' % (amount, unit)
    return _NONE  # not reached: the last unit always returns


def _mapping(value):
    return value if isinstance(value, Mapping) else {}


def _list(value):
    return list(value) if isinstance(value, (list, tuple)) else []


def _result(result, filter_name):
    """A registered result: a mapping. Anything else is a mistake in the playbook, not a state of the cluster."""
    if not isinstance(result, Mapping):
        raise AnsibleFilterError('%s expects the result a task registered (a mapping), got %r'
                                 % (filter_name, result))
    return result


def _not_read(result):
    """Why a registered result holds no data: it was skipped, or the task failed (its msg)."""
    if result.get('skipped'):
        return 'skipped%s' % (': %s' % _text(result.get('skip_reason')) if result.get('skip_reason') else '')
    return _text(result.get('msg') or 'the task returned no data')


def status_table(rows, headers, indent=''):
    """Fixed-width text: a header line, then one line per row; each column as wide as its widest cell.

    Cells are shown as text (None and '' as ``-``, booleans as yes/no, line breaks as spaces); trailing blanks
    are cut.
    """
    if isinstance(headers, (str, bytes)) or not isinstance(headers, (list, tuple)) or not headers:
        raise AnsibleFilterError('status_table expects the column headers as a non-empty list, got %r' % (headers,))
    if isinstance(rows, (str, bytes)) or not isinstance(rows, (list, tuple)):
        raise AnsibleFilterError('status_table expects the rows as a list of lists, got %r' % (rows,))
    if not isinstance(indent, str):
        raise AnsibleFilterError('status_table expects the indent as a string, got %r' % (indent,))
    table = [[str(h) for h in headers]]
    for row in rows:
        if isinstance(row, (str, bytes)) or not isinstance(row, (list, tuple)) or len(row) != len(headers):
            raise AnsibleFilterError('status_table: each row must be a list of %d cells (one per header), got %r'
                                     % (len(headers), row))
        table.append([_text(cell) for cell in row])
    widths = [max(len(line[i]) for line in table) for i in range(len(headers))]
    return [(indent + _COLUMN_GAP.join(cell.ljust(width) for cell, width in zip(line, widths))).rstrip()
            for line in table]


# ------------------------------------------------------------------ etcd

def _etcd_endpoints_of(member, endpoints):
    """The endpoint entries that speak for ``member``: those it answered as, or those at one of its URLs."""
    urls = _list(member.get('client_urls'))
    return [e for e in endpoints
            if (e.get('member_id') and e.get('member_id') == member.get('id'))
            or (not e.get('member_id') and e.get('endpoint') in urls)]


def _etcd_row(name, member_id, role, endpoint):
    if endpoint is None:
        return [name, member_id, _NONE, 'not asked', role, _NONE, _NONE, _NONE, 'no endpoint of it was queried']
    health = 'healthy' if endpoint.get('healthy') else 'UNHEALTHY'
    problem = '' if endpoint.get('healthy') else (endpoint.get('reason') or endpoint.get('error'))
    return [name, member_id, endpoint.get('endpoint'), health, role, endpoint.get('version'),
            _size(endpoint.get('db_size')), endpoint.get('raft_term'), problem]


def status_etcd(result):
    """The etcd section from what pgha.cluster.etcd_info registered."""
    result = _result(result, 'status_etcd')
    if 'members' not in result:
        return ['etcd: NOT READ - %s' % _not_read(result)]
    members = sorted((_mapping(m) for m in _list(result.get('members'))), key=lambda m: str(m.get('name') or ''))
    endpoints = [_mapping(e) for e in _list(result.get('endpoints'))]
    leader = _mapping(result.get('leader'))
    alarms = result.get('alarms')
    if alarms is None:
        alarm_text = 'alarms unknown'
    elif alarms:
        alarm_text = 'ALARMS %s' % ', '.join('%s on %s' % (_text(_mapping(a).get('alarm')),
                                                           _text(_mapping(a).get('member_id'))) for a in alarms)
    else:
        alarm_text = 'no alarms'
    head = 'etcd: %s, %d member%s, leader %s, cluster version %s, auth %s, %s' % (
        'healthy' if result.get('healthy') else 'NOT HEALTHY', len(members), '' if len(members) == 1 else 's',
        _text(leader.get('name') or leader.get('id')), _text(result.get('cluster_version')),
        'enabled' if result.get('auth_enabled') else 'DISABLED', alarm_text)
    rows, shown = [], []
    for member in members:
        if member.get('id') and member.get('id') == leader.get('id'):
            role = 'leader'
        else:
            role = 'learner' if member.get('is_learner') else 'follower'
        name = member.get('name') or '(not started)'
        own = _etcd_endpoints_of(member, endpoints)
        shown.extend(id(e) for e in own)
        if not own:
            rows.append(_etcd_row(name, member.get('id'), role, None))
        for endpoint in own:
            rows.append(_etcd_row(name, member.get('id'), role, endpoint))
    # Asked URLs that no listed member owns (a wrong address, a removed member): shown, never dropped.
    for endpoint in endpoints:
        if id(endpoint) not in shown:
            rows.append(_etcd_row('(unknown)', endpoint.get('member_id'), _NONE, endpoint))
    return [head] + status_table(
        rows, ['MEMBER', 'ID', 'ENDPOINT', 'HEALTH', 'ROLE', 'VERSION', 'DB SIZE', 'TERM', 'PROBLEM'], _INDENT)


# ------------------------------------------------------------------ Patroni

def _member_state(member):
    # As patronictl shows it: a running replica by how it replicates.
    if member.get('state') == 'running' and member.get('replication_state') and not member.get('is_leader'):
        return member.get('replication_state')
    return member.get('state')


def _member_role(member):
    role = member.get('role')
    if role == 'replica' and member.get('sync_standby'):
        return 'sync replica'
    return role


def _member_lag(member):
    if member.get('is_leader'):
        return ''
    lag = member.get('lag')
    return 'unknown' if lag is None else _size(lag)


def _member_notes(member):
    notes = []
    if member.get('invalid'):
        notes.append('INVALID: %s' % _text(member.get('reason')))
    if member.get('is_leader'):
        notes.append('leader key')
    if member.get('primary_without_leader_key'):
        notes.append('PRIMARY WITHOUT THE LEADER KEY')
    if member.get('pending_restart'):
        notes.append('pending restart')
    if member.get('scheduled_restart'):
        notes.append('restart scheduled')
    if member.get('pause'):
        notes.append('paused')
    notes.extend(flag for flag in _MEMBER_FLAGS if member.get(flag))
    return ', '.join(notes)


def status_patroni(result, scope, group=None):
    """The section of one Patroni cluster from what pgha.cluster.patroni_info registered."""
    result = _result(result, 'status_patroni')
    if not isinstance(scope, str) or not scope:
        raise AnsibleFilterError('status_patroni expects the cluster\'s scope as a non-empty string, got %r'
                                 % (scope,))
    named_group = 'group %s' % group if group and group != scope else None
    title = 'Patroni cluster %s%s' % (scope, ' (%s)' % named_group if named_group else '')
    if 'cluster' not in result:
        return ['%s: NOT READ - %s' % (title, _not_read(result))]
    cluster = _mapping(result.get('cluster'))
    if not result.get('exists'):
        return ['%s: NO KEYS under %s in etcd (never bootstrapped, or removed)' % (title, _text(cluster.get('prefix')))]
    config = _mapping(cluster.get('config'))
    failover = _mapping(cluster.get('failover'))
    facts = ['leader %s' % _text(result.get('leader')),
             'primary %s' % result['primary'] if result.get('primary') else 'NO PRIMARY',
             '%d replica%s running' % (len(_list(result.get('replicas'))),
                                       '' if len(_list(result.get('replicas'))) == 1 else 's')]
    if config.get('paused'):
        facts.append('MAINTENANCE MODE (paused)')
    if config.get('synchronous_mode'):
        facts.append('synchronous mode%s' % (' strict' if config.get('synchronous_mode_strict') else ''))
    if failover.get('pending'):
        facts.append('switchover pending: %s -> %s%s' % (
            _text(failover.get('leader')), _text(failover.get('candidate')),
            ' at %s' % failover['scheduled_at'] if failover.get('scheduled_at') else ''))
    rows = []
    for member in (_mapping(m) for m in _list(cluster.get('members'))):
        host = member.get('host')
        rows.append([member.get('name'), '%s:%s' % (host, member.get('port')) if host else None,
                     _member_role(member), _member_state(member), member.get('timeline'), _member_lag(member),
                     _member_notes(member)])
    where = [named_group] if named_group else []
    lines = ['Patroni cluster %s (%s): %s' % (scope, ', '.join(where + [_text(cluster.get('prefix'))]), ', '.join(facts))]
    lines += status_table(rows, ['MEMBER', 'HOST', 'ROLE', 'STATE', 'TL', 'LAG', 'NOTES'], _INDENT)
    lines += ['%s! %s' % (_INDENT, _text(w)) for w in _list(cluster.get('warnings'))]
    return lines


# ------------------------------------------------------------------ load balancers

def _backend_kinds(backends):
    known = [k for k in _BACKEND_ORDER if k in backends]
    return known + sorted(k for k in backends if k not in _BACKEND_ORDER)


def _problem(what, state):
    state = _mapping(state)
    error = state.get('error') or state.get('runtime_error')
    if not error:
        return '%s ok' % what
    since = ' since %s' % state['since'] if state.get('since') else ''
    return '%s ERROR%s: %s' % (what, since, _text(error))


def status_lb(result, host):
    """The section of one load balancer from what ansible.builtin.uri registered for the agent's /status."""
    result = _result(result, 'status_lb')
    if not isinstance(host, str) or not host:
        raise AnsibleFilterError('status_lb expects the load balancer\'s inventory name, got %r' % (host,))
    title = 'Load balancer %s' % host
    data = result.get('json')
    if result.get('status') != 200 or not isinstance(data, Mapping):
        where = ' at %s' % result['url'] if result.get('url') else ''
        return ['%s: pgha-lb-sync NOT ANSWERING%s - %s' % (title, where, _not_read(result))]
    clusters = _mapping(data.get('clusters'))
    problems = (_problem('etcd', data.get('etcd')), _problem('HAProxy', data.get('haproxy')))
    head = '%s: %s, %s, last change %s' % ((title,) + problems + (_text(data.get('last_change')),))
    lines, rows = [head], []
    for scope in sorted(clusters):
        cluster = _mapping(clusters[scope])
        verified = cluster.get('verified_primary')
        summary = '%scluster %s: leader %s, writes to %s' % (
            _INDENT, scope, _text(cluster.get('leader')), verified if verified else 'NOBODY (no verified primary)')
        if cluster.get('error'):
            summary += ', ERROR: %s' % _text(cluster['error'])
        lines.append(summary)
        backends = _mapping(cluster.get('backends'))
        for kind in _backend_kinds(backends):
            backend = _mapping(backends[kind])
            for server in (_mapping(s) for s in _list(backend.get('servers'))):
                name = server.get('name')
                if server.get('member') and server.get('member') != name:
                    name = '%s (%s)' % (name, server['member'])
                rows.append([scope, kind, backend.get('port'), name, 'ready' if server.get('wanted') else 'maint',
                             server.get('haproxy'), server.get('reason')])
    if rows:
        lines += status_table(rows, ['CLUSTER', 'BACKEND', 'PORT', 'SERVER', 'WANTED', 'HAPROXY', 'WHY'], _INDENT)
    else:
        lines.append('%sno backends yet (the agent has not read any cluster)' % _INDENT)
    return lines


def status_report(sections):
    """The sections (each a list of lines) one after the other, a blank line between two; empty ones left out."""
    if isinstance(sections, (str, bytes)) or not isinstance(sections, (list, tuple)):
        raise AnsibleFilterError('status_report expects a list of sections (lists of lines), got %r' % (sections,))
    lines = []
    for section in sections:
        if isinstance(section, (str, bytes)) or not isinstance(section, (list, tuple)):
            raise AnsibleFilterError('status_report: each section must be a list of lines, got %r' % (section,))
        if not section:
            continue
        if lines:
            lines.append('')
        lines.extend(str(line) for line in section)
    return lines


class FilterModule(object):

    def filters(self):
        return {
            'status_report': status_report,
            'status_table': status_table,
            'status_etcd': status_etcd,
            'status_patroni': status_patroni,
            'status_lb': status_lb,
        }
