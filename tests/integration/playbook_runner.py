"""Run ansible-playbook from the tests as a user would, against this checkout of pgha.cluster."""

import os
import re
import subprocess
import sys
import tempfile

import yaml

BIN_DIR = os.path.dirname(sys.executable)

_RECAP = re.compile(r'^(?P<host>\S+)\s*:\s*ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)'
                    r'\s+failed=(?P<failed>\d+)\s+skipped=(?P<skipped>\d+)', re.M)


class PlaybookRun(object):
    def __init__(self, proc):
        self.rc = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.recap = {m.group('host'): {k: int(v) for k, v in m.groupdict().items() if k != 'host'}
                      for m in _RECAP.finditer(proc.stdout)}

    @property
    def output(self):
        return self.stdout + self.stderr

    def changed(self, host='localhost'):
        return self.recap[host]['changed']

    def __repr__(self):
        return '<PlaybookRun rc=%d recap=%r>' % (self.rc, self.recap)


def run_playbook(playbook, inventory='localhost,', extra_vars=None, check=False, diff=False, verbosity=0,
                 env=None, timeout=600, workdir=None, args=()):
    """Run ``playbook`` (a path, or a list of plays that is written to a temp file); returns PlaybookRun."""
    workdir = workdir or tempfile.mkdtemp(prefix='pgha-play-')
    if not isinstance(playbook, str):
        path = os.path.join(workdir, 'playbook.yml')
        with open(path, 'w') as handle:
            yaml.safe_dump(playbook, handle, sort_keys=False)
        playbook = path
    cmd = [os.path.join(BIN_DIR, 'ansible-playbook'), '-i', inventory, playbook]
    if extra_vars:
        vars_file = os.path.join(workdir, 'extra_vars.yml')
        with open(vars_file, 'w') as handle:
            yaml.safe_dump(extra_vars, handle)
        cmd += ['-e', '@' + vars_file]
    if check:
        cmd.append('--check')
    if diff:
        cmd.append('--diff')
    if verbosity:
        cmd.append('-' + 'v' * verbosity)
    cmd += list(args)
    full_env = dict(os.environ)
    full_env.update({
        'ANSIBLE_NOCOLOR': '1',
        'ANSIBLE_FORCE_COLOR': '0',
        'ANSIBLE_HOST_KEY_CHECKING': 'False',
        'ANSIBLE_RETRY_FILES_ENABLED': 'False',
        'ANSIBLE_LOCALHOST_WARNING': 'False',
        'ANSIBLE_INVENTORY_UNPARSED_WARNING': 'False',
        'ANSIBLE_PYTHON_INTERPRETER': sys.executable,
        'PATH': BIN_DIR + os.pathsep + os.environ.get('PATH', ''),
    })
    full_env.update(env or {})
    proc = subprocess.run(cmd, capture_output=True, text=True, env=full_env, timeout=timeout, cwd=workdir,
                          stdin=subprocess.DEVNULL, check=False)
    return PlaybookRun(proc)
