"""The agent's read-only views: /state (Mesos' agent state JSON), /metrics/snapshot,
/monitor/statistics and the files endpoints' table of attached sandboxes.

Each view of one record is a pure function (:func:`framework_view`, :func:`task_view`,
:func:`role_of`); :class:`Views` is the agent's part that assembles /state under its lock.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from localmesos.agent.model import AgentState, ExecutorEntry, TaskEntry, id_of
from localmesos.version import BUILD, VERSION
from mesoslib.resources import Resources

if TYPE_CHECKING:
    from localmesos.agent.agent import Agent

AGENT_CAPABILITIES = ["MULTI_ROLE", "HIERARCHICAL_ROLE", "RESERVATION_REFINEMENT"]


class Views(AgentState):
    """The agent's /state and /flags (a part of :class:`localmesos.agent.agent.Agent`)."""

    def state_json(self) -> dict:
        with self.lock:
            total = self.total()
            frameworks: dict[str, dict] = {}
            live = {ex.framework_id for ex in self.executors.values()}
            allocated = Resources()
            for ex in self.executors.values():
                fw = frameworks.setdefault(ex.framework_id, framework_view(self.frameworks.get(ex.framework_id, {})))
                fw["executors"].append(self._executor_view(ex))
                allocated = allocated + self.allocated(ex)
            completed: dict[str, dict] = {}
            for ex in self.completed_executors:
                # Mesos moves a framework to completed_frameworks once its last executor is gone
                group = frameworks if ex.framework_id in live else completed
                fw = group.setdefault(ex.framework_id, framework_view(self.frameworks.get(ex.framework_id, {})))
                fw["completed_executors"].append(self._executor_view(ex))
            reserved = total.reserved_by_role()
            allocated_reserved = allocated.reserved_by_role()
            return {
                "version": VERSION, **BUILD, "start_time": self.started, "id": self.agent_id,
                "pid": f"slave(1)@{self.ip}:{self.port}", "hostname": self.hostname,
                "capabilities": AGENT_CAPABILITIES,
                "resources": total.to_map(),
                "reserved_resources": {role: res.to_map() for role, res in reserved.items()},
                "unreserved_resources": total.unreserved().to_map(),
                "reserved_resources_full": {role: res.to_json("endpoint") for role, res in reserved.items()},
                "unreserved_resources_full": total.unreserved().to_json("endpoint"),
                "reserved_resources_allocated": {role: res.to_map()
                                                 for role, res in allocated_reserved.items()},
                "unreserved_resources_allocated": allocated.unreserved().to_map(),
                "resource_providers": [],
                "attributes": {a.name: a.map_value() for a in self.attributes},
                "master_hostname": (self.master_url or "").split("//")[-1].split(":")[0],
                **({"log_dir": self.flags.log_dir} if getattr(self.flags, "log_dir", None) else {}),
                "flags": self.flags_json(), "frameworks": list(frameworks.values()),
                "completed_frameworks": list(completed.values()),
            }

    def _executor_view(self, ex: ExecutorEntry) -> dict:
        tasks, done = [], []
        role = role_of(ex.framework_info, ex.info.get("resources") or [])
        for (fid, tid), t in self.tasks.items():
            if fid == ex.framework_id and t.executor_id == ex.executor_id:
                tasks.append(task_view(fid, t, self.agent_id, ex))
        for fid, t in self.completed_tasks:
            if fid == ex.framework_id and t.executor_id == ex.executor_id:
                done.append(task_view(fid, t, self.agent_id, ex))
        if ex.command_task and tasks:
            role = tasks[0]["role"]
        return {"id": ex.executor_id, "name": ex.info.get("name", ""), "source": ex.info.get("source", ""),
                "container": ex.container_id, "directory": str(ex.sandbox),
                "resources": self.allocated(ex).to_map(), "role": role,
                "tasks": tasks, "queued_tasks": [], "completed_tasks": done}

    def flags_json(self) -> dict:
        return {k: str(v) for k, v in vars(self.flags).items() if v is not None}


def role_of(framework_info: dict, resources: list) -> str:
    """The role a task or executor runs as: its resources' allocation role, else the framework's.

    Pure."""
    for res in resources:
        role = (res.get("allocation_info") or {}).get("role")
        if role:
            return role
    roles = framework_info.get("roles") or []
    return roles[0] if roles else framework_info.get("role") or "*"


def task_view(fid: str, t: TaskEntry, agent_id: str | None, ex: ExecutorEntry) -> dict:
    """Mesos' Task JSON of a task the agent holds (or held).

    Pure."""
    out = {"id": id_of(t.info.get("task_id")), "name": t.info.get("name", ""), "framework_id": fid,
           # Mesos' Task of a command task names no executor
           "executor_id": "" if ex.command_task else t.executor_id, "slave_id": agent_id,
           "state": t.state, "resources": t.resources.to_map(),
           "role": role_of(ex.framework_info, t.info.get("resources") or []),
           "statuses": list(t.statuses)}
    labels = (t.info.get("labels") or {}).get("labels")
    if labels:
        out["labels"] = labels
    return out


def framework_view(info: dict) -> dict:
    """Mesos' agent view of a framework (its executors are added by the caller).

    Pure."""
    out = {"id": id_of(info.get("id")), "name": info.get("name", ""), "user": info.get("user", ""),
           "failover_timeout": info.get("failover_timeout", 0), "checkpoint": bool(info.get("checkpoint")),
           "hostname": info.get("hostname", ""), "executors": [], "completed_executors": []}
    if any(c.get("type") == "MULTI_ROLE" for c in info.get("capabilities") or []):
        out["roles"] = list(info.get("roles") or [])
    else:
        out["role"] = info.get("role", "*")
    return out


def metrics_snapshot(agent: Agent) -> dict:
    """The agent's /metrics/snapshot (the counters Mesos' agent names)."""
    with agent.lock:
        total = agent.total()
        states: dict[str, int] = {}
        for t in agent.tasks.values():
            states[t.state] = states.get(t.state, 0) + 1
        out = {"slave/uptime_secs": time.time() - agent.started, "slave/registered": 1.0 if agent.registered else 0.0,
               "slave/executors_running": float(len(agent.executors)),
               "slave/valid_status_updates": float(agent.counters["valid_status_updates"]),
               "slave/invalid_status_updates": float(agent.counters["invalid_status_updates"])}
        for name in ("cpus", "mem", "disk", "gpus"):
            out[f"slave/{name}_total"] = total.scalar(name)
        for state in ("staging", "starting", "running", "finished", "failed", "killed", "lost"):
            out[f"slave/tasks_{state}"] = float(states.get(f"TASK_{state.upper()}", 0))
    return out


def attached(agent: Agent) -> dict[str, str]:
    """What Mesos' agent attaches to its files endpoints: each executor's sandbox under its real
    path, its ``runs/latest`` path and ``/frameworks/<f>/executors/<e>/runs/latest``, and
    ``/slave/log`` with ``--log_dir``."""
    out: dict[str, str] = {}
    with agent.lock:
        executors = list(agent.executors.values()) + list(agent.completed_executors)
    for ex in executors:
        real = str(ex.sandbox)
        latest = str(ex.sandbox.parent / "latest")
        out[real] = real
        out[latest] = real
        out[f"/frameworks/{ex.framework_id}/executors/{ex.executor_id}/runs/latest"] = real
    log_dir = getattr(agent.flags, "log_dir", None)
    if log_dir:
        out["/slave/log"] = str(Path(log_dir) / "mesos-agent.INFO")
    return out


def resolve_file(agent: Agent, raw: str) -> Path | None:
    """The real file behind a files-endpoint path: an attached path or one below it; localmesos
    also serves any real path under its work dir (Mesos: attached paths only)."""
    clean = os.path.normpath("/" + raw.strip("/"))  # no ".." climbs out of an attached path
    table = attached(agent)
    for virtual in sorted(table, key=len, reverse=True):
        if clean == virtual or clean.startswith(virtual + "/"):
            # symlinks inside a sandbox (persistent volumes) are followed, as Mesos does
            return Path(table[virtual] + clean[len(virtual):])
    path = Path(clean).resolve()
    root = agent.work_dir
    return path if path == root or root in path.parents else None


def monitor_statistics(agent: Agent) -> list[dict]:
    """Mesos' /monitor/statistics: one entry per live executor with its container's usage. Times
    and RSS are summed over the executor's process group from /proc (Mesos' posix isolators read
    the same numbers); limits are the executor's and its tasks' resources."""
    with agent.lock:
        executors = list(agent.executors.values())
        limits = {(ex.framework_id, ex.executor_id): agent.allocated(ex) for ex in executors}
    usage = _group_usage()
    out = []
    for ex in executors:
        user, system, rss = usage.get(ex.pid or -1, (0.0, 0.0, 0))
        res = limits[(ex.framework_id, ex.executor_id)]
        out.append({
            "executor_id": ex.executor_id, "executor_name": ex.info.get("name", ""),
            "framework_id": ex.framework_id, "source": ex.info.get("source", ""),
            # the fields Mesos' posix/cpu and posix/mem isolators give (soft limits = the allocation)
            "statistics": {"timestamp": time.time(), "cpus_user_time_secs": round(user, 2),
                           "cpus_system_time_secs": round(system, 2),
                           "cpus_soft_limit": res.scalar("cpus"), "mem_rss_bytes": rss,
                           "mem_limit_bytes": int(res.scalar("mem") * 1024 * 1024),
                           "mem_soft_limit_bytes": int(res.scalar("mem") * 1024 * 1024)},
        })
    return out


def _group_usage() -> dict[int, tuple[float, float, int]]:
    """Per process group: (user secs, system secs, RSS bytes) summed from /proc/*/stat."""
    ticks = os.sysconf("SC_CLK_TCK")
    page = os.sysconf("SC_PAGE_SIZE")
    totals: dict[int, tuple[float, float, int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pgrp, utime, stime, rss = int(fields[2]), int(fields[11]), int(fields[12]), int(fields[21])
        u, s, r = totals.get(pgrp, (0.0, 0.0, 0))
        totals[pgrp] = (u + utime / ticks, s + stime / ticks, r + rss * page)
    return totals
