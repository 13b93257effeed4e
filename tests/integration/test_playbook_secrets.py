"""pgha.cluster.secrets: every secret the collection needs, strong and random, written once into a file to vault."""

import os
import stat

import yaml

from playbook_runner import run_playbook

ALL = ['etcd_root_password', 'pgha_etcd_patroni_password', 'pgha_etcd_lb_password', 'patroni_superuser_password',
       'patroni_replication_password', 'patroni_rewind_password', 'patroni_restapi_password']


def _secrets(path):
    with open(path, encoding='utf-8') as handle:
        return yaml.safe_load(handle)


def test_writes_each_secret_once_with_a_private_mode(tmp_path):
    target = tmp_path / 'inventory' / 'group_vars' / 'all' / 'vault.yml'
    first = run_playbook('pgha.cluster.secrets', extra_vars={'pgha_secrets_file': 'inventory/group_vars/all/vault.yml'},
                         workdir=str(tmp_path))
    assert first.rc == 0, first.output[-2000:]
    secrets = _secrets(target)
    assert sorted(secrets) == sorted(ALL)
    values = list(secrets.values())
    assert len(set(values)) == len(values)
    assert all(len(v) == 32 and v.isalnum() for v in values), values
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
    again = run_playbook('pgha.cluster.secrets', extra_vars={'pgha_secrets_file': str(target)}, workdir=str(tmp_path))
    assert again.rc == 0 and again.recap['localhost']['changed'] == 0, again.output[-2000:]
    assert _secrets(target) == secrets


def test_a_new_directory_is_private_and_an_existing_one_keeps_its_mode(tmp_path):
    existing = tmp_path / 'inventory' / 'group_vars' / 'all'
    existing.mkdir(parents=True)
    existing.chmod(0o755)
    for name in ('all/vault.yml', 'pg_billing/vault.yml'):
        run = run_playbook('pgha.cluster.secrets', extra_vars={'pgha_secrets_file': 'inventory/group_vars/' + name},
                           workdir=str(tmp_path))
        assert run.rc == 0, run.output[-2000:]
    assert stat.S_IMODE(os.stat(existing).st_mode) == 0o755
    assert stat.S_IMODE(os.stat(existing.parent / 'pg_billing').st_mode) == 0o700


def test_a_further_cluster_gets_its_own_set_without_the_root_password(tmp_path):
    target = tmp_path / 'billing.yml'
    extra_vars = {'pgha_secrets_file': str(target), 'pgha_secrets_cluster_only': True}
    run = run_playbook('pgha.cluster.secrets', extra_vars=extra_vars, workdir=str(tmp_path))
    assert run.rc == 0, run.output[-2000:]
    assert sorted(_secrets(target)) == sorted(ALL[1:])


def test_without_a_file_name_nothing_is_written(tmp_path):
    run = run_playbook('pgha.cluster.secrets', workdir=str(tmp_path))
    assert run.rc != 0
    assert 'Name the file to write' in run.output
    assert os.listdir(str(tmp_path)) == [] or all(name.startswith(('extra-vars', 'playbook')) for name in
                                                  os.listdir(str(tmp_path)))
