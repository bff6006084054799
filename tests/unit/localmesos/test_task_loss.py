"""The master's one walk that ends a lost agent's tasks, in each of its modes: a broken link
(checkpointing frameworks spared, nothing recorded as forwarded), a removal (every framework,
REASON_AGENT_REMOVED) and an operator's MARK_AGENT_GONE (unreachable tasks too). Every ended task
becomes a completed one and the agent's executors are forgotten."""
from __future__ import annotations

from localmesos.master import agents_core
from localmesos.master.task_loss import TaskLoss, end_agent_tasks
from tests.unit.localmesos.test_master_core import Harness, task

PA = [{"type": "PARTITION_AWARE"}]


def cluster(h: Harness):
    """An agent running one task of a checkpointing and one of a non-checkpointing framework,
    plus an already finished task of the latter."""
    aid = h.add_agent()
    keeper = h.subscribe(stream="s1", checkpoint=True, capabilities=PA)
    plain = h.subscribe(stream="s2")
    reported = [{"framework_id": {"value": keeper.id}, "task": task("k", aid), "state": "TASK_RUNNING"},
                {"framework_id": {"value": plain.id}, "task": task("p", aid), "state": "TASK_RUNNING"},
                {"framework_id": {"value": plain.id}, "task": task("done", aid), "state": "TASK_FINISHED"}]
    h.add_agent(agent_id=aid, tasks=reported)
    for fw in (keeper, plain):
        fw.executors[(aid, "e-" + fw.id)] = object()
    h.clear()
    return aid, keeper, plain


def completed(fw):
    return {t.id: t.state for t in fw.completed_tasks}


def test_a_broken_link_loses_only_the_tasks_of_frameworks_that_do_not_checkpoint():
    h = Harness()
    aid, keeper, plain = cluster(h)
    h.run(end_agent_tasks, h.core, aid, TaskLoss.disconnected("host-a"), h.now)
    [update] = h.updates("s2")
    assert (update["task_id"], update["state"]) == ({"value": "p"}, "TASK_LOST")
    assert (update["reason"], update["message"]) == ("REASON_AGENT_DISCONNECTED", "Agent host-a disconnected")
    assert not h.updates("s1") and "k" in keeper.tasks and keeper.executors
    assert completed(plain) == {"p": "TASK_LOST", "done": "TASK_FINISHED"} and not plain.tasks
    assert not plain.executors
    assert plain.completed_tasks[0].forwarded_state != "TASK_LOST"  # not recorded as forwarded


def test_a_removed_agent_loses_every_frameworks_tasks():
    """As Apache Mesos' Master::__removeSlave (machine DOWN, no unreachable time): TASK_LOST for a
    framework that is not partition-aware, TASK_GONE_BY_OPERATOR for one that is."""
    h = Harness()
    aid, keeper, plain = cluster(h)
    h.run(end_agent_tasks, h.core, aid, TaskLoss.removed("host-a", "Operator initiated 'Machine DOWN'"), h.now)
    for stream, fw, tid, state, reason in (
            ("s1", keeper, "k", "TASK_GONE_BY_OPERATOR", "REASON_AGENT_REMOVED_BY_OPERATOR"),
            ("s2", plain, "p", "TASK_LOST", "REASON_AGENT_REMOVED")):
        [update] = h.updates(stream)
        assert (update["task_id"], update["state"], update["reason"]) == ({"value": tid}, state, reason)
        assert update["message"] == "Agent host-a removed: Operator initiated 'Machine DOWN'"
        assert completed(fw)[tid] == state and not fw.tasks and not fw.executors
        assert next(t for t in fw.completed_tasks if t.id == tid).forwarded_state == state
    assert completed(plain)["done"] == "TASK_FINISHED"  # terminal already: completed, no update


def test_an_agent_marked_gone_ends_its_unreachable_tasks_too():
    h = Harness()
    aid, keeper, plain = cluster(h)
    h.run(agents_core.mark_unreachable, h.core, aid, h.now)
    assert "k" in keeper.unreachable_tasks and "p" in plain.unreachable_tasks
    h.clear()
    h.run(end_agent_tasks, h.core, aid, TaskLoss.gone("host-a"), h.now)
    [pa] = h.updates("s1")
    [other] = h.updates("s2")
    assert (pa["state"], pa["reason"]) == ("TASK_GONE_BY_OPERATOR", "REASON_AGENT_REMOVED_BY_OPERATOR")
    assert other["state"] == "TASK_LOST"  # what a framework that is not partition-aware sees
    assert pa["message"] == "Agent host-a marked as gone by an operator"
    for fw, tid in ((keeper, "k"), (plain, "p")):
        assert completed(fw)[tid] == "TASK_GONE_BY_OPERATOR" and not fw.unreachable_tasks


def test_the_modes_differ_only_where_mesos_does():
    lost, removed, gone = TaskLoss.disconnected("h"), TaskLoss.removed("h", "c"), TaskLoss.gone("h")
    assert (lost.spare_checkpointing, removed.spare_checkpointing, gone.spare_checkpointing) == (True, False, False)
    assert (lost.record_forwarded, removed.record_forwarded, gone.record_forwarded) == (False, True, True)
    assert (lost.include_unreachable, removed.include_unreachable, gone.include_unreachable) == \
        (False, False, True)
