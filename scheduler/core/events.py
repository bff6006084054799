"""What happens to the scheduler: every input of `decide` is one of these values."""
from __future__ import annotations

import enum
from typing import Any, Mapping

import attrs


@attrs.frozen
class Subscribed:
    framework_id: str
    now: float


@attrs.frozen
class Disconnected:
    now: float


@attrs.frozen
class Offers:
    offers: tuple[Mapping[str, Any], ...]
    now: float


@attrs.frozen
class OfferRescinded:
    offer_id: str
    now: float


@attrs.frozen
class Status:
    """A v1 TaskStatus as pymesos delivers it."""

    status: Mapping[str, Any]
    now: float


@attrs.frozen
class AgentLost:
    agent_id: str
    now: float


@attrs.frozen
class Tick:
    """Sent by the shell every second: backoffs expire, timeouts fire, offers are revived."""

    now: float


@attrs.frozen
class KafkaHealth:
    """What the brokers' metadata says (the shell asks Kafka's AdminClient).

    ``under_min_isr_if_down[b]``: partitions that would fall below min.insync.replicas if broker b
    stopped; ``replicas_by_broker[b]``: partition replicas broker b holds.
    """

    now: float
    brokers_in_metadata: frozenset[int]
    under_min_isr_if_down: Mapping[int, int]
    replicas_by_broker: Mapping[int, int] = attrs.field(factory=dict)
    controller_id: int | None = None
    # partitions hosted by broker b that have fewer than min.insync.replicas in-sync replicas
    # on brokers other than b (moving b's data elsewhere would then risk them)
    under_min_isr_without: Mapping[int, int] = attrs.field(factory=dict)
    under_replicated: int = 0  # partitions whose ISR is smaller than their replica set
    answered_by: int | None = None  # the broker whose metadata this is
    # a few of the under-replicated partitions by name ("topic-3"), for messages an operator reads
    under_replicated_names: tuple[str, ...] = ()
    # per broker b: a few of the partitions that would fall below min.insync.replicas without it
    at_risk_names: Mapping[int, tuple[str, ...]] = attrs.field(factory=dict)
    # per broker b: partitions b holds a replica of but is not in the ISR of (still catching up)
    out_of_sync: Mapping[int, int] = attrs.field(factory=dict)
    # (topic, partition) → its replicas, preferred leader first (during a reassignment: the old
    # and the new together), and → its in-sync replicas; what rebalancing plans and checks against
    assignment: Mapping[tuple[str, int], tuple[int, ...]] = attrs.field(factory=dict)
    isr: Mapping[tuple[str, int], frozenset[int]] = attrs.field(factory=dict)


NAMES_SHOWN = 5  # how many partitions a message names; the count says how many there are


class CommandKind(enum.StrEnum):
    """The commands an operator may send (`Command.kind` on the wire)."""

    RESTART_POD = "restart_pod"
    REPLACE_POD = "replace_pod"
    PLAN_INTERRUPT = "plan_interrupt"
    PLAN_CONTINUE = "plan_continue"
    PLAN_RESTART = "plan_restart"
    PLAN_FORCE_COMPLETE = "plan_force_complete"
    SCALE_BROKERS = "scale_brokers"
    SCALE_APP = "scale_app"
    UPDATE_CONFIG = "update_config"
    UNINSTALL = "uninstall"
    REBALANCE = "rebalance"
    DECOMMISSION_POD = "decommission_pod"
    ROTATE_CA = "rotate_ca"


@attrs.frozen
class Command:
    """An operator's request (HTTP API) as the shell builds it: a kind and its arguments, both
    unchecked (the core parses them into a typed command, `scheduler.core.commands`); answered
    by a `Reply` with the same id."""

    command_id: str
    kind: str  # a CommandKind value, or anything a client sent (refused as unknown)
    args: Mapping[str, Any]
    now: float


@attrs.frozen
class ReassignFailed:
    """Kafka's reassignment tool refused or failed a batch of moves the core handed it."""

    message: str
    now: float


@attrs.frozen
class KafkaFeatures:
    """The answer to `actions.FinalizeFeatures`: Kafka's finalised metadata.version level after the
    step ("4.3-IV0"), or None with the error that prevented knowing it."""

    finalized: str | None
    error: str
    now: float


@attrs.frozen
class BrokersUnregistered:
    """The answer to `actions.UnregisterBrokers`: Kafka no longer has `ids` registered (also when it
    never had them), or the error that prevented it."""

    ids: tuple[int, ...]
    error: str
    now: float


@attrs.frozen
class InverseOffers:
    """Mesos maintenance: v1 InverseOffers as pymesos delivers them (agent_id, unavailability)."""

    offers: tuple[Mapping[str, Any], ...]
    now: float


@attrs.frozen
class PartitionSizes:
    """How large the partitions of a batch of moves are (bytes, the largest replica), as Kafka's
    log-dirs tool reported them when the batch was handed over."""

    sizes: Mapping[tuple[str, int], int]
    now: float


@attrs.frozen
class DeclaredDeleted:
    """The reconciler deleted these topics and users from Kafka (or found them gone)."""

    topics: tuple[str, ...]
    users: tuple[str, ...]
    now: float


@attrs.frozen
class InverseOfferRescinded:
    inverse_offer_id: str
    now: float


@attrs.frozen
class LagSampled:
    """A consumer-group lag sample of the leader's (scheduler.shell.lag_watch), per group with a
    committed offset (`app_autoscale.group_lags`)."""

    groups: Mapping[str, Any]  # group → app_autoscale.GroupLag
    now: float
    sampled_at: float | None = None  # when the probe asked Kafka (None: `now`)


@attrs.frozen
class MigrationObserved:
    """What the leader's shell read of a ZooKeeper → KRaft migration in ZooKeeper (every few
    seconds while one is under way): the ZooKeeper-mode cluster's id (None: not readable), and
    whether Kafka's ``/migration`` znode holds a KRaft offset (the metadata copy is done)."""

    now: float
    cluster_id: str | None
    copied: bool


Event = (Subscribed | Disconnected | Offers | OfferRescinded | Status | AgentLost | Tick | KafkaHealth | Command
         | ReassignFailed | PartitionSizes | KafkaFeatures | BrokersUnregistered | InverseOffers | InverseOfferRescinded
         | DeclaredDeleted | LagSampled | MigrationObserved)
