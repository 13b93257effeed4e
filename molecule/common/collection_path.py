"""Makes the collection under test importable as ``ansible_collections.pgha.cluster`` in a scenario's tests."""

import atexit
import os
import shutil
import sys
import tempfile

CHECKOUT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))


def make_importable():
    """Use the collection Molecule was given (ANSIBLE_COLLECTIONS_PATH), else this checkout.

    Outside Molecule a temporary collection tree points at the checkout, and
    ANSIBLE_COLLECTIONS_PATH is extended so that ansible-playbook finds it too.
    """
    for path in os.environ.get('ANSIBLE_COLLECTIONS_PATH', '').split(os.pathsep):
        if path and os.path.isdir(os.path.join(path, 'ansible_collections', 'pgha', 'cluster')):
            sys.path.insert(0, path)
            return
    root = tempfile.mkdtemp(prefix='pgha-collections-')
    atexit.register(shutil.rmtree, root, True)
    os.makedirs(os.path.join(root, 'ansible_collections', 'pgha'))
    os.symlink(CHECKOUT, os.path.join(root, 'ansible_collections', 'pgha', 'cluster'))
    sys.path.insert(0, root)
    os.environ['ANSIBLE_COLLECTIONS_PATH'] = os.pathsep.join(
        p for p in (root, os.environ.get('ANSIBLE_COLLECTIONS_PATH')) if p)
