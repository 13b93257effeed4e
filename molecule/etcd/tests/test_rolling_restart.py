"""Configuration changes restart the members one at a time, each back and healthy before the next.

A setting etcd refuses to start with stops the rolling restart at the first member: the others are never
restarted and keep the cluster's quorum. The run that fixes it also changes root's password, with the previous
one given: the role logs in with whichever etcd accepts.

Both runs play the etcd role alone on the members (the pki role has nothing to change here), as
ansible-playbook does with the inventory Molecule wrote.
"""

import re

import pytest

from ansible_collections.pgha.cluster.plugins.module_utils.etcd_errors import EtcdAuthError
from etcd_secrets import secrets_in

# etcd refuses to start when the election timeout is less than five heartbeats.
BAD_SETTINGS = {'etcd_heartbeat_interval': 100, 'etcd_election_timeout': 200}
NEW_ROOT_PASSWORD = 'molecule-root-Rotated-4714'


ROLE_PLAY = [{'name': 'The etcd role', 'hosts': 'etcd', 'become': True, 'gather_facts': True,
              'roles': [{'role': 'pgha.cluster.etcd'}]}]


def main_pids(scenario):
    return {h: scenario.docker_exec(h, ['systemctl', 'show', '--property', 'MainPID', '--value',
                                        'etcd.service']).stdout.strip() for h in scenario.members}


def healthy(scenario, host):
    client = scenario.client(hosts=[host], timeout=5.0)
    try:
        return client.health(scenario.client_url(host))[0]
    finally:
        client.close()


def test_a_setting_etcd_refuses_stops_the_rolling_restart_and_the_next_run_repairs_it(scenario, tmp_path, report):
    before = main_pids(scenario)
    details = scenario.wait_cluster(scenario.members, timeout=60)
    leader_id = set(details['leaders'].values()).pop()
    broken = scenario.run_plays(ROLE_PLAY, extra_vars=BAD_SETTINGS, label='etcd-bad-config', workdir=tmp_path)
    report('rolling restart with a setting etcd refuses: stopped after %.0fs' % broken.seconds)
    assert broken.rc != 0, broken.tail()
    found = re.search(r'etcd on (\S+) did not come back healthy after its restart', broken.output)
    assert found, broken.tail()
    first = found.group(1)
    assert 'The rolling restart stopped there' in broken.output, broken.tail()
    assert 'election-timeout' in broken.output, 'etcd\'s reason is not in the message: ' + broken.tail()
    # The leader is restarted last: the first one tried is a follower.
    assert details['members'][first].id != leader_id, '%s, the leader, was restarted first' % first
    assert scenario.service_state(first) != 'active'
    after = main_pids(scenario)
    for host in scenario.members:
        if host == first:
            continue
        assert after[host] == before[host], '%s was restarted after %s failed' % (host, first)
        assert healthy(scenario, host), '%s is not healthy after %s failed' % (host, first)

    # The next run with good settings brings the member back, and changes root's password on the way.
    old_password = scenario.passwords['root']
    try:
        new_password = {'etcd_root_password': NEW_ROOT_PASSWORD, 'etcd_root_password_previous': old_password}
        repaired = scenario.run_plays(ROLE_PLAY, extra_vars=new_password, label='etcd-repair-and-new-root-password',
                                      workdir=tmp_path)
        report('the run that repairs it and changes root\'s password: %.0fs' % repaired.seconds)
        assert repaired.rc == 0, repaired.tail()
        leaks = secrets_in(repaired.output, dict(scenario.passwords, new_root=NEW_ROOT_PASSWORD), [])
        assert not leaks, leaks
        with scenario.client(password=NEW_ROOT_PASSWORD) as root:
            assert 'root' in root.user_list()
        with pytest.raises(EtcdAuthError):
            with scenario.client() as old:
                old.user_list()
    finally:
        # Back to the inventory's password for the tests that follow (unless it was never changed).
        try:
            with scenario.client(password=NEW_ROOT_PASSWORD) as root:
                root.user_change_password('root', old_password)
        except EtcdAuthError:
            pass
    # Every member back, the one that failed included.
    scenario.wait_cluster(scenario.members, timeout=60)
