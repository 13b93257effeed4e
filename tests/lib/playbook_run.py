"""ansible-playbook run from the tests as a user runs it, and what the tests read from its output.

The integration tests (tests/integration/playbook_runner.py) and the Molecule
scenarios' tests (molecule/common/scenario_base.py) both run playbooks through
``run_playbook``; each adds the environment its own targets need.
"""

import os
import re
import subprocess
import sys
import tempfile
import time

import yaml

# The venv's bin directory: its ansible-playbook, and the tools the playbooks run on the controller.
BIN_DIR = os.path.dirname(sys.executable)

_RECAP = re.compile(r'^(?P<host>\S+)\s*:\s*ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)'
                    r'\s+failed=(?P<failed>\d+)\s+skipped=(?P<skipped>\d+)', re.M)

# The tests read the recap and the task lines: no colour codes in them, and no .retry files left behind.
_PLAIN_OUTPUT_ENV = {
    'ANSIBLE_NOCOLOR': '1',
    'ANSIBLE_FORCE_COLOR': '0',
    'ANSIBLE_RETRY_FILES_ENABLED': 'False',
}


class PlaybookRun(object):
    """The outcome of one ansible-playbook run: rc, its output, and the recap per host."""

    def __init__(self, cmd, proc, seconds, log_file=None):
        self.cmd = cmd
        self.rc = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.seconds = seconds
        self.log_file = log_file
        self.recap = {m.group('host'): {k: int(v) for k, v in m.groupdict().items() if k != 'host'}
                      for m in _RECAP.finditer(proc.stdout)}

    @property
    def output(self):
        return self.stdout + self.stderr

    def changed(self, host='localhost'):
        return self.recap[host]['changed']

    def tail(self, lines=60):
        """The end of the output, for assertion messages (the whole of it is in log_file, when there is one)."""
        where = ', full output in %s' % self.log_file if self.log_file else ''
        return 'ansible-playbook rc=%s after %.0fs%s; last lines:\n%s' % (
            self.rc, self.seconds, where, '\n'.join(self.output.splitlines()[-lines:]))

    def __repr__(self):
        return '<PlaybookRun rc=%d recap=%r>' % (self.rc, self.recap)


def run_playbook(playbook, inventory, extra_vars=None, check=False, diff=False, verbosity=0, env=None,
                 timeout=600, workdir=None, args=(), log_file=None):
    """Run ``playbook`` (a path or name, or a list of plays written to a file) in ``workdir``; returns PlaybookRun.

    ``workdir`` (a new temporary directory when not given) is the working
    directory and holds the files written for the run. Extra vars go in a file
    there rather than on the command line, where the process list would show
    passwords. ``env`` is added to the caller's environment; ``log_file``, when
    given, receives the command line and the whole output.
    """
    workdir = workdir or tempfile.mkdtemp(prefix='pgha-play-')
    if not isinstance(playbook, str):
        path = os.path.join(workdir, 'playbook.yml')
        with open(path, 'w') as handle:
            yaml.safe_dump(playbook, handle, sort_keys=False)
        playbook = path
    cmd = [os.path.join(BIN_DIR, 'ansible-playbook'), '-i', inventory, playbook]
    if extra_vars:
        fd, vars_file = tempfile.mkstemp(prefix='extra-vars-', suffix='.yml', dir=workdir)
        with os.fdopen(fd, 'w') as handle:
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
    full_env.update(_PLAIN_OUTPUT_ENV)
    full_env['PATH'] = BIN_DIR + os.pathsep + os.environ.get('PATH', '')
    full_env.update(env or {})
    started = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=full_env, timeout=timeout, cwd=workdir,
                          stdin=subprocess.DEVNULL, check=False)
    seconds = time.monotonic() - started
    if log_file:
        with open(log_file, 'w') as handle:
            handle.write('$ %s\n\n%s' % (' '.join(cmd), proc.stdout + proc.stderr))
    return PlaybookRun(cmd, proc, seconds, log_file)
