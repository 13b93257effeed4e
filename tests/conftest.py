"""Make the collection importable as ``ansible_collections.pgha.cluster`` from a checkout.

The repository is the collection root; Ansible resolves collection code only
under an ``ansible_collections/<namespace>/<name>`` path, so a temporary tree
with that shape points back at the checkout.
"""

import atexit
import os
import shutil
import sys
import tempfile

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _collection_path():
    root = tempfile.mkdtemp(prefix='pgha-collections-')
    atexit.register(shutil.rmtree, root, True)
    ns = os.path.join(root, 'ansible_collections', 'pgha')
    os.makedirs(ns)
    os.symlink(REPO_ROOT, os.path.join(ns, 'cluster'))
    return root


if 'ansible_collections.pgha.cluster' not in sys.modules:
    COLLECTIONS_ROOT = _collection_path()
    sys.path.insert(0, COLLECTIONS_ROOT)
    # ansible-playbook / ansible-doc run by the tests find pgha.cluster here
    # (collections shipped in the venv's site-packages are found as well).
    os.environ['ANSIBLE_COLLECTIONS_PATH'] = COLLECTIONS_ROOT
