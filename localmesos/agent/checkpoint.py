"""Checkpoint and recovery: what the agent keeps in ``<work_dir>/meta`` (its id, its checkpointed
resources, one file per executor with its tasks) and what it does with a checkpointed executor
after a restart on the same work dir.

The checkpoint documents and the fate of a recovered executor are pure
(:func:`executor_document`, :func:`restore`, :func:`recovery_action`); :class:`CheckpointDir`
reads and writes the files; :class:`Recovery` is the agent's part that adopts or loses executors.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Iterable, Literal

from localmesos.agent.executors import alive, later
from localmesos.agent.model import AgentState, ExecutorEntry, TaskEntry, id_of, is_partition_aware
from localmesos.procs import kill_group
from kmfwire.task_states import is_terminal

log = logging.getLogger("localmesos.agent")

RESUBSCRIBE_WINDOW_S = 15.0  # a recovered executor must re-subscribe within this


def executor_document(ex: ExecutorEntry, tasks: Iterable[TaskEntry]) -> dict:
    """The checkpoint of an executor and its tasks (info and state of each).

    Pure."""
    return {**ex.to_json(), "tasks": [{"info": t.info, "state": t.state} for t in tasks]}


def restore(doc: dict) -> tuple[ExecutorEntry, list[tuple[str, TaskEntry]]]:
    """An executor and its ``(task id, task)`` pairs from its checkpoint; the tasks count as
    launched (they reached the executor before the restart).

    Pure."""
    ex = ExecutorEntry.from_json(doc)
    tasks = []
    for t in doc.get("tasks") or []:
        tid = id_of(t["info"].get("task_id")) or ""
        tasks.append((tid, TaskEntry(ex.framework_id, ex.executor_id, t["info"], state=t["state"],
                                     launched=True)))
    return ex, tasks


def recovery_action(running: bool, checkpoint: bool) -> Literal["adopt", "kill", "lose"]:
    """What Mesos' agent does with a checkpointed executor after it restarts: ``adopt`` a live
    executor of a checkpointing framework (it must re-subscribe); ``kill`` a live one of a
    framework that does not checkpoint, then lose its tasks; ``lose`` the tasks of one that died.

    Pure."""
    if not running:
        return "lose"
    return "adopt" if checkpoint else "kill"


class CheckpointDir:
    """The files of ``<work_dir>/meta``; whole files are replaced, never half written."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)

    def read(self, name: str) -> str | None:
        try:
            return (self.folder / name).read_text()
        except OSError:
            return None

    def write(self, name: str, text: str) -> None:
        path = self.folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.parent / f".{path.name}.tmp"
        tmp.write_text(text)
        os.replace(tmp, path)

    @staticmethod
    def _executor_file(ex: ExecutorEntry) -> str:
        return f"executors/{ex.framework_id}__{ex.executor_id}.json"

    def save_executor(self, ex: ExecutorEntry, tasks: Iterable[TaskEntry]) -> None:
        self.write(self._executor_file(ex), json.dumps(executor_document(ex, tasks)))

    def forget_executor(self, ex: ExecutorEntry) -> None:
        try:
            (self.folder / self._executor_file(ex)).unlink()
        except OSError:
            pass

    def executors(self) -> list[dict]:
        """The readable executor checkpoints, in file name order."""
        folder = self.folder / "executors"
        if not folder.is_dir():
            return []
        docs = []
        for path in sorted(folder.glob("*.json")):
            try:
                docs.append(json.loads(path.read_text()))
            except (OSError, ValueError):
                continue
        return docs


class Recovery(AgentState):
    """The agent's checkpointing and restart recovery (a part of :class:`localmesos.agent.agent.Agent`)."""

    def checkpoint_executor(self, ex: ExecutorEntry) -> None:
        self.meta.save_executor(ex, [t for (fid, _), t in self.tasks.items()
                                     if t.executor_id == ex.executor_id and fid == ex.framework_id])

    def recover(self) -> None:
        """After a restart on the same work_dir: adopt live executors of checkpointing frameworks."""
        for doc in self.meta.executors():
            ex, tasks = restore(doc)
            action = recovery_action(alive(ex.pid), ex.checkpoint)
            self.frameworks[ex.framework_id] = ex.framework_info
            for tid, task in tasks:
                self.tasks[(ex.framework_id, tid)] = task
                ex.tasks.add(tid)
            self.executors[ex.key] = ex
            if action == "adopt":
                log.info("recovering executor %s (pid %s)", ex.executor_id, ex.pid)
                self.watch_executor(ex)
                later(RESUBSCRIBE_WINDOW_S, self.kill_unless_subscribed, ex, "did not re-subscribe after the restart")
                continue
            if action == "kill":
                kill_group(ex.pid)
            self._lose_tasks(ex, "Executor did not survive the agent restart")

    def _lose_tasks(self, ex: ExecutorEntry, why: str) -> None:
        pa = is_partition_aware(ex.framework_info)
        with self.lock:
            self.executors.pop(ex.key, None)
            for tid in list(ex.tasks):
                t = self.tasks.get((ex.framework_id, tid))
                if t is not None and not is_terminal(t.state):
                    self.agent_update(ex.framework_id, tid, "TASK_GONE" if pa else "TASK_LOST",
                                      "REASON_EXECUTOR_REREGISTRATION_TIMEOUT", why, ex.executor_id)
            self.meta.forget_executor(ex)
