"""How the master ends the tasks of an agent it loses: the one walk over an agent's tasks shared
by a broken link (Mesos' ``Master::exited``), a removal (``Master::removeSlave``, e.g. its machine
went DOWN) and an operator's MARK_AGENT_GONE. They differ only in what :class:`TaskLoss` says.

Pure: works on a :class:`~.core.MasterCore` and appends its effects.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from kmfwire.task_states import is_terminal

from .statuses import task_status

if TYPE_CHECKING:
    from .core import MasterCore


@attrs.frozen
class TaskLoss:
    """What becomes of a lost agent's live tasks.

    :param state: the state they take (and the status the framework gets).
    :param reason: the status' reason.
    :param message: the status' message.
    :param spare_checkpointing: leave the tasks (and executors) of checkpointing frameworks
        alone: they may outlive a broken link.
    :param record_forwarded: remember the status as the one forwarded for the task (what
        reconciliation answers with later).
    :param include_unreachable: end the agent's unreachable tasks too.
    """

    state: str
    reason: str
    message: str
    spare_checkpointing: bool = False
    record_forwarded: bool = True
    include_unreachable: bool = False
    # what a PARTITION_AWARE framework hears instead (state, reason); None: the same
    partition_aware: tuple[str, str] | None = None

    @classmethod
    def disconnected(cls, hostname: str) -> "TaskLoss":
        """The agent's link broke: as in Mesos, only frameworks that do not checkpoint lose tasks."""
        return cls("TASK_LOST", "REASON_AGENT_DISCONNECTED", f"Agent {hostname} disconnected",
                   spare_checkpointing=True, record_forwarded=False)

    @classmethod
    def removed(cls, hostname: str, cause: str) -> "TaskLoss":
        """Mesos' Master::__removeSlave (no unreachable time): every task is lost; a PARTITION_AWARE
        framework hears TASK_GONE_BY_OPERATOR (REASON_SLAVE_REMOVED_BY_OPERATOR) instead."""
        return cls("TASK_LOST", "REASON_AGENT_REMOVED", f"Agent {hostname} removed: {cause}",
                   partition_aware=("TASK_GONE_BY_OPERATOR", "REASON_AGENT_REMOVED_BY_OPERATOR"))

    @classmethod
    def gone(cls, hostname: str) -> "TaskLoss":
        """Operator API MARK_AGENT_GONE: every task, reachable or not, is gone for good."""
        return cls("TASK_GONE_BY_OPERATOR", "REASON_AGENT_REMOVED_BY_OPERATOR",
                   f"Agent {hostname} marked as gone by an operator", include_unreachable=True)


def end_agent_tasks(core: MasterCore, agent_id: str, loss: TaskLoss, now: float) -> None:
    """End the tasks the agent runs as ``loss`` says: each live one takes ``loss.state`` and its
    framework hears so; every one of them (live or already terminal) becomes a completed task;
    the frameworks' executors on the agent are forgotten."""
    for fw in core.frameworks.values():
        if loss.spare_checkpointing and fw.checkpoint:
            continue
        tasks = list(fw.tasks.values())
        if loss.include_unreachable:
            tasks += list(fw.unreachable_tasks.values())
        state, reason = loss.state, loss.reason
        if loss.partition_aware is not None and fw.partition_aware:
            state, reason = loss.partition_aware
        for task in [t for t in tasks if t.agent_id == agent_id]:
            if not is_terminal(task.state):
                task.state = state
                task.record_status(state, now)
                status = task_status(fw, task, state, reason, loss.message, now)
                if loss.record_forwarded:
                    task.forwarded_state = status["state"]
                core.send_update(fw, status)
            core.complete_task(fw, task)
        for key in [k for k in fw.executors if k[0] == agent_id]:
            del fw.executors[key]
