# -*- coding: utf-8 -*-
# Copyright: pgha.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The shared etcd connection options of a controller plugin, as the modules' EtcdClient.

A plugin documents the options with the ``pgha.cluster.etcd.plugin`` doc fragment (the same names, defaults and
environment variables as the modules' argument spec); Ansible's configuration system resolves them, and this
adapter hands them to the one client factory the modules and the load balancer agent use.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.pgha.cluster.plugins.module_utils.etcd_client import client_from_options
from ansible_collections.pgha.cluster.plugins.module_utils.etcd_module import CONNECTION_OPTIONS

# Options whose values may come from a vault: Ansible hands them over as its own string types, which the client
# must not send to etcd as anything but plain text.
_TEXT_OPTIONS = ('username', 'password', 'ca_cert', 'client_cert', 'client_key')


def connection_options(get_option):
    """{option name: value} of the etcd connection options, read with a plugin's ``get_option``."""
    options = {}
    for name in CONNECTION_OPTIONS:
        value = get_option(name)
        if name in _TEXT_OPTIONS and value is not None:
            value = str(value)
        elif name == 'endpoints' and value is not None:
            value = [str(item) for item in value]
        options[name] = value
    return options


def plugin_client(get_option):
    """An EtcdClient from a plugin's options (EtcdConfigError when they are unusable)."""
    return client_from_options(connection_options(get_option))
