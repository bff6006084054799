"""Task reconciliation: asking Mesos for the state of the tasks the records name.

After (re)subscribing, explicit reconciliation asks about every known task and repeats with a
doubling interval until each was answered (an answer may be lost); implicit reconciliation (an
empty list: Mesos answers for every task it knows) repeats every IMPLICIT_EVERY_S, which finds
tasks no record knows.
"""
from __future__ import annotations

import attrs

from scheduler.core import actions as act
from scheduler.core.state import State

RECONCILE_FIRST_S, RECONCILE_MAX_S, IMPLICIT_EVERY_S = 4.0, 30.0, 600.0


def reconcile_again(state: State, now: float) -> tuple[State, list[act.Action]]:
    """The reconciliations due at `now` (none while disconnected)."""
    out: list[act.Action] = []
    if not state.connected:
        return state, out
    if state.reconcile_pending and now >= state.reconcile_next:
        pending = tuple((t, rec.agent_id) for t in sorted(state.reconcile_pending)
                        if (rec := state.by_task_id(t)) is not None)
        interval = min(RECONCILE_MAX_S, state.reconcile_interval * 2)
        state = attrs.evolve(state, reconcile_pending=frozenset(t for t, _ in pending),
                             reconcile_next=now + interval, reconcile_interval=interval)
        if pending:
            out.append(act.Reconcile(pending))
    if now - state.last_implicit >= IMPLICIT_EVERY_S:
        state = attrs.evolve(state, last_implicit=now)
        out.append(act.Reconcile(()))
    return state, out
