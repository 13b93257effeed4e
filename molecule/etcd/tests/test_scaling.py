"""Membership changes with the collection's playbooks: 3 -> 5 -> 3 members while a client keeps writing
(removing the leader - whose inventory gives a member name it does not run with, so it is found by its peer URL -
and a member whose host is down, on the way back), and the refusals that protect the cluster. The first spare
had Debian's own etcd running when it was added (prepare.yml): its untouched data is moved aside, not deleted.

The add/remove playbooks take their members from the inventory's `etcd` group, so each stage gets its own
inventory (Molecule's connection settings and group_vars, the group as it is at that stage), as a user would
edit theirs between runs.
"""

import collections
import re
import subprocess
import time
import uuid

import pytest

from etcd_scenario import HOST_CONFIG_DIR, HOST_DATA_DIR, HOST_PKI_DIR
from etcd_secrets import secrets_in
from etcd_writer import Writer


def _assert_no_secret(scenario, run):
    leaks = secrets_in(run.output, scenario.passwords, scenario.private_keys())
    assert not leaks, 'secrets in the output of %s:\n%s' % (run.log_file, '\n'.join(leaks))


@pytest.mark.parametrize('extra_vars', [None, {'etcd_new_member': 'etcd9'}], ids=['not-set', 'not-in-inventory'])
def test_add_member_refuses_without_a_new_member(scenario, extra_vars):
    run = scenario.playbook('etcd_add_member', extra_vars=extra_vars, label='add-member-refused')
    assert run.rc != 0, run.tail()
    assert 'Set etcd_new_member to the inventory name of the host to add.' in run.output, run.tail()
    _assert_no_secret(scenario, run)
    # Stopped by the check on the controller, before any host was touched.
    assert sorted(run.recap) == ['localhost'], run.recap
    assert 'Traceback' not in run.output, run.tail()
    problems, _details = scenario.cluster_problems(scenario.members)
    assert not problems, problems


@pytest.mark.parametrize('extra_vars', [None, {'etcd_old_member': 'etcd4'}], ids=['not-set', 'not-a-member'])
def test_remove_member_refuses_without_a_member(scenario, extra_vars):
    run = scenario.playbook('etcd_remove_member', extra_vars=extra_vars, label='remove-member-refused')
    assert run.rc != 0, run.tail()
    assert 'Set etcd_old_member to the inventory name of an etcd member (not the only one).' in run.output, run.tail()
    assert sorted(run.recap) == ['localhost'], run.recap
    assert 'Traceback' not in run.output, run.tail()
    _assert_no_secret(scenario, run)


def test_remove_member_refuses_to_break_quorum(scenario):
    """With one of 3 members down, removing another would leave 1 healthy of 2 voters: refused, nothing changed."""
    first, stopped, target = scenario.members[:3]
    try:
        proc = scenario.docker_exec(stopped, ['systemctl', 'stop', 'etcd.service'])
        assert proc.returncode == 0, proc.stderr
        scenario.wait_unhealthy(stopped)

        run = scenario.playbook('etcd_remove_member', extra_vars={'etcd_old_member': target},
                                label='remove-member-refused')
        assert run.rc != 0, run.tail()
        assert re.search(r'refusing to remove %s \(id [0-9a-f]+\): the 2 voting members left would need 2 healthy '
                         r'for quorum, but only 1 of them is healthy' % re.escape(target), run.output), run.tail()
        assert 'Traceback' not in run.output, run.tail()
        _assert_no_secret(scenario, run)

        client = scenario.client(hosts=[first, target])
        try:
            assert sorted(m.name for m in client.members()) == scenario.members
        finally:
            client.close()
        assert scenario.service_state(target) == 'active'
        assert scenario.docker_exec(target, ['test', '-d', HOST_DATA_DIR + '/member']).returncode == 0
    finally:
        scenario.docker_exec(stopped, ['systemctl', 'start', 'etcd.service'])
        scenario.wait_cluster(scenario.members, timeout=180)


def _check_written(acks, found, reader):
    missing = [a.key for a in acks if a.key not in found]
    wrong = [(a.key, a.value, found[a.key]) for a in acks if a.key in found and found[a.key] != a.value]
    assert not missing and not wrong, '%s: %d acknowledged writes missing (first %s), %d with another value (%s)' % (
        reader, len(missing), missing[:5], len(wrong), wrong[:5])


# One run of the add or remove playbook. `group`: the inventory's etcd group for that run; `after`: the members
# expected afterwards. `leader`: make the host the leader first (removing the leader puts the writes through an
# election). `down`: the host is down while it is removed (its etcd frozen, Ansible cannot reach it), the usual
# reason to remove a member. `renamed`: the inventory gives the host an etcd_name other than the one its member
# runs with (the member must be found by its peer URL, and never be wiped while the cluster still counts it).
Stage = collections.namedtuple('Stage', ['playbook', 'host', 'group', 'spares', 'after', 'leader', 'down',
                                         'renamed'])
PEER_FILES = [HOST_PKI_DIR + '/etcd-peer.key', HOST_PKI_DIR + '/etcd-peer.crt', HOST_PKI_DIR + '/etcd-peer-ca.crt']
DEBIAN_DEFAULT_DATA = '/var/lib/etcd/default'


def _stages(base, first, second):
    return [
        Stage('etcd_add_member', first, base, [first, second], base + [first], False, False, False),
        Stage('etcd_add_member', second, base + [first], [second], base + [first, second], False, False, False),
        Stage('etcd_remove_member', second, base + [first, second], [], base + [first], True, False, True),
        Stage('etcd_remove_member', first, base + [first], [second], base, False, True, False),
    ]


def _run_stage(scenario, stage, tmp_path):
    inventory = scenario.write_inventory(tmp_path / ('%s-%s.yml' % (stage.playbook, stage.host)), stage.group,
                                         stage.spares, down=[stage.host] if stage.down else [],
                                         extra_host_vars={stage.host: {'etcd_name': stage.host + '-renamed'}}
                                         if stage.renamed else None)
    var = 'etcd_new_member' if stage.playbook == 'etcd_add_member' else 'etcd_old_member'
    if stage.leader:
        scenario.move_leader(stage.host)
    if stage.down:
        subprocess.run(['docker', 'pause', stage.host], check=True, capture_output=True, timeout=60)
    try:
        run = scenario.playbook(stage.playbook, inventory, extra_vars={var: stage.host},
                                label='%s-%s' % (stage.playbook, stage.host))
    finally:
        if stage.down:
            subprocess.run(['docker', 'unpause', stage.host], check=True, capture_output=True, timeout=60)
    assert run.rc == 0, run.tail()
    _assert_no_secret(scenario, run)
    return run


def _check_stage(scenario, stage, run, root):
    members = root.members()
    assert sorted(m.name for m in members) == sorted(stage.after), (members, run.tail())
    learners = [m for m in members if m.is_learner]
    assert not learners, 'learners left after %s %s: %s' % (stage.playbook, stage.host, learners)
    if stage.down:
        assert '%s is no longer an etcd member, but it could not be reached to clean it up' % stage.host in run.output, (
            run.tail())
        # What the playbook asks the user to do once the host is back.
        for command in (['systemctl', 'disable', '--now', 'etcd.service'],
                        ['rm', '-rf', HOST_DATA_DIR, HOST_CONFIG_DIR] + PEER_FILES):
            proc = scenario.docker_exec(stage.host, command)
            assert proc.returncode == 0, (command, proc.stderr)
    elif stage.playbook == 'etcd_remove_member':
        assert scenario.service_state(stage.host) != 'active', 'etcd still runs on the removed %s' % stage.host
        # Its data, the JWT signing key (in the configuration directory) and the key the peer port accepts.
        for path in [HOST_DATA_DIR, HOST_CONFIG_DIR] + PEER_FILES:
            assert scenario.docker_exec(stage.host, ['test', '-e', path]).returncode != 0, (
                'the removed %s kept %s' % (stage.host, path))
    return scenario.wait_cluster(stage.after, timeout=180)


def _debian_default_running(scenario, host):
    """Debian's own single-node etcd running on ``host``, as the package leaves it when nothing masked it
    (prepare.yml installed the package so on a fresh container; after an earlier run, the removed member's
    drop-in is taken away first). Returns the copies of its data put aside so far."""
    for command in (['rm', '-f', '/etc/systemd/system/etcd.service.d/pgha.conf'], ['systemctl', 'daemon-reload'],
                    ['systemctl', 'unmask', 'etcd.service'], ['systemctl', 'start', 'etcd.service'],
                    ['test', '-d', DEBIAN_DEFAULT_DATA + '/member']):
        proc = scenario.docker_exec(host, command)
        assert proc.returncode == 0, (host, command, proc.stderr)
    return _put_aside(scenario, host)


def _put_aside(scenario, host):
    proc = scenario.docker_exec(host, ['sh', '-c', 'ls -d %s.moved-by-pgha-* 2>/dev/null || true' % DEBIAN_DEFAULT_DATA])
    return set(proc.stdout.split())


def _check_debian_default_put_aside(scenario, host, before):
    assert scenario.docker_exec(host, ['test', '-e', DEBIAN_DEFAULT_DATA]).returncode != 0, (
        "Debian's default etcd data is still in place on %s" % host)
    new = _put_aside(scenario, host) - before
    assert len(new) == 1, 'expected one new copy of the default data on %s, found %s' % (host, sorted(new))
    assert scenario.docker_exec(host, ['test', '-d', new.pop() + '/member']).returncode == 0


def test_scale_3_to_5_to_3_while_a_client_writes(scenario, tmp_path, report):
    base = list(scenario.members)
    prefix = '/pgha-verify/scale-%s/' % uuid.uuid4().hex[:8]
    root = scenario.client()
    # Our client with root's credentials, knowing only the original members, as Patroni would be configured.
    writer = Writer(scenario.client(timeout=4.0), prefix)
    writer.start()
    timings = []
    try:
        writer.wait_for_acks(5)
        debian_default = scenario.spares[0]
        put_aside = _debian_default_running(scenario, debian_default)
        for stage in _stages(base, *scenario.spares[:2]):
            start = time.monotonic()
            run = _run_stage(scenario, stage, tmp_path)
            writes = writer.acks_between(start, time.monotonic())
            details = _check_stage(scenario, stage, run, root)
            if stage.playbook == 'etcd_add_member' and stage.host == debian_default:
                _check_debian_default_put_aside(scenario, debian_default, put_aside)
            timings.append('%s %s%s: %.0fs, %d writes acknowledged meanwhile' % (
                stage.playbook, stage.host, ' (the leader)' if stage.leader else ' (host down)' if stage.down else '',
                run.seconds, writes))
            assert writes > 0, 'no write was acknowledged while %s %s ran' % (stage.playbook, stage.host)
            if len(stage.after) == 5:
                assert len(details['members']) == 5 and len(set(details['leaders'].values())) == 1, details

        writer.wait_for_acks(len(writer.acks) + 5)
    finally:
        writer.stop()
        writer.client.close()

    try:
        assert writer.crash is None, 'the writer crashed: %r' % writer.crash
        report('3 -> 5 -> 3 under writes: %d writes acknowledged, %d retries, %d writes slower than 1s (slowest '
               '%.2fs), longest gap between two acknowledgements %.2fs'
               % (len(writer.acks), writer.retries, writer.slow_writes, writer.slowest, writer.longest_gap()))
        for line in timings:
            report('  ' + line)
        for error, count in writer.errors.most_common(3):
            report('  writer error x%d: %s' % (count, error))
        _check_written(writer.acks, {kv.key.decode(): kv.value.decode() for kv in root.get_prefix(prefix)},
                       'our client')
        _check_written(writer.acks, scenario.etcdctl_get_prefix(base[-1], prefix), 'etcdctl in %s' % base[-1])
    finally:
        root.delete_prefix(prefix)
        root.close()
