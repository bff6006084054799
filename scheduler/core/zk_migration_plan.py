"""The ZooKeeper → KRaft migration as a plan (pure): started by a config update, advanced on the
shell's observations of ZooKeeper (`MigrationObserved`, every few seconds while a migration is
under way), shown as the plan ``migration``. The phases and what each renders: zk_migration."""
from __future__ import annotations

import json
from typing import Any

import attrs

import config
from config import ServiceSpec
from scheduler.core import actions as act
from scheduler.core import events as ev
from scheduler.core import zk_migration as zm
from scheduler.core.pods import PodDef, desired_pods
from scheduler.core.records import Result
from scheduler.core.refusals import Refusal, accept, refuse
from scheduler.core.rolling import desired_fingerprints, roll
from scheduler.core.state import State

PLAN = "migration"
INTERRUPTED = "plan.migration.interrupted"  # the operator's pause: no next phase until continued
NOTE = "migration.note"  # what the last observation waits for (not persisted: the view's message)


def start(state: State, spec: ServiceSpec, cmd: ev.Command) -> Result:
    """Accept a config update that moves the service to KRaft: kept, with the phase, until the
    shell has read the ZooKeeper cluster's id (the controllers are formatted with it)."""
    target = json.dumps(config.spec_to_json(spec), sort_keys=True)
    props = {**state.properties, zm.PHASE: "cluster-id", zm.TARGET: target}
    return attrs.evolve(state, properties=props), (
        act.Persist(puts=(("properties", zm.PHASE, "cluster-id"), ("properties", zm.TARGET, target))),
        accept(cmd, "ZooKeeper → KRaft migration started: dedicated controllers join in migration mode, then each "
                    "broker rolls into migration mode, the controllers copy the metadata, each broker rolls to "
                    "KRaft, and the controllers finalise (kmf plan show migration)",
               diff=config.describe_update(state.spec, spec), restart=True, live={}))


def _current(state: State, pods: list[PodDef]) -> list[str]:
    """The pods of `pods` not yet running what they would be launched with now, or not serving."""
    wanted = desired_fingerprints(state, desired_pods(state.spec))  # the quorum is read off every pod
    out = []
    for pod in pods:
        rec = state.tasks.get(pod.name)
        if rec is None or not rec.serving or wanted[pod.name] is None or rec.fingerprint != wanted[pod.name]:
            out.append(pod.name)
    return out


def waiting_for(state: State, event: ev.MigrationObserved) -> str | None:
    """What the current phase waits for, by `event`'s reading of ZooKeeper (None: it is complete)."""
    ph = zm.phase(state.properties)
    kafka = [p for p in desired_pods(state.spec) if p.group == "kafka"]
    controllers = [p for p in kafka if p.roles == ("controller",)]
    brokers = [p for p in kafka if "broker" in p.roles]
    if ph == "cluster-id":
        return None if event.cluster_id else "the ZooKeeper cluster's id (read from Kafka's chroot)"
    if ph in ("controllers", "finalize"):
        behind = _current(state, controllers)
        return f"controllers to serve in their new mode: {', '.join(behind)}" if behind else None
    if ph in ("brokers-migrating", "brokers-kraft"):
        behind = _current(state, brokers)
        if behind:
            return f"brokers to roll and serve: {', '.join(behind)}"
        if ph == "brokers-migrating" and not event.copied:
            return ("the controllers' copy of the metadata from ZooKeeper (Kafka's /migration znode has no KRaft "
                    "offset yet: every broker must have registered with the quorum)")
    return None


def on_observed(state: State, event: ev.MigrationObserved) -> Result:
    """Advance the migration by one phase when the current one is complete (and the operator has
    not interrupted it)."""
    ph = zm.phase(state.properties)
    if ph is None or ph == zm.DONE or state.uninstalling:
        return state, ()
    why = waiting_for(state, event)
    if state.properties.get(INTERRUPTED) == "true":
        held = f"interrupted by the operator: {ph} goes on, the next phase waits for kmf plan continue migration"
        return attrs.evolve(state, migration_note=f"{why}; {held}" if why else held), ()
    if why is not None:
        return attrs.evolve(state, migration_note=why), ()
    after = zm.next_phase(ph)
    if ph == "cluster-id":  # the id is known: the KRaft spec becomes the target, its controllers launch
        from scheduler.core.spec_commands import set_spec  # spec_commands starts migrations

        assert event.cluster_id is not None  # waiting_for says so
        target = config.spec_from_json(json.loads(state.properties[zm.TARGET]))
        props = {k: v for k, v in state.properties.items() if k != zm.TARGET}
        props.update({"cluster_id": event.cluster_id, zm.PHASE: after})
        persist = act.Persist(puts=(("properties", "cluster_id", event.cluster_id), ("properties", zm.PHASE, after)),
                              deletes=(("properties", zm.TARGET),))
        new_state, out = set_spec(attrs.evolve(state, properties=props), target, event.now)
    else:
        # the new phase changes what pods would be launched with: the roll starts at once
        new_state, out = roll(attrs.evolve(state, properties={**state.properties, zm.PHASE: after}), event.now)
        persist = act.Persist(puts=(("properties", zm.PHASE, after),))
    return attrs.evolve(new_state, migration_note=waiting_for(new_state, event)), (persist, *out)


def steer(state: State, interrupt: bool, cmd: ev.Command) -> Result:
    """Interrupt or continue the migration as a whole: interrupted, the phase under way finishes
    its rolls but the next one does not start (hold before `finalize`, the point of no return)."""
    ph = zm.phase(state.properties)
    if ph is None or ph == zm.DONE:
        return state, (refuse(cmd, Refusal.NOT_FOUND, "no ZooKeeper → KRaft migration is under way"),)
    if interrupt:
        props = {**state.properties, INTERRUPTED: "true"}
        return attrs.evolve(state, properties=props), (
            act.Persist(puts=(("properties", INTERRUPTED, "true"),)),
            accept(cmd, f"plan migration interrupted: {ph} goes on, the next phase waits for kmf plan continue migration"))
    props = {k: v for k, v in state.properties.items() if k != INTERRUPTED}
    return attrs.evolve(state, properties=props), (
        act.Persist(deletes=(("properties", INTERRUPTED),) if INTERRUPTED in state.properties else ()),
        accept(cmd, "plan migration continued"))


def view(state: State) -> dict[str, Any] | None:
    """The plan ``migration`` (None: no migration ever started): one phase per migration phase."""
    ph = zm.phase(state.properties)
    if ph is None:
        return None
    at = zm.PHASES.index(ph)
    phases = []
    for i, name in enumerate(zm.PHASES[:-1]):
        status = "COMPLETE" if i < at else "IN_PROGRESS" if i == at else "PENDING"
        message = (state.migration_note or "") if i == at else ""
        phases.append({"name": name, "status": status, "strategy": "serial", "message": message,
                       "steps": [{"name": name, "status": status, "message": message}]})
    status = "COMPLETE" if ph == zm.DONE else "WAITING" if state.properties.get(INTERRUPTED) == "true" \
        else "IN_PROGRESS"
    return {"name": PLAN, "status": status, "strategy": "serial", "phases": phases, "errors": []}
