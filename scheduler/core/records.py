"""Small edits of task records that every handler of the core shares.

Each handler returns a new `State` and the actions that make ZooKeeper agree with it; these
helpers keep the two in step (a record put into the state is the record persisted).
"""
from __future__ import annotations

import attrs

from config import ServiceSpec
from scheduler.core import actions as act
from scheduler.core.pods import PodDef
from scheduler.core.state import State, TaskRecord

Result = tuple[State, tuple[act.Action, ...]]


def put(*recs: TaskRecord) -> act.Persist:
    """One transaction writing `recs` (the write-ahead of whatever acts on them)."""
    return act.Persist(puts=tuple(("tasks", r.pod, r.to_json()) for r in recs))


def with_records(state: State, *recs: TaskRecord) -> State:
    tasks = dict(state.tasks)
    for r in recs:
        tasks[r.pod] = r
    return attrs.evolve(state, tasks=tasks)


def record_of(state: State, pod: PodDef) -> TaskRecord:
    """The pod's record, or a fresh one for a pod never launched."""
    return state.tasks.get(pod.name) or TaskRecord(pod.name, pod.kind)


def backoff(spec: ServiceSpec, attempts: int) -> float:
    """Seconds to wait before relaunching after the `attempts`-th failure in a row."""
    p = spec.policies
    return min(p.backoff_max_s, p.backoff_initial_s * p.backoff_factor ** max(0, attempts - 1))


def replace(rec: TaskRecord, releasing: dict[str, str], why: str) -> TaskRecord:
    """`rec` set to be placed anew; its old reservation goes into `releasing` (mutated)."""
    if rec.reservation is not None:
        releasing[rec.reservation.persistence_id] = rec.reservation.agent_id
    return attrs.evolve(rec, reservation=None, backoff_until=0.0, kill_reason=None, volume_full_since=None,
                        task_id=None if rec.active else rec.task_id, message=why, ready=False)
