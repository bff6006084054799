"""executor.policy: how a workload's end and its health checks become Mesos statuses (pure)."""
from __future__ import annotations

import signal

import pytest
from hypothesis import given, strategies as st

from executor.policy import (
    TERMINAL_STATES,
    VOLUME_FULL_BELOW_BYTES,
    HealthCounter,
    describe_exit,
    exit_outcome,
    is_terminal,
    volume_full_note,
)
from kmfwire.task_states import VOLUME_FULL

pytestmark = pytest.mark.timeout(60)

returncodes = st.one_of(st.integers(min_value=-64, max_value=255), st.none())


def test_exit_zero_finishes():
    assert exit_outcome(0, kill_requested=False, stderr_tail="noise") == \
        exit_outcome(0, kill_requested=False) and exit_outcome(0, False).state == "TASK_FINISHED"
    assert exit_outcome(0, False).message == "exited with code 0"


def test_nonzero_exit_fails_with_the_code_and_stderr_tail():
    out = exit_outcome(3, kill_requested=False, stderr_tail="boom\nbang")
    assert out.state == "TASK_FAILED"
    assert out.message == "exited with code 3; stderr:\nboom\nbang"
    assert exit_outcome(3, False).message == "exited with code 3"


def test_signal_without_kill_request_fails_naming_the_signal():
    out = exit_outcome(-signal.SIGSEGV, kill_requested=False, stderr_tail="core")
    assert out.state == "TASK_FAILED" and out.message == "killed by SIGSEGV; stderr:\ncore"


def test_after_a_kill_request_any_end_is_killed():
    assert exit_outcome(-signal.SIGTERM, kill_requested=True).message == "stopped (killed by SIGTERM)"
    assert exit_outcome(143, kill_requested=True).message == "stopped (exited with code 143)"
    assert exit_outcome(None, kill_requested=True).message == "stopped"
    assert exit_outcome(0, kill_requested=True, stderr_tail="x").state == "TASK_KILLED"


def test_a_number_that_is_no_signal_is_still_described():
    assert describe_exit(-200) == "killed by signal 200"


@given(returncodes, st.booleans(), st.text(max_size=50))
def test_every_end_maps_to_exactly_one_terminal_state(code, killed, stderr):
    out = exit_outcome(code, killed, stderr)
    assert is_terminal(out.state) and out.state in {"TASK_FINISHED", "TASK_FAILED", "TASK_KILLED"}
    assert (out.state == "TASK_KILLED") == killed
    assert (out.state == "TASK_FINISHED") == (not killed and code == 0)
    assert exit_outcome(code, killed, stderr) == out  # same input, same status


def test_terminal_states_exclude_the_live_ones():
    for live in ("TASK_STAGING", "TASK_STARTING", "TASK_RUNNING", "TASK_KILLING"):
        assert live not in TERMINAL_STATES


def test_health_turns_unhealthy_after_consecutive_failures_only():
    h = HealthCounter(threshold=3)
    seen = []
    for ok in (False, False, True, False, False, False, True):
        h = h.observe(ok)
        seen.append(h.healthy)
    assert seen == [True, True, True, True, True, False, True]
    assert HealthCounter(3, failures=3).change_message() == "3 health checks failed in a row"
    assert HealthCounter(3).change_message() == "healthy again"


@given(st.integers(min_value=0, max_value=6), st.lists(st.booleans(), max_size=30))
def test_health_counter_matches_the_executor_rule(threshold, checks):
    # the rule main.py applied inline before it moved here
    h, failures = HealthCounter(threshold), 0
    for ok in checks:
        h = h.observe(ok)
        failures = 0 if ok else failures + 1
        assert h.healthy == (ok or failures < threshold)


def test_policy_stays_pure():
    # the point of the module: no driver, processes, threads, sockets or clocks in here
    import ast
    import executor.policy as policy
    tree = ast.parse(open(policy.__file__).read())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {(node.module or "").split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not imported & {"pymesos", "subprocess", "threading", "socket", "time", "os", "executor"}


def test_a_failure_on_a_full_volume_says_so_with_mesos_disk_reason():
    note = volume_full_note("/sandbox/data", free_bytes=0, total_bytes=160 << 20)
    assert note is not None and note.startswith(VOLUME_FULL) and "/sandbox/data" in note and "0 MiB free of 160" in note
    out = exit_outcome(1, kill_requested=False, stderr_tail="x", volume_note=note)
    assert out.state == "TASK_FAILED" and out.reason == "REASON_CONTAINER_LIMITATION_DISK"
    assert out.message.startswith(note) and out.message.endswith("exited with code 1; stderr:\nx")
    # a kill stays a kill, whatever the volume looks like
    assert exit_outcome(1, kill_requested=True, volume_note=note).state == "TASK_KILLED"


@given(st.integers(min_value=0, max_value=1 << 40), st.booleans())
def test_a_volume_counts_as_full_when_nearly_no_space_is_left_or_the_log_says_so(free, logged):
    log_tail = "java.io.IOException: No space left on device" if logged else "all fine"
    note = volume_full_note("/v", free_bytes=free, total_bytes=1 << 41, log_tail=log_tail)
    assert (note is not None) == (logged or free < VOLUME_FULL_BELOW_BYTES)
