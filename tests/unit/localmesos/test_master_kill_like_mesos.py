"""The master core answers a KILL of a task it does not hold as Apache Mesos does (master.cpp
Master::kill): by an explicit reconciliation of that task, for an unreachable task too."""
from __future__ import annotations

from localmesos.master import agents_core
from tests.helpers.localmesos_master import Harness, launch, task

PA = [{"type": "PARTITION_AWARE"}]


def _unreachable_task():
    h = Harness()
    aid = h.add_agent()
    fw = h.subscribe(capabilities=PA)
    h.allocate()
    [offer] = h.offers()
    h.accept(fw, [offer["id"]["value"]], [launch(task("t", aid, "cpus:1;mem:32"))])
    for _ in range(5):
        h.run(agents_core.ping_result, h.core, aid, False, h.now)
    assert "t" in fw.unreachable_tasks
    h.clear()
    return h, fw, aid


def test_kill_of_an_unreachable_task_is_answered_with_task_unreachable():
    h, fw, aid = _unreachable_task()
    h.now += 1
    h.run(h.core.kill, fw, {"task_id": {"value": "t"}, "agent_id": {"value": aid}}, h.now)
    [answer] = h.updates()
    assert (answer["state"], answer["reason"], answer["source"]) == \
        ("TASK_UNREACHABLE", "REASON_RECONCILIATION", "SOURCE_MASTER")
    assert answer["message"] == "Reconciliation: Task is unreachable"
    assert answer["agent_id"] == {"value": aid} and "unreachable_time" in answer and "uuid" not in answer
    assert not [e for e in h.effects if type(e).__name__ == "AgentCall"]
    assert h.core.counters["messages_kill_task"] == 1 and h.core.counters["messages_reconcile_tasks"] == 1


def test_kill_of_an_unreachable_task_without_agent_id_is_unknown():
    # Mesos' reconciliation case (6): no agent id given, the task not in Framework::tasks
    h, fw, _ = _unreachable_task()
    h.run(h.core.kill, fw, {"task_id": {"value": "t"}}, h.now)
    assert [u["state"] for u in h.updates()] == ["TASK_UNKNOWN"]


def test_kill_of_an_unknown_task_on_a_registered_agent_is_gone():
    h = Harness()
    aid = h.add_agent()
    fw = h.subscribe(capabilities=PA)
    h.clear()
    h.run(h.core.kill, fw, {"task_id": {"value": "nope"}, "agent_id": {"value": aid}}, h.now)
    assert [(u["state"], u["reason"]) for u in h.updates()] == [("TASK_GONE", "REASON_RECONCILIATION")]
