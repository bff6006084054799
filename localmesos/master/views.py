"""JSON of the master's read-only endpoints (Mesos' v0 names, what its web UI reads), computed from the core's records (pure)."""
from __future__ import annotations

from typing import Any

from kmfwire.task_states import ALL as ALL_STATES, is_terminal
from localmesos.version import BUILD, VERSION
from mesoslib.resources import Resources, attributes_from_json, attributes_to_map, ResourceError

from . import allocator, maintenance
from .core import MasterCore
from .model import Agent, Framework, Task



def attribute_map(agent: Agent) -> dict[str, Any]:
    try:
        return attributes_to_map(attributes_from_json(agent.attributes))
    except ResourceError:
        return {}


def task_json(task: Task) -> dict[str, Any]:
    info = task.info
    out: dict[str, Any] = {
        "id": task.id,
        "name": info.get("name", ""),
        "framework_id": task.framework_id,
        "executor_id": task.executor_id,
        "slave_id": task.agent_id,
        "state": task.state,
        "resources": task.resources.to_map(),
        "role": task.role,
        "statuses": task.statuses,
    }
    for key in ("labels", "discovery", "container", "health_check", "kill_policy"):
        if key in info:
            out[key] = info[key]["labels"] if key == "labels" and "labels" in info[key] else info[key]
    if task.healthy is not None:
        out["healthy"] = task.healthy
    if task.unreachable_time is not None:
        out["unreachable_time"] = {"nanoseconds": int(task.unreachable_time * 1e9)}
    return out


def _held(core: MasterCore, fw: Framework) -> tuple[Resources, Resources]:
    used = Resources(r for t in fw.tasks.values() if t.uses_resources for r in t.resources)
    used = used + Resources(r for e in fw.executors.values() for r in e.resources)
    offered = Resources(r for o in core.offers.values() if o.framework_id == fw.id
                        for r in o.resources)
    return used, offered


def framework_json(core: MasterCore, fw: Framework) -> dict[str, Any]:
    info = fw.info
    used, offered = _held(core, fw)
    out: dict[str, Any] = {
        "id": fw.id,
        "name": info.get("name", ""),
        "used_resources": used.to_map(),
        "offered_resources": offered.to_map(),
        "resources": (used + offered).to_map(),
        "capabilities": sorted(fw.capabilities),
        "hostname": info.get("hostname", ""),
        "webui_url": info.get("webui_url", ""),
        "active": fw.active,
        "connected": fw.connected,
        "recovered": fw.recovered,
        "user": info.get("user", ""),
        "failover_timeout": fw.failover_timeout,
        "checkpoint": fw.checkpoint,
        "registered_time": fw.registered_time,
        "unregistered_time": fw.unregistered_time or 0.0,
        "tasks": [task_json(t) for t in fw.tasks.values()],
        "unreachable_tasks": [task_json(t) for t in fw.unreachable_tasks.values()],
        "completed_tasks": [task_json(t) for t in fw.completed_tasks],
        "offers": [
            {
                "id": o.id,
                "framework_id": o.framework_id,
                "allocation_info": {"role": o.role},
                "slave_id": o.agent_id,
                "resources": o.resources.to_map(),
            }
            for o in core.offers.values()
            if o.framework_id == fw.id
        ],
        "executors": [
            {
                "executor_id": e.id,
                "name": e.info.get("name", ""),
                "framework_id": fw.id,
                "command": e.info.get("command", {}),
                "resources": e.resources.to_map(),
                "slave_id": e.agent_id,
                **({"type": e.info["type"]} if "type" in e.info else {}),
                **({"labels": e.info["labels"]} if "labels" in e.info else {}),
            }
            for e in fw.executors.values()
        ],
        "offer_constraints": {},
    }
    if fw.multi_role:
        out["roles"] = fw.roles
    else:
        out["role"] = fw.roles[0]
    if fw.principal is not None:
        out["principal"] = fw.principal
    if fw.reregistered_time is not None and fw.reregistered_time != fw.registered_time:
        out["reregistered_time"] = fw.reregistered_time
    labels = info.get("labels", {}).get("labels") if isinstance(info.get("labels"), dict) else None
    if labels:
        out["labels"] = labels
    return out


def agent_json(core: MasterCore, agent: Agent, full: bool = False) -> dict[str, Any]:
    fws = list(core.frameworks.values())
    used = allocator.used_by_agent(agent.id, fws)
    offered = allocator.offered_on_agent(agent.id, core.offers.values())
    reserved = agent.total.reserved_by_role()
    out: dict[str, Any] = {
        "id": agent.id,
        "hostname": agent.hostname,
        "port": agent.port,
        "attributes": attribute_map(agent),
        "pid": agent.pid,
        "registered_time": agent.registered_time,
        "resources": agent.total.to_map(),
        "used_resources": used.to_map(),
        "offered_resources": offered.to_map(),
        "reserved_resources": {role: res.to_map() for role, res in reserved.items()},
        "unreserved_resources": agent.total.unreserved().to_map(),
        "active": agent.active,
        "deactivated": not agent.active,
        "version": agent.version,
        "capabilities": ["MULTI_ROLE", "HIERARCHICAL_ROLE", "RESERVATION_REFINEMENT"],
    }
    out.update(maintenance.drain_json(core, agent.id))
    if agent.reregistered_time is not None:
        out["reregistered_time"] = agent.reregistered_time
    if agent.info.get("domain"):
        out["domain"] = agent.info["domain"]
    if full:
        out["reserved_resources_full"] = {
            role: res.to_json("endpoint") for role, res in reserved.items()
        }
        out["unreserved_resources_full"] = agent.total.unreserved().to_json("endpoint")
        out["used_resources_full"] = used.to_json("endpoint")
        out["offered_resources_full"] = offered.to_json("endpoint")
    return out


def base_info(core: MasterCore, leader: dict[str, Any] | None, flags: dict[str, str],
              elected_time: float | None) -> dict[str, Any]:
    info = core.master_info
    out: dict[str, Any] = {
        "version": VERSION,
        **BUILD,
        "start_time": core.start_time,
        "id": info["id"],
        "pid": info["pid"],
        "hostname": info["hostname"],
        "capabilities": [c["type"] for c in info.get("capabilities", [])],
        "activated_slaves": float(sum(1 for a in core.agents.values() if a.active)),
        "deactivated_slaves": float(sum(1 for a in core.agents.values() if not a.active)),
        "unreachable_slaves": float(len(core.unreachable)),
        "flags": flags,
    }
    if elected_time is not None:
        out["elected_time"] = elected_time
    if leader is not None:
        out["leader"] = leader["pid"]
        # Mesos' state shows these fields of the leading MasterInfo (not address, ip, version)
        out["leader_info"] = {k: leader[k] for k in ("id", "pid", "hostname", "port") if k in leader}
    if flags.get("log_dir"):
        out["log_dir"] = flags["log_dir"]
    return out


def state(core: MasterCore, leader: dict[str, Any] | None, flags: dict[str, str],
          elected_time: float | None) -> dict[str, Any]:
    out = base_info(core, leader, flags, elected_time)
    out.update(
        {
            "slaves": [agent_json(core, a) for a in core.agents.values()],
            "recovered_slaves": [{"id": aid, **info} for aid, info in core.recovered.items()],
            "frameworks": [framework_json(core, f) for f in core.frameworks.values()],
            "completed_frameworks": [framework_json(core, f) for f in core.completed_frameworks],
            "orphan_tasks": [],
            "unregistered_frameworks": [],
        }
    )
    return out


def frameworks(core: MasterCore, framework_id: str | None = None) -> dict[str, Any]:
    def wanted(fw: Framework) -> bool:
        return framework_id is None or fw.id == framework_id

    return {
        "frameworks": [framework_json(core, f) for f in core.frameworks.values() if wanted(f)],
        "completed_frameworks": [
            framework_json(core, f) for f in core.completed_frameworks if wanted(f)
        ],
        "unregistered_frameworks": [],
    }


def slaves(core: MasterCore, slave_id: str | None = None) -> dict[str, Any]:
    return {
        "slaves": [
            agent_json(core, a, full=True)
            for a in core.agents.values()
            if slave_id is None or a.id == slave_id
        ],
        "recovered_slaves": [{"id": aid, **info} for aid, info in core.recovered.items()],
    }


def all_tasks(core: MasterCore) -> list[Task]:
    out: list[Task] = []
    for fw in list(core.frameworks.values()) + list(core.completed_frameworks):
        out.extend(fw.tasks.values())
        out.extend(fw.unreachable_tasks.values())
        out.extend(fw.completed_tasks)
    return out


def tasks(core: MasterCore, query: dict[str, str]) -> dict[str, Any]:
    try:
        limit = int(query.get("limit", "100"))
        offset = int(query.get("offset", "0"))
    except ValueError:
        raise ValueError("'limit' and 'offset' must be integers") from None
    order = query.get("order", "des")
    if order not in ("asc", "des"):
        raise ValueError(f"'order' must be 'asc' or 'des', got {order!r}")
    found = [
        t for t in all_tasks(core)
        if (not query.get("framework_id") or t.framework_id == query["framework_id"])
        and (not query.get("task_id") or t.id == query["task_id"])
    ]
    found.sort(key=lambda t: t.statuses[0]["timestamp"] if t.statuses else 0.0,
               reverse=(order == "des"))
    return {"tasks": [task_json(t) for t in found[offset: offset + limit]]}


def state_summary(core: MasterCore) -> dict[str, Any]:
    tasks_all = all_tasks(core)

    def counts(pred) -> dict[str, int]:
        return {s: sum(1 for t in tasks_all if t.state == s and pred(t)) for s in ALL_STATES}

    return {
        "hostname": core.master_info["hostname"],
        "slaves": [
            {
                "id": a.id,
                "pid": a.pid,
                "hostname": a.hostname,
                "resources": a.total.to_map(),
                "used_resources": allocator.used_by_agent(a.id, core.frameworks.values()).to_map(),
                "offered_resources": allocator.offered_on_agent(a.id, core.offers.values()).to_map(),
                "attributes": attribute_map(a),
                "active": a.active,
                "version": a.version,
                **counts(lambda t, aid=a.id: t.agent_id == aid),
                "framework_ids": sorted(
                    {t.framework_id for t in tasks_all if t.agent_id == a.id and not is_terminal(t.state)}
                ),
            }
            for a in core.agents.values()
        ],
        "frameworks": [
            {
                "id": f.id,
                "name": f.info.get("name", ""),
                "pid": "",
                "used_resources": _held(core, f)[0].to_map(),
                "offered_resources": _held(core, f)[1].to_map(),
                "capabilities": sorted(f.capabilities),
                "hostname": f.info.get("hostname", ""),
                "webui_url": f.info.get("webui_url", ""),
                "active": f.active,
                "connected": f.connected,
                "recovered": f.recovered,
                **counts(lambda t, fid=f.id: t.framework_id == fid),
                "slave_ids": sorted({t.agent_id for t in f.tasks.values()}),
            }
            for f in core.frameworks.values()
        ],
    }


def roles(core: MasterCore) -> dict[str, Any]:
    names: dict[str, list[str]] = {}
    for fw in core.frameworks.values():
        for role in fw.roles:
            names.setdefault(role, []).append(fw.id)
    for agent in core.agents.values():
        for role in agent.total.reserved_by_role():
            names.setdefault(role, [])
    out = []
    for name, fids in sorted(names.items()):
        # what the role's frameworks hold: tasks and, as in Mesos, their executors
        allocated = Resources(
            r for fw in core.frameworks.values() for t in fw.tasks.values()
            if t.role == name and t.uses_resources for r in t.resources
        ) + Resources(
            r for fw in core.frameworks.values() for e in fw.executors.values()
            if _executor_role(fw, e) == name for r in e.resources
        )
        offered = Resources(r for o in core.offers.values() if o.role == name for r in o.resources)
        reserved = Resources(r for a in core.agents.values() for r in a.total.reserved(name))
        # Quota consumption (Mesos' QUOTA_V2): reservations plus unreserved allocations
        consumed = reserved + allocated.unreserved()
        out.append(
            {
                "name": name,
                "weight": 1.0,
                "frameworks": fids,
                "resources": _role_map(allocated + offered),
                "allocated": _role_map(allocated),
                "offered": _role_map(offered),
                "reserved": _role_map(reserved),
                "quota": {"role": name, "guarantee": {}, "limit": {},
                          "consumed": _role_map(consumed)},
            }
        )
    return {"roles": out}


def _executor_role(fw: Framework, executor: Any) -> str:
    """The role an executor's resources are allocated to: its tasks' (an executor serves one)."""
    for task in fw.tasks.values():
        if task.executor_id == executor.id and task.agent_id == executor.agent_id:
            return task.role
    for res in executor.resources:
        if res.allocation_role:
            return res.allocation_role
    return fw.roles[0]


def _role_map(res: Resources) -> dict[str, Any]:
    """/roles' resource maps list only what there is (no zero ``gpus`` as in /state)."""
    return {k: v for k, v in res.to_map().items() if v not in (0, 0.0, "", "[]")}


def metrics(core: MasterCore, elected: bool, now: float) -> dict[str, float]:
    out: dict[str, float] = {
        "master/uptime_secs": now - core.start_time,
        "master/elected": 1.0 if elected else 0.0,
    }
    totals = Resources(r for a in core.agents.values() for r in a.total)
    used = Resources(
        r for a in core.agents.values()
        for r in allocator.used_by_agent(a.id, core.frameworks.values())
    )
    for name in ("cpus", "mem", "disk", "gpus"):
        total, in_use = totals.scalar(name), used.scalar(name)
        out[f"master/{name}_total"] = total
        out[f"master/{name}_used"] = in_use
        out[f"master/{name}_percent"] = in_use / total if total else 0.0
    active = sum(1 for a in core.agents.values() if a.active)
    out["master/slaves_active"] = float(active)
    out["master/slaves_inactive"] = float(len(core.agents) - active)
    out["master/slaves_connected"] = float(len(core.agents))
    out["master/slaves_disconnected"] = 0.0
    out["master/slaves_unreachable"] = float(len(core.unreachable))
    fws = list(core.frameworks.values())
    out["master/frameworks_active"] = float(sum(1 for f in fws if f.active))
    out["master/frameworks_inactive"] = float(sum(1 for f in fws if not f.active))
    out["master/frameworks_connected"] = float(sum(1 for f in fws if f.connected))
    out["master/frameworks_disconnected"] = float(sum(1 for f in fws if not f.connected))
    out["master/outstanding_offers"] = float(len(core.offers))
    tasks_all = all_tasks(core)
    for state in ALL_STATES:
        out[f"master/tasks_{state[len('TASK_'):].lower()}"] = float(
            sum(1 for t in tasks_all if t.state == state)
        )
    for key in (
        "slave_registrations", "slave_reregistrations", "slave_removals",
        "valid_status_updates", "invalid_status_updates",
        "valid_status_update_acknowledgements", "invalid_status_update_acknowledgements",
        "messages_launch_tasks", "messages_decline_offers", "messages_kill_task",
        "messages_reconcile_tasks", "messages_register_framework",
        "messages_reregister_framework", "messages_status_update",
    ):
        out[f"master/{key}"] = float(core.counters.get(key, 0))
    return out
