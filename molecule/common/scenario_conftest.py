"""What every scenario's tests/conftest.py shares; the conftest declares only what differs.

verify.yml runs pytest on a scenario's tests/ directory with, in the
environment, REQUIRED_ENV and ANSIBLE_COLLECTIONS_PATH holding
ansible_collections/pgha/cluster (the collection under test, for its modules'
code and for ansible-playbook). Importing this module makes that collection
importable (collection_path), so a conftest imports its Scenario class after it::

    sys.path.insert(0, <molecule/common>)
    from scenario_conftest import shared_conftest
    from etcd_scenario import Scenario

    scenario, report, pytest_collection_modifyitems, pytest_terminal_summary = shared_conftest(
        'etcd', Scenario, MODULE_ORDER, __file__)

Outside Molecule the tests are collected and skipped, saying why.
"""

import collections
import os

import pytest

import collection_path

collection_path.make_importable()

REQUIRED_ENV = ('MOLECULE_INVENTORY_FILE', 'MOLECULE_EPHEMERAL_DIRECTORY', 'MOLECULE_SCENARIO_DIRECTORY')

SharedConftest = collections.namedtuple(
    'SharedConftest', ['scenario', 'report', 'pytest_collection_modifyitems', 'pytest_terminal_summary'])


def _required_env(name, scenario_name):
    value = os.environ.get(name)
    if not value:
        raise RuntimeError('%s is not set: run these tests through `molecule verify -s %s` (verify.yml passes it)'
                           % (name, scenario_name))
    return value


def shared_conftest(name, scenario_class, module_order, conftest_file):
    """The fixtures and hooks of scenario ``name``, for its conftest.py (``conftest_file``) to bind to the same names
    (a SharedConftest: unpack it into those names).

    scenario                       session fixture: ``scenario_class`` built from REQUIRED_ENV
    report                         fixture: report(line) adds a line to the summary at the end of the run
    pytest_collection_modifyitems  runs the conftest's directory's test files in ``module_order`` (files not
                                   listed last, the tests of a file in their order); skips them outside Molecule
    pytest_terminal_summary        prints the reported lines
    """
    tests_dir = os.path.dirname(os.path.abspath(conftest_file)) + os.sep
    module_order = list(module_order)
    lines = []

    @pytest.fixture(scope='session')
    def scenario():
        return scenario_class(*[_required_env(env_name, name) for env_name in REQUIRED_ENV])

    @pytest.fixture
    def report():
        return lines.append

    def rank(item):
        basename = item.fspath.basename
        return module_order.index(basename) if basename in module_order else len(module_order)

    def pytest_collection_modifyitems(items):
        # Other directories' tests keep their places and marks.
        slots = [i for i, item in enumerate(items) if str(item.fspath).startswith(tests_dir)]
        ours = sorted((items[i] for i in slots), key=rank)  # stable: the order within a file stays
        missing = [env_name for env_name in REQUIRED_ENV if not os.environ.get(env_name)]
        for i, item in zip(slots, ours):
            if missing:
                item.add_marker(pytest.mark.skip(reason='needs the Molecule scenario %s (%s not set): run '
                                                        '`molecule verify -s %s`' % (name, ', '.join(missing), name)))
            items[i] = item

    def pytest_terminal_summary(terminalreporter):
        if lines:
            terminalreporter.section('%s scenario numbers' % name)
            for line in lines:
                terminalreporter.write_line(line)

    return SharedConftest(scenario, report, pytest_collection_modifyitems, pytest_terminal_summary)
