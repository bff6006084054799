"""Defects found by running kmf on Apache Mesos 1.12 (issue 13), as pure tests of the core."""
from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mesoslib.resources import Resources, parse_resources_flag, ranges
from scheduler.core import actions as act
from scheduler.core.offers import choose_ports, take_unreserved
from tests.helpers.core_kit import BASE, Outcome, Scenario, spec, subscribed


# ------------------------------------------------------------------ ports: never more than asked

port_ranges = st.lists(st.tuples(st.integers(1, 2000), st.integers(0, 50)), min_size=0, max_size=5).map(
    lambda pairs: sorted({(b, b + n) for b, n in pairs}))


def _disjoint(pairs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for begin, end in pairs:
        if out and begin <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((begin, end))
    return out


@given(port_ranges, st.integers(0, 120))
def test_choose_ports_never_gives_more_ports_than_asked(pairs, count):
    spans = _disjoint(pairs)
    pool = Resources([ranges("ports", spans)]) if spans else Resources()
    free = sum(e - b + 1 for b, e in spans)
    chosen = choose_ports(pool, count)
    if count > free:
        assert chosen is None
    else:
        assert chosen is not None and len(chosen) == count == len(set(chosen))
        assert all(any(b <= p <= e for b, e in spans) for p in chosen)


def test_a_task_asking_for_no_port_takes_none():
    pool = parse_resources_flag("cpus:4;mem:4096;disk:20000;ports:[31000-32000]")
    assert choose_ports(pool, 0) == []
    taken, chosen = take_unreserved(pool, "kafka-role", 1, 256, 0, 0)
    assert chosen == [] and not taken.ranges_of("ports")


def test_stream_app_launch_holds_no_port():
    """Through decide(): an app instance's TaskInfo and executor carry no ports resource."""
    sim = subscribed()
    sim.run_all_ready()
    apps = [t["info"] for t in sim.tasks.values() if t["info"]["name"].startswith("wc-")]
    assert len(apps) == 2
    for info in apps:
        for res in list(info["resources"]) + list(info["executor"]["resources"]):
            assert res["name"] != "ports", (info["name"], res)


# ------------------------------------------------------------------ no KILL storm for unreachable


def _reconciliation(task_id: str, agent_id: str, state: str = "TASK_UNREACHABLE") -> dict:
    # what Apache Mesos sends for a KILL of a task it has not in Framework::tasks (master.cpp
    # Master::kill → reconcile): SOURCE_MASTER, REASON_RECONCILIATION, no uuid (not acknowledged)
    return {"task_id": {"value": task_id}, "state": state, "agent_id": {"value": agent_id},
            "source": "SOURCE_MASTER", "reason": "REASON_RECONCILIATION",
            "message": "Reconciliation: Task is unreachable"}


def _moved_broker(sim: Scenario):
    sim.send.subscribed()
    sim.run_all_ready()
    rec = sim.record("broker-2")
    agent = sim.cluster.agent(rec.reservation.agent_id)
    agent.alive = False
    sim.send.agent_lost(agent.id)
    sim.send.status(rec.task_id, "TASK_UNREACHABLE")
    sim.now += 31
    sim.send.kafka_health({0, 1}, replicas_by_broker={}, controller_id=0, under_min_isr_without={2: 0})
    out = sim.send.tick()
    assert act.Kill(rec.task_id, rec.agent_id) in out  # the one KILL when the task is given up
    return rec, agent, out


def test_kill_of_an_unreachable_task_answered_by_reconciliation_does_not_loop():
    """A master answering every KILL of the unreachable task with TASK_UNREACHABLE (as Mesos does)
    and kmf answering that with a KILL was the storm: count the KILLs over 200 such rounds."""
    sim = Scenario(spec(BASE.replace("count: 2", "count: 0")), agents=4)
    rec, agent, out = _moved_broker(sim)
    pending = out.kills
    kills = len(pending)
    for _ in range(200):
        if not pending:
            break
        answers = sum((sim.send.update(_reconciliation(k.task_id, agent.id)) for k in pending), Outcome())
        pending = answers.kills
        kills += len(pending)
    assert kills == 1
    # the task reappears with its agent: now it is killed (a partition-aware framework's duty)
    agent.alive = True
    out = sim.send.update({"task_id": {"value": rec.task_id}, "state": "TASK_RUNNING",
                           "agent_id": {"value": agent.id}, "source": "SOURCE_MASTER"})
    assert act.Kill(rec.task_id, agent.id) in out


def test_unknown_unreachable_task_is_acknowledged_not_killed():
    sim = Scenario(spec())
    status = {**_reconciliation("broker-9__x", "A1"), "uuid": "dQ=="}
    assert sim.send.update(status) == (act.Acknowledge(status),)


def test_ended_task_seen_unreachable_is_not_killed():
    """The stale-live branch: a task kmf saw end (TASK_FAILED) reported unreachable later."""
    sim = subscribed(BASE.replace("count: 2", "count: 0"))
    sim.run_all_ready()
    rec = sim.record("broker-0")
    agent_id = rec.agent_id
    sim.send.status(rec.task_id, "TASK_FAILED")
    sim.send.update(_reconciliation(rec.task_id, agent_id)).nothing_killed()
    out = sim.send.update({**_reconciliation(rec.task_id, agent_id, "TASK_RUNNING")})
    assert act.Kill(rec.task_id, agent_id) in out
