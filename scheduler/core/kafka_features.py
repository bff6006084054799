"""metadata.version after a Kafka upgrade: when kmf finalises it, and the downgrades it then refuses.

A KRaft cluster keeps running at the metadata.version it was formatted with (or last finalised) after
its brokers are rolled onto a newer Kafka: until the level is raised, the new binaries behave like the
old release and the roll can still be undone by rolling back. kmf raises it (Kafka's features API,
`kafka-features upgrade --release-version X.Y`) only once every Kafka pod runs the target spec (its
task's config fingerprint is the one the spec gives) and serves, and every broker is in Kafka's
metadata. The level Kafka answers is kept as the property ``kafka.metadata_release`` ("4.3"); a
config update to a Kafka older than that release is refused with the reason, since its brokers could
not read the cluster's metadata.

The same step learns the level of a cluster kmf has not finalised yet (a new one, or one older than
this module): the shell describes the features before upgrading and only upgrades when the level is
below the target.

ZooKeeper mode has no metadata.version (its inter.broker.protocol.version is left to overrides).
"""
from __future__ import annotations

import re

import attrs

from config import ServiceSpec
from scheduler.core import actions as act
from scheduler.core import events as ev
from scheduler.core import zk_migration
from scheduler.core.pods import desired_pods
from scheduler.core.records import Result
from scheduler.core.rolling import desired_fingerprints
from scheduler.core.state import State

METADATA_RELEASE = "kafka.metadata_release"
ASK_AGAIN_S = 120.0  # a features step that got no answer (or failed) is tried again after this
_LEVEL = re.compile(r"^(\d+)\.(\d+)(?:-IV\d+)?$")


def release(version: str) -> tuple[int, int]:
    """(major, minor) of a Kafka version ("4.3.1") or a metadata level ("4.3-IV0")."""
    parts = version.split("-", 1)[0].split(".")
    return int(parts[0]), int(parts[1])


def release_name(version: str) -> str:
    major, minor = release(version)
    return f"{major}.{minor}"


def release_of_level(level: str) -> str | None:
    """"4.3-IV0" → "4.3"; None for anything else."""
    m = _LEVEL.match(level.strip())
    return f"{m.group(1)}.{m.group(2)}" if m else None


def refusal(state: State, new: ServiceSpec) -> str | None:
    """Why `new` cannot run this cluster (its Kafka is older than the finalised metadata), or None."""
    finalised = state.properties.get(METADATA_RELEASE)
    if new.kafka.mode != "kraft" or not finalised or release(new.kafka.version) >= release(finalised):
        return None
    return (f"kafka.version: Kafka {new.kafka.version} cannot run this cluster: its metadata.version is "
            f"finalised at {finalised} (raised once every broker ran Kafka {finalised}.x), and a Kafka older "
            f"than {finalised} cannot read its metadata. A downgrade is possible only before the "
            "finalisation, while the upgrade's roll is still under way")


def wanted(state: State) -> str | None:
    """The release whose metadata.version should be finalised now, or None (not kraft, the level
    is already known to be it, or some Kafka pod does not run the target spec or does not serve)."""
    spec = state.spec
    if spec.kafka.mode != "kraft" or state.uninstalling or zk_migration.active(state.properties):
        return None  # Kafka forbids a metadata.version change during a ZooKeeper → KRaft migration
    target = release_name(spec.kafka.version)
    if state.properties.get(METADATA_RELEASE) == target:
        return None
    pods = [p for p in desired_pods(spec) if p.group == "kafka"]
    fingerprints = desired_fingerprints(state, pods)
    for pod in pods:
        rec = state.tasks.get(pod.name)
        if rec is None or not rec.serving or fingerprints[pod.name] is None or rec.fingerprint != fingerprints[pod.name]:
            return None
    brokers = {p.index for p in pods if "broker" in p.roles}
    if state.kafka is None or not brokers <= set(state.kafka.brokers_in_metadata):
        return None
    return target


def step(state: State, now: float) -> tuple[State, list[act.Action]]:
    """Ask the shell to finalise (at most once per ASK_AGAIN_S while no answer came)."""
    target = wanted(state)
    if target is None or (state.features_asked_at is not None and now - state.features_asked_at < ASK_AGAIN_S):
        return state, []
    return attrs.evolve(state, features_asked_at=now), [act.FinalizeFeatures(target)]


def answered(state: State, event: ev.KafkaFeatures) -> Result:
    """Kafka's finalised level after the step: kept as the floor for downgrades. A failure keeps
    `features_asked_at`, so the step is tried again ASK_AGAIN_S after it was asked."""
    found = release_of_level(event.finalized) if event.finalized else None
    if found is None:
        return attrs.evolve(state, features_error=event.error or f"no metadata.version in {event.finalized!r}"), ()
    state = attrs.evolve(state, features_asked_at=None, features_error=None,
                         properties={**state.properties, METADATA_RELEASE: found})
    return state, (act.Persist(puts=(("properties", METADATA_RELEASE, found),)),)
