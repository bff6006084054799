"""Kafka clients for e2e checks: produce numbered records with acks=all, consume them back."""
from __future__ import annotations

import time
import uuid


def _conf(client: str | dict) -> dict:
    """A bootstrap list, or a whole client config (TLS, SASL)."""
    return {"bootstrap.servers": client} if isinstance(client, str) else dict(client)


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
