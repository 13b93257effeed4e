"""The pgha.cluster.patroni inventory plugin on the scenario's etcd: ansible-inventory --graph shows each
cluster's live primary, and the new one after a switchover; a playbook limited to patroni_primary runs on the
primaries, and only there (PostgreSQL there is out of recovery)."""

import os
import re
import subprocess

import yaml

from scenario_base import BIN_DIR, run_playbook


def _inventory_file(scenario):
    """An inventory source for the plugin: the scenario's etcd over TLS as root, with the patroni client
    certificate; hosts reached through docker exec, as Molecule's own inventory reaches them."""
    base = os.path.join(scenario.pki_ca_dir, 'hosts', scenario.members[0], 'client-patroni')
    directory = os.path.join(scenario.ephemeral_dir, 'inventory-plugin')
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, 'scenario.patroni.yml')
    config = {
        'plugin': 'pgha.cluster.patroni',
        'endpoints': ['https://%s:2379' % scenario.ip(h) for h in scenario.etcd_members],
        'ca_cert': scenario.ca_cert, 'client_cert': base + '.crt', 'client_key': base + '.key',
        'username': 'root', 'password': scenario.group_vars['etcd_root_password'],
        'include_etcd_members': True,
        'compose': {'ansible_connection': "'community.docker.docker'", 'ansible_docker_host': 'inventory_hostname',
                    'ansible_python_interpreter': "'/usr/bin/python3'"},
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, 'w') as handle:
        yaml.safe_dump(config, handle)
    return path


def _graph(source, group):
    """Host names under ``group`` in ``ansible-inventory --graph``."""
    env = dict(os.environ, ANSIBLE_NOCOLOR='1', ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED='true')
    proc = subprocess.run([os.path.join(BIN_DIR, 'ansible-inventory'), '-i', source, '--graph', group],
                          capture_output=True, text=True, env=env, timeout=120, check=False, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return sorted(re.findall(r'\|--([^@\s]+)$', proc.stdout, re.M))


def _primaries(scenario):
    return {group: cluster.wait_healthy().primary().name for group, cluster in scenario.clusters.items()}


def _switchover(scenario, candidate, label):
    run = scenario.playbook('switchover', extra_vars={'patroni_switchover_candidate': candidate}, label=label)
    assert run.rc == 0, run.tail()
    scenario.wait_healthy(leader=candidate, timeout=120)


def test_graph_shows_the_live_primary_before_and_after_a_switchover(scenario):
    source = _inventory_file(scenario)
    primaries = _primaries(scenario)
    for group, cluster in scenario.clusters.items():
        assert _graph(source, 'patroni_%s_primary' % cluster.scope) == [primaries[group]]
        assert _graph(source, 'patroni_%s' % cluster.scope) == cluster.members
    assert _graph(source, 'patroni_primary') == sorted(primaries.values())
    assert _graph(source, 'etcd') == scenario.etcd_members

    leader = primaries['main']
    candidate = sorted(set(scenario.members) - {leader})[0]
    _switchover(scenario, candidate, 'inventory-switchover-away')
    try:
        assert _graph(source, 'patroni_main_primary') == [candidate]
        assert leader in _graph(source, 'patroni_main_replica')
        # The other cluster kept its primary.
        assert _graph(source, 'patroni_%s_primary' % scenario.beta.scope) == [primaries['beta']]
    finally:
        # Back to the leader the other tests found, whatever happened above.
        if scenario.wait_healthy().primary().name != leader:
            _switchover(scenario, leader, 'inventory-switchover-back')
    assert _graph(source, 'patroni_main_primary') == [leader]


def test_playbook_limited_to_patroni_primary_reaches_the_primaries(scenario):
    source = _inventory_file(scenario)
    primaries = _primaries(scenario)
    play = [{'name': 'On the primaries', 'hosts': 'patroni', 'gather_facts': False, 'tasks': [
        {'name': 'Ask PostgreSQL whether it is in recovery',
         'ansible.builtin.command': {'argv': ['runuser', '-u', 'postgres', '--', 'psql', '-XAtc',
                                              'SELECT pg_is_in_recovery()']},
         'register': 'in_recovery', 'changed_when': False},
        {'name': 'Report', 'ansible.builtin.debug': {
            'msg': 'primary check {{ inventory_hostname }} {{ patroni_role }} recovery={{ in_recovery.stdout }}'}},
    ]}]
    env = {'ANSIBLE_CONFIG': os.environ.get('ANSIBLE_CONFIG', os.path.join(scenario.ephemeral_dir, 'ansible.cfg'))}
    run = run_playbook(play, source, env=env, args=['--limit', 'patroni_primary'],
                       workdir=os.path.dirname(source),
                       log_file=os.path.join(scenario.log_dir, 'inventory-limit-primary.log'))
    assert run.rc == 0, run.tail()
    assert sorted(run.recap) == sorted(primaries.values()), run.tail()
    assert sorted(re.findall(r'primary check (\S+) primary recovery=f', run.output)) == sorted(primaries.values())
