"""metadata.version finalisation after a Kafka upgrade, and the downgrades refused after it."""
from __future__ import annotations

import attrs
from hypothesis import given, strategies as st

from scheduler.core import actions as act
from scheduler.core import events as ev
from scheduler.core import kafka_features as kf
from tests.helpers.core_kit import deployed
from tests.helpers.core_kit.runner import BASE, spec

OLD = BASE.replace("kafka: {brokers: 3,", "kafka: {version: 4.2.2, brokers: 3,")


def _finalizes(outcome) -> list[act.FinalizeFeatures]:
    return outcome.of(act.FinalizeFeatures)


def test_a_deployed_cluster_learns_its_level_once_and_keeps_it():
    sim = deployed(OLD)
    assert sim.state.features_asked_at is not None  # the deploy's health sample asked
    out = sim.send.kafka_healthy()
    assert _finalizes(out) == []  # asked already: not again before ASK_AGAIN_S
    out = sim.send.event(ev.KafkaFeatures("4.2-IV1", "", sim.now))
    assert out.persists and out.persists[0].puts == (("properties", kf.METADATA_RELEASE, "4.2"),)
    assert sim.state.properties[kf.METADATA_RELEASE] == "4.2"
    sim.now += kf.ASK_AGAIN_S + 1
    assert _finalizes(sim.send.kafka_healthy()) == []  # known: nothing to do


def test_a_step_that_failed_is_tried_again_after_a_while():
    sim = deployed(OLD)
    sim.send.event(ev.KafkaFeatures(None, "java not found", sim.now))
    assert sim.state.features_error == "java not found"
    assert _finalizes(sim.send.kafka_healthy()) == []
    sim.now += kf.ASK_AGAIN_S + 1
    assert _finalizes(sim.send.kafka_healthy()) == [act.FinalizeFeatures("4.2")]


def test_the_upgrade_is_finalised_only_when_every_broker_runs_the_new_version():
    sim = deployed(OLD)
    sim.send.event(ev.KafkaFeatures("4.2-IV1", "", sim.now))
    start = len(sim.actions)
    out = sim.send.command("update_config", spec=spec(BASE))  # 4.2.2 → 4.3.1: a roll
    assert out.reply.ok, out.reply
    ended: set[str] = set()
    for _ in range(40):  # the roll: each task the core kills ends, and relaunches ready
        for kill in sim.history(start).kills:
            if kill.task_id not in ended:
                ended.add(kill.task_id)
                sim.send.status(kill.task_id, "TASK_KILLED")
        sim.run_all_ready(rounds=2)
        sim.now += 1
        sim.send.kafka_healthy(controller_id=0)
        if _finalizes(sim.history(start)):
            break
    seen = _finalizes(sim.history(start))
    assert seen == [act.FinalizeFeatures("4.3")]
    wanted = kf.desired_fingerprints(sim.state, [p for p in kf.desired_pods(sim.state.spec) if p.group == "kafka"])
    assert all(sim.state.tasks[p].fingerprint == f for p, f in wanted.items())  # every broker rolled first
    assert sim.state.properties[kf.METADATA_RELEASE] == "4.2"  # not before Kafka says so
    sim.send.event(ev.KafkaFeatures("4.3-IV0", "", sim.now))
    assert sim.state.properties[kf.METADATA_RELEASE] == "4.3"


def test_no_step_while_a_broker_is_missing_from_kafka_or_not_serving():
    sim = deployed(OLD)
    state = attrs.evolve(sim.state, features_asked_at=None)
    assert kf.wanted(state) == "4.2"
    assert kf.wanted(attrs.evolve(state, kafka=attrs.evolve(state.kafka, brokers_in_metadata=frozenset({0, 1})))) is None
    down = {**state.tasks, "broker-1": attrs.evolve(state.tasks["broker-1"], ready=False)}
    assert kf.wanted(attrs.evolve(state, tasks=down)) is None
    zk = attrs.evolve(state, spec=attrs.evolve(state.spec, kafka=attrs.evolve(state.spec.kafka, mode="zookeeper")))
    assert kf.wanted(zk) is None


def test_a_downgrade_below_the_finalised_release_is_refused_with_the_reason():
    sim = deployed(BASE)
    sim.send.event(ev.KafkaFeatures("4.3-IV0", "", sim.now))
    tasks = {p: r.task_id for p, r in sim.state.tasks.items()}
    out = sim.send.command("update_config", spec=spec(OLD))
    assert not out.reply.ok and "finalised at 4.3" in str(out.reply.result)
    assert sim.state.spec.kafka.version == "4.3.1" and out.kills == []
    assert {p: r.task_id for p, r in sim.state.tasks.items()} == tasks


def test_before_finalisation_a_rollback_is_allowed():
    sim = deployed(OLD)
    sim.send.event(ev.KafkaFeatures("4.2-IV1", "", sim.now))
    assert sim.send.command("update_config", spec=spec(BASE)).reply.ok  # roll forward ...
    assert sim.send.command("update_config", spec=spec(OLD)).reply.ok  # ... and back, not finalised


@given(st.integers(3, 5), st.integers(0, 9), st.integers(3, 5), st.integers(0, 9))
def test_refusal_is_exactly_new_release_below_finalised(fmaj, fmin, nmaj, nmin):
    sim = deployed(BASE)
    state = attrs.evolve(sim.state, properties={**sim.state.properties, kf.METADATA_RELEASE: f"{fmaj}.{fmin}"})
    new = attrs.evolve(state.spec, kafka=attrs.evolve(state.spec.kafka, version=f"{nmaj}.{nmin}.0"))
    assert (kf.refusal(state, new) is not None) == ((nmaj, nmin) < (fmaj, fmin))


def test_levels_are_read_as_releases():
    assert kf.release_of_level("4.3-IV0") == "4.3" and kf.release_of_level("3.9-IV0") == "3.9"
    assert kf.release_of_level("0") is None and kf.release_of_level("") is None
