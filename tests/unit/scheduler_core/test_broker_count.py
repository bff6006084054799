"""Every path that changes the broker count goes through one check (issue 12, defect 2)."""
from __future__ import annotations

import attrs
from hypothesis import given
from hypothesis import strategies as st

from scheduler.core import actions as act
from scheduler.core import events as ev
from scheduler.core.broker_count import refusal
from scheduler.core.pods import quorum_size
from tests.unit.scheduler_core.sim import BASE, Sim, spec


def health(now: float, replicas: dict[int, int]) -> ev.KafkaHealth:
    return ev.KafkaHealth(now, frozenset(replicas), {}, replicas, 0)


def deployed(brokers: int = 4) -> Sim:
    sim = Sim(spec(BASE.replace("brokers: 3", f"brokers: {brokers}")), agents=brokers)
    sim.step(ev.Subscribed("fw", sim.now))
    sim.run_all_ready()
    return sim


def kills(out: tuple) -> list[act.Kill]:
    return [a for a in out if isinstance(a, act.Kill)]


def test_config_update_lowering_brokers_goes_through_the_scale_in_check():
    # before the fix, a config file with kafka.brokers lowered was applied at once: no
    # confirmation, no replica check, broker-3 killed and its volume released
    sim = deployed(4)
    sim.step(health(sim.now, {0: 5, 1: 5, 2: 5, 3: 7}))
    fewer = spec(BASE.replace("brokers: 3", "brokers: 3"))
    out = sim.step(ev.Command("u", "update_config", {"spec": fewer}, sim.now))
    assert not out[-1].ok and out[-1].result["confirm_required"] and not kills(out)
    out = sim.step(ev.Command("u", "update_config", {"spec": fewer, "confirm": True}, sim.now))
    assert not out[-1].ok and "broker-3 holds 7 partition replicas" in out[-1].result["message"]
    assert not kills(out) and sim.state.spec.kafka.brokers == 4
    sim.step(health(sim.now, {0: 5, 1: 5, 2: 5, 3: 0}))
    out = sim.step(ev.Command("u", "update_config", {"spec": fewer, "confirm": True}, sim.now))
    assert out[-1].ok and [k.task_id.split("__")[0] for k in kills(out)] == ["broker-3"]


def test_config_update_never_rewrites_the_kraft_quorum():
    # 3 → 2 brokers once rewrote controller.quorum.voters from 3 voters to 1
    sim = deployed(3)
    sim.step(health(sim.now, {0: 0, 1: 0, 2: 0}))
    two = spec(BASE.replace("brokers: 3", "brokers: 2"))
    out = sim.step(ev.Command("u", "update_config", {"spec": two, "confirm": True}, sim.now))
    assert not out[-1].ok and "controller quorum" in out[-1].result["message"] and not kills(out)
    out = sim.step(ev.Command("s", "scale_brokers", {"count": 2, "confirm": True}, sim.now))
    assert not out[-1].ok and "controller quorum" in out[-1].result["message"] and not kills(out)
    assert sim.state.spec.kafka.brokers == 3


@given(st.integers(1, 12), st.integers(1, 12), st.booleans(),
       st.dictionaries(st.integers(0, 11), st.integers(0, 3)), st.booleans())
def test_no_broker_holding_replicas_or_a_vote_is_ever_removed(current, count, confirm, replicas, known):
    h = health(0.0, replicas) if known else None
    no = refusal("kraft", current, count, h, confirm)
    if no is None and count < current:
        assert confirm and h is not None
        assert all(replicas.get(b, 0) == 0 for b in range(count, current))
    if no is None:
        assert quorum_size(count) == quorum_size(current)
    if count == current:
        assert no is None


def test_scale_out_within_the_quorum_is_allowed_without_confirmation():
    assert refusal("kraft", 3, 5, None, False) is None
    assert refusal("zookeeper", 1, 3, None, False) is None
    assert refusal("kraft", 1, 3, None, True) is not None
