"""Terminal task statuses say why a task ended as Apache Mesos says it: state, source, reason and
message for an executor's (command executor), the agent's and the master's own statuses. Runs
against both engines; the expected values are what Apache Mesos 1.12 sends."""
from __future__ import annotations

from typing import Any

import pytest

from tests.helpers.v1client import V1Scheduler

pytestmark = pytest.mark.timeout(180)

ROLE = "r"


def _res(cpus: float = 0.1, mem: float = 32) -> list[dict[str, Any]]:
    return [{"name": n, "type": "SCALAR", "scalar": {"value": v}, "allocation_info": {"role": ROLE}}
            for n, v in (("cpus", cpus), ("mem", mem)) if v]


def _why(status: dict[str, Any]) -> tuple[Any, ...]:
    return status["state"], status.get("source"), status.get("reason"), status.get("message")


@pytest.fixture
def sched(cluster):
    lm = cluster(agents=1)
    s = V1Scheduler(lm.url, "statuses", role=ROLE).subscribe(timeout=60)
    yield s
    s.close()


def _launch(sched: V1Scheduler, task: dict[str, Any]) -> None:
    offer = sched.offer(timeout=60)
    task.setdefault("agent_id", offer["agent_id"])
    task.setdefault("name", task["task_id"]["value"])
    sched.accept(offer["id"], [{"type": "LAUNCH", "launch": {"task_infos": [task]}}])


def test_command_executor_says_how_the_command_ended(sched):
    _launch(sched, {"task_id": {"value": "exit3"}, "resources": _res(), "command": {"value": "exit 3"}})
    _launch(sched, {"task_id": {"value": "sig"}, "resources": _res(), "command": {"value": "kill -9 $$"}})
    assert _why(sched.wait_state("exit3", "TASK_FAILED")) == (
        "TASK_FAILED", "SOURCE_EXECUTOR", None, "Command exited with status 3")
    assert _why(sched.wait_state("sig", "TASK_FAILED")) == (
        "TASK_FAILED", "SOURCE_EXECUTOR", None, "Command terminated with signal Killed")
    running = [s for s in sched.updates("exit3") if s["state"] == "TASK_RUNNING"][0]
    assert "message" not in running and running["source"] == "SOURCE_EXECUTOR"


def test_agent_fails_the_tasks_of_an_executor_that_terminated(sched):
    executor = {"executor_id": {"value": "gone"}, "type": "CUSTOM",
                "command": {"value": "sleep 1; exit 3"}, "resources": _res()}
    _launch(sched, {"task_id": {"value": "orphan"}, "resources": _res(), "executor": executor})
    assert _why(sched.wait_state("orphan", "TASK_FAILED")) == (
        "TASK_FAILED", "SOURCE_AGENT", "REASON_EXECUTOR_TERMINATED", "Executor terminated")


def test_master_refuses_invalid_tasks_with_its_reasons(sched):
    _launch(sched, {"task_id": {"value": "bad/id"}, "resources": _res(), "command": {"value": "true"}})
    _launch(sched, {"task_id": {"value": "no-res"}, "command": {"value": "true"}})
    _launch(sched, {"task_id": {"value": "too-big"}, "resources": _res(cpus=100, mem=0),
                    "command": {"value": "true"}})
    sched.accept({"value": "no-such-offer"}, [{"type": "LAUNCH", "launch": {"task_infos": [{
        "name": "x", "task_id": {"value": "bad-offer"}, "agent_id": {"value": "a"},
        "resources": _res(), "command": {"value": "true"}}]}}])
    assert _why(sched.wait_state("bad/id", "TASK_ERROR")) == (
        "TASK_ERROR", "SOURCE_MASTER", "REASON_TASK_INVALID", "'bad/id' contains invalid characters")
    assert _why(sched.wait_state("no-res", "TASK_ERROR")) == (
        "TASK_ERROR", "SOURCE_MASTER", "REASON_TASK_INVALID", "Task uses no resources")
    big = sched.wait_state("too-big", "TASK_ERROR")
    assert _why(big)[:3] == ("TASK_ERROR", "SOURCE_MASTER", "REASON_TASK_INVALID")
    # Mesos prints resources with their allocation ("cpus(allocated: r):100"); localmesos does not
    assert big["message"].startswith("Total resources ")
    assert "required by task and its executor is more than available" in big["message"]
    assert _why(sched.wait_state("bad-offer", "TASK_LOST")) == (
        "TASK_LOST", "SOURCE_MASTER", "REASON_INVALID_OFFERS",
        "Task launched with invalid offers: Offer no-such-offer is no longer valid")
