"""Removed brokers are unregistered from the KRaft cluster once their task is gone (a fenced
registration left behind takes replicas of every topic created later: see
scheduler/core/broker_registrations.py)."""
from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from scheduler.core import actions as act
from scheduler.core import broker_registrations as reg
from scheduler.core import events as ev
from tests.helpers.core_kit import BASE, deployed
from tests.helpers.core_kit.runner import spec

FOUR = BASE.replace("brokers: 3,", "brokers: 4,")


def _health(sim, brokers=None):
    layout = {("t", p): (p % 3, (p + 1) % 3) for p in range(6)}  # nothing on broker 3
    return sim.send.kafka_health(brokers=brokers, assignment=layout, isr={tp: frozenset(r) for tp, r in layout.items()},
                                 replicas_by_broker={0: 4, 1: 4, 2: 4})


def _scaled_in():
    """4 brokers, broker-3 empty, then `scale brokers 3` (nothing to drain): (sim, outcome)."""
    sim = deployed(FOUR, agents=4)
    _health(sim)
    out = sim.send.command("scale_brokers", count=3, drain=True)
    return sim, out


def test_a_removed_broker_is_unregistered_once_its_task_is_gone_and_forgotten_after() -> None:
    sim, out = _scaled_in()
    out.replied(ok=True)
    assert sim.state.spec.kafka.brokers == 3
    assert reg.pending(sim.state) == (3,)
    sim.expect.persisted(f"properties/{reg.UNREGISTER}")
    # still running: an unregistered broker that runs would register again
    sim.now += 5
    assert not _health(sim).of(act.UnregisterBrokers)
    sim.send.status("broker-3", "TASK_KILLED")
    sim.now += 5
    (ask,) = _health(sim).of(act.UnregisterBrokers)
    assert ask.ids == (3,)
    sim.now += 5
    assert not _health(sim).of(act.UnregisterBrokers), "asked again before the answer or the retry time"
    sim.send.event(ev.BrokersUnregistered((3,), "", sim.now))
    assert reg.pending(sim.state) == () and reg.UNREGISTER not in sim.state.properties
    sim.now += reg.ASK_AGAIN_S + 1
    assert not _health(sim).of(act.UnregisterBrokers)


def test_a_failed_unregistration_is_asked_again_later_also_after_a_restart() -> None:
    sim, _ = _scaled_in()
    sim.send.status("broker-3", "TASK_KILLED")
    sim.now += 5
    assert _health(sim).of(act.UnregisterBrokers)
    sim.send.event(ev.BrokersUnregistered((3,), "ClusterTool failed (exit 1): timed out", sim.now))
    assert reg.pending(sim.state) == (3,) and sim.state.unregister_error
    sim.now += 10
    assert not _health(sim).of(act.UnregisterBrokers)
    sim.now += reg.ASK_AGAIN_S
    assert _health(sim).of(act.UnregisterBrokers)
    # a new scheduler reads the pending ids back from ZooKeeper and asks again
    sim.restart(dict(sim.store.tasks), dict(sim.store.properties))
    sim.send.subscribed()
    sim.now += 5
    (ask,) = _health(sim).of(act.UnregisterBrokers)
    assert ask.ids == (3,)


def test_a_broker_scaled_out_again_before_its_unregistration_is_kept() -> None:
    sim, _ = _scaled_in()
    assert reg.pending(sim.state) == (3,)
    sim.send.command("scale_brokers", count=4, command_id="again").replied(ok=True)
    assert reg.pending(sim.state) == ()


@given(st.integers(1, 6), st.integers(1, 6), st.sampled_from(["kraft", "zookeeper"]))
def test_removed_ids_are_exactly_the_brokers_the_new_spec_drops(before, after, mode) -> None:
    def spec_of(n: int):
        text = BASE.replace("brokers: 3,", f"brokers: {n},")
        if mode == "zookeeper":
            text = text.replace("kafka: {", "kafka: {mode: zookeeper, version: 3.9.2, ")
        return spec(text)
    got = reg.removed(spec_of(before), spec_of(after))
    assert got == (tuple(range(after, before)) if mode == "kraft" else ())
