"""Real single-node Kafka brokers from the assembled runtimes (tools/kafka/assemble.sh).

- `kafka_kraft`: Kafka 4.x, KRaft combined node (broker + controller), freshly formatted.
- `kafka_zk`: Kafka 3.9, ZooKeeper mode, on the session `zookeeper` under a fresh chroot.

Each binds a random 127.0.0.x address with free ports, gets -Xmx512m, and is stopped by pid
(process group: TERM, then KILL) at teardown, whether the test passed or not.
`start_kraft_broker` / `start_zk_broker` are the same steps for tests that need more control.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import attrs
import pytest

from executor.runtime import broker as broker_io
from executor.runtime.broker_config import (
    BrokerNode,
    KRaftNode,
    Listener,
    Role,
    Voter,
    ZkBroker,
    bootstrap_address,
    node_id,
)
from executor.runtime.jvm import JvmOptions
from executor.runtime.kafka_dist import KafkaDistError, KafkaRuntime, Mode, read_versions, runtime_for_mode
from kmfwire.cluster_id import new_cluster_id
from localmesos import procs

BROKER_JVM_HEAP_MB = 512
# A single node: no initial rebalance delay, so groups and Streams start at once.
TEST_OVERRIDES = {"group.initial.rebalance.delay.ms": "0"}


def kafka_runtime(mode: Mode) -> KafkaRuntime:
    """The pinned runtime for `mode`, or a test failure that says to run `make setup`."""
    try:
        return runtime_for_mode(mode, read_versions()).check_installed()
    except KafkaDistError as exc:
        pytest.fail(str(exc))


@attrs.define
class RunningBroker:
    node: BrokerNode
    runtime: KafkaRuntime
    work_dir: Path
    config_path: Path
    log_path: Path
    pid: int
    cluster_id: str | None = None

    @property
    def bootstrap(self) -> str:
        return bootstrap_address(self.node)

    @property
    def broker_id(self) -> int:
        return node_id(self.node)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _spawn(argv: Sequence[str], log_path: Path):
    return procs.spawn(argv, log_path=log_path)


def launch(broker: RunningBroker, timeout: float = 90.0) -> RunningBroker:
    """Start `broker`'s process and wait until it serves metadata; on failure stop it again."""
    jvm = JvmOptions(heap_mb=BROKER_JVM_HEAP_MB, tmp_dir=broker.work_dir / "tmp")
    proc = broker_io.start_broker(broker.runtime, broker.config_path, broker.log_path, jvm, spawn=_spawn)
    broker.pid = proc.pid
    try:
        broker_io.wait_until_serving(broker.bootstrap, broker.broker_id, timeout=timeout,
                                     proc=proc, log_path=broker.log_path)
    except BaseException:
        procs.stop_group(proc.pid)
        raise
    return broker


def kraft_node(work_dir: Path, runtime: KafkaRuntime, overrides: Mapping[str, str] | None = None) -> KRaftNode:
    host = procs.loopback_ip()
    broker_port, controller_port = procs.free_port(host), procs.free_port(host)
    while controller_port == broker_port:
        controller_port = procs.free_port(host)
    return KRaftNode(
        node_id=1,
        role=Role.COMBINED,
        voters=(Voter(1, host, controller_port),),
        log_dirs=(work_dir / "data",),
        broker_listener=Listener("PLAINTEXT", host, broker_port),
        controller_listener=Listener("CONTROLLER", host, controller_port),
        kafka_major=runtime.major,
        overrides={**TEST_OVERRIDES, **(overrides or {})},
    )


def start_kraft_broker(work_dir: Path, overrides: Mapping[str, str] | None = None) -> RunningBroker:
    """Lay out, format and start a KRaft combined node under `work_dir`; the caller stops `pid`."""
    runtime = kafka_runtime(Mode.KRAFT)
    node = kraft_node(work_dir, runtime, overrides)
    config = broker_io.prepare_broker(node, work_dir / "server.properties")
    cluster_id = new_cluster_id()
    broker_io.ensure_storage_formatted(runtime, node, config, cluster_id)
    broker = RunningBroker(node, runtime, work_dir, config, work_dir / "broker.log", pid=0,
                           cluster_id=cluster_id)
    return launch(broker)


def start_zk_broker(work_dir: Path, zookeeper_connect: str,
                    overrides: Mapping[str, str] | None = None) -> RunningBroker:
    """Lay out and start a ZooKeeper-mode broker (3.9) under `work_dir`; the caller stops `pid`."""
    runtime = kafka_runtime(Mode.ZOOKEEPER)
    host = procs.loopback_ip()
    node = ZkBroker(
        broker_id=1,
        listener=Listener("PLAINTEXT", host, procs.free_port(host)),
        zookeeper_connect=zookeeper_connect,
        log_dirs=(work_dir / "data",),
        overrides={**TEST_OVERRIDES, **(overrides or {})},
    )
    config = broker_io.prepare_broker(node, work_dir / "server.properties")
    broker = RunningBroker(node, runtime, work_dir, config, work_dir / "broker.log", pid=0)
    return launch(broker)


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
