"""Which member starts first when etcd lost a cluster's keys (plugins/module_utils/patroni_bootstrap.py), on
pg_controldata output as PostgreSQL 15 prints it (LC_ALL=C)."""

import pytest

from ansible_collections.pgha.cluster.plugins.module_utils.patroni_bootstrap import (
    MemberData, choose_bootstrap_leader, data_position, parse_controldata)


def controldata(state, checkpoint='0/3022588', timeline=1, min_recovery='0/0', min_timeline=0,
                system_id='7712966214923487246'):
    """The fields of a real pg_controldata output that matter here, in its layout (a few others kept)."""
    return '\n'.join([
        'pg_control version number:            1300',
        'Catalog version number:               202209061',
        'Database system identifier:           %s' % system_id,
        'Database cluster state:               %s' % state,
        'pg_control last modified:             Fri Nov 27 21:28:30 2026',
        'Latest checkpoint location:           %s' % checkpoint,
        "Latest checkpoint's REDO location:    %s" % checkpoint,
        "Latest checkpoint's TimeLineID:       %d" % timeline,
        "Latest checkpoint's PrevTimeLineID:   %d" % timeline,
        "Latest checkpoint's oldestCommitTsXid:0",
        'Minimum recovery ending location:     %s' % min_recovery,
        "Min recovery ending loc's timeline:   %d" % min_timeline,
        'wal_level setting:                    replica',
    ]) + '\n'


PRIMARY = controldata('shut down', checkpoint='0/3022588')
LAGGING = controldata('shut down in recovery', checkpoint='0/2000060', min_recovery='0/3022520', min_timeline=1)


def member(host, text=None, **kwargs):
    kwargs.setdefault('has_data', text is not None)
    return MemberData(host, 'db-' + host, controldata=text, **kwargs)


def test_parse_keeps_every_field_also_without_a_space_after_the_colon():
    fields = parse_controldata(PRIMARY + 'no colon here\n')
    assert fields['Database cluster state'] == 'shut down'
    assert fields["Latest checkpoint's oldestCommitTsXid"] == '0'
    assert fields["Min recovery ending loc's timeline"] == '0'
    assert parse_controldata('') == {} and parse_controldata(None) == {}


@pytest.mark.parametrize('text, expected', [
    (PRIMARY, (1, 0x3022588, True)),
    (LAGGING, (1, 0x3022520, False)),
    # A replica's last restartpoint may be past its minimum recovery point: it replayed that far.
    (controldata('shut down in recovery', checkpoint='0/5000000', min_recovery='0/4000000', min_timeline=1),
     (1, 0x5000000, False)),
    # ... unless it is on another timeline than the minimum recovery point.
    (controldata('in archive recovery', checkpoint='0/5000000', timeline=1, min_recovery='0/4800000',
                 min_timeline=2), (2, 0x4800000, False)),
])
def test_positions(text, expected):
    position = data_position(parse_controldata(text))
    assert (position.timeline, position.lsn, position.exact) == expected


@pytest.mark.parametrize('text, needle', [
    (controldata('in production'), 'stopped in state "in production" (not shut down cleanly)'),
    (controldata('in crash recovery'), 'stopped in state "in crash recovery"'),
    (controldata('in archive recovery'), 'without a minimum recovery point'),
    (controldata('shut down', checkpoint='nonsense'), 'no usable "Latest checkpoint location"'),
    ('garbage', 'reported no "Database cluster state"'),
])
def test_positions_that_cannot_be_known(text, needle):
    with pytest.raises(ValueError, match=needle.replace('(', r'\(').replace(')', r'\)')):
        data_position(parse_controldata(text))


def test_the_member_with_the_newest_data_starts_first_whatever_the_order():
    choice = choose_bootstrap_leader([member('pg1', LAGGING), member('pg2', PRIMARY), member('pg3')])
    assert choice.leader == 'pg2' and choice.problems == [] and not choice.named
    assert choice.positions == ['db-pg1: timeline 1, at least 0/3022520 (shut down in recovery)',
                                'db-pg2: timeline 1, 0/3022588 (shut down)']


def test_a_later_timeline_wins_over_a_longer_wal_and_ties_go_to_the_first():
    promoted = controldata('shut down', checkpoint='0/3000100', timeline=2)
    assert choose_bootstrap_leader([member('pg1', PRIMARY), member('pg2', promoted)]).leader == 'pg2'
    assert choose_bootstrap_leader([member('pg1', PRIMARY), member('pg2', PRIMARY)]).leader == 'pg1'


def test_a_new_cluster_has_no_leader_to_choose():
    choice = choose_bootstrap_leader([member('pg1'), member('pg2')])
    assert choice.to_dict() == {'leader': '', 'problems': [], 'positions': [], 'named': False}


@pytest.mark.parametrize('members, needle', [
    ([member('pg1', LAGGING), member('pg2', controldata('in production'))],
     'db-pg2 cannot be compared: it stopped in state "in production"'),
    ([member('pg1', LAGGING), member('pg2', has_data=True, error='pg_controldata: fatal: could not open file')],
     'the control file of db-pg2 cannot be read: pg_controldata: fatal: could not open file'),
    ([member('pg1', LAGGING), member('pg2', PRIMARY, running=True)], 'Patroni runs on db-pg2'),
    ([member('pg1', LAGGING), member('pg2', controldata('shut down', system_id='1'))],
     'the data directories belong to different clusters (system identifiers db-pg1: 7712966214923487246, '
     'db-pg2: 1)'),
])
def test_no_guess_when_a_position_is_unknown(members, needle):
    choice = choose_bootstrap_leader(members)
    assert choice.leader == ''
    assert any(needle in p for p in choice.problems), choice.problems


def test_the_named_member_decides():
    members = [member('pg1', LAGGING), member('pg2', controldata('in production')), member('pg3')]
    assert choose_bootstrap_leader(members, 'db-pg2').to_dict() == {
        'leader': 'pg2', 'problems': [], 'positions': [], 'named': True}
    assert choose_bootstrap_leader(members, 'pg1').leader == 'pg1'  # the inventory name works too
    assert choose_bootstrap_leader(members, 'pg3').problems == [
        'patroni_bootstrap_leader names db-pg3, whose data directory holds no cluster']
    assert 'which is not a member of this cluster (db-pg1, db-pg2, db-pg3)' in \
        choose_bootstrap_leader(members, 'pg9').problems[0]
