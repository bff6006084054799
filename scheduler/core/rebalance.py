"""A partition rebalance in progress: the moves, how far Kafka got, and the next batch.

One rebalance at a time, stored as JSON in the property ``rebalance`` (a restarted scheduler
goes on where it was). Its moves run in batches of ``kafka.rebalance.max_moves`` partitions:
a batch goes to Kafka (`actions.Reassign`, Kafka's own reassignment tool with the replication
throttle) only while every broker serves and no partition is under-replicated, and the next
batch waits until Kafka's metadata, asked after the batch was handed over, shows each of its
partitions on exactly its new replicas and all of them in sync. Kafka itself removes old
replicas only once the new ones are in sync, so a move never takes a partition below
min.insync.replicas. At the end the throttles go and the preferred leaders are elected
(`actions.EndReassign`); a drain then removes its brokers (`then_brokers`).
"""
from __future__ import annotations

import json
from typing import Any, Mapping

import attrs

from scheduler.core import actions as act
from scheduler.core import events as ev
from scheduler.core.plans import interrupted
from scheduler.core.pods import PodDef, desired_pods
from scheduler.core.replica_planner import Proposal
from scheduler.core.state import PodKind, State
from scheduler.core.stop_gate import not_serving

KEY = "rebalance"  # the property the rebalance is stored under
INTERRUPTED_KEY = "plan.rebalance.interrupted"  # the operator's mark, as `plans.interrupted` reads it
SCALE_OUT_KEY = "rebalance.after_scale_out"  # set when a scale-out should end with a rebalance
RESUBMIT_S = 60.0  # a batch Kafka shows no sign of after this long is handed over again
TopicPartition = tuple[str, int]


@attrs.frozen
class Move:
    topic: str
    partition: int
    old: tuple[int, ...]
    new: tuple[int, ...]

    @property
    def tp(self) -> TopicPartition:
        return (self.topic, self.partition)

    @property
    def name(self) -> str:
        return f"{self.topic}-{self.partition}"

    def wire(self) -> tuple[str, int, tuple[int, ...]]:
        return (self.topic, self.partition, self.new)


@attrs.frozen
class Rebalance:
    reason: str  # "rebalance" (the operator), "scale-out", "drain"
    started: float
    brokers: tuple[int, ...]  # the brokers the replicas are balanced over
    moves: tuple[Move, ...]
    batch: int
    throttle: int  # bytes/s per broker, 0: none
    remove: tuple[int, ...] = ()  # brokers being emptied (a drain)
    then_brokers: int | None = None  # a drain: the broker count once they are empty
    retire: tuple[int, ...] = ()  # a decommission: node ids never to be used again
    submitted: int = 0  # moves[:submitted] were handed to Kafka
    submitted_at: float | None = None
    done: int = 0  # moves[:done] are complete
    finished: float | None = None
    error: str | None = None
    sizes: Mapping[str, int] = attrs.field(factory=dict)  # move name ("t-3") → bytes, when known

    def size_of(self, move: Move) -> int | None:
        return self.sizes.get(move.name)

    def to_json(self) -> str:
        doc = attrs.asdict(self, recurse=False)
        doc["moves"] = [[m.topic, m.partition, list(m.old), list(m.new)] for m in self.moves]
        return json.dumps(doc, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "Rebalance":
        doc = json.loads(text)
        doc["moves"] = tuple(Move(t, p, tuple(o), tuple(n)) for t, p, o, n in doc["moves"])
        for key in ("brokers", "remove", "retire"):
            doc[key] = tuple(doc.get(key) or ())
        doc["sizes"] = dict(doc.get("sizes") or {})
        return cls(**doc)

    @property
    def running(self) -> bool:
        return self.finished is None and self.error is None

    @property
    def in_flight(self) -> tuple[Move, ...]:
        return self.moves[self.done:self.submitted]


def current(state: State) -> Rebalance | None:
    text = state.properties.get(KEY)
    return Rebalance.from_json(text) if text else None


def store(state: State, rb: Rebalance, deletes: tuple[str, ...] = ()) -> tuple[State, act.Persist]:
    props = {k: v for k, v in state.properties.items() if k not in deletes}
    props[KEY] = rb.to_json()
    return (attrs.evolve(state, properties=props),
            act.Persist(puts=(("properties", KEY, props[KEY]),), deletes=tuple(("properties", k) for k in deletes
                                                                            if k in state.properties)))


def brokers_of(pods: list[PodDef]) -> list[PodDef]:
    return [p for p in pods if p.kind == PodKind.BROKER and "broker" in p.roles]


def racks(state: State, pods: list[PodDef]) -> dict[int, str | None]:
    """Each broker's rack, from its reservation's agent attributes (`kafka.rack_attribute`)."""
    attr = state.spec.kafka.rack_attribute
    out: dict[int, str | None] = {}
    for pod in brokers_of(pods):
        rec = state.tasks.get(pod.name)
        res = rec.reservation if rec is not None else None
        out[pod.node_id] = res.attributes.get(attr) if res is not None and attr else None
    return out


def new_rebalance(state: State, proposal: Proposal, reason: str, now: float, remove: tuple[int, ...] = (),
                  then_brokers: int | None = None, retire: tuple[int, ...] = ()) -> Rebalance:
    settings = state.spec.kafka.rebalance
    moves = tuple(Move(t, p, old, new) for (t, p), (old, new) in sorted(proposal.moves.items()))
    return Rebalance(reason, now, proposal.brokers, moves, settings.max_moves,
                     int(settings.throttle_mb_s * 1_000_000), remove, then_brokers, retire)


def moved(health: ev.KafkaHealth, move: Move) -> bool | None:
    """Whether Kafka shows `move` done (None: the partition is gone, e.g. its topic deleted)."""
    replicas = health.assignment.get(move.tp)
    if replicas is None:
        return None
    return replicas == move.new and set(move.new) <= health.isr.get(move.tp, frozenset())


def untouched(health: ev.KafkaHealth, move: Move) -> bool:
    """Kafka shows the partition exactly as before: no sign that its move was ever handed over."""
    replicas = health.assignment.get(move.tp)
    return replicas is not None and set(replicas) == set(move.old) and move.old != move.new


def submit_blocker(state: State, pods: list[PodDef], health: ev.KafkaHealth | None, rb: Rebalance) -> str | None:
    """Why the next batch must not go to Kafka now (None: it may)."""
    if health is None:
        return "Kafka's partition state is not known yet"
    if rb.submitted_at is not None and health.now <= rb.submitted_at:
        return "waiting for Kafka metadata asked after the last batch was handed over"
    down = {p.name: why for p in pods if p.group == "kafka" and (why := not_serving(state.tasks.get(p.name)))}
    if down:
        first = min(down)
        return f"{first} is {down[first]}: replicas move only while every broker serves"
    if health.under_replicated:
        return f"{health.under_replicated} partitions are under-replicated"
    return None


def why_waiting(state: State, rb: Rebalance, now: float) -> str | None:
    """What the rebalance waits for now, for the plan view (None: nothing, or it is not running)."""
    if not rb.running:
        return None
    if interrupted(state, "rebalance"):
        return "rebalance plan interrupted: no new batch starts (the batch handed to Kafka finishes)"
    if rb.in_flight:
        return f"{len(rb.in_flight)} partition(s) moving"
    return submit_blocker(state, desired_pods(state.spec), state.kafka, rb)


def view(state: State, now: float) -> dict[str, Any] | None:
    """The rebalance as a plan (phases = batches, steps = partitions), or None when none ran."""
    rb = current(state)
    if rb is None:
        return None
    health = state.kafka
    phases = []
    for start in range(0, len(rb.moves), rb.batch):
        steps = []
        for i, m in enumerate(rb.moves[start:start + rb.batch], start):
            if i < rb.done:
                status = "COMPLETE"
            elif i < rb.submitted:
                status = "COMPLETE" if health is not None and moved(health, m) else "STARTED"
            else:
                status = "ERROR" if rb.error else "PENDING"
            size = rb.size_of(m)
            shown = f" ({size / 1e6:.1f} MB)" if size is not None else ""
            steps.append({"name": m.name, "status": status, "message": f"{list(m.old)} → {list(m.new)}{shown}",
                          "bytes": size})
        statuses = {s["status"] for s in steps}
        phase_status = ("COMPLETE" if statuses == {"COMPLETE"} else "PENDING" if statuses == {"PENDING"}
                        else "ERROR" if statuses == {"ERROR"} else "IN_PROGRESS")
        phases.append({"name": f"batch-{start // rb.batch + 1}", "status": phase_status,
                       "strategy": "parallel", "steps": steps})
    held = interrupted(state, "rebalance")
    status = ("COMPLETE" if rb.finished is not None else "ERROR" if rb.error
              else "WAITING" if held else "IN_PROGRESS" if rb.submitted else "PENDING")
    then = f"; then scale to {rb.then_brokers} brokers" if rb.then_brokers is not None else ""
    return {"name": "rebalance", "status": status, "strategy": "serial", "phases": phases,
            "errors": [rb.error] if rb.error else [],
            "reason": rb.reason, "brokers": list(rb.brokers), "remove": list(rb.remove),
            "moves": len(rb.moves), "done": rb.done, "throttle_bytes_per_s": rb.throttle,
            "replicas_moved": sum(len(set(m.new) - set(m.old)) for m in rb.moves),
            # bytes copied to new replicas, counted by the sizes Kafka reported as each batch started
            "bytes_copied": sum((rb.size_of(m) or 0) * len(set(m.new) - set(m.old)) for m in rb.moves[:rb.done]),
            "bytes_to_copy": sum((rb.size_of(m) or 0) * len(set(m.new) - set(m.old)) for m in rb.moves),
            "message": (why_waiting(state, rb, now) or "") + then}


def progress(state: State, now: float) -> tuple[State, list[act.Action]]:
    """The next step of the running rebalance, if any is due (see the module docstring)."""
    rb = loaded = current(state)
    health = state.kafka
    if rb is None or not rb.running or health is None:
        return state, []
    if rb.in_flight:
        if rb.submitted_at is not None and health.now <= rb.submitted_at:
            return state, []
        if not all(moved(health, m) is not False for m in rb.in_flight):
            if rb.submitted_at is not None and now - rb.submitted_at > RESUBMIT_S \
                    and all(untouched(health, m) for m in rb.in_flight):
                # handed over by a scheduler that died before the tool ran: hand it over again
                rb = attrs.evolve(rb, submitted_at=now)
                state, persist = store(state, rb)
                return state, [persist, act.Reassign(tuple(m.wire() for m in rb.in_flight), rb.throttle)]
            return state, []
        rb = attrs.evolve(rb, done=rb.submitted)
    if rb.done < len(rb.moves):
        if interrupted(state, "rebalance") or submit_blocker(state, desired_pods(state.spec), health, rb):
            if rb is not loaded:  # the batch before just completed: remember it
                state, persist = store(state, rb)
                return state, [persist]
            return state, []
        batch = rb.moves[rb.done:rb.done + rb.batch]
        rb = attrs.evolve(rb, submitted=rb.done + len(batch), submitted_at=now)
        state, persist = store(state, rb)
        return state, [persist, act.Reassign(tuple(m.wire() for m in batch), rb.throttle)]
    rb = attrs.evolve(rb, finished=now)
    state, persist = store(state, rb)
    return state, [persist, act.EndReassign(tuple(m.wire() for m in rb.moves))]


def failed(state: State, event: ev.ReassignFailed) -> tuple[State, tuple[act.Action, ...]]:
    """Kafka's tool refused the batch: the rebalance stops in ERROR, with the tool's words."""
    rb = current(state)
    if rb is None or not rb.running:
        return state, ()
    rb = attrs.evolve(rb, error=f"Kafka's reassignment tool failed: {event.message}",
                      submitted=rb.done, submitted_at=None)
    state, persist = store(state, rb)
    return state, (persist,)


def sized(state: State, event: ev.PartitionSizes) -> tuple[State, tuple[act.Action, ...]]:
    """Remember the sizes of the moves of the running rebalance (for the bytes it shows)."""
    rb = current(state)
    if rb is None:
        return state, ()
    names = {m.tp: m.name for m in rb.moves}
    known = {names[tp]: n for tp, n in event.sizes.items() if tp in names and rb.sizes.get(names[tp]) != n}
    if not known:
        return state, ()
    state, persist = store(state, attrs.evolve(rb, sizes={**rb.sizes, **known}))
    return state, (persist,)


def replicas_held(health: ev.KafkaHealth, brokers: tuple[int, ...]) -> dict[int, int]:
    return {b: n for b in brokers if (n := health.replicas_by_broker.get(b, 0)) > 0}
