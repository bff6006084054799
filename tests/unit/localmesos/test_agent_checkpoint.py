"""The agent's checkpoint and recovery decisions: what a checkpointed executor becomes after an
agent restart (adopted, killed, or its tasks lost), and that an executor's checkpoint restores the
executor and its tasks as they were."""
from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from localmesos.agent.checkpoint import CheckpointDir, executor_document, recovery_action, restore
from localmesos.agent.model import ExecutorEntry, TaskEntry


@pytest.mark.parametrize("running, checkpoint, action", [
    (True, True, "adopt"),   # it lives on and will re-subscribe
    (True, False, "kill"),   # a framework that does not checkpoint loses it with the agent
    (False, True, "lose"),
    (False, False, "lose"),
])
def test_what_a_recovered_executor_becomes(running, checkpoint, action):
    assert recovery_action(running, checkpoint) == action


ids = st.text(st.characters(min_codepoint=48, max_codepoint=122), min_size=1, max_size=8)
states = st.sampled_from(["TASK_STAGING", "TASK_RUNNING", "TASK_KILLING", "TASK_FINISHED"])


@given(fid=ids, eid=ids, pid=st.none() | st.integers(1, 2**22), checkpoint=st.booleans(),
       command_task=st.booleans(), tasks=st.dictionaries(ids, states, max_size=4))
def test_an_executor_checkpoint_restores_the_executor_and_its_tasks(fid, eid, pid, checkpoint, command_task,
                                                                    tasks):
    ex = ExecutorEntry(fid, eid, {"executor_id": {"value": eid}}, {"checkpoint": checkpoint},
                       Path("/sb") / eid, "c-" + eid, command_task=command_task, pid=pid)
    entries = [TaskEntry(fid, eid, {"task_id": {"value": tid}}, state=state) for tid, state in tasks.items()]
    back, restored = restore(executor_document(ex, entries))
    assert back.to_json() == ex.to_json() and back.checkpoint == checkpoint
    assert [tid for tid, _ in restored] == list(tasks)
    for (tid, task), state in zip(restored, tasks.values()):
        assert (task.framework_id, task.executor_id, task.state, task.launched) == (fid, eid, state, True)
        assert task.info == {"task_id": {"value": tid}}


def test_the_checkpoint_dir_keeps_executors_until_forgotten(tmp_path):
    meta = CheckpointDir(tmp_path / "meta")
    ex = ExecutorEntry("fw", "e1", {}, {"checkpoint": True}, tmp_path / "sb", "c1", pid=42)
    meta.save_executor(ex, [TaskEntry("fw", "e1", {"task_id": {"value": "t1"}}, state="TASK_RUNNING")])
    (tmp_path / "meta" / "executors" / "broken.json").write_text("{not json")
    assert [doc["executor_id"] for doc in meta.executors()] == ["e1"]
    assert meta.read("agent_id") is None
    meta.write("agent_id", "a1")
    assert meta.read("agent_id") == "a1"
    meta.forget_executor(ex)
    meta.forget_executor(ex)  # twice is fine
    assert meta.executors() == []
    assert not list((tmp_path / "meta").rglob("*.tmp"))
