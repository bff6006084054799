"""One scripted v1 scheduler scenario, run the same way against any engine (localmesos or Apache
Mesos) so the differential conformance test can compare what a client sees.

subscribe (role ``conf``) → RESERVE → CREATE a volume → LAUNCH a command task on them → RUNNING
(snapshots of master and agent endpoints) → KILL → reconcile (explicit and implicit) → DESTROY →
UNRESERVE → TEARDOWN.
"""
from __future__ import annotations

import time
from typing import Any

from localmesos.cli import get_json
from tests.helpers.v1client import V1Scheduler
from tests.helpers.wait import wait_for

ROLE = "conf"
TASK = "conf-task"


def scalar(name: str, value: float, reserved: bool = False) -> dict[str, Any]:
    res: dict[str, Any] = {"name": name, "type": "SCALAR", "scalar": {"value": value},
                           "allocation_info": {"role": ROLE}}
    if reserved:
        res["reservations"] = [{"type": "DYNAMIC", "role": ROLE}]
    return res


def volume() -> dict[str, Any]:
    res = scalar("disk", 16, reserved=True)
    res["disk"] = {"persistence": {"id": "conf-vol"},
                   "volume": {"container_path": "data", "mode": "RW"}}
    return res


def _has_reserved(offer: dict[str, Any], with_volume: bool) -> bool:
    """Whether the offer holds reserved disk, and a persistent volume (or none at all)."""
    disks = [r for r in offer.get("resources", []) if r["name"] == "disk" and _is_reserved(r)]
    volumes = [r for r in disks if "persistence" in (r.get("disk") or {})]
    return bool(disks) and bool(volumes) == with_volume


def _is_reserved(res: dict[str, Any]) -> bool:
    """Either format: ``reservations`` (refinement) or ``role`` + ``reservation`` (before it)."""
    return bool(res.get("reservations")) or "reservation" in res


def _snapshot(url: str) -> Any:
    return get_json(url, timeout=10)


def run(lm: Any, timeout: float = 60.0, seen: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run the scenario on a started cluster with one agent; returns what was seen (also filled
    into ``seen`` as it goes, for a failing run's report)."""
    seen = {} if seen is None else seen
    sched = V1Scheduler(lm.url, "conformance", role=ROLE).subscribe(timeout=timeout)
    seen["scheduler"] = sched
    try:
        offer = sched.offer(timeout=timeout)
        agent_id = offer["agent_id"]
        reserved = [scalar("cpus", 0.5, True), scalar("mem", 64, True), scalar("disk", 32, True)]
        sched.accept(offer["id"], [{"type": "RESERVE", "reserve": {"resources": reserved}}])
        offer = sched.offer(timeout=timeout, pred=lambda o: _has_reserved(o, with_volume=False))
        sched.accept(offer["id"], [{"type": "CREATE", "create": {"volumes": [volume()]}}])
        offer = sched.offer(timeout=timeout, pred=lambda o: _has_reserved(o, with_volume=True))
        task = {"name": TASK, "task_id": {"value": TASK}, "agent_id": agent_id,
                "resources": [scalar("cpus", 0.5, True), scalar("mem", 64, True), volume()],
                "command": {"value": "sleep 1000"}}
        sched.accept(offer["id"], [{"type": "LAUNCH", "launch": {"task_infos": [task]}}])
        sched.wait_state(TASK, "TASK_RUNNING", timeout=timeout)
        agent_url = lm.agents[0].url
        # what a client reads while the task runs
        wait_for(lambda: any(t["state"] == "TASK_RUNNING" for f in _snapshot(lm.url + "/state")
                             ["frameworks"] for t in f["tasks"]), timeout=10, what="master state")
        seen["master_state"] = _snapshot(lm.url + "/master/state")
        seen["master_roles"] = _snapshot(lm.url + "/master/roles")
        seen["agent_state"] = _snapshot(agent_url + "/state")
        seen["agent_monitor"] = _snapshot(agent_url + "/monitor/statistics")
        sched.call("KILL", {"task_id": {"value": TASK}, "agent_id": agent_id})
        seen["killed"] = sched.wait_state(TASK, "TASK_KILLED", timeout=timeout)
        before = len(sched.updates(TASK))
        sched.call("RECONCILE", {"tasks": [{"task_id": {"value": TASK}, "agent_id": agent_id},
                                           {"task_id": {"value": "no-such-task"}}]})
        wait_for(lambda: len(sched.updates(TASK)) > before and sched.updates("no-such-task"),
                 timeout=timeout, what="explicit reconciliation answers")
        seen["reconciled"] = sched.updates(TASK)[-1]
        seen["reconciled_unknown"] = sched.updates("no-such-task")[-1]
        wait_for(lambda: any(t["state"] == "TASK_KILLED" for f in _snapshot(lm.url + "/state")
                             ["frameworks"] for t in f["completed_tasks"]), timeout=10,
                 what="the killed task among completed tasks")
        offer = sched.offer(timeout=timeout, pred=lambda o: _has_reserved(o, with_volume=True))
        sched.accept(offer["id"], [{"type": "DESTROY", "destroy": {"volumes": [volume()]}}])
        offer = sched.offer(timeout=timeout, pred=lambda o: _has_reserved(o, with_volume=False))
        unreserve = [r for r in offer["resources"] if _is_reserved(r)]
        sched.accept(offer["id"], [{"type": "UNRESERVE", "unreserve": {"resources": unreserve}}])
        wait_for(lambda: not _snapshot(lm.url + "/master/slaves")["slaves"][0]
                 ["reserved_resources"], timeout=timeout, what="the reservation gone")
        # the killed task's executor exits once its last update is acknowledged (Mesos' after a
        # delay of its own); then the agent moves the framework to completed_frameworks
        wait_for(lambda: not _snapshot(agent_url + "/state")["frameworks"], timeout=timeout,
                 what="the executor gone from the agent")
        seen["master_state_after"] = _snapshot(lm.url + "/master/state")
        seen["agent_state_after"] = _snapshot(agent_url + "/state")
        sched.call("TEARDOWN", expect=None)
        time.sleep(0.5)
        seen["task_states"] = [s["state"] for s in sched.updates(TASK)]
        seen["event_types"] = _squash([t for t in sched.types() if t != "HEARTBEAT"])
        del seen["scheduler"]
    finally:
        sched.close()
    return seen


def _squash(types: list[str]) -> list[str]:
    """Event types with runs of OFFERS/RESCIND collapsed (how many offers come is the allocator's
    timing, not part of the protocol a client relies on)."""
    out: list[str] = []
    for t in types:
        if t in ("OFFERS", "RESCIND") and out and out[-1] == t:
            continue
        out.append(t)
    return out
