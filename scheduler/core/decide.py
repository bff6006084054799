"""`decide(state, event) -> (state, actions)`: the core's one entry, a dispatch on the event's type.

Each kind of event has its handler in the module of its concern:

=================  =====================================================
``Offers``         `matching` (offer rounds, per-pod placement outcomes)
``Status``         `statuses` (task status updates)
``Tick``           `ticks` (reconciliation, permanent failures, rolling)
``Command``        `commands` (typed operator commands, refusals)
``Subscribed``     `recovery` (write pending properties, reconcile, revive)
``AgentLost``      `recovery`
``KafkaHealth``    `rebalance_commands` (a waiting rolling step may go, replicas move on)
``ReassignFailed`` `rebalance_commands` (the rebalance stops in ERROR)
``PartitionSizes`` `rebalance_commands` (the bytes a rebalance copies)
``KafkaFeatures``  `kafka_features` (the finalised metadata.version)
``BrokersUnregistered``  `broker_registrations` (removed brokers gone from KRaft)
``InverseOffers``  `maintenance` (Mesos maintenance windows; also before each offer round)
``DeclaredDeleted`` `declared_deletes` (declared topics/users the reconciler deleted)
``LagSampled``     `spec_commands` (lag autoscaling of stream apps, policy in `app_autoscale`)
=================  =====================================================

Every handler is pure: data in, a new state and the actions for the shell out.
"""
from __future__ import annotations

from typing import Any, Callable

import attrs

from scheduler.core import events as ev
from scheduler.core import (broker_registrations, declared_deletes, kafka_features, maintenance, spec_commands,
                            zk_migration_plan)
from scheduler.core.commands import on_command
from scheduler.core.construction import initial_state
from scheduler.core.records import Result
from scheduler.core.recovery import on_agent_lost, on_subscribed
from scheduler.core.rebalance_commands import on_kafka_health, on_partition_sizes, on_reassign_failed
from scheduler.core.rolling import desired_fingerprints
from scheduler.core.state import State
from scheduler.core.statuses import on_status
from scheduler.core.ticks import on_tick
from scheduler.core.views import plans

HANDLERS: dict[type, Callable[[State, Any], Result]] = {
    ev.Offers: maintenance.on_offers,  # holds ended by the offers, then `matching.on_offers`
    ev.Status: on_status,
    ev.Tick: on_tick,
    ev.Command: on_command,
    ev.Subscribed: on_subscribed,
    ev.AgentLost: on_agent_lost,
    ev.KafkaHealth: on_kafka_health,
    ev.ReassignFailed: on_reassign_failed,
    ev.PartitionSizes: on_partition_sizes,
    ev.KafkaFeatures: kafka_features.answered,
    ev.BrokersUnregistered: broker_registrations.answered,
    ev.Disconnected: lambda s, e: (attrs.evolve(s, connected=False), ()),
    ev.OfferRescinded: lambda s, e: (s, ()),
    ev.InverseOffers: maintenance.on_inverse_offers,
    ev.InverseOfferRescinded: maintenance.on_inverse_offer_rescinded,
    ev.DeclaredDeleted: declared_deletes.on_declared_deleted,
    ev.LagSampled: spec_commands.on_lag_sampled,
    ev.MigrationObserved: zk_migration_plan.on_observed,
}


def decide(state: State, event: ev.Event) -> Result:
    """The new state and the actions for the shell, in the order it must perform them."""
    return HANDLERS[type(event)](state, event)


# tests, benchmarks and older callers import these from here
__all__ = ["HANDLERS", "Result", "decide", "desired_fingerprints", "initial_state", "plans"]
