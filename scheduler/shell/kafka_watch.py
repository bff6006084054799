"""Asks the brokers (AdminClient metadata) what the core needs for safe rolls and scale-in.

Every broker is asked on its own and the answers are merged pessimistically (`merge_views`): a
broker cut off from the controllers keeps serving its last metadata, in which it and every replica
are still in sync, and one such answer alone let a rolling update stop a second broker while the
first was out (chaos: cut_broker_during_roll saw a partition's ISR at 1). A partition is in sync
on a broker only where every answer says so, and a broker is in the cluster only where every
answer lists it.
"""
from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Mapping, Sequence

import attrs

from scheduler.core.events import NAMES_SHOWN, KafkaHealth
from scheduler.core.pods import desired_pods
from scheduler.core.state import State
from scheduler.core.taskinfo import bootstrap_servers
from scheduler.shell.periodic import Periodic

log = logging.getLogger(__name__)


def health_from_metadata(md: Any, min_isr: int, now: float) -> KafkaHealth:
    """Pure: per broker, partitions that would drop below `min_isr` without it, its replicas, the
    partitions it is not in sync for; and the under-replicated partitions (a few by name)."""
    at_risk: dict[int, int] = {}
    risk_names: dict[int, list[str]] = {}
    replicas: dict[int, int] = {}
    without: dict[int, int] = {}
    lagging: dict[int, int] = {}
    urp = 0
    urp_names: list[str] = []
    assignment: dict[tuple[str, int], tuple[int, ...]] = {}
    isrs: dict[tuple[str, int], frozenset[int]] = {}
    for tname in sorted(md.topics):
        topic = md.topics[tname]
        for pid in sorted(topic.partitions):
            p = topic.partitions[pid]
            name = f"{tname}-{pid}"
            isr = set(p.isrs)
            assignment[(tname, pid)] = tuple(p.replicas)
            isrs[(tname, pid)] = frozenset(isr)
            if len(isr) < len(p.replicas):
                urp += 1
                if len(urp_names) < NAMES_SHOWN:
                    urp_names.append(name)
            need = min(min_isr, len(p.replicas))
            for b in p.replicas:
                replicas[b] = replicas.get(b, 0) + 1
                if len(isr - {b}) < need:
                    without[b] = without.get(b, 0) + 1
                if b not in isr:
                    lagging[b] = lagging.get(b, 0) + 1
            for b in isr:
                if len(isr) - 1 < need:
                    at_risk[b] = at_risk.get(b, 0) + 1
                    shown = risk_names.setdefault(b, [])
                    if len(shown) < NAMES_SHOWN:
                        shown.append(name)
    return KafkaHealth(now, frozenset(md.brokers), at_risk, replicas,
                       md.controller_id if getattr(md, "controller_id", -1) >= 0 else None, without, urp,
                       getattr(md, "orig_broker_id", None), tuple(urp_names),
                       {b: tuple(n) for b, n in risk_names.items()}, lagging, assignment, isrs)


@attrs.frozen
class PartitionView:
    replicas: tuple[int, ...]
    isrs: tuple[int, ...]


@attrs.frozen
class TopicView:
    partitions: Mapping[int, PartitionView]


@attrs.frozen
class MetadataView:
    """What `health_from_metadata` reads of AdminClient's ClusterMetadata, as plain values."""

    topics: Mapping[str, TopicView]
    brokers: frozenset[int]
    controller_id: int = -1
    orig_broker_id: int = -1

    @classmethod
    def of(cls, md: Any) -> "MetadataView":
        return cls({name: TopicView({pid: PartitionView(tuple(p.replicas), tuple(p.isrs))
                                     for pid, p in t.partitions.items()})
                    for name, t in md.topics.items()},
                   frozenset(md.brokers), getattr(md, "controller_id", -1), getattr(md, "orig_broker_id", -1))


def merge_views(views: Sequence[MetadataView]) -> MetadataView:
    """Pure: one view no more hopeful than any of `views` (each from a different broker).

    Brokers: those every view lists. A partition's ISR: the replicas in sync in every view that
    has the partition. Replicas, the controller and the answering broker: from the lowest-id view
    whose broker every view lists (a broker the others have dropped may be cut off and stale),
    else from the first view."""
    if not views:
        raise ValueError("no metadata to merge")
    brokers = frozenset.intersection(*(v.brokers for v in views))
    trusted = min((v for v in views if v.orig_broker_id in brokers), key=lambda v: v.orig_broker_id,
                  default=views[0])
    topics: dict[str, TopicView] = {}
    for name in sorted(set().union(*(v.topics for v in views))):
        parts: dict[int, PartitionView] = {}
        for pid in sorted(set().union(*(v.topics[name].partitions for v in views if name in v.topics))):
            seen = [v.topics[name].partitions[pid] for v in views
                    if name in v.topics and pid in v.topics[name].partitions]
            base = trusted.topics[name].partitions[pid] if (
                name in trusted.topics and pid in trusted.topics[name].partitions) else seen[0]
            isr = set(base.isrs)
            for other in seen:
                isr &= set(other.isrs)
            parts[pid] = PartitionView(base.replicas, tuple(b for b in base.isrs if b in isr))
        topics[name] = TopicView(parts)
    return MetadataView(topics, brokers, trusted.controller_id, trusted.orig_broker_id)


class KafkaWatcher(Periodic):
    def __init__(self, state: Callable[[], State], put: Callable[[Any], None], interval: float = 5.0) -> None:
        super().__init__(interval, "kmf-kafka-watch")
        self.state = state
        self.put = put
        self._admin: tuple[str, dict[str, Any]] | None = None
        self._pool: ThreadPoolExecutor | None = None

    def poll(self) -> KafkaHealth | None:
        s = self.state()
        boot = bootstrap_servers(s.tasks, desired_pods(s.spec))
        if not boot or not any(r.serving for r in s.tasks.values() if r.kind == "broker"):
            return None
        addresses = tuple(a for a in boot.split(",") if a)
        if self._admin is None or self._admin[0] != boot:
            from confluent_kafka.admin import AdminClient
            # one client per broker: each asks its own broker first (see the module doc)
            self._admin = (boot, {a: AdminClient({"bootstrap.servers": a, "log_level": 0}) for a in addresses})
            if self._pool is not None:
                self._pool.shutdown(wait=False)
            self._pool = ThreadPoolExecutor(max_workers=len(addresses), thread_name_prefix="kmf-kafka-ask")
        clients, pool = self._admin[1], self._pool
        assert pool is not None
        # stamped when asked, not when answered: an answer can take seconds (a broker stopping) and
        # shows the cluster as it was then, which the rolling update must not take for news
        asked = time.time()
        answers = [a for a in pool.map(lambda addr: _ask(addr, clients[addr]), addresses) if a is not None]
        if not answers:
            return None
        alone = [view for view, own in answers if own]
        # no broker answered for itself (a name librdkafka learned differs from the address):
        # every answer still counts, merged the same way
        health = health_from_metadata(merge_views(alone or [view for view, _ in answers]), s.spec.kafka.min_isr,
                                      asked)
        self.put(health)
        return health


def _ask(address: str, admin: Any) -> tuple[MetadataView, bool] | None:
    """The metadata `admin` (bootstrapped from `address` alone) got, and whether the broker at
    `address` itself answered; None when none did (a broker stopping or unreachable)."""
    try:
        md = admin.list_topics(timeout=5)
    except Exception as exc:  # noqa: BLE001 - no answer says nothing
        log.debug("kafka metadata from %s: %s", address, exc)
        return None
    return MetadataView.of(md), (getattr(md, "orig_broker_name", "") or "").startswith(address + "/")
