# -*- coding: utf-8 -*-
# Copyright: pgha.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the pki role derives from facts and settings. Each filter is documented in the YAML file of its name here."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
from collections.abc import Mapping

from ansible.errors import AnsibleFilterError
from ansible_collections.pgha.cluster.plugins.plugin_utils.jinja_order import sort, unique

# DNS names never contain a colon, IPv6 addresses always do.
_BARE_IP = re.compile(r'^[0-9]{1,3}(\.[0-9]{1,3}){3}$|:')
_TYPED = re.compile(r'^(DNS|IP):')
# Link-local addresses need a zone index, which a certificate cannot carry.
_UNUSABLE_IPV6_SCOPES = ('link', 'host')


def _list(value, filter_name, what):
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise AnsibleFilterError('%s expects %s as a list, got %r' % (filter_name, what, value))
    return value


def _names(value, filter_name):
    names = _list(value, filter_name, 'the client certificate names')
    bad = [n for n in names if not isinstance(n, str) or not n]
    if bad:
        raise AnsibleFilterError('%s expects names as non-empty strings, got %r' % (filter_name, bad))
    return names


def pki_interface_addresses(facts, exclude_interfaces=()):
    """Every IPv4 address (secondaries too) and every IPv6 address except link- and host-scoped ones of the
    interfaces in ``facts`` whose name matches none of the regular expressions ``exclude_interfaces``."""
    if not isinstance(facts, Mapping):
        raise AnsibleFilterError('pki_interface_addresses expects ansible_facts as a mapping, got %r' % (facts,))
    try:
        excluded = [re.compile(p) for p in _list(exclude_interfaces, 'pki_interface_addresses', 'exclude_interfaces')]
    except (re.error, TypeError) as exc:
        raise AnsibleFilterError('pki_interface_addresses: bad interface pattern in %r: %s' % (exclude_interfaces, exc))
    found = []
    for iface in facts.get('interfaces') or []:
        if any(p.search(iface) for p in excluded):
            continue
        info = facts.get(iface.replace('-', '_')) or {}
        try:
            if 'ipv4' in info:
                found.append(info['ipv4']['address'])
            found.extend(a['address'] for a in info.get('ipv4_secondaries') or [])
            found.extend(a['address'] for a in info.get('ipv6') or []
                         if a.get('scope', 'global') not in _UNUSABLE_IPV6_SCOPES)
        except (KeyError, TypeError, AttributeError):
            raise AnsibleFilterError('pki_interface_addresses: the facts of interface %s hold an address entry '
                                     'without an address: %r' % (iface, info))
    return found


def pki_subject_alt_names(candidates):
    """Names and addresses as typed subject alternative names, without duplicates, sorted.

    Entries already written ``DNS:...``/``IP:...`` are kept; a bare entry is an IP address when it is a dotted
    quad or holds a colon, else a DNS name. Empty entries are left out.
    """
    candidates = _list(candidates, 'pki_subject_alt_names', 'the names and addresses')
    bad = [c for c in candidates if not isinstance(c, str)]
    if bad:
        raise AnsibleFilterError('pki_subject_alt_names expects strings, got %r' % (bad,))
    typed = [c for c in candidates if _TYPED.match(c)]
    bare = [c for c in candidates if c and not _TYPED.match(c)]
    sans = (typed + ['IP:' + b for b in bare if _BARE_IP.search(b)]
            + ['DNS:' + b for b in bare if not _BARE_IP.search(b)])
    return sort(unique(sans))


# What each kind of certificate is good for. A server certificate is a client
# certificate as well only on an etcd member: etcd 3.4's JSON gateway dials the
# member's own gRPC port presenting it. Everywhere else a clientAuth usage would
# let the certificate log in to etcd as the user named by its CommonName.
_SERVER_USAGES = ['serverAuth']
_MEMBER_SERVER_USAGES = ['serverAuth', 'clientAuth']
# A peer certificate is presented both ways between members.
_PEER_USAGES = ['serverAuth', 'clientAuth']
_CLIENT_USAGES = ['clientAuth']
PEER_FILE = 'etcd-peer'


def pki_certificates(hostname, client_names, etcd_member=False):
    """The certificates of a host: its server certificate, on an etcd member its peer certificate (signed by the
    etcd peer CA), then one client certificate per name.

    ``file`` is the base name of the .crt/.key pair; ``ca`` the CA that signs it (``main`` or ``etcd_peer``).
    """
    if not isinstance(hostname, str) or not hostname:
        raise AnsibleFilterError('pki_certificates expects the host name as a non-empty string, got %r' % (hostname,))
    if not isinstance(etcd_member, bool):
        raise AnsibleFilterError('pki_certificates expects etcd_member as a boolean, got %r' % (etcd_member,))
    certs = [{'file': hostname, 'name': hostname, 'ca': 'main', 'common_name': hostname,
              'organizational_unit': None, 'subject_alt_names': True,
              'extended_key_usage': list(_MEMBER_SERVER_USAGES if etcd_member else _SERVER_USAGES)}]
    if etcd_member:
        certs.append({'file': PEER_FILE, 'name': hostname, 'ca': 'etcd_peer', 'common_name': hostname,
                      'organizational_unit': None, 'subject_alt_names': True,
                      'extended_key_usage': list(_PEER_USAGES)})
    return certs + [{'file': 'client-' + n, 'name': n, 'ca': 'main', 'common_name': None,
                     'organizational_unit': n, 'subject_alt_names': False,
                     'extended_key_usage': list(_CLIENT_USAGES)}
                    for n in _names(client_names, 'pki_certificates')]


def pki_client_files(client_names, pki_dir):
    """Where each client certificate and its key are on the host: ``{name: {cert, key}}``."""
    return {n: {'cert': '%s/client-%s.crt' % (pki_dir, n), 'key': '%s/client-%s.key' % (pki_dir, n)}
            for n in _names(client_names, 'pki_client_files')}


def dirs_containing(dirs, path):
    """Those of ``dirs`` that are ``path`` or one of its parents (all absolute, resolved paths)."""
    dirs = _list(dirs, 'dirs_containing', 'the directories')
    if not isinstance(path, str):
        raise AnsibleFilterError('dirs_containing expects the path as a string, got %r' % (path,))
    return [d for d in dirs if (path + '/').startswith(d.rstrip('/') + '/')]


class FilterModule(object):

    def filters(self):
        return {
            'pki_interface_addresses': pki_interface_addresses,
            'pki_subject_alt_names': pki_subject_alt_names,
            'pki_certificates': pki_certificates,
            'pki_client_files': pki_client_files,
            'dirs_containing': dirs_containing,
        }
