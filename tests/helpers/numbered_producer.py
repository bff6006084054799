"""A producer in a process of its own (so a network fault can cut just this client), for chaos.

``python -m tests.helpers.numbered_producer BOOTSTRAP TOPIC RUN ACKS_FILE [RATE]`` sends records
``RUN:N`` (N = 0, 1, ...) with acks=all and idempotence, about RATE a second, and appends each
acknowledged N to ACKS_FILE as a line. SIGTERM: stop sending, wait up to 120 s for the outstanding
acknowledgements, exit 0 (1 when some stayed unresolved).
"""
from __future__ import annotations

import signal
import sys
import time


def read_values(bootstrap: str, topic: str, timeout: float = 120.0) -> list[str]:
    """Every record value of `topic` (read_committed, from the beginning to the end offsets when the
    read starts), in the order read."""
    import uuid

    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"chaos-read-{uuid.uuid4().hex[:8]}",
                         "enable.auto.commit": False, "isolation.level": "read_committed", "log_level": 3})
    values: list[str] = []
    try:
        partitions = consumer.list_topics(topic, timeout=30).topics[topic].partitions
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30, cached=False)[1]
                for p in partitions}
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        deadline = time.monotonic() + timeout
        while any(consumer.position([TopicPartition(topic, p)])[0].offset < end for p, end in ends.items()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{topic}: not read to its end offsets {ends} in {timeout:g}s")
            for msg in consumer.consume(num_messages=1000, timeout=0.5):
                if msg.error() is None:
                    values.append(msg.value().decode())
    finally:
        consumer.close()
    return values


def main(argv: list[str]) -> int:
    from confluent_kafka import Producer

    bootstrap, topic, run, acks_path = argv[:4]
    rate = float(argv[4]) if len(argv) > 4 else 100.0
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True
    signal.signal(signal.SIGTERM, stop)
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                         "linger.ms": 5, "message.timeout.ms": 300000, "log_level": 3})
    with open(acks_path, "a", buffering=1) as acks:
        def delivered(err, msg) -> None:  # noqa: ANN001 - librdkafka's callback
            if err is None:
                acks.write(msg.value().decode().split(":", 1)[1] + "\n")
        n, t0 = 0, time.monotonic()
        while not stopping:
            if n < (time.monotonic() - t0) * rate:
                producer.produce(topic, f"{run}:{n}".encode(), on_delivery=delivered)
                n += 1
            producer.poll(0.002)
        left = producer.flush(120)
    return 0 if left == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
