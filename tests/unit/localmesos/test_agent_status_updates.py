"""The agent's status-update decisions as pure functions: the retry schedule of an unacknowledged
status (10 s doubling to at most 10 min, as Mesos' agent), what draining does to a kill's status,
and the Task.statuses entry kept of a status."""
from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from localmesos.agent.status_updates import (RETRY_FIRST_S, RETRY_MAX_S, retry_delay, status_record,
                                             while_draining)

PA = {"capabilities": [{"type": "PARTITION_AWARE"}]}


def test_the_retry_delay_starts_at_ten_seconds_and_doubles_up_to_ten_minutes():
    assert [retry_delay(n) for n in range(1, 9)] == [10, 20, 40, 80, 160, 320, 600, 600]


def test_the_retry_delay_matches_the_old_doubling_backoff():
    backoff, delays = RETRY_FIRST_S, []
    for _ in range(12):  # the agent's former state: delay = backoff; backoff = min(max, 2 * backoff)
        delays.append(backoff)
        backoff = min(RETRY_MAX_S, backoff * 2)
    assert delays == [retry_delay(n) for n in range(1, 13)]


@given(st.integers(min_value=0, max_value=10**6))
def test_the_retry_delay_is_bounded_and_never_shrinks(attempts):
    delay = retry_delay(attempts)
    assert RETRY_FIRST_S <= delay <= RETRY_MAX_S
    assert retry_delay(attempts + 1) >= delay
    assert retry_delay(attempts + 1) in (RETRY_MAX_S, 2 * delay) or attempts == 0


def test_statuses_outside_a_drain_are_forwarded_untouched():
    status = {"state": "TASK_KILLED", "reason": "REASON_TASK_KILLED"}
    assert while_draining(status, None, PA) is status


def test_a_running_status_during_a_drain_is_untouched():
    status = {"state": "TASK_RUNNING"}
    assert while_draining(status, {"mark_gone": True}, PA) is status


def test_a_kill_during_a_drain_says_the_agent_drains():
    status = {"state": "TASK_KILLED", "reason": "REASON_TASK_KILLED"}
    out = while_draining(status, {}, PA)
    assert out == {"state": "TASK_KILLED", "reason": "REASON_AGENT_DRAINING"}
    assert status["reason"] == "REASON_TASK_KILLED"  # the caller's status is not changed


def test_a_drain_that_marks_gone_makes_kills_gone_by_operator_for_partition_aware_frameworks_only():
    killing = {"state": "TASK_KILLING"}
    assert while_draining(killing, {"mark_gone": True}, PA)["state"] == "TASK_GONE_BY_OPERATOR"
    assert while_draining(killing, {"mark_gone": True}, {})["state"] == "TASK_KILLING"


def test_the_status_record_drops_the_executor_pid_and_defaults_the_timestamp():
    status = {"state": "TASK_RUNNING", "container_status": {"container_id": {"value": "c"}, "executor_pid": 7}}
    assert status_record(status, 5.0) == {"state": "TASK_RUNNING", "timestamp": 5.0,
                                          "container_status": {"container_id": {"value": "c"}}}
    assert status_record({"state": "TASK_FAILED", "timestamp": 3}, 5.0) == {"state": "TASK_FAILED",
                                                                            "timestamp": 3.0}
