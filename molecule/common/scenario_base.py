"""What every scenario's verify tests need: the scenario's inventory and group_vars as Molecule
wrote them, the containers' addresses, commands in a container, and the collection's playbooks run
as a user runs them.

The controller reaches the containers' addresses on the scenario's Docker network directly;
commands inside a container go through ``docker exec``.
"""

import json
import os
import re
import subprocess
import sys
import time

import yaml

BIN_DIR = os.path.dirname(sys.executable)

_RECAP = re.compile(r'^(?P<host>\S+)\s*:\s*ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)'
                    r'\s+failed=(?P<failed>\d+)\s+skipped=(?P<skipped>\d+)', re.M)


def required_env(name):
    value = os.environ.get(name)
    if not value:
        raise RuntimeError('%s is not set: run these tests through `molecule verify -s etcd` (verify.yml passes it)'
                           % name)
    return value


class PlaybookRun(object):
    """The outcome of one ansible-playbook run: rc, the combined output, and the recap per host."""

    def __init__(self, cmd, proc, seconds, log_file):
        self.cmd = cmd
        self.rc = proc.returncode
        self.output = proc.stdout + proc.stderr
        self.seconds = seconds
        self.log_file = log_file
        self.recap = {m.group('host'): {k: int(v) for k, v in m.groupdict().items() if k != 'host'}
                      for m in _RECAP.finditer(proc.stdout)}

    def tail(self, lines=60):
        """The end of the output, for assertion messages (the whole of it is in log_file)."""
        return 'ansible-playbook rc=%s after %.0fs, full output in %s; last lines:\n%s' % (
            self.rc, self.seconds, self.log_file, '\n'.join(self.output.splitlines()[-lines:]))


class ScenarioBase(object):
    def __init__(self, inventory_file, ephemeral_dir, scenario_dir):
        self.inventory_file = inventory_file
        self.ephemeral_dir = ephemeral_dir
        self.scenario_dir = scenario_dir
        self.log_dir = os.path.join(ephemeral_dir, 'verify-logs')
        os.makedirs(self.log_dir, exist_ok=True)
        with open(inventory_file) as handle:
            self.inventory = yaml.safe_load(handle)
        self.host_vars = {name: dict(hostvars or {}) for name, hostvars in self.inventory['all']['hosts'].items()}
        self.group_vars_file = self._find_group_vars(os.path.dirname(inventory_file))
        with open(self.group_vars_file) as handle:
            self.group_vars = yaml.safe_load(handle)
        self._ips = {}

    def group(self, name):
        """Sorted host names of inventory group ``name``."""
        return sorted((self.inventory.get(name) or {}).get('hosts') or {})

    @staticmethod
    def _find_group_vars(inventory_dir):
        for name in ('all', 'all.yml', 'all.yaml'):
            path = os.path.join(inventory_dir, 'group_vars', name)
            if os.path.isfile(path):
                return path
        raise RuntimeError('no group_vars/all next to the inventory in %s' % inventory_dir)

    def ip(self, host):
        if host not in self._ips:
            out = subprocess.run(['docker', 'inspect', '-f', '{{json .NetworkSettings.Networks}}', host],
                                 capture_output=True, text=True, check=True, timeout=60).stdout
            networks = json.loads(out)
            addresses = [n['IPAddress'] for n in networks.values() if n.get('IPAddress')]
            assert len(addresses) == 1, 'container %s: expected one network address, found %s' % (host, networks)
            self._ips[host] = addresses[0]
        return self._ips[host]

    def docker_exec(self, container, args, env=None, timeout=120):
        """Run ``args`` in ``container``; ``env`` values reach it through docker's environment, not its command line."""
        cmd = ['docker', 'exec']
        for name in sorted(env or {}):
            cmd += ['-e', name]
        full_env = dict(os.environ)
        full_env.update(env or {})
        return subprocess.run(cmd + [container] + list(args), capture_output=True, text=True, env=full_env,
                              timeout=timeout, check=False)

    def playbook(self, name, inventory=None, extra_vars=None, verbosity=0, diff=False, timeout=1200, label=None,
                 check=False):
        """ansible-playbook of the collection's playbook pgha.cluster.<name>, as a user runs it."""
        cmd = [os.path.join(BIN_DIR, 'ansible-playbook'), '-i', inventory or self.inventory_file,
               'pgha.cluster.%s' % name]
        if extra_vars:
            cmd += ['-e', json.dumps(extra_vars)]
        if diff:
            cmd.append('--diff')
        if check:
            cmd.append('--check')
        if verbosity:
            cmd.append('-' + 'v' * verbosity)
        env = dict(os.environ)
        env.setdefault('ANSIBLE_CONFIG', os.path.join(self.ephemeral_dir, 'ansible.cfg'))
        env.update({'ANSIBLE_NOCOLOR': '1', 'ANSIBLE_FORCE_COLOR': '0', 'ANSIBLE_FORKS': '5',
                    'ANSIBLE_RETRY_FILES_ENABLED': 'False',
                    'PATH': BIN_DIR + os.pathsep + env.get('PATH', '')})
        started = time.monotonic()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout, check=False,
                              stdin=subprocess.DEVNULL, cwd=self.ephemeral_dir)
        seconds = time.monotonic() - started
        log_file = os.path.join(self.log_dir, '%s-%s.log' % (label or name, time.strftime('%H%M%S')))
        with open(log_file, 'w') as handle:
            handle.write('$ %s\n\n%s' % (' '.join(cmd), proc.stdout + proc.stderr))
        return PlaybookRun(cmd, proc, seconds, log_file)
