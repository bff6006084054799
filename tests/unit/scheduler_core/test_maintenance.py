"""Mesos maintenance (issue 16): inverse offers announce a window for an agent; kmf stops its
broker through the stop gate and keeps it off the agent until the window ends (then relaunches it
in place on its volume), or moves it with its id when the window is long or has no end; it answers
the inverse offers and never has two brokers down at once."""
from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.core import actions as act
from scheduler.core import events as ev
from scheduler.core.maintenance_holds import Hold, window_of
from scheduler.core.offers import parse_offer
from scheduler.core.state import TaskRecord
from tests.helpers.core_kit import BASE, deployed

NS = 1_000_000_000


def unavailability(start: float, duration: float | None) -> dict:
    doc: dict = {"start": {"nanoseconds": int(start * NS)}}
    if duration is not None:
        doc["duration"] = {"nanoseconds": int(duration * NS)}
    return doc


def inverse_offer(sim, ioid: str, agent_id: str, start: float, duration: float | None) -> ev.InverseOffers:
    return ev.InverseOffers(({"id": {"value": ioid}, "agent_id": {"value": agent_id},
                              "framework_id": {"value": "fw"},
                              "unavailability": unavailability(start, duration)},), sim.now)


def agent_of(sim, pod: str) -> str:
    return sim.record(pod).reservation.agent_id


def offers_with_window(sim, agent_id: str, start: float, duration: float | None) -> list[dict]:
    docs = sim.cluster.offer_docs()
    for d in docs:
        if d["agent_id"]["value"] == agent_id:
            d["unavailability"] = unavailability(start, duration)
    return docs


def answers(outcome) -> tuple[list[str], list[str]]:
    acc = [i for a in outcome.of(act.AcceptInverseOffers) for i in a.inverse_offer_ids]
    dec = [i for a in outcome.of(act.DeclineInverseOffers) for i in a.inverse_offer_ids]
    return acc, dec


def test_a_short_window_stops_the_broker_in_place_and_relaunches_it_on_its_volume_after():
    sim = deployed()
    agent = agent_of(sim, "broker-1")
    volume = sim.record("broker-1").reservation.persistence_id
    start = sim.now + 60
    out = sim.send.event(inverse_offer(sim, "I1", agent, start, 600))
    out.killed("broker-1").persisted("properties/maintenance.broker-1")
    assert answers(out) == ([], [])  # kept while its broker stops
    assert sim.record("broker-1").kill_reason == "maintenance"
    # the broker stops gracefully: the inverse offer is accepted, the record keeps its volume
    out = sim.send.status("broker-1", "TASK_KILLED")
    assert answers(out) == (["I1"], [])
    rec = sim.record("broker-1")
    assert not rec.active and rec.reservation.persistence_id == volume and rec.attempts == 0
    # offers of the agent (with the window) do not relaunch it, nor do ticks before the end
    for _ in range(3):
        sim.send.offers(*offers_with_window(sim, agent, start, 600)).nothing_launched()
        sim.send.tick(30)
    assert sim.plans()["deploy"]["status"] != "COMPLETE"
    # the window is over: relaunched in place, on its reservation and volume
    sim.now = start + 601
    sim.send.tick().persisted("properties/maintenance.broker-1")
    assert "maintenance.broker-1" not in sim.state.properties
    sim.send.offers(*offers_with_window(sim, agent, start, 600)).launched("broker-1")
    rec = sim.record("broker-1")
    assert rec.agent_id == agent and rec.reservation.persistence_id == volume


def test_the_gate_declines_the_inverse_offer_while_a_partition_would_fall_below_min_isr():
    sim = deployed()
    agent = agent_of(sim, "broker-2")
    sim.send.kafka_health(under_min_isr_if_down={2: 4})
    out = sim.send.event(inverse_offer(sim, "I1", agent, sim.now + 60, 600))
    out.nothing_killed()
    assert answers(out) == ([], ["I1"])
    assert out.of(act.DeclineInverseOffers)[0].refuse_seconds <= 2
    assert "min.insync.replicas" in sim.state.maintenance_waits["broker-2"]
    sim.send.tick(1).nothing_killed()
    # Kafka can spare it now: it stops on the next decision
    sim.send.kafka_healthy()
    sim.send.tick(1).killed("broker-2")
    out = sim.send.event(inverse_offer(sim, "I2", agent, sim.now + 60, 600))
    assert answers(out) == ([], [])
    out = sim.send.status("broker-2", "TASK_KILLED")
    assert answers(out) == (["I2"], [])


def test_two_agents_in_maintenance_never_take_two_brokers_down_at_once():
    sim = deployed()
    a0, a1 = agent_of(sim, "broker-0"), agent_of(sim, "broker-1")
    out = sim.send.event(ev.InverseOffers(
        tuple(inverse_offer(sim, i, a, sim.now + 60, 600).offers[0] for i, a in (("I0", a0), ("I1", a1))),
        sim.now))
    assert out.killed_pods == ["broker-0"]
    assert answers(out) == ([], ["I1"])
    sim.send.status("broker-0", "TASK_KILLED")
    for _ in range(5):
        sim.send.kafka_healthy()
        sim.send.tick(1).nothing_killed()  # broker-0 is down for its window: broker-1 waits
    assert "broker-0" in sim.state.maintenance_waits["broker-1"]


def test_a_long_window_moves_the_broker_with_its_id_off_the_agent():
    sim = deployed(agents=4)
    agent = agent_of(sim, "broker-0")
    old = sim.record("broker-0").reservation
    start = sim.now + 60
    out = sim.send.event(inverse_offer(sim, "I1", agent, start, 7200))  # > maintenance_move_after_s
    out.killed("broker-0")
    sim.send.status("broker-0", "TASK_KILLED")
    assert sim.record("broker-0").reservation is None
    out = sim.send.offers(*offers_with_window(sim, agent, start, 7200))
    out.reserved("broker-0").released("broker-0")
    new = sim.record("broker-0").reservation
    assert new.agent_id != agent and new.persistence_id != old.persistence_id
    assert "maintenance.broker-0" not in sim.state.properties


def test_a_window_without_an_end_moves_the_broker():
    sim = deployed(agents=4)
    agent = agent_of(sim, "broker-2")
    sim.send.event(inverse_offer(sim, "I1", agent, sim.now, None)).killed("broker-2")
    assert json.loads(sim.state.properties["maintenance.broker-2"])["move"] is True


def test_machine_down_and_up_the_agent_returns_under_a_new_id_and_the_broker_relaunches_in_place():
    sim = deployed()
    agent = agent_of(sim, "broker-1")
    host = sim.record("broker-1").reservation.hostname
    volume = sim.record("broker-1").reservation.persistence_id
    start = sim.now + 5
    sim.send.event(inverse_offer(sim, "I1", agent, start, 900)).killed("broker-1")
    sim.send.status("broker-1", "TASK_KILLED")
    # machine DOWN: the agent is removed; the permanent-failure timeout (30 s) must not move it
    sim.cluster.agent(agent).alive = False
    sim.send.agent_lost(agent)
    for _ in range(4):
        sim.send.tick(20).nothing_killed()
        sim.send.offers().nothing_reserved()
    assert sim.record("broker-1").reservation.persistence_id == volume
    # machine UP: the agent registers again under a new id, with its checkpointed reservation
    returned = sim.cluster.agent(agent)
    returned.id, returned.alive = "A1-new", True
    out = sim.send.offers()
    out.launched("broker-1").nothing_released()
    rec = sim.record("broker-1")
    assert (rec.agent_id, rec.hostname, rec.reservation.persistence_id) == ("A1-new", host, volume)
    assert rec.reservation.agent_id == "A1-new"


def test_the_machine_taken_down_before_the_broker_stopped_keeps_its_volume():
    """Apache Mesos removes the agent of a machine put DOWN: a partition-aware framework hears
    TASK_GONE_BY_OPERATOR. A held broker waits in place for its volume all the same."""
    sim = deployed()
    agent = agent_of(sim, "broker-1")
    volume = sim.record("broker-1").reservation.persistence_id
    sim.send.kafka_health(under_min_isr_if_down={1: 1})
    sim.send.event(inverse_offer(sim, "I1", agent, sim.now, 600)).nothing_killed()
    sim.send.status("broker-1", "TASK_GONE_BY_OPERATOR")
    rec = sim.record("broker-1")
    assert rec.reservation is not None and rec.reservation.persistence_id == volume
    assert not sim.state.releasing


def test_a_hold_survives_a_scheduler_restart():
    sim = deployed()
    agent = agent_of(sim, "broker-0")
    start = sim.now + 10
    sim.send.event(inverse_offer(sim, "I1", agent, start, 600))
    sim.send.status("broker-0", "TASK_KILLED")
    sim.restart({p: TaskRecord.from_json(r) for p, r in sim.store.tasks.items()}, dict(sim.store.properties))
    sim.send.subscribed()
    sim.send.offers(*offers_with_window(sim, agent, start, 600)).nothing_launched()
    # an offer of its host without a window: the maintenance was cancelled or the machine is UP
    sim.send.offers().launched("broker-0")


def test_inverse_offers_of_an_agent_without_brokers_are_accepted_at_once():
    sim = deployed(agents=4)
    busy = {sim.record(f"broker-{i}").reservation.agent_id for i in range(3)}
    free = next(a.id for a in sim.agents if a.id not in busy)
    out = sim.send.event(inverse_offer(sim, "I9", free, sim.now, 60))
    assert answers(out) == (["I9"], [])
    out.nothing_killed()


def test_a_rescinded_inverse_offer_is_not_answered():
    sim = deployed()
    agent = agent_of(sim, "broker-0")
    sim.send.kafka_health(under_min_isr_if_down={0: 1})
    sim.send.event(inverse_offer(sim, "I1", agent, sim.now, 60))
    sim.send.kafka_healthy()
    sim.send.tick(1).killed("broker-0")
    sim.send.event(inverse_offer(sim, "I2", agent, sim.now, 60))
    sim.send.event(ev.InverseOfferRescinded("I2", sim.now))
    out = sim.send.status("broker-0", "TASK_KILLED")
    assert answers(out) == ([], [])


def test_a_new_reservation_avoids_agents_with_a_window_ahead():
    doc = {"id": {"value": "o"}, "agent_id": {"value": "a"}, "hostname": "h", "resources": [],
           "unavailability": unavailability(100.0, None)}
    assert parse_offer(doc).maintenance_end == float("inf")
    doc["unavailability"] = unavailability(100.0, 50)
    assert parse_offer(doc).maintenance_end == 150.0
    assert parse_offer({**doc, "unavailability": None}).maintenance_end is None


def test_the_policy_is_validated():
    from config import load_text
    from kmfwire.errors import KmfError
    text = BASE.replace("permanent_failure_timeout_s: 30}", "permanent_failure_timeout_s: 30, maintenance_move_after_s: -1}")
    try:
        load_text(text, "test.yaml", env={})
    except KmfError as exc:
        assert "policies.maintenance_move_after_s" in str(exc)
    else:
        raise AssertionError("a negative maintenance_move_after_s was accepted")


@given(st.integers(0, 2**62), st.one_of(st.none(), st.integers(0, 2**40)), st.booleans())
def test_a_window_reads_numbers_and_strings_alike(start_ns, duration_ns, as_text):
    fmt = str if as_text else int
    doc: dict = {"start": {"nanoseconds": fmt(start_ns)}}
    if duration_ns is not None:
        doc["duration"] = {"nanoseconds": fmt(duration_ns)}
    start, end = window_of(doc)
    assert start == start_ns / 1e9
    assert end is None if duration_ns is None else end == start_ns / 1e9 + duration_ns / 1e9
    hold = Hold("broker-0", "A0", "h", start, end, end is None, 1.0)
    assert Hold.from_json("broker-0", hold.to_json()) == hold


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["inverse", "stopped", "tick", "healthy", "at_risk"]),
                          st.integers(0, 2)), min_size=1, max_size=25))
def test_never_two_brokers_down_at_once(steps):
    sim = deployed()
    agents = [agent_of(sim, f"broker-{i}") for i in range(3)]
    n = 0
    for kind, i in steps:
        pod = f"broker-{i}"
        if kind == "inverse":
            n += 1
            sim.send.event(inverse_offer(sim, f"I{n}", agents[i], sim.now + 30, 600))
        elif kind == "stopped" and sim.record(pod).active and sim.record(pod).kill_reason:
            sim.send.status(pod, "TASK_KILLED")
        elif kind == "tick":
            sim.send.tick(1)
        elif kind == "healthy":
            sim.send.kafka_healthy()
        elif kind == "at_risk":
            sim.send.kafka_health(under_min_isr_if_down={i: 1})
        down = [p for p in ("broker-0", "broker-1", "broker-2")
                if not sim.record(p).active or sim.record(p).kill_reason]
        assert len(down) <= 1, down


def test_the_pods_view_and_kmf_pods_show_the_maintenance_state():
    from kmf.operator_cli import pod_row
    from scheduler.api.views import pod_info
    sim = deployed()
    agent = agent_of(sim, "broker-1")
    host = sim.record("broker-1").reservation.hostname
    assert "maintenance" not in pod_info(sim.state, "broker-1", sim.now)
    sim.send.kafka_health(under_min_isr_if_down={1: 2})
    sim.send.event(inverse_offer(sim, "I1", agent, sim.now + 60, 600))
    info = pod_info(sim.state, "broker-1", sim.now)
    assert info["maintenance"]["mode"] == "stop in place" and info["maintenance"]["hostname"] == host
    assert "min.insync.replicas" in info["maintenance"]["waiting"]
    row = pod_row(info)
    assert f"maintenance of {host}" in row[-1] and "min.insync.replicas" in row[-1]
    assert "maintenance" not in pod_info(sim.state, "broker-0", sim.now)


def test_a_window_far_ahead_stops_the_broker_only_shortly_before_it():
    from scheduler.core.maintenance_holds import LEAD_S
    sim = deployed()
    agent = agent_of(sim, "broker-0")
    start = sim.now + 3 * LEAD_S
    out = sim.send.event(inverse_offer(sim, "I1", agent, start, 600))
    out.nothing_killed().persisted("properties/maintenance.broker-0")
    assert answers(out) == ([], ["I1"])
    assert out.of(act.DeclineInverseOffers)[0].refuse_seconds > 10  # not asked again every second
    assert "ahead" in sim.state.maintenance_waits["broker-0"]
    # a crash before the window is recovered as usual
    sim.send.status("broker-0", "TASK_FAILED")
    sim.send.tick(2)
    sim.send.offers(*offers_with_window(sim, agent, start, 600)).launched("broker-0")
    sim.send.status("broker-0", "TASK_RUNNING", ready=True)
    sim.now = start - LEAD_S + 1
    sim.send.kafka_healthy()
    sim.send.tick().killed("broker-0")


def test_an_inverse_offer_of_a_window_already_over_holds_nothing():
    sim = deployed()
    agent = agent_of(sim, "broker-0")
    out = sim.send.event(inverse_offer(sim, "I1", agent, sim.now - 700, 600))
    out.nothing_killed().nothing_persisted()
    assert answers(out) == ([], ["I1"])


def test_a_window_cancelled_while_its_broker_stops_relaunches_it_at_once_without_a_failure():
    sim = deployed()
    agent = agent_of(sim, "broker-1")
    sim.send.event(inverse_offer(sim, "I1", agent, sim.now + 60, 600)).killed("broker-1")
    sim.send.offers().nothing_launched()  # offers without a window: the schedule was cancelled
    assert "maintenance.broker-1" not in sim.state.properties
    sim.send.status("broker-1", "TASK_KILLED")
    rec = sim.record("broker-1")
    assert rec.attempts == 0 and rec.backoff_until == 0.0 and rec.kill_reason is None
    sim.send.offers().launched("broker-1")


def test_without_maintenance_the_core_does_nothing_more():
    from scheduler.core.maintenance import maintain
    sim = deployed()
    state, out = maintain(sim.state, sim.now)
    assert state is sim.state and out == []


def test_app_instances_are_not_placed_on_an_agent_with_a_window_ahead():
    sim = deployed()
    rec = sim.record("wc-0")
    agent = rec.agent_id
    sim.send.status("wc-0", "TASK_FAILED")
    sim.send.tick(10)
    others_full = [a for a in sim.agents if a.id != agent]
    for a in others_full:
        a.alive = False  # only the agent in maintenance offers
    out = sim.send.offers(*offers_with_window(sim, agent, sim.now + 60, 600))
    out.nothing_launched()
    assert "maintenance window" in sim.state.last_placement["wc-0"]
    for a in others_full:
        a.alive = True
    sim.send.offers(*offers_with_window(sim, agent, sim.now + 60, 600)).launched("wc-0")
    assert sim.record("wc-0").agent_id != agent


def test_a_machine_still_down_after_its_window_gets_the_failure_timeout_before_its_broker_moves():
    sim = deployed()
    agent = agent_of(sim, "broker-1")
    volume = sim.record("broker-1").reservation.persistence_id
    start = sim.now + 5
    sim.send.event(inverse_offer(sim, "I1", agent, start, 100))
    sim.send.status("broker-1", "TASK_KILLED")
    sim.cluster.agent(agent).alive = False
    sim.send.agent_lost(agent)
    sim.now = start + 101  # the window is over; the machine is still DOWN
    sim.send.tick()
    assert "maintenance.broker-1" not in sim.state.properties
    sim.send.tick(20)  # within permanent_failure_timeout_s (30 s) of the window's end: it waits
    assert sim.record("broker-1").reservation.persistence_id == volume
    sim.send.tick(15)  # then it moves with its id
    assert sim.record("broker-1").reservation is None


def test_a_window_made_longer_while_the_broker_waits_in_place_moves_it():
    sim = deployed(agents=4)
    agent = agent_of(sim, "broker-1")
    volume = sim.record("broker-1").reservation.persistence_id
    start = sim.now + 30
    sim.send.event(inverse_offer(sim, "I1", agent, start, 600)).killed("broker-1")
    sim.send.status("broker-1", "TASK_KILLED")
    sim.now += 1
    sim.send.kafka_healthy(brokers=(0, 2))
    # the operator extends the window past maintenance_move_after_s: the broker moves with its id
    out = sim.send.event(inverse_offer(sim, "I2", agent, start, 7200))
    assert json.loads(sim.state.properties["maintenance.broker-1"])["move"] is True
    assert sim.record("broker-1").reservation is None
    assert answers(out) == (["I2"], [])
    out = sim.send.offers(*offers_with_window(sim, agent, start, 7200))
    out.reserved("broker-1").released("broker-1")
    assert sim.record("broker-1").reservation.persistence_id != volume
    assert sim.record("broker-1").reservation.agent_id != agent


def test_a_window_moved_later_keeps_the_broker_waiting_until_its_new_end():
    sim = deployed()
    agent = agent_of(sim, "broker-1")
    start = sim.now + 30
    sim.send.event(inverse_offer(sim, "I1", agent, start, 100))
    sim.send.status("broker-1", "TASK_KILLED")
    sim.send.event(inverse_offer(sim, "I2", agent, start, 500))  # longer, still under the limit
    sim.now = start + 200  # past the first end, before the new one
    sim.send.tick()
    sim.send.offers(*offers_with_window(sim, agent, start, 500)).nothing_launched()
    sim.now = start + 501
    sim.send.tick()
    sim.send.offers(*offers_with_window(sim, agent, start, 500)).launched("broker-1")


def test_a_held_broker_the_operator_replaces_is_placed_anew_at_once_off_the_held_host():
    sim = deployed(agents=4)
    agent = agent_of(sim, "broker-1")
    start = sim.now + 30
    sim.send.event(inverse_offer(sim, "I1", agent, start, 600)).killed("broker-1")
    sim.send.status("broker-1", "TASK_KILLED")
    sim.send.command("replace_pod", pod="broker-1", confirm=True, force=True).replied(ok=True)
    out = sim.send.offers(*offers_with_window(sim, agent, start, 600))
    out.reserved("broker-1").launched("broker-1")
    assert sim.record("broker-1").reservation.agent_id != agent
    assert "maintenance.broker-1" not in sim.state.properties
