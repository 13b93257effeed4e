# -*- coding: utf-8 -*-
# Copyright: pgha.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # Which Patroni cluster a module works on. The options must match
    # PATRONI_CLUSTER_SPEC in plugins/module_utils/patroni_module.py (a unit
    # test compares the two).
    DOCUMENTATION = r'''
options:
  scope:
    description:
      - Name of the Patroni cluster (Patroni's C(scope) setting).
      - A name without C(/).
    type: str
    required: true
  namespace:
    description:
      - Patroni's C(namespace) setting, the etcd key prefix above the scope.
      - The cluster's keys are under C(/<namespace>/<scope>/).
    type: str
    default: /service
'''

    # Every Patroni module is in the pgha.cluster.patroni action group (meta/runtime.yml).
    ACTIONGROUP = r'''
attributes:
  action_group:
    description: Use C(group/pgha.cluster.patroni) in C(module_defaults) to set the etcd connection, the cluster
      (O(scope), O(namespace)) and the REST API options once for every Patroni module.
    support: full
    membership:
      - pgha.cluster.patroni
'''
