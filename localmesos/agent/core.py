"""The localmesos agent: registration, executors and their sandboxes, tasks, reliable status
updates (spec §4.4), reservations and persistent volumes, checkpoint and recovery.

Master traffic uses the internal protocol of docs/localmesos-internal.md; executors talk to the
v1 executor API served by `localmesos.agent.server`. All mutable state is guarded by one lock;
slow work (HTTP to the master, process waits) happens outside it.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

from localmesos.agent.checkpoint import CheckpointDir, Recovery
from localmesos.agent.executors import Executors
from localmesos.agent.fetcher import FetcherCache, parse_bytes
from localmesos.agent.model import VERSION, ExecutorEntry, TaskEntry, id_of
from localmesos.agent.registration import Registration
from localmesos.agent.resources import AgentResources
from localmesos.agent.status_updates import StatusUpdates
from localmesos.agent.tasks import Tasks
from mesoslib.resources import Resources, parse_attributes_flag, parse_resources_flag

log = logging.getLogger("localmesos.agent")

BUILD = {"build_date": "2020-11-24 00:00:00", "build_time": 1606176000.0, "build_user": "localmesos"}
AGENT_CAPABILITIES = ["MULTI_ROLE", "HIERARCHICAL_ROLE", "RESERVATION_REFINEMENT"]
EXECUTOR_HEARTBEAT_S = 30 * 60.0


class Agent(Registration, StatusUpdates, Executors, Tasks, AgentResources, Recovery):
    def __init__(self, flags: Any) -> None:
        self.flags = flags
        self.work_dir = Path(flags.work_dir).resolve()
        self.meta = CheckpointDir(self.work_dir / "meta")
        self.ip = flags.ip
        self.port = flags.port
        self.hostname = flags.hostname or flags.ip
        self.base_resources = parse_resources_flag(flags.resources)
        self.attributes = parse_attributes_flag(flags.attributes) if flags.attributes else []
        self.lock = threading.RLock()
        self.agent_id: str | None = self.meta.read("agent_id")
        self.master_id: str | None = None
        self.master_url: str | None = None
        self.registered = False
        self.last_ping = 0.0
        self.last_check = 0.0
        self.ping_gaps: deque = deque(maxlen=5)
        self.frameworks: dict[str, dict] = {}
        self.executors: dict[tuple[str, str], ExecutorEntry] = {}
        self.tasks: dict[tuple[str, str], TaskEntry] = {}
        self.completed_tasks: deque = deque(maxlen=200)
        self.completed_executors: deque = deque(maxlen=100)
        checkpointed = self.meta.read("resources")
        self.checkpointed = Resources.from_json(json.loads(checkpointed)) if checkpointed else Resources()
        self.stopped = threading.Event()
        self.started = time.time()
        self.counters = {"valid_status_updates": 0, "invalid_status_updates": 0}
        cache_dir = getattr(flags, "fetcher_cache_dir", None) or self.work_dir / "fetch"
        self.fetcher_cache = FetcherCache(Path(cache_dir),
                                          parse_bytes(str(getattr(flags, "fetcher_cache_size", "2GB"))))
        self.detector = None
        self.drain_config: dict | None = None  # set while the master drains this agent
        # Mesos' DEFAULT_EXECUTOR_HEARTBEAT_INTERVAL (src/slave/constants.hpp) unless the
        # localmesos-only --localmesos_executor_heartbeat_interval shortens it
        self.executor_heartbeat_interval = float(
            getattr(flags, "localmesos_executor_heartbeat_interval", EXECUTOR_HEARTBEAT_S))

    # -- views ---------------------------------------------------------------------------------

    def state_json(self) -> dict:
        with self.lock:
            total = self.total()
            frameworks: dict[str, dict] = {}
            live = {ex.framework_id for ex in self.executors.values()}
            allocated = Resources()
            for ex in self.executors.values():
                fw = frameworks.setdefault(ex.framework_id, _framework_view(self.frameworks.get(ex.framework_id, {})))
                fw["executors"].append(self._executor_view(ex))
                allocated = allocated + self.allocated(ex)
            completed: dict[str, dict] = {}
            for ex in self.completed_executors:
                # Mesos moves a framework to completed_frameworks once its last executor is gone
                group = frameworks if ex.framework_id in live else completed
                fw = group.setdefault(ex.framework_id, _framework_view(self.frameworks.get(ex.framework_id, {})))
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
        role = _role_of(ex.framework_info, ex.info.get("resources") or [])
        for (fid, tid), t in self.tasks.items():
            if fid == ex.framework_id and t.executor_id == ex.executor_id:
                tasks.append(_task_view(fid, t, self.agent_id, ex))
        for fid, t in self.completed_tasks:
            if fid == ex.framework_id and t.executor_id == ex.executor_id:
                done.append(_task_view(fid, t, self.agent_id, ex))
        if ex.command_task and tasks:
            role = tasks[0]["role"]
        return {"id": ex.executor_id, "name": ex.info.get("name", ""), "source": ex.info.get("source", ""),
                "container": ex.container_id, "directory": str(ex.sandbox),
                "resources": self.allocated(ex).to_map(), "role": role,
                "tasks": tasks, "queued_tasks": [], "completed_tasks": done}

    def flags_json(self) -> dict:
        return {k: str(v) for k, v in vars(self.flags).items() if v is not None}


def _role_of(framework_info: dict, resources: list) -> str:
    """The role a task or executor runs as: its resources' allocation role, else the framework's."""
    for res in resources:
        role = (res.get("allocation_info") or {}).get("role")
        if role:
            return role
    roles = framework_info.get("roles") or []
    return roles[0] if roles else framework_info.get("role") or "*"


def _task_view(fid: str, t: TaskEntry, agent_id: str | None, ex: ExecutorEntry) -> dict:
    out = {"id": id_of(t.info.get("task_id")), "name": t.info.get("name", ""), "framework_id": fid,
           # Mesos' Task of a command task names no executor
           "executor_id": "" if ex.command_task else t.executor_id, "slave_id": agent_id,
           "state": t.state, "resources": t.resources.to_map(),
           "role": _role_of(ex.framework_info, t.info.get("resources") or []),
           "statuses": list(t.statuses)}
    labels = (t.info.get("labels") or {}).get("labels")
    if labels:
        out["labels"] = labels
    return out


def _framework_view(info: dict) -> dict:
    out = {"id": id_of(info.get("id")), "name": info.get("name", ""), "user": info.get("user", ""),
           "failover_timeout": info.get("failover_timeout", 0), "checkpoint": bool(info.get("checkpoint")),
           "hostname": info.get("hostname", ""), "executors": [], "completed_executors": []}
    if any(c.get("type") == "MULTI_ROLE" for c in info.get("capabilities") or []):
        out["roles"] = list(info.get("roles") or [])
    else:
        out["role"] = info.get("role", "*")
    return out

