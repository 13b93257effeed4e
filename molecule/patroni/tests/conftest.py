"""Fixtures of the patroni scenario's tests (run by molecule/common/verify.yml on the controller).

Needs, from the environment (verify.yml passes them): MOLECULE_INVENTORY_FILE,
MOLECULE_EPHEMERAL_DIRECTORY, MOLECULE_SCENARIO_DIRECTORY, and
ANSIBLE_COLLECTIONS_PATH holding ansible_collections/pgha/cluster.
"""

import os
import sys

import pytest

# What the scenarios share (molecule/common), then the collection under test.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'common'))
import collection_path  # noqa: E402  pylint: disable=wrong-import-position

collection_path.make_importable()

from patroni_scenario import Scenario  # noqa: E402  pylint: disable=wrong-import-position
from scenario_base import required_env  # noqa: E402  pylint: disable=wrong-import-position

REQUIRED_ENV = ('MOLECULE_INVENTORY_FILE', 'MOLECULE_EPHEMERAL_DIRECTORY', 'MOLECULE_SCENARIO_DIRECTORY')

_REPORT = []

# Read-only checks first; then what moves the leader, restarts or adds members; the playbook's output last.
MODULE_ORDER = ['test_topology.py', 'test_tls.py', 'test_switchover.py', 'test_config_change.py',
                'test_password_change.py', 'test_service_restart.py', 'test_scale_out.py', 'test_no_secrets.py']


@pytest.fixture(scope='session')
def scenario():
    return Scenario(*[required_env(name) for name in REQUIRED_ENV])


@pytest.fixture
def report():
    """report(line): a line for the summary at the end of the run (numbers worth keeping)."""
    return _REPORT.append


@pytest.fixture(autouse=True)
def healthy_cluster(scenario):
    """Every test starts from, and must leave, one running primary with every other member streaming."""
    scenario.wait_healthy(timeout=180)
    yield
    scenario.wait_healthy(timeout=180)


def pytest_collection_modifyitems(items):
    """Order this directory's tests by MODULE_ORDER; skip them outside Molecule."""
    here = os.path.dirname(os.path.abspath(__file__)) + os.sep
    slots = [i for i, item in enumerate(items) if str(item.fspath).startswith(here)]
    ours = [items[i] for i in slots]

    def rank(item):
        name = item.fspath.basename
        return MODULE_ORDER.index(name) if name in MODULE_ORDER else len(MODULE_ORDER)

    ours.sort(key=rank)
    missing = [name for name in REQUIRED_ENV if not os.environ.get(name)]
    for i, item in zip(slots, ours):
        if missing:
            item.add_marker(pytest.mark.skip(reason='needs the Molecule scenario patroni (%s not set): run '
                                                    '`molecule verify -s patroni`' % ', '.join(missing)))
        items[i] = item


def pytest_terminal_summary(terminalreporter):
    if _REPORT:
        terminalreporter.section('patroni scenario numbers')
        for line in _REPORT:
            terminalreporter.write_line(line)
