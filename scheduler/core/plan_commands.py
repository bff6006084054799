"""Operators steering the plans: interrupt and continue (a plan, a phase or a step),
force-complete a step fixed by hand, restart a step. Only the operator's marks are stored (as
properties, see `plans`); the plans themselves are derived from the task records.
"""
from __future__ import annotations

from typing import Any

import attrs

from scheduler.core import actions as act
from scheduler.core import events as ev
from scheduler.core import rebalance, zk_migration_plan
from scheduler.core.command_types import PlanContinue, PlanForceComplete, PlanInterrupt, PlanRestart, RestartPod
from scheduler.core.offer_control import offer_control
from scheduler.core.plans import PLANS, phase_of, steer
from scheduler.core.pod_commands import restart_or_replace
from scheduler.core.pods import PodDef, desired_pods
from scheduler.core.records import Result, put, with_records
from scheduler.core.refusals import Refusal, accept, refuse
from scheduler.core.rolling import desired_fingerprints, roll
from scheduler.core.state import State


def _no_plan(cmd: ev.Command, plan: Any) -> act.Reply:
    if plan == "autoscale":  # a record of decisions, nothing to steer step by step
        return refuse(cmd, Refusal.CONFLICT, "the autoscale plan only shows the autoscaler's decisions: pause an "
                                             "app's autoscaling with kmf scale app <name> <count>, resume it with "
                                             "kmf scale app <name> --auto")
    return refuse(cmd, Refusal.NOT_FOUND, f"plan {plan!r} does not exist (plans: {', '.join(PLANS)}, rebalance)")


def _unknown_phase_or_step(plan: str, phase: Any, step: Any, pods: list[PodDef]) -> str | None:
    """Why `phase`/`step` (either may be None) name nothing in `plan`, listing what exists."""
    phases: dict[str, list[str]] = {}
    for p in pods:
        phases.setdefault(phase_of(p), []).append(p.name)
    if phase is not None and phase not in phases:
        return f"plan {plan} has no phase {phase!r} (phases: {', '.join(phases)})"
    if step is not None:
        inside = phases[phase] if phase is not None else [n for names in phases.values() for n in names]
        if step not in inside:
            where = f"phase {phase} of plan {plan}" if phase is not None else f"plan {plan}"
            return f"{where} has no step {step!r} (steps: {', '.join(inside)})"
    return None


def _steer_rebalance(state: State, command: PlanInterrupt | PlanContinue, cmd: ev.Command) -> Result:
    """The rebalance plan is steered whole: an interrupt lets the batch Kafka is moving finish and
    starts no other; continue goes on (and clears an error, retrying the batch that failed)."""
    rb = rebalance.current(state)
    if rb is None:
        return state, (refuse(cmd, Refusal.NOT_FOUND, "no rebalance has run: nothing to interrupt or continue"),)
    if command.phase is not None or command.step is not None:
        return state, (refuse(cmd, Refusal.INVALID, "the rebalance plan is interrupted and continued as a whole "
                                                    "(no phase or step)"),)
    key = rebalance.INTERRUPTED_KEY
    if isinstance(command, PlanInterrupt):
        props = {**state.properties, key: "true"}
        return (attrs.evolve(state, properties=props),
                (act.Persist(puts=(("properties", key, "true"),)), accept(cmd, "plan rebalance interrupted")))
    props = {k: v for k, v in state.properties.items() if k != key}
    new_state = attrs.evolve(state, properties=props)
    out: list[act.Action] = [act.Persist(deletes=((("properties", key),) if key in state.properties else ()))]
    if rb.error is not None:
        new_state, persist = rebalance.store(new_state, attrs.evolve(rb, error=None))
        out.append(persist)
    new_state, more = rebalance.progress(new_state, cmd.now)
    return new_state, (*out, *more, accept(cmd, "plan rebalance continued"))


def interrupt_or_continue(state: State, command: PlanInterrupt | PlanContinue, cmd: ev.Command) -> Result:
    """Mark exactly the named step, phase or (neither named) plan as interrupted or continued."""
    plan, phase, step, now = command.plan, command.phase, command.step, cmd.now
    if plan == "rebalance":
        return _steer_rebalance(state, command, cmd)
    if plan == zk_migration_plan.PLAN:
        if phase is not None or step is not None:
            return state, (refuse(cmd, Refusal.INVALID, "the migration plan is interrupted and continued as a whole "
                                                        "(no phase or step)"),)
        return zk_migration_plan.steer(state, isinstance(command, PlanInterrupt), cmd)
    pods = desired_pods(state.spec)
    if plan not in PLANS:
        return state, (_no_plan(cmd, plan),)
    bad = _unknown_phase_or_step(plan, phase, step, pods)
    if bad:
        return state, (refuse(cmd, Refusal.NOT_FOUND, bad),)
    pod_of = {p.name: p for p in pods}
    if step is not None and phase is None:
        phase = phase_of(pod_of[step])
    steps_of_phase: dict[str, list[str]] = {}
    for p in pods:
        steps_of_phase.setdefault(phase_of(p), []).append(p.name)
    interrupt = isinstance(command, PlanInterrupt)
    changes = steer(state.properties, plan, interrupt, phase, step, steps_of_phase)
    props = dict(state.properties)
    for key, value in changes.items():
        if value is None:
            props.pop(key, None)
        else:
            props[key] = value
    puts = tuple(("properties", k, v) for k, v in sorted(changes.items()) if v is not None)
    deletes = tuple(("properties", k) for k, v in sorted(changes.items()) if v is None)
    out: list[act.Action] = [act.Persist(puts=puts, deletes=deletes)] if puts or deletes else []
    new_state = attrs.evolve(state, properties=props)
    if plan == "update":  # a step let go may restart at once
        new_state, more = roll(new_state, now)
        out += more
    verb = "interrupted" if interrupt else "continued"
    what = f"step {step} of plan {plan}" if step else f"phase {phase} of plan {plan}" if phase else f"plan {plan}"
    return offer_control(new_state, now, out + [accept(cmd, f"{what} {verb}")])


def force_complete(state: State, command: PlanForceComplete, cmd: ev.Command) -> Result:
    """Count a step as done: the update plan takes the pod's config as current, the recovery plan
    forgets its failures, the deploy plan stores a mark."""
    plan, step = command.plan, command.step
    pods = desired_pods(state.spec)
    if plan not in PLANS:
        return state, (_no_plan(cmd, plan),)
    if step not in {p.name for p in pods}:
        return state, (refuse(cmd, Refusal.NOT_FOUND, _unknown_phase_or_step(plan, None, step, pods)
                              or f"plan {plan} has no step {step!r}"),)
    rec = state.tasks.get(step)
    if plan == "update" and rec is not None:
        want = desired_fingerprints(state, pods).get(step)
        new = attrs.evolve(rec, fingerprint=want)
        return with_records(state, new), (put(new), accept(cmd, f"{step} marked up to date"))
    if plan == "recovery" and rec is not None:
        new = attrs.evolve(rec, attempts=0, failed_since=None, backoff_until=0.0)
        return with_records(state, new), (put(new), accept(cmd, f"{step} recovery reset"))
    key = f"forced.{step}"
    props = {**state.properties, key: "true"}
    return (attrs.evolve(state, properties=props),
            (act.Persist(puts=(("properties", key, "true"),)), accept(cmd, f"{step} forced complete")))


def restart_step(state: State, command: PlanRestart, cmd: ev.Command) -> Result:
    """A step restarts as its pod does; a whole plan does not restart."""
    if command.step is not None:
        return restart_or_replace(state, RestartPod(command.step), cmd)
    return state, (refuse(cmd, Refusal.CONFLICT, f"restarting a whole plan ({command.plan}) is not supported; "
                                                 "restart its steps (pods) one by one"),)
