# -*- coding: utf-8 -*-
# Copyright: pgha.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""SSLContext for HTTPS clients from CA/client certificate files, with errors that name the option, and
the rules both HTTP clients follow before sending credentials.

Stdlib only: used by the etcd client and the Patroni REST client, on managed
nodes and inside the load balancer sync agent.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import os
import ssl


class TLSConfigError(ValueError):
    """A certificate option that cannot be used; the message names the option and the file."""


def is_loopback(host):
    """Whether ``host`` (a name or an address, IPv6 with or without brackets) stays on this machine."""
    host = (host or '').strip('[]').rstrip('.').lower()
    if host == 'localhost' or host.endswith('.localhost'):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def plain_http_exposes(scheme, host):
    """Whether credentials sent to ``scheme://host`` could be read on the network: plain HTTP to another
    machine. Plain HTTP on the loopback interface (tests, a local development setup) never leaves the host."""
    return scheme == 'http' and not is_loopback(host)


def unverified_tls_warning(what):
    """The warning for validate_certs=false, naming what is not verified."""
    return ('validate_certs is false: the certificates of %s are not verified, so anyone on the network path can '
            'pose as them and read the credentials and data sent to them; use it only on throw-away setups' % what)


def _readable_file(path, option):
    if path is None:
        return None
    path = os.path.expanduser(str(path))
    if not os.path.isfile(path):
        raise TLSConfigError('%s: file %s does not exist' % (option, path))
    if not os.access(path, os.R_OK):
        raise TLSConfigError('%s: file %s is not readable by this user' % (option, path))
    return path


def build_ssl_context(ca_cert=None, client_cert=None, client_key=None, validate_certs=True, option_prefix=''):
    """An SSLContext for the given files; every problem is a TLSConfigError naming the option.

    ``option_prefix`` names the options as the caller's users know them (the
    Patroni REST client's are ``rest_ca_cert`` and so on).
    """
    names = dict((o, option_prefix + o) for o in ('ca_cert', 'client_cert', 'client_key'))
    ca_cert = _readable_file(ca_cert, names['ca_cert'])
    client_cert = _readable_file(client_cert, names['client_cert'])
    client_key = _readable_file(client_key, names['client_key'])
    if client_key and not client_cert:
        raise TLSConfigError('%(client_key)s is set but %(client_cert)s is not: both are needed for a client '
                             'certificate' % names)
    try:
        ctx = ssl.create_default_context(cafile=ca_cert)
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise TLSConfigError('%s: %s does not hold a usable PEM CA certificate (%s)' % (names['ca_cert'], ca_cert, exc))
    if not validate_certs:
        # Only for throw-away setups: without verification anyone on the path can read the password.
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if client_cert:
        try:
            ctx.load_cert_chain(client_cert, client_key)
        except (ssl.SSLError, OSError, ValueError) as exc:
            raise TLSConfigError('%s/%s: cannot load %s%s (%s): the certificate and key must be PEM files that '
                                 'belong together' % (names['client_cert'], names['client_key'], client_cert,
                                                      ' / %s' % client_key if client_key else '', exc))
    return ctx
