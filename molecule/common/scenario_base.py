"""What every scenario's verify tests need: the scenario's inventory and group_vars as Molecule
wrote them, the containers' addresses, commands in a container, and the collection's playbooks run
as a user runs them.

The controller reaches the containers' addresses on the scenario's Docker network directly;
commands inside a container go through ``docker exec``.
"""

import json
import os
import subprocess
import sys
import time

import yaml

# Running playbooks is shared with the integration tests (tests/lib); BIN_DIR is there for the tests that run
# other Ansible commands.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'tests', 'lib'))
from playbook_run import BIN_DIR, run_playbook  # noqa: E402,F401  pylint: disable=wrong-import-position,unused-import


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

    def docker(self, *args):
        """``docker <args>`` on the controller, its output; a failure raises with docker's message."""
        proc = subprocess.run(['docker'] + list(args), capture_output=True, text=True, timeout=120, check=False)
        if proc.returncode != 0:
            raise RuntimeError('docker %s: %s' % (' '.join(args), proc.stderr.strip()))
        if args[0] == 'start':
            # A restarted container may come back with another address.
            for host in args[1:]:
                self._ips.pop(host, None)
        return proc.stdout.strip()

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
        log_file = os.path.join(self.log_dir, '%s-%s.log' % (label or name, time.strftime('%H%M%S')))
        env = {'ANSIBLE_CONFIG': os.environ.get('ANSIBLE_CONFIG', os.path.join(self.ephemeral_dir, 'ansible.cfg')),
               'ANSIBLE_FORKS': '5'}
        return run_playbook('pgha.cluster.%s' % name, inventory or self.inventory_file, extra_vars=extra_vars,
                            check=check, diff=diff, verbosity=verbosity, env=env, timeout=timeout,
                            workdir=self.ephemeral_dir, log_file=log_file)
