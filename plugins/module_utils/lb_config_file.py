# -*- coding: utf-8 -*-
# Copyright: pgha.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A new haproxy.cfg is checked by HAProxy before it replaces the old one.

:func:`stage_config` writes the text to a temporary file in the destination's
directory (so that the final rename is atomic) and runs the validate command
on it (``haproxy -c -f %s``); a file HAProxy rejects is removed and
:class:`HaproxyConfigRejected` carries HAProxy's own alerts. The module moves
the staged file with AnsibleModule.atomic_move, the agent with
:func:`replace_config`.

Stdlib only, no Ansible import.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import shlex
import shutil
import subprocess
import tempfile

DEFAULT_VALIDATE = 'haproxy -c -f %s'
# HAProxy lives in sbin, which an unprivileged PATH often lacks.
_EXTRA_PATH = ('/usr/local/sbin', '/usr/sbin', '/sbin')
_OUTPUT_LIMIT = 2000


class HaproxyConfigRejected(Exception):
    """The validate command refused the configuration (or could not run)."""


def validate_argv(command, path):
    """The validate command as argv, ``%s`` replaced by ``path`` (exactly one ``%s`` is required)."""
    words = shlex.split(command or '')
    if not words or sum(word.count('%s') for word in words) != 1:
        raise HaproxyConfigRejected('validate: %r must be a command with exactly one %%s (the file to check)'
                                    % (command,))
    argv = [word.replace('%s', path) for word in words]
    search = os.pathsep.join([os.environ.get('PATH', '')] + list(_EXTRA_PATH))
    found = shutil.which(argv[0], path=search)
    if found is None:
        raise HaproxyConfigRejected('validate: cannot run %s: not found (is HAProxy installed?)' % argv[0])
    argv[0] = found
    return argv


def run_validate(command, path, timeout=60):
    """Run the validate command on ``path``; HaproxyConfigRejected with its output when it fails."""
    argv = validate_argv(command, path)
    try:
        done = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        raise HaproxyConfigRejected('validate: %s failed to run: %s' % (' '.join(argv), exc))
    if done.returncode != 0:
        output = done.stdout.decode('utf-8', 'replace')
        alerts = [line.strip() for line in output.splitlines() if 'ALERT' in line] or output.strip().splitlines()
        raise HaproxyConfigRejected('HAProxy rejected the new configuration (%s exited %d): %s' % (
            ' '.join(argv), done.returncode, ' | '.join(alerts)[:_OUTPUT_LIMIT]))


def stage_config(text, directory, validate=DEFAULT_VALIDATE, mode=0o640):
    """A validated temporary file holding ``text`` in ``directory``; the caller moves or removes it."""
    handle, path = tempfile.mkstemp(prefix='.haproxy.cfg.', suffix='.tmp', dir=directory)
    try:
        with os.fdopen(handle, 'wb') as out:
            out.write(text.encode('utf-8'))
        os.chmod(path, mode)
        if validate:
            run_validate(validate, path)
    except BaseException:
        os.unlink(path)
        raise
    return path


def read_text(path):
    """The file's text, or None when it does not exist."""
    try:
        with open(path, 'rb') as handle:
            return handle.read().decode('utf-8', 'replace')
    except FileNotFoundError:
        return None


def replace_config(path, text, validate=DEFAULT_VALIDATE):
    """Validate ``text`` and atomically make it the content of ``path`` (keeping the file's mode).

    Returns False when the file already held exactly ``text``.
    """
    if read_text(path) == text:
        return False
    try:
        mode = os.stat(path).st_mode & 0o7777
    except FileNotFoundError:
        mode = 0o640
    staged = stage_config(text, os.path.dirname(os.path.abspath(path)), validate, mode)
    try:
        os.replace(staged, path)
    except OSError:
        os.unlink(staged)
        raise
    return True
