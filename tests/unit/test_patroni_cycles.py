"""Telling from GET /patroni when a member's Patroni has begun a cycle after a moment
(plugins/module_utils/patroni_cycles.py)."""

import pytest

from ansible_collections.pgha.cluster.plugins.module_utils.patroni_cycles import CycleTracker, dcs_last_seen


def answer(seen):
    return {'state': 'running', 'role': 'replica', 'dcs_last_seen': seen}


def test_two_new_values_after_the_first_answer_prove_a_new_cycle():
    tracker = CycleTracker(['pg1', 'pg2'])
    for value in (100, 100, 105):  # the first cycle seen after the start may have begun before it
        tracker.observe('pg1', answer(value))
    assert tracker.pending() == ['pg1', 'pg2']
    tracker.observe('pg1', answer(110))
    assert tracker.pending() == ['pg2'] and tracker.done('pg1')


def test_answers_without_a_value_do_not_count():
    tracker = CycleTracker(['pg1'])
    for value in (None, {'state': 'starting'}, answer(True), answer('105'), 'text'):
        tracker.observe('pg1', value if isinstance(value, (dict, str)) or value is None else answer(value))
    assert tracker.pending() == ['pg1']
    assert tracker.last_answer('pg1') == 'text'
    assert dcs_last_seen(answer(7)) == 7 and dcs_last_seen(answer(True)) is None


def test_only_tracked_members():
    with pytest.raises(KeyError):
        CycleTracker(['pg1']).observe('pg2', answer(1))
