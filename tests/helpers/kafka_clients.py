"""Kafka clients for e2e checks: produce numbered records with acks=all, consume them back."""
from __future__ import annotations

import threading
import time
import uuid


def _conf(client: str | dict) -> dict:
    """A bootstrap list, or a whole client config (TLS, SASL)."""
    return {"bootstrap.servers": client} if isinstance(client, str) else dict(client)


class NumberedProducer:
    """Numbered records (0, 1, ...) with acks=all and idempotence, about 100 a second, on a thread
    of its own from `start` to `stop` (which waits up to `flush_s` for the outstanding ones); `acked`
    holds every number Kafka acknowledged. `conf`: more producer settings."""

    def __init__(self, client: str | dict, topic: str, flush_s: float = 60.0, **conf: object) -> None:
        self.client, self.topic, self.flush_s, self.conf = client, topic, flush_s, conf
        self.acked: set[int] = set()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> "NumberedProducer":
        self.thread.start()
        return self

    def stop(self, wait_s: float) -> None:
        self.stopped.set()
        self.thread.join(wait_s)

    def _run(self) -> None:
        from confluent_kafka import Producer
        p = Producer({**_conf(self.client), "acks": "all", "enable.idempotence": True, "log_level": 0, **self.conf})
        i = 0
        while not self.stopped.is_set():
            p.produce(self.topic, str(i).encode(),
                      on_delivery=lambda err, m: err is None and self.acked.add(int(m.value())))
            p.poll(0)
            i += 1
            time.sleep(0.01)
        p.flush(self.flush_s)


def produce_consume(client: str | dict, topic: str, count: int = 200) -> set[int]:
    from confluent_kafka import Producer
    p = Producer({**_conf(client), "acks": "all", "enable.idempotence": True})
    for i in range(count):
        p.produce(topic, str(i).encode())
    assert p.flush(60) == 0
    return consume(client, topic, count)


def consume(client: str | dict, topic: str, count: int) -> set[int]:
    from confluent_kafka import Consumer
    c = Consumer({**_conf(client), "group.id": f"g-{uuid.uuid4().hex[:6]}", "auto.offset.reset": "earliest"})
    c.subscribe([topic])
    seen: set[int] = set()
    deadline = time.monotonic() + 60
    while len(seen) < count and time.monotonic() < deadline:
        m = c.poll(1)
        if m is not None and not m.error():
            seen.add(int(m.value()))
    c.close()
    return seen
