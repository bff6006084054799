"""Reliable status updates, as a Mesos agent sends them: each task's statuses queue in order; the head goes to the
master until the scheduler acknowledges it, again after 10 s, 20 s, ... up to 10 min between tries,
and at once after a (re-)registration.

The timing and the rewriting of a status are pure functions (:func:`retry_delay`,
:func:`while_draining`, :func:`status_record`); :class:`StatusUpdates` is the agent's part that
queues, forwards and takes acknowledgements.
"""
from __future__ import annotations

import logging
import time
from typing import Any

from localmesos.agent.model import AgentState, TaskEntry, id_of, is_partition_aware, new_uuid
from kmfwire.task_states import is_terminal

log = logging.getLogger("localmesos.agent")

RETRY_FIRST_S, RETRY_MAX_S = 10.0, 600.0
# 2 ** 6 * RETRY_FIRST_S is already past RETRY_MAX_S; a cap on the exponent keeps floats finite
_MAX_DOUBLINGS = 32


def retry_delay(attempts: int) -> float:
    """Seconds until the head status goes again after its ``attempts``-th send (1, 2, ...): the
    first retry after 10 s, each further one after twice as long, never more than 10 min.

    Pure."""
    return min(RETRY_MAX_S, RETRY_FIRST_S * 2.0 ** min(max(attempts - 1, 0), _MAX_DOUBLINGS))


def while_draining(status: dict, drain_config: dict | None, framework_info: dict) -> dict:
    """The status as Mesos' agent forwards it: a task killed while the agent drains says
    REASON_AGENT_DRAINING, and becomes TASK_GONE_BY_OPERATOR for a partition-aware framework
    when the drain marks the agent gone. Returns ``status`` itself when nothing changes.

    Pure."""
    if drain_config is None or status.get("state") not in ("TASK_KILLING", "TASK_KILLED"):
        return status
    out = {**status, "reason": "REASON_AGENT_DRAINING"}
    if drain_config.get("mark_gone") and is_partition_aware(framework_info):
        out["state"] = "TASK_GONE_BY_OPERATOR"
    return out


def status_record(status: dict, now: float) -> dict[str, Any]:
    """The entry Mesos' Task.statuses keeps of a status: state, timestamp and the container's
    status without the executor's pid.

    Pure."""
    entry: dict[str, Any] = {"state": status["state"], "timestamp": float(status.get("timestamp") or now)}
    if status.get("container_status"):
        entry["container_status"] = {k: v for k, v in status["container_status"].items()
                                     if k != "executor_pid"}
    return entry


class StatusUpdates(AgentState):
    """The agent's status update queue (a part of :class:`localmesos.agent.agent.Agent`)."""

    def enqueue_update(self, fid: str, tid: str, status: dict) -> None:
        """Take a status (executor's or our own) into the task's ordered queue."""
        with self.lock:
            task = self.tasks.get((fid, tid))
            if task is None:  # e.g. reconciliation of a task we do not know
                task = self.tasks[(fid, tid)] = TaskEntry(fid, id_of(status.get("executor_id")) or "",
                                                          {"task_id": {"value": tid}}, state=status["state"])
            status.setdefault("agent_id", {"value": self.agent_id})
            status = while_draining(status, self.drain_config, self.frameworks.get(fid) or {})
            task.state = status["state"]
            task.statuses.append(status_record(status, time.time()))
            task.updates.append(status)
            if len(task.updates) == 1:
                task.next_send = 0.0
            self.counters["valid_status_updates"] += 1
            ex = self.executors.get((fid, task.executor_id))
            if ex is not None and ex.checkpoint:
                self.checkpoint_executor(ex)

    def agent_update(self, fid: str, tid: str, state: str, reason: str, message: str,
                     executor_id: str | None = None) -> None:
        """A status the agent itself sends (SOURCE_AGENT)."""
        status = {"task_id": {"value": tid}, "state": state, "source": "SOURCE_AGENT", "reason": reason,
                  "message": message, "uuid": new_uuid(), "timestamp": time.time()}
        if executor_id:
            status["executor_id"] = {"value": executor_id}
        self.enqueue_update(fid, tid, status)

    def forwarder(self) -> None:
        """Thread: send each task's head status when due, while registered."""
        while not self.stopped.wait(0.1):
            now = time.monotonic()
            with self.lock:
                if not self.registered:
                    continue
                due = [(fid, t, t.updates[0]) for (fid, _), t in self.tasks.items()
                       if t.updates and now >= t.next_send]
                for _, t, _ in due:
                    t.attempts += 1
                    t.next_send = now + retry_delay(t.attempts)
            for fid, t, status in due:
                body = {"framework_id": {"value": fid}, "status": status, "latest_state": t.state}
                try:
                    code, answer = self.call_master("status_update", body)
                except OSError as exc:
                    log.debug("status update not delivered: %s", exc)
                    with self.lock:
                        t.next_send = 0.0 if not self.registered else t.next_send
                    continue
                if code == 409:  # the master does not know this agent (any more)
                    with self.lock:
                        self.registered = False
                        t.next_send = 0.0

    def acknowledge(self, body: dict) -> dict:
        """The scheduler acknowledged a status: the next one of that task may go."""
        fid, tid, uuid = id_of(body.get("framework_id")), id_of(body.get("task_id")), body.get("uuid")
        if fid is None or tid is None:
            return {}  # no task has such a key
        with self.lock:
            task = self.tasks.get((fid, tid))
            if task is None or not task.updates or task.updates[0].get("uuid") != uuid:
                return {}
            done = task.updates.popleft()
            task.attempts = 0
            task.next_send = 0.0
            if is_terminal(done["state"]) and not task.updates:
                del self.tasks[(fid, tid)]
                self.completed_tasks.append((fid, task))
                ex = self.executors.get((fid, task.executor_id))
                if ex is not None:
                    ex.tasks.discard(tid)
                    if ex.checkpoint:
                        self.checkpoint_executor(ex)
        return {}
