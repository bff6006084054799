"""`decide(state, event) -> (state, actions)`: every decision the scheduler makes.

Recovery policy: a task that fails on a live agent is relaunched in place (same reservation and
volume) after an exponential backoff; a task whose agent is gone, or that stayed failed or
unreachable past ``permanent_failure_timeout_s``, or that an operator replaces, is placed anew on
another agent with the same identity (pod name, node id), and its old reservation is released
when that agent offers it again.
"""
from __future__ import annotations

import logging
from typing import Any, Callable, Mapping

import attrs

import config
from config import ServiceSpec
from kmf.taskdata import Voter
from scheduler.core import actions as act
from scheduler.core import broker_count, launch_config
from scheduler.core import events as ev
from scheduler.core.offers import (
    OfferView,
    ResourceError,
    Resources,
    parse_offer,
    release_operations,
    reservation_ids,
    reserve_operations,
    reserved_for,
    split_reserved,
    take_unreserved,
)
from scheduler.core.placement import field_value, first_violation
from scheduler.core.plans import interrupted, plan_view, work
from scheduler.core.pods import EXECUTOR_CPUS, EXECUTOR_MEM_MB, PodDef, desired_pods
from scheduler.core.state import TERMINAL, Reservation, State, TaskRecord
from scheduler.core.taskinfo import (
    bootstrap_servers,
    fingerprint,
    new_id,
    task_data,
    task_info,
    voters,
)

log = logging.getLogger(__name__)

REFUSE_BUSY_S = 5.0
# Most instances a command may ask for (brokers, or one app's): a count beyond it would only stall
# the decision loop building pods (the benchmarks' 10,000 task records stay within it).
MAX_INSTANCES = config.MAX_INSTANCES
RECONCILE_FIRST_S, RECONCILE_MAX_S, IMPLICIT_EVERY_S = 4.0, 30.0, 600.0
REFUSE_IDLE_S = 120.0
Result = tuple[State, tuple[act.Action, ...]]


# ------------------------------------------------------------------------------- construction

def initial_state(spec: ServiceSpec, config_id: str, framework_id: str | None,
                  tasks: Mapping[str, Any], properties: Mapping[str, str],
                  plans: Mapping[str, Any] | None = None, cluster_id: str | None = None) -> State:
    """The state after loading ZooKeeper. `cluster_id` is a fresh KRaft cluster id to use if the
    store has none yet (it is persisted by the first decision, before any launch)."""
    records = {name: rec if isinstance(rec, TaskRecord) else TaskRecord.from_json(rec)
               for name, rec in tasks.items()}
    props = dict(properties)
    if spec.kafka.mode == "kraft" and "cluster_id" not in props and cluster_id:
        props["cluster_id"] = cluster_id
        props["unsaved.cluster_id"] = "true"
    return State(spec=spec, config_id=config_id, framework_id=framework_id, tasks=records,
                 properties=props, uninstalling=props.get("uninstall") == "true")


def _put(*recs: TaskRecord) -> act.Persist:
    return act.Persist(puts=tuple(("tasks", r.pod, r.to_json()) for r in recs))


def _with(state: State, *recs: TaskRecord) -> State:
    tasks = dict(state.tasks)
    for r in recs:
        tasks[r.pod] = r
    return attrs.evolve(state, tasks=tasks)


def _backoff(spec: ServiceSpec, attempts: int) -> float:
    p = spec.policies
    return min(p.backoff_max_s, p.backoff_initial_s * p.backoff_factor ** max(0, attempts - 1))


def _record(state: State, pod: PodDef) -> TaskRecord:
    return state.tasks.get(pod.name) or TaskRecord(pod.name, pod.kind)


def desired_fingerprints(state: State, pods: list[PodDef]) -> dict[str, str | None]:
    quorum = voters(state.tasks, pods)
    boot = bootstrap_servers(state.tasks, pods)
    out: dict[str, str | None] = {}
    for pod in pods:
        rec = state.tasks.get(pod.name)
        if pod.kind == "broker" and (rec is None or rec.reservation is None
                                     or (state.spec.kafka.mode == "kraft" and quorum is None)):
            out[pod.name] = None
            continue
        out[pod.name] = fingerprint(pod, task_data(state.spec, pod, rec, state.properties, quorum, boot))
    return out


# ------------------------------------------------------------------------------------ offers

def _placed(state: State, pods: list[PodDef]) -> dict[str, list[tuple[str, Mapping[str, str]]]]:
    by_group: dict[str, list[tuple[str, Mapping[str, str]]]] = {}
    for pod in pods:
        rec = state.tasks.get(pod.name)
        if rec is None:
            continue
        if rec.reservation is not None:
            by_group.setdefault(pod.group, []).append((rec.reservation.hostname, rec.reservation.attributes))
        elif rec.active and rec.hostname:
            by_group.setdefault(pod.group, []).append((rec.hostname, {}))
    return by_group


def _launch(state: State, pod: PodDef, rec: TaskRecord, offer: OfferView, task_res: Resources,
            exec_res: Resources, ports: tuple[int, ...], now: float,
            quorum: tuple[Voter, ...] | None, boot: str) -> tuple[TaskRecord, dict]:
    data = task_data(state.spec, pod, rec, state.properties, quorum, boot)
    launches = rec.launches + 1
    task_id = f"{pod.name}__{new_id(state.spec.name, pod.name, launches, now, offer.id)}"
    info = task_info(state.spec, pod, task_id, offer.agent_id, data, task_res, exec_res, state.config_id, ports)
    new = attrs.evolve(rec, task_id=task_id, agent_id=offer.agent_id, hostname=offer.hostname,
                       state=None, message=f"launched on {offer.hostname}", ready=False, healthy=None,
                       fingerprint=fingerprint(pod, data), launches=launches, kill_reason=None,
                       launched_at=now, ports=ports)
    return new, {"type": "LAUNCH", "launch": {"task_infos": [info]}}


def on_offers(state: State, event: ev.Offers) -> Result:
    spec = state.spec
    now = event.now
    pods = desired_pods(spec)
    by_name = {p.name: p for p in pods}
    role, principal = spec.mesos.role, spec.mesos.principal
    quorum_known = voters(state.tasks, pods) is not None or spec.kafka.mode != "kraft"
    todo = work(state, pods, now, quorum_known)
    waiting = dict(todo.waiting)
    declines: list[str] = []
    views: list[OfferView] = []
    for doc in event.offers:
        try:
            views.append(parse_offer(doc))
        except (ResourceError, KeyError, TypeError) as exc:
            oid = ((doc.get("id") or {}).get("value")) if isinstance(doc, Mapping) else None
            log.warning("declining an offer that cannot be read: %s", exc)
            if oid:
                declines.append(oid)
    ops: dict[str, list[dict]] = {v.id: [] for v in views}
    # resources reserved for another role are not ours to use or release, whatever their labels
    pools = {v.id: v.pool.filter(lambda r: not r.is_reserved or r.role == role) for v in views}
    changed: dict[str, TaskRecord] = {}
    releasing = dict(state.releasing)
    placed = _placed(state, pods)
    known: dict[str, set[str]] = {}
    for v in views:
        known.setdefault("hostname", set()).add(v.hostname)
        for k, val in v.attributes.items():
            known.setdefault(k, set()).add(val)

    def current(pod: PodDef) -> TaskRecord:
        return changed.get(pod.name) or _record(state, pod)

    # pass A: release what no record owns, reserve for brokers that have no reservation yet
    for v in views:
        for rid, pod_name in reservation_ids(pools[v.id], spec.name).items():
            rec = changed.get(pod_name) or state.tasks.get(pod_name)
            owned = (rec is not None and rec.goal == "RUNNING" and rec.reservation is not None
                     and rec.reservation.persistence_id == rid and not state.uninstalling)
            in_use = rec is not None and rec.active and rec.reservation is not None \
                and rec.reservation.persistence_id == rid
            if owned or in_use:
                continue
            res = reserved_for(pools[v.id], spec.name, rid)
            ops[v.id] += release_operations(res)
            pools[v.id] = pools[v.id] - res
            releasing.pop(rid, None)
    for pod in todo.reserve:
        reasons = []
        for v in views:
            reason = first_violation(pod.placement, v.hostname, v.attributes, placed.get(pod.group, []), known)
            if reason is None:
                got = take_unreserved(pools[v.id], role, pod.cpus + EXECUTOR_CPUS,
                                      pod.mem_mb + EXECUTOR_MEM_MB, pod.disk_mb, pod.ports_needed)
                if isinstance(got, str):
                    reason = f"agent {v.hostname}: {got}"
            if reason is not None:
                reasons.append(reason)
                continue
            taken, ports = got
            rid = f"{spec.name}-{pod.name}-{new_id(spec.name, pod.name, now, v.id)[:8]}"
            reserve_ops, reserved = reserve_operations(taken, role, principal, spec.name, pod.name, rid)
            ops[v.id] += reserve_ops
            pools[v.id] = pools[v.id] - taken + reserved
            port_of = dict(zip(pod.roles, ports))
            reservation = Reservation(v.agent_id, v.hostname, rid, tuple(reserved.to_json("pre")),
                                      port_of.get("broker"), port_of.get("controller"), dict(v.attributes))
            changed[pod.name] = attrs.evolve(current(pod), reservation=reservation, agent_id=v.agent_id,
                                             hostname=v.hostname, message=f"resources reserved on {v.hostname}")
            placed.setdefault(pod.group, []).append((v.hostname, v.attributes))
            waiting.pop(pod.name, None)
            break
        else:
            waiting[pod.name] = "; ".join(reasons) if reasons else "no offers"
    # reservations made above may complete the quorum: re-plan the launches
    after_a = attrs.evolve(state, tasks={**state.tasks, **changed})
    quorum_known = voters(after_a.tasks, pods) is not None or spec.kafka.mode != "kraft"
    launch = work(after_a, pods, now, quorum_known).launch
    # launches keep their reservations, so the quorum and the bootstrap list stay as they are now
    quorum, boot = voters(after_a.tasks, pods), bootstrap_servers(after_a.tasks, pods)
    # pass B: launch brokers on their reservations and stream instances anywhere they fit.
    # Pools only shrink in this pass, so an offer too small for (cpus, mem) stays too small:
    # remembering that keeps a round linear in offers + pods instead of their product.
    short: dict[tuple[str, float, int], str] = {}
    for pod in launch:
        rec = current(pod)
        if pod.kind == "broker":
            res = rec.reservation
            assert res is not None
            view = next((v for v in views if v.agent_id == res.agent_id), None)
            mine = reserved_for(pools[view.id], spec.name, res.persistence_id) if view else Resources()
            if view is not None and not mine and not rec.active:
                # its agent offers nothing of the reservation: the RESERVE never happened (the
                # scheduler died between recording and sending it) or it is gone; after a second
                # such offer, reserve anew
                misses = rec.reservation_misses + 1
                lost = misses >= 2
                changed[pod.name] = attrs.evolve(rec, reservation=None if lost else rec.reservation,
                                                 reservation_misses=0 if lost else misses,
                                                 message="its reservation is not on its agent: reserving again"
                                                 if lost else rec.message)
                waiting[pod.name] = f"reserved resources not offered by {res.hostname}"
                continue
            if view is None or not mine:
                waiting[pod.name] = f"waiting for an offer of its reserved resources on {res.hostname}"
                continue
            split = split_reserved(mine, pod.cpus, pod.mem_mb)
            if isinstance(split, str):
                waiting[pod.name] = split
                continue
            ports = tuple(p for p in (res.broker_port, res.controller_port) if p is not None)
            new, op = _launch(after_a, pod, attrs.evolve(rec, reservation_misses=0), view, split[0], split[1],
                              ports, now, quorum, boot)
            ops[view.id].append(op)
            pools[view.id] = pools[view.id] - mine
            changed[pod.name] = new
            after_a = attrs.evolve(after_a, tasks={**after_a.tasks, pod.name: new})
            waiting.pop(pod.name, None)
            continue
        reasons = []
        for v in views:
            reason = first_violation(pod.placement, v.hostname, v.attributes, placed.get(pod.group, []), known)
            got: Any = None
            too_small = (v.id, pod.cpus, pod.mem_mb)
            if reason is None:
                reason = short.get(too_small)
            if reason is None:
                got = take_unreserved(pools[v.id], role, pod.cpus, pod.mem_mb, 0, 0)
                if isinstance(got, str):
                    reason = short[too_small] = f"agent {v.hostname}: {got}"
                else:
                    exe = take_unreserved(pools[v.id] - got[0], role, EXECUTOR_CPUS, EXECUTOR_MEM_MB, 0, 0)
                    if isinstance(exe, str):
                        reason = short[too_small] = f"agent {v.hostname}: executor {exe}"
            if reason is not None:
                reasons.append(reason)
                continue
            new, op = _launch(after_a, pod, rec, v, got[0], exe[0], (), now, quorum, boot)
            ops[v.id].append(op)
            pools[v.id] = pools[v.id] - got[0] - exe[0]
            changed[pod.name] = new
            placed.setdefault(pod.group, []).append((v.hostname, v.attributes))
            waiting.pop(pod.name, None)
            break
        else:
            waiting[pod.name] = "; ".join(reasons) if reasons else "no offers"
    out: list[act.Action] = []
    if changed:
        out.append(_put(*changed.values()))  # write-ahead: records before the ACCEPTs
    busy = bool(waiting) or bool(releasing)
    for v in views:
        if ops[v.id]:
            out.append(act.Accept((v.id,), tuple(ops[v.id]), REFUSE_BUSY_S))
        else:
            declines.append(v.id)
    if declines:
        out.append(act.Decline(tuple(declines), REFUSE_BUSY_S if busy else REFUSE_IDLE_S))
    new_state = attrs.evolve(state, tasks={**state.tasks, **changed}, releasing=releasing,
                             last_placement=waiting)
    return _offer_control(new_state, now, out)


# ----------------------------------------------------------------------------------- statuses

def _labels(status: Mapping[str, Any]) -> dict[str, str]:
    labels = (status.get("labels") or {}).get("labels") or []
    return {str(l.get("key")): str(l.get("value", "")) for l in labels if isinstance(l, Mapping)}


def _replace(rec: TaskRecord, releasing: dict[str, str], why: str) -> TaskRecord:
    if rec.reservation is not None:
        releasing[rec.reservation.persistence_id] = rec.reservation.agent_id
    return attrs.evolve(rec, reservation=None, backoff_until=0.0, kill_reason=None,
                        task_id=None if rec.active else rec.task_id, message=why, ready=False)


def on_status(state: State, event: ev.Status) -> Result:
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
    if rec is None:
        # a task of an earlier life of this pod, or not ours at all: it must not run
        out: list[act.Action] = []
        if name not in TERMINAL:
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
            return state, (act.Kill(task_id, agent_id or rec.agent_id), *acks)
    message = st.get("message") or ""
    releasing = dict(state.releasing)
    spec = state.spec
    if name in TERMINAL:
        if rec.goal == "GONE":
            if rec.reservation is not None:
                releasing[rec.reservation.persistence_id] = rec.reservation.agent_id
            tasks = dict(state.tasks)
            del tasks[rec.pod]
            new_state = attrs.evolve(state, tasks=tasks, releasing=releasing)
            return _offer_control(new_state, now, [act.Persist(deletes=(("tasks", rec.pod),)), *acks])
        base = attrs.evolve(rec, state=name, message=message, ready=False, healthy=None,
                            agent_id=agent_id or rec.agent_id)
        if rec.kill_reason in ("restart", "update"):
            new = attrs.evolve(base, kill_reason=None, backoff_until=0.0)
        elif rec.kill_reason == "replace" or name in ("TASK_GONE", "TASK_GONE_BY_OPERATOR"):
            new = _replace(base, releasing, f"{name}: placing it on another agent")
        else:
            attempts = rec.attempts + 1
            new = attrs.evolve(base, kill_reason=None, attempts=attempts,
                               backoff_until=now + _backoff(spec, attempts),
                               failed_since=rec.failed_since if rec.failed_since is not None else now)
    else:
        labels = _labels(st)
        if st.get("source") == "SOURCE_EXECUTOR":
            ready = labels.get("kmf.ready") == "true" if name == "TASK_RUNNING" else False
        else:  # reconciliation answers and agent/master reports carry no readiness: keep it
            ready = rec.ready and name in ("TASK_RUNNING", "TASK_UNREACHABLE")
        healthy = st.get("healthy") if "healthy" in st else rec.healthy
        new = attrs.evolve(rec, state=name, message=message or rec.message, ready=ready,
                           healthy=healthy, agent_id=agent_id or rec.agent_id)
        if name == "TASK_UNREACHABLE":
            new = attrs.evolve(new, failed_since=rec.failed_since if rec.failed_since is not None else now)
        elif ready and healthy is not False:  # ready again (or back from unreachable)
            new = attrs.evolve(new, attempts=0, failed_since=None)
        if ready and not rec.ready:
            new = attrs.evolve(new, ready_at=now)
    if new == rec:
        return state, tuple(acks)
    new_state = attrs.evolve(_with(state, new), releasing=releasing)
    out = [_put(new), *acks]
    new_state, more = _roll(new_state, now)
    return _offer_control(new_state, now, out + more)


# -------------------------------------------------------------------------------- time, health

def _permanent_failures(state: State, now: float) -> tuple[State, list[act.Action]]:
    limit = state.spec.policies.permanent_failure_timeout_s
    if limit <= 0:
        return state, []
    releasing = dict(state.releasing)
    changed, out = [], []
    held: dict[str, str] = {}
    health: ev.KafkaHealth | None = state.kafka
    node_ids = {p.name: p.node_id for p in desired_pods(state.spec) if p.kind == "broker"}
    for rec in state.tasks.values():
        if rec.failed_since is None or now - rec.failed_since < limit or rec.goal != "RUNNING":
            continue
        if rec.active and rec.state != "TASK_UNREACHABLE":
            continue  # relaunched and starting (or running): not a permanent failure
        if rec.reservation is None and not rec.active:
            continue
        if rec.kind == "broker" and len(node_ids) > 1:
            node = node_ids.get(rec.pod)
            risky = None if health is None else health.under_min_isr_without.get(node, 0)
            if risky is None or risky > 0:
                why = ("waiting to move it: the brokers' partition state is not known yet" if risky is None
                       else f"waiting to move it: {risky} of its partitions have fewer than "
                            "min.insync.replicas in-sync replicas on other brokers")
                held[rec.pod] = why
                continue
        if rec.active and rec.task_id:
            out.append(act.Kill(rec.task_id, rec.agent_id))
        changed.append(_replace(rec, releasing,
                                f"failed or unreachable for {now - rec.failed_since:.0f}s: replacing it"))
    if held:
        state = attrs.evolve(state, last_placement={**state.last_placement, **held})
    if not changed:
        return state, []
    changed = [attrs.evolve(r, failed_since=None) for r in changed]
    return attrs.evolve(_with(state, *changed), releasing=releasing), [_put(*changed), *out]


def _roll(state: State, now: float) -> tuple[State, list[act.Action]]:
    """Restart one outdated pod per group when it is safe (rolling update)."""
    if interrupted(state, "update") or state.uninstalling:
        return state, []
    pods = desired_pods(state.spec)
    wanted = desired_fingerprints(state, pods)
    groups: dict[str, list[PodDef]] = {}
    for pod in pods:
        groups.setdefault(pod.group, []).append(pod)
    out: list[act.Action] = []
    changed: list[TaskRecord] = []
    health: ev.KafkaHealth | None = state.kafka
    for group, members in groups.items():
        recs = [state.tasks.get(p.name) for p in members]
        if any(r is None or not r.serving or r.kill_reason for r in recs):
            continue  # something in this group is starting, failing or already restarting
        outdated = [p for p, r in zip(members, recs) if wanted[p.name] is not None and r.fingerprint != wanted[p.name]]
        if not outdated:
            continue
        if group == "kafka":
            # the active controller goes last
            active = health.controller_id if health is not None else None
            outdated.sort(key=lambda p: (p.node_id == active, p.is_controller, p.index))
            if len(members) > 1:
                # the next broker restarts only once the previous one has caught up completely,
                # as seen by a health sample asked for after it became ready again: an older one
                # can show every replica in sync (taken before the old process's exit, or before
                # Kafka dropped the restarted broker from the ISR) and be decided on only now,
                # when the readiness update arrives
                settled = max([state.last_roll_kill, *(t for r in recs for t in (r.launched_at, r.ready_at) if t)])
                if health is None or health.under_replicated > 0 or health.now <= settled:
                    continue
                safe = [p for p in outdated if health.under_min_isr_if_down.get(p.node_id, 0) == 0]
                if not safe:
                    continue
                outdated = safe
            pod = outdated[0]
        else:
            pod = outdated[0]
        rec = state.tasks[pod.name]
        changed.append(attrs.evolve(rec, kill_reason="update", message="restarting with the new configuration"))
        why = f"rolling update of {pod.name}"
        if group == "kafka" and health is not None:
            why += (f": Kafka metadata asked {now - health.now:.1f}s ago (from broker {health.answered_by}) "
                    f"shows {health.under_replicated} under-replicated partitions")
        out.append(act.Kill(rec.task_id, rec.agent_id, why))
    if not changed:
        return state, []
    return attrs.evolve(_with(state, *changed), last_roll_kill=now), [_put(*changed), *out]


def _wants_offers(state: State, now: float) -> bool:
    if state.releasing:
        return True
    pods = desired_pods(state.spec)
    for pod in pods:
        rec = state.tasks.get(pod.name)
        if rec is None or (rec.goal == "RUNNING" and not rec.active and now >= rec.backoff_until
                           and not state.uninstalling):
            return True
    return False


def _offer_control(state: State, now: float, out: list[act.Action]) -> Result:
    wants = _wants_offers(state, now)
    if wants and state.suppressed:
        return attrs.evolve(state, suppressed=False), tuple(out + [act.Revive()])
    if not wants and not state.suppressed and state.connected:
        return attrs.evolve(state, suppressed=True), tuple(out + [act.Suppress()])
    return state, tuple(out)


def _reconcile_again(state: State, now: float) -> tuple[State, list[act.Action]]:
    """Explicit reconciliation repeats with backoff until every task was answered; implicit
    reconciliation runs every IMPLICIT_EVERY_S."""
    out: list[act.Action] = []
    if not state.connected:
        return state, out
    if state.reconcile_pending and now >= state.reconcile_next:
        pending = tuple((t, (state.by_task_id(t) or TaskRecord("", "")).agent_id) for t in sorted(state.reconcile_pending)
                        if state.by_task_id(t) is not None)
        interval = min(RECONCILE_MAX_S, state.reconcile_interval * 2)
        state = attrs.evolve(state, reconcile_pending=frozenset(t for t, _ in pending),
                             reconcile_next=now + interval, reconcile_interval=interval)
        if pending:
            out.append(act.Reconcile(pending))
    if now - state.last_implicit >= IMPLICIT_EVERY_S:
        state = attrs.evolve(state, last_implicit=now)
        out.append(act.Reconcile(()))
    return state, out


def on_tick(state: State, event: ev.Tick) -> Result:
    state, out = _reconcile_again(state, event.now)
    state, more = _permanent_failures(state, event.now)
    out += more
    state, more = _roll(state, event.now)
    out += more
    if state.uninstalling and not state.tasks and not state.releasing:
        return state, tuple(out + [act.Teardown()])
    return _offer_control(state, event.now, out)


# ------------------------------------------------------------------------------------ commands

def _reply(cmd: ev.Command, ok: bool, message: str, **extra: Any) -> act.Reply:
    return act.Reply(cmd.command_id, ok, {"message": message, **extra})


def _set_spec(state: State, spec: ServiceSpec, now: float) -> tuple[State, list[act.Action]]:
    """Adopt a new target spec: pods it no longer has are killed and removed."""
    cid = config.config_id(spec)
    names = {p.name for p in desired_pods(spec)}
    out: list[act.Action] = [act.SetTargetConfig(cid, spec)]
    tasks = dict(state.tasks)
    releasing = dict(state.releasing)
    deletes = []
    changed = []
    for rec in state.tasks.values():
        if rec.pod in names or rec.goal == "GONE":
            continue
        if rec.active and rec.task_id:
            gone = attrs.evolve(rec, goal="GONE", kill_reason="scale", message="removed from the config")
            tasks[rec.pod] = gone
            changed.append(gone)
            out.append(act.Kill(rec.task_id, rec.agent_id))
        else:
            if rec.reservation is not None:
                releasing[rec.reservation.persistence_id] = rec.reservation.agent_id
            del tasks[rec.pod]
            deletes.append(("tasks", rec.pod))
    if changed or deletes:
        out.insert(1, act.Persist(puts=tuple(("tasks", r.pod, r.to_json()) for r in changed),
                                  deletes=tuple(deletes)))
    return attrs.evolve(state, spec=spec, config_id=cid, tasks=tasks, releasing=releasing), out


def _bad_count(count: Any, least: int) -> str | None:
    """Why `count` is not an instance count from `least` to MAX_INSTANCES, or None."""
    if not isinstance(count, int) or isinstance(count, bool) or not least <= count <= MAX_INSTANCES:
        return f"count must be a whole number from {least} to {MAX_INSTANCES}, got {count!r}"
    return None


def on_command(state: State, cmd: ev.Command) -> Result:
    kind, args, now = cmd.kind, cmd.args, cmd.now
    pods = desired_pods(state.spec)
    names = {p.name for p in pods}
    if kind in ("restart_pod", "replace_pod"):
        name = args.get("pod")
        rec = state.tasks.get(name) if isinstance(name, str) else None
        if name not in names or rec is None:
            return state, (_reply(cmd, False, f"pod {name!r} does not exist", status=404),)
        if kind == "restart_pod":
            if not rec.active or not rec.task_id:
                return state, (_reply(cmd, False, f"pod {name} has no running task to restart", status=409),)
            new = attrs.evolve(rec, kill_reason="restart", message="restart requested")
            return _with(state, new), (_put(new), act.Kill(rec.task_id, rec.agent_id),
                                       _reply(cmd, True, f"restarting {name} in place"))
        releasing = dict(state.releasing)
        if rec.active and rec.task_id:
            new = attrs.evolve(rec, kill_reason="replace", message="replace requested")
            out: list[act.Action] = [_put(new), act.Kill(rec.task_id, rec.agent_id)]
        else:
            new = _replace(rec, releasing, "replace requested")
            out = [_put(new)]
        new_state = attrs.evolve(_with(state, new), releasing=releasing)
        return _offer_control(new_state, now, out + [_reply(cmd, True, f"replacing {name} on another agent")])
    if kind in ("plan_interrupt", "plan_continue"):
        plan = args.get("plan")
        if plan not in ("deploy", "recovery", "update"):
            return state, (_reply(cmd, False, f"plan {plan!r} does not exist", status=404),)
        key = f"plan.{plan}.interrupted"
        props = dict(state.properties)
        if kind == "plan_interrupt":
            props[key] = "true"
            out = [act.Persist(puts=(("properties", key, "true"),))]
        else:
            props.pop(key, None)
            out = [act.Persist(deletes=(("properties", key),))] if key in state.properties else []
        new_state = attrs.evolve(state, properties=props)
        verb = "interrupted" if kind == "plan_interrupt" else "continued"
        return _offer_control(new_state, now, out + [_reply(cmd, True, f"plan {plan} {verb}")])
    if kind == "plan_force_complete":
        plan, step = args.get("plan"), args.get("step")
        if plan not in ("deploy", "recovery", "update"):
            return state, (_reply(cmd, False, f"plan {plan!r} does not exist", status=404),)
        if step not in names:
            return state, (_reply(cmd, False, f"plan {plan} has no step {step!r}", status=404),)
        rec = state.tasks.get(step)
        if plan == "update" and rec is not None:
            want = desired_fingerprints(state, pods).get(step)
            new = attrs.evolve(rec, fingerprint=want)
            return _with(state, new), (_put(new), _reply(cmd, True, f"{step} marked up to date"))
        if plan == "recovery" and rec is not None:
            new = attrs.evolve(rec, attempts=0, failed_since=None, backoff_until=0.0)
            return _with(state, new), (_put(new), _reply(cmd, True, f"{step} recovery reset"))
        key = f"forced.{step}"
        props = {**state.properties, key: "true"}
        return (attrs.evolve(state, properties=props),
                (act.Persist(puts=(("properties", key, "true"),)), _reply(cmd, True, f"{step} forced complete")))
    if kind == "plan_restart":
        plan, step = args.get("plan"), args.get("step")
        if step is not None:
            return on_command(state, attrs.evolve(cmd, kind="restart_pod", args={"pod": step}))
        return state, (_reply(cmd, False, f"restarting a whole plan ({plan}) is not supported; "
                                          "restart its steps (pods) one by one", status=409),)
    if kind == "scale_brokers":
        count = args.get("count")
        bad = _bad_count(count, 1)
        if bad:
            return state, (_reply(cmd, False, bad, status=400),)
        spec = state.spec
        current = spec.kafka.brokers
        no = broker_count.refusal(spec.kafka.mode, current, count, state.kafka, args.get("confirm") is True)
        if no is not None:
            return state, (_reply(cmd, False, no.message, **no.fields()),)
        new_spec = attrs.evolve(spec, kafka=attrs.evolve(spec.kafka, brokers=count))
        issues = config.rules_validate(new_spec)
        if issues:
            return state, (_reply(cmd, False, "; ".join(f"{p}: {m}" for p, m in issues), status=400),)
        new_state, out = _set_spec(state, new_spec, now)
        return _offer_control(new_state, now, out + [_reply(cmd, True, f"brokers: {current} → {count}")])
    if kind == "scale_app":
        name, count = args.get("app"), args.get("count")
        app = state.spec.app(name) if isinstance(name, str) else None
        if app is None:
            return state, (_reply(cmd, False, f"app {name!r} does not exist", status=404),)
        bad = _bad_count(count, 0)
        if bad:
            return state, (_reply(cmd, False, bad, status=400),)
        apps = tuple(attrs.evolve(a, count=count) if a.name == name else a for a in state.spec.apps)
        new_state, out = _set_spec(state, attrs.evolve(state.spec, apps=apps), now)
        return _offer_control(new_state, now, out + [_reply(cmd, True, f"{name}: {app.count} → {count}")])
    if kind == "update_config":
        spec = args.get("spec")
        if not isinstance(spec, ServiceSpec):
            return state, (_reply(cmd, False, "no valid spec given", status=400),)
        launch_id = args.get("launch_id")  # set when the request is a changed launch file
        refused = config.check_update(state.spec, spec)  # the spec itself passed config's rules
        no = broker_count.refusal(spec.kafka.mode, state.spec.kafka.brokers, spec.kafka.brokers, state.kafka,
                                  args.get("confirm") is True)
        if no is not None:
            refused = [*refused, no.message]
        if refused:
            fields = {"status": 409, **(no.fields() if no is not None else {})}
            reply = _reply(cmd, False, "; ".join(refused), reasons=refused, **fields)
            if not isinstance(launch_id, str):
                return state, (reply,)
            props = {**state.properties, launch_config.LAUNCH_REFUSED: "; ".join(refused)}
            return attrs.evolve(state, properties=props), (
                act.Persist(puts=((("properties", launch_config.LAUNCH_REFUSED, "; ".join(refused)),))), reply)
        diff = config.describe_update(state.spec, spec)
        new_state, out = _set_spec(state, spec, now)
        if isinstance(launch_id, str):
            props = {k: v for k, v in new_state.properties.items() if k != launch_config.LAUNCH_REFUSED}
            new_state = attrs.evolve(new_state, properties={**props, launch_config.LAUNCH_ID: launch_id})
            out.append(act.Persist(puts=(("properties", launch_config.LAUNCH_ID, launch_id),),
                                   deletes=(("properties", launch_config.LAUNCH_REFUSED),)
                                   if launch_config.LAUNCH_REFUSED in state.properties else ()))
        new_state, more = _roll(new_state, now)
        return _offer_control(new_state, now, out + more + [_reply(
            cmd, True, "configuration updated" if diff else "nothing changed", diff=diff,
            live=config.live_broker_settings(state.spec, spec),
            restart=config.broker_restart_required(state.spec, spec))])
    if kind == "uninstall":
        changed, out = [], []
        for rec in state.tasks.values():
            gone = attrs.evolve(rec, goal="GONE", kill_reason="uninstall", message="uninstalling")
            changed.append(gone)
            if rec.active and rec.task_id:
                out.append(act.Kill(rec.task_id, rec.agent_id))
        tasks = {r.pod: r for r in changed}
        releasing = dict(state.releasing)
        deletes = []
        for r in changed:  # records with nothing running go at once
            if not r.active:
                if r.reservation is not None:
                    releasing[r.reservation.persistence_id] = r.reservation.agent_id
                del tasks[r.pod]
                deletes.append(("tasks", r.pod))
        persist = act.Persist(puts=(("properties", "uninstall", "true"),)
                              + tuple(("tasks", r.pod, r.to_json()) for r in changed if r.pod in tasks),
                              deletes=tuple(deletes))
        new_state = attrs.evolve(state, tasks=tasks, releasing=releasing, uninstalling=True,
                                 properties={**state.properties, "uninstall": "true"})
        return new_state, (persist, *out, _reply(cmd, True, "uninstalling: killing every task and releasing every reservation; then the "
                                                  "framework is torn down and the service stays uninstalled (a restarted "
                                                  "scheduler only reports it in /v1/health): remove its Marathon app"))
    return state, (_reply(cmd, False, f"unknown command {kind!r}", status=400),)


# ---------------------------------------------------------------------------------- dispatch

def on_subscribed(state: State, event: ev.Subscribed) -> Result:
    out: list[act.Action] = []
    props = dict(state.properties)
    unsaved = [k[len("unsaved."):] for k in props if k.startswith("unsaved.")]
    if unsaved:
        out.append(act.Persist(puts=tuple(("properties", k, props[k]) for k in unsaved)))
        for k in unsaved:
            del props[f"unsaved.{k}"]
    known = tuple((r.task_id, r.agent_id) for r in state.tasks.values() if r.task_id and r.state not in TERMINAL)
    if known:
        out.append(act.Reconcile(known))
    out.append(act.Reconcile(()))
    new_state = attrs.evolve(state, framework_id=event.framework_id, connected=True, properties=props,
                             suppressed=False, reconcile_pending=frozenset(t for t, _ in known),
                             reconcile_next=event.now + RECONCILE_FIRST_S, reconcile_interval=RECONCILE_FIRST_S,
                             last_implicit=event.now)
    out.append(act.Revive())
    return new_state, tuple(out)


def on_agent_lost(state: State, event: ev.AgentLost) -> Result:
    changed = []
    for rec in state.tasks.values():
        on_agent = rec.agent_id == event.agent_id or (rec.reservation and rec.reservation.agent_id == event.agent_id)
        if on_agent and rec.failed_since is None:
            changed.append(attrs.evolve(rec, failed_since=event.now, ready=False, message="agent lost"))
    releasing = {k: v for k, v in state.releasing.items() if v != event.agent_id}
    new_state = attrs.evolve(_with(state, *changed), releasing=releasing)
    return new_state, ((_put(*changed),) if changed else ())


def on_kafka_health(state: State, event: ev.KafkaHealth) -> Result:
    new_state, out = _roll(attrs.evolve(state, kafka=event), event.now)
    return new_state, tuple(out)


HANDLERS: dict[type, Callable[[State, Any], Result]] = {
    ev.Offers: on_offers,
    ev.Status: on_status,
    ev.Tick: on_tick,
    ev.Command: on_command,
    ev.Subscribed: on_subscribed,
    ev.AgentLost: on_agent_lost,
    ev.KafkaHealth: on_kafka_health,
    ev.Disconnected: lambda s, e: (attrs.evolve(s, connected=False), ()),
    ev.OfferRescinded: lambda s, e: (s, ()),
}


def decide(state: State, event: ev.Event) -> Result:
    return HANDLERS[type(event)](state, event)


# ------------------------------------------------------------------------------------- views

def plans(state: State, now: float) -> dict[str, dict[str, Any]]:
    """Every plan as the API shows it."""
    pods = desired_pods(state.spec)
    wanted = desired_fingerprints(state, pods)
    waiting = dict(state.last_placement)
    quorum_known = voters(state.tasks, pods) is not None or state.spec.kafka.mode != "kraft"
    waiting.update({k: v for k, v in work(state, pods, now, quorum_known).waiting.items() if k not in waiting})
    return {name: plan_view(state, name, pods, wanted, waiting, now) for name in ("deploy", "recovery", "update")}
