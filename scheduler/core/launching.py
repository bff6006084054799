"""One launch: the pod's record as launched on an offer, and the LAUNCH operation for it."""
from __future__ import annotations

from typing import Any

import attrs

from kmfwire.taskdata import Voter
from scheduler.core.artifacts import identity as artifact_identity
from scheduler.core.offers import OfferView, Resources
from scheduler.core.pods import PodDef
from scheduler.core.state import State, TaskRecord
from scheduler.core.taskinfo import fingerprint, new_id, task_data, task_info


def moved_note(rec: TaskRecord, hostname: str) -> str:
    """Where a pod placed anew went, against where it was (a replace may pick the same agent)."""
    if not rec.hostname:
        return ""
    return f" (moved from {rec.hostname})" if rec.hostname != hostname else " (the agent it was on before)"


def launch(state: State, pod: PodDef, rec: TaskRecord, offer: OfferView, task_res: Resources,
           exec_res: Resources, ports: tuple[int, ...], now: float,
           quorum: tuple[Voter, ...] | None, boot: str, moved: str = "") -> tuple[TaskRecord, dict[str, Any]]:
    """The pod's record as launched on `offer`, and the LAUNCH operation."""
    data = task_data(state.spec, pod, rec, state.properties, quorum, boot)
    launches = rec.launches + 1
    task_id = f"{pod.name}__{new_id(state.spec.name, pod.name, launches, now, offer.id)}"
    info = task_info(state.spec, pod, task_id, offer.agent_id, data, task_res, exec_res, state.config_id, ports,
                     state.served)
    message = f"launched on {offer.hostname}" + (moved if rec.reservation else moved_note(rec, offer.hostname))
    new = attrs.evolve(rec, task_id=task_id, agent_id=offer.agent_id, hostname=offer.hostname,
                       state=None, message=message, ready=False, healthy=None, app_state=None,
                       fingerprint=fingerprint(pod, data, artifact_identity(state.spec, pod, state.served)),
                       launches=launches, kill_reason=None,
                       launched_at=now, ports=ports)
    return new, {"type": "LAUNCH", "launch": {"task_infos": [info]}}
