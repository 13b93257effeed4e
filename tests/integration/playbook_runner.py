"""Run ansible-playbook from the tests as a user would, against this checkout of pgha.cluster (on localhost
unless an inventory says otherwise)."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'lib'))
import playbook_run  # noqa: E402  pylint: disable=wrong-import-position

# The plays run on this machine with the venv's Python; Ansible's warnings about an implicit localhost and
# inventories given as a host list would only add noise to the output the tests read.
LOCAL_ENV = {
    'ANSIBLE_HOST_KEY_CHECKING': 'False',
    'ANSIBLE_LOCALHOST_WARNING': 'False',
    'ANSIBLE_INVENTORY_UNPARSED_WARNING': 'False',
    'ANSIBLE_PYTHON_INTERPRETER': sys.executable,
}


def run_playbook(playbook, inventory='localhost,', extra_vars=None, check=False, diff=False, verbosity=0,
                 env=None, timeout=600, workdir=None, args=()):
    """Run ``playbook`` (a path, or a list of plays that is written to a temp file); returns a PlaybookRun."""
    full_env = dict(LOCAL_ENV)
    full_env.update(env or {})
    return playbook_run.run_playbook(playbook, inventory, extra_vars=extra_vars, check=check, diff=diff,
                                     verbosity=verbosity, env=full_env, timeout=timeout, workdir=workdir,
                                     args=args)
