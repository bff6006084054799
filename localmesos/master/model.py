"""The master's records (frameworks, agents, tasks, offers, filters) and the effects its core emits.

Records are mutable and owned by :class:`localmesos.master.core.MasterCore`, which changes them
only under the shell's lock. Effects are frozen values the shell performs afterwards (send an event
on a subscription stream, close a stream, call an agent, save the registry). Nothing here does I/O.

Task states, as in Mesos' TaskState::

    STAGING ─► STARTING ─► RUNNING ─► KILLING ─► FINISHED | FAILED | KILLED   (terminal)
       │                      │
       └──────────────────────┴─► UNREACHABLE (agent lost) ─► back to current state on return
"""
from __future__ import annotations

import base64
import collections
from typing import Any

import attrs

from kmfwire.task_states import PARTITION_AWARE_ONLY as PA_ONLY_STATES, is_terminal
from localmesos.version import VERSION
from mesoslib.resources import Resources

COMPLETED_TASKS_KEPT = 1000
COMPLETED_FRAMEWORKS_KEPT = 50


def id_of(data: Any) -> str | None:
    """The ``value`` of a ``{"value": …}`` id object (None if absent)."""
    if isinstance(data, dict):
        value = data.get("value")
        return str(value) if value is not None else None
    return None


def b64_bytes(text: Any) -> bytes | None:
    """Standard padded base64 → bytes; None when it is not valid base64."""
    if not isinstance(text, str):
        return None
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError):
        return None


# --------------------------------------------------------------------------- records


@attrs.define(eq=False)
class Task:
    info: dict[str, Any]  # TaskInfo JSON as launched (executor.framework_id filled)
    framework_id: str
    agent_id: str
    state: str
    resources: Resources  # without allocation info, for accounting
    role: str
    executor_id: str = ""  # "" for command tasks (state endpoints), else the custom executor
    statuses: list[dict[str, Any]] = attrs.Factory(list)
    healthy: bool | None = None
    last_status: dict[str, Any] | None = None  # the latest TaskStatus the master saw
    forwarded_uuid: str | None = None  # uuid of the last status forwarded to the scheduler
    forwarded_state: str | None = None
    unreachable_time: float | None = None

    @property
    def id(self) -> str:
        return str(self.info["task_id"]["value"])

    @property
    def uses_resources(self) -> bool:
        return not is_terminal(self.state)

    def record_status(self, state: str, timestamp: float, healthy: bool | None = None,
                      extra: dict[str, Any] | None = None) -> None:
        entry: dict[str, Any] = {"state": state, "timestamp": timestamp}
        if healthy is not None:
            entry["healthy"] = healthy
        if extra:
            entry.update(extra)
        if self.statuses and self.statuses[-1]["state"] == state:
            self.statuses[-1] = entry
        else:
            self.statuses.append(entry)


@attrs.define(eq=False)
class Executor:
    info: dict[str, Any]
    framework_id: str
    agent_id: str
    resources: Resources

    @property
    def id(self) -> str:
        return str(self.info["executor_id"]["value"])


@attrs.define(eq=False)
class Framework:
    id: str
    info: dict[str, Any]  # FrameworkInfo JSON with id
    registered_time: float
    stream_id: str | None = None
    connected: bool = False
    active: bool = False
    recovered: bool = False  # known only from re-registering agents so far
    reregistered_time: float | None = None
    unregistered_time: float | None = None
    disconnected_at: float | None = None
    suppressed: set[str] = attrs.Factory(set)
    tasks: dict[str, Task] = attrs.Factory(dict)
    unreachable_tasks: dict[str, Task] = attrs.Factory(dict)
    completed_tasks: collections.deque = attrs.Factory(
        lambda: collections.deque(maxlen=COMPLETED_TASKS_KEPT)
    )
    executors: dict[tuple[str, str], Executor] = attrs.Factory(dict)  # (agent, executor id)

    @property
    def capabilities(self) -> set[str]:
        # an entry without a type names no capability (None would break sorting them for /state)
        return {c["type"] for c in self.info.get("capabilities", []) if isinstance(c, dict)
                and isinstance(c.get("type"), str)}

    @property
    def partition_aware(self) -> bool:
        return "PARTITION_AWARE" in self.capabilities

    @property
    def multi_role(self) -> bool:
        return "MULTI_ROLE" in self.capabilities

    @property
    def refinement(self) -> bool:
        return "RESERVATION_REFINEMENT" in self.capabilities

    @property
    def resource_format(self) -> str:
        return "post" if self.refinement else "pre"

    @property
    def roles(self) -> list[str]:
        if self.multi_role:
            return list(self.info.get("roles", []))
        return [self.info.get("role") or "*"]

    @property
    def principal(self) -> str | None:
        return self.info.get("principal")

    @property
    def failover_timeout(self) -> float:
        return float(self.info.get("failover_timeout", 0.0) or 0.0)

    @property
    def checkpoint(self) -> bool:
        return bool(self.info.get("checkpoint", False))

    def visible_state(self, state: str) -> str:
        """The state as this framework may see it (non-PA frameworks get TASK_LOST)."""
        if state in PA_ONLY_STATES and not self.partition_aware:
            return "TASK_LOST"
        return state

    def find_task(self, task_id: str) -> Task | None:
        return self.tasks.get(task_id) or self.unreachable_tasks.get(task_id)


@attrs.define(eq=False)
class Agent:
    id: str
    hostname: str
    ip: str
    port: int
    url: str  # http://ip:port
    attributes: list[dict[str, Any]]
    total: Resources
    registered_time: float
    version: str = VERSION
    reregistered_time: float | None = None
    active: bool = True
    missed_pings: int = 0
    unreachable_time: float | None = None
    info: dict[str, Any] = attrs.Factory(dict)  # AgentInfo JSON as the agent sent it

    @property
    def pid(self) -> str:
        return f"slave(1)@{self.ip}:{self.port}"


@attrs.define(eq=False)
class Offer:
    id: str
    framework_id: str
    agent_id: str
    role: str
    resources: Resources  # without allocation info
    created: float = 0.0


@attrs.define(eq=False)
class Filter:
    framework_id: str
    role: str
    agent_id: str
    resources: Resources
    expires: float


# --------------------------------------------------------------------------- effects


@attrs.frozen
class Send:
    """Write one event record on subscription stream ``stream_id``."""

    stream_id: str
    event: dict[str, Any]


@attrs.frozen
class Close:
    """End subscription stream ``stream_id`` (zero chunk)."""

    stream_id: str


@attrs.frozen
class AgentCall:
    """POST ``/internal/<name>`` with ``body`` to the agent at ``url`` (in order per agent)."""

    agent_id: str
    url: str
    name: str
    body: dict[str, Any]


@attrs.frozen
class SaveRegistry:
    """Persist the registry (agent ids and addresses) to the work dir."""


@attrs.frozen
class StopPinging:
    agent_id: str
    flush: bool = False  # deliver the calls already queued (e.g. a last "shutdown") first
