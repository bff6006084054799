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
from kmfwire.taskdata import Voter
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
from scheduler.core.artifacts import identity as artifact_identity
from scheduler.core.placement import field_value, first_violation
from scheduler.core.plans import PLANS, held, phase_of, plan_view, steer, work
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
                  plans: Mapping[str, Any] | None = None, cluster_id: str | None = None,
                  served: Any = None) -> State:
    """The state after loading ZooKeeper. `cluster_id` is a fresh KRaft cluster id to use if the
    store has none yet (it is persisted by the first decision, before any launch)."""
    records = {name: rec if isinstance(rec, TaskRecord) else TaskRecord.from_json(rec)
               for name, rec in tasks.items()}
    props = dict(properties)
    if spec.kafka.mode == "kraft" and "cluster_id" not in props and cluster_id:
        props["cluster_id"] = cluster_id
        props["unsaved.cluster_id"] = "true"
    return State(spec=spec, config_id=config_id, framework_id=framework_id, tasks=records,
                 properties=props, uninstalling=props.get("uninstall") == "true", served=served)


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
        out[pod.name] = fingerprint(pod, task_data(state.spec, pod, rec, state.properties, quorum, boot),
                                    artifact_identity(state.spec, pod, state.served))
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


def _moved(rec: TaskRecord, hostname: str) -> str:
    """Where a pod placed anew went, against where it was (a replace may pick the same agent)."""
    if not rec.hostname:
        return ""
    return f" (moved from {rec.hostname})" if rec.hostname != hostname else " (the agent it was on before)"


def _launch(state: State, pod: PodDef, rec: TaskRecord, offer: OfferView, task_res: Resources,
            exec_res: Resources, ports: tuple[int, ...], now: float,
            quorum: tuple[Voter, ...] | None, boot: str, moved: str = "") -> tuple[TaskRecord, dict]:
    data = task_data(state.spec, pod, rec, state.properties, quorum, boot)
    launches = rec.launches + 1
    task_id = f"{pod.name}__{new_id(state.spec.name, pod.name, launches, now, offer.id)}"
    info = task_info(state.spec, pod, task_id, offer.agent_id, data, task_res, exec_res, state.config_id, ports,
                     state.served)
    message = f"launched on {offer.hostname}" + (moved if rec.reservation else _moved(rec, offer.hostname))
    new = attrs.evolve(rec, task_id=task_id, agent_id=offer.agent_id, hostname=offer.hostname,
                       state=None, message=message, ready=False, healthy=None,
                       fingerprint=fingerprint(pod, data, artifact_identity(state.spec, pod, state.served)),
                       launches=launches, kill_reason=None,
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
    moved: dict[str, str] = {}  # pod → where its new reservation is against its old agent
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
            before = current(pod)
            moved[pod.name] = _moved(before, v.hostname)
            changed[pod.name] = attrs.evolve(before, reservation=reservation, agent_id=v.agent_id, hostname=v.hostname,
                                             message=f"resources reserved on {v.hostname}{moved[pod.name]}")
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
                              ports, now, quorum, boot, moved.get(pod.name, ""))
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
            new = _replace(base, releasing, f"{name}: placing it anew")
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
        # an unreachable task's health is not known (its executor cannot tell): not the last
        # "healthy" it sent; it is known again when the executor reports
        healthy = st.get("healthy") if "healthy" in st else (None if unreachable else rec.healthy)
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


# Kafka metadata older than this is not trusted to let a broker stop (the watcher asks every 5 s)
HEALTH_MAX_AGE_S = 30.0


def _names(names: tuple[str, ...], count: int) -> str:
    shown = ", ".join(names)
    return f"{shown}, …" if shown and count > len(names) else shown


def _not_serving(rec: TaskRecord | None) -> str | None:
    """Why a pod does not count as up for the gate (None: serving, nothing asked of it)."""
    if rec is None or not rec.active:
        return "not running"
    if rec.kill_reason:
        return f"stopping ({rec.kill_reason})"
    if not rec.serving:
        return "not ready" if rec.state == "TASK_RUNNING" else f"starting ({rec.state or 'launched'})"
    return None


class StopGate:
    """The one gate of every voluntary broker stop (rolling update, `pod restart`, `pod replace`),
    pure; what does not depend on the broker asked about is worked out once.

    A broker may stop only when no other broker or controller is starting, stopping or not ready;
    the KRaft voters left running stay a majority; Kafka metadata asked after the last broker stop,
    launch and readiness (and at most HEALTH_MAX_AGE_S ago) shows no under-replicated partition
    and none that would fall below min.insync.replicas without it. A lone broker is not gated:
    there is nothing to keep available, as the rolling update always had it."""

    def __init__(self, state: State, pods: list[PodDef], now: float) -> None:
        self.state, self.now = state, now
        self.members = [p for p in pods if p.group == "kafka"]
        self.down = {p.name: why for p in self.members if (why := _not_serving(state.tasks.get(p.name)))}
        kraft = state.spec.kafka.mode == "kraft"
        self.voters = [p.name for p in self.members if kraft and p.is_controller]
        self.health_blocker = self._health_blocker()

    def _health_blocker(self) -> str | None:
        state, now = self.state, self.now
        health: ev.KafkaHealth | None = state.kafka
        if health is None:
            return "Kafka's partition state is not known yet (no metadata from the brokers)"
        recs = [state.tasks.get(p.name) for p in self.members]
        settled = max([state.last_roll_kill, *(t for r in recs if r for t in (r.launched_at, r.ready_at) if t)])
        if health.now <= settled:
            # an older sample can show every replica in sync although a broker was just stopped
            # or has only now come back and not caught up yet
            return ("waiting for Kafka metadata asked after the last broker stop or start "
                    f"(the last sample was asked {now - health.now:.1f}s ago)")
        if now - health.now > HEALTH_MAX_AGE_S:
            return f"the last Kafka metadata was asked {now - health.now:.0f}s ago (more than {HEALTH_MAX_AGE_S:.0f}s)"
        if health.under_replicated:
            return (f"{health.under_replicated} partitions are under-replicated: "
                    f"{_names(health.under_replicated_names, health.under_replicated)}")
        return None

    def blocker(self, pod: PodDef, moving: bool = False) -> str | None:
        """Why `pod` must not stop now, or None when it may (`moving`: its data goes too)."""
        if pod.kind != "broker" or len(self.members) <= 1:
            return None
        rec = self.state.tasks.get(pod.name)
        if rec is not None and rec.active and rec.kill_reason:
            return f"{pod.name} is already stopping ({rec.kill_reason} requested)"
        if pod.name in self.voters:
            voters_down = [v for v in self.voters if v in self.down and v != pod.name]
            if len(voters_down) + 1 > (len(self.voters) - 1) // 2:
                left = len(self.voters) - len(voters_down) - 1
                return (f"stopping {pod.name} would leave {left} of {len(self.voters)} KRaft controllers "
                        "running, not a majority" + (f" ({', '.join(voters_down)} down)" if voters_down else ""))
        others = len(self.down) - (pod.name in self.down)
        if others:
            first = min(n for n in self.down if n != pod.name)
            more = f" (and {others - 1} more)" if others > 1 else ""
            return f"{first} is {self.down[first]}{more}: one broker at a time"
        if self.health_blocker:
            return self.health_blocker
        health: ev.KafkaHealth = self.state.kafka
        node = pod.node_id
        at_risk = health.under_min_isr_if_down.get(node, 0)
        if at_risk:
            return (f"{at_risk} partitions would fall below min.insync.replicas "
                    f"({self.state.spec.kafka.min_isr}) without broker {node}: "
                    f"{_names(health.at_risk_names.get(node, ()), at_risk)}")
        if moving and health.under_min_isr_without.get(node, 0):
            return (f"{health.under_min_isr_without[node]} partitions of broker {node} have fewer than "
                    f"min.insync.replicas in-sync replicas on other brokers: its data is needed")
        return None


def broker_stop_blocker(state: State, pod: PodDef, pods: list[PodDef], now: float,
                        moving: bool = False) -> str | None:
    """Why broker `pod` must not stop now, or None when it may (see `StopGate`)."""
    return StopGate(state, pods, now).blocker(pod, moving)


@attrs.frozen
class RollDecision:
    kill: tuple[PodDef, ...]  # one per group at most
    waits: Mapping[str, str]  # outdated pod (not held by the operator) → what it waits for
    waiting_groups: frozenset[str]  # groups whose next step waits


def roll_decision(state: State, now: float, pods: list[PodDef] | None = None,
                  wanted: Mapping[str, str | None] | None = None) -> RollDecision:
    """The rolling update, pure: which outdated pod of each group restarts now, and why the
    others wait. Brokers go through `broker_stop_blocker`; steps the operator holds are skipped."""
    if state.uninstalling:
        return RollDecision((), {}, frozenset())
    pods = desired_pods(state.spec) if pods is None else pods
    wanted = desired_fingerprints(state, pods) if wanted is None else wanted
    groups: dict[str, list[PodDef]] = {}
    for pod in pods:
        groups.setdefault(pod.group, []).append(pod)
    kill: list[PodDef] = []
    waits: dict[str, str] = {}
    waiting_groups: set[str] = set()
    health: ev.KafkaHealth | None = state.kafka
    gate: StopGate | None = None
    for group, members in groups.items():
        recs = [state.tasks.get(p.name) for p in members]
        outdated = [p for p, r in zip(members, recs)
                    if r is not None and r.active and not r.kill_reason
                    and wanted[p.name] is not None and r.fingerprint != wanted[p.name]
                    and held(state, "update", p) is None]
        if not outdated:
            continue
        if group == "kafka":
            # the active controller goes last
            active = health.controller_id if health is not None else None
            outdated.sort(key=lambda p: (p.node_id == active, p.is_controller, p.index))
        busy = {p.name: why for p, r in zip(members, recs) if (why := _not_serving(r))}
        chosen = None
        if busy and (group != "kafka" or len(members) == 1):
            first = min(busy)
            why = f"{first} is {busy[first]}: one at a time"
            waits.update({p.name: why for p in outdated})
        elif group == "kafka":
            gate = StopGate(state, pods, now) if gate is None else gate
            for p in outdated:
                if p.name in busy:  # the roll stops only pods that serve (a manual restart may)
                    waits[p.name] = f"{p.name} is {busy[p.name]}"
                    continue
                why = gate.blocker(p)
                if why is None:
                    chosen = p
                    break
                waits[p.name] = why
                if len(busy) > 1 or (busy and p.name not in busy) or gate.health_blocker:
                    # the same for every other candidate: say so without asking again
                    waits.update({o.name: why for o in outdated if o.name not in waits and o.name not in busy})
                    break
        else:
            chosen = outdated[0]
        if chosen is None:
            waiting_groups.add(group)
        else:
            kill.append(chosen)
            for p in outdated:  # the others of the group wait for this one
                if p is not chosen:
                    waits[p.name] = f"{chosen.name} restarts first: one at a time"
    return RollDecision(tuple(kill), waits, frozenset(waiting_groups))


def _roll(state: State, now: float) -> tuple[State, list[act.Action]]:
    """Restart one outdated pod per group when it is safe (rolling update); remember since when
    a group's next step waits (policies.update_step_timeout_s)."""
    decision = roll_decision(state, now)
    out: list[act.Action] = []
    changed: list[TaskRecord] = []
    health: ev.KafkaHealth | None = state.kafka
    for pod in decision.kill:
        rec = state.tasks[pod.name]
        changed.append(attrs.evolve(rec, kill_reason="update", message="restarting with the new configuration"))
        why = f"rolling update of {pod.name}"
        if pod.group == "kafka" and health is not None:
            why += (f": Kafka metadata asked {now - health.now:.1f}s ago (from broker {health.answered_by}) "
                    f"shows {health.under_replicated} under-replicated partitions")
        out.append(act.Kill(rec.task_id, rec.agent_id, why))
    props = dict(state.properties)
    puts, deletes = [], []
    for group in {p.group for p in desired_pods(state.spec)} | {k.split(".", 2)[2] for k in props
                                                                if k.startswith("update.waiting_since.")}:
        key = f"update.waiting_since.{group}"
        if group in decision.waiting_groups and key not in props:
            props[key] = repr(now)
            puts.append(("properties", key, props[key]))
        elif group not in decision.waiting_groups and key in props:
            del props[key]
            deletes.append(("properties", key))
    if puts or deletes:
        state = attrs.evolve(state, properties=props)
        out.insert(0, act.Persist(puts=tuple(puts), deletes=tuple(deletes)))
    if not changed:
        return state, out
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


def _unknown_phase_or_step(plan: str, phase: Any, step: Any, pods: list[PodDef]) -> str | None:
    """Why `phase`/`step` (either may be None) name nothing in `plan`, listing what exists."""
    phases: dict[str, list[str]] = {}
    for p in pods:
        phases.setdefault(phase_of(p), []).append(p.name)
    if phase is not None and phase not in phases:
        return f"plan {plan} has no phase {phase!r} (phases: {', '.join(phases)})"
    if step is not None:
        inside = phases[phase] if phase is not None else [n for names in phases.values() for n in names]
        if step not in inside:
            where = f"phase {phase} of plan {plan}" if phase is not None else f"plan {plan}"
            return f"{where} has no step {step!r} (steps: {', '.join(inside)})"
    return None


def _what_replace_loses(state: State, pod: PodDef, rec: TaskRecord) -> tuple[str, str] | None:
    """(host of its volume, its replicas in words) when replacing the pod destroys data."""
    if pod.kind != "broker" or rec.reservation is None:
        return None
    health: ev.KafkaHealth | None = state.kafka
    held_n = health.replicas_by_broker.get(pod.node_id, 0) if health is not None else None
    return rec.reservation.hostname, (f"its {held_n} partition replicas" if held_n is not None
                                      else "its partition replicas")


def _restart_or_replace(state: State, cmd: ev.Command, pods: list[PodDef]) -> Result:
    """`pod restart` (in place) and `pod replace` (new reservation, fresh volume): a broker stops
    only when `broker_stop_blocker` lets it, unless `force`; a broker's replace needs `confirm`."""
    args, now = cmd.args, cmd.now
    name = args.get("pod")
    pod = next((p for p in pods if p.name == name), None)
    rec = state.tasks.get(name) if isinstance(name, str) else None
    if pod is None or rec is None:
        return state, (_reply(cmd, False, f"pod {name!r} does not exist", status=404),)
    force = args.get("force") is True
    replace = cmd.kind == "replace_pod"
    if not replace and (not rec.active or not rec.task_id):
        return state, (_reply(cmd, False, f"pod {name} has no running task to restart", status=409),)
    lost = _what_replace_loses(state, pod, rec) if replace else None
    if lost and args.get("confirm") is not True:
        host, replicas = lost
        return state, (_reply(cmd, False, f"replacing {name} destroys its volume on {host} and the data on "
                                          f"it; Kafka then copies {replicas} again from the other brokers "
                                          f"to the new {name}. Send confirm: true to go ahead", status=409,
                              confirm_required=True, volume_host=host),)
    blocker = StopGate(state, pods, now).blocker(pod, moving=replace)
    verb = "replace" if replace else "restart"
    if blocker and not force:
        return state, (_reply(cmd, False, f"refused: {name} may not stop now: {blocker}; "
                                          f"force: true {verb}s it anyway", status=409,
                              reason=blocker, force_required=True),)
    forced = f" (forced although {blocker})" if blocker else ""
    kill_why = f"{verb} of {name} requested{forced}"
    if not replace:
        new = attrs.evolve(rec, kill_reason="restart", message=f"restart requested{forced}")
        out: list[act.Action] = [_put(new), act.Kill(rec.task_id, rec.agent_id, kill_why)]
        new_state = _with(state, new)
        done = f"restarting {name} in place{forced}"
    else:
        releasing = dict(state.releasing)
        if rec.active and rec.task_id:
            new = attrs.evolve(rec, kill_reason="replace", message=f"replace requested{forced}")
            out = [_put(new), act.Kill(rec.task_id, rec.agent_id, kill_why)]
        else:
            new = _replace(rec, releasing, f"replace requested{forced}")
            out = [_put(new)]
        new_state = attrs.evolve(_with(state, new), releasing=releasing)
        gone = (f"; its volume on {lost[0]} is destroyed and Kafka copies {lost[1]} to it again"
                if lost else "")
        where = "on a new reservation" if pod.kind == "broker" else "anew"
        done = f"replacing {name}: placing it {where}, possibly on the same agent{gone}{forced}"
    if pod.kind == "broker":
        new_state = attrs.evolve(new_state, last_roll_kill=now)  # health asked before this is stale
    return _offer_control(new_state, now, out + [_reply(cmd, True, done)])


def on_command(state: State, cmd: ev.Command) -> Result:
    kind, args, now = cmd.kind, cmd.args, cmd.now
    pods = desired_pods(state.spec)
    names = {p.name for p in pods}
    if kind in ("restart_pod", "replace_pod"):
        return _restart_or_replace(state, cmd, pods)
    if kind in ("plan_interrupt", "plan_continue"):
        plan, phase, step = args.get("plan"), args.get("phase"), args.get("step")
        if plan not in PLANS:
            return state, (_reply(cmd, False, f"plan {plan!r} does not exist (plans: {', '.join(PLANS)})",
                                  status=404),)
        bad = _unknown_phase_or_step(plan, phase, step, pods)
        if bad:
            return state, (_reply(cmd, False, bad, status=404),)
        pod_of = {p.name: p for p in pods}
        if step is not None and phase is None:
            phase = phase_of(pod_of[step])
        steps_of_phase: dict[str, list[str]] = {}
        for p in pods:
            steps_of_phase.setdefault(phase_of(p), []).append(p.name)
        interrupt = kind == "plan_interrupt"
        changes = steer(state.properties, plan, interrupt, phase, step, steps_of_phase)
        props = dict(state.properties)
        for key, value in changes.items():
            if value is None:
                props.pop(key, None)
            else:
                props[key] = value
        puts = tuple(("properties", k, v) for k, v in sorted(changes.items()) if v is not None)
        deletes = tuple(("properties", k) for k, v in sorted(changes.items()) if v is None)
        out: list[act.Action] = [act.Persist(puts=puts, deletes=deletes)] if puts or deletes else []
        new_state = attrs.evolve(state, properties=props)
        if plan == "update":  # a step let go may restart at once
            new_state, more = _roll(new_state, now)
            out += more
        verb = "interrupted" if interrupt else "continued"
        what = f"step {step} of plan {plan}" if step else f"phase {phase} of plan {plan}" if phase else f"plan {plan}"
        return _offer_control(new_state, now, out + [_reply(cmd, True, f"{what} {verb}")])
    if kind == "plan_force_complete":
        plan, step = args.get("plan"), args.get("step")
        if plan not in PLANS:
            return state, (_reply(cmd, False, f"plan {plan!r} does not exist (plans: {', '.join(PLANS)})",
                                  status=404),)
        if step not in names:
            return state, (_reply(cmd, False, _unknown_phase_or_step(plan, None, step, pods)
                                  or f"plan {plan} has no step {step!r}", status=404),)
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

def _placement_failure(reason: str) -> bool:
    """Whether a last_placement reason is an offer round's failure to place the pod (each agent's
    reason names it, or no offer came) rather than a plan's or a backoff's wait."""
    return reason == "no offers" or "agent " in reason


def plans(state: State, now: float) -> dict[str, dict[str, Any]]:
    """Every plan as the API shows it."""
    pods = desired_pods(state.spec)
    wanted = desired_fingerprints(state, pods)
    waiting = dict(state.last_placement)
    quorum_known = voters(state.tasks, pods) is not None or state.spec.kafka.mode != "kraft"
    todo = work(state, pods, now, quorum_known)
    waiting.update({k: v for k, v in todo.waiting.items() if k not in waiting})
    # a pod is unplaceable when it is to be placed now and the last offer round found no agent for it
    to_place = {p.name for p in todo.reserve} | {p.name for p in todo.launch if p.kind != "broker"}
    unplaceable = {k: v for k, v in state.last_placement.items() if k in to_place and _placement_failure(v)}
    roll_waits = roll_decision(state, now, pods, wanted).waits
    return {name: plan_view(state, name, pods, wanted, waiting, now, roll_waits, unplaceable)
            for name in PLANS}
