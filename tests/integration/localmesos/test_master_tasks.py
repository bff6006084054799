"""localmesos master with real agents: task updates, reconciliation, agent loss and return,
master restart, through unmodified pymesos."""
from __future__ import annotations

import pytest

from tests.helpers.wait import wait_for
from tests.helpers.localmesos_tasks import command_task

pytestmark = pytest.mark.timeout(120)

PA = {"capabilities": [{"type": "PARTITION_AWARE"}], "checkpoint": True}
CHECKPOINT = {"checkpoint": True}


def launch_one(sched, driver, tid, cmd="sleep 100", agent=None, resources="cpus:0.5;mem:32"):
    offers = sched.wait("offer", lambda o: agent is None or o["agent_id"]["value"] == agent,
                        timeout=10)
    offer = offers[-1]
    driver.launchTasks([offer["id"]], [command_task(tid, offer, resources, cmd)],
                       filters={"refuse_seconds": 0})
    return offer


def states(sched, tid):
    return [u["state"] for u in sched.of("update") if u["task_id"]["value"] == tid]


def test_command_task_updates_in_order(lm_factory, lm_driver):
    lm = lm_factory(agents=1)
    sched, driver = lm_driver(lm.master_uri)
    offer = launch_one(sched, driver, "ok", "exit 0")
    sched.wait("update", lambda u: u["state"] == "TASK_FINISHED", timeout=20)
    updates = [u for u in sched.of("update") if u["task_id"]["value"] == "ok"]
    assert [u["state"] for u in updates] == ["TASK_STARTING", "TASK_RUNNING", "TASK_FINISHED"]
    for u in updates:
        assert u["agent_id"] == offer["agent_id"] and u["uuid"]
        assert u["source"] == "SOURCE_EXECUTOR"
    launch_one(sched, driver, "bad", "exit 3")
    sched.wait("update", lambda u: u["task_id"]["value"] == "bad" and u["state"] == "TASK_FAILED",
               timeout=20)
    wait_for(lambda: lm.get("/metrics/snapshot")["master/tasks_finished"] == 1.0, timeout=5)
    assert lm.get("/metrics/snapshot")["master/tasks_failed"] == 1.0


def test_reconciliation_implicit_and_explicit(lm_factory, lm_driver):
    lm = lm_factory(agents=1)
    sched, driver = lm_driver(lm.master_uri)
    launch_one(sched, driver, "r1")
    sched.wait("update", lambda u: u["state"] == "TASK_RUNNING", timeout=20)
    mark = len(sched.of("update"))
    driver.reconcileTasks([])
    [rec] = sched.wait("update", lambda u: u.get("reason") == "REASON_RECONCILIATION", timeout=5)
    assert rec["state"] == "TASK_RUNNING" and rec["source"] == "SOURCE_MASTER"
    assert rec["message"] == "Reconciliation: Latest task state" and "uuid" not in rec
    driver.reconcileTasks([{"task_id": {"value": "nope"}}])
    unknown = sched.wait("update", lambda u: u["task_id"]["value"] == "nope", timeout=5)[0]
    assert unknown["state"] == "TASK_LOST" and unknown["reason"] == "REASON_RECONCILIATION"
    driver.killTask({"value": "ghost"})
    ghost = sched.wait("update", lambda u: u["task_id"]["value"] == "ghost", timeout=5)[0]
    assert ghost["state"] == "TASK_LOST"
    assert len(sched.of("update")) >= mark + 3


def test_killed_agent_tasks_lost_or_unreachable(lm_factory, lm_driver):
    lm = lm_factory(agents=2)
    npa, npa_driver = lm_driver(lm.master_uri, framework=CHECKPOINT)
    pa, pa_driver = lm_driver(lm.master_uri, framework=PA)
    target = lm.agents[0]
    aid = next(s["id"] for s in lm.get("/master/slaves")["slaves"] if s["port"] == target.port)
    launch_one(npa, npa_driver, "n1", agent=aid)
    npa.wait("update", lambda u: u["state"] == "TASK_RUNNING", timeout=20)
    npa_driver.reviveOffers()
    launch_one(pa, pa_driver, "p1", agent=aid)
    pa.wait("update", lambda u: u["state"] == "TASK_RUNNING", timeout=20)
    lm.kill_agent(0)
    lost = npa.wait("update", lambda u: u["state"] == "TASK_LOST", timeout=10)[0]
    unreachable = pa.wait("update", lambda u: u["state"] == "TASK_UNREACHABLE", timeout=10)[0]
    assert "unreachable_time" in unreachable
    for u in (lost, unreachable):
        assert u["reason"] == "REASON_AGENT_REMOVED" and "uuid" not in u
    npa.wait("agent_lost", lambda a: a["value"] == aid, timeout=5)
    pa.wait("agent_lost", lambda a: a["value"] == aid, timeout=5)
    assert aid not in [s["id"] for s in lm.get("/master/slaves")["slaves"]]


def test_paused_agent_returns_with_same_id(lm_factory, lm_driver):
    lm = lm_factory(agents=1)
    sched, driver = lm_driver(lm.master_uri, framework=PA)
    offer = launch_one(sched, driver, "s1")
    aid = offer["agent_id"]["value"]
    sched.wait("update", lambda u: u["state"] == "TASK_RUNNING", timeout=20)
    lm.pause_agent(0)
    try:
        sched.wait("update", lambda u: u["state"] == "TASK_UNREACHABLE", timeout=10)
        fw = lm.get("/master/frameworks")["frameworks"][0]
        assert [t["id"] for t in fw["unreachable_tasks"]] == ["s1"]
    finally:
        lm.resume_agent(0)
    back = sched.wait("update", lambda u: u.get("reason") == "REASON_AGENT_REREGISTERED",
                      timeout=15)[0]
    assert back["state"] == "TASK_RUNNING"
    assert [s["id"] for s in lm.get("/master/slaves")["slaves"]] == [aid]
    fw = lm.get("/master/frameworks")["frameworks"][0]
    assert [t["id"] for t in fw["tasks"]] == ["s1"] and not fw["unreachable_tasks"]


def test_master_restart_framework_resubscribes_and_agents_return(lm_factory, lm_driver):
    lm = lm_factory(agents=1)
    sched, driver = lm_driver(lm.master_uri)
    fid = sched.wait("registered", timeout=10)[0]["value"]
    offer = launch_one(sched, driver, "keep")
    aid = offer["agent_id"]["value"]
    sched.wait("update", lambda u: u["state"] == "TASK_RUNNING", timeout=20)
    lm.restart_master()
    wait_for(lambda: [f["id"] for f in lm.get("/master/frameworks")["frameworks"]] == [fid]
             and lm.get("/master/frameworks")["frameworks"][0]["connected"], timeout=20,
             what="framework re-subscribed with its id")
    wait_for(lambda: [s["id"] for s in lm.get("/master/slaves")["slaves"]] == [aid], timeout=20,
             what="agent re-registered with its id")
    mark = len(sched.of("update"))
    driver.reconcileTasks([{"task_id": {"value": "keep"}}])
    rec = sched.wait("update", lambda u: u["task_id"]["value"] == "keep"
                     and u.get("reason") == "REASON_RECONCILIATION", timeout=10)
    assert rec[-1]["state"] == "TASK_RUNNING"
    assert len(sched.of("update")) > mark


def test_broken_link_loses_tasks_of_non_checkpointing_framework(lm_factory, lm_driver):
    lm = lm_factory(agents=1, master_flags=(
        "--localmesos_heartbeat_interval=1", "--agent_ping_timeout=1",
        "--max_agent_ping_timeouts=30"))
    sched, driver = lm_driver(lm.master_uri)  # checkpoint false
    launch_one(sched, driver, "nc")
    sched.wait("update", lambda u: u["state"] == "TASK_RUNNING", timeout=20)
    lm.kill_agent(0)
    lost = sched.wait("update", lambda u: u["state"] == "TASK_LOST", timeout=5)[0]
    assert lost["reason"] == "REASON_AGENT_DISCONNECTED"
    assert lost["message"].endswith("disconnected") and "uuid" not in lost


def test_dropped_status_update_is_retried_by_the_agent_in_order(lm_factory, lm_driver):
    lm = lm_factory(agents=1)
    sched, driver = lm_driver(lm.master_uri)
    sched.wait("offer", timeout=10)
    lm.set_faults(drop_status_updates=1)  # the task's first update (STARTING) is lost once
    launch_one(sched, driver, "retry", "sleep 100")
    sched.wait("update", lambda u: u["state"] == "TASK_RUNNING", timeout=30)
    assert states(sched, "retry")[:2] == ["TASK_STARTING", "TASK_RUNNING"]


def test_agent_marked_gone_gives_gone_by_operator(lm_factory, lm_driver):
    lm = lm_factory(agents=1)
    sched, driver = lm_driver(lm.master_uri, framework=PA)
    offer = launch_one(sched, driver, "g1")
    sched.wait("update", lambda u: u["state"] == "TASK_RUNNING", timeout=20)
    lm.pause_agent(0)
    try:
        sched.wait("update", lambda u: u["state"] == "TASK_UNREACHABLE", timeout=10)
        assert lm.mark_agent_gone(offer["agent_id"]["value"]) == 200
        gone = sched.wait("update", lambda u: u["state"] == "TASK_GONE_BY_OPERATOR", timeout=5)[0]
        assert gone["reason"] == "REASON_AGENT_REMOVED_BY_OPERATOR"
    finally:
        lm.resume_agent(0)
