"""What the default scenario's tests know about it: the patroni scenario's Scenario with one cluster (group
postgres, scope demo) and its secrets read from the files the scenario generated them into.
"""

import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'patroni', 'tests'))
from patroni_scenario import Cluster, Scenario as PatroniScenario  # noqa: E402  pylint: disable=wrong-import-position

# molecule.yml sets each secret to a password lookup of the file <demo_secrets_dir>/<name>.
_SECRET_FILE = re.compile(r"demo_secrets_dir ~ '/([A-Za-z0-9_]+)'")
LB = 'demo-lb'


class Scenario(PatroniScenario):
    CLUSTER_GROUPS = ('postgres',)
    LB = LB
    LB_PORTS = {'postgres': {'primary': 5000, 'replicas': 5001}}

    def __init__(self, inventory_file, ephemeral_dir, scenario_dir):
        super(Scenario, self).__init__(inventory_file, ephemeral_dir, scenario_dir)
        self.group_vars = dict((name, self._secret(value)) for name, value in self.group_vars.items())
        self.clusters = {'postgres': Cluster(self, 'postgres')}
        self.main = self.clusters['postgres']
        self.members = self.main.members
        self.superuser_password = self.main.superuser_password
        self.restapi_password = self.main.restapi_password

    def _secret(self, value):
        match = _SECRET_FILE.search(value) if isinstance(value, str) and 'lookup(' in value else None
        if match is None:
            return value
        with open(os.path.join(self.group_vars['demo_secrets_dir'], match.group(1)), encoding='utf-8') as handle:
            return handle.read().split()[0]
