"""Plans: which pods may be reserved or launched now, and the plan views the API shows.

Plans are derived from the task records on every decision rather than stored as a separate
truth: a step is COMPLETE when its pod's task is ready with the current fingerprint. Only the
operator's marks are stored (properties ``plan.<name>.interrupted``, ``forced.<pod>``).

Deploy order (contract C5): the KRaft quorum's controllers first and together (a combined broker
is in the metadata only once the quorum has formed), then the other brokers by the deploy
strategy, then each app's instances.
"""
from __future__ import annotations

from typing import Any, Mapping

import attrs

from scheduler.core.pods import PodDef
from scheduler.core.state import State, TaskRecord

PLANS = ("deploy", "recovery", "update")


def interrupted(state: State, plan: str) -> bool:
    return state.properties.get(f"plan.{plan}.interrupted") == "true"


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


def _phase_of(pod: PodDef) -> str:
    if pod.kind == "stream":
        return f"app:{pod.app}"
    return "quorum" if pod.is_controller else "brokers"


def work(state: State, pods: list[PodDef], now: float, quorum_known: bool) -> Work:
    reserve: list[PodDef] = []
    launch: list[PodDef] = []
    waiting: dict[str, str] = {}
    serial = state.spec.policies.deploy_strategy == "serial"
    kraft = state.spec.kafka.mode == "kraft"
    brokers_done = all(done(state, p) for p in pods if p.kind == "broker")
    earlier_done = True  # every pod before this one (in deploy order, quorum excluded) is done
    quorum_done = all(done(state, p) for p in pods if p.kind == "broker" and p.is_controller and kraft)
    app_prev_done: dict[str, bool] = {}
    for pod in pods:
        rec = state.tasks.get(pod.name) or TaskRecord(pod.name, pod.kind)
        is_done = done(state, pod)
        phase = _phase_of(pod)
        if rec.goal != "RUNNING" or rec.active:
            pass
        elif now < rec.backoff_until:
            waiting[pod.name] = f"backing off after {rec.attempts} failures, {rec.backoff_until - now:.1f}s left"
        elif state.uninstalling:
            waiting[pod.name] = "uninstalling"
        elif pod.kind == "broker" and rec.reservation is None:
            reserve.append(pod)
        elif rec.launches > 0:
            if kraft and not quorum_known:
                waiting[pod.name] = "waiting for every controller's address"
            else:
                launch.append(pod)  # recovery: no plan gating, only backoff
        elif interrupted(state, "deploy"):
            waiting[pod.name] = "deploy plan interrupted"
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

def _step_status(state: State, pod: PodDef, current: str | None, plan: str, now: float) -> str:
    rec = state.tasks.get(pod.name)
    if forced(state, pod.name) and plan == "deploy":
        return "COMPLETE"
    if rec is None or rec.task_id is None:
        if rec is not None and rec.reservation is not None:
            return "PREPARED"
        return "WAITING" if interrupted(state, plan) else "PENDING"
    if rec.serving and (current is None or rec.fingerprint == current):
        return "COMPLETE"
    if rec.active and rec.kill_reason:
        return "STARTING"
    if rec.active:
        return "STARTED" if rec.state == "TASK_RUNNING" else "STARTING"
    if rec.attempts >= 5:
        return "ERROR"  # a crash loop: relaunches go on at the capped backoff
    if rec.backoff_until > now:
        return "DELAYED"
    return "WAITING" if interrupted(state, plan) else "PENDING"


def _plan_status(steps: list[dict[str, Any]], is_interrupted: bool) -> str:
    statuses = {s["status"] for s in steps}
    if not steps or statuses == {"COMPLETE"}:
        return "COMPLETE"
    if is_interrupted:
        return "WAITING"
    if "ERROR" in statuses:
        return "ERROR"
    if statuses <= {"PENDING"}:
        return "PENDING"
    return "IN_PROGRESS"


def plan_view(state: State, name: str, pods: list[PodDef], fingerprints: Mapping[str, str | None],
              waiting: Mapping[str, str], now: float) -> dict[str, Any] | None:
    if name not in PLANS:
        return None
    phases: dict[str, list[dict[str, Any]]] = {}
    for pod in pods:
        rec = state.tasks.get(pod.name)
        if name == "recovery" and not (rec and rec.launches and (rec.attempts or rec.failed_since)):
            continue
        if name == "update" and not (rec and rec.active and rec.fingerprint != fingerprints.get(pod.name)):
            continue
        status = _step_status(state, pod, fingerprints.get(pod.name) if name != "deploy" else None, name, now)
        if name == "update" and status == "COMPLETE":
            status = "PENDING"
        step = {"name": pod.name, "status": status, "message": waiting.get(pod.name, rec.message if rec else "")}
        phases.setdefault(_phase_of(pod), []).append(step)
    phase_list = [{"name": ph, "status": _plan_status(steps, interrupted(state, name)),
                   "strategy": "parallel" if ph == "quorum" else state.spec.policies.deploy_strategy,
                   "steps": steps} for ph, steps in phases.items()]
    all_steps = [s for ph in phase_list for s in ph["steps"]]
    return {"name": name, "status": _plan_status(all_steps, interrupted(state, name)),
            "strategy": state.spec.policies.deploy_strategy, "phases": phase_list,
            "errors": [f"{s['name']}: {s['message']}" for s in all_steps if s["status"] == "ERROR"]}
