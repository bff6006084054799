"""Bad input from the Mesos side, through `decide` alone: duplicate, stale and unknown status
updates, rescinded offers, offers with odd resources, and a master that restarts mid-deploy
(the framework subscribes again; offers it held are gone, launches it sent may be lost)."""
from __future__ import annotations

import attrs
from hypothesis import given, settings, strategies as st

from mesoslib.resources import Reservation, Resources, parse_resources_flag, ranges, scalar
from scheduler.core import actions as act
from scheduler.core import events as ev
from tests.helpers.core_kit import BASE, Scenario, spec, subscribed

# the labels kmf's reservations carry (checked against a real RESERVE below)
LABEL_SERVICE, LABEL_POD, LABEL_RESERVATION = "kmf.service", "kmf.pod", "kmf.reservation"


def deployed(agents: int = 3, text: str = BASE) -> Scenario:
    sim = subscribed(text, agents)
    sim.run_all_ready()
    # a broker's step is complete once Kafka shows its replicas in sync
    sim.send.kafka_healthy().plan_status("deploy", "COMPLETE")
    return sim


def status(task_id: str, state: str, agent: str | None, uuid: str | None = "dXVpZA==", **extra) -> dict:
    doc = {"task_id": {"value": task_id}, "state": state, "source": "SOURCE_EXECUTOR",
           "agent_id": {"value": agent} if agent else None, **extra}
    if uuid:
        doc["uuid"] = uuid
    return doc


# status updates --------------------------------------------------------------------------------

def test_a_duplicate_terminal_update_is_acknowledged_and_counts_once():
    sim = deployed()
    rec = sim.record("broker-1")
    failed = status(rec.task_id, "TASK_FAILED", rec.agent_id, message="exit 137")
    sim.send.update(failed)
    once = sim.record("broker-1")
    assert once.attempts == 1
    out = sim.send.update(failed)  # redelivered (its acknowledgement was lost)
    assert out == (act.Acknowledge(failed),)
    assert sim.record("broker-1") == once


def test_a_duplicate_killed_update_after_a_restart_is_not_a_failure():
    sim = deployed()
    rec = sim.record("wc-0")
    sim.send.command("restart_pod", "c1", pod="wc-0")
    killed = status(rec.task_id, "TASK_KILLED", rec.agent_id)
    sim.send.update(killed)
    after = sim.record("wc-0")
    assert after.attempts == 0 and after.backoff_until == 0.0
    out = sim.send.update(killed)
    assert out == (act.Acknowledge(killed),)
    assert sim.record("wc-0") == after


def test_a_stale_running_update_after_the_end_does_not_bring_the_task_back():
    sim = deployed()
    rec = sim.record("broker-0")
    sim.send.status(rec.task_id, "TASK_FAILED")
    ended = sim.record("broker-0")
    stale = status(rec.task_id, "TASK_RUNNING", rec.agent_id, labels={"labels": [
        {"key": "kmf.ready", "value": "true"}]})
    sim.send.update(stale).acknowledged(stale)
    assert sim.record("broker-0") == ended  # still failed: it is relaunched after its backoff
    sim.now = ended.backoff_until + 0.1
    sim.send.offers().launched("broker-0")


def test_updates_of_an_earlier_task_of_a_pod_leave_the_current_one_alone():
    sim = deployed()
    old = sim.record("wc-1")
    sim.send.status(old.task_id, "TASK_FAILED")
    sim.now = sim.record("wc-1").backoff_until + 0.1
    sim.run_all_ready(rounds=2)
    current = sim.record("wc-1")
    assert current.task_id != old.task_id and current.ready
    for state in ("TASK_FAILED", "TASK_KILLED", "TASK_FINISHED", "TASK_LOST"):
        sim.send.update(status(old.task_id, state, old.agent_id)).only_acknowledged()
    out = sim.send.update(status(old.task_id, "TASK_RUNNING", old.agent_id))
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
    doc = status(task_id, state, agent, uuid)
    out = sim.send.update(doc)
    assert sim.state.tasks == before.tasks and sim.state.spec == before.spec
    assert (act.Acknowledge(doc) in out) == bool(uuid)
    out.nothing_accepted().nothing_persisted()


def test_a_malformed_update_does_not_crash_the_core():
    sim = deployed()
    before = sim.state.tasks
    for doc in ({}, {"state": "TASK_RUNNING"}, {"task_id": {}}, {"task_id": {"value": 3}},
                {"task_id": {"value": "broker-0__x"}, "state": None, "labels": {"labels": [7]}}):
        sim.send.update(doc)
        assert sim.state.tasks == before


# offers ----------------------------------------------------------------------------------------

def offer(oid: str, agent: str, host: str, pool: Resources) -> dict:
    return {"id": {"value": oid}, "agent_id": {"value": agent}, "hostname": host,
            "resources": pool.to_json("pre"), "attributes": []}


def test_a_rescinded_offer_is_never_used():
    sim = subscribed()
    for oid in ("O-unknown", "", "O0"):
        sim.send.rescinded(oid).no_offer_answered().nothing_persisted()
    # the core holds no offer between events: a round answers exactly the offers it was given
    pool = parse_resources_flag("cpus:4;mem:8192;disk:20000;ports:[31000-31100]")
    fresh = tuple(offer(f"F{i}", f"A{i}", f"10.0.0.{i + 1}", pool) for i in range(3))
    sim.decide_only(ev.Offers(fresh, sim.now)).each_offer_answered_once()


def test_offers_without_ports_get_no_broker_and_are_declined():
    sim = Scenario(spec(), resources="cpus:4;mem:8192;disk:20000")
    sim.send.subscribed()
    out = sim.send.offers().nothing_launched().declined_all()
    out.declined("O0", "O1", "O2")
    why = " ".join(sim.state.last_placement.values())
    assert "port" in why, sim.state.last_placement


def test_resources_reserved_for_another_role_are_neither_used_nor_released():
    sim = subscribed()
    other = Resources([scalar("cpus", 4, "other-role", "someone"), scalar("mem", 8192, "other-role", "someone"),
                       scalar("disk", 20000, "other-role", "someone"),
                       ranges("ports", [(31000, 31100)], "other-role", "someone")])
    sim.send.offers(*(offer(f"X{i}", f"A{i}", f"10.0.0.{i + 1}", other) for i in range(3))).declined_all()
    sim.expect.declined("X0", "X1", "X2")


def test_a_volume_of_another_role_that_looks_like_ours_is_left_alone():
    """Another service of the same name in another role (or a mislabelled reservation): its
    reservation must not be destroyed or unreserved by this service."""
    sim = subscribed()
    reserve = sim.decide_only(ev.Offers(tuple(sim.cluster.offer_docs("R")), sim.now)).operations("RESERVE")[0]
    ours = reserve["reserve"]["resources"][0]["reservation"]["labels"]["labels"]
    assert {label["key"] for label in ours} == {LABEL_SERVICE, LABEL_POD, LABEL_RESERVATION}
    labels = ((LABEL_SERVICE, "kafka"), (LABEL_POD, "broker-0"), (LABEL_RESERVATION, "r-not-ours"))
    theirs = (Reservation("DYNAMIC", "other-role", "someone", labels),)
    pool = Resources([attrs.evolve(r, reservations=theirs) for r in
                      parse_resources_flag("cpus:1;mem:1024;disk:1000")]) + \
        parse_resources_flag("cpus:4;mem:8192;disk:20000;ports:[31000-31100]")
    out = sim.decide_only(ev.Offers((offer("Y0", "A0", "10.0.0.1", pool),), sim.now)).nothing_released()
    for task in out.launches:
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
    sim = subscribed()
    docs = [{"id": {"value": "Z0"}, "agent_id": agent, "hostname": hostname, "resources": resources}]
    if with_ok:
        docs.append(offer("Z1", "A1", "10.0.0.2", parse_resources_flag("cpus:4;mem:8192;disk:20000;ports:[31000-31100]")))
    # every offer is answered exactly once (an unanswered one would be hoarded), and none of the
    # odd ones holds enough for any pod, so it is declined
    out = sim.decide_only(ev.Offers(tuple(docs), sim.now)).each_offer_answered_once()
    out.accepted(*(["Z1"] if with_ok else []))
    assert [a.offer_ids for a in out.accepts] == ([("Z1",)] if with_ok else [])


# a master that restarts mid-deploy -------------------------------------------------------------

def test_a_master_restart_mid_deploy_reconciles_and_completes_without_a_second_launch():
    sim = subscribed()
    first = sim.send.offers().launched("broker-0", "broker-1", "broker-2").launches  # the quorum's launches are sent ...
    ids = {t["name"]: t["task_id"]["value"] for t in first}
    running, lost = ids["broker-0"], ids["broker-1"]
    sim.send.status(running, "TASK_RUNNING", ready=True)
    # ... the master restarts: the scheduler is disconnected and subscribes again
    sim.send.disconnected()
    sim.offers.clear()  # offers from before are void
    # explicit, every launched task
    sim.send.subscribed().reconciled(*ids.values())
    assert {tid for tid, _ in sim.expect.reconciles[0].tasks} == set(ids.values())
    # the master's answers: one runs, one never reached its agent, one is still being launched
    sim.send.update({"task_id": {"value": running}, "state": "TASK_RUNNING", "source": "SOURCE_MASTER",
                     "agent_id": {"value": sim.tasks[running]["agent"].id}})
    sim.send.status(lost, "TASK_DROPPED")
    assert sim.record("broker-0").ready
    sim.now += 5
    sim.run_all_ready()
    sim.send.kafka_healthy().plan_status("deploy", "COMPLETE")
    all_launched = sim.history().launches
    by_pod: dict[str, list[str]] = {}
    for t in all_launched:
        by_pod.setdefault(t["name"], []).append(t["task_id"]["value"])
    assert by_pod["broker-0"] == [running] and by_pod["broker-2"] == [ids["broker-2"]]
    assert len(by_pod["broker-1"]) == 2 and by_pod["broker-1"][0] == lost  # relaunched once
    assert len({tid for tids in by_pod.values() for tid in tids}) == len(all_launched)
