"""One terminal status per task: the task runner's status sender, driven without processes."""
from __future__ import annotations

import threading

import pytest
from hypothesis import given, strategies as st

from executor.main import TaskRunner
from executor.policy import StatusGate, exit_outcome, is_terminal
from kmfwire.taskdata import StreamTask, TaskData

pytestmark = pytest.mark.timeout(60)


class RecordingOwner:
    """Stands in for KmfExecutor: keeps what the runner asked it to send."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.lock = threading.Lock()

    def send_update(self, task_id, state, message="", healthy=None, reason=None, labels=None) -> None:
        with self.lock:
            self.sent.append(state)

    def task_done(self, runner) -> None:
        pass


def runner(tmp_path) -> tuple[TaskRunner, RecordingOwner]:
    owner = RecordingOwner()
    data = TaskData(kind="stream", service="t", stream=StreamTask(
        app="a", instance=0, runtime="command", command=("true",), bootstrap_servers="h:1"))
    return TaskRunner(owner, {"task_id": {"value": "t-1"}}, data, tmp_path), owner


def assert_one_terminal_last(sent: list[str]) -> None:
    terminal = [i for i, s in enumerate(sent) if is_terminal(s)]
    assert len(terminal) <= 1, sent
    assert not terminal or terminal[0] == len(sent) - 1, sent


def test_kill_right_after_the_task_finished_sends_no_killing(tmp_path):
    # the supervising thread sent TASK_FINISHED but has not set `done` yet when the kill arrives
    r, owner = runner(tmp_path)
    r.update("TASK_RUNNING", "started")
    r.update("TASK_FINISHED", "exited with code 0")
    r.kill()
    assert owner.sent == ["TASK_RUNNING", "TASK_FINISHED"]


def test_a_second_terminal_status_is_dropped(tmp_path):
    # e.g. a bug after the task's end is reported as TASK_FAILED by the runner's catch-all
    r, owner = runner(tmp_path)
    assert r.update("TASK_KILLED", "stopped")
    assert not r.update("TASK_FAILED", "kmf executor error: boom")
    assert not r.update("TASK_RUNNING", "late")
    assert owner.sent == ["TASK_KILLED"]


def test_killing_before_the_end_is_still_sent(tmp_path):
    r, owner = runner(tmp_path)
    r.update("TASK_RUNNING", "started")
    r.kill()
    r.update("TASK_KILLED", "stopped")
    assert owner.sent == ["TASK_RUNNING", "TASK_KILLING", "TASK_KILLED"]


events = st.lists(st.one_of(
    st.just(("kill",)),
    st.tuples(st.just("exit"), st.integers(min_value=-15, max_value=3)),
    st.just(("error",)),
    st.just(("running",)),
), max_size=12)


@given(events)
def test_no_interleaving_of_kills_and_exits_sends_two_terminal_statuses(tmp_path_factory, seq):
    r, owner = runner(tmp_path_factory.mktemp("s"))
    for event in seq:
        if event[0] == "kill":
            r.kill()
        elif event[0] == "exit":
            out = exit_outcome(event[1], r.kill_requested.is_set())
            r.update(out.state, out.message)
        elif event[0] == "error":
            r.update("TASK_FAILED", "kmf executor error")
        else:
            r.update("TASK_RUNNING", "health changed")
    assert_one_terminal_last(owner.sent)


@given(st.lists(st.sampled_from(["TASK_RUNNING", "TASK_KILLING", "TASK_FINISHED", "TASK_FAILED",
                                  "TASK_KILLED", "TASK_LOST"]), max_size=20))
def test_gate_admits_a_prefix_that_ends_at_the_first_terminal(states):
    gate = StatusGate()
    admitted = [s for s in states if gate.admit(s)]
    first = next((i for i, s in enumerate(states) if is_terminal(s)), None)
    assert admitted == (states if first is None else states[:first + 1])


def test_concurrent_kill_and_exit_from_threads(tmp_path):
    # the kill comes from pymesos' thread while the supervising thread reports the exit
    for _ in range(200):
        r, owner = runner(tmp_path)
        start = threading.Barrier(3)

        # this iteration's runner and barrier are passed in, not read from the loop's variables
        def killer(r, start: threading.Barrier) -> None:
            start.wait()
            r.kill()

        def exiter(r, start: threading.Barrier, state: str) -> None:
            start.wait()
            r.update(state, "ended")
        threads = [threading.Thread(target=killer, args=(r, start)),
                   threading.Thread(target=exiter, args=(r, start, "TASK_FINISHED")),
                   threading.Thread(target=exiter, args=(r, start, "TASK_FAILED"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert_one_terminal_last(owner.sent)
        assert sum(is_terminal(s) for s in owner.sent) == 1


def test_kill_after_an_invalid_payload_adds_no_task_lost():
    from executor.main import KmfExecutor
    ex = KmfExecutor({})
    sent = []
    ex.send_update = lambda task_id, state, *a, **kw: sent.append((task_id, state))  # no driver here
    ex.launchTask(None, {"task_id": {"value": "bad"}, "data": "not base64 json"})
    ex.killTask(None, {"value": "bad"})
    ex.killTask(None, {"value": "never-launched"})
    ex.killTask(None, {"value": "never-launched"})
    assert sent == [("bad", "TASK_FAILED"), ("never-launched", "TASK_LOST")]
