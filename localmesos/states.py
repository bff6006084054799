"""Mesos task states as localmesos (master, agent and command executor) uses them: the one
definition of which states are terminal, which exist, and which only partition-aware frameworks see.

Terminal means what Apache Mesos' ``protobuf::isTerminalState`` says: TASK_UNREACHABLE and
TASK_UNKNOWN are *not* terminal (the task may come back, or the master may just not know), unlike
the scheduler's own view, which treats TASK_UNKNOWN as ended. When the project-wide task-state
package lands, this module is the one place to point at it (keeping Mesos' membership).

Pure: no I/O.
"""
from __future__ import annotations

_ACTIVE = ("TASK_STAGING", "TASK_STARTING", "TASK_RUNNING", "TASK_KILLING")
_ENDED = ("TASK_FINISHED", "TASK_FAILED", "TASK_KILLED", "TASK_ERROR", "TASK_LOST", "TASK_DROPPED")
_GONE = ("TASK_GONE", "TASK_GONE_BY_OPERATOR")

# Every state, in the order mesos.proto declares them (views list their counts in this order).
ALL_STATES = _ACTIVE + _ENDED + ("TASK_UNREACHABLE",) + _GONE + ("TASK_UNKNOWN",)
TERMINAL_STATES = frozenset(_ENDED + _GONE)
# States only PARTITION_AWARE frameworks see; the others get TASK_LOST instead (spec §4.1).
PA_ONLY_STATES = frozenset(
    {"TASK_DROPPED", "TASK_UNREACHABLE", "TASK_GONE", "TASK_GONE_BY_OPERATOR", "TASK_UNKNOWN"}
)


def is_terminal(state: str) -> bool:
    """Whether a task in ``state`` has ended for good (Mesos' isTerminalState)."""
    return state in TERMINAL_STATES
