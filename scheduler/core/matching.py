"""Offer matching: one offer round, in named passes, and the outcome it had for each pod.

1. read the offers (an unreadable one is declined);
2. release reservations no record owns;
3. reserve for pods that run on a reservation and have none yet: brokers, and stream instances
   with a state volume (spread by app like the others);
4. launch those on their reservations, and the other stream instances where they fit (spread by
   app);
5. answer: the records first (write-ahead), then an ACCEPT per offer used and one DECLINE.

Every pod the round considered gets an `Outcome` (stage, ok, reason), kept in `State.placement`
for the API to explain where a pod is and why it is not placed.
"""
from __future__ import annotations

import logging
from typing import Mapping

import attrs

from kmfwire.taskdata import Voter
from scheduler.core import actions as act
from scheduler.core import events as ev
from scheduler.core.launching import launch, moved_note
from scheduler.core.offer_control import REFUSE_BUSY_S, REFUSE_IDLE_S, offer_control
from scheduler.core.offers import (OfferView, ResourceError, Resources, parse_offer, rejoined, release_operations,
                                   reservation_ids, reserve_operations, reserved_for, split_reserved, take_unreserved)
from scheduler.core.shortfalls import Shortfalls
from scheduler.core.offer_round import OfferRound, placed_by_group
from scheduler.core.spread import placement_refusal
from scheduler.core.outcomes import Stage
from scheduler.core.plans import work
from scheduler.core.pods import EXECUTOR_CPUS, EXECUTOR_MEM_MB, PodDef, desired_pods
from scheduler.core.records import Result, put
from scheduler.core.state import Goal, PodKind, Reservation, State
from scheduler.core.taskinfo import bootstrap_servers, new_id, voters

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------------------- passes

def _read_offers(event: ev.Offers) -> tuple[list[OfferView], list[str]]:
    """Pass 1: the offers that can be read, and the ids of those that cannot (to decline)."""
    views: list[OfferView] = []
    declines: list[str] = []
    for doc in event.offers:
        try:
            views.append(parse_offer(doc))
        except (ResourceError, KeyError, TypeError) as exc:
            oid = ((doc.get("id") or {}).get("value")) if isinstance(doc, Mapping) else None
            log.warning("declining an offer that cannot be read: %s", exc)
            if oid:
                declines.append(oid)
    return views, declines


def _release_unowned(rnd: OfferRound) -> None:
    """Pass 2: release what no record owns (a replaced pod's, a removed pod's, an uninstall's)."""
    state, name = rnd.state, rnd.state.spec.name
    for v in rnd.views:
        for rid, pod_name in reservation_ids(rnd.pools[v.id], name).items():
            rec = rnd.changed.get(pod_name) or state.tasks.get(pod_name)
            owned = (rec is not None and rec.goal == Goal.RUNNING and rec.reservation is not None
                     and rec.reservation.persistence_id == rid and not state.uninstalling)
            in_use = rec is not None and rec.active and rec.reservation is not None \
                and rec.reservation.persistence_id == rid
            if owned or in_use:
                continue
            res = reserved_for(rnd.pools[v.id], name, rid)
            rnd.ops[v.id] += release_operations(res)
            rnd.pools[v.id] = rnd.pools[v.id] - res
            rnd.releasing.pop(rid, None)


def _reserve(rnd: OfferRound, pod: PodDef) -> None:
    """Pass 3, one pod that runs on a reservation (a broker; a stream instance with a state volume):
    reserve on the first agent whose offer fits and whose placement rules allow it (a stream
    instance's agents tried in `spread` order, as an instance without a volume is placed)."""
    spec = rnd.state.spec
    role, principal = spec.mesos.role, spec.mesos.principal
    reasons = []
    stream = pod.kind == PodKind.STREAM
    order = rnd.spread.order(pod.group, rnd.views, rnd.placed) if stream and pod.spread else range(len(rnd.views))
    for i in order:
        v = rnd.views[i]
        reason = placement_refusal(pod, v, rnd.placed, rnd.known)  # a broker's: its constraints alone
        if reason is None and v.maintenance_end is not None and v.maintenance_end > rnd.now:
            reason = f"agent {v.hostname}: a Mesos maintenance window is ahead"
        if reason is None:
            got = take_unreserved(rnd.pools[v.id], role, pod.cpus + EXECUTOR_CPUS,
                                  pod.mem_mb + EXECUTOR_MEM_MB, pod.disk_mb, pod.ports_needed)
            if isinstance(got, str):
                reason = f"agent {v.hostname}: {got}"
        if reason is not None:
            reasons.append(reason)
            if stream:
                rnd.spread.refusals[(pod.group, i)] = reason
            continue
        assert isinstance(got, tuple)  # else a reason was set
        taken, ports = got
        rid = f"{spec.name}-{pod.name}-{new_id(spec.name, pod.name, rnd.now, v.id)[:8]}"
        reserve_ops, reserved = reserve_operations(taken, role, principal, spec.name, pod.name, rid, pod.volume_path)
        rnd.ops[v.id] += reserve_ops
        rnd.pools[v.id] = rnd.pools[v.id] - taken + reserved
        port_of = dict(zip(pod.roles, ports))
        reservation = Reservation(v.agent_id, v.hostname, rid, tuple(reserved.to_json("pre")),
                                  port_of.get("broker"), port_of.get("controller"), dict(v.attributes))
        before = rnd.current(pod)
        rnd.moved[pod.name] = moved_note(before, v.hostname)
        message = f"resources reserved on {v.hostname}{rnd.moved[pod.name]}"
        rnd.changed[pod.name] = attrs.evolve(before, reservation=reservation, agent_id=v.agent_id,
                                             hostname=v.hostname, message=message)
        rnd.spread.place(rnd.placed, pod.group, v)
        rnd.waiting.pop(pod.name, None)
        rnd.outcome(pod.name, Stage.RESERVE, True, message)
        return
    reasons = rnd.spread.reasons(pod.group, len(rnd.views)) if stream and pod.spread else reasons
    rnd.not_placed(pod, Stage.RESERVE, reasons)


def _launch_reserved(rnd: OfferRound, pod: PodDef, after: State, quorum: tuple[Voter, ...] | None,
                     boot: str) -> State:
    """Pass 4, one pod with a reservation (a broker; a stream instance with a state volume):
    launch on its reservation when its agent offers it back."""
    rec = rnd.current(pod)
    name = rnd.state.spec.name
    res = rec.reservation
    assert res is not None
    view = next((v for v in rnd.views if v.agent_id == res.agent_id), None)
    if view is None and not rec.active and (view := rejoined(rnd.views, rnd.pools, name, res.hostname,
                                                             res.persistence_id)) is not None:
        res = attrs.evolve(res, agent_id=view.agent_id)  # its host is back under a new agent id
        rec = attrs.evolve(rec, reservation=res, agent_id=view.agent_id)
    mine = reserved_for(rnd.pools[view.id], name, res.persistence_id) if view else Resources()
    if view is not None and not mine and not rec.active:
        # its agent offers nothing of the reservation: the RESERVE never happened (the
        # scheduler died between recording and sending it) or it is gone; after a second
        # such offer, reserve anew
        misses = rec.reservation_misses + 1
        lost = misses >= 2
        rnd.changed[pod.name] = attrs.evolve(rec, reservation=None if lost else rec.reservation,
                                             reservation_misses=0 if lost else misses,
                                             message="its reservation is not on its agent: reserving again"
                                             if lost else rec.message)
        rnd.waits(pod.name, Stage.LAUNCH, f"reserved resources not offered by {res.hostname}")
        return after
    if view is None or not mine:
        rnd.waits(pod.name, Stage.LAUNCH, f"waiting for an offer of its reserved resources on {res.hostname}")
        return after
    split = split_reserved(mine, pod.cpus, pod.mem_mb)
    if isinstance(split, str):
        rnd.waits(pod.name, Stage.LAUNCH, split)
        return after
    ports = tuple(p for p in (res.broker_port, res.controller_port) if p is not None)
    new, op = launch(after, pod, attrs.evolve(rec, reservation_misses=0), view, split[0], split[1],
                      ports, rnd.now, quorum, boot, rnd.moved.get(pod.name, ""))
    rnd.ops[view.id].append(op)
    rnd.pools[view.id] = rnd.pools[view.id] - mine
    rnd.changed[pod.name] = new
    rnd.waiting.pop(pod.name, None)
    rnd.outcome(pod.name, Stage.LAUNCH, True, new.message)
    return attrs.evolve(after, tasks={**after.tasks, pod.name: new})


def _launch_stream(rnd: OfferRound, pod: PodDef, after: State, quorum: tuple[Voter, ...] | None, boot: str,
                   short: Shortfalls) -> None:
    """Pass 4, one stream instance: launch on the first agent (in `spread` order) that fits it."""
    role = rnd.state.spec.mesos.role
    rec = rnd.current(pod)
    reasons = []
    shape = (pod.cpus, pod.mem_mb)
    start = 0 if pod.placement or pod.spread else short.skip.get(shape, 0)
    order = rnd.spread.order(pod.group, rnd.views, rnd.placed) if pod.spread else range(start, len(rnd.views))
    for i in order:
        v = rnd.views[i]
        reason = placement_refusal(pod, v, rnd.placed, rnd.known)
        got: tuple[Resources, list[int]] | str | None = None
        too_small = (v.id, pod.cpus, pod.mem_mb)
        if reason is None:
            reason = short.reason.get(too_small)
        if reason is None and v.maintenance_end is not None and v.maintenance_end > rnd.now:
            reason = short.reason[too_small] = f"agent {v.hostname}: a Mesos maintenance window is ahead"
        if reason is None:
            got = take_unreserved(rnd.pools[v.id], role, pod.cpus, pod.mem_mb, 0, 0)
            if isinstance(got, str):
                reason = short.reason[too_small] = f"agent {v.hostname}: {got}"
            else:
                exe = take_unreserved(rnd.pools[v.id] - got[0], role, EXECUTOR_CPUS, EXECUTOR_MEM_MB, 0, 0)
                if isinstance(exe, str):
                    reason = short.reason[too_small] = f"agent {v.hostname}: executor {exe}"
        if reason is not None:
            short.passed(shape, i, too_small)
            reasons.append(reason)
            rnd.spread.refusals[(pod.group, i)] = reason
            continue
        assert isinstance(got, tuple) and isinstance(exe, tuple)  # else a reason was set
        new, op = launch(after, pod, rec, v, got[0], exe[0], (), rnd.now, quorum, boot)
        rnd.ops[v.id].append(op)
        rnd.pools[v.id] = rnd.pools[v.id] - got[0] - exe[0]
        rnd.changed[pod.name] = new
        rnd.spread.place(rnd.placed, pod.group, v)
        rnd.waiting.pop(pod.name, None)
        rnd.outcome(pod.name, Stage.LAUNCH, True, new.message)
        return
    reasons = rnd.spread.reasons(pod.group, len(rnd.views)) if pod.spread else reasons
    rnd.not_placed(pod, Stage.PLACE, short.skipped(rnd.views[:start], shape) + reasons)


def _answer(rnd: OfferRound) -> list[act.Action]:
    """Pass 5: the records first (write-ahead: before the ACCEPTs), then what each offer gets."""
    out: list[act.Action] = []
    if rnd.changed:
        out.append(put(*rnd.changed.values()))
    busy = bool(rnd.waiting) or bool(rnd.releasing)
    declines = rnd.declines
    for v in rnd.views:
        if rnd.ops[v.id]:
            out.append(act.Accept((v.id,), tuple(rnd.ops[v.id]), REFUSE_BUSY_S))
        else:
            declines.append(v.id)
    if declines:
        out.append(act.Decline(tuple(declines), REFUSE_BUSY_S if busy else REFUSE_IDLE_S))
    return out


# -------------------------------------------------------------------------------------- round

def on_offers(state: State, event: ev.Offers) -> Result:
    """One offer round through the passes (module docstring); every offer is answered."""
    spec = state.spec
    now = event.now
    pods = desired_pods(spec)
    role = spec.mesos.role
    quorum_known = voters(state.tasks, pods) is not None or spec.kafka.mode != "kraft"
    todo = work(state, pods, now, quorum_known)
    views, declines = _read_offers(event)
    known: dict[str, set[str]] = {}
    for v in views:
        known.setdefault("hostname", set()).add(v.hostname)
        for k, val in v.attributes.items():
            known.setdefault(k, set()).add(val)
    rnd = OfferRound(
        state=state, now=now, views=views, declines=declines,
        # resources reserved for another role are not ours to use or release, whatever their labels
        pools={v.id: v.pool.filter(lambda r: not r.is_reserved or r.role == role) for v in views},
        ops={v.id: [] for v in views}, waiting=dict(todo.waiting), releasing=dict(state.releasing),
        placed=placed_by_group(state, pods), known=known)
    for name, why in todo.waiting.items():
        rnd.outcome(name, Stage.WAIT, False, why)
    _release_unowned(rnd)
    for pod in todo.reserve:
        _reserve(rnd, pod)
    # reservations made above may complete the quorum: re-plan the launches
    after = attrs.evolve(state, tasks={**state.tasks, **rnd.changed})
    quorum_known = voters(after.tasks, pods) is not None or spec.kafka.mode != "kraft"
    launch = work(after, pods, now, quorum_known).launch
    # launches keep their reservations, so the quorum and the bootstrap list stay as they are now
    quorum, boot = voters(after.tasks, pods), bootstrap_servers(after.tasks, pods)
    short = Shortfalls()
    for pod in launch:
        if pod.reserves:
            after = _launch_reserved(rnd, pod, after, quorum, boot)
        else:
            _launch_stream(rnd, pod, after, quorum, boot, short)
    out = _answer(rnd)
    names = {p.name for p in pods}
    outcomes = {k: o for k, o in {**state.placement, **rnd.outcomes}.items() if k in names}
    new_state = attrs.evolve(state, tasks={**state.tasks, **rnd.changed}, releasing=rnd.releasing,
                             last_placement=rnd.waiting, placement=outcomes)
    return offer_control(new_state, now, out)
