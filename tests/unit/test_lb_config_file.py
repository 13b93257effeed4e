"""lb_config_file: a new configuration is validated in the destination's directory before it replaces the old
one; a rejected one leaves nothing behind. ``true``/``false``/``sh`` stand in for ``haproxy -c`` here
(tests/integration/test_module_haproxy_config.py uses the real one)."""

import os
import stat

import pytest

from ansible_collections.pgha.cluster.plugins.module_utils.lb_config_file import (
    HaproxyConfigRejected,
    read_text,
    replace_config,
    stage_config,
    validate_argv,
)

REJECT = "sh -c 'echo \"[NOTICE] fine\"; echo \"[ALERT] parsing [$0:3] : bad\"; exit 1' %s"


def test_validate_argv_substitutes_the_path_and_finds_the_program():
    argv = validate_argv('true -c -f %s', '/tmp/x.cfg')
    assert os.path.basename(argv[0]) == 'true' and os.path.isabs(argv[0])
    assert argv[1:] == ['-c', '-f', '/tmp/x.cfg']


@pytest.mark.parametrize('command, message', [
    ('haproxy -c', 'exactly one %s'), ('cat %s %s', 'exactly one %s'), ('', 'exactly one %s'),
    ('no-such-program-pgha %s', 'cannot run no-such-program-pgha: not found')])
def test_validate_argv_errors(command, message):
    with pytest.raises(HaproxyConfigRejected, match=message):
        validate_argv(command, '/tmp/x.cfg')


def test_stage_config_keeps_a_valid_file(tmp_path):
    path = stage_config('global\n', str(tmp_path), 'true %s')
    assert os.path.dirname(path) == str(tmp_path)
    assert read_text(path) == 'global\n'
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640


def test_a_rejected_file_is_removed_and_the_alert_reported(tmp_path):
    with pytest.raises(HaproxyConfigRejected) as err:
        stage_config('global\n', str(tmp_path), REJECT)
    message = str(err.value)
    assert message.startswith('HAProxy rejected the new configuration')
    assert 'exited 1): [ALERT] parsing [' in message and 'fine' not in message.split('exited 1')[1]
    assert os.listdir(str(tmp_path)) == []


def test_replace_config(tmp_path):
    path = str(tmp_path / 'haproxy.cfg')
    assert read_text(path) is None
    assert replace_config(path, 'one\n', 'true %s') is True
    os.chmod(path, 0o600)
    assert replace_config(path, 'one\n', 'false %s') is False  # unchanged: not even validated
    with pytest.raises(HaproxyConfigRejected):
        replace_config(path, 'two\n', REJECT)
    assert read_text(path) == 'one\n'
    assert replace_config(path, 'three\n', None) is True
    assert read_text(path) == 'three\n' and stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert sorted(os.listdir(str(tmp_path))) == ['haproxy.cfg']
