"""Brokers kmf removes for good leave Kafka's KRaft metadata too.

A KRaft broker stays registered after it stops: fenced, but still one of the brokers the
controller places new replicas on. Kafka's striped placer spreads a new partition over racks and
takes a fenced broker when its rack has no other, and kmf gives each agent's brokers the agent's
zone as their rack. So after a scale-in or a decommission, a topic created later got a replica on
the removed broker: under-replicated from birth, one broker failure from refusing acks=all writes
(found by the chaos suite: a topic created after `scale brokers 3 --drain` got replicas [1, 3, 2]
and ISR [1, 2]).

kmf therefore unregisters (Kafka's UnregisterBroker, `kafka-cluster unregister`) every broker node
id a new target spec no longer has, once its task is gone: an unregistered broker that still ran
would register again. The ids wait in the property ``kafka.unregister`` (so a scheduler restart
goes on with them) until Kafka has answered; a failed or unanswered ask is repeated after
ASK_AGAIN_S. ZooKeeper mode needs none of this: a stopped broker's registration is an ephemeral
znode that goes with its session.
"""
from __future__ import annotations

import attrs

from config import ServiceSpec
from scheduler.core import actions as act
from scheduler.core import events as ev
from scheduler.core.pods import desired_pods
from scheduler.core.records import Result
from scheduler.core.state import State

UNREGISTER = "kafka.unregister"
ASK_AGAIN_S = 60.0


def _brokers(spec: ServiceSpec) -> set[int]:
    """The node ids of the spec's pods that are Kafka brokers (not controllers only)."""
    return {p.node_id for p in desired_pods(spec) if p.group == "kafka" and "broker" in p.roles}


def removed(old: ServiceSpec, new: ServiceSpec) -> tuple[int, ...]:
    """The broker node ids `old` has and `new` has not (KRaft only)."""
    if old.kafka.mode != "kraft" or new.kafka.mode != "kraft":
        return ()
    return tuple(sorted(_brokers(old) - _brokers(new)))


def pending(state: State) -> tuple[int, ...]:
    text = state.properties.get(UNREGISTER, "")
    return tuple(sorted({int(x) for x in text.split(",") if x.strip()}))


def _with_pending(state: State, ids: tuple[int, ...]) -> Result:
    props = dict(state.properties)
    if ids:
        props[UNREGISTER] = ",".join(str(i) for i in ids)
        persist = act.Persist(puts=(("properties", UNREGISTER, props[UNREGISTER]),))
    else:
        props.pop(UNREGISTER, None)
        persist = act.Persist(deletes=(("properties", UNREGISTER),))
    return attrs.evolve(state, properties=props), (persist,)


def remember(state: State, old: ServiceSpec, new: ServiceSpec) -> Result:
    """Add the brokers `new` drops to the ones to unregister; a broker `new` has again (scaled back
    out before its unregistration) is no longer one."""
    ids = (set(pending(state)) | set(removed(old, new))) - _brokers(new)
    if tuple(sorted(ids)) == pending(state):
        return state, ()
    return _with_pending(state, tuple(sorted(ids)))


def due(state: State) -> tuple[int, ...]:
    """The pending ids whose broker task is gone (no record of its pod is active any more)."""
    active = {rec.pod for rec in state.tasks.values() if rec.active}
    return tuple(i for i in pending(state) if f"broker-{i}" not in active)


def step(state: State, now: float) -> tuple[State, list[act.Action]]:
    """Ask the shell to unregister the due ids (at most once per ASK_AGAIN_S while no answer came)."""
    ids = due(state)
    if not ids or state.uninstalling or (state.unregister_asked_at is not None
                                         and now - state.unregister_asked_at < ASK_AGAIN_S):
        return state, []
    return attrs.evolve(state, unregister_asked_at=now), [act.UnregisterBrokers(ids)]


def answered(state: State, event: ev.BrokersUnregistered) -> Result:
    """Kafka no longer has `event.ids` registered: forget them. A failure keeps them (and the time
    asked), so they are asked again ASK_AGAIN_S later."""
    if event.error:
        return attrs.evolve(state, unregister_error=event.error), ()
    state = attrs.evolve(state, unregister_asked_at=None, unregister_error=None)
    return _with_pending(state, tuple(i for i in pending(state) if i not in event.ids))
