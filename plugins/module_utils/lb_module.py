# -*- coding: utf-8 -*-
# Copyright: pgha.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible glue of the haproxy_config module: its options and what it does with them.

The work is shared with the LB agent: lb_source reads etcd, haproxy_config
renders, lb_config_file validates; only the file handling through
AnsibleModule (atomic_move, backup, owner/group/mode, check and diff mode)
lives here.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from .etcd_errors import EtcdError
from .etcd_module import connect, etcd_module, fail_on_etcd_error
from .haproxy_config import SETTINGS_DEFAULTS, LbSettings, render_haproxy_config
from .lb_config_file import DEFAULT_VALIDATE, HaproxyConfigRejected, read_text, stage_config
from .lb_policy import LbPolicyError
from .lb_source import read_snapshots
from .patroni_state import DEFAULT_NAMESPACE

# Settings whose empty string means "leave the directive out" (Ansible cannot tell null from unset).
NULLABLE_SETTINGS = ('admin_socket_group', 'user', 'group', 'log_target', 'bind_address', 'stats_address',
                     'stats_user', 'stats_password')
_SETTING_TYPES = {'maxconn': 'int', 'hard_stop_after_s': 'int', 'timeout_connect_s': 'int',
                  'timeout_client_s': 'int', 'timeout_server_s': 'int', 'timeout_check_s': 'int',
                  'timeout_queue_s': 'int', 'stats_port': 'int', 'admin_socket': 'path',
                  'server_state_file': 'path'}


def _setting_spec(name, default):
    spec = {'type': _SETTING_TYPES.get(name, 'str')}
    if default is not None:
        spec['default'] = default
    if name == 'stats_password':
        spec['no_log'] = True
    return spec


SETTINGS_SPEC = dict((name, _setting_spec(name, default)) for name, default in SETTINGS_DEFAULTS.items())

HAPROXY_CONFIG_SPEC = {
    'namespace': {'type': 'str', 'default': DEFAULT_NAMESPACE},
    'scopes': {'type': 'list', 'elements': 'str', 'required': True},
    'ca_file': {'type': 'path'},
    'ca_files': {'type': 'dict', 'default': {}},
    'settings': {'type': 'dict', 'default': {}, 'options': SETTINGS_SPEC, 'apply_defaults': True},
    'dest': {'type': 'path', 'default': '/etc/haproxy/haproxy.cfg'},
    'backup': {'type': 'bool', 'default': False},
    'validate': {'type': 'str', 'default': DEFAULT_VALIDATE},
}


def settings_from_params(params):
    """LbSettings from the module's ``settings`` option ('' in a nullable setting means null)."""
    values = dict(params or {})
    for name in NULLABLE_SETTINGS:
        if values.get(name) == '':
            values[name] = None
    return LbSettings(**values)


def ca_files_from_params(params):
    """{scope: CA file}: ``ca_files`` entries override ``ca_file``."""
    ca_files = dict((scope, params['ca_file']) for scope in params['scopes'])
    for scope, path in (params['ca_files'] or {}).items():
        if scope not in ca_files:
            raise LbPolicyError('ca_files.%s: not one of the scopes (%s)' % (scope, ', '.join(params['scopes'])))
        ca_files[scope] = os.path.expanduser(path) if path else None
    return ca_files


def main():
    module = etcd_module(HAPROXY_CONFIG_SPEC, supports_check_mode=True, add_file_common_args=True)
    params = module.params
    dest = params['dest']
    try:
        settings = settings_from_params(params['settings'])
        ca_files = ca_files_from_params(params)
    except LbPolicyError as exc:
        module.fail_json(msg=str(exc))
    client = connect(module)
    try:
        snapshots = read_snapshots(client, params['namespace'], params['scopes'], ca_files)
    except EtcdError as exc:
        fail_on_etcd_error(module, exc, dest=dest)
    except (LbPolicyError, ValueError) as exc:
        module.fail_json(msg=str(exc), dest=dest)
    finally:
        client.close()
    result = {
        'dest': dest,
        'backends': dict((s.scope, s.backends) for s in snapshots),
        'policies': dict((s.scope, s.policy.to_dict()) for s in snapshots),
    }
    try:
        text = render_haproxy_config([s.lb_cluster() for s in snapshots], settings)
    except LbPolicyError as exc:
        module.fail_json(msg=str(exc), **result)
    result['changed'] = _install(module, dest, text, result)
    module.exit_json(**result)


def _install(module, dest, text, result):
    """Put ``text`` at ``dest`` (validated first; nothing written in check mode); True when it changed."""
    params = module.params
    directory = os.path.dirname(dest) or '.'
    if not os.path.isdir(directory):
        module.fail_json(msg='dest: directory %s does not exist' % directory, **result)
    old = read_text(dest)
    changed = old != text
    if module._diff:
        result['diff'] = {'before': old or '', 'after': text, 'before_header': dest, 'after_header': dest}
    if changed:
        staging = module.tmpdir if module.check_mode else directory
        try:
            staged = stage_config(text, staging, params['validate'])
        except (HaproxyConfigRejected, OSError) as exc:
            module.fail_json(msg='%s; %s left untouched' % (exc, dest), **result)
        if module.check_mode:
            os.unlink(staged)
        else:
            if params['backup'] and old is not None:
                result['backup_file'] = module.backup_local(dest)
            module.atomic_move(staged, dest)
    if not module.check_mode and os.path.exists(dest):
        file_args = module.load_file_common_arguments(params, path=dest)
        changed = module.set_fs_attributes_if_different(file_args, changed)
    return changed
