"""streams.wordcount against a real KRaft broker: partitions split between instances, exact counts,
kill -9 of an instance mid-stream (exactly once: no double counting), graceful SIGTERM and a
restart that restores its counts from the changelog."""
from __future__ import annotations

import collections
import os
import random
import signal
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from localmesos import procs
from streams.counting import decode_count
from tests.helpers.fixtures_kafka import start_kraft_broker
from tests.helpers.wait import wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(150)]

REPO = Path(__file__).resolve().parents[3]
VOCABULARY = ["kafka", "mesos", "broker", "stream", "count", "word", "zookeeper", "kraft",
              "offer", "agent", "task", "executor"]
# The coordinator aborts a dead producer's transaction once it times out; check every second
# instead of every 10 s so a takeover after kill -9 is quick.
BROKER_OVERRIDES = {"transaction.abort.timed.out.transaction.cleanup.interval.ms": "1000"}


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    running = start_kraft_broker(tmp_path_factory.mktemp("wordcount-kafka"), BROKER_OVERRIDES)
    try:
        yield running
    finally:
        procs.stop_group(running.pid, grace=10.0)


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
    def __init__(self, bootstrap: str, partitions: int) -> None:
        tag = uuid.uuid4().hex[:6]
        self.input, self.output, self.group = f"text-{tag}", f"counts-{tag}", f"wc-{tag}"
        admin = AdminClient({"bootstrap.servers": bootstrap})
        futures = admin.create_topics([NewTopic(self.input, num_partitions=partitions, replication_factor=1)],
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
        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"check-{uuid.uuid4().hex[:6]}",
                                  "auto.offset.reset": "earliest", "isolation.level": "read_committed",
                                  "enable.auto.commit": False})
        self.consumer.subscribe([topic])

    def latest(self) -> dict[str, int]:
        for msg in self.consumer.consume(num_messages=1000, timeout=0.5):
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
        from confluent_kafka import TopicPartition

        return consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10, cached=False)[1]
    finally:
        consumer.close()


def test_two_instances_split_partitions_and_count_exactly(broker, tmp_path):
    bootstrap = broker.bootstrap
    topics = Topics(bootstrap, partitions=4)
    apps = [App(bootstrap, topics, i, tmp_path) for i in range(2)]
    reader = CountReader(bootstrap, topics.output)
    try:
        for app in apps:
            app.wait_ready()

        def split() -> list:
            members = group_assignments(bootstrap, topics.group)
            return members if len(members) == 2 and all(members) else []

        members = wait_for(split, timeout=60, what=f"both instances holding partitions of {topics.group}")
        flat = [tp for member in members for tp in member]
        assert len(flat) == len(set(flat)) == 8  # 4 input + 4 repartition partitions, each once

        lines = make_lines(400, seed=1)
        expected = collections.Counter(w for line in lines for w in line.split())
        produce_lines(bootstrap, topics.input, lines)
        reader.wait_for_counts(dict(expected), apps)
        reader.assert_strictly_increasing()
    finally:
        reader.close()
        for app in apps:
            app.stop()
    for app in apps:
        assert "transaction aborted" not in app.log()


def test_kill_9_one_instance_mid_stream_counts_stay_exact(broker, tmp_path):
    bootstrap = broker.bootstrap
    topics = Topics(bootstrap, partitions=4)
    apps = [App(bootstrap, topics, i, tmp_path) for i in range(2)]
    reader = CountReader(bootstrap, topics.output)
    try:
        for app in apps:
            app.wait_ready()
        wait_for(lambda: len(group_assignments(bootstrap, topics.group)) == 2
                 and all(group_assignments(bootstrap, topics.group)),
                 timeout=60, what="both instances in the group")
        lines = make_lines(1200, seed=2)
        expected = collections.Counter(w for line in lines for w in line.split())
        first, rest = lines[:600], lines[600:]
        produce_lines(bootstrap, topics.input, first)
        # Mid-stream: the victim has committed counts of its own partitions and more is on the way.
        victim_id = f"{topics.group}.wordcount-0"
        victim_parts = [p for t, p in group_members(bootstrap, topics.group)[victim_id]
                        if t == f"{topics.group}-words-repartition"]
        assert victim_parts, "the victim holds no repartition partition"
        wait_for(lambda: all(changelog_high(bootstrap, f"{topics.group}-counts-changelog", p) > 0
                             for p in victim_parts),
                 timeout=60, what=f"the victim's counts of partitions {victim_parts} in the changelog")
        feeder = threading.Thread(target=produce_lines, args=(bootstrap, topics.input, rest, 50))
        feeder.start()
        os.killpg(apps[0].proc.pid, signal.SIGKILL)
        feeder.join(timeout=60)
        assert not feeder.is_alive()
        reader.wait_for_counts(dict(expected), apps[1:], timeout=100)
        reader.assert_strictly_increasing()
        assignment = group_assignments(bootstrap, topics.group)
        assert len(assignment) == 1 and len(assignment[0]) == 8, assignment
    finally:
        reader.close()
        for app in apps:
            app.stop()


def test_sigterm_is_graceful_and_a_restart_restores_counts(broker, tmp_path):
    bootstrap = broker.bootstrap
    topics = Topics(bootstrap, partitions=2)
    reader = CountReader(bootstrap, topics.output)
    app = App(bootstrap, topics, 0, tmp_path)
    try:
        app.wait_ready()
        lines = make_lines(200, seed=3)
        expected = collections.Counter(w for line in lines for w in line.split())
        produce_lines(bootstrap, topics.input, lines)
        reader.wait_for_counts(dict(expected), [app])

        app.proc.send_signal(signal.SIGTERM)
        assert app.proc.wait(timeout=30) == 0, app.log()[-3000:]
        assert "stopped after" in app.log()
        assert group_assignments(bootstrap, topics.group) == []  # it left the group

        more = make_lines(150, seed=4)
        expected.update(w for line in more for w in line.split())
        produce_lines(bootstrap, topics.input, more)
        again = App(bootstrap, topics, 0, tmp_path)  # same instance: same transactional id
        try:
            again.wait_ready()
            assert "restored" in again.log()
            reader.wait_for_counts(dict(expected), [again])
            reader.assert_strictly_increasing()
        finally:
            again.stop()
    finally:
        reader.close()
        app.stop()


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "streams.wordcount", *args], cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
                          capture_output=True, text=True, timeout=60)


def test_unreachable_kafka_is_a_clear_error():
    host = procs.loopback_ip()
    port = procs.free_port(host)
    done = run_cli("--input", "text", "--output", "counts", "--bootstrap-servers", f"{host}:{port}",
                   "--connect-timeout", "2", "--instance", "0")
    assert done.returncode == 3, done.stderr
    assert f"cannot reach Kafka at '{host}:{port}'" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("args, message", [
    (["--input", "text", "--output", "counts"], "--bootstrap-servers: not given"),
    (["--input", "text", "--output", "text", "--bootstrap-servers", "h:1"], "--output: must differ"),
    (["--input", "te xt", "--output", "counts", "--bootstrap-servers", "h:1"], "--input: 'te xt'"),
    (["--input", "t", "--output", "c", "--bootstrap-servers", "h:1", "--transaction-timeout-ms", "5"],
     "--transaction-timeout-ms: 5"),
])
def test_bad_arguments_are_named(args, message):
    env = {k: v for k, v in os.environ.items() if k != "KAFKA_BOOTSTRAP_SERVERS"}
    done = subprocess.run([sys.executable, "-m", "streams.wordcount", *args], cwd=REPO,
                          env={**env, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert message in done.stderr
