"""The patroni role keeps its secrets out of Ansible's output by declaration: every secret option of
meta/argument_specs.yml is no_log, and every task that hands a secret to a module in its arguments is no_log
(a module's own no_log masks only the values it was given, not what it prints from elsewhere, such as a server's
answer holding stored password hashes). What a run prints is checked in
tests/integration/test_role_patroni_validation.py."""

import os
import re

import pytest
import yaml

ROLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'roles', 'patroni')
# Secrets the role takes from other roles' variables.
SHARED_SECRETS = ('pgha_etcd_patroni_password', 'etcd_root_password')
# The five secrets Patroni itself is given, and the login that changes one of them in etcd.
SECRETS = ('patroni_superuser_password', 'patroni_replication_password', 'patroni_rewind_password',
           'patroni_restapi_password', 'patroni_etcd_password', 'patroni_etcd_admin_password')
# Keywords of a task that are not the module's arguments.
TASK_KEYWORDS = {'name', 'when', 'vars', 'register', 'loop', 'loop_control', 'delegate_to', 'notify', 'tags',
                 'no_log', 'changed_when', 'failed_when', 'check_mode', 'diff', 'until', 'retries', 'delay',
                 'become', 'become_user', 'run_once', 'environment', 'module_defaults', 'ignore_errors', 'block',
                 'rescue', 'always', 'listen'}


def _load(*parts):
    with open(os.path.join(ROLE, *parts)) as handle:
        return yaml.safe_load(handle)


def _options():
    for entry in _load('meta', 'argument_specs.yml')['argument_specs'].values():
        for name, spec in (entry.get('options') or {}).items():
            yield name, spec


def _secret_options():
    return sorted(set(name for name, spec in _options() if spec.get('no_log')))


def test_every_secret_option_is_no_log():
    for name, spec in _options():
        description = spec.get('description')
        text = ' '.join(description) if isinstance(description, list) else str(description)
        if text.startswith('Secret') or name.endswith('_password'):
            assert spec.get('no_log') is True, name
    assert set(SECRETS) <= set(_secret_options())


def _tasks(items):
    for task in items or []:
        yield task
        for key in ('block', 'rescue', 'always'):
            yield from _tasks(task.get(key))


def _task_files():
    tasks_dir = os.path.join(ROLE, 'tasks')
    return sorted(f for f in os.listdir(tasks_dir) if f.endswith('.yml')) + ['../handlers/main.yml']


def _expressions(value):
    """The Jinja expressions in a task's module arguments: what ``{{ }}`` holds, and assert's conditions."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == 'that':
                for condition in item if isinstance(item, list) else [item]:
                    yield str(condition)
            else:
                yield from _expressions(item)
    elif isinstance(value, list):
        for item in value:
            yield from _expressions(item)
    elif isinstance(value, str):
        yield from re.findall(r'{{(.*?)}}', value, re.S)


@pytest.mark.parametrize('task_file', _task_files())
def test_every_task_handing_a_secret_to_a_module_is_no_log(task_file):
    names = _secret_options() + list(SHARED_SECRETS)
    pattern = re.compile(r'(?<![\w.])(%s)\b' % '|'.join(names))
    for task in _tasks(_load('tasks', task_file)):
        arguments = dict((k, v) for k, v in task.items() if k not in TASK_KEYWORDS)
        # Names inside string literals are only words of a message.
        code = [re.sub(r"'[^']*'|\"[^\"]*\"", "''", e) for e in _expressions(arguments)]
        if any(pattern.search(c) for c in code):
            assert task.get('no_log') is True, '%s: task %r hands a secret to its module' % (task_file, task['name'])


def test_the_password_task_is_no_log():
    task = _load('tasks', 'passwords.yml')[0]
    assert task['name'] == "Set the changed passwords of Patroni's roles on the primary"
    assert task.get('no_log') is True
