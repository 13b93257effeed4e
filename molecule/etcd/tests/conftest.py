"""Fixtures of the etcd scenario's tests (run by verify.yml on the controller).

Needs, from the environment (verify.yml passes them): MOLECULE_INVENTORY_FILE,
MOLECULE_EPHEMERAL_DIRECTORY, MOLECULE_SCENARIO_DIRECTORY, and
ANSIBLE_COLLECTIONS_PATH holding ansible_collections/pgha/cluster (the
collection under test, for its etcd client and for ansible-playbook).
"""

import os
import sys

import pytest

# What the scenarios share (molecule/common), then the collection under test.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'common'))
import collection_path  # noqa: E402  pylint: disable=wrong-import-position

collection_path.make_importable()

from etcd_scenario import Scenario, required_env  # noqa: E402  pylint: disable=wrong-import-position

REQUIRED_ENV = ('MOLECULE_INVENTORY_FILE', 'MOLECULE_EPHEMERAL_DIRECTORY', 'MOLECULE_SCENARIO_DIRECTORY')

_REPORT = []

# Cheap checks of the converged cluster first; the etcd playbook's idempotence and output last, after the
# membership changes, so that it also covers what they left behind.
MODULE_ORDER = ['test_cluster_health.py', 'test_tls.py', 'test_rbac.py', 'test_scaling.py', 'test_no_secrets.py']


@pytest.fixture(scope='session')
def scenario():
    return Scenario(*[required_env(name) for name in REQUIRED_ENV])


@pytest.fixture
def report():
    """report(line): a line for the summary at the end of the run (numbers worth keeping)."""
    return _REPORT.append


@pytest.fixture(autouse=True)
def cluster_as_found(scenario):
    """Every test starts from, and must leave, the inventory's members all voting, healthy, one leader.

    When a test leaves something else behind, the membership is put back (best
    effort) so that the following tests and a re-run of verify start clean,
    and the test errors out saying what it left.
    """
    scenario.wait_cluster(scenario.members, timeout=120)
    yield
    problems, _details = scenario.cluster_problems(scenario.members)
    if problems:
        try:
            scenario.wait_cluster(scenario.members, timeout=60)
            return
        except AssertionError:
            pass
        notes = scenario.restore()
        scenario.wait_cluster(scenario.members, timeout=180)
        pytest.fail('the test left the cluster changed (%s); restored: %s'
                    % ('; '.join(problems), '; '.join(notes) or 'etcd started on the members'))


def pytest_collection_modifyitems(items):
    """Order this directory's tests by MODULE_ORDER; skip them outside Molecule. Other tests stay as they are."""
    here = os.path.dirname(os.path.abspath(__file__)) + os.sep
    slots = [i for i, item in enumerate(items) if str(item.fspath).startswith(here)]
    ours = [items[i] for i in slots]

    def rank(item):
        name = item.fspath.basename
        return MODULE_ORDER.index(name) if name in MODULE_ORDER else len(MODULE_ORDER)

    ours.sort(key=rank)  # stable: the order within a file stays
    missing = [name for name in REQUIRED_ENV if not os.environ.get(name)]
    for i, item in zip(slots, ours):
        if missing:
            item.add_marker(pytest.mark.skip(reason='needs the Molecule scenario etcd (%s not set): run '
                                                    '`molecule verify -s etcd`' % ', '.join(missing)))
        items[i] = item


def pytest_terminal_summary(terminalreporter):
    if _REPORT:
        terminalreporter.section('etcd scenario numbers')
        for line in _REPORT:
            terminalreporter.write_line(line)
