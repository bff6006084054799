"""Helpers for the word-count tests: app processes, input topics, line generation, and a reader
of the output topic that keeps every update of every word."""
from __future__ import annotations

import collections
import os
import random
import struct
import sys
import threading
import time
import uuid
from pathlib import Path

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from localmesos import procs
from streams.counting import decode_count
from tests.helpers.wait import wait_for

REPO = Path(__file__).resolve().parents[2]
VOCABULARY = ["kafka", "mesos", "broker", "stream", "count", "word", "zookeeper", "kraft",
              "offer", "agent", "task", "executor"]
class App:
    """One wordcount instance started as its own process (own session, stopped by pid)."""

    def __init__(self, bootstrap: str, topics: "Topics", instance: int, log_dir: Path) -> None:
        self.log_path = log_dir / f"wordcount-{topics.group}-{instance}-{uuid.uuid4().hex[:4]}.log"
        env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "KMF_APP": "wordcount",
               "KMF_INSTANCE": str(instance), "PYTHONPATH": str(REPO)}
        self.proc = procs.spawn(
            [sys.executable, "-m", "streams.wordcount", "--input", topics.input, "--output",
             topics.output, "--group", topics.group, "--progress-interval", "2"],
            log_path=self.log_path, cwd=REPO, env=env)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 60.0) -> None:
        def ready() -> bool:
            assert self.proc.poll() is None, f"wordcount exited {self.proc.returncode}:\n{self.log()[-3000:]}"
            return "kmf: ready" in self.log()

        wait_for(ready, timeout=timeout, what=f"'kmf: ready' in {self.log_path}")

    def stop(self) -> None:
        procs.stop_group(self.proc.pid, grace=15.0)


class Topics:
    def __init__(self, bootstrap: str, partitions: int, replication: int = 1) -> None:
        tag = uuid.uuid4().hex[:6]
        self.input, self.output, self.group = f"text-{tag}", f"counts-{tag}", f"wc-{tag}"
        admin = AdminClient({"bootstrap.servers": bootstrap})
        futures = admin.create_topics([NewTopic(self.input, num_partitions=partitions, replication_factor=replication)],
                                      operation_timeout=30)
        for future in futures.values():
            future.result(timeout=60)


def make_lines(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(VOCABULARY) for _ in range(rng.randint(1, 8))) for _ in range(count)]


def produce_lines(bootstrap: str, topic: str, lines: list[str], pause_every: int = 0,
                  stop: threading.Event | None = None) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                         "linger.ms": 5})
    errors: list = []
    for index, line in enumerate(lines):
        producer.produce(topic, value=line.encode(),
                         on_delivery=lambda err, _msg: errors.append(err) if err else None)
        producer.poll(0)
        if pause_every and index % pause_every == pause_every - 1:
            producer.flush(30)
            if stop is not None:
                stop.wait(0.2)
    assert producer.flush(60) == 0, f"lines to {topic} unsent after 60 s"
    assert not errors, f"delivery errors to {topic}: {errors[:3]}"


class CountReader:
    """Reads the output topic (read_committed) and keeps every update per word, in order."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.topic = topic
        self.history: dict[str, list[int]] = collections.defaultdict(list)
        # the app creates the output topic, maybe after this subscribes: librdkafka looks again for
        # a subscribed topic that does not exist only at each metadata refresh (5 min by default)
        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"check-{uuid.uuid4().hex[:6]}",
                                  "auto.offset.reset": "earliest", "isolation.level": "read_committed",
                                  "enable.auto.commit": False, "topic.metadata.refresh.interval.ms": 1000})
        self.consumer.subscribe([topic])

    def latest(self) -> dict[str, int]:
        for msg in self.consumer.consume(num_messages=1000, timeout=0.5):
            if msg.error() is not None and msg.error().code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
                continue  # not created yet
            assert msg.error() is None, msg.error()
            self.history[msg.key().decode()].append(decode_count(msg.value(), f"{self.topic}@{msg.offset()}"))
        return {word: values[-1] for word, values in self.history.items()}

    def wait_for_counts(self, expected: dict[str, int], apps: list[App], timeout: float = 90.0) -> None:
        def complete() -> bool:
            for app in apps:
                assert app.proc.poll() is None, f"wordcount exited:\n{app.log()[-3000:]}"
            latest = self.latest()
            too_high = {w: (c, expected.get(w, 0)) for w, c in latest.items() if c > expected.get(w, 0)}
            assert not too_high, f"counted more than produced (word: (counted, produced)): {too_high}"
            return latest == expected

        wait_for(complete, timeout=timeout, interval=0, what=f"counts {expected} in {self.topic}")

    def assert_strictly_increasing(self) -> None:
        """Each word's updates rise: a restart that lost state would go down, one that counted a
        batch twice would overshoot (checked against the expected totals)."""
        for word, values in self.history.items():
            assert all(a < b for a, b in zip(values, values[1:])), f"{word}: {values}"

    def close(self) -> None:
        self.consumer.close()


def group_members(bootstrap: str, group: str) -> dict[str, list[tuple[str, int]]]:
    """client id (the instance's transactional id) → its assigned partitions."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    description = admin.describe_consumer_groups([group])[group].result(timeout=10)
    return {member.client_id: sorted((tp.topic, tp.partition) for tp in member.assignment.topic_partitions)
            for member in description.members}


def group_assignments(bootstrap: str, group: str) -> list[list[tuple[str, int]]]:
    return list(group_members(bootstrap, group).values())


def changelog_high(bootstrap: str, topic: str, partition: int) -> int:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "watermarks"})
    try:
        return consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10, cached=False)[1]
    finally:
        consumer.close()


def _read_str(buf: bytes, at: int, compact: bool) -> tuple[str | None, int]:
    """A Kafka protocol string at `at` (int16 length, or unsigned varint length + 1 when compact)."""
    if compact:
        n, shift = 0, 0
        while True:
            b = buf[at]
            at += 1
            n |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        n -= 1
    else:
        n = struct.unpack_from(">h", buf, at)[0]
        at += 2
    if n < 0:
        return None, at
    return buf[at:at + n].decode(), at + n


def group_generations(bootstrap: str, group: str, timeout: float = 30.0) -> list[int]:
    """Every generation the group's coordinator recorded for `group`, in order: its
    GroupMetadataValue records in __consumer_offsets (key version 2), read to the end. A rebalance
    writes a record with the next generation; a static member rejoining in place writes one with
    the same generation (its new member id)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"gen-{uuid.uuid4().hex[:6]}",
                         "enable.auto.commit": False, "isolation.level": "read_uncommitted",
                         # the end of a partition may be a transaction marker, never delivered
                         "enable.partition.eof": True})
    try:
        meta = consumer.list_topics("__consumer_offsets", timeout=10).topics["__consumer_offsets"]
        parts = []
        for p in meta.partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition("__consumer_offsets", p), timeout=10)
            if high > low:
                parts.append((p, low, high))
        consumer.assign([TopicPartition("__consumer_offsets", p, low) for p, low, _ in parts])
        todo = {p: high for p, _, high in parts}
        found: list[tuple[int, int, int]] = []  # (partition, offset, generation)
        deadline = time.monotonic() + timeout
        while todo and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is not None and msg.error().code() == KafkaError._PARTITION_EOF:
                todo.pop(msg.partition(), None)
            if msg is None or msg.error() is not None:
                continue
            key, value = msg.key(), msg.value()
            if not key or struct.unpack_from(">h", key, 0)[0] != 2 or value is None:
                continue
            name, _ = _read_str(key, 2, compact=False)
            if name != group:
                continue
            version = struct.unpack_from(">h", value, 0)[0]
            _, at = _read_str(value, 2, compact=version >= 4)  # protocol_type
            found.append((msg.partition(), msg.offset(), struct.unpack_from(">i", value, at)[0]))
        assert not todo, f"__consumer_offsets not read to its end in {timeout}s: {todo}"
        return [g for _, _, g in sorted(found)]
    finally:
        consumer.close()


def wordcount_app(group: str, count: int = 2, **extra) -> dict:
    """kmf's Python word count as an app of the service config (text → counts, group `group`)."""
    return {"name": "wordcount", "count": count, "cpus": 0.25, "mem_mb": 256, "runtime": "python",
            "command": ["-m", "streams.wordcount", "--input", "text", "--output", "counts", "--group", group],
            **extra}


def start_wordcount_service(env, app: dict, text_partitions: int, policies: dict | None = None):
    """One broker and `app` under kmf on `env` (a kmf_env; `policies` on top of its own), the
    topics text (`text_partitions`) and counts created, the deploy done: (the scheduler, the
    bootstrap servers)."""
    config = env.config(brokers=1, apps=[app])
    config["policies"].update(policies or {})
    s = env.start_scheduler(config)
    wait_for(lambda: s.pod("broker-0").get("ready"), timeout=150, interval=1, what="broker ready")
    for topic, partitions in (("text", text_partitions), ("counts", 1)):
        code, doc = s.request("POST", "/v1/topics", {"name": topic, "partitions": partitions})
        assert code in (200, 409), doc
    s.wait_deployed(timeout=180)
    return s, s.get("/v1/endpoints/broker")["bootstrap_servers"]
