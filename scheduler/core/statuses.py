"""Task status updates: what a task's new state means for its record.

A terminal state of a task the scheduler killed follows the kill's reason (restart and update
relaunch in place at once, replace places anew, goal GONE forgets the record); any other terminal
state is a failure, relaunched in place after a backoff. Updates about tasks no record knows, or
about ended tasks, are answered without touching a record (see the comments for why).
"""
from __future__ import annotations

import logging
from typing import Any, Mapping

import attrs

from kmfwire.task_states import VOLUME_FULL
from scheduler.core import actions as act
from scheduler.core import events as ev
from scheduler.core import maintenance
from scheduler.core.offer_control import offer_control
from scheduler.core.records import Result, backoff, put, replace, with_records
from scheduler.core.rolling import roll
from scheduler.core.state import TERMINAL, Goal, KillReason, State

log = logging.getLogger(__name__)


def _labels(status: Mapping[str, Any]) -> dict[str, str]:
    labels = (status.get("labels") or {}).get("labels") or []
    return {str(l.get("key")): str(l.get("value", "")) for l in labels if isinstance(l, Mapping)}


def on_status(state: State, event: ev.Status) -> Result:
    """One task status update: the record follows it, then the rolling update and offer control."""
    st = event.status
    now = event.now
    task_id = (st.get("task_id") or {}).get("value", "")
    name = st.get("state", "")
    agent_id = (st.get("agent_id") or {}).get("value")
    acks: list[act.Action] = [act.Acknowledge(st)] if st.get("uuid") else []
    if not isinstance(task_id, str) or not task_id:
        log.warning("status update without a task id: %r", st)
        return state, tuple(acks)
    if task_id in state.reconcile_pending:
        state = attrs.evolve(state, reconcile_pending=state.reconcile_pending - {task_id})
    rec = state.by_task_id(task_id)
    # A KILL of an unreachable task cannot reach it: Mesos answers it by reconciling, i.e. with
    # TASK_UNREACHABLE again, so killing on that update loops (a KILL storm). Such a task is killed
    # when it reappears with its agent (TASK_RUNNING, below), as a partition-aware framework does.
    unreachable = name == "TASK_UNREACHABLE"
    if rec is None:
        # a task of an earlier life of this pod, or not ours at all: it must not run
        out: list[act.Action] = []
        if name not in TERMINAL and not unreachable:
            out.append(act.Kill(task_id, agent_id))
        return state, tuple(out + acks)
    if rec.state in TERMINAL:
        # this task has ended: a terminal update again is a redelivery (its acknowledgement was
        # lost) and must not count as a second failure; a live one is stale, as the task is gone
        # (TASK_LOST and TASK_UNKNOWN may be followed by the task itself, back with its agent)
        final = rec.state not in ("TASK_LOST", "TASK_UNKNOWN")
        if name in TERMINAL and (final or name == rec.state):
            return state, tuple(acks)
        if name not in TERMINAL and final:
            if unreachable:
                return state, tuple(acks)
            return state, (act.Kill(task_id, agent_id or rec.agent_id), *acks)
    message = st.get("message") or ""
    releasing = dict(state.releasing)
    spec = state.spec
    if name in TERMINAL:
        if rec.goal == Goal.GONE:
            if rec.reservation is not None:
                releasing[rec.reservation.persistence_id] = rec.reservation.agent_id
            tasks = dict(state.tasks)
            del tasks[rec.pod]
            new_state = attrs.evolve(state, tasks=tasks, releasing=releasing)
            return offer_control(new_state, now, [act.Persist(deletes=(("tasks", rec.pod),)), *acks])
        base = attrs.evolve(rec, state=name, message=message, ready=False, healthy=None, app_state=None,
                            agent_id=agent_id or rec.agent_id)
        if (held := maintenance.stopped(state, rec, base, name, now)) is not None:
            new = held
        elif rec.kill_reason in (KillReason.RESTART, KillReason.UPDATE, KillReason.MAINTENANCE):
            new = attrs.evolve(base, kill_reason=None, backoff_until=0.0)
        elif rec.kill_reason == KillReason.REPLACE or name in ("TASK_GONE", "TASK_GONE_BY_OPERATOR"):
            new = replace(base, releasing, f"{name}: placing it anew")
        else:
            attempts = rec.attempts + 1
            full = rec.volume_full_since
            if full is None and message.startswith(VOLUME_FULL):
                full = now
            new = attrs.evolve(base, kill_reason=None, attempts=attempts,
                               backoff_until=now + backoff(spec, attempts), volume_full_since=full,
                               failed_since=rec.failed_since if rec.failed_since is not None else now)
    else:
        labels = _labels(st)
        if st.get("source") == "SOURCE_EXECUTOR":
            ready = labels.get("kmf.ready") == "true" if name == "TASK_RUNNING" else False
            app_state = labels.get("kmf.app_state") or None
        else:  # reconciliation answers and agent/master reports carry no readiness: keep it
            ready = rec.ready and name in ("TASK_RUNNING", "TASK_UNREACHABLE")
            app_state = rec.app_state
        # an unreachable task's health is not known (its executor cannot tell): not the last
        # "healthy" it sent; it is known again when the executor reports
        healthy = st.get("healthy") if "healthy" in st else (None if unreachable else rec.healthy)
        new = attrs.evolve(rec, state=name, message=message or rec.message, ready=ready,
                           healthy=healthy, agent_id=agent_id or rec.agent_id, app_state=app_state)
        if name == "TASK_UNREACHABLE":
            new = attrs.evolve(new, failed_since=rec.failed_since if rec.failed_since is not None else now)
        elif ready and healthy is not False:  # ready again (or back from unreachable)
            new = attrs.evolve(new, attempts=0, failed_since=None, volume_full_since=None)
        if ready and not rec.ready:
            new = attrs.evolve(new, ready_at=now)
    if new == rec:
        return state, tuple(acks)
    new_state = attrs.evolve(with_records(state, new), releasing=releasing)
    out = [put(new), *acks]
    new_state, more = roll(new_state, now)
    new_state, held_more = maintenance.maintain(new_state, now)
    return offer_control(new_state, now, out + more + held_more)
