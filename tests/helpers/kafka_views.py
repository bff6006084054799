"""Kafka's own view for e2e assertions: partition ISR sampled on a thread, broker configs as each
broker reports them (describe_configs, one BROKER resource per call as confluent-kafka needs)."""
from __future__ import annotations

import threading
import time

from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType


class IsrSampler:
    """The smallest ISR of any partition of one topic, asked every 0.2 s on its own thread."""

    def __init__(self, bootstrap: str, topic: str, replicas: int = 3) -> None:
        self.bootstrap, self.topic, self.replicas = bootstrap, topic, replicas
        self.samples: list[tuple[float, int, int]] = []  # (asked at, smallest ISR, partitions)
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        admin = AdminClient({"bootstrap.servers": self.bootstrap, "log_level": 0})
        while not self.stopped.is_set():
            asked = time.time()
            try:
                md = admin.list_topics(self.topic, timeout=3)
                parts = md.topics[self.topic].partitions.values()
                if parts:
                    self.samples.append((asked, min(len(p.isrs) for p in parts), len(parts)))
            except Exception:  # noqa: BLE001 - a broker restarting: the next sample tells
                pass
            self.stopped.wait(0.2)

    def __enter__(self) -> "IsrSampler":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.thread.join(10)

    def full_now(self) -> bool:
        return bool(self.samples) and self.samples[-1][1] == self.replicas

    def in_sync_since(self, t: float) -> bool:
        """A sample asked after `t` exists, and the newest one has every replica in sync."""
        return any(at > t for at, _, _ in self.samples) and self.full_now()

    def smallest(self, since: float = 0.0) -> int:
        return min(m for t, m, _ in self.samples if t >= since)


def broker_configs(boot: str) -> dict[int, dict]:
    """Every broker's configs (broker id → name → ConfigEntry), one describe per broker id."""
    admin = AdminClient({"bootstrap.servers": boot, "log_level": 0})
    out = {}
    for b in sorted(admin.list_topics(timeout=10).brokers):
        resource = ConfigResource(ResourceType.BROKER, str(b))
        out[b] = admin.describe_configs([resource], request_timeout=20)[resource].result(timeout=30)
    return out


def broker_values(boot: str, key: str) -> dict[int, str | None]:
    """What every broker reports for one config key."""
    return {b: c[key].value if key in c else None for b, c in broker_configs(boot).items()}
