"""Agent-side events of the master: (re-)registration, status updates, executor exits, ping
failures and agent loss (pure; works on a :class:`~.core.MasterCore`)."""
from __future__ import annotations

from typing import Any

from kmfwire.errors import KmfError
from kmfwire.task_states import is_terminal
from localmesos.version import VERSION
from mesoslib.resources import Resources, ResourceError

from . import maintenance
from .core import MasterCore
from .model import Agent, AgentCall, Executor, Framework, SaveRegistry, Task, id_of
from .statuses import task_status
from .task_loss import TaskLoss, end_agent_tasks


def _any_id(value: Any) -> str | None:
    """An id in an agent's body: ``{"value": …}`` (the protocol's shape) or a plain string."""
    if isinstance(value, str):
        return value
    return id_of(value)


class AgentError(KmfError):
    """A request from an agent the master refuses (the message says why)."""


def register_agent(core: MasterCore, body: dict[str, Any], now: float) -> str:
    """(Re-)register an agent; returns its id."""
    info = body.get("agent_info")
    if not isinstance(info, dict):
        raise AgentError("register_agent: 'agent_info' is required")
    url = str(body.get("agent_url") or "")
    if not url.startswith("http://"):
        raise AgentError(f"register_agent: 'agent_url' must be http://ip:port, got {url!r}")
    hostport = url[len("http://"):].rstrip("/")
    ip, _, port_text = hostport.rpartition(":")
    try:
        port = int(port_text)
        total = Resources.from_json(info.get("resources", []), "agent_info.resources")
    except (ValueError, ResourceError) as exc:
        raise AgentError(f"register_agent: {exc}") from None
    hostname = str(info.get("hostname") or ip)
    if maintenance.is_down(core, hostname, ip):  # Mesos refuses agents of a DOWN machine
        raise AgentError(f"register_agent: the machine {hostname} ({ip}) is DOWN")
    aid = id_of(info.get("id"))
    if aid and aid in core.gone:
        raise AgentError(f"register_agent: agent {aid} was marked gone by an operator")
    old = None
    if aid:
        old = core.agents.pop(aid, None) or core.unreachable.pop(aid, None)
        core.recovered.pop(aid, None)
    was_unreachable = old is not None and old.unreachable_time is not None
    if aid:
        core.counters["slave_reregistrations"] += 1
    else:
        aid = core.new_agent_id()
        core.counters["slave_registrations"] += 1
    agent = Agent(
        id=aid,
        hostname=str(info.get("hostname") or ip),
        ip=ip,
        port=int(info.get("port") or port),
        url=url,
        attributes=list(info.get("attributes") or []),
        total=total.without_allocation(),
        registered_time=old.registered_time if old else now,
        reregistered_time=now if old is not None or id_of(info.get("id")) else None,
        version=str(body.get("version") or VERSION),
        info={**info, "id": {"value": aid}},
    )
    if old is not None:
        core.rescind_agent_offers(aid)
    if aid in core.draining:  # a draining agent stays deactivated and keeps draining
        agent.active = False
        if core.draining[aid]["state"] == "DRAINING":
            core.emit(AgentCall(aid, url, "drain", {"config": core.draining[aid]["config"]}))
    core.agents[aid] = agent
    core.known_agents[aid] = {"hostname": agent.hostname, "url": url}
    _adopt_frameworks(core, body, now)
    _adopt_executors(core, agent, body)
    _adopt_tasks(core, agent, body, was_unreachable, now)
    core.emit(SaveRegistry())
    return aid


def _adopt_frameworks(core: MasterCore, body: dict[str, Any], now: float) -> None:
    for info in body.get("frameworks") or []:
        fid = id_of(info.get("id")) if isinstance(info, dict) else None
        if not fid or fid in core.frameworks or fid in core.removed_framework_ids:
            continue
        core.frameworks[fid] = Framework(fid, dict(info), registered_time=now, recovered=True)


def _framework(core: MasterCore, fid: str, now: float) -> Framework | None:
    if fid in core.removed_framework_ids:
        return None
    fw = core.frameworks.get(fid)
    if fw is None:
        fw = Framework(fid, {"id": {"value": fid}, "name": "", "user": ""},
                       registered_time=now, recovered=True)
        core.frameworks[fid] = fw
    return fw


def _adopt_executors(core: MasterCore, agent: Agent, body: dict[str, Any]) -> None:
    fw: Framework | None
    for fw in core.frameworks.values():
        for key in [k for k in fw.executors if k[0] == agent.id]:
            del fw.executors[key]
    for entry in body.get("executors") or []:
        fid = id_of(entry.get("framework_id"))
        info = entry.get("executor_info") or {}
        eid = id_of(info.get("executor_id"))
        fw = core.frameworks.get(fid or "")
        if fw is None or not eid:
            continue
        fw.executors[(agent.id, eid)] = Executor(info, fw.id, agent.id, _reported_resources(info))


def _reported_resources(info: dict[str, Any]) -> Resources:
    """The resources of an executor or task an agent reports (none when they do not parse)."""
    try:
        return Resources.from_json(info.get("resources", [])).without_allocation()
    except ResourceError:
        return Resources()


def _adopt_tasks(core: MasterCore, agent: Agent, body: dict[str, Any], was_unreachable: bool,
                 now: float) -> None:
    reported: set[tuple[str, str]] = set()
    for entry in body.get("tasks") or []:
        fid = id_of(entry.get("framework_id")) or ""
        info = entry.get("task") or {}
        tid = id_of(info.get("task_id"))
        state = str(entry.get("state") or "TASK_STAGING")
        fw = _framework(core, fid, now)
        if fw is None or not tid:
            continue
        reported.add((fid, tid))
        task = fw.find_task(tid)
        if task is None:
            res = _reported_resources(info)
            roles = {r.role for r in res if r.is_reserved} or {fw.roles[0] if fw.roles else "*"}
            task = Task(info, fid, agent.id, state, res, sorted(roles)[0],
                        executor_id=id_of(entry.get("executor_id"))
                        or id_of((info.get("executor") or {}).get("executor_id")) or "")
            task.record_status(state, now)
            fw.tasks[tid] = task
            continue
        returning = tid in fw.unreachable_tasks
        fw.unreachable_tasks.pop(tid, None)
        task.state = state
        task.unreachable_time = None
        task.agent_id = agent.id
        task.record_status(state, now)
        if not is_terminal(state) or task.forwarded_state is None or not is_terminal(task.forwarded_state):
            fw.tasks[tid] = task
        if returning or was_unreachable:
            task.forwarded_state = state
            core.send_update(fw, task_status(fw, task, state, "REASON_AGENT_REREGISTERED",
                                             "Unreachable agent re-reregistered", now))


def status_update(core: MasterCore, body: dict[str, Any], now: float) -> None:
    status = body.get("status")
    if not isinstance(status, dict):
        core.counters["invalid_status_updates"] += 1
        raise AgentError("status_update: 'status' is required")
    aid = id_of(status.get("agent_id"))
    if aid not in core.agents:
        core.counters["invalid_status_updates"] += 1
        raise AgentError(f"status_update: agent {aid} is not registered")
    fid = _any_id(body.get("framework_id")) or ""
    tid = id_of(status.get("task_id")) or ""
    latest = str(body.get("latest_state") or status.get("state"))
    core.counters["valid_status_updates"] += 1
    core.counters["messages_status_update"] += 1
    fw = core.frameworks.get(fid)
    if fw is None:
        return
    task = fw.find_task(tid)
    if task is not None:
        task.state = latest
        task.last_status = status
        if "healthy" in status:
            task.healthy = bool(status["healthy"])
        extra = {}
        if status.get("labels"):
            extra["labels"] = status["labels"]
        if status.get("container_status"):
            # Mesos' Task.statuses keep the container's id and addresses, not the executor's pid
            extra["container_status"] = {k: v for k, v in status["container_status"].items()
                                         if k != "executor_pid"}
        task.record_status(str(status.get("state")), float(status.get("timestamp") or now),
                           task.healthy if "healthy" in status else None, extra)
        if not is_terminal(latest):
            pass
    if core.send_update(fw, status) and task is not None:
        task.forwarded_uuid = status.get("uuid")
        task.forwarded_state = str(status.get("state"))


def executor_exited(core: MasterCore, body: dict[str, Any], now: float) -> None:
    fid = _any_id(body.get("framework_id")) or ""
    eid = _any_id(body.get("executor_id")) or ""
    aid = _any_id(body.get("agent_id"))
    fw = core.frameworks.get(fid)
    if fw is None:
        return
    keys = [k for k in fw.executors if k[1] == eid and (aid is None or k[0] == aid)]
    for key in keys:
        del fw.executors[key]
        core.send(
            fw,
            {
                "type": "FAILURE",
                "failure": {
                    "agent_id": {"value": key[0]},
                    "executor_id": {"value": eid},
                    "status": int(body.get("status") or 0),
                },
            },
        )


def _agent_of_executor(fw: Framework, executor_id: str) -> str | None:
    """The agent running ``executor_id`` (the internal protocol's bodies may not name it)."""
    for aid, eid in fw.executors:
        if eid == executor_id:
            return aid
    for task in fw.tasks.values():
        if (task.executor_id or task.id) == executor_id:
            return task.agent_id
    return None


def executor_message(core: MasterCore, body: dict[str, Any]) -> None:
    fid = _any_id(body.get("framework_id")) or ""
    fw = core.frameworks.get(fid)
    if fw is None:
        return
    aid = _any_id(body.get("agent_id")) or _agent_of_executor(
        fw, _any_id(body.get("executor_id")) or "")
    core.send(
        fw,
        {
            "type": "MESSAGE",
            "message": {
                "agent_id": {"value": aid or ""},
                "executor_id": {"value": _any_id(body.get("executor_id")) or ""},
                "data": body.get("data", ""),
            },
        },
    )


def ping_result(core: MasterCore, agent_id: str, ok: bool, now: float,
                refused: bool = False) -> None:
    agent = core.agents.get(agent_id)
    if agent is None:
        return
    if ok:
        agent.missed_pings = 0
        return
    if refused and agent.active:
        disconnect(core, agent, now)
    agent.missed_pings += 1
    if agent.missed_pings >= core.max_agent_ping_timeouts:
        mark_unreachable(core, agent_id, now)


def disconnect(core: MasterCore, agent: Agent, now: float) -> None:
    """The agent's link broke while it may live on (Mesos ``exited``): no more offers from it, and
    tasks of frameworks that do not checkpoint are lost at once, as in Mesos."""
    agent.active = False
    core.rescind_agent_offers(agent.id)
    end_agent_tasks(core, agent.id, TaskLoss.disconnected(agent.hostname), now)


def mark_unreachable(core: MasterCore, agent_id: str, now: float) -> None:
    """The agent failed its health checks: its tasks become unreachable, as in Mesos."""
    agent = core.agents.pop(agent_id, None)
    if agent is None:
        return
    agent.unreachable_time = now
    agent.active = False
    core.unreachable[agent_id] = agent
    core.counters["slave_removals"] += 1
    core.cut_off_agent(agent_id)
    for fw in core.frameworks.values():
        for task in [t for t in fw.tasks.values() if t.agent_id == agent_id]:
            if is_terminal(task.state):
                core.complete_task(fw, task)
                continue
            del fw.tasks[task.id]
            task.unreachable_time = now
            task.state = "TASK_UNREACHABLE"
            task.record_status("TASK_UNREACHABLE", now)
            fw.unreachable_tasks[task.id] = task
            status = task_status(fw, task, "TASK_UNREACHABLE", "REASON_AGENT_REMOVED",
                                 f"Agent {agent.hostname} is unreachable", now)
            task.forwarded_state = status["state"]
            task.forwarded_uuid = None
            core.send_update(fw, status)
        for key in [k for k in fw.executors if k[0] == agent_id]:
            del fw.executors[key]
    for fw in core.frameworks.values():
        core.send(fw, {"type": "FAILURE", "failure": {"agent_id": {"value": agent_id}}})


def mark_gone(core: MasterCore, agent_id: str, now: float) -> None:
    """Operator API MARK_AGENT_GONE: the agent and its tasks are gone for good, as in Mesos."""
    agent = core.agents.pop(agent_id, None) or core.unreachable.pop(agent_id, None)
    if agent is None:
        raise AgentError(f"Agent {agent_id} not found")
    core.gone.add(agent_id)
    core.known_agents.pop(agent_id, None)
    core.cut_off_agent(agent_id)
    core.emit(SaveRegistry())
    end_agent_tasks(core, agent_id, TaskLoss.gone(agent.hostname), now)
