"""Every path that changes the broker count goes through one check (issue 12, defect 2)."""
from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from scheduler.core import events as ev
from scheduler.core.broker_count import refusal
from config.models import quorum_size
from tests.helpers.core_kit import BASE, Scenario, spec, subscribed


def health(now: float, replicas: dict[int, int]) -> ev.KafkaHealth:
    return ev.KafkaHealth(now, frozenset(replicas), {}, replicas, 0)


def deployed(brokers: int = 4) -> Scenario:
    sim = subscribed(BASE.replace("brokers: 3", f"brokers: {brokers}"), agents=brokers)
    sim.run_all_ready()
    return sim


def test_config_update_lowering_brokers_goes_through_the_scale_in_check():
    # before the fix, a config file with kafka.brokers lowered was applied at once: no
    # confirmation, no replica check, broker-3 killed and its volume released
    sim = deployed(4)
    sim.send.event(health(sim.now, {0: 5, 1: 5, 2: 5, 3: 7}))
    fewer = spec(BASE.replace("brokers: 3", "brokers: 3"))
    sim.send.command("update_config", "u", spec=fewer).replied(ok=False, confirm_required=True).nothing_killed()
    sim.send.command("update_config", "u", spec=fewer, confirm=True).replied(
        ok=False, contains="broker-3 holds 7 partition replicas").nothing_killed()
    assert sim.state.spec.kafka.brokers == 4
    sim.send.event(health(sim.now, {0: 5, 1: 5, 2: 5, 3: 0}))
    sim.send.command("update_config", "u", spec=fewer, confirm=True).replied(ok=True).killed("broker-3")


def test_config_update_never_rewrites_the_kraft_quorum():
    # 3 → 2 brokers once rewrote controller.quorum.voters from 3 voters to 1
    sim = deployed(3)
    sim.send.event(health(sim.now, {0: 0, 1: 0, 2: 0}))
    two = spec(BASE.replace("brokers: 3", "brokers: 2"))
    sim.send.command("update_config", "u", spec=two, confirm=True).replied(
        ok=False, contains="controller quorum").nothing_killed()
    sim.send.command("scale_brokers", "s", count=2, confirm=True).replied(
        ok=False, contains="controller quorum").nothing_killed()
    assert sim.state.spec.kafka.brokers == 3


@given(st.integers(1, 12), st.integers(1, 12), st.booleans(),
       st.dictionaries(st.integers(0, 11), st.integers(0, 3)), st.booleans())
def test_no_broker_holding_replicas_or_a_vote_is_ever_removed(current, count, confirm, replicas, known):
    h = health(0.0, replicas) if known else None
    no = refusal("kraft", tuple(range(current)), count, h, confirm)
    if no is None and count < current:
        assert confirm and h is not None
        assert all(replicas.get(b, 0) == 0 for b in range(count, current))
    if no is None:
        assert quorum_size(count) == quorum_size(current)
    if count == current:
        assert no is None


def test_scale_out_within_the_quorum_is_allowed_without_confirmation():
    assert refusal("kraft", (0, 1, 2), 5, None, False) is None
    assert refusal("zookeeper", (0,), 3, None, False) is None
    assert refusal("kraft", (0,), 3, None, True) is not None


def test_a_scale_in_removes_the_last_ids_not_the_retired_ones():
    h = ev.KafkaHealth(0.0, frozenset({0, 1, 2, 4}), {}, {0: 1, 1: 1, 2: 1, 4: 1})
    no = refusal("kraft", (0, 1, 2, 4), 3, h, True)
    assert no is not None and "broker-4 holds 1 partition replicas" in no.message
    assert refusal("kraft", (0, 1, 2, 4), 3, h, True, drain=True) is None
