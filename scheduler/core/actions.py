"""What the scheduler decides to do; the shell performs these in order.

Write-ahead: a `Persist` always comes before the `Accept` that launches what it records, and an
`Acknowledge` after the `Persist` of the status it acknowledges. If a Persist fails, the shell
performs nothing after it.
"""
from __future__ import annotations

from typing import Any, Mapping

import attrs

from config import ServiceSpec


@attrs.frozen
class Persist:
    """One ZooKeeper transaction: puts of (kind, key, JSON value) and deletes of (kind, key)."""

    puts: tuple[tuple[str, str, Any], ...] = ()
    deletes: tuple[tuple[str, str], ...] = ()


@attrs.frozen
class Accept:
    offer_ids: tuple[str, ...]
    operations: tuple[Mapping[str, Any], ...]
    refuse_seconds: float = 5.0


@attrs.frozen
class Decline:
    offer_ids: tuple[str, ...]
    refuse_seconds: float


@attrs.frozen
class Kill:
    task_id: str
    agent_id: str | None
    reason: str = ""  # logged by the shell: an operator reading the log learns why


@attrs.frozen
class Reconcile:
    """Explicit for the listed (task id, agent id) pairs; implicit when empty."""

    tasks: tuple[tuple[str, str | None], ...]


@attrs.frozen
class Suppress:
    pass


@attrs.frozen
class Revive:
    pass


@attrs.frozen
class Acknowledge:
    status: Mapping[str, Any]


@attrs.frozen
class Reply:
    command_id: str
    ok: bool
    result: Any


@attrs.frozen
class SetTargetConfig:
    config_id: str
    spec: ServiceSpec
    why: str = ""  # said in the scheduler's log when not empty (the autoscaler's changes)


@attrs.frozen
class Teardown:
    """Uninstall finished: every task is gone and every reservation released."""


@attrs.frozen
class Reassign:
    """Hand Kafka's reassignment tool these moves ((topic, partition, target replicas)), copying
    at most `throttle` bytes/s per broker (0: unthrottled). It runs off the decision thread; a
    failure comes back as `events.ReassignFailed`, progress shows in Kafka's metadata."""

    moves: tuple[tuple[str, int, tuple[int, ...]], ...]
    throttle: int


@attrs.frozen
class EndReassign:
    """Every move is done: let the tool remove its throttles, and elect the preferred leaders."""

    moves: tuple[tuple[str, int, tuple[int, ...]], ...]


@attrs.frozen
class FinalizeFeatures:
    """Raise the cluster's metadata.version to `release`'s ("4.3") unless it is there already, then
    report the level Kafka has (`events.KafkaFeatures`); see scheduler.core.kafka_features."""

    release: str


@attrs.frozen
class UnregisterBrokers:
    """Unregister these broker node ids from the KRaft cluster (they were removed and their tasks
    are gone), then report (`events.BrokersUnregistered`); see scheduler.core.broker_registrations."""

    ids: tuple[int, ...]


@attrs.frozen
class AcceptInverseOffers:
    """Mesos maintenance: kmf no longer needs these agents (ACCEPT_INVERSE_OFFERS)."""

    inverse_offer_ids: tuple[str, ...]
    refuse_seconds: float = 5.0


@attrs.frozen
class DeclineInverseOffers:
    """Mesos maintenance: kmf still needs these agents; ask again after `refuse_seconds`."""

    inverse_offer_ids: tuple[str, ...]
    refuse_seconds: float


@attrs.frozen
class CaStep:
    """kmf's own CA rotation (scheduler.core.ca_rotation), performed by the shell's CA keeper:
    "create" stores a next CA valid until `not_after` (epoch seconds) unless one is stored;
    "promote" makes the stored next CA the CA and deletes the old one (nothing to do when there
    is no next CA: a restart between the promotion and the Persist after it)."""

    step: str
    not_after: float


Action = (Persist | Accept | Decline | Kill | Reconcile | Suppress | Revive | Acknowledge | Reply
          | SetTargetConfig | Teardown | Reassign | EndReassign | FinalizeFeatures | UnregisterBrokers | AcceptInverseOffers
          | DeclineInverseOffers | CaStep)
