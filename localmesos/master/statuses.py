"""TaskStatus and event JSON that the master itself makes (pure helpers)."""
from __future__ import annotations

from typing import Any

from .model import Framework, Task

NANOS = 1_000_000_000


def master_status(
    task_id: str,
    state: str,
    reason: str,
    message: str,
    now: float,
    *,
    agent_id: str | None = None,
    executor_id: str | None = None,
    healthy: bool | None = None,
    unreachable_time: float | None = None,
) -> dict[str, Any]:
    """An unreliable (no uuid) SOURCE_MASTER TaskStatus."""
    status: dict[str, Any] = {
        "task_id": {"value": task_id},
        "state": state,
        "source": "SOURCE_MASTER",
        "reason": reason,
        "message": message,
        "timestamp": now,
    }
    if agent_id:
        status["agent_id"] = {"value": agent_id}
    if executor_id:
        status["executor_id"] = {"value": executor_id}
    if healthy is not None:
        status["healthy"] = healthy
    if unreachable_time is not None and state in ("TASK_UNREACHABLE", "TASK_LOST"):
        status["unreachable_time"] = {"nanoseconds": int(unreachable_time * NANOS)}
    return status


def task_status(fw: Framework, task: Task, state: str, reason: str, message: str,
                now: float) -> dict[str, Any]:
    """A master status about a known task, in the state this framework may see."""
    return master_status(
        task.id,
        fw.visible_state(state),
        reason,
        message,
        now,
        agent_id=task.agent_id,
        executor_id=task.executor_id or None,
        healthy=task.healthy,
        unreachable_time=task.unreachable_time,
    )


def update_event(status: dict[str, Any]) -> dict[str, Any]:
    return {"type": "UPDATE", "update": {"status": status}}


def error_event(message: str) -> dict[str, Any]:
    return {"type": "ERROR", "error": {"message": message}}
