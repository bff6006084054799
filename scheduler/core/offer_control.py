"""Offer control: whether the framework wants offers now (revive) or not (suppress).

A framework that declines offers it does not need still gets them every few seconds; suppressing
stops that, and every handler that may create work ends in `offer_control` so a revive follows.
"""
from __future__ import annotations

import attrs

from scheduler.core import actions as act
from scheduler.core.pods import desired_pods
from scheduler.core.records import Result
from scheduler.core.state import Goal, State

REFUSE_BUSY_S = 5.0  # offers declined while pods wait come back soon
REFUSE_IDLE_S = 120.0  # ... and seldom when nothing waits


def wants_offers(state: State, now: float) -> bool:
    """Whether a reservation is to be released or a pod is to be placed or relaunched now."""
    if state.releasing:
        return True
    for pod in desired_pods(state.spec):
        rec = state.tasks.get(pod.name)
        if rec is None or (rec.goal == Goal.RUNNING and not rec.active and now >= rec.backoff_until
                           and not state.uninstalling):
            return True
    return False


def offer_control(state: State, now: float, out: list[act.Action]) -> Result:
    """`out` followed by a Revive or a Suppress when wanting offers changed."""
    wants = wants_offers(state, now)
    if wants and state.suppressed:
        return attrs.evolve(state, suppressed=False), tuple(out + [act.Revive()])
    if not wants and not state.suppressed and state.connected:
        return attrs.evolve(state, suppressed=True), tuple(out + [act.Suppress()])
    return state, tuple(out)
