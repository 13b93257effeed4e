"""A converged scenario's Scenario object from outside Molecule (the benchmarks): Molecule keeps each scenario's
inventory in ~/.ansible/tmp/molecule.<hash>.<scenario>/ while it exists."""

import glob
import os

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def find_inventory(name):
    """The inventory file of this checkout's scenario ``name`` (Molecule names its directory after a hash of the
    checkout's directory name), else the newest of any checkout; SystemExit saying what to do when there is none."""
    from molecule.text import checksum  # pylint: disable=import-outside-toplevel
    own = os.path.expanduser('~/.ansible/tmp/molecule.%s.%s/inventory/ansible_inventory.yml'
                             % (checksum(os.path.basename(REPO), 4), name))
    if os.path.isfile(own):
        return own
    found = sorted(glob.glob(os.path.expanduser('~/.ansible/tmp/molecule.*.%s/inventory/ansible_inventory.yml'
                                                % name)), key=os.path.getmtime)
    if not found:
        raise SystemExit('no inventory of the Molecule %s scenario found: converge it first (%s)'
                         % (name, 'make demo' if name == 'default' else 'make molecule-converge-%s' % name))
    return found[-1]


def find_scenario(name, inventory=None):
    """The Scenario of the converged scenario ``name`` (default or patroni)."""
    if name == 'default':
        from demo_scenario import Scenario  # pylint: disable=import-outside-toplevel
    elif name == 'patroni':
        from patroni_scenario import Scenario  # pylint: disable=import-outside-toplevel
    else:
        raise ValueError('no Scenario class for scenario %r' % (name,))
    inventory = inventory or find_inventory(name)
    return Scenario(inventory, os.path.dirname(os.path.dirname(inventory)), os.path.join(REPO, 'molecule', name))
