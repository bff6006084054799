"""Mesos task states (``TaskState`` in mesos.proto, v1 API names) and which of them are final.

`TERMINAL` is Mesos' own set: the states after which the agent forgets the task and sends no more
updates for it. `ENDED` is the scheduler's: a task in one of these states is not running and its
pod needs a new launch. It adds TASK_UNKNOWN, which Mesos does not count as terminal: the master
answers it to a reconciliation of a task it has no record of (e.g. the agent was removed and its
tasks were garbage-collected), so no update will ever come for that task id unless the task comes
back with its agent, which the scheduler handles as a new update of a task it had given up on.
"""
from __future__ import annotations

ALL = (
    "TASK_STAGING",
    "TASK_STARTING",
    "TASK_RUNNING",
    "TASK_KILLING",
    "TASK_FINISHED",
    "TASK_FAILED",
    "TASK_KILLED",
    "TASK_ERROR",
    "TASK_LOST",
    "TASK_DROPPED",
    "TASK_UNREACHABLE",
    "TASK_GONE",
    "TASK_GONE_BY_OPERATOR",
    "TASK_UNKNOWN",
)

TERMINAL = frozenset({
    "TASK_FINISHED", "TASK_FAILED", "TASK_KILLED", "TASK_ERROR", "TASK_LOST", "TASK_DROPPED",
    "TASK_GONE", "TASK_GONE_BY_OPERATOR",
})

# the scheduler's view (see the module docstring for why TASK_UNKNOWN is in it)
ENDED = TERMINAL | {"TASK_UNKNOWN"}

ACTIVE = frozenset({"TASK_STAGING", "TASK_STARTING", "TASK_RUNNING", "TASK_KILLING"})

# States only PARTITION_AWARE frameworks see; the others get TASK_LOST instead.
PARTITION_AWARE_ONLY = frozenset(
    {"TASK_DROPPED", "TASK_UNREACHABLE", "TASK_GONE", "TASK_GONE_BY_OPERATOR", "TASK_UNKNOWN"}
)


def is_terminal(state: str) -> bool:
    """Whether Mesos sends no more updates for a task in `state`."""
    return state in TERMINAL

# How the executor's TASK_FAILED message starts when the workload's data volume ran out of space;
# the scheduler keeps such a broker on its volume instead of moving it (which would destroy it).
VOLUME_FULL = "data volume full"
