"""The rolling update: an outdated pod (its task's config fingerprint differs from the one its
pod would get now) restarts in place, one per placement group at a time; brokers only when the
`StopGate` lets them, a stream app's instances only while Kafka shows its consumer group not
rebalancing (and, autoscaled, caught up: `app_group_blocker`). The step a group waits at is timed from `update.waiting_since.<group>`.
"""
from __future__ import annotations

from typing import Mapping

import attrs

from scheduler.core import actions as act
from scheduler.core import events as ev
from scheduler.core.artifacts import identity as artifact_identity
from scheduler.core.plans import held
from scheduler.core.pods import PodDef, desired_pods
from scheduler.core.records import put, with_records
from scheduler.core.state import KillReason, PodKind, State, TaskRecord
from scheduler.core.stop_gate import StopGate, not_serving
from scheduler.core.taskinfo import bootstrap_servers, fingerprint, task_data, voters


def desired_fingerprints(state: State, pods: list[PodDef]) -> dict[str, str | None]:
    """The config fingerprint each pod's task would be launched with now (None: not known yet,
    a broker without a reservation or before the KRaft quorum is known)."""
    quorum = voters(state.tasks, pods)
    boot = bootstrap_servers(state.tasks, pods)
    out: dict[str, str | None] = {}
    for pod in pods:
        rec = state.tasks.get(pod.name)
        if pod.kind == PodKind.BROKER and (rec is None or rec.reservation is None
                                           or (state.spec.kafka.mode == "kraft" and quorum is None)):
            out[pod.name] = None
            continue
        out[pod.name] = fingerprint(pod, task_data(state.spec, pod, rec, state.properties, quorum, boot),
                                    artifact_identity(state.spec, pod, state.served))
    return out


@attrs.frozen
class RollDecision:
    kill: tuple[PodDef, ...]  # one per group at most
    waits: Mapping[str, str]  # outdated pod (not held by the operator) → what it waits for
    waiting_groups: frozenset[str]  # groups whose next step waits


def roll_decision(state: State, now: float, pods: list[PodDef] | None = None,
                  wanted: Mapping[str, str | None] | None = None) -> RollDecision:
    """The rolling update, pure: which outdated pod of each group restarts now, and why the
    others wait. Brokers go through `broker_stop_blocker`; steps the operator holds are skipped."""
    if state.uninstalling:
        return RollDecision((), {}, frozenset())
    pods = desired_pods(state.spec) if pods is None else pods
    wanted = desired_fingerprints(state, pods) if wanted is None else wanted
    groups: dict[str, list[PodDef]] = {}
    for pod in pods:
        groups.setdefault(pod.group, []).append(pod)
    kill: list[PodDef] = []
    waits: dict[str, str] = {}
    waiting_groups: set[str] = set()
    health: ev.KafkaHealth | None = state.kafka
    gate: StopGate | None = None
    for group, members in groups.items():
        recs = [state.tasks.get(p.name) for p in members]
        outdated = [p for p, r in zip(members, recs)
                    if r is not None and r.active and not r.kill_reason
                    and wanted[p.name] is not None and r.fingerprint != wanted[p.name]
                    and held(state, "update", p) is None]
        if not outdated:
            continue
        if group == "kafka":
            # the active controller goes last
            active = health.controller_id if health is not None else None
            outdated.sort(key=lambda p: (p.node_id == active, p.is_controller, p.index))
        busy = {p.name: why for p, r in zip(members, recs) if (why := not_serving(r))}
        chosen = None
        if busy and (group != "kafka" or len(members) == 1):
            first = min(busy)
            why = f"{first} is {busy[first]}: one at a time"
            waits.update({p.name: why for p in outdated})
        elif group == "kafka":
            gate = StopGate(state, pods, now) if gate is None else gate
            for p in outdated:
                if p.name in busy:  # the roll stops only pods that serve (a manual restart may)
                    waits[p.name] = f"{p.name} is {busy[p.name]}"
                    continue
                why = gate.blocker(p)
                if why is None:
                    chosen = p
                    break
                waits[p.name] = why
                if len(busy) > 1 or (busy and p.name not in busy) or gate.stale_blocker:
                    # the same for every other candidate: say so without asking again
                    waits.update({o.name: why for o in outdated if o.name not in waits and o.name not in busy})
                    break
        else:
            why = app_group_blocker(state, members, recs)
            if why is None:
                chosen = outdated[0]
            else:
                waits.update({p.name: why for p in outdated})
        if chosen is None:
            waiting_groups.add(group)
        else:
            kill.append(chosen)
            for p in outdated:  # the others of the group wait for this one
                if p is not chosen:
                    waits[p.name] = f"{chosen.name} restarts first: one at a time"
    return RollDecision(tuple(kill), waits, frozenset(waiting_groups))


# the states Kafka lists a consumer group in while it rebalances
REBALANCING = ("PREPARING_REBALANCING", "COMPLETING_REBALANCING")


def app_group_blocker(state: State, members: list[PodDef], recs: list[TaskRecord | None]) -> str | None:
    """Why an app's next instance may not restart yet, every instance being ready: Kafka's view of
    the app's consumer group, in a lag sample taken after the last of them became ready, must not
    be rebalancing and, for an autoscaled app, be no more than count × target_lag records (or
    count × target_lag_s seconds) behind (the roll must not pile a restart onto a group that has not caught up). None as well when the
    last sample does not list the group (an app that consumes nothing, or no sample at all)."""
    app = state.spec.app(members[0].app or "")
    if app is None:
        return None
    group = app.consumer_group(state.spec.name)
    info = state.app_groups.get(group)
    if info is None or state.app_groups_at is None:
        return None
    last_ready = max((r.ready_at for r in recs if r is not None and r.ready_at is not None), default=None)
    if last_ready is not None and state.app_groups_at <= last_ready:
        return (f"a sample of consumer group {group} taken after every instance is ready (one every "
                f"{state.spec.policies.lag_sample_interval_s:g} s)")
    if info.state in REBALANCING:
        return f"consumer group {group} is rebalancing ({info.state} in Kafka)"
    auto = app.autoscale
    if auto is None or not info.known:
        return None
    if auto.target_lag_s is not None and info.seconds is None:
        return f"a sample that tells how many seconds consumer group {group} is behind ({info.lag} records)"
    if auto.target_lag_s is not None and info.seconds > app.count * auto.target_lag_s:
        return (f"consumer group {group} is {info.seconds:.1f} s behind, more than {app.count} × target_lag_s "
                f"{auto.target_lag_s:g}")
    if auto.target_lag is not None and info.lag > app.count * auto.target_lag:
        return (f"consumer group {group} is {info.lag} records behind, more than {app.count} × target_lag "
                f"{auto.target_lag}")
    return None


def roll(state: State, now: float) -> tuple[State, list[act.Action]]:
    """Restart one outdated pod per group when it is safe (rolling update); remember since when
    a group's next step waits (policies.update_step_timeout_s)."""
    decision = roll_decision(state, now)
    out: list[act.Action] = []
    changed: list[TaskRecord] = []
    health: ev.KafkaHealth | None = state.kafka
    for pod in decision.kill:
        rec = state.tasks[pod.name]
        assert rec.task_id is not None  # roll_decision kills only active tasks
        changed.append(attrs.evolve(rec, kill_reason=KillReason.UPDATE,
                                    message="restarting with the new configuration"))
        why = f"rolling update of {pod.name}"
        if pod.group == "kafka" and health is not None:
            why += (f": Kafka metadata asked {now - health.now:.1f}s ago (from broker {health.answered_by}) "
                    f"shows {health.under_replicated} under-replicated partitions")
        out.append(act.Kill(rec.task_id, rec.agent_id, why))
    props = dict(state.properties)
    puts, deletes = [], []
    for group in {p.group for p in desired_pods(state.spec)} | {k.split(".", 2)[2] for k in props
                                                                if k.startswith("update.waiting_since.")}:
        key = f"update.waiting_since.{group}"
        if group in decision.waiting_groups and key not in props:
            props[key] = repr(now)
            puts.append(("properties", key, props[key]))
        elif group not in decision.waiting_groups and key in props:
            del props[key]
            deletes.append(("properties", key))
    if puts or deletes:
        state = attrs.evolve(state, properties=props)
        out.insert(0, act.Persist(puts=tuple(puts), deletes=tuple(deletes)))
    if not changed:
        return state, out
    return attrs.evolve(with_records(state, *changed), last_roll_kill=now), [put(*changed), *out]
