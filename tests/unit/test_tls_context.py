"""Certificate options turned into an SSLContext, with errors that name the option (no server needed)."""

import pytest

from ansible_collections.pgha.cluster.plugins.module_utils.tls_context import TLSConfigError, build_ssl_context


def test_missing_certificate_files_are_named(tmp_path):
    with pytest.raises(TLSConfigError, match=r'ca_cert: file .*nope.pem does not exist'):
        build_ssl_context(ca_cert=str(tmp_path / 'nope.pem'))
    with pytest.raises(TLSConfigError, match='client_cert: file'):
        build_ssl_context(client_cert=str(tmp_path / 'c.pem'))


def test_garbage_ca_file_is_reported(tmp_path):
    bad = tmp_path / 'ca.pem'
    bad.write_text('not a certificate')
    with pytest.raises(TLSConfigError, match='ca_cert: .* does not hold a usable PEM CA certificate'):
        build_ssl_context(ca_cert=str(bad))


def test_unloadable_client_pair_is_reported(tmp_path):
    cert = tmp_path / 'c.pem'
    cert.write_text('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n')
    with pytest.raises(TLSConfigError, match='client_cert/client_key: cannot load'):
        build_ssl_context(client_cert=str(cert), client_key=str(cert))


def test_key_without_certificate(tmp_path):
    key = tmp_path / 'k.pem'
    key.write_text('x')
    with pytest.raises(TLSConfigError, match='client_key is set but client_cert is not'):
        build_ssl_context(client_key=str(key))


def test_option_names_carry_the_callers_prefix(tmp_path):
    with pytest.raises(TLSConfigError, match='rest_client_key is set but rest_client_cert is not'):
        build_ssl_context(client_key=__file__, option_prefix='rest_')


def test_without_options_it_trusts_the_system_store_and_checks_names():
    ctx = build_ssl_context()
    assert ctx.check_hostname and ctx.verify_mode.name == 'CERT_REQUIRED'
    relaxed = build_ssl_context(validate_certs=False)
    assert not relaxed.check_hostname and relaxed.verify_mode.name == 'CERT_NONE'
