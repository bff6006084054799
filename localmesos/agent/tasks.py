"""The master's calls to the agent about tasks and executors: run a task or a task group, kill,
shut down, drain, pass a framework message, reconcile; and the agent's own shutdown.

The shapes of what the agent makes are pure (:func:`command_executor_info`,
:func:`drain_kill`, :func:`unknown_task_state`); :class:`Tasks` is the agent's part that takes
the calls.
"""
from __future__ import annotations

import logging
import sys
import uuid as uuidlib
from typing import Any

from localmesos.agent.executors import alive, later, tasks_of_event
from localmesos.agent.model import AgentState, ExecutorEntry, TaskEntry, id_of, is_partition_aware
from localmesos.procs import kill_group
from kmfwire.task_states import is_terminal

log = logging.getLogger("localmesos.agent")


def command_executor_info(fid: str, tid: str, task: dict, python: str) -> dict:
    """The ExecutorInfo of the command executor Mesos' agent makes for a task without one: named
    after the task and its command; the task's URIs are fetched into the executor's sandbox, as
    Mesos' Slave::getExecutorInfo copies them.

    Pure."""
    command = task.get("command") or {}
    return {"executor_id": {"value": tid}, "framework_id": {"value": fid},
            "name": f"Command Executor (Task: {tid}) (Command: sh -c '{command.get('value', '')[:60]}')",
            "source": tid,
            "command": {"shell": False, "value": python,
                        "arguments": [python, "-m", "localmesos.agent.command_executor"],
                        "uris": list(command.get("uris") or [])}}


def drain_kill(fid: str, tid: str, task_info: dict, max_grace_period: dict | None) -> dict[str, Any]:
    """The kill a drain sends a task: with the drain's max_grace_period as its kill policy when
    that is shorter than the task's own grace period (or the task has none).

    Pure."""
    kill: dict[str, Any] = {"framework_id": {"value": fid}, "task_id": {"value": tid}}
    own = ((task_info.get("kill_policy") or {}).get("grace_period") or {}).get("nanoseconds")
    cap = max_grace_period
    if cap is not None and (own is None or int(cap.get("nanoseconds", 0)) < int(own)):
        kill["kill_policy"] = {"grace_period": cap}
    return kill


def unknown_task_state(framework_info: dict) -> str:
    """What the agent answers a reconciliation of a task it does not know.

    Pure."""
    return "TASK_DROPPED" if is_partition_aware(framework_info) else "TASK_LOST"


class Tasks(AgentState):
    """The agent's task calls from the master (a part of :class:`localmesos.agent.agent.Agent`)."""

    def run_task(self, body: dict) -> dict:
        fw = dict(body.get("framework_info") or {})
        task = dict(body.get("task") or {})
        fid = id_of(fw.get("id")) or ""
        tid = id_of(task.get("task_id")) or ""
        with self.lock:
            if "executor" in task:
                info = dict(task["executor"])
                ex, new = self._executor_for(fw, id_of(info.get("executor_id")) or tid, info)
            else:
                ex, new = self._executor_for(fw, tid, command_executor_info(fid, tid, task, sys.executable),
                                             command_task=True)
            self._add_task(ex, task)
            self.send_event(ex, {"type": "LAUNCH", "launch": {"task": task}})
        if new:
            self.launch_container(ex)
        return {}

    def run_task_group(self, body: dict) -> dict:
        fw = dict(body.get("framework_info") or {})
        info = dict(body.get("executor_info") or {})
        tasks = list((body.get("task_group") or {}).get("tasks") or [])
        with self.lock:
            ex, new = self._executor_for(fw, id_of(info.get("executor_id")) or "", info)
            for task in tasks:
                self._add_task(ex, task)
            self.send_event(ex, {"type": "LAUNCH_GROUP", "launch_group": {"task_group": {"tasks": tasks}}})
        if new:
            self.launch_container(ex)
        return {}

    def _executor_for(self, fw: dict, eid: str, info: dict, command_task: bool = False) -> tuple[ExecutorEntry, bool]:
        """The framework's executor ``eid``, made (with a sandbox) when it does not run yet; and
        whether it is new. Holds the lock."""
        fid = id_of(fw.get("id")) or ""
        self.frameworks[fid] = fw
        ex = self.executors.get((fid, eid))
        if ex is not None:
            return ex, False
        container = str(uuidlib.uuid4())
        ex = ExecutorEntry(fid, eid, info, fw, self.sandbox_for(fid, eid, container), container,
                           command_task=command_task)
        self.executors[(fid, eid)] = ex
        return ex, True

    def _add_task(self, ex: ExecutorEntry, task: dict) -> None:
        tid = id_of(task.get("task_id")) or ""
        self.tasks[(ex.framework_id, tid)] = TaskEntry(ex.framework_id, ex.executor_id, task)
        ex.tasks.add(tid)
        self.link_volumes(task, ex.sandbox)

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
        with self.lock:
            self.drain_config = config
            live = [(fid, tid, t) for (fid, tid), t in self.tasks.items() if not is_terminal(t.state)]
        for fid, tid, t in live:
            self.kill_task(drain_kill(fid, tid, t.info, config.get("max_grace_period")))
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
        state = unknown_task_state(self.frameworks.get(fid) or {})
        with self.lock:
            for t in body.get("task_ids") or []:
                tid = id_of(t) or ""
                if (fid, tid) not in self.tasks:
                    self.agent_update(fid, tid, state, "REASON_RECONCILIATION", "Task is unknown to the agent")
        return {}
