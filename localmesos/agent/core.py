"""The localmesos agent: registration, executors and their sandboxes, tasks, reliable status
updates (spec §4.4), reservations and persistent volumes, checkpoint and recovery.

Master traffic uses the internal protocol of docs/localmesos-internal.md; executors talk to the
v1 executor API served by `localmesos.agent.server`. All mutable state is guarded by one lock;
slow work (HTTP to the master, process waits) happens outside it.
"""
from __future__ import annotations

import json
import logging
import shutil
import sys
import threading
import time
import uuid as uuidlib
from collections import deque
from pathlib import Path
from typing import Any

from localmesos.agent.checkpoint import CheckpointDir, Recovery
from localmesos.agent.executors import Executors, alive, kill_group, later, tasks_of_event
from localmesos.agent.fetcher import FetcherCache, parse_bytes
from localmesos.agent.model import VERSION, ExecutorEntry, TaskEntry, id_of, is_partition_aware
from localmesos.agent.registration import Registration
from localmesos.agent.status_updates import StatusUpdates
from localmesos.states import is_terminal
from mesoslib.resources import Resources, parse_attributes_flag, parse_resources_flag

log = logging.getLogger("localmesos.agent")

BUILD = {"build_date": "2020-11-24 00:00:00", "build_time": 1606176000.0, "build_user": "localmesos"}
AGENT_CAPABILITIES = ["MULTI_ROLE", "HIERARCHICAL_ROLE", "RESERVATION_REFINEMENT"]
# Mesos' command executor runs with DEFAULT_EXECUTOR_CPUS and DEFAULT_EXECUTOR_MEM on top of its
# task's resources (src/slave/constants.hpp); the agent reports them as the executor's.
COMMAND_EXECUTOR_OVERHEAD = "cpus:0.1;mem:32"
EXECUTOR_HEARTBEAT_S = 30 * 60.0


class Agent(Registration, StatusUpdates, Executors, Recovery):
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

    # -- resources -----------------------------------------------------------------------------

    def total(self) -> Resources:
        total = self.base_resources
        for res in self.checkpointed:
            base = res.without_volume() if res.is_volume else res
            while base.is_reserved and base.is_dynamically_reserved:
                base = base.pop_reservation()
            total = total - Resources([base]) + Resources([res])
        return total

    def allocated(self, ex: ExecutorEntry) -> Resources:
        """Mesos' Executor::allocatedResources: the executor's own and its live tasks'."""
        total = Resources.from_json(ex.info.get("resources") or [])
        if ex.command_task:
            total = total + parse_resources_flag(COMMAND_EXECUTOR_OVERHEAD)
        for (fid, _), t in self.tasks.items():
            if fid == ex.framework_id and t.executor_id == ex.executor_id and not is_terminal(t.state):
                total = total + t.resources
        return total

    def volume_dir(self, role: str, persistence_id: str) -> Path:
        return self.work_dir / "volumes" / "roles" / role.replace("/", "_") / persistence_id

    def apply_resources(self, body: dict) -> dict:
        new = Resources.from_json(body.get("checkpointed_resources") or [], "checkpointed_resources")
        with self.lock:
            old_vols = {(r.role, r.disk.persistence_id) for r in self.checkpointed.volumes()}
            new_vols = {(r.role, r.disk.persistence_id) for r in new.volumes()}
            self.checkpointed = new
            self.meta.write("resources", json.dumps(new.to_json("endpoint")))
        for role, pid in new_vols - old_vols:
            self.volume_dir(role, pid).mkdir(parents=True, exist_ok=True)
        for role, pid in old_vols - new_vols:
            shutil.rmtree(self.volume_dir(role, pid), ignore_errors=True)
        return {}

    # -- master → agent calls ------------------------------------------------------------------

    def run_task(self, body: dict) -> dict:
        fw = dict(body.get("framework_info") or {})
        task = dict(body.get("task") or {})
        fid = id_of(fw.get("id")) or ""
        tid = id_of(task.get("task_id")) or ""
        with self.lock:
            self.frameworks[fid] = fw
            if "executor" in task:
                info = dict(task["executor"])
                eid = id_of(info.get("executor_id")) or tid
                command_task = False
            else:
                eid = tid
                command_task = True
                info = {"executor_id": {"value": tid}, "framework_id": {"value": fid},
                        "name": f"Command Executor (Task: {tid}) (Command: sh -c '{(task.get('command') or {}).get('value', '')[:60]}')",
                        "source": tid,
                        # the task's URIs are fetched into the command executor's sandbox, as
                        # Mesos' Slave::getExecutorInfo copies them
                        "command": {"shell": False, "value": sys.executable,
                                    "arguments": [sys.executable, "-m", "localmesos.agent.command_executor"],
                                    "uris": list((task.get("command") or {}).get("uris") or [])}}
            ex = self.executors.get((fid, eid))
            new = ex is None
            if new:
                container = str(uuidlib.uuid4())
                ex = ExecutorEntry(fid, eid, info, fw, self.sandbox_for(fid, eid, container), container,
                                   command_task=command_task)
                self.executors[(fid, eid)] = ex
            self.tasks[(fid, tid)] = TaskEntry(fid, eid, task)
            ex.tasks.add(tid)
            self._link_volumes(task, ex.sandbox)
            self.send_event(ex, {"type": "LAUNCH", "launch": {"task": task}})
        if new:
            self.launch_container(ex)
        return {}

    def run_task_group(self, body: dict) -> dict:
        fw = dict(body.get("framework_info") or {})
        info = dict(body.get("executor_info") or {})
        tasks = list((body.get("task_group") or {}).get("tasks") or [])
        fid, eid = id_of(fw.get("id")) or "", id_of(info.get("executor_id")) or ""
        with self.lock:
            self.frameworks[fid] = fw
            ex = self.executors.get((fid, eid))
            new = ex is None
            if new:
                container = str(uuidlib.uuid4())
                ex = ExecutorEntry(fid, eid, info, fw, self.sandbox_for(fid, eid, container), container)
                self.executors[(fid, eid)] = ex
            for task in tasks:
                tid = id_of(task.get("task_id")) or ""
                self.tasks[(fid, tid)] = TaskEntry(fid, eid, task)
                ex.tasks.add(tid)
                self._link_volumes(task, ex.sandbox)
            self.send_event(ex, {"type": "LAUNCH_GROUP", "launch_group": {"task_group": {"tasks": tasks}}})
        if new:
            self.launch_container(ex)
        return {}

    def _link_volumes(self, task: dict, sandbox: Path) -> None:
        for res in task.get("resources") or []:
            disk = res.get("disk") or {}
            pid = (disk.get("persistence") or {}).get("id")
            path = (disk.get("volume") or {}).get("container_path")
            if not pid or not path:
                continue
            role = res.get("role") or next((r.get("role") for r in reversed(res.get("reservations") or [])), "*")
            target = self.volume_dir(role, pid)
            target.mkdir(parents=True, exist_ok=True)
            link = sandbox / path
            if not link.exists() and not link.is_symlink():
                link.parent.mkdir(parents=True, exist_ok=True)
                link.symlink_to(target)

    def kill_task(self, body: dict) -> dict:
        fid, tid = id_of(body.get("framework_id")) or "", id_of(body.get("task_id")) or ""
        with self.lock:
            task = self.tasks.get((fid, tid))
            if task is None or is_terminal(task.state):
                return {}
            ex = self.executors.get((fid, task.executor_id))
            if ex is None:
                self.agent_update(fid, tid, "TASK_KILLED", "REASON_TASK_KILLED_DURING_LAUNCH",
                                  "Killed before it reached an executor", task.executor_id)
                return {}
            queued = [e for e in ex.queued if tid in {id_of(t["task_id"]) for t in tasks_of_event(e)}]
            if queued and not ex.subscribed:
                ex.queued = [e for e in ex.queued if e not in queued]
                self.agent_update(fid, tid, "TASK_KILLED", "REASON_TASK_KILLED_DURING_LAUNCH",
                                  "Killed before it reached the executor", task.executor_id)
                if not ex.queued and not ex.tasks - {tid}:
                    self.shutdown_executor_entry(ex)
                return {}
            kill: dict[str, Any] = {"task_id": {"value": tid}}
            if body.get("kill_policy"):
                kill["kill_policy"] = body["kill_policy"]
            self.send_event(ex, {"type": "KILL", "kill": kill})
        return {}

    def shutdown_executor(self, body: dict) -> dict:
        fid, eid = id_of(body.get("framework_id")) or "", id_of(body.get("executor_id")) or ""
        with self.lock:
            ex = self.executors.get((fid, eid))
            if ex is not None:
                self.shutdown_executor_entry(ex)
        return {}

    def shutdown_framework(self, body: dict) -> dict:
        fid = id_of(body.get("framework_id")) or ""
        with self.lock:
            for ex in [e for e in self.executors.values() if e.framework_id == fid]:
                self.shutdown_executor_entry(ex)
        return {}

    def drain(self, body: dict) -> dict:
        """Mesos' DrainSlaveMessage: kill every task, within the drain's max_grace_period when
        that is shorter than the task's own kill policy."""
        config = dict(body.get("config") or {})
        cap = config.get("max_grace_period")
        with self.lock:
            self.drain_config = config
            live = [(fid, tid, t) for (fid, tid), t in self.tasks.items() if not is_terminal(t.state)]
        for fid, tid, t in live:
            kill: dict[str, Any] = {"framework_id": {"value": fid}, "task_id": {"value": tid}}
            own = ((t.info.get("kill_policy") or {}).get("grace_period") or {}).get("nanoseconds")
            if cap is not None and (own is None or int(cap.get("nanoseconds", 0)) < int(own)):
                kill["kill_policy"] = {"grace_period": cap}
            self.kill_task(kill)
        return {}

    def undrain(self, body: dict) -> dict:
        with self.lock:
            self.drain_config = None
        return {}

    def shutdown(self, body: dict) -> dict:
        """Mesos' ShutdownMessage (e.g. its machine went DOWN): shut every executor down, then
        the agent stops (its main loop exits once ``stopped`` is set)."""
        log.warning("asked to shut down by the master: %s", body.get("message", ""))
        with self.lock:
            executors = list(self.executors.values())
            for ex in executors:
                self.shutdown_executor_entry(ex)
        grace = float(self.flags.executor_shutdown_grace_period) + 1.5

        def stop() -> None:
            for ex in executors:
                if alive(ex.pid):
                    kill_group(ex.pid)
            self.stopped.set()
        later(grace if executors else 0.2, stop)
        return {}

    def framework_message(self, body: dict) -> dict:
        fid, eid = id_of(body.get("framework_id")) or "", id_of(body.get("executor_id")) or ""
        with self.lock:
            ex = self.executors.get((fid, eid))
            if ex is not None and ex.subscribed:
                self.send_event(ex, {"type": "MESSAGE", "message": {"data": body.get("data", "")}})
        return {}

    def reconcile_tasks(self, body: dict) -> dict:
        fid = id_of(body.get("framework_id")) or ""
        fw = self.frameworks.get(fid) or {}
        pa = is_partition_aware(fw)
        with self.lock:
            for t in body.get("task_ids") or []:
                tid = id_of(t) or ""
                if (fid, tid) not in self.tasks:
                    self.agent_update(fid, tid, "TASK_DROPPED" if pa else "TASK_LOST", "REASON_RECONCILIATION",
                                      "Task is unknown to the agent")
        return {}

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

