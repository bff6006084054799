"""The agent's records: a task it holds (with its unacknowledged status updates) and an executor
it runs (with its sandbox, process and event stream), plus the id helpers both use.

Records are mutable and owned by :class:`localmesos.agent.agent.Agent`, which changes them only
under its lock. Nothing here does I/O.
"""
from __future__ import annotations

import base64
import threading
import time
import uuid as uuidlib
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from mesoslib.resources import Attribute, Resources

if TYPE_CHECKING:
    from localmesos.agent.checkpoint import CheckpointDir
    from localmesos.agent.fetcher import FetcherCache


def new_uuid() -> str:
    """A status update's uuid: 16 random bytes, base64 as in the v1 JSON API."""
    return base64.b64encode(uuidlib.uuid4().bytes).decode()


def id_of(value: Any) -> str | None:
    """The ``value`` of a ``{"value": …}`` id (or a plain value); None when absent or empty."""
    if isinstance(value, dict):
        value = value.get("value")
    return str(value) if value else None


def is_partition_aware(framework_info: dict) -> bool:
    return any(c.get("type") == "PARTITION_AWARE" for c in framework_info.get("capabilities") or [])


@attrs.define
class TaskEntry:
    framework_id: str
    executor_id: str
    info: dict
    state: str = "TASK_STAGING"
    updates: deque = attrs.field(factory=deque)  # statuses not yet acknowledged by the scheduler
    next_send: float = 0.0  # monotonic time the head of `updates` goes (again)
    attempts: int = 0  # sends of the head so far; sets the retry delay (status_updates.retry_delay)
    launched: bool = False  # handed to the executor
    statuses: list = attrs.field(factory=list)  # Mesos' Task.statuses: {state, timestamp} in order

    @property
    def resources(self) -> Resources:
        return Resources.from_json(self.info.get("resources") or [])


@attrs.define
class ExecutorEntry:
    framework_id: str
    executor_id: str
    info: dict
    framework_info: dict
    sandbox: Path
    container_id: str
    command_task: bool = False
    pid: int | None = None
    proc: Any = None
    queued: list = attrs.field(factory=list)  # events waiting for SUBSCRIBE
    events: Any = None  # queue.Queue of the live SUBSCRIBE stream
    subscribed: bool = False
    shutting_down: bool = False
    started: float = attrs.field(factory=time.time)
    tasks: set = attrs.field(factory=set)

    @property
    def key(self) -> tuple[str, str]:
        return (self.framework_id, self.executor_id)

    @property
    def checkpoint(self) -> bool:
        return bool(self.framework_info.get("checkpoint"))

    def to_json(self) -> dict:
        return {"framework_id": self.framework_id, "executor_id": self.executor_id, "info": self.info,
                "framework_info": self.framework_info, "sandbox": str(self.sandbox),
                "container_id": self.container_id, "command_task": self.command_task, "pid": self.pid}

    @classmethod
    def from_json(cls, doc: dict) -> "ExecutorEntry":
        """The inverse of :meth:`to_json` (a checkpointed executor; no process handle)."""
        return cls(doc["framework_id"], doc["executor_id"], doc["info"], doc["framework_info"],
                   Path(doc["sandbox"]), doc["container_id"], doc.get("command_task", False),
                   pid=doc.get("pid"))


class AgentState:
    """The state the agent's parts share, declared once so that each part (a base class of
    :class:`localmesos.agent.agent.Agent`, which sets all of it) says what it works on. Guarded
    by ``lock``."""

    flags: Any
    work_dir: Path
    meta: CheckpointDir
    ip: str
    port: int
    hostname: str
    base_resources: Resources
    checkpointed: Resources  # reservations and volumes the master applied
    attributes: list[Attribute]
    lock: threading.RLock
    stopped: threading.Event
    started: float
    agent_id: str | None
    master_id: str | None
    master_url: str | None
    detector: Any  # the leading master's URL: .current()
    registered: bool
    last_ping: float
    last_check: float
    ping_gaps: deque
    frameworks: dict[str, dict]  # FrameworkInfo by id
    executors: dict[tuple[str, str], ExecutorEntry]  # by (framework id, executor id)
    tasks: dict[tuple[str, str], TaskEntry]  # by (framework id, task id)
    completed_tasks: deque
    completed_executors: deque
    counters: dict[str, int]
    fetcher_cache: FetcherCache
    drain_config: dict | None
    executor_heartbeat_interval: float

    if TYPE_CHECKING:
        # What the parts call of each other: declared here for the type checker only, defined
        # once each in the part named (the Agent inherits them all).

        # Registration
        def call_master(self, name: str, body: dict, timeout: float = 5.0) -> tuple[int, dict]: ...

        # StatusUpdates
        def agent_update(self, fid: str, tid: str, state: str, reason: str, message: str,
                         executor_id: str | None = None) -> None: ...

        # Executors
        def sandbox_for(self, fid: str, eid: str, container: str) -> Path: ...
        def launch_container(self, ex: ExecutorEntry) -> None: ...
        def watch_executor(self, ex: ExecutorEntry) -> None: ...
        def send_event(self, ex: ExecutorEntry, event: dict) -> None: ...
        def kill_unless_subscribed(self, ex: ExecutorEntry, why: str) -> None: ...
        def shutdown_executor_entry(self, ex: ExecutorEntry) -> None: ...

        # AgentResources
        def total(self) -> Resources: ...
        def allocated(self, ex: ExecutorEntry) -> Resources: ...
        def link_volumes(self, task: dict, sandbox: Path) -> None: ...

        # Recovery
        def checkpoint_executor(self, ex: ExecutorEntry) -> None: ...
