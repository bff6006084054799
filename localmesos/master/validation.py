"""Validation of FrameworkInfo (SUBSCRIBE) and TaskInfo (LAUNCH) as the Mesos master does it (pure).

Each function returns None when valid, else the reason text Mesos puts in its ERROR event or
TASK_ERROR message.
"""
from __future__ import annotations

import math
from typing import Any

from mesoslib.resources import Resources, ResourceError, validate_role

from .model import Framework, id_of

MAX_FAILOVER_SECONDS = 9223372036.0  # Duration::max() in seconds


def framework_info_problem(info: dict[str, Any], suppressed_roles: list[str]) -> str | None:
    capabilities = {c.get("type") for c in info.get("capabilities", []) if isinstance(c, dict)}
    multi = "MULTI_ROLE" in capabilities
    if multi and "role" in info:
        return "'FrameworkInfo.role' must not be set when the framework is MULTI_ROLE capable"
    if not multi and info.get("roles"):
        return "'FrameworkInfo.roles' must not be set when the framework is not MULTI_ROLE capable"
    roles = list(info.get("roles", [])) if multi else [info.get("role", "*")]
    dups = sorted({r for r in roles if roles.count(r) > 1})
    if dups:
        return f"'FrameworkInfo.roles' contains duplicate items: {{ {', '.join(dups)} }}"
    for role in roles:
        if not isinstance(role, str):
            return f"'FrameworkInfo.role' is not a valid role: {role!r} is not a string"
        problem = validate_role(role)
        if problem:
            if multi:
                return f"'FrameworkInfo.roles' contains invalid role: {problem}"
            return f"'FrameworkInfo.role' is not a valid role: {problem}"
    timeout = info.get("failover_timeout", 0.0)
    try:
        seconds = float(timeout)
    except (TypeError, ValueError):
        seconds = float("nan")
    if math.isnan(seconds) or seconds < 0 or seconds > MAX_FAILOVER_SECONDS:
        return f"Invalid 'FrameworkInfo.failover_timeout': {timeout!r} is not a valid duration"
    for role in suppressed_roles:
        if role not in roles:
            return f"Suppressed role '{role}' is not contained in the list of roles"
    return None


def task_id_problem(task_id: Any) -> str | None:
    """Mesos' common::validation::validateID, in its words (spaces are allowed; control
    characters and path separators are not)."""
    if not isinstance(task_id, str) or not task_id:
        return "ID must not be empty"
    if len(task_id) > 255:
        return "ID must not be greater than 255 characters"
    if task_id in (".", ".."):
        return f"'{task_id}' is disallowed"
    for ch in task_id:
        if ch in "/\\" or ord(ch) < 32 or ord(ch) == 127:
            return f"'{task_id}' contains invalid characters"
    return None


def task_resources(task: dict[str, Any], where: str) -> Resources:
    """The task's resources (allocation stripped); raises ResourceError."""
    return Resources.from_json(task.get("resources", []), where).without_allocation()


def health_check_problem(check: Any) -> str | None:
    if check is None:
        return None
    if not isinstance(check, dict):
        return "Task's health check is invalid: not an object"
    kinds = [k for k in ("command", "http", "tcp") if k in check]
    kind = check.get("type")
    if kind in (None, "UNKNOWN"):
        if len(kinds) != 1:
            return "Task's health check is invalid: HealthCheck must specify 'type'"
    elif kind not in ("COMMAND", "HTTP", "TCP"):
        return f"Task's health check is invalid: unknown type {kind!r}"
    elif kind.lower() not in check:
        return f"Task's health check is invalid: Expecting '{kind.lower()}' to be set for {kind} health check"
    for key in ("delay_seconds", "interval_seconds", "timeout_seconds", "grace_period_seconds"):
        if key in check and float(check[key]) < 0:
            return f"Task's health check is invalid: Expecting '{key}' to be non-negative"
    return None


def launch_problem(
    fw: Framework,
    task: dict[str, Any],
    agent_id: str,
    running_executors: dict[str, dict[str, Any]],
    unreachable_ids: set[str],
) -> str | None:
    """The first failing TaskInfo check of a LAUNCH, as Mesos validates it, resources excluded."""
    tid = id_of(task.get("task_id"))
    problem = task_id_problem(tid)
    if problem:
        return problem
    assert tid is not None  # task_id_problem refuses a missing id
    existing = fw.tasks.get(tid)
    if existing is not None:
        return f"Task has duplicate ID: {tid}"
    if tid in unreachable_ids:
        return f"Task reuses the ID of an unreachable task: {tid}"
    if id_of(task.get("agent_id")) != agent_id:
        return (
            f"Task uses agent ID {id_of(task.get('agent_id'))} which does not match "
            f"agent ID {agent_id} of the offers"
        )
    policy = task.get("kill_policy") or {}
    grace = (policy.get("grace_period") or {}).get("nanoseconds")
    if grace is not None and int(grace) < 0:
        return "Task's 'kill_policy.grace_period' must be non-negative"
    problem = health_check_problem(task.get("health_check"))
    if problem:
        return problem
    if not task.get("resources"):
        return "Task uses no resources"
    has_cmd, has_exec = "command" in task, "executor" in task
    if has_cmd == has_exec:
        return "Task should have at least one (but not both) of CommandInfo or ExecutorInfo present"
    if has_exec:
        executor = task["executor"]
        eid = id_of(executor.get("executor_id"))
        if not eid:
            return "'ExecutorInfo.executor_id' must be set"
        if "command" not in executor and executor.get("type", "CUSTOM") == "CUSTOM":
            return "'ExecutorInfo.command' must be set"
        fid = id_of(executor.get("framework_id"))
        if fid is not None and fid != fw.id:
            return (
                f"ExecutorInfo has an invalid FrameworkID (Actual: {fid} vs Expected: {fw.id})"
            )
        known = running_executors.get(eid)
        if known is not None and _executor_key(known, fw.id) != _executor_key(executor, fw.id):
            return f"ExecutorInfo is not compatible with ExecutorInfo of existing executor {eid}"
    return None


def _executor_key(info: dict[str, Any], framework_id: str) -> dict[str, Any]:
    copy = dict(info)
    copy["framework_id"] = {"value": framework_id}
    try:
        copy["resources"] = Resources.from_json(info.get("resources", [])).without_allocation()
    except ResourceError:
        pass
    return copy

