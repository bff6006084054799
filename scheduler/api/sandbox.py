"""Where a pod's sandbox is, as Mesos says, and reading its files through the agent (`kmf pod logs`).

The master's `/master/state` names the agent (`slaves[].pid` is `slave(1)@ip:port`); the agent's
`/state` lists the framework's executors with their `directory` (the sandbox, as the Mesos UI and
`dcos task log` find it). Files are read through the agent's `/files/read` (`offset=-1` answers the
size; a read answers at most what the agent's page limit allows). The scheduler proxies the reads so
that the operator needs to reach only the scheduler's API, not every agent.
"""
from __future__ import annotations

import json
import re
import urllib.parse
from typing import Any

from kmfio.httpjson import request
from kmfwire.errors import KmfError

TIMEOUT_S = 5.0
MAX_READ = 1 << 20  # bytes one proxied read asks the agent for at most
_PID = re.compile(r"^[^@]+@(?P<addr>[^:]+:\d+)$")


class SandboxUnknown(KmfError):
    """Mesos does not (or no longer) list the task's executor: there is no sandbox to read."""


class AgentUnreachable(KmfError):
    """The master or the agent did not answer."""


def _get(url: str) -> Any:
    try:
        reply = request(url, "GET", None, {}, TIMEOUT_S)
    except OSError as exc:
        raise AgentUnreachable(f"{urllib.parse.urlsplit(url).netloc} did not answer: "
                               f"{getattr(exc, 'reason', None) or exc}") from None
    if reply.status == 404:
        return None
    if reply.status >= 300:
        raise AgentUnreachable(f"{url} answered {reply.status}: {reply.body[:200].decode(errors='replace')}")
    try:
        return json.loads(reply.body)
    except ValueError:
        raise AgentUnreachable(f"{url} answered with a body that is not JSON") from None


def agent_url(master: str, agent_id: str) -> str:
    """http://ip:port of the agent with this id, from the master's state."""
    state = _get(f"http://{master}/master/state") or {}
    for slave in state.get("slaves", []) + state.get("recovered_slaves", []):
        if slave.get("id") == agent_id:
            m = _PID.match(slave.get("pid") or "")
            if m:
                return f"http://{m['addr']}"
            if slave.get("hostname") and slave.get("port"):
                return f"http://{slave['hostname']}:{slave['port']}"
    raise SandboxUnknown(f"the Mesos master at {master} does not list agent {agent_id}")


def executor_of(agent_state: dict, framework_id: str, task_id: str) -> dict | None:
    """The executor (of this framework) that runs or ran the task, in an agent's `/state` (pure)."""
    for key in ("frameworks", "completed_frameworks"):
        for fw in agent_state.get(key, []) or []:
            if fw.get("id") != framework_id:
                continue
            for ekey in ("executors", "completed_executors"):
                for ex in fw.get(ekey, []) or []:
                    tasks = (ex.get("tasks") or []) + (ex.get("queued_tasks") or []) + \
                        (ex.get("completed_tasks") or [])
                    if any(t.get("id") == task_id for t in tasks) or ex.get("id") == task_id:
                        return ex
    return None


def locate(master: str, agent_id: str, framework_id: str, task_id: str) -> dict[str, str]:
    """{agent_url, directory, executor_id} of the task's sandbox, as Mesos lists it."""
    url = agent_url(master, agent_id)
    state = _get(f"{url}/state") or {}
    ex = executor_of(state, framework_id, task_id)
    if ex is None or not ex.get("directory"):
        raise SandboxUnknown(f"agent {url} lists no executor for task {task_id}")
    return {"agent_url": url, "directory": ex["directory"], "executor_id": ex.get("id", "")}


def read(agent: str, path: str, offset: int, length: int | None) -> dict[str, Any] | None:
    """The agent's `/files/read` answer {"data", "offset"} (None: no such file)."""
    query = {"path": path, "offset": str(offset)}
    if length is not None:
        query["length"] = str(min(length, MAX_READ))
    return _get(f"{agent}/files/read?{urllib.parse.urlencode(query)}")
