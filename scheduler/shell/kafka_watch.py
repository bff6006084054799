"""Asks the brokers (AdminClient metadata) what the core needs for safe rolls and scale-in."""
from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

from scheduler.core.events import NAMES_SHOWN, KafkaHealth
from scheduler.core.pods import desired_pods
from scheduler.core.state import State
from scheduler.core.taskinfo import bootstrap_servers

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


class KafkaWatcher:
    def __init__(self, state: Callable[[], State], put: Callable[[Any], None], interval: float = 5.0) -> None:
        self.state = state
        self.put = put
        self.interval = interval
        self.stopped = threading.Event()
        self._admin: tuple[str, Any] | None = None
        self.thread = threading.Thread(target=self._run, name="kmf-kafka-watch", daemon=True)

    def start(self) -> "KafkaWatcher":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopped.set()

    def _run(self) -> None:
        while not self.stopped.wait(self.interval):
            try:
                self.poll()
            except Exception as exc:  # noqa: BLE001 - brokers down: try again next time
                log.debug("kafka metadata: %s", exc)

    def poll(self) -> KafkaHealth | None:
        s = self.state()
        boot = bootstrap_servers(s.tasks, desired_pods(s.spec))
        if not boot or not any(r.serving for r in s.tasks.values() if r.kind == "broker"):
            return None
        if self._admin is None or self._admin[0] != boot:
            from confluent_kafka.admin import AdminClient
            self._admin = (boot, AdminClient({"bootstrap.servers": boot, "log_level": 0}))
        # stamped when asked, not when answered: an answer can take seconds (a broker stopping) and
        # shows the cluster as it was then, which the rolling update must not take for news
        asked = time.time()
        md = self._admin[1].list_topics(timeout=5)
        health = health_from_metadata(md, s.spec.kafka.min_isr, asked)
        self.put(health)
        return health
