# -*- coding: utf-8 -*-
# Copyright: pgha.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Addresses and URLs of inventory hosts. Each filter is documented in the YAML file of its name here."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError
from ansible_collections.pgha.cluster.plugins.plugin_utils.hostvars import (
    NOT_SET, check_hosts, default_ipv4_address, first_set, vars_of)


def url_host(address):
    """``address`` as the host part of a URL: an IPv6 address in brackets, anything else as it is."""
    if not isinstance(address, str):
        raise AnsibleFilterError('url_host expects an address or host name as a string, got %r' % (address,))
    return '[%s]' % address if ':' in address else address


def host_addresses(hosts, hostvars, variables):
    """Each host's address: the first of ``variables`` it sets, else its default IPv4 address, else ''."""
    check_hosts(hosts, 'host_addresses')
    result = []
    for host in hosts:
        host_vars = vars_of(hostvars, host)
        address = first_set(host_vars, variables)
        result.append(default_ipv4_address(host_vars) if address is NOT_SET else address)
    return result


def etcd_client_urls(hosts, hostvars, port):
    """Each etcd host's client URL: the one the etcd role published, else https://<address>:<port>.

    The address is ``etcd_address``, else the default IPv4 address, else the inventory name.
    """
    check_hosts(hosts, 'etcd_client_urls')
    urls = []
    for host in hosts:
        host_vars = vars_of(hostvars, host)
        url = first_set(host_vars, ['etcd_client_url'])
        if url is NOT_SET:
            address = first_set(host_vars, ['etcd_address'])
            if address is NOT_SET:
                address = default_ipv4_address(host_vars, host)
            url = 'https://%s:%s' % (url_host(address), port)
        urls.append(url)
    return urls


class FilterModule(object):

    def filters(self):
        return {
            'url_host': url_host,
            'host_addresses': host_addresses,
            'etcd_client_urls': etcd_client_urls,
        }
