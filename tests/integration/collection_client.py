"""Build the collection's own EtcdClient for a harness cluster (the code under test)."""

from ansible_collections.pgha.cluster.plugins.module_utils.etcd_client import EtcdClient

_DEFAULT = object()


def client_for(cluster, user=_DEFAULT, password=None, endpoints=None, cert=_DEFAULT, key=_DEFAULT, **kwargs):
    """An EtcdClient with the cluster's TLS files and, on auth clusters, root's credentials.

    ``user=None`` sends no credentials; ``cert=None`` presents no client certificate.
    """
    if user is _DEFAULT:
        user = 'root' if cluster.auth else None
    if user is not None and password is None:
        password = cluster.users[user]
    options = dict(username=user, password=password)
    if cluster.tls:
        options['ca_cert'] = cluster.ca_cert
        options['client_cert'] = cluster.client_cert if cert is _DEFAULT else cert
        options['client_key'] = cluster.client_key if key is _DEFAULT else key
    options.update(kwargs)
    return EtcdClient(endpoints or cluster.endpoints, **options)
