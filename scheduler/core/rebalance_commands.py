"""Moving partition replicas as operators ask for it: `kmf rebalance`, `kmf scale brokers N --drain`,
and the rebalance a broker scale-out ends with; and what each new Kafka sample moves forward.

The planning is `replica_planner`'s, the record and the batches `rebalance`'s; this module decides
when one starts and what follows it (a drain's scale-in once its brokers are empty).
"""
from __future__ import annotations

from typing import Any

import attrs

from scheduler.core import actions as act
from scheduler.core import broker_count, broker_registrations, kafka_features
from scheduler.core import events as ev
from scheduler.core import rebalance as rb_mod
from scheduler.core import spec_commands
from scheduler.core.command_types import Rebalance as RebalanceCommand
from scheduler.core.command_types import DecommissionPod, ScaleBrokers, UpdateConfig
from scheduler.core.offer_control import offer_control
from scheduler.core.pods import desired_pods
from scheduler.core.rebalance import SCALE_OUT_KEY, Rebalance, current, new_rebalance, store
from scheduler.core.records import Result
from scheduler.core.refusals import Refusal, accept, refuse
from scheduler.core.replica_planner import PlanError, Proposal, propose, replica_counts
from scheduler.core.rolling import roll
from scheduler.core.state import State
from scheduler.core.stop_gate import not_serving


def _plan(state: State, remove: tuple[int, ...] = ()) -> Proposal | str:
    """The balanced assignment over every broker of the spec (minus `remove`), or why there is none."""
    health = state.kafka
    if health is None:
        return "Kafka's partition state is not known yet; try again shortly"
    pods = rb_mod.brokers_of(desired_pods(state.spec))
    missing = [p.name for p in pods if p.node_id not in health.brokers_in_metadata and p.node_id not in remove]
    if missing:
        return f"{', '.join(missing)} not in Kafka's metadata yet: wait until every broker has started"
    try:
        return propose(health.assignment, [p.node_id for p in pods], rb_mod.racks(state, pods), remove)
    except PlanError as exc:
        return str(exc)


def _running(state: State) -> str | None:
    rb = current(state)
    if rb is not None and rb.running:
        return (f"a {rb.reason} rebalance is running ({rb.done} of {len(rb.moves)} moves done); let it finish, "
                "or interrupt it with kmf plan interrupt rebalance")
    return None


def _describe(state: State, proposal: Proposal) -> dict[str, Any]:
    health = state.kafka
    assert health is not None
    return {"moves": [{"partition": f"{t}-{p}", "from": list(old), "to": list(new)}
                      for (t, p), (old, new) in sorted(proposal.moves.items())],
            "replicas_moved": proposal.replicas_moved,
            "before": replica_counts(health.assignment, proposal.brokers),
            "after": proposal.counts(health.assignment)}


def rebalance(state: State, command: RebalanceCommand, cmd: ev.Command) -> Result:
    """Balance replicas and leaders over every broker; with `dry_run`, only say how."""
    if state.uninstalling:
        return state, (refuse(cmd, Refusal.CONFLICT, "the service is being uninstalled"),)
    busy = _running(state)
    if busy:
        return state, (refuse(cmd, Refusal.CONFLICT, busy),)
    proposal = _plan(state)
    if isinstance(proposal, str):
        return state, (refuse(cmd, Refusal.CONFLICT, proposal),)
    shown = _describe(state, proposal)
    if command.dry_run or not proposal.moves:
        what = "already balanced: nothing to move" if not proposal.moves else (
            f"would move {len(proposal.moves)} partition(s), copying {proposal.replicas_moved} replica(s)")
        return state, (accept(cmd, what, dry_run=command.dry_run, **shown),)
    state, out = _start(state, new_rebalance(state, proposal, "rebalance", cmd.now), cmd.now)
    return state, (*out, accept(cmd, f"rebalancing: {len(proposal.moves)} partition(s) to move, "
                                     f"{proposal.replicas_moved} replica(s) to copy; kmf plan show rebalance",
                                **shown))


def _start(state: State, rb: Rebalance, now: float) -> tuple[State, list[act.Action]]:
    state, persist = store(state, rb, deletes=(SCALE_OUT_KEY, rb_mod.INTERRUPTED_KEY))
    state, more = rb_mod.progress(state, now)
    return state, [persist, *more]


def scale_brokers(state: State, command: ScaleBrokers, cmd: ev.Command) -> Result:
    """`scale brokers N`: with `drain` (a scale-in) the replicas move off first; a scale-out ends
    with a rebalance onto the new brokers when `kafka.rebalance.on_scale_out` says so."""
    count, spec = command.count, state.spec
    if command.drain and isinstance(count, int) and not isinstance(count, bool) and 1 <= count < spec.kafka.brokers:
        return _drain(state, command, cmd)
    new_state, out = spec_commands.scale_brokers(state, command, cmd)
    return _after_scale(state, new_state, out)


def update_config(state: State, command: UpdateConfig, cmd: ev.Command) -> Result:
    new_state, out = spec_commands.update_config(state, command, cmd)
    return _after_scale(state, new_state, out)


def _after_scale(old: State, new: State, out: tuple[act.Action, ...]) -> Result:
    """Remember that a scale-out is to end with a rebalance (the new brokers start empty)."""
    if new.spec.kafka.brokers <= old.spec.kafka.brokers or not new.spec.kafka.rebalance.on_scale_out:
        return new, out
    props = {**new.properties, SCALE_OUT_KEY: "true"}
    return attrs.evolve(new, properties=props), (act.Persist(puts=(("properties", SCALE_OUT_KEY, "true"),)), *out)


def _drain(state: State, command: ScaleBrokers, cmd: ev.Command) -> Result:
    spec, count, now = state.spec, command.count, cmd.now
    no = broker_count.refusal(spec.kafka.mode, spec.kafka.broker_ids, count, state.kafka, True, drain=True)
    if no is not None:
        return state, (refuse(cmd, no.refusal, no.message, **no.fields()),)
    busy = _running(state)
    if busy:
        return state, (refuse(cmd, Refusal.CONFLICT, busy),)
    remove = spec.kafka.broker_ids[count:]
    proposal = _plan(state, remove)
    if isinstance(proposal, str):
        return state, (refuse(cmd, Refusal.CONFLICT, proposal),)
    if not proposal.moves:  # nothing on them: the plain scale-in, which finds them empty
        return spec_commands.scale_brokers(state, attrs.evolve(command, confirm=True, drain=False), cmd)
    rb = new_rebalance(state, proposal, "drain", now, remove, count)
    state, out = _start(state, rb, now)
    doomed = ", ".join(f"broker-{b}" for b in remove)
    return state, (*out, accept(cmd, f"draining {doomed}: moving {len(proposal.moves)} partition(s) off them "
                                     f"first, then scaling to {count} brokers; kmf plan show rebalance",
                                **_describe(state, proposal)))


def decommission(state: State, command: DecommissionPod, cmd: ev.Command) -> Result:
    """Remove one broker for good, keeping every other broker's node id: its replicas move off
    first (like a drain), then it stops, its reservation goes and its id is retired."""
    spec, name = state.spec, command.pod
    pod = next((p for p in rb_mod.brokers_of(desired_pods(spec)) if p.name == name), None)
    if pod is None:
        brokers = ", ".join(p.name for p in rb_mod.brokers_of(desired_pods(spec)))
        return state, (refuse(cmd, Refusal.NOT_FOUND, f"{name!r} is not a broker of this service (brokers: {brokers})"),)
    k = spec.kafka
    if pod.is_controller:
        return state, (refuse(cmd, Refusal.CONFLICT, f"{name} is a KRaft controller (the voters are fixed when the "
                                                     "service is installed); decommission a broker that is not one"),)
    no = broker_count.refusal(k.mode, k.broker_ids, k.brokers - 1, state.kafka, True, drain=True)
    if no is not None:
        return state, (refuse(cmd, no.refusal, no.message, **no.fields()),)
    busy = _running(state)
    if busy:
        return state, (refuse(cmd, Refusal.CONFLICT, busy),)
    proposal = _plan(state, (pod.node_id,))
    if isinstance(proposal, str):
        return state, (refuse(cmd, Refusal.CONFLICT, proposal),)
    rb = new_rebalance(state, proposal, "decommission", cmd.now, (pod.node_id,), k.brokers - 1, (pod.node_id,))
    state, out = _start(state, rb, cmd.now)
    return state, (*out, accept(cmd, f"decommissioning {name}: moving {len(proposal.moves)} partition(s) off it "
                                     "first, then removing it; the other brokers keep their node ids; "
                                     "kmf plan show rebalance", **_describe(state, proposal)))


def _finish_drain(state: State, now: float) -> tuple[State, list[act.Action]]:
    """A drained rebalance is done: remove its brokers once Kafka shows them empty, or move what
    landed on them meanwhile (a topic created during the drain)."""
    rb = current(state)
    health = state.kafka
    if rb is None or rb.finished is None or rb.then_brokers is None or health is None or health.now <= rb.finished:
        return state, []
    held = rb_mod.replicas_held(health, rb.remove)
    if held:
        proposal = _plan(state, rb.remove)
        if isinstance(proposal, str):
            state, persist = store(state, attrs.evolve(rb, error=f"cannot finish the drain: {proposal}"))
            return state, [persist]
        more = new_rebalance(state, proposal, rb.reason, now).moves
        rb = attrs.evolve(rb, moves=rb.moves + more, finished=None)
        state, persist = store(state, rb)
        return state, [persist]
    count = rb.then_brokers
    assert count is not None  # a drain's, checked above
    state, persist = store(state, attrs.evolve(rb, then_brokers=None))
    spec = state.spec
    if spec.kafka.brokers > count:
        # a retired id stays retired only while a broker after it exists (else it simply drops off)
        retired = tuple(sorted(set(spec.kafka.retired) | set(rb.retire)))
        ids = [i for i in spec.kafka.broker_ids if i not in rb.remove][:count]
        retired = tuple(r for r in retired if ids and r < max(ids))
        new_spec = attrs.evolve(spec, kafka=attrs.evolve(spec.kafka, brokers=count, retired=retired))
        state, out = spec_commands.set_spec(state, new_spec, now)
        return state, [persist, *out]
    return state, [persist]


def _scale_out_rebalance(state: State, now: float) -> tuple[State, list[act.Action]]:
    """After a scale-out, once every broker serves and Kafka has seen it since: rebalance onto them."""
    if state.properties.get(SCALE_OUT_KEY) != "true" or _running(state) or state.kafka is None:
        return state, []
    pods = rb_mod.brokers_of(desired_pods(state.spec))
    recs = [state.tasks.get(p.name) for p in pods]
    if any(not_serving(r) for r in recs):
        return state, []
    if any(r is not None and r.ready_at is not None and state.kafka.now <= r.ready_at for r in recs):
        return state, []
    proposal = _plan(state)
    if isinstance(proposal, str):
        return state, []  # a broker is not in the metadata yet: the next sample tells
    if not proposal.moves:
        props = {k: v for k, v in state.properties.items() if k != SCALE_OUT_KEY}
        return attrs.evolve(state, properties=props), [act.Persist(deletes=(("properties", SCALE_OUT_KEY),))]
    return _start(state, new_rebalance(state, proposal, "scale-out", now), now)


def advance(state: State, now: float) -> tuple[State, list[act.Action]]:
    """Whatever of the data moves is due: the next batch, a drain's end, a scale-out's rebalance."""
    if state.uninstalling:
        return state, []
    state, out = rb_mod.progress(state, now)
    state, more = _finish_drain(state, now)
    out += more
    state, more = _scale_out_rebalance(state, now)
    out += more
    return state, out


def on_kafka_health(state: State, event: ev.KafkaHealth) -> Result:
    """A new sample of Kafka's metadata: a waiting rolling step may go, replicas move on."""
    state, out = roll(attrs.evolve(state, kafka=event), event.now)
    state, more = advance(state, event.now)
    state, features = kafka_features.step(state, event.now)
    state, unregister = broker_registrations.step(state, event.now)
    return offer_control(state, event.now, out + more + features + unregister)


def on_reassign_failed(state: State, event: ev.ReassignFailed) -> Result:
    return rb_mod.failed(state, event)


def on_partition_sizes(state: State, event: ev.PartitionSizes) -> Result:
    return rb_mod.sized(state, event)
