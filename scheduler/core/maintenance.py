"""Mesos maintenance: what kmf does when an operator schedules maintenance of agents.

Mesos announces a window (its ``unavailability``: start, optional duration) with an inverse offer
to every framework using the agent, and on the agent's regular offers. For each broker on such an
agent kmf starts a hold (`maintenance_holds`, stored as a property):

- a window up to ``policies.maintenance_move_after_s`` long: the broker is stopped gracefully
  (Kafka moves its leadership away on a controlled shutdown), from ``LEAD_S`` before the window
  starts, and not relaunched until the window ends; then it is relaunched in place on its reservation and volume (also when the agent comes
  back under a new agent id after its machine was DOWN and UP);
- a longer window, or one without an end: the broker moves with its id to another agent (as
  `pod replace` does), never onto an agent with a maintenance window ahead.

Every stop goes through the `StopGate` (one broker at a time, no partition below
min.insync.replicas, a KRaft majority). The inverse offer of an agent is accepted once no broker of
kmf runs there, kept unanswered while its broker stops, and declined with a short refuse while
the gate makes the broker wait. A hold ends when the window is over or when an offer of its host
shows no window any more (the machine is UP, or the schedule was cancelled).
"""
from __future__ import annotations

from typing import Any, Mapping

import attrs

from scheduler.core import actions as act
from scheduler.core import events as ev
from scheduler.core.maintenance_holds import LEAD_S, PREFIX, Hold, hold_of, holds, window_of, window_text
from scheduler.core.matching import on_offers as match_offers
from scheduler.core.offer_control import offer_control
from scheduler.core.pods import desired_pods
from scheduler.core.records import Result, put, replace, with_records
from scheduler.core.state import Goal, KillReason, PodKind, State, TaskRecord
from scheduler.core.stop_gate import StopGate

DECLINE_REFUSE_S = 1.0  # a declined inverse offer comes back this soon (kmf may be able to stop then)
DECLINE_LATER_MAX_S = 60.0  # ... or, before its broker is due to stop, at most this much later
ACCEPT_REFUSE_S = 5.0


def _agent_of(rec: TaskRecord) -> set[str]:
    out = {rec.agent_id} if rec.agent_id and rec.active else set()
    if rec.reservation is not None:
        out.add(rec.reservation.agent_id)
    return out


def _start_holds(state: State, offers: tuple[Mapping[str, Any], ...], now: float) -> tuple[State, list[act.Action]]:
    """A hold for every broker on an agent an inverse offer names (brokers already held keep theirs)."""
    limit = state.spec.policies.maintenance_move_after_s
    props = dict(state.properties)
    inverse = dict(state.inverse_offers)
    puts: list[tuple[str, str, Any]] = []
    existing = holds(state)
    held: set[str] = set()
    for doc in offers:
        ioid = (doc.get("id") or {}).get("value")
        agent = (doc.get("agent_id") or {}).get("value")
        if not isinstance(ioid, str) or not isinstance(agent, str):
            continue
        inverse[ioid] = agent
        window = window_of(doc.get("unavailability"))
        if window is None:
            continue
        start, end = window
        if end is not None and end <= now:
            continue  # over already (Mesos keeps a machine DRAINING until it is taken DOWN)
        move = end is None or end - start > limit
        for rec in state.tasks.values():
            if rec.kind != PodKind.BROKER or rec.goal != Goal.RUNNING or agent not in _agent_of(rec) \
                    or rec.pod in held:
                continue
            held.add(rec.pod)
            host = rec.reservation.hostname if rec.reservation is not None else (rec.hostname or "")
            old = existing.get(rec.pod)
            if old is not None and (old.start, old.end) == (start, end):
                continue
            # a new hold, or the operator moved the window (its end, or stop in place ↔ move)
            hold = Hold(rec.pod, agent, host, start, end, move, old.since if old is not None else now)
            props[hold.key] = hold.to_json()
            puts.append(("properties", hold.key, props[hold.key]))
    state = attrs.evolve(state, properties=props, inverse_offers=inverse)
    return state, ([act.Persist(puts=tuple(puts))] if puts else [])


def end_hold(state: State, hold: Hold, why: str, now: float) -> tuple[State, list[act.Action]]:
    """The hold goes; a broker waiting in place may be launched again. If its agent was lost
    meanwhile (the machine went DOWN), its permanent-failure clock starts again now: the agent has
    ``permanent_failure_timeout_s`` after the window to come back before the broker moves."""
    props = {k: v for k, v in state.properties.items() if k != hold.key}
    out: list[act.Action] = [act.Persist(deletes=(("properties", hold.key),))]
    state = attrs.evolve(state, properties=props,
                         maintenance_waits={k: v for k, v in state.maintenance_waits.items() if k != hold.pod})
    rec = state.tasks.get(hold.pod)
    if rec is not None and not rec.active and not hold.move:
        new = attrs.evolve(rec, failed_since=None if rec.failed_since is None else now, attempts=0,
                           backoff_until=0.0, reservation_misses=0, message=f"{why}: relaunching it in place")
        state = with_records(state, new)
        out.append(put(new))
    return state, out


def maintain(state: State, now: float) -> tuple[State, list[act.Action]]:
    """Holds whose window is over end; held brokers stop when the gate lets them (one at a time);
    inverse offers are answered."""
    if not state.inverse_offers and not state.maintenance_waits \
            and not any(k.startswith(PREFIX) for k in state.properties):
        return state, []  # no maintenance: the common case, kept cheap
    out: list[act.Action] = []
    current = holds(state)
    for hold in current.values():
        if hold.over(now):
            state, more = end_hold(state, hold, f"the maintenance window of {hold.hostname} is over", now)
            out += more
    current = holds(state)
    pods = {p.name: p for p in desired_pods(state.spec)}
    waits: dict[str, str] = {}
    for name, hold in sorted(current.items()):
        rec, pod = state.tasks.get(name), pods.get(name)
        if rec is not None and (rec.goal != Goal.RUNNING or state.uninstalling):
            continue  # going away: nothing to keep available
        if rec is not None and pod is not None and hold.move and not rec.active and rec.reservation is not None \
                and rec.reservation.hostname == hold.hostname:
            # not running on the host it is to leave (stopped for a window since made longer, or
            # failed): placed anew once the gate lets its data go
            why = StopGate(state, list(pods.values()), now).blocker(pod, moving=True)
            if why is None:
                releasing = dict(state.releasing)
                new = replace(rec, releasing, f"moving it off {hold.hostname} (maintenance)")
                state = attrs.evolve(with_records(state, new), releasing=releasing)
                out.append(put(new))
            else:
                waits[name] = f"waiting to move off {hold.hostname} for its maintenance: {why}"
            continue
        if rec is None or pod is None or not rec.active or rec.task_id is None or rec.kill_reason:
            continue
        if not hold.due(now):
            waits[name] = (f"maintenance of {hold.hostname} ahead ({window_text(hold.start, hold.end, now)}): "
                           f"it stops {LEAD_S:.0f}s before the window")
            continue
        why = StopGate(state, list(pods.values()), now).blocker(pod, moving=hold.move)
        if why is not None:
            waits[name] = f"waiting to stop for the maintenance of {hold.hostname}: {why}"
            continue
        verb = "moving it to another agent" if hold.move else "stopping it until the window ends"
        text = f"maintenance of {hold.hostname} ({window_text(hold.start, hold.end, now)}): {verb}"
        new = attrs.evolve(rec, kill_reason=KillReason.REPLACE if hold.move else KillReason.MAINTENANCE,
                           message=text)
        state = attrs.evolve(with_records(state, new), last_roll_kill=now)
        out += [put(new), act.Kill(rec.task_id, rec.agent_id, text)]
    state = attrs.evolve(state, maintenance_waits=waits)
    accept: list[str] = []
    decline: dict[float, list[str]] = {}
    for ioid, agent in sorted(state.inverse_offers.items()):
        running = [r for r in state.tasks.values()
                   if r.kind == PodKind.BROKER and r.active and r.agent_id == agent]
        if not running:
            accept.append(ioid)
        elif any(not r.kill_reason for r in running):
            # asked again soon while a stop is due (the gate may let it go), else when it is due
            due = [h.start - LEAD_S for r in running if (h := current.get(r.pod)) is not None and not h.due(now)]
            refuse = DECLINE_REFUSE_S if not due or len(due) < len(running) \
                else min(DECLINE_LATER_MAX_S, max(DECLINE_REFUSE_S, min(due) - now))
            decline.setdefault(refuse, []).append(ioid)
        # else: its brokers are stopping; answered once they have stopped
    answered = set(accept) | {i for ids in decline.values() for i in ids}
    if answered:
        state = attrs.evolve(state, inverse_offers={k: v for k, v in state.inverse_offers.items()
                                                    if k not in answered})
    if accept:
        out.append(act.AcceptInverseOffers(tuple(accept), ACCEPT_REFUSE_S))
    for refuse, ids in sorted(decline.items()):
        out.append(act.DeclineInverseOffers(tuple(ids), refuse))
    return state, out


def stopped(state: State, rec: TaskRecord, base: TaskRecord, name: str, now: float) -> TaskRecord | None:
    """The record after a terminal status of a broker held to wait in place whose stop is due
    (None: the usual rules; a moving broker's REPLACE or TASK_GONE_BY_OPERATOR places it anew).
    No failure, the reservation kept, whatever ended it: the stop kmf asked for, or its machine
    taken DOWN first (TASK_GONE_BY_OPERATOR on Apache Mesos, TASK_LOST for others)."""
    hold = hold_of(state, rec.pod)
    if hold is None or hold.move or not (rec.kill_reason == KillReason.MAINTENANCE or hold.due(now)):
        return None
    return attrs.evolve(base, kill_reason=None, backoff_until=0.0, failed_since=None,
                        message=f"stopped for the maintenance of {hold.hostname} ({name}); "
                                "relaunched in place once the window ends")


def after_move(state: State, now: float) -> tuple[State, list[act.Action]]:
    """A broker placed anew off its host (moved for the window, or replaced by the operator) needs
    its hold no more."""
    out: list[act.Action] = []
    for hold in holds(state).values():
        rec = state.tasks.get(hold.pod)
        if rec is not None and rec.reservation is not None and rec.reservation.hostname != hold.hostname:
            state, more = end_hold(state, hold, f"moved off {hold.hostname}", now)
            out += more
    return state, out


def on_inverse_offers(state: State, event: ev.InverseOffers) -> Result:
    state, out = _start_holds(state, event.offers, event.now)
    state, more = maintain(state, event.now)
    return offer_control(state, event.now, out + more)


def on_inverse_offer_rescinded(state: State, event: ev.InverseOfferRescinded) -> Result:
    left = {k: v for k, v in state.inverse_offers.items() if k != event.inverse_offer_id}
    return attrs.evolve(state, inverse_offers=left), ()


def on_offers(state: State, event: ev.Offers) -> Result:
    """An offer round (`matching`), after the holds its offers end: an offer of a held host that
    carries no unavailability (the machine is UP again, or its window was cancelled)."""
    out: list[act.Action] = []
    current = holds(state)
    free_hosts = {doc.get("hostname") for doc in event.offers if not doc.get("unavailability")} if current else set()
    for hold in current.values():
        if hold.hostname in free_hosts:
            state, more = end_hold(state, hold, f"{hold.hostname} offers resources with no maintenance window",
                                   event.now)
            out += more
    state, more = maintain(state, event.now)
    out += more
    state, answer = match_offers(state, event)
    state, more = after_move(state, event.now) if current else (state, [])
    return state, (*out, *answer, *more)
