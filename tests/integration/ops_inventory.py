"""What the tests of the operational playbooks (status, remove_cluster) share.

- :func:`add_cluster_users`: a Patroni cluster's etcd users and roles, ``patroni-<scope>`` and ``lb-<scope>``, laid
  out with etcdctl on a harness cluster with the names, prefixes and permissions the etcd role gives them.
- :func:`install_pki`: a ``pki_dir`` as the pki role installs it on a host, holding the harness's CA and its
  CN-less client certificate under the pki role's names.
- :func:`write_inventory`: an inventory of local hosts (``ansible_connection: local``) laid out as a user's is:
  group ``etcd`` (one host per harness member), group ``postgres`` with one child group per Patroni cluster, group
  ``lb``.
"""

import os
import secrets
import shutil
import sys

import yaml

NAMESPACE = '/service'
LB_PREFIX = '/pgha/lb'
CLIENT_CERTS = ('patroni', 'admin', 'lb-agent')


def prefix(base, scope):
    return '%s/%s/' % (base.rstrip('/'), scope)


def add_cluster_users(etcd, scope):
    """``patroni-<scope>`` (readwrite on its Patroni prefix) and ``lb-<scope>`` (read on it and on its LB prefix);
    their passwords are added to ``etcd.users``."""
    grants = {'patroni-%s' % scope: [('readwrite', prefix(NAMESPACE, scope))],
              'lb-%s' % scope: [('read', prefix(NAMESPACE, scope)), ('read', prefix(LB_PREFIX, scope))]}
    for user, permissions in grants.items():
        etcd.etcdctl('role', 'add', user)
        for permission, key in permissions:
            etcd.etcdctl('role', 'grant-permission', '--prefix=true', user, permission, key)
        password = secrets.token_urlsafe(12)
        etcd.etcdctl('user', 'add', user, '--new-user-password', password)
        etcd.etcdctl('user', 'grant-role', user, user)
        etcd.users[user] = password


def install_pki(etcd, directory):
    """``directory`` as the pki role's ``pki_dir``: ``ca.crt`` and ``client-<name>.crt/.key`` of each client."""
    os.makedirs(directory, exist_ok=True)
    shutil.copyfile(etcd.ca_cert, os.path.join(directory, 'ca.crt'))
    for name in CLIENT_CERTS:
        shutil.copyfile(etcd.client_cert, os.path.join(directory, 'client-%s.crt' % name))
        shutil.copyfile(etcd.client_key, os.path.join(directory, 'client-%s.key' % name))
        os.chmod(os.path.join(directory, 'client-%s.key' % name), 0o600)
    return directory


def write_inventory(path, etcd, pki_dir, clusters, lb_hosts=None, all_vars=None):
    """A YAML inventory of local hosts at ``path``.

    ``clusters``: ``{group: {'scope': scope, 'hosts': {host: host vars}, 'vars': more group vars}}``, each a child
    group of ``postgres`` whose group vars name the group in ``patroni_group`` and the scope in
    ``pgha_cluster_name``, with the cluster's etcd password from ``etcd.users``. ``lb_hosts``: ``{host: host
    vars}``. ``all_vars`` go to group ``all`` after the defaults (local connection, this Python, ``pki_dir``, the
    root password).
    """
    variables = {'ansible_connection': 'local', 'ansible_python_interpreter': sys.executable,
                 'pki_dir': pki_dir, 'etcd_root_password': etcd.root_password}
    variables.update(all_vars or {})
    children = {}
    for group, cluster in clusters.items():
        scope = cluster['scope']
        group_vars = {'patroni_group': group, 'pgha_cluster_name': scope,
                      'pgha_etcd_patroni_password': etcd.users['patroni-%s' % scope]}
        group_vars.update(cluster.get('vars') or {})
        children[group] = {'hosts': dict(cluster['hosts']), 'vars': group_vars}
    inventory = {'all': {'vars': variables, 'children': {
        'etcd': {'hosts': {m.name: {'etcd_address': m.ip, 'etcd_client_port': m.client_port}
                           for m in etcd.members}},
        'postgres': {'children': children},
        'lb': {'hosts': dict(lb_hosts or {})},
    }}}
    with open(str(path), 'w') as handle:
        yaml.safe_dump(inventory, handle, sort_keys=False)
    return str(path)
