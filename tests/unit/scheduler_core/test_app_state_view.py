"""The scheduler's half of a stream app's state: the executor's `kmf.app_state` label kept on the
pod's record (stored, kept over a reconciliation answer, forgotten when the task ends) and shown in
the pod view and `kmf pods`."""
from __future__ import annotations

import pytest

from kmf.operator_cli import pod_row
from kmfwire.app_state import REBALANCING, RUNNING
from scheduler.api.views import pod_info
from scheduler.core.state import TaskRecord
from tests.helpers.core_kit import deployed

pytestmark = pytest.mark.timeout(60)


def test_the_scheduler_keeps_the_app_state_its_executor_sent_and_shows_it():
    sim = deployed()
    labels = lambda state, ready=False: {"labels": [  # noqa: E731
        *([{"key": "kmf.ready", "value": "true"}] if ready else []), {"key": "kmf.app_state", "value": state}]}
    sim.send.status("wc-0", "TASK_RUNNING", labels=labels(REBALANCING))
    info = pod_info(sim.state, "wc-0")
    assert info["app_state"] == REBALANCING and not info["ready"]
    assert pod_row(info)[6] == REBALANCING
    sim.send.status("wc-0", "TASK_RUNNING", labels=labels(RUNNING, ready=True), healthy=True)
    rec = sim.record("wc-0")
    assert rec.app_state == RUNNING and rec.serving
    assert TaskRecord.from_json(rec.to_json()) == rec  # stored and read back
    # a reconciliation answer (the master's word) keeps it; the task's end forgets it
    sim.send.update({"task_id": {"value": rec.task_id}, "state": "TASK_RUNNING", "source": "SOURCE_MASTER",
                     "agent_id": {"value": rec.agent_id}})
    assert sim.record("wc-0").app_state == RUNNING
    sim.send.status("wc-0", "TASK_FAILED", message="stuck out of RUNNING for 300s, now in ERROR")
    assert sim.record("wc-0").app_state is None and pod_info(sim.state, "wc-0")["app_state"] is None
    # a broker has none, and its stored record has no such key (the form of before the field)
    broker = sim.record("broker-0")
    assert broker.app_state is None and "app_state" not in broker.to_json()
    assert pod_row(pod_info(sim.state, "broker-0"))[6] == "-"
