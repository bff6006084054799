"""Parsing and validation of a v1 scheduler ``Call`` body, with Mesos' status codes and messages.
Pure: bytes in, ``(call, None)`` or ``(None, (status, message))`` out.
"""
from __future__ import annotations

import json
from typing import Any

from .model import b64_bytes, id_of

CALL_TYPES = (
    "SUBSCRIBE", "TEARDOWN", "ACCEPT", "DECLINE", "REVIVE", "KILL", "SHUTDOWN", "ACKNOWLEDGE",
    "RECONCILE", "MESSAGE", "REQUEST", "SUPPRESS", "ACCEPT_INVERSE_OFFERS",
    "DECLINE_INVERSE_OFFERS", "ACKNOWLEDGE_OPERATION_STATUS", "RECONCILE_OPERATIONS",
    "UPDATE_FRAMEWORK",
)
NEEDS_BODY = ("ACCEPT", "DECLINE", "KILL", "SHUTDOWN", "ACKNOWLEDGE", "RECONCILE", "MESSAGE",
              "REQUEST", "ACCEPT_INVERSE_OFFERS", "DECLINE_INVERSE_OFFERS")

Problem = tuple[int, str]


class _Missing(Exception):
    pass


def _convert_error(text: str) -> Problem:
    return 400, f"Failed to convert JSON into Call protobuf: {text}"


def _validate_error(text: str) -> Problem:
    return 400, f"Failed to validate scheduler::Call: {text}"


def _obj(data: Any, path: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise TypeError(f"Not expecting a JSON {_json_kind(data)} for field '{path}'")
    return data


def _json_kind(value: Any) -> str:
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, list):
        return "array"
    return "object" if isinstance(value, dict) else "null"


def _require(data: dict[str, Any], fields: list[str], path: str, missing: list[str]) -> None:
    for field in fields:
        if data.get(field) is None:
            missing.append(f"{path}.{field}" if path else field)


def _ids(items: Any, path: str, missing: list[str]) -> None:
    if items is None:
        return
    if not isinstance(items, list):
        raise TypeError(f"Not expecting a JSON {_json_kind(items)} for field '{path}'")
    for i, item in enumerate(items):
        _id(item, f"{path}[{i}]", missing)


def _id(item: Any, path: str, missing: list[str]) -> None:
    if item is None:
        return
    _obj(item, path)
    if item.get("value") is None:
        missing.append(f"{path}.value")
    elif not isinstance(item["value"], str):
        raise TypeError(f"Not expecting a JSON {_json_kind(item['value'])} for field '{path}.value'")


def _bytes(data: dict[str, Any], field: str, path: str) -> None:
    if field in data and data[field] is not None and b64_bytes(data[field]) is None:
        raise TypeError(f"Failed to base64 decode field '{path}.{field}'")


def _task_infos(tasks: Any, path: str, missing: list[str]) -> None:
    if tasks is None:
        return
    if not isinstance(tasks, list):
        raise TypeError(f"Not expecting a JSON {_json_kind(tasks)} for field '{path}'")
    for i, task in enumerate(tasks):
        where = f"{path}[{i}]"
        _obj(task, where)
        _require(task, ["name", "task_id", "agent_id"], where, missing)
        _id(task.get("task_id"), f"{where}.task_id", missing)
        _id(task.get("agent_id"), f"{where}.agent_id", missing)
        _bytes(task, "data", where)
        if task.get("executor") is not None:
            _obj(task["executor"], f"{where}.executor")
            _require(task["executor"], ["executor_id"], f"{where}.executor", missing)


def parse_call(body: bytes) -> tuple[dict[str, Any] | None, Problem | None]:
    """A scheduler Call from a request body, or the HTTP problem Mesos answers."""
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, (400, f"Failed to parse body into JSON: {exc}")
    if not isinstance(data, dict):
        return None, _convert_error("Expecting a JSON object")
    missing: list[str] = []
    try:
        kind = data.get("type")
        if kind is not None and not isinstance(kind, str):
            raise TypeError(f"Not expecting a JSON {_json_kind(kind)} for field 'type'")
        if kind not in CALL_TYPES:
            data.pop("type", None)  # an unknown name in an optional enum is dropped
        _id(data.get("framework_id"), "framework_id", missing)
        _check_bodies(data, missing)
    except TypeError as exc:
        return None, _convert_error(str(exc))
    if missing:
        return None, _convert_error(f"Missing required fields: {', '.join(missing)}")
    return data, None


def _check_bodies(data: dict[str, Any], missing: list[str]) -> None:
    if data.get("subscribe") is not None:
        sub = _obj(data["subscribe"], "subscribe")
        _require(sub, ["framework_info"], "subscribe", missing)
        if sub.get("framework_info") is not None:
            info = _obj(sub["framework_info"], "subscribe.framework_info")
            _require(info, ["user", "name"], "subscribe.framework_info", missing)
            _id(info.get("id"), "subscribe.framework_info.id", missing)
            for key in ("user", "name", "role", "principal", "hostname", "webui_url"):
                if info.get(key) is not None and not isinstance(info[key], str):
                    raise TypeError(
                        f"Not expecting a JSON {_json_kind(info[key])} for field "
                        f"'subscribe.framework_info.{key}'"
                    )
    if data.get("accept") is not None:
        acc = _obj(data["accept"], "accept")
        _ids(acc.get("offer_ids"), "accept.offer_ids", missing)
        ops = acc.get("operations") or []
        if not isinstance(ops, list):
            raise TypeError("Not expecting a JSON object for field 'accept.operations'")
        for i, op in enumerate(ops):
            _obj(op, f"accept.operations[{i}]")
            launch = op.get("launch")
            if launch is not None:
                _task_infos(_obj(launch, f"accept.operations[{i}].launch").get("task_infos"),
                            f"accept.operations[{i}].launch.task_infos", missing)
            group = op.get("launch_group")
            if group is not None:
                _obj(group, f"accept.operations[{i}].launch_group")
                _require(group, ["executor", "task_group"], f"accept.operations[{i}].launch_group",
                         missing)
                tasks = (group.get("task_group") or {}).get("tasks")
                _task_infos(tasks, f"accept.operations[{i}].launch_group.task_group.tasks", missing)
    if data.get("decline") is not None:
        _ids(_obj(data["decline"], "decline").get("offer_ids"), "decline.offer_ids", missing)
    if data.get("kill") is not None:
        kill = _obj(data["kill"], "kill")
        _require(kill, ["task_id"], "kill", missing)
        _id(kill.get("task_id"), "kill.task_id", missing)
        _id(kill.get("agent_id"), "kill.agent_id", missing)
    if data.get("shutdown") is not None:
        shut = _obj(data["shutdown"], "shutdown")
        _require(shut, ["executor_id", "agent_id"], "shutdown", missing)
        _id(shut.get("executor_id"), "shutdown.executor_id", missing)
        _id(shut.get("agent_id"), "shutdown.agent_id", missing)
    if data.get("acknowledge") is not None:
        ack = _obj(data["acknowledge"], "acknowledge")
        _require(ack, ["agent_id", "task_id", "uuid"], "acknowledge", missing)
        _id(ack.get("agent_id"), "acknowledge.agent_id", missing)
        _id(ack.get("task_id"), "acknowledge.task_id", missing)
        _bytes(ack, "uuid", "acknowledge")
    if data.get("reconcile") is not None:
        rec = _obj(data["reconcile"], "reconcile")
        tasks = rec.get("tasks") or []
        if not isinstance(tasks, list):
            raise TypeError(f"Not expecting a JSON {_json_kind(tasks)} for field 'reconcile.tasks'")
        for i, task in enumerate(tasks):
            _obj(task, f"reconcile.tasks[{i}]")
            _require(task, ["task_id"], f"reconcile.tasks[{i}]", missing)
            _id(task.get("task_id"), f"reconcile.tasks[{i}].task_id", missing)
            _id(task.get("agent_id"), f"reconcile.tasks[{i}].agent_id", missing)
    if data.get("message") is not None:
        msg = _obj(data["message"], "message")
        _require(msg, ["agent_id", "executor_id", "data"], "message", missing)
        _id(msg.get("agent_id"), "message.agent_id", missing)
        _id(msg.get("executor_id"), "message.executor_id", missing)
        _bytes(msg, "data", "message")


def validate_call(call: dict[str, Any], principal: str | None) -> Problem | None:
    """Mesos' ``validation::scheduler::call::validate``."""
    kind = call.get("type")
    if kind is None:
        return _validate_error("Expecting 'type' to be present")
    if kind == "SUBSCRIBE":
        if call.get("subscribe") is None:
            return _validate_error("Expecting 'subscribe' to be present")
        info = call["subscribe"]["framework_info"]
        if id_of(info.get("id")) != id_of(call.get("framework_id")):
            return _validate_error("'framework_id' differs from 'subscribe.framework_info.id'")
        if principal is not None and info.get("principal") not in (None, principal):
            return _validate_error(
                f"Authenticated principal '{principal}' does not match principal "
                f"'{info['principal']}' set in `FrameworkInfo`"
            )
        return None
    if id_of(call.get("framework_id")) is None:
        return _validate_error("Expecting 'framework_id' to be present")
    if kind in NEEDS_BODY and call.get(kind.lower()) is None:
        return _validate_error(f"Expecting '{kind.lower()}' to be present")
    if kind == "ACKNOWLEDGE":
        raw = b64_bytes(call["acknowledge"].get("uuid"))
        if raw is None or len(raw) != 16:
            return _validate_error(f"Expecting 'uuid' to be of length 16, got {len(raw or b'')}")
    return None
