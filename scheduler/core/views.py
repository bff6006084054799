"""Views of the core's state the API serves: the plans and a pod's placement (pure)."""
from __future__ import annotations

from typing import Any

from scheduler.core import app_autoscale, ca_rotation, zk_migration_plan
from scheduler.core.plans import PLANS, plan_view, work
from scheduler.core.pods import desired_pods
from scheduler.core.rebalance import view as rebalance_view
from scheduler.core.rolling import desired_fingerprints, roll_decision
from scheduler.core.state import PodKind, State
from scheduler.core.taskinfo import voters


def _placement_failure(reason: str) -> bool:
    """Whether a last_placement reason is an offer round's failure to place the pod (each agent's
    reason names it, or no offer came) rather than a plan's or a backoff's wait."""
    return reason == "no offers" or "agent " in reason


def plans(state: State, now: float) -> dict[str, dict[str, Any]]:
    """Every plan as the API shows it."""
    pods = desired_pods(state.spec)
    wanted = desired_fingerprints(state, pods)
    waiting = dict(state.last_placement)
    quorum_known = voters(state.tasks, pods) is not None or state.spec.kafka.mode != "kraft"
    todo = work(state, pods, now, quorum_known)
    waiting.update({k: v for k, v in todo.waiting.items() if k not in waiting})
    # a pod is unplaceable when it is to be placed now and the last offer round found no agent for it
    to_place = {p.name for p in todo.reserve} | {p.name for p in todo.launch if p.kind != PodKind.BROKER}
    unplaceable = {k: v for k, v in state.last_placement.items() if k in to_place and _placement_failure(v)}
    roll_waits = roll_decision(state, now, pods, wanted).waits
    out = {name: view for name in PLANS  # every plan of PLANS has a view (None: an unknown plan)
           if (view := plan_view(state, name, pods, wanted, waiting, now, roll_waits, unplaceable)) is not None}
    moving = rebalance_view(state, now)  # there once a rebalance has started
    if moving is not None:
        out["rebalance"] = moving
    rotating = ca_rotation.view(state, now)  # there once a CA rotation has started
    if rotating is not None:
        out[ca_rotation.PLAN] = rotating
    migrating = zk_migration_plan.view(state)  # there once a ZooKeeper → KRaft migration started
    if migrating is not None:
        out[zk_migration_plan.PLAN] = migrating
    scaling = app_autoscale.view(state)  # there while an app is autoscaled
    if scaling is not None:
        out["autoscale"] = scaling
    return out


def placement(state: State, name: str) -> dict[str, Any] | None:
    """Where pod `name` got to in the last offer round that considered it, and why not further
    (None: no such pod). ``last`` is None until an offer round has considered the pod."""
    pod = next((p for p in desired_pods(state.spec) if p.name == name), None)
    rec = state.tasks.get(name)
    if pod is None and rec is None:
        return None
    outcome = state.placement.get(name)
    return {"name": name, "placed": rec is not None and (rec.active or rec.reservation is not None),
            "hostname": rec.hostname if rec is not None else None,
            "last": outcome.to_json() if outcome is not None else None}
