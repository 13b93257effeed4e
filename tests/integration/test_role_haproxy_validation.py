"""pgha.cluster.haproxy refuses bad settings before its first change, with a message naming them.

The role runs against this machine over a local connection: its validation
only reads, and a failure there must stop it before the first task that
would install or write anything (the recap shows changed=0).
"""

import os
import re

import pytest
import yaml

from playbook_runner import run_playbook

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))

GOOD = {
    'pgha_etcd_lb_password': 'lb-Secret-1',
    'haproxy_etcd_admin_password': 'root-Secret-2',
    'haproxy_etcd_endpoints': ['https://127.0.0.1:2379'],
}
TWO_CLUSTERS = [
    {'scope': 'main', 'lb_password': 'main-Secret-3'},
    {'scope': 'beta', 'lb_password': 'beta-Secret-4', 'policy': {'ports': {'primary': 5100, 'replicas': 5101}}},
]
SECRETS = [v for v in GOOD.values() if isinstance(v, str)] + [c['lb_password'] for c in TWO_CLUSTERS]


def _run_role(tmp_path, hosts=1, tasks_from=None, **overrides):
    role = {'name': 'pgha.cluster.haproxy'}
    if tasks_from:
        role['tasks_from'] = tasks_from
    play = {'name': 'haproxy role', 'hosts': 'lb', 'gather_facts': False,
            'tasks': [{'name': 'Run the role', 'ansible.builtin.include_role': role}]}
    inventory = tmp_path / 'hosts.ini'
    inventory.write_text('[lb]\n' + ''.join('lb%d ansible_connection=local\n' % (i + 1) for i in range(hosts)))
    extra = dict(GOOD)
    extra.update(overrides)
    extra = {k: v for k, v in extra.items() if v is not None}
    return run_playbook([play], inventory=str(inventory), extra_vars=extra, workdir=str(tmp_path))


def _assert_clean_failure(run, needle):
    assert run.rc != 0
    assert needle in ' '.join(run.output.split()), run.output[-3000:]
    assert all(r['changed'] == 0 for r in run.recap.values()), run.recap
    assert 'Traceback' not in run.output
    for secret in SECRETS:
        assert secret not in run.output


@pytest.mark.parametrize('overrides', [{}, {'haproxy_clusters': TWO_CLUSTERS}], ids=['one-cluster', 'two-clusters'])
def test_good_settings_pass_validation(tmp_path, overrides):
    run = _run_role(tmp_path, hosts=2, tasks_from='validate.yml', **overrides)
    assert run.rc == 0, run.output[-3000:]
    assert all(r['failed'] == 0 and r['changed'] == 0 for r in run.recap.values()), run.recap


@pytest.mark.parametrize('overrides, needle', [
    ({'pgha_etcd_lb_password': None}, 'Set haproxy_clusters[scope=main].lb_password (or pgha_etcd_lb_password)'),
    ({'haproxy_etcd_admin_password': 'short'}, 'Set haproxy_etcd_admin_password (or etcd_root_password)'),
    ({'haproxy_clusters': [dict(TWO_CLUSTERS[1], lb_password='')]},
     'Set haproxy_clusters[scope=beta].lb_password'),
    ({'haproxy_clusters': [{'scope': 'bad/scope', 'lb_password': 'x-Secret-9'}]}, 'found bad/scope'),
    ({'haproxy_clusters': [TWO_CLUSTERS[0], dict(TWO_CLUSTERS[1], scope='main')]},
     'each with a distinct scope'),
    ({'haproxy_clusters': [{'scope': 'main'}]}, 'lb_password'),
    ({'haproxy_clusters': [{'scope': 'main', 'lb_password': 'x-Secret-9', 'weights': {}}]}, 'weights'),
    ({'haproxy_clusters': 'main'}, 'haproxy_clusters'),
    ({'haproxy_clusters': [TWO_CLUSTERS[0], dict(TWO_CLUSTERS[1], policy={})]},
     'clusters sharing this host need their own ports'),
    ({'haproxy_policy': {'ports': {'primary': 70000}}}, 'haproxy_policy.ports'),
    ({'haproxy_policy': {'ports': {'primary': 'x'}}}, 'haproxy_policy.ports'),
    ({'haproxy_policy': {'ports': {'primary': 7000}}}, 'stats 7000'),
    ({'haproxy_sync_status_port': 7000}, 'haproxy_sync_status_port'),
    ({'haproxy_etcd_endpoints': ['http://127.0.0.1:2379']}, 'set haproxy_etcd_endpoints'),
    ({'haproxy_etcd_endpoints': []}, "put the etcd hosts in group 'etcd'"),
    ({'haproxy_stats_address': '0.0.0.0'}, 'haproxy_stats_address 0.0.0.0 is not loopback'),
    ({'haproxy_stats_port': 'seven'}, 'haproxy_stats_port'),
    ({'haproxy_sync_user': 'Bad User'}, "haproxy_sync_user ('Bad User')"),
    ({'haproxy_sync_primary_poll_interval': 0}, 'haproxy_sync_primary_poll_interval (0)'),
    ({'haproxy_manage_policy': 'perhaps'}, 'haproxy_manage_policy'),
])
def test_bad_settings_fail_before_any_change(tmp_path, overrides, needle):
    _assert_clean_failure(_run_role(tmp_path, **overrides), needle)


def test_load_balancers_must_agree_on_a_clusters_policy(tmp_path):
    # lb2 gives main another balance algorithm than lb1.
    (tmp_path / 'host_vars').mkdir()
    (tmp_path / 'host_vars' / 'lb2.yml').write_text(yaml.safe_dump({'haproxy_policy': {'balance': 'leastconn'}}))
    run = _run_role(tmp_path, hosts=2)
    _assert_clean_failure(run, 'The load balancers of this play give a cluster different policies (main on lb')


def test_the_agent_ships_every_module_it_imports():
    """vars/main.yml lists lb_agent and what it imports (also inside functions), nothing more."""
    base = os.path.join(ROOT, 'plugins', 'module_utils')
    seen, todo = set(), ['lb_agent']
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            with open(os.path.join(base, name + '.py'), encoding='utf-8') as handle:
                todo.extend(re.findall(r'^\s*from (?:ansible_collections\.pgha\.cluster\.plugins\.module_utils\.|\.)'
                                       r'(\w+) import', handle.read(), re.M))
    with open(os.path.join(ROOT, 'roles', 'haproxy', 'vars', 'main.yml'), encoding='utf-8') as handle:
        shipped = yaml.safe_load(handle)['__haproxy_sync_modules']
    assert sorted(shipped) == sorted(seen)
