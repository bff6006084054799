"""Bad input from the Mesos side, through `decide` alone: duplicate, stale and unknown status
updates, rescinded offers, offers with odd resources, and a master that restarts mid-deploy
(the framework subscribes again; offers it held are gone, launches it sent may be lost)."""
from __future__ import annotations

from collections import Counter

import attrs
from hypothesis import given, settings, strategies as st

from mesoslib.resources import Reservation, Resources, parse_resources_flag, ranges, scalar
from scheduler.core import actions as act
from scheduler.core import events as ev
from scheduler.core.decide import decide, plans
from scheduler.core.offers import LABEL_POD, LABEL_RESERVATION, LABEL_SERVICE
from tests.unit.scheduler_core.sim import BASE, Sim, spec
from tests.unit.scheduler_core.test_deploy_recover import launches


def deployed(agents: int = 3, text: str = BASE) -> Sim:
    sim = Sim(spec(text), agents=agents)
    sim.step(ev.Subscribed("fw", sim.now))
    sim.run_all_ready()
    sim.kafka_healthy()  # a broker's step is complete once Kafka shows its replicas in sync
    assert plans(sim.state, sim.now)["deploy"]["status"] == "COMPLETE"
    return sim


def status(task_id: str, state: str, agent: str | None, uuid: str | None = "dXVpZA==", **extra) -> ev.Status:
    doc = {"task_id": {"value": task_id}, "state": state, "source": "SOURCE_EXECUTOR",
           "agent_id": {"value": agent} if agent else None, **extra}
    if uuid:
        doc["uuid"] = uuid
    return ev.Status(doc, 0.0)


def at(sim: Sim, event):
    return attrs.evolve(event, now=sim.now)


# status updates --------------------------------------------------------------------------------

def test_a_duplicate_terminal_update_is_acknowledged_and_counts_once():
    sim = deployed()
    rec = sim.record("broker-1")
    failed = at(sim, status(rec.task_id, "TASK_FAILED", rec.agent_id, message="exit 137"))
    sim.step(failed)
    once = sim.record("broker-1")
    assert once.attempts == 1
    out = sim.step(failed)  # redelivered (its acknowledgement was lost)
    assert out == (act.Acknowledge(failed.status),)
    assert sim.record("broker-1") == once


def test_a_duplicate_killed_update_after_a_restart_is_not_a_failure():
    sim = deployed()
    rec = sim.record("wc-0")
    sim.step(ev.Command("c1", "restart_pod", {"pod": "wc-0"}, sim.now))
    killed = at(sim, status(rec.task_id, "TASK_KILLED", rec.agent_id))
    sim.step(killed)
    after = sim.record("wc-0")
    assert after.attempts == 0 and after.backoff_until == 0.0
    out = sim.step(killed)
    assert out == (act.Acknowledge(killed.status),)
    assert sim.record("wc-0") == after


def test_a_stale_running_update_after_the_end_does_not_bring_the_task_back():
    sim = deployed()
    rec = sim.record("broker-0")
    sim.status(rec.task_id, "TASK_FAILED")
    ended = sim.record("broker-0")
    stale = at(sim, status(rec.task_id, "TASK_RUNNING", rec.agent_id, labels={"labels": [
        {"key": "kmf.ready", "value": "true"}]}))
    out = sim.step(stale)
    assert act.Acknowledge(stale.status) in out
    assert sim.record("broker-0") == ended  # still failed: it is relaunched after its backoff
    sim.now = ended.backoff_until + 0.1
    assert [t["name"] for t in launches(sim.offer_round())] == ["broker-0"]


def test_updates_of_an_earlier_task_of_a_pod_leave_the_current_one_alone():
    sim = deployed()
    old = sim.record("wc-1")
    sim.status(old.task_id, "TASK_FAILED")
    sim.now = sim.record("wc-1").backoff_until + 0.1
    sim.run_all_ready(rounds=2)
    current = sim.record("wc-1")
    assert current.task_id != old.task_id and current.ready
    for state in ("TASK_FAILED", "TASK_KILLED", "TASK_FINISHED", "TASK_LOST"):
        out = sim.step(at(sim, status(old.task_id, state, old.agent_id)))
        assert all(isinstance(a, act.Acknowledge) for a in out), out
    out = sim.step(at(sim, status(old.task_id, "TASK_RUNNING", old.agent_id)))
    assert act.Kill(old.task_id, old.agent_id) in out  # a task of an earlier life must not run
    assert sim.record("wc-1") == current


@settings(max_examples=60, deadline=None)
@given(task_id=st.text(max_size=40) | st.sampled_from(["broker-0__x", "broker-0", "wc-0__", "__", "nope__1"]),
       state=st.sampled_from(["TASK_RUNNING", "TASK_FAILED", "TASK_STAGING", "TASK_UNREACHABLE",
                              "TASK_GONE", "TASK_WHATEVER", ""]),
       agent=st.none() | st.sampled_from(["A0", "A9", ""]),
       uuid=st.none() | st.just("dXVpZA=="))
def test_updates_for_unknown_tasks_change_nothing_and_are_acknowledged_when_they_carry_a_uuid(
        task_id, state, agent, uuid):
    sim = deployed()
    if any(r.task_id == task_id for r in sim.state.tasks.values()):
        return
    before = sim.state
    event = at(sim, status(task_id, state, agent, uuid))
    out = sim.step(event)
    assert sim.state.tasks == before.tasks and sim.state.spec == before.spec
    assert (act.Acknowledge(event.status) in out) == bool(uuid)
    assert not any(isinstance(a, (act.Accept, act.Persist)) for a in out)


def test_a_malformed_update_does_not_crash_the_core():
    sim = deployed()
    before = sim.state.tasks
    for doc in ({}, {"state": "TASK_RUNNING"}, {"task_id": {}}, {"task_id": {"value": 3}},
                {"task_id": {"value": "broker-0__x"}, "state": None, "labels": {"labels": [7]}}):
        sim.step(ev.Status(doc, sim.now))
        assert sim.state.tasks == before


# offers ----------------------------------------------------------------------------------------

def offer(oid: str, agent: str, host: str, pool: Resources) -> dict:
    return {"id": {"value": oid}, "agent_id": {"value": agent}, "hostname": host,
            "resources": pool.to_json("pre"), "attributes": []}


def test_a_rescinded_offer_is_never_used():
    sim = Sim(spec())
    sim.step(ev.Subscribed("fw", sim.now))
    for oid in ("O-unknown", "", "O0"):
        out = sim.step(ev.OfferRescinded(oid, sim.now))
        assert not any(isinstance(a, (act.Accept, act.Decline, act.Persist)) for a in out)
    # the core holds no offer between events: a round answers exactly the offers it was given
    pool = parse_resources_flag("cpus:4;mem:8192;disk:20000;ports:[31000-31100]")
    fresh = tuple(offer(f"F{i}", f"A{i}", f"10.0.0.{i + 1}", pool) for i in range(3))
    _, out = decide(sim.state, ev.Offers(fresh, sim.now))
    answered = [o for a in out if isinstance(a, (act.Accept, act.Decline)) for o in a.offer_ids]
    assert sorted(answered) == ["F0", "F1", "F2"]


def test_offers_without_ports_get_no_broker_and_are_declined():
    sim = Sim(spec(), resources="cpus:4;mem:8192;disk:20000")
    sim.step(ev.Subscribed("fw", sim.now))
    out = sim.offer_round()
    assert not launches(out) and not any(isinstance(a, act.Accept) for a in out)
    declined = [oid for a in out if isinstance(a, act.Decline) for oid in a.offer_ids]
    assert sorted(declined) == ["O0", "O1", "O2"]
    why = " ".join(sim.state.last_placement.values())
    assert "port" in why, sim.state.last_placement


def test_resources_reserved_for_another_role_are_neither_used_nor_released():
    sim = Sim(spec())
    sim.step(ev.Subscribed("fw", sim.now))
    other = Resources([scalar("cpus", 4, "other-role", "someone"), scalar("mem", 8192, "other-role", "someone"),
                       scalar("disk", 20000, "other-role", "someone"),
                       ranges("ports", [(31000, 31100)], "other-role", "someone")])
    out = sim.step(ev.Offers(tuple(offer(f"X{i}", f"A{i}", f"10.0.0.{i + 1}", other) for i in range(3)), sim.now))
    assert not any(isinstance(a, act.Accept) for a in out), out
    assert {o for a in out if isinstance(a, act.Decline) for o in a.offer_ids} == {"X0", "X1", "X2"}


def test_a_volume_of_another_role_that_looks_like_ours_is_left_alone():
    """Another service of the same name in another role (or a mislabelled reservation): its
    reservation must not be destroyed or unreserved by this service."""
    sim = Sim(spec())
    sim.step(ev.Subscribed("fw", sim.now))
    labels = ((LABEL_SERVICE, "kafka"), (LABEL_POD, "broker-0"), (LABEL_RESERVATION, "r-not-ours"))
    theirs = (Reservation("DYNAMIC", "other-role", "someone", labels),)
    pool = Resources([attrs.evolve(r, reservations=theirs) for r in
                      parse_resources_flag("cpus:1;mem:1024;disk:1000")]) + \
        parse_resources_flag("cpus:4;mem:8192;disk:20000;ports:[31000-31100]")
    _, out = decide(sim.state, ev.Offers((offer("Y0", "A0", "10.0.0.1", pool),), sim.now))
    ops = [op for a in out if isinstance(a, act.Accept) for op in a.operations]
    for op in ops:
        if op["type"] in ("UNRESERVE", "DESTROY"):
            raise AssertionError(f"released another role's resources: {op}")
        if op["type"] == "LAUNCH":
            for task in op["launch"]["task_infos"]:
                assert all(r.get("role") != "other-role" and not any(
                    x.get("role") == "other-role" for x in r.get("reservations", []))
                    for r in task["resources"]), task["resources"]


ODD = st.sampled_from([
    [], [{"name": "gpus", "type": "SCALAR", "scalar": {"value": 1}}],
    [{"name": "cpus", "type": "SCALAR", "scalar": {"value": -1}}],
    [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.01}}],
    [{"name": "ports", "type": "RANGES", "ranges": {"range": [{"begin": 5, "end": 1}]}}],
    [{"name": "ports", "type": "RANGES", "ranges": {"range": []}}],
    [{"name": "mem", "type": "SET", "set": {"item": ["a"]}}],
    [{"name": "cpus", "type": "SCALAR"}],
    [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 4}, "revocable": {}}],
    [{"name": "disk", "type": "SCALAR", "scalar": {"value": 100}, "disk": {"source": {"type": "MOUNT"}}}],
    "not a list", None, [7], [{"type": "SCALAR"}],
])


@settings(max_examples=80, deadline=None)
@given(resources=ODD, with_ok=st.booleans(), hostname=st.none() | st.just("") | st.just("h"),
       agent=st.none() | st.just({}) | st.just({"value": "A7"}))
def test_odd_offers_are_declined_or_used_within_what_they_hold(resources, with_ok, hostname, agent):
    sim = Sim(spec())
    sim.step(ev.Subscribed("fw", sim.now))
    docs = [{"id": {"value": "Z0"}, "agent_id": agent, "hostname": hostname, "resources": resources}]
    if with_ok:
        docs.append(offer("Z1", "A1", "10.0.0.2", parse_resources_flag("cpus:4;mem:8192;disk:20000;ports:[31000-31100]")))
    state, out = decide(sim.state, ev.Offers(tuple(docs), sim.now))
    # every offer is answered exactly once (an unanswered one would be hoarded), and none of the
    # odd ones holds enough for any pod, so it is declined
    answered = Counter(o for a in out if isinstance(a, (act.Accept, act.Decline)) for o in a.offer_ids)
    assert answered["Z0"] == 1 and answered["Z1"] == (1 if with_ok else 0), out
    assert not any(isinstance(a, act.Accept) and "Z0" in a.offer_ids for a in out)
    if with_ok:
        assert any(isinstance(a, act.Accept) and a.offer_ids == ("Z1",) for a in out)


# a master that restarts mid-deploy -------------------------------------------------------------

def test_a_master_restart_mid_deploy_reconciles_and_completes_without_a_second_launch():
    sim = Sim(spec())
    sim.step(ev.Subscribed("fw", sim.now))
    first = launches(sim.offer_round())  # the quorum's launches are sent ...
    assert sorted(t["name"] for t in first) == ["broker-0", "broker-1", "broker-2"]
    ids = {t["name"]: t["task_id"]["value"] for t in first}
    running, lost = ids["broker-0"], ids["broker-1"]
    sim.status(running, "TASK_RUNNING", ready=True)
    # ... the master restarts: the scheduler is disconnected and subscribes again
    sim.step(ev.Disconnected(sim.now))
    sim.offers.clear()  # offers from before are void
    out = sim.step(ev.Subscribed("fw", sim.now))
    reconcile = next(a for a in out if isinstance(a, act.Reconcile))
    assert {tid for tid, _ in reconcile.tasks} == set(ids.values())  # explicit, every launched task
    # the master's answers: one runs, one never reached its agent, one is still being launched
    sim.step(ev.Status({"task_id": {"value": running}, "state": "TASK_RUNNING", "source": "SOURCE_MASTER",
                        "agent_id": {"value": sim.tasks[running]["agent"].id}}, sim.now))
    sim.status(lost, "TASK_DROPPED")
    assert sim.record("broker-0").ready
    sim.now += 5
    sim.run_all_ready()
    sim.kafka_healthy()
    assert plans(sim.state, sim.now)["deploy"]["status"] == "COMPLETE"
    all_launched = launches(sim.actions)
    by_pod: dict[str, list[str]] = {}
    for t in all_launched:
        by_pod.setdefault(t["name"], []).append(t["task_id"]["value"])
    assert by_pod["broker-0"] == [running] and by_pod["broker-2"] == [ids["broker-2"]]
    assert len(by_pod["broker-1"]) == 2 and by_pod["broker-1"][0] == lost  # relaunched once
    assert len({tid for tids in by_pod.values() for tid in tids}) == len(all_launched)
