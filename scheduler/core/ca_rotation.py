"""kmf's own Kafka CA replaced before it expires, with a trust overlap (pure decisions).

A rotation starts when the CA is within ``kafka.tls.ca_renew_before_days`` of its expiry or on
the operator's ``kmf tls rotate-ca``; the shell then keeps a second, *next* CA next to the current
one (scheduler.shell.tls.CaKeeper). It is stored as the property ``tls.ca_rotation`` (JSON), so a
restarted scheduler continues in the phase it was in::

   (none) ──start──► trust-both ──every broker relaunched since the phase began (it trusts both
                        │          CAs, its certificate still from the current one) and the bundle
                        │          of both served for ca_trust_overlap_days──► new-certs
                        │                                                        │ every broker relaunched
                        ▼                                                        ▼ since (certificate of next)
     GET /v1/endpoints/broker serves both CAs          promote: next becomes the CA, the old one is dropped
                                                       (its key deleted, no longer served) ──► (none)

Which material a broker launch gets follows from the phase alone (`launch_material`), so a
broker relaunched for any other reason (a crash, a renewal, an update) gets the phase's material
and counts as done. Restarts go through the one broker-stop gate (stop_gate.StopGate): one broker
at a time, and only while no partition would fall below min.insync.replicas.

Dropping the old CA takes no third roll: once every broker presents a certificate of the new CA
nothing kmf runs needs the old one; its key is deleted and clients are no longer given it, and a
running broker's truststore keeps it only until that broker's next restart (at the latest its
next certificate renewal). A third roll would cost every partition another round of reduced
redundancy to remove trust in a CA whose key no longer exists anywhere kmf keeps it.
"""
from __future__ import annotations

import enum
import json
from typing import Any, Literal

import attrs

from scheduler.core import actions as act
from scheduler.core import events as ev
from scheduler.core.pods import PodDef, desired_pods
from scheduler.core.records import Result, put, with_records
from scheduler.core.refusals import Refusal, accept, refuse
from scheduler.core.state import KillReason, PodKind, State, TaskRecord
from scheduler.core.stop_gate import StopGate

DAY_S = 86400.0
KEY = "tls.ca_rotation"  # the rotation under way
LAST_KEY = "tls.ca_rotation.last"  # the last one finished (for the plan view)
NOT_AFTER_KEY = "tls.ca_not_after"  # the current CA's expiry (epoch seconds), written by the shell at start
PLAN = "ca-rotation"

Signer = Literal["current", "next"]


class Phase(enum.StrEnum):
    TRUST_BOTH = "trust-both"
    NEW_CERTS = "new-certs"
    DROP_OLD = "drop-old"  # only in views: promotion is one step, not a stored phase


@attrs.frozen
class Rotation:
    phase: Phase
    started: float  # when the next CA was made (and first served to clients)
    since: float  # when the phase began: a broker launched since has the phase's material
    next_not_after: float  # the next CA's expiry, as the core asked the shell to make it
    reason: str
    began: tuple[tuple[str, float], ...] = ()  # (phase, when) of every phase so far

    def to_json(self) -> str:
        return json.dumps({"phase": self.phase.value, "started": self.started, "since": self.since,
                           "next_not_after": self.next_not_after, "reason": self.reason,
                           "began": [list(b) for b in self.began]}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "Rotation | None":
        try:
            doc = json.loads(text)
            return cls(Phase(doc["phase"]), float(doc["started"]), float(doc["since"]),
                       float(doc["next_not_after"]), str(doc.get("reason", "")),
                       tuple((str(p), float(t)) for p, t in doc.get("began", ())))
        except (ValueError, KeyError, TypeError, AttributeError):
            return None


def current(state: State) -> Rotation | None:
    text = state.properties.get(KEY)
    return Rotation.from_json(text) if text is not None else None


def ca_not_after(state: State) -> float | None:
    try:
        return float(state.properties[NOT_AFTER_KEY])
    except (KeyError, ValueError):
        return None


def launch_material(state: State) -> tuple[Signer, tuple[Signer, ...]]:
    """(the CA that signs a broker launched now, the CAs its truststore holds)."""
    rot = current(state)
    if rot is None:
        return "current", ("current",)
    return ("current" if rot.phase == Phase.TRUST_BOTH else "next"), ("current", "next")


def _brokers(state: State) -> list[PodDef]:
    return [p for p in desired_pods(state.spec)
            if p.group == "kafka" and p.kind == PodKind.BROKER and "broker" in p.roles]


def done(rec: TaskRecord | None, since: float) -> bool:
    """Whether `rec`'s task was launched since `since` (and so holds that phase's material)."""
    return rec is not None and rec.active and rec.launched_at is not None and rec.launched_at >= since


def settled(rec: TaskRecord | None, since: float) -> bool:
    """`done`, and serving again: a phase ends only once every broker serves with its material
    (the next phase's restarts, and the old CA's end, must not meet a broker still starting)."""
    return done(rec, since) and rec is not None and rec.serving and not rec.kill_reason


def _persist(rot: Rotation) -> act.Persist:
    return act.Persist(puts=(("properties", KEY, rot.to_json()),))


def _with_props(state: State, puts: dict[str, str], deletes: tuple[str, ...] = ()) -> State:
    props = {k: v for k, v in state.properties.items() if k not in deletes}
    props.update(puts)
    return attrs.evolve(state, properties=props)


def start(state: State, now: float, reason: str) -> tuple[State, list[act.Action]]:
    """Make a next CA (the shell stores it before the phase is), and begin trusting both."""
    not_after = now + state.spec.kafka.tls.ca_days * DAY_S
    rot = Rotation(Phase.TRUST_BOTH, now, now, not_after, reason, ((Phase.TRUST_BOTH.value, now),))
    state = _with_props(state, {KEY: rot.to_json()})
    return state, [act.CaStep("create", not_after), _persist(rot)]


def due(state: State, now: float) -> str | None:
    """Why kmf's own CA is to be rotated now (None: it is not)."""
    tls = state.spec.kafka.tls
    not_after = ca_not_after(state)
    if tls.ca_cert_file or not_after is None:
        return None
    if now >= not_after - tls.ca_renew_margin_days * DAY_S:
        return f"the CA expires in {max(0.0, not_after - now) / DAY_S:.2f} days"
    return None


def progress(state: State, now: float) -> tuple[State, list[act.Action]]:
    """The rotation's next step: start one that is due, restart the next broker, or move on."""
    tls = state.spec.kafka.tls
    if not tls.enabled or state.uninstalling:
        return state, []
    rot = current(state)
    if rot is None:
        why = due(state, now)
        return start(state, now, why) if why is not None else (state, [])
    pods = _brokers(state)
    pending = [p for p in pods if not done(state.tasks.get(p.name), rot.since)]
    if pending:
        return _restart_one(state, pods, pending, rot, now)
    if not all(settled(state.tasks.get(p.name), rot.since) for p in pods):
        return state, []  # the last one restarted is not serving yet
    if rot.phase == Phase.TRUST_BOTH:
        if now < rot.started + tls.ca_trust_overlap_days * DAY_S:
            return state, []  # clients are still being given the bundle of both
        nxt = attrs.evolve(rot, phase=Phase.NEW_CERTS, since=now, began=(*rot.began, (Phase.NEW_CERTS.value, now)))
        return _with_props(state, {KEY: nxt.to_json()}), [_persist(nxt)]
    finished = attrs.evolve(rot, began=(*rot.began, ("done", now)))
    puts = {LAST_KEY: finished.to_json(), NOT_AFTER_KEY: repr(rot.next_not_after)}
    state = _with_props(state, puts, deletes=(KEY,))
    # promotion first: the property goes only once the next CA is the CA (a restart in between
    # finds nothing to promote and finishes)
    return state, [act.CaStep("promote", rot.next_not_after),
                   act.Persist(puts=tuple(("properties", k, v) for k, v in puts.items()),
                               deletes=(("properties", KEY),))]


def _restart_one(state: State, pods: list[PodDef], pending: list[PodDef], rot: Rotation,
                 now: float) -> tuple[State, list[act.Action]]:
    gate = StopGate(state, pods, now)
    oldest_first = sorted(pending, key=lambda p: (state.tasks[p.name].launched_at or 0.0)
                          if p.name in state.tasks else 0.0)
    for pod in oldest_first:
        rec = state.tasks.get(pod.name)
        if rec is None or not rec.serving or rec.kill_reason or not rec.task_id:
            continue  # not running: its next launch has the phase's material anyway
        if gate.blocker(pod) is not None:
            continue
        why = f"CA rotation, phase {rot.phase.value}"
        new = attrs.evolve(rec, kill_reason=KillReason.RESTART, message=why)
        state = attrs.evolve(with_records(state, new), last_roll_kill=now)
        return state, [put(new), act.Kill(rec.task_id, rec.agent_id, f"{pod.name}: {why}")]
    return state, []


def rotate_command(state: State, command: Any, cmd: ev.Command) -> Result:
    """`kmf tls rotate-ca`: start a rotation now."""
    tls = state.spec.kafka.tls
    if not tls.enabled:
        return state, (refuse(cmd, Refusal.INVALID, "kafka.tls is not enabled: there is no CA to rotate"),)
    if tls.ca_cert_file:
        return state, (refuse(cmd, Refusal.CONFLICT, "the CA is the operator's (kafka.tls.ca_cert_file): kmf "
                                                     "rotates only a CA it made itself"),)
    if state.uninstalling:
        return state, (refuse(cmd, Refusal.CONFLICT, "the service is being uninstalled"),)
    rot = current(state)
    if rot is not None:
        return state, (refuse(cmd, Refusal.CONFLICT, f"a CA rotation is under way (phase {rot.phase.value})"),)
    state, out = start(state, cmd.now, "requested by the operator")
    return state, (*out, accept(cmd, "rotating the CA: trust both, then new certificates, then drop the old; "
                                     f"kmf plan show {PLAN}"))


def view(state: State, now: float) -> dict[str, Any] | None:
    """The rotation under way (or the last one) as a plan, or None when none ever ran."""
    rot = current(state)
    last = None if rot is not None else Rotation.from_json(state.properties.get(LAST_KEY, "null") or "null")
    shown = rot or last
    if shown is None:
        return None
    pods = _brokers(state)
    order = [Phase.TRUST_BOTH, Phase.NEW_CERTS, Phase.DROP_OLD]
    at = order.index(rot.phase) if rot is not None else len(order)
    gate = StopGate(state, pods, now) if rot is not None else None
    phases = []
    for i, phase in enumerate(order):
        steps = []
        if phase != Phase.DROP_OLD:
            for pod in pods:
                rec = state.tasks.get(pod.name)
                status = ("COMPLETE" if i < at or (i == at and rot is not None and settled(rec, rot.since))
                          else "STARTED" if i == at and rec is not None and rot is not None
                          and (rec.kill_reason or done(rec, rot.since)) else "PENDING")
                # what it waits for now: its restart, or the gate (a message of an earlier stop is stale)
                why = ((rec.message if rec.kill_reason else "starting with the phase's material")
                       if status == "STARTED" and rec is not None else
                       (gate.blocker(pod) or "") if status == "PENDING" and i == at and gate is not None else "")
                steps.append({"name": pod.name, "status": status, "message": why})
        else:
            steps.append({"name": "old-ca", "status": "COMPLETE" if i < at else "PENDING",
                          "message": "the old CA is no longer given to clients or new launches"})
        began = dict(shown.began).get(phase.value)
        statuses = {s["status"] for s in steps}
        phases.append({"name": phase.value, "strategy": "serial", "began": began,
                       "status": "COMPLETE" if statuses == {"COMPLETE"} else
                       "PENDING" if i > at or (statuses == {"PENDING"} and i != at) else "IN_PROGRESS",
                       "steps": steps})
    waiting = ""
    if rot is not None and rot.phase == Phase.TRUST_BOTH and not any(
            not done(state.tasks.get(p.name), rot.since) for p in pods):
        left = rot.started + state.spec.kafka.tls.ca_trust_overlap_days * DAY_S - now
        waiting = f"trust overlap: certificates of the new CA in {max(0.0, left):.0f}s"
    return {"name": PLAN, "status": "IN_PROGRESS" if rot is not None else "COMPLETE",
            "strategy": "serial", "reason": shown.reason, "message": waiting,
            "phase": rot.phase.value if rot is not None else None,
            "next_ca_not_after": shown.next_not_after, "phases": phases,
            "errors": []}
