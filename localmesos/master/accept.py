"""ACCEPT: offer checks, then LAUNCH / LAUNCH_GROUP / RESERVE / UNRESERVE / CREATE / DESTROY run in
order on the pooled offer, each seeing the previous one's result, as Mesos runs an ACCEPT. Pure: changes the
core's records and emits effects.
"""
from __future__ import annotations

import logging
from typing import Any

import attrs

from kmfwire.errors import KmfError
from mesoslib.resources import DYNAMIC, Reservation, Resources, ResourceError

from .core import MasterCore, refuse_seconds
from .model import Agent, Executor, Framework, Task, id_of
from .statuses import master_status
from .validation import launch_problem, task_resources

log = logging.getLogger(__name__)


class OperationError(KmfError):
    pass


def accept(core: MasterCore, fw: Framework, body: dict[str, Any], now: float) -> None:
    core.counters["messages_launch_tasks"] += 1
    offer_ids = [id_of(o) for o in body.get("offer_ids", [])]
    operations = list(body.get("operations") or [])
    seconds = refuse_seconds(body.get("filters"))
    error = _offer_problem(core, fw, offer_ids)
    if error is not None:
        core.take_offers(fw, [o for o in offer_ids if o])
        _fail_launches(core, fw, operations, now, "REASON_INVALID_OFFERS",
                       f"Task launched with invalid offers: {error}", "TASK_DROPPED")
        return
    offers = [core.offers[o] for o in offer_ids if o]
    core.take_offers(fw, [o.id for o in offers])
    agent = core.agents.get(offers[0].agent_id)
    role = offers[0].role
    if agent is None or not agent.active:
        reason = "REASON_AGENT_REMOVED" if agent is None else "REASON_AGENT_DISCONNECTED"
        message = "Agent removed" if agent is None else "Agent disconnected"
        _fail_launches(core, fw, operations, now, reason, message, "TASK_DROPPED")
        return
    pool = Resources(r for o in offers for r in o.resources)
    for op in operations:
        kind = op.get("type") if isinstance(op, dict) else None
        try:
            if kind == "LAUNCH":
                pool = _launch(core, fw, agent, role, pool, op.get("launch") or {}, now)
            elif kind == "LAUNCH_GROUP":
                pool = _launch_group(core, fw, agent, role, pool, op.get("launch_group") or {}, now)
            elif kind in ("RESERVE", "UNRESERVE", "CREATE", "DESTROY"):
                pool = _resource_op(core, fw, agent, role, pool, kind, op, now)
                # The agent checkpoints (and creates volumes) before any later launch uses them.
                core.agent_call(
                    agent.id,
                    "apply_resources",
                    {"checkpointed_resources": agent.total.dynamic().to_json("endpoint")},
                )
            else:
                log.info("framework=%s dropped unsupported operation %r", fw.id, kind)
        except (OperationError, ResourceError) as exc:
            log.info("framework=%s agent=%s operation %s dropped: %s", fw.id, agent.id, kind, exc)
    core.add_filter(fw, role, agent.id, pool, seconds, now)


def _offer_problem(core: MasterCore, fw: Framework, offer_ids: list[str | None]) -> str | None:
    if not offer_ids:
        return "No offers specified"
    seen: set[str] = set()
    offers = []
    for oid in offer_ids:
        if oid is None:
            return "Offer ID is missing"
        if oid in seen:
            return f"Duplicate offer {oid} in offer list"
        seen.add(oid)
        offer = core.offers.get(oid)
        if offer is None:
            return f"Offer {oid} is no longer valid"
        if offer.framework_id != fw.id:
            return f"Offer {oid} has invalid framework {offer.framework_id} while framework {fw.id} is expected"
        offers.append(offer)
    if len({o.agent_id for o in offers}) > 1:
        return "Aggregated offers must belong to one single agent"
    if len({o.role for o in offers}) > 1:
        return "Aggregated offers must be allocated to the same role"
    return None


def _launched_tasks(operations: list[Any]) -> list[dict[str, Any]]:
    tasks = []
    for op in operations:
        if not isinstance(op, dict):
            continue
        if op.get("type") == "LAUNCH":
            tasks.extend((op.get("launch") or {}).get("task_infos", []))
        elif op.get("type") == "LAUNCH_GROUP":
            tasks.extend(((op.get("launch_group") or {}).get("task_group") or {}).get("tasks", []))
    return tasks


def _fail_launches(core: MasterCore, fw: Framework, operations: list[Any], now: float,
                   reason: str, message: str, pa_state: str) -> None:
    state = pa_state if fw.partition_aware else "TASK_LOST"
    for task in _launched_tasks(operations):
        tid = id_of(task.get("task_id")) or ""
        core.send_update(fw, master_status(tid, state, reason, message, now,
                                           agent_id=id_of(task.get("agent_id"))))


def _task_error(core: MasterCore, fw: Framework, task: dict[str, Any], reason: str,
                message: str, now: float) -> None:
    core.send_update(
        fw,
        master_status(id_of(task.get("task_id")) or "", "TASK_ERROR", reason, message, now,
                      agent_id=id_of(task.get("agent_id"))),
    )


def _running_executors(fw: Framework, agent: Agent) -> dict[str, dict[str, Any]]:
    return {eid: ex.info for (aid, eid), ex in fw.executors.items() if aid == agent.id}


def _launch(core: MasterCore, fw: Framework, agent: Agent, role: str, pool: Resources,
            body: dict[str, Any], now: float) -> Resources:
    for task in body.get("task_infos", []):
        if not isinstance(task, dict):
            continue
        running = _running_executors(fw, agent)
        problem = launch_problem(fw, task, agent.id, running, set(fw.unreachable_tasks))
        needed = Resources()
        executor_res = Resources()
        if problem is None:
            try:
                needed = task_resources(task, "task.resources")
                if "executor" in task:
                    eid = id_of(task["executor"].get("executor_id")) or ""
                    if eid not in running:
                        executor_res = task_resources(task["executor"], "executor.resources")
            except ResourceError as exc:
                problem = f"Task uses invalid resources: {exc}"
        if problem is None and not pool.contains(needed + executor_res):
            problem = (
                f"Total resources {needed + executor_res} required by task and its executor "
                f"is more than available {pool}"
            )
        if problem is not None:
            _task_error(core, fw, task, "REASON_TASK_INVALID", problem, now)
            continue
        pool = pool - (needed + executor_res)
        _add_task(core, fw, agent, role, task, needed, executor_res, now)
        tid = id_of(task["task_id"])
        assert tid is not None  # the task was validated
        core.agent_call(
            agent.id,
            "run_task",
            {"framework_info": fw.info, "task": fw.tasks[tid].info},
        )
    return pool


def _add_task(core: MasterCore, fw: Framework, agent: Agent, role: str, task: dict[str, Any],
              needed: Resources, executor_res: Resources, now: float,
              executor: dict[str, Any] | None = None) -> Task:
    info = dict(task)
    executor = executor if executor is not None else info.get("executor")
    executor_id = ""
    if executor is not None:
        executor = dict(executor)
        executor["framework_id"] = {"value": fw.id}
        executor_id = id_of(executor.get("executor_id")) or ""
        if "executor" in info:
            info["executor"] = executor
        key = (agent.id, executor_id)
        if key not in fw.executors:
            fw.executors[key] = Executor(executor, fw.id, agent.id, executor_res)
    check = info.get("health_check")
    if isinstance(check, dict) and check.get("type") in (None, "UNKNOWN"):
        for kind in ("command", "http", "tcp"):
            if kind in check:
                info["health_check"] = {**check, "type": kind.upper()}
    record = Task(info, fw.id, agent.id, "TASK_STAGING", needed, role, executor_id=executor_id)
    record.record_status("TASK_STAGING", now)
    fw.tasks[record.id] = record
    return record


# localmesos has no default executor, so it cannot run task groups. Rather than pretend (each
# group task used to fail a single-task check with a misleading message), LAUNCH_GROUP is refused
# as unsupported, every task of the group getting TASK_ERROR with this message.
LAUNCH_GROUP_UNSUPPORTED = (
    "LAUNCH_GROUP is not supported by localmesos: task groups need Mesos' default executor, "
    "which localmesos does not implement; launch each task with LAUNCH instead"
)


def _launch_group(core: MasterCore, fw: Framework, agent: Agent, role: str, pool: Resources,
                  body: dict[str, Any], now: float) -> Resources:
    tasks = [t for t in (body.get("task_group") or {}).get("tasks", []) if isinstance(t, dict)]
    for task in tasks:
        _task_error(core, fw, task, "REASON_TASK_GROUP_INVALID", LAUNCH_GROUP_UNSUPPORTED, now)
    return pool


def _resource_op(core: MasterCore, fw: Framework, agent: Agent, role: str, pool: Resources,
                 kind: str, op: dict[str, Any], now: float) -> Resources:
    body = op.get(kind.lower()) or {}
    key = "resources" if kind in ("RESERVE", "UNRESERVE") else "volumes"
    given = Resources.from_json(body.get(key, []), f"{kind.lower()}.{key}").without_allocation()
    if not given:
        raise OperationError(f"{kind} has no {key}")
    removed, added = Resources(), Resources()
    for res in given:
        if kind == "RESERVE":
            if role == "*" or not res.is_dynamically_reserved or res.role != role:
                raise OperationError(
                    f"Invalid reservation: role of {res} must be the offer's role '{role}'"
                )
            last = res.reservations[-1]
            if fw.principal is not None and last.principal not in (None, fw.principal):
                raise OperationError(
                    f"A reserve operation was attempted by principal '{fw.principal}', "
                    f"but there is a reserved resource in the request with principal "
                    f"'{last.principal}' set in `ReservationInfo`"
                )
            if res.is_volume:
                raise OperationError("RESERVE cannot reserve a persistent volume")
            if last.principal is None and fw.principal is not None:
                res = attrs.evolve(
                    res, reservations=res.reservations[:-1]
                    + (Reservation(DYNAMIC, last.role, fw.principal, last.labels),)
                )
            removed, added = removed + res.pop_reservation(), added + res
        elif kind == "UNRESERVE":
            if not res.is_dynamically_reserved:
                raise OperationError(f"UNRESERVE of {res}: not dynamically reserved")
            if res.is_volume:
                raise OperationError(f"UNRESERVE of {res}: it holds a persistent volume")
            removed, added = removed + res, added + res.pop_reservation()
        elif kind == "CREATE":
            if not res.is_volume or res.name != "disk" or not res.is_reserved:
                raise OperationError(f"CREATE of {res}: needs reserved disk with persistence")
            assert res.disk is not None  # a volume
            if res.disk.mode not in (None, "RW"):
                raise OperationError(f"CREATE of {res}: volume mode must be RW")
            if any(
                v.disk is not None and v.disk.persistence_id == res.disk.persistence_id and v.role == res.role
                for v in agent.total.volumes()
            ):
                raise OperationError(
                    f"Persistence ID '{res.disk.persistence_id}' already exists on the agent"
                )
            removed, added = removed + res.without_volume(), added + res
        else:  # DESTROY
            if not res.is_volume:
                raise OperationError(f"DESTROY of {res}: not a persistent volume")
            removed, added = removed + res, added + res.without_volume()
    if not pool.contains(removed):
        raise OperationError(f"{kind}: {removed} are not in the offered {pool}")
    agent.total = agent.total - removed + added
    return pool - removed + added
