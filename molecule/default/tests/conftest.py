"""Fixtures of the default scenario's tests: the whole stack as `make demo` runs it, verified through the load
balancer (run by molecule/common/verify.yml on the controller).

What the scenarios share is in molecule/common/scenario_conftest.py.
"""

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'common'))
from scenario_conftest import shared_conftest  # noqa: E402  pylint: disable=wrong-import-position
from demo_scenario import Scenario  # noqa: E402  pylint: disable=wrong-import-position

MODULE_ORDER = ['test_stack.py', 'test_failures.py']

scenario, report, pytest_collection_modifyitems, pytest_terminal_summary = shared_conftest(
    'default', Scenario, MODULE_ORDER, __file__)


@pytest.fixture(autouse=True)
def healthy_cluster(scenario):
    """Every test starts from, and leaves, one running primary with the other members streaming."""
    scenario.wait_all_healthy(timeout=180)
    yield
    scenario.wait_all_healthy(timeout=180)
