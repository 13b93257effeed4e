import base64

import pytest

from ansible_collections.pgha.cluster.plugins.module_utils.etcd_errors import EtcdConfigError, EtcdInvalidArgument
from ansible_collections.pgha.cluster.plugins.module_utils.etcd_types import (
    Endpoint,
    KeyValue,
    as_int,
    b64,
    check_perm_type,
    key_range,
    parse_endpoint,
    parse_endpoints,
    permission_from_json,
    permission_is_prefix,
    prefix_range_end,
    unb64,
)


@pytest.mark.parametrize('text, default, expected', [
    ('http://10.0.0.1:2379', 'http', Endpoint('http', '10.0.0.1', 2379)),
    ('https://etcd-1.example.com:12379', 'http', Endpoint('https', 'etcd-1.example.com', 12379)),
    ('etcd-1:2379', 'https', Endpoint('https', 'etcd-1', 2379)),
    ('etcd-1', 'http', Endpoint('http', 'etcd-1', 2379)),
    ('HTTPS://Etcd-1/', 'http', Endpoint('https', 'Etcd-1', 2379)),
    ('  127.0.0.1:23790 ', 'http', Endpoint('http', '127.0.0.1', 23790)),
    ('https://[::1]:2379', 'http', Endpoint('https', '::1', 2379)),
    ('[fd00::10]', 'https', Endpoint('https', 'fd00::10', 2379)),
])
def test_parse_endpoint_accepts(text, default, expected):
    assert parse_endpoint(text, default) == expected


def test_endpoint_url_brackets_ipv6():
    assert parse_endpoint('https://[::1]:2379').url == 'https://[::1]:2379'
    assert str(parse_endpoint('etcd-1', 'https')) == 'https://etcd-1:2379'


@pytest.mark.parametrize('text, fragment', [
    ('', 'empty'),
    ('   ', 'empty'),
    ('ftp://etcd:2379', 'scheme must be http or https'),
    ('unix:///run/etcd.sock', 'scheme must be http or https'),
    ('http://etcd:2379/v3', 'must not contain a path'),
    ('http://etcd:2379?x=1', 'must not contain a path'),
    ('http://root:pw@etcd:2379', 'credentials belong in username/password'),
    ('http://etcd:0', 'port must be a number from 1 to 65535'),
    ('http://etcd:65536', 'port must be a number from 1 to 65535'),
    ('http://etcd:abc', 'port must be a number'),
    ('http://etcd:', 'port must be a number'),
    ('::1:2379', 'IPv6 addresses in brackets'),
    ('http://[::1', 'unclosed'),
    ('http://[etcd]:2379', 'is not an IPv6 address'),
    ('http://[::1]x', 'unexpected text'),
    ('http://et cd:2379', 'not a valid host name'),
    ('http://-etcd:2379', 'not a valid host name'),
    ('http://:2379', 'not a valid host name'),
])
def test_parse_endpoint_rejects_with_clear_message(text, fragment):
    with pytest.raises(EtcdConfigError) as err:
        parse_endpoint(text)
    assert fragment in str(err.value)


def test_parse_endpoint_rejects_non_string():
    with pytest.raises(EtcdConfigError):
        parse_endpoint(None)


def test_parse_endpoints_list_and_comma_string_deduplicated():
    eps = parse_endpoints('a:1, b:2,,a:1', default_scheme='https')
    assert [e.url for e in eps] == ['https://a:1', 'https://b:2']
    assert parse_endpoints(['http://a', 'http://b:3']) == [Endpoint('http', 'a', 2379), Endpoint('http', 'b', 3)]


@pytest.mark.parametrize('value', [None, '', ',,', []])
def test_parse_endpoints_empty(value):
    with pytest.raises(EtcdConfigError, match='no etcd endpoints'):
        parse_endpoints(value)


def test_parse_endpoints_refuses_mixed_schemes():
    with pytest.raises(EtcdConfigError, match='mix http and https'):
        parse_endpoints(['http://a', 'https://b'])


def test_parse_endpoints_names_the_bad_item():
    with pytest.raises(EtcdConfigError, match="'http://b/v3'"):
        parse_endpoints(['http://a', 'http://b/v3'])


@pytest.mark.parametrize('prefix, expected', [
    (b'/service/main/', b'/service/main0'),
    ('/a', b'/b'),
    (b'a\xff', b'b'),
    (b'a\xff\xff', b'b'),
    (b'\xff', b'\0'),
    (b'\xff\xff', b'\0'),
    (b'', b'\0'),
    (b'\x00', b'\x01'),
    ('é', 'é'.encode('utf-8')[:-1] + bytes(['é'.encode('utf-8')[-1] + 1])),
])
def test_prefix_range_end(prefix, expected):
    assert prefix_range_end(prefix) == expected


def test_prefix_range_end_bounds_exactly_the_prefix():
    prefix = b'/service/main/'
    end = prefix_range_end(prefix)
    inside = [prefix, prefix + b'\x00', prefix + b'\xff\xff', prefix + b'leader']
    outside = [b'/service/main', b'/service/main0', b'/service/mainx/', b'/service/maio']
    assert all(prefix <= k < end for k in inside)
    assert not any(prefix <= k < end for k in outside)


def test_key_range():
    assert key_range('/k') == (b'/k', None)
    assert key_range('/p/', prefix=True) == (b'/p/', b'/p0')
    assert key_range('', prefix=True) == (b'\0', b'\0')
    assert key_range('/a', range_end='/c') == (b'/a', b'/c')
    with pytest.raises(EtcdInvalidArgument, match='not both'):
        key_range('/a', prefix=True, range_end='/c')
    with pytest.raises(EtcdInvalidArgument, match='must not be empty'):
        key_range('')
    with pytest.raises(EtcdInvalidArgument, match='string or bytes'):
        key_range(42)


def test_base64_roundtrip_of_text_and_binary():
    for raw in ('/service/main/leader', 'grüße', b'\x00\xff\x10'):
        data = raw.encode('utf-8') if isinstance(raw, str) else raw
        assert unb64(b64(raw)) == data
        assert b64(raw) == base64.b64encode(data).decode('ascii')
    assert unb64(None) == b'' and unb64('') == b''


def test_as_int_handles_strings_and_omitted_zero():
    assert as_int('9223372036854775807') == 9223372036854775807
    assert as_int(None) == 0 and as_int('') == 0 and as_int(None, -1) == -1
    assert as_int(5) == 5


def test_keyvalue_from_gateway_json():
    kv = KeyValue.from_json({'key': b64('/s/m/leader'), 'value': b64('node1'), 'create_revision': '5',
                             'mod_revision': '9', 'version': '3', 'lease': '7587862037289371914'})
    assert kv.key == b'/s/m/leader' and kv.value_text == 'node1'
    assert (kv.create_revision, kv.mod_revision, kv.version, kv.lease) == (5, 9, 3, 7587862037289371914)
    assert kv.to_dict()['key'] == '/s/m/leader'
    # A deleted key in a watch event carries no value, version or lease.
    empty = KeyValue.from_json({'key': b64('/x'), 'mod_revision': '10'})
    assert empty.value == b'' and empty.version == 0 and empty.lease == 0


def test_keyvalue_text_of_invalid_utf8_does_not_raise():
    kv = KeyValue(b'/k', b'\xff\xfe')
    assert kv.value_text == '\ufffd\ufffd'


def test_permission_parsing_and_prefix_detection():
    perm = permission_from_json({'key': b64('/service/main/'), 'range_end': b64('/service/main0')})
    assert perm.perm_type == 'READ'  # READ is enum zero, which the gateway omits
    assert permission_is_prefix(perm)
    single = permission_from_json({'permType': 'READWRITE', 'key': b64('/k')})
    assert single.range_end is None and not permission_is_prefix(single)
    ranged = permission_from_json({'permType': 'WRITE', 'key': b64('/a'), 'range_end': b64('/c')})
    assert not permission_is_prefix(ranged)


def test_check_perm_type():
    assert check_perm_type('readwrite') == 'READWRITE'
    with pytest.raises(EtcdInvalidArgument, match='READ, WRITE, READWRITE'):
        check_perm_type('admin')
