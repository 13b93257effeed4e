"""Fixtures of the patroni scenario's tests (run by molecule/common/verify.yml on the controller).

What the scenarios share (the scenario and report fixtures, the order of the test files, the skip outside
Molecule, the summary) is in molecule/common/scenario_conftest.py.
"""

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'common'))
from scenario_conftest import shared_conftest  # noqa: E402  pylint: disable=wrong-import-position
from patroni_scenario import Scenario  # noqa: E402  pylint: disable=wrong-import-position

# Read-only checks first; then what moves the leader, restarts or adds members (check mode right after the
# password test's site run has put the inventory's settings back; adding pg4 late, since the inventory does
# not hold it); removing cluster beta last.
MODULE_ORDER = ['test_topology.py', 'test_tls.py', 'test_switchover.py', 'test_inventory.py', 'test_load_balancer.py',
                'test_config_change.py',
                'test_password_change.py', 'test_no_secrets.py', 'test_service_restart.py',
                'test_scale_out.py', 'test_operations.py']

scenario, report, pytest_collection_modifyitems, pytest_terminal_summary = shared_conftest(
    'patroni', Scenario, MODULE_ORDER, __file__)


@pytest.fixture(autouse=True)
def healthy_cluster(scenario):
    """Every test starts from, and must leave, in each cluster one running primary with every other member
    streaming."""
    scenario.wait_all_healthy(timeout=180)
    yield
    scenario.wait_all_healthy(timeout=180)
