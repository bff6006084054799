"""Recovery: what the scheduler does about failures it did not cause.

A task that fails on a live agent is relaunched in place (same reservation and volume) after an
exponential backoff (see `statuses`); a task whose agent is gone, or that stayed failed or
unreachable past ``permanent_failure_timeout_s``, or that an operator replaces, is placed anew on
another agent with the same identity (pod name, node id), and its old reservation is released
when that agent offers it again. A broker is moved only when Kafka says none of its partitions
relies on its data. After (re)subscribing, the scheduler reconciles every task it knows.
"""
from __future__ import annotations

import attrs

from kmfwire.task_states import VOLUME_FULL
from scheduler.core import actions as act
from scheduler.core import events as ev
from scheduler.core.maintenance_holds import waits_in_place
from scheduler.core.pods import desired_pods
from scheduler.core.reconcile import RECONCILE_FIRST_S
from scheduler.core.records import Result, put, replace, with_records
from scheduler.core.state import TERMINAL, Goal, PodKind, State, TaskRecord


def permanent_failures(state: State, now: float) -> tuple[State, list[act.Action]]:
    """Replace the pods failed or unreachable for ``permanent_failure_timeout_s``; a broker
    waits while its data is still needed (why goes into `last_placement`)."""
    limit = state.spec.policies.permanent_failure_timeout_s
    if limit <= 0:
        return state, []
    releasing = dict(state.releasing)
    changed, out = [], []
    held: dict[str, str] = {}
    health: ev.KafkaHealth | None = state.kafka
    node_ids = {p.name: p.node_id for p in desired_pods(state.spec) if p.kind == PodKind.BROKER}
    for rec in state.tasks.values():
        if rec.failed_since is None or now - rec.failed_since < limit or rec.goal != Goal.RUNNING:
            continue
        if waits_in_place(state, rec.pod, now):
            continue  # its agent is under maintenance: it comes back in place once the window ends
        if rec.kind == PodKind.BROKER and not rec.active and (rec.volume_full_since is not None
                                                              or rec.message.startswith(VOLUME_FULL)):
            # a full volume still holds the broker's data; moving would release (destroy) it, and
            # the space is the operator's to free (or `kmf pod replace` to move it on purpose).
            # Held until it is ready again, not only while the last failure says "full": a JVM
            # started as the space came back died of the full volume another way (a SIGBUS on a
            # memory-mapped index: "unsafe memory access"), and was moved (the chaos suite)
            held[rec.pod] = ("kept on its agent: its data volume is full; free space there and it "
                             "restarts in place (kmf pod replace moves it without its data)")
            continue
        if rec.active and rec.state != "TASK_UNREACHABLE":
            continue  # relaunched and starting (or running): not a permanent failure
        if rec.reservation is None and not rec.active:
            continue
        if (why := _still_serving(rec, node_ids.get(rec.pod), health, now, len(node_ids))) is not None:
            held[rec.pod] = why
            continue
        if rec.kind == PodKind.BROKER and len(node_ids) > 1:
            node = node_ids.get(rec.pod)
            risky = None if health is None else 0 if node is None else health.under_min_isr_without.get(node, 0)
            if risky is None or risky > 0:
                why = ("waiting to move it: the brokers' partition state is not known yet" if risky is None
                       else f"waiting to move it: {risky} of its partitions have fewer than "
                            "min.insync.replicas in-sync replicas on other brokers")
                held[rec.pod] = why
                continue
        if rec.active and rec.task_id:
            out.append(act.Kill(rec.task_id, rec.agent_id))
        changed.append(replace(rec, releasing,
                                f"failed or unreachable for {now - rec.failed_since:.0f}s: replacing it"))
    if held:
        state = attrs.evolve(state, last_placement={**state.last_placement, **held})
    if not changed:
        return state, []
    changed = [attrs.evolve(r, failed_since=None) for r in changed]
    return attrs.evolve(with_records(state, *changed), releasing=releasing), [put(*changed), *out]


SERVING_EVIDENCE_S = 30.0  # Kafka metadata older than this says nothing about who serves now


def _still_serving(rec: TaskRecord, node: int | None, health: ev.KafkaHealth | None, now: float, brokers: int) -> str | None:
    """Why an unreachable broker must not be placed anew yet, or None.

    Mesos lost its agent, not necessarily the broker: one cut from the master alone serves on,
    and a second broker with its node id must not start while it does. It is moved once Kafka
    has fenced it (gone from fresh metadata), or it comes back with its agent. (A lone broker's
    metadata goes stale when it is gone, as nobody else answers: stale metadata does not hold it.)"""
    if rec.kind != PodKind.BROKER or rec.state != "TASK_UNREACHABLE" or node is None:
        return None
    if health is None:
        return ("waiting to move it: its agent is unreachable and whether node id "
                f"{node} still serves is not known yet") if brokers > 1 else None
    if now - health.now <= SERVING_EVIDENCE_S and node in health.brokers_in_metadata:
        return (f"waiting to move it: its agent is unreachable but Kafka's metadata still lists "
                f"node id {node} as serving")
    return None


def on_subscribed(state: State, event: ev.Subscribed) -> Result:
    """(Re)subscribed: write the properties kept for this moment, reconcile, revive offers."""
    out: list[act.Action] = []
    props = dict(state.properties)
    unsaved = [k[len("unsaved."):] for k in props if k.startswith("unsaved.")]
    if unsaved:
        out.append(act.Persist(puts=tuple(("properties", k, props[k]) for k in unsaved)))
        for k in unsaved:
            del props[f"unsaved.{k}"]
    known = tuple((r.task_id, r.agent_id) for r in state.tasks.values() if r.task_id and r.state not in TERMINAL)
    if known:
        out.append(act.Reconcile(known))
    out.append(act.Reconcile(()))
    new_state = attrs.evolve(state, framework_id=event.framework_id, connected=True, properties=props,
                             suppressed=False, reconcile_pending=frozenset(t for t, _ in known),
                             reconcile_next=event.now + RECONCILE_FIRST_S, reconcile_interval=RECONCILE_FIRST_S,
                             last_implicit=event.now)
    out.append(act.Revive())
    return new_state, tuple(out)


def on_agent_lost(state: State, event: ev.AgentLost) -> Result:
    """Its pods start their permanent-failure clock; its reservations need no release."""
    changed = []
    for rec in state.tasks.values():
        on_agent = rec.agent_id == event.agent_id or (rec.reservation and rec.reservation.agent_id == event.agent_id)
        if on_agent and rec.failed_since is None:
            changed.append(attrs.evolve(rec, failed_since=event.now, ready=False, message="agent lost"))
    releasing = {k: v for k, v in state.releasing.items() if v != event.agent_id}
    new_state = attrs.evolve(with_records(state, *changed), releasing=releasing)
    return new_state, ((put(*changed),) if changed else ())
