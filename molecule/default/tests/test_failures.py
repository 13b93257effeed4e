"""Faults with real kills, seen through the load balancer (molecule/common/failure_tests.py)."""

from failure_tests import (  # noqa: F401  pylint: disable=unused-import
    test_a_planned_switchover_under_write_load_loses_nothing,
    test_an_etcd_member_killed_does_not_stop_writes_and_rejoins,
    test_etcd_unreachable_from_the_lb_keeps_the_last_known_good_routing,
    test_primary_killed_loses_no_acknowledged_commit_in_synchronous_mode,
    test_the_agent_killed_keeps_routing_and_resyncs,
)
