"""Plans: which pods may be reserved or launched now, and the plan views the API shows.

Plans are derived from the task records on every decision rather than stored as a separate
truth: a step is COMPLETE when its pod's task is ready with the current fingerprint and, for a
broker, Kafka metadata asked after it became ready shows it in the ISR of every partition it holds.
The update plan has a step for every pod (like the deploy plan), so it cannot turn COMPLETE while
the last restarted broker is still starting. Only the operator's marks are stored (properties
``plan.<name>.interrupted``, ``plan.<name>.phase|step.<x>.interrupted|continued``, ``forced.<pod>``)
and when a rolling update's group started waiting (``update.waiting_since.<group>``).

Deploy order: the KRaft quorum's controllers first and together (a combined broker
is in the metadata only once the quorum has formed), then the other brokers by the deploy
strategy, then each app's instances.
"""
from __future__ import annotations

from typing import Any, Mapping

import attrs

from scheduler.core.maintenance_holds import waits_in_place
from scheduler.core.pods import PodDef
from scheduler.core.state import Goal, PodKind, State, TaskRecord

PLANS = ("deploy", "recovery", "update")


def interrupted(state: State, plan: str) -> bool:
    return state.properties.get(f"plan.{plan}.interrupted") == "true"


def _mark(plan: str, level: str, name: str, what: str) -> str:
    return f"plan.{plan}.{level}.{name}.{what}"


def held_by(props: Mapping[str, str], plan: str, phase: str, step: str) -> str | None:
    """Why the operator's marks hold `step` (in `phase`) of `plan`, or None. The narrowest mark
    wins: a step's own mark, then its phase's, then the whole plan's."""
    for level, name in (("step", step), ("phase", phase)):
        if props.get(_mark(plan, level, name, "interrupted")) == "true":
            return f"{level} {name} of the {plan} plan interrupted"
        if props.get(_mark(plan, level, name, "continued")) == "true":
            return None
    if props.get(f"plan.{plan}.interrupted") == "true":
        return f"{plan} plan interrupted"
    return None


def held(state: State, plan: str, pod: PodDef) -> str | None:
    return held_by(state.properties, plan, phase_of(pod), pod.name)


def steer(props: Mapping[str, str], plan: str, interrupt: bool, phase: str | None, step: str | None,
          steps_of_phase: Mapping[str, list[str]]) -> dict[str, str | None]:
    """The property changes (None: delete) that interrupt or continue exactly the named step, the
    named phase, or (neither named) the whole plan. Continuing a step or phase of an interrupted
    plan lets only that step or phase go on."""
    out: dict[str, str | None] = {}
    if step is not None:
        stop, go = _mark(plan, "step", step, "interrupted"), _mark(plan, "step", step, "continued")
        if interrupt:
            out.update({stop: "true", go: None})
        else:
            rest = {k: v for k, v in props.items() if k not in (stop, go)}
            out.update({stop: None, go: "true" if held_by(rest, plan, phase or "", step) else None})
    elif phase is not None:
        stop, go = _mark(plan, "phase", phase, "interrupted"), _mark(plan, "phase", phase, "continued")
        inner = steps_of_phase.get(phase, [])
        if interrupt:
            out.update({stop: "true", go: None})
            out.update({_mark(plan, "step", s, "continued"): None for s in inner})
        else:
            out.update({stop: None, go: "true" if props.get(f"plan.{plan}.interrupted") == "true" else None})
            out.update({_mark(plan, "step", s, "interrupted"): None for s in inner})
    else:
        for key in props:
            if key.startswith((f"plan.{plan}.step.", f"plan.{plan}.phase.")) \
                    and (not interrupt or key.endswith(".continued")):
                out[key] = None
        out[f"plan.{plan}.interrupted"] = "true" if interrupt else None
    return {k: v for k, v in out.items() if props.get(k) != v}


def forced(state: State, pod: str) -> bool:
    return state.properties.get(f"forced.{pod}") == "true"


def done(state: State, pod: PodDef) -> bool:
    rec = state.tasks.get(pod.name)
    return forced(state, pod.name) or (rec is not None and rec.serving)


@attrs.frozen
class Work:
    reserve: tuple[PodDef, ...]
    launch: tuple[PodDef, ...]
    waiting: Mapping[str, str]  # pod → why it waits


def phase_of(pod: PodDef) -> str:
    if pod.kind == PodKind.STREAM:
        return f"app:{pod.app}"
    return "quorum" if pod.is_controller else "brokers"


def work(state: State, pods: list[PodDef], now: float, quorum_known: bool) -> Work:
    reserve: list[PodDef] = []
    launch: list[PodDef] = []
    waiting: dict[str, str] = {}
    serial = state.spec.policies.deploy_strategy == "serial"
    kraft = state.spec.kafka.mode == "kraft"
    brokers_done = all(done(state, p) for p in pods if p.kind == PodKind.BROKER)
    earlier_done = True  # every pod before this one (in deploy order, quorum excluded) is done
    quorum_done = all(done(state, p) for p in pods if p.kind == PodKind.BROKER and p.is_controller and kraft)
    app_prev_done: dict[str, bool] = {}
    for pod in pods:
        rec = state.tasks.get(pod.name) or TaskRecord(pod.name, pod.kind)
        is_done = done(state, pod)
        phase = phase_of(pod)
        if rec.goal != Goal.RUNNING or rec.active:
            pass
        elif now < rec.backoff_until:
            waiting[pod.name] = f"backing off after {rec.attempts} failures, {rec.backoff_until - now:.1f}s left"
        elif state.uninstalling:
            waiting[pod.name] = "uninstalling"
        elif why_maint := waits_in_place(state, pod.name, now):
            waiting[pod.name] = why_maint
        elif pod.reserves and rec.reservation is None:
            reserve.append(pod)
        elif rec.launches > 0:
            if kraft and not quorum_known:
                waiting[pod.name] = "waiting for every controller's address"
            elif (rec.attempts or rec.failed_since is not None) and (why := held(state, "recovery", pod)):
                waiting[pod.name] = why  # a failed task's relaunch is the recovery plan's step
            else:
                launch.append(pod)  # recovery (and a restart's relaunch): no plan gating, only backoff
        elif why := held(state, "deploy", pod):
            waiting[pod.name] = why
        elif phase == "quorum":
            if quorum_known:
                launch.append(pod)
            else:
                waiting[pod.name] = "waiting for every controller to have resources (quorum starts together)"
        elif phase == "brokers":
            if kraft and not quorum_known:
                waiting[pod.name] = "waiting for the controller quorum's addresses"
            elif serial and not (earlier_done and quorum_done):
                waiting[pod.name] = "waiting for the previous broker to be ready (serial deploy)"
            else:
                launch.append(pod)
        else:
            prev = app_prev_done.get(phase, True)
            if not brokers_done:
                waiting[pod.name] = "waiting for every broker to be ready"
            elif serial and not prev:
                waiting[pod.name] = "waiting for the previous instance to be ready (serial deploy)"
            else:
                launch.append(pod)
        if phase == "brokers":
            earlier_done = earlier_done and is_done
        if phase.startswith("app:"):
            app_prev_done[phase] = app_prev_done.get(phase, True) and is_done
    return Work(tuple(reserve), tuple(launch), waiting)


# ---------------------------------------------------------------------------------- API views

def in_sync(state: State, pod: PodDef, rec: TaskRecord) -> str | None:
    """Why a ready broker does not count as done yet, or None: Kafka metadata asked after it
    became ready must show it registered and in the ISR of every partition it holds."""
    health = state.kafka
    if pod.kind != PodKind.BROKER:
        return None
    if health is None:
        return "ready; waiting for Kafka metadata to show its partitions in sync"
    if rec.ready_at is not None and health.now <= rec.ready_at:
        return "ready; waiting for Kafka metadata asked after it became ready"
    if "broker" in pod.roles and pod.node_id not in health.brokers_in_metadata:
        return f"ready, but broker {pod.node_id} is not in Kafka's metadata yet"
    lagging = health.out_of_sync.get(pod.node_id, 0)
    if lagging:
        return f"ready; catching up: not yet in the ISR of {lagging} of its partitions"
    return None


def _step_status(state: State, pod: PodDef, current: str | None, plan: str, now: float) -> tuple[str, str | None]:
    """A step's status and, when the status needs one, why (else the pod's last message shows)."""
    rec = state.tasks.get(pod.name)
    if forced(state, pod.name) and plan == "deploy":
        return "COMPLETE", None
    why_held = held(state, plan, pod)
    if rec is None or rec.task_id is None:
        if rec is not None and rec.reservation is not None:
            return "PREPARED", None
        return ("WAITING", why_held) if why_held else ("PENDING", None)
    if rec.serving and (current is None or rec.fingerprint == current):
        lag = in_sync(state, pod, rec)
        return ("STARTED", lag) if lag else ("COMPLETE", None)
    if rec.active and rec.kill_reason:
        return "STARTING", None
    if rec.active:
        return ("STARTED" if rec.state == "TASK_RUNNING" else "STARTING"), None
    if rec.attempts >= 5:
        return "ERROR", None  # a crash loop: relaunches go on at the capped backoff
    if rec.backoff_until > now:
        return "DELAYED", None
    return ("WAITING", why_held) if why_held else ("PENDING", None)


def _plan_status(steps: list[dict[str, Any]], plan_held: bool) -> str:
    statuses = {s["status"] for s in steps}
    if not steps or statuses == {"COMPLETE"}:
        return "COMPLETE"
    if "ERROR" in statuses:
        return "ERROR"
    if plan_held or statuses <= {"COMPLETE", "WAITING"}:
        return "WAITING"
    if statuses <= {"PENDING"}:
        return "PENDING"
    return "IN_PROGRESS"


def waiting_since(state: State, group: str) -> float | None:
    value = state.properties.get(f"update.waiting_since.{group}")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _update_step(state: State, pod: PodDef, rec: TaskRecord, roll_waits: Mapping[str, str],
                 now: float) -> tuple[str, str]:
    """The step of a pod the rolling update has yet to restart: held by the operator, waiting
    (with what for), or in ERROR once it has waited longer than policies.update_step_timeout_s."""
    why_held = held(state, "update", pod)
    if why_held:
        return "WAITING", why_held
    why = roll_waits.get(pod.name)
    if why is None:
        return "PENDING", "to be restarted with the new configuration"
    limit = state.spec.policies.update_step_timeout_s
    since = waiting_since(state, pod.group)
    if limit > 0 and since is not None and now - since >= limit:
        return "ERROR", (f"waited {now - since:.0f}s (more than policies.update_step_timeout_s = {limit:g}): "
                         f"{why}; it goes on by itself once that clears")
    return "PENDING", f"waiting: {why}"


def plan_view(state: State, name: str, pods: list[PodDef], fingerprints: Mapping[str, str | None],
              waiting: Mapping[str, str], now: float, roll_waits: Mapping[str, str] | None = None,
              unplaceable: Mapping[str, str] | None = None) -> dict[str, Any] | None:
    """One plan as the API shows it. `roll_waits`: why each outdated pod the rolling update could
    restart waits; `unplaceable`: why the last offer round placed a pod on no agent."""
    if name not in PLANS:
        return None
    roll_waits = roll_waits or {}
    unplaceable = unplaceable or {}
    phases: dict[str, list[dict[str, Any]]] = {}
    for pod in pods:
        rec = state.tasks.get(pod.name)
        if name == "recovery" and not (rec and rec.launches and (rec.attempts or rec.failed_since)):
            continue
        want = fingerprints.get(pod.name)
        why: str | None
        if name == "update" and rec is not None and rec.active and not rec.kill_reason \
                and want is not None and rec.fingerprint != want:
            status, why = _update_step(state, pod, rec, roll_waits, now)
        else:
            status, why = _step_status(state, pod, want if name != "deploy" else None, name, now)
        message = why or waiting.get(pod.name) or (rec.message if rec else "")
        step = {"name": pod.name, "status": status, "message": message,
                "unplaceable": unplaceable.get(pod.name)}
        phases.setdefault(phase_of(pod), []).append(step)
    props = state.properties
    whole = interrupted(state, name)
    plan_held = whole and not any(k.startswith(f"plan.{name}.") and k.endswith(".continued") for k in props)
    phase_list: list[dict[str, Any]] = []
    for ph, steps in phases.items():
        let_go = props.get(_mark(name, "phase", ph, "continued")) == "true" or any(
            props.get(_mark(name, "step", s["name"], "continued")) == "true" for s in steps)
        phase_held = (props.get(_mark(name, "phase", ph, "interrupted")) == "true" or whole) and not let_go
        phase_list.append({"name": ph, "status": _plan_status(steps, phase_held),
                           "strategy": "parallel" if ph == "quorum" else state.spec.policies.deploy_strategy,
                           "steps": steps})
    all_steps = [s for ph in phase_list for s in ph["steps"]]
    return {"name": name, "status": _plan_status(all_steps, plan_held),
            "strategy": state.spec.policies.deploy_strategy, "phases": phase_list,
            "errors": [f"{s['name']}: {s['message']}" for s in all_steps if s["status"] == "ERROR"]}
