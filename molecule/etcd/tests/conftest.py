"""Fixtures of the etcd scenario's tests (run by molecule/common/verify.yml on the controller).

What the scenarios share (the scenario and report fixtures, the order of the test files, the skip outside
Molecule, the summary) is in molecule/common/scenario_conftest.py.
"""

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'common'))
from scenario_conftest import shared_conftest  # noqa: E402  pylint: disable=wrong-import-position
from etcd_scenario import Scenario  # noqa: E402  pylint: disable=wrong-import-position

# Cheap checks of the converged cluster first; the etcd playbook's idempotence and output last, after the
# membership changes, so that it also covers what they left behind.
MODULE_ORDER = ['test_cluster_health.py', 'test_tls.py', 'test_rbac.py', 'test_rolling_restart.py', 'test_scaling.py',
                'test_no_secrets.py']

scenario, report, pytest_collection_modifyitems, pytest_terminal_summary = shared_conftest(
    'etcd', Scenario, MODULE_ORDER, __file__)


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
