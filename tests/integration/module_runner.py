"""Run a collection module's main() in-process, the way Ansible would, and capture its result.

Modules talk to real etcd from here; only the transport of arguments and the
exit are short-circuited (AnsibleModule reads its arguments from
basic._ANSIBLE_ARGS and leaves through exit_json/fail_json).
"""

import importlib
import json

from ansible.module_utils import basic
from ansible.module_utils.common.text.converters import to_bytes


class ModuleExit(Exception):
    def __init__(self, result, failed):
        super().__init__(result.get('msg', ''))
        self.result = result
        self.failed = failed


def _exit_json(self, **kwargs):
    kwargs.setdefault('changed', False)
    raise ModuleExit(kwargs, failed=False)


def _fail_json(self, msg, **kwargs):
    kwargs['msg'] = msg
    kwargs['failed'] = True
    raise ModuleExit(kwargs, failed=True)


def run_module(name, args, check_mode=False, diff=False, monkeypatch=None):
    """Run pgha.cluster.<name> with ``args``; returns the result dict (``failed`` set on failure).

    ``monkeypatch`` (pytest's fixture) undoes the patches after the test.
    """
    payload = dict(args)
    payload['_ansible_check_mode'] = check_mode
    payload['_ansible_diff'] = diff
    payload.setdefault('_ansible_remote_tmp', '/tmp')
    payload.setdefault('_ansible_keep_remote_files', False)
    module = importlib.import_module('ansible_collections.pgha.cluster.plugins.modules.%s' % name)
    patches = [(basic, '_ANSIBLE_ARGS', to_bytes(json.dumps({'ANSIBLE_MODULE_ARGS': payload}))),
               (basic.AnsibleModule, 'exit_json', _exit_json),
               (basic.AnsibleModule, 'fail_json', _fail_json),
               # ansible-core 2.19 modules serialise their result with the profile the
               # controller names; 'legacy' is what a module gets from ansible-playbook.
               (basic, '_ANSIBLE_PROFILE', 'legacy')]
    saved = [(obj, attr, getattr(obj, attr)) for obj, attr, unused in patches]
    for obj, attr, value in patches:
        if monkeypatch is not None:
            monkeypatch.setattr(obj, attr, value)
        else:
            setattr(obj, attr, value)
    try:
        module.main()
    except ModuleExit as done:
        return done.result
    finally:
        if monkeypatch is None:
            for obj, attr, value in saved:
                setattr(obj, attr, value)
    raise AssertionError('module %s returned without exit_json/fail_json' % name)


def connection_args(cluster, user='root', password=None, **extra):
    """The shared connection options for a harness cluster (``user=None``: no credentials)."""
    args = {'endpoints': cluster.endpoints}
    if cluster.tls:
        args.update(ca_cert=cluster.ca_cert, client_cert=cluster.client_cert, client_key=cluster.client_key)
    if cluster.auth and user is not None:
        args.update(username=user, password=password or cluster.users[user])
    args.update(extra)
    return args
