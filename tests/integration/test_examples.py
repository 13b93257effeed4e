"""The example inventories in examples/inventory/ parse, with secrets from pgha.cluster.secrets, into the groups and
per-cluster values the roles expect (README: "On your own hosts")."""

import json
import os
import shutil
import subprocess

import pytest

import yaml

from playbook_runner import LOCAL_ENV, playbook_run, run_playbook

EXAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'examples', 'inventory')
LIVE_EXAMPLE = os.path.join(EXAMPLES, '..', 'prod.patroni.yml')


def _copy_with_secrets(tmp_path, name, cluster_groups=()):
    inventory = tmp_path / name
    shutil.copytree(os.path.join(EXAMPLES, name), str(inventory))
    files = [('group_vars/all/vault.yml', False)] + [('group_vars/%s/vault.yml' % g, True) for g in cluster_groups]
    for path, cluster_only in files:
        extra_vars = {'pgha_secrets_file': str(inventory / path), 'pgha_secrets_cluster_only': cluster_only}
        run = run_playbook('pgha.cluster.secrets', extra_vars=extra_vars, workdir=str(tmp_path))
        assert run.rc == 0, run.output[-2000:]
    return inventory


def _host_vars(inventory, host, names):
    env = dict(os.environ, **LOCAL_ENV)
    out = {}
    for name in names:
        proc = subprocess.run([os.path.join(playbook_run.BIN_DIR, 'ansible'), '-i', str(inventory), host, '-m',
                               'ansible.builtin.debug', '-a', 'var=%s' % name, '-o'],
                              capture_output=True, text=True, env=env, timeout=120, check=False)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        out[name] = json.loads(proc.stdout.split('=>', 1)[1])[name]
    return out


def _groups(inventory):
    proc = subprocess.run([os.path.join(playbook_run.BIN_DIR, 'ansible-inventory'), '-i', str(inventory), '--list'],
                          capture_output=True, text=True, env=dict(os.environ, **LOCAL_ENV), timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_colocated_layout(tmp_path):
    inventory = _copy_with_secrets(tmp_path, 'colocated')
    listed = _groups(inventory)
    assert listed['etcd']['hosts'] == listed['postgres']['hosts'] == ['db1', 'db2', 'db3']
    assert listed['lb']['hosts'] == ['lb1']
    found = _host_vars(inventory, 'db1', ['pgha_cluster_name', 'patroni_superuser_password'])
    assert found['pgha_cluster_name'] == 'main' and len(found['patroni_superuser_password']) == 32


@pytest.mark.parametrize('host, scope', [('db1', 'orders'), ('db4', 'billing')])
def test_dedicated_etcd_layout_with_two_clusters(tmp_path, host, scope):
    inventory = _copy_with_secrets(tmp_path, 'dedicated-etcd', cluster_groups=['pg_billing'])
    listed = _groups(inventory)
    assert listed['postgres']['children'] == ['pg_orders', 'pg_billing']
    assert not set(listed['etcd']['hosts']) & set(listed['pg_orders']['hosts'] + listed['pg_billing']['hosts'])
    own = _host_vars(inventory, host, ['pgha_cluster_name', 'patroni_group', 'pgha_etcd_lb_password'])
    assert own['pgha_cluster_name'] == scope and own['patroni_group'] == 'pg_' + scope
    # The etcd hosts and the load balancers get each cluster's own password.
    rbac = _host_vars(inventory, 'etcd1', ['etcd_rbac_clusters'])['etcd_rbac_clusters']
    lb = _host_vars(inventory, 'lb1', ['haproxy_clusters'])['haproxy_clusters']
    assert dict((c['scope'], c['lb_password']) for c in rbac)[scope] == own['pgha_etcd_lb_password']
    assert dict((c['scope'], c['lb_password']) for c in lb)[scope] == own['pgha_etcd_lb_password']
    billing, orders = (_host_vars(inventory, h, ['pgha_etcd_lb_password'])['pgha_etcd_lb_password']
                       for h in ('db4', 'db1'))
    assert billing != orders


def _plugin_options():
    proc = subprocess.run([os.path.join(playbook_run.BIN_DIR, 'ansible-doc'), '-t', 'inventory', '--json',
                           'pgha.cluster.patroni'],
                          capture_output=True, text=True, env=dict(os.environ, **LOCAL_ENV), timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    options = json.loads(proc.stdout)['pgha.cluster.patroni']['doc']['options']
    return set(options).union(*(spec.get('aliases', []) for spec in options.values()))


def test_live_inventory_example_reads_the_colocated_deployment():
    """examples/prod.patroni.yml, copied beside the colocated inventory, names what that deployment made: its etcd
    hosts, the CA and a load balancer's client certificate in pki_ca_dir, and the cluster's read-only user."""
    with open(LIVE_EXAMPLE) as handle:
        live = yaml.safe_load(handle)
    with open(os.path.join(EXAMPLES, 'colocated', 'hosts.yml')) as handle:
        groups = yaml.safe_load(handle)['all']['children']
    with open(os.path.join(EXAMPLES, 'colocated', 'group_vars', 'all', 'main.yml')) as handle:
        settings = yaml.safe_load(handle)
    assert live['plugin'] == 'pgha.cluster.patroni'
    assert set(live) - {'plugin'} <= _plugin_options()
    assert live['endpoints'] == ['https://%s:2379' % h['ansible_host'] for h in groups['etcd']['hosts'].values()]
    # pki_ca_dir is pki/ beside inventory/, where the live file goes too.
    assert settings['pki_ca_dir'] == '{{ inventory_dir }}/../pki'
    assert live['ca_cert'] == 'pki/ca.crt'
    lb_host = sorted(groups['lb']['hosts'])[0]
    assert (live['client_cert'], live['client_key']) == tuple('pki/hosts/%s/client-lb-agent.%s' % (lb_host, ext)
                                                              for ext in ('crt', 'key'))
    scope = settings['pgha_cluster_name']
    assert live['username'] == 'lb-' + scope and live['scopes'] == [scope]
