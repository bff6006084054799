"""Which override changes are set live, and which roll: config.rules and the rolling fingerprint
must agree (a removed live key rolls, since deleting the dynamic value only falls back to the
broker's static file until it restarts)."""
from __future__ import annotations

import attrs
from hypothesis import given, strategies as st

from config.rules import LIVE_BROKER_SETTINGS, broker_restart_required, live_broker_settings
from scheduler.core.decide import desired_fingerprints
from scheduler.core.pods import desired_pods
from tests.helpers.core_kit import Scenario, spec

KEYS = sorted(LIVE_BROKER_SETTINGS)[:3] + ["num.partitions", "log.retention.hours"]


def with_overrides(base, overrides: dict[str, str]):
    return attrs.evolve(base, kafka=attrs.evolve(base.kafka, overrides=overrides))


def running_sim(overrides: dict[str, str]) -> Scenario:
    sim = Scenario(with_overrides(spec(), overrides))
    sim.send.subscribed()
    sim.run_all_ready()
    sim.send.kafka_health({0, 1, 2}, replicas_by_broker={}, controller_id=0)
    return sim


def test_log_retention_hours_is_not_live():
    assert "log.retention.hours" not in LIVE_BROKER_SETTINGS and "log.retention.ms" in LIVE_BROKER_SETTINGS


def test_a_changed_value_is_live_an_added_or_removed_key_rolls():
    base = spec()
    a, b = with_overrides(base, {"log.retention.ms": "1"}), with_overrides(base, {"log.retention.ms": "2"})
    assert live_broker_settings(a, b) == {"log.retention.ms": "2"} and not broker_restart_required(a, b)
    none = with_overrides(base, {})
    assert live_broker_settings(a, none) == {"log.retention.ms": None} and broker_restart_required(a, none)
    assert live_broker_settings(none, a) == {"log.retention.ms": "1"} and broker_restart_required(none, a)
    hours = with_overrides(base, {"log.retention.hours": "5"})
    assert live_broker_settings(none, hours) == {} and broker_restart_required(none, hours)


overrides = st.dictionaries(st.sampled_from(KEYS), st.sampled_from(["1", "2", "compact"]), max_size=4)


@given(overrides, overrides)
def test_the_rolling_fingerprint_changes_exactly_when_a_restart_is_required(old, new):
    sim = running_sim(old)
    pods = [p for p in desired_pods(sim.state.spec) if p.kind == "broker"]
    before = desired_fingerprints(sim.state, pods)
    after = desired_fingerprints(attrs.evolve(sim.state, spec=with_overrides(sim.state.spec, new)), pods)
    required = broker_restart_required(sim.state.spec, with_overrides(sim.state.spec, new))
    assert all((before[p.name] != after[p.name]) == required for p in pods), (old, new)


def test_the_core_rolls_on_a_removed_live_key_and_not_on_a_changed_one():
    sim = running_sim({"log.retention.ms": "1000"})
    changed = with_overrides(sim.state.spec, {"log.retention.ms": "2000"})
    out = sim.send.command("update_config", "u", spec=changed).replied(ok=True).nothing_killed()
    assert out.reply.result["restart"] is False
    removed = with_overrides(sim.state.spec, {})
    out = sim.send.command("update_config", "u", spec=removed).replied(live={"log.retention.ms": None})
    assert out.reply.result["restart"] is True
    out.killed(count=1)  # the roll starts, one broker at a time
