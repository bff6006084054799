"""`decide` is a function: the same state and event give the same new state and the same
actions, whatever came before. Checked along generated event sequences, on two scenarios built
apart (equal, not identical, inputs) and by deciding each step again on deep copies."""
from __future__ import annotations

import copy

from hypothesis import HealthCheck, given, settings, strategies as st

from scheduler.core import events as ev
from scheduler.core.decide import decide
from tests.helpers.core_kit import BASE, Outcome, Scenario, spec, subscribed

PODS = ["broker-0", "broker-1", "broker-2", "wc-0", "wc-1"]
STATES = ["TASK_RUNNING", "TASK_FAILED", "TASK_KILLED", "TASK_UNREACHABLE", "TASK_GONE", "TASK_LOST"]
EVENTS = st.lists(st.one_of(
    st.tuples(st.just("offers"), st.just(0)),
    st.tuples(st.sampled_from(["status", "ready"]), st.integers(0, len(PODS) - 1), st.sampled_from(STATES)),
    st.tuples(st.just("tick"), st.integers(0, 40)),
    st.tuples(st.sampled_from(["restart_pod", "replace_pod"]), st.integers(0, len(PODS) - 1)),
    st.tuples(st.sampled_from(["plan_interrupt", "plan_continue", "update_config", "scale_app", "uninstall"]),
              st.integers(0, 3)),
    st.tuples(st.just("agent_lost"), st.integers(0, 3)),
    st.tuples(st.just("kafka"), st.integers(0, 3)),
    st.tuples(st.sampled_from(["subscribed", "disconnected"]), st.just(0)),
), max_size=30)


def send(sim: Scenario, what: tuple) -> Outcome:
    kind, n = what[0], what[1]
    if kind == "offers":
        return sim.send.offers()
    if kind in ("status", "ready"):
        rec = sim.state.tasks.get(PODS[n])
        if rec is None or rec.task_id is None:
            return sim.send.tick()
        return sim.send.status(rec.task_id, "TASK_RUNNING" if kind == "ready" else what[2], ready=kind == "ready")
    if kind == "tick":
        return sim.send.tick(n)
    if kind in ("restart_pod", "replace_pod"):
        return sim.send.command(kind, pod=PODS[n], confirm=True)
    if kind in ("plan_interrupt", "plan_continue"):
        return sim.send.command(kind, plan=["deploy", "update", "recovery", "update"][n])
    if kind == "update_config":
        return sim.send.command(kind, spec=spec(BASE.replace("heap_mb: 256", f"heap_mb: {256 + 8 * n}")))
    if kind == "scale_app":
        return sim.send.command(kind, app="wc", count=n)
    if kind == "uninstall":
        return sim.send.command(kind) if n == 0 else sim.send.tick()
    if kind == "agent_lost":
        return sim.send.agent_lost(f"A{n}")
    if kind == "kafka":
        return sim.send.kafka_health(under_replicated=n, replicas_by_broker={b: n for b in range(3)})
    return sim.send.subscribed() if kind == "subscribed" else sim.send.disconnected()


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(events=EVENTS)
def test_the_same_state_and_event_give_the_same_result(events):
    a, b = subscribed(agents=4), subscribed(agents=4)
    assert a.state == b.state and a.state is not b.state
    for what in events:
        before = a.state
        out_a, out_b = send(a, what), send(b, what)
        assert out_a.event == out_b.event
        assert tuple(out_a) == tuple(out_b), (what, out_a, out_b)
        assert a.state == b.state, what
        again_state, again = decide(copy.deepcopy(before), copy.deepcopy(out_a.event))
        assert again == tuple(out_a) and again_state == a.state, what
        # deciding did not change its input
        assert decide(before, out_a.event) == (again_state, again)


def test_the_property_is_not_vacuous():
    """The sequences it runs reach launches, kills and replies, and a changed input changes the
    result."""
    sim = subscribed(agents=4)
    steps = [send(sim, w) for w in [("offers", 0), ("ready", 0, "TASK_RUNNING"), ("ready", 1, "TASK_RUNNING"),
                                    ("ready", 2, "TASK_RUNNING"), ("tick", 1), ("offers", 0), ("kafka", 0),
                                    ("restart_pod", 3)]]
    steps[0].launched("broker-0", "broker-1", "broker-2")
    steps[5].launched("wc-0")
    steps[7].killed("wc-0").replied(ok=True)
    other = sim.decide_only(ev.Command("c", "restart_pod", {"pod": "wc-1", "confirm": True}, sim.now))
    assert tuple(other) != tuple(steps[-1])
