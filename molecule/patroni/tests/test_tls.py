"""TLS enforced: PostgreSQL accepts only TLS connections and only from the members (and load
balancers), replication runs over TLS, the REST API speaks only TLS with the cluster's CA and asks
for credentials on its unsafe endpoints."""

import http.client
import ssl
import urllib.error

import psycopg2
import pytest

from patroni_scenario import API_PORT, PG_PORT


def test_postgresql_refuses_connections_without_tls(scenario):
    target, source = scenario.members[0], scenario.members[1]
    proc = scenario.psql(source, 'SELECT 1', conninfo=scenario.conninfo(target, sslmode='disable'),
                         password=scenario.superuser_password)
    assert proc.returncode != 0
    assert 'no pg_hba.conf entry' in proc.stderr and 'no encryption' in proc.stderr, proc.stderr


def test_postgresql_accepts_a_member_over_verified_tls(scenario):
    target, source = scenario.members[0], scenario.members[1]
    proc = scenario.psql(source, 'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()',
                         conninfo=scenario.conninfo(target), password=scenario.superuser_password)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == 't'


def test_postgresql_refuses_hosts_that_are_not_members(scenario):
    # The controller reaches the containers from the Docker network's gateway, which is no member.
    with pytest.raises(psycopg2.OperationalError) as err:
        psycopg2.connect(host=scenario.ip(scenario.members[0]), port=PG_PORT, user='postgres', dbname='postgres',
                         password=scenario.superuser_password, sslmode='verify-full',
                         sslrootcert=scenario.ca_cert, connect_timeout=10)
    assert 'no pg_hba.conf entry' in str(err.value)


def test_replication_runs_over_tls(scenario):
    primary = scenario.wait_healthy().primary().name
    count = scenario.sql_value(primary, 'SELECT count(*) FROM pg_stat_replication r JOIN pg_stat_ssl s '
                                        'USING (pid) WHERE s.ssl')
    assert int(count) == len(scenario.members) - 1


def test_rest_api_speaks_only_tls(scenario):
    conn = http.client.HTTPConnection(scenario.ip(scenario.members[0]), API_PORT, timeout=10)
    try:
        with pytest.raises((http.client.HTTPException, ConnectionError)):
            conn.request('GET', '/patroni')
            conn.getresponse().read()
    finally:
        conn.close()


def test_rest_api_certificate_is_signed_by_the_cluster_ca(scenario):
    with pytest.raises(urllib.error.URLError) as err:
        # The system trust store does not know the cluster's CA.
        scenario.rest(scenario.members[0], '/patroni', context=ssl.create_default_context())
    assert isinstance(err.value.reason, ssl.SSLCertVerificationError), err.value
    status, body = scenario.rest(scenario.members[0], '/patroni')
    assert status == 200 and body['state'] == 'running'


@pytest.mark.parametrize('auth', [None, ('patroni', 'not-the-password')], ids=['no-credentials', 'wrong-password'])
def test_rest_api_unsafe_endpoints_need_credentials(scenario, auth):
    status, _body = scenario.rest(scenario.members[0], '/restart', method='POST', body={}, auth=auth)
    assert status == 401
