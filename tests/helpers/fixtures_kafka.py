"""Real single-node Kafka brokers from the assembled runtimes (tools/kafka/assemble.sh).

- `kafka_kraft`: Kafka 4.x, KRaft combined node (broker + controller), freshly formatted.
- `kafka_zk`: Kafka 3.9, ZooKeeper mode, on the session `zookeeper` under a fresh chroot.

Each binds a random 127.0.0.x address with free ports, gets -Xmx512m, and is stopped by pid
(process group: TERM, then KILL) at teardown, whether the test passed or not.
`start_kraft_broker` / `start_zk_broker` are the same steps for tests that need more control; the
steps themselves are kmf.standalone_kafka's, which the data-path benchmark uses too.
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Mapping, Sequence

import pytest

from executor.runtime.kafka_dist import KafkaDistError, KafkaRuntime, Mode
from kmf import standalone_kafka
from kmf.standalone_kafka import HEAP_MB as BROKER_JVM_HEAP_MB  # noqa: F401 - tests import it from here
from kmf.standalone_kafka import SINGLE_NODE_OVERRIDES as TEST_OVERRIDES  # noqa: F401 - likewise
from kmf.standalone_kafka import StandaloneBroker as RunningBroker
from kmf.standalone_kafka import kraft_node, launch  # noqa: F401 - likewise
from localmesos import procs


def kafka_runtime(mode: Mode) -> KafkaRuntime:
    """The pinned runtime for `mode`, or a test failure that says to run `make setup`."""
    try:
        return standalone_kafka.installed_runtime(mode)
    except KafkaDistError as exc:
        pytest.fail(str(exc))


def start_kraft_broker(work_dir: Path, overrides: Mapping[str, str] | None = None) -> RunningBroker:
    """Lay out, format and start a KRaft combined node under `work_dir`; the caller stops `pid`."""
    return standalone_kafka.start_kraft_broker(work_dir, overrides, runtime=kafka_runtime(Mode.KRAFT))


def start_zk_broker(work_dir: Path, zookeeper_connect: str,
                    overrides: Mapping[str, str] | None = None) -> RunningBroker:
    """Lay out and start a ZooKeeper-mode broker (3.9) under `work_dir`; the caller stops `pid`."""
    return standalone_kafka.start_zk_broker(work_dir, zookeeper_connect, overrides,
                                            runtime=kafka_runtime(Mode.ZOOKEEPER))


def start_kraft_cluster(work_dir: Path, n: int = 3, overrides: Mapping[str, str] | None = None) -> list[RunningBroker]:
    """`n` KRaft combined nodes (ids 0..n-1, one static quorum) under `work_dir`; the caller stops
    them with `stop_cluster`."""
    return standalone_kafka.start_kraft_cluster(work_dir, n, overrides, runtime=kafka_runtime(Mode.KRAFT))


def stop_cluster(brokers: Sequence[RunningBroker], grace: float = 10.0) -> None:
    """Stop every broker by pid, all at once: stopped one after the other, the last nodes of a
    quorum wait for controllers that are already gone, until the grace runs out."""
    threads = [threading.Thread(target=procs.stop_group, args=(broker.pid, grace)) for broker in brokers
               if broker.pid]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


@pytest.fixture
def kafka_kraft(tmp_path) -> RunningBroker:
    """A running Kafka 4.x KRaft combined node on 127.0.0.x; stopped by pid afterwards."""
    broker = start_kraft_broker(tmp_path / "kafka-kraft")
    try:
        yield broker
    finally:
        procs.stop_group(broker.pid, grace=10.0)


@pytest.fixture
def kafka_zk(tmp_path, zk_chroot) -> RunningBroker:
    """A running Kafka 3.9 broker in ZooKeeper mode, under a fresh chroot of the session ZooKeeper."""
    broker = start_zk_broker(tmp_path / "kafka-zk", zk_chroot)
    try:
        yield broker
    finally:
        procs.stop_group(broker.pid, grace=10.0)
