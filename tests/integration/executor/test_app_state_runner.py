"""The executor's task runner with a real stream app process (no Mesos): the app's state lines
become TASK_RUNNING updates labelled with the state, readiness waits for RUNNING, and an app stuck
out of RUNNING past its stuck_limit_s is stopped and reported TASK_FAILED saying so."""
from __future__ import annotations

import sys
import threading

import pytest

from executor.main import APP_STATE_LABEL, READY_LABEL, TaskRunner
from kmfwire.taskdata import StreamTask, TaskData
from tests.helpers.wait import wait_for

pytestmark = pytest.mark.timeout(60)

APP = """
import time
def say(s): print("KMF_APP_STATE " + s, flush=True)
say("CREATED"); say("REBALANCING"); time.sleep(2.5)
say("RUNNING"); time.sleep(2.5)
say("ERROR"); time.sleep(600)
"""


class RecordingOwner:
    def __init__(self) -> None:
        self.env = {"KMF_PYTHON": sys.executable, "PATH": "/usr/bin:/bin"}
        self.sent: list[tuple[str, str, dict]] = []
        self.lock = threading.Lock()

    def send_update(self, task_id, state, message="", healthy=None, reason=None, labels=None) -> None:
        with self.lock:
            self.sent.append((state, message, {l["key"]: l["value"] for l in labels or []}))

    def task_done(self, runner) -> None:
        pass


def test_states_readiness_and_a_stuck_app_ended(tmp_path):
    owner = RecordingOwner()
    data = TaskData(kind="stream", service="t", health_interval_s=1.0, grace_period_s=2.0, stream=StreamTask(
        app="a", instance=0, runtime="python", command=("-c", APP), bootstrap_servers="h:1", stuck_limit_s=2))
    runner = TaskRunner(owner, {"task_id": {"value": "a-0__1"}}, data, tmp_path)
    runner.start()
    wait_for(runner.done.is_set, timeout=40, interval=0.2, what="the task's end")
    sent = list(owner.sent)
    states = [labels[APP_STATE_LABEL] for state, _, labels in sent if state == "TASK_RUNNING" and labels]
    changes = [s for i, s in enumerate(states) if i == 0 or states[i - 1] != s]
    # every change, in order (CREATED may be passed over: it lasts no time)
    assert changes[-3:] == ["REBALANCING", "RUNNING", "ERROR"], sent
    ready_at = next(i for i, (_, message, labels) in enumerate(sent) if labels.get(READY_LABEL) == "true")
    assert sent[ready_at - 1][2].get(APP_STATE_LABEL) == "RUNNING", sent  # ready only once RUNNING
    state, message, labels = sent[-1]
    assert state == "TASK_FAILED" and labels[APP_STATE_LABEL] == "ERROR", sent[-1]
    assert message.startswith("the app stuck out of RUNNING for 2s, now in ERROR (stuck_limit_s 2)"), message
    assert runner.proc is not None and runner.proc.poll() is not None  # stopped, not left behind
