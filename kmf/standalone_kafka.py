"""One Kafka node started by hand, outside Mesos, for tools: the data-path benchmark's "by hand"
broker and the test fixtures' brokers. The steps are those of kmf's executor (lay out
server.properties, format the storage once, start the JVM, wait until it serves metadata), on a
127.0.0.x address with free ports; the caller stops it by `pid` (its process group).

It lives at the top layer because it joins the executor's runtime with localmesos' process helpers.
"""
from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Mapping, Sequence

import attrs

from executor.runtime import broker as broker_io
from executor.runtime.broker_config import (
    BrokerNode,
    KRaftNode,
    Listener,
    Replication,
    Role,
    Voter,
    ZkBroker,
    bootstrap_address,
    node_id,
)
from executor.runtime.jvm import JvmOptions
from executor.runtime.kafka_dist import KafkaRuntime, Mode, read_versions, runtime_for_mode
from kmfwire.cluster_id import new_cluster_id
from localmesos import procs

HEAP_MB = 512
# A single node: no initial rebalance delay, so groups and Streams start at once (and
# ConsumerPerformance does not count it).
SINGLE_NODE_OVERRIDES = {"group.initial.rebalance.delay.ms": "0"}


@attrs.define
class StandaloneBroker:
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


def installed_runtime(mode: Mode) -> KafkaRuntime:
    """The pinned runtime for `mode`; KafkaDistError when it is not assembled (`make setup`)."""
    return runtime_for_mode(mode, read_versions()).check_installed()


def _spawn(argv: Sequence[str], log_path: Path) -> "subprocess.Popen[bytes]":
    return procs.spawn(argv, log_path=log_path)


def launch(broker: StandaloneBroker, timeout: float = 90.0) -> StandaloneBroker:
    """Start `broker`'s process and wait until it serves metadata; on failure stop it again."""
    jvm = JvmOptions(heap_mb=HEAP_MB, tmp_dir=broker.work_dir / "tmp")
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
    """A KRaft combined node (broker + its own one-voter quorum) on a 127.0.0.x address."""
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
        overrides={**SINGLE_NODE_OVERRIDES, **(overrides or {})},
    )


def start_kraft_broker(work_dir: Path, overrides: Mapping[str, str] | None = None, timeout: float = 90.0,
                       runtime: KafkaRuntime | None = None) -> StandaloneBroker:
    """Lay out, format and start a KRaft combined node under `work_dir` (Kafka 4.x unless
    `runtime` says otherwise); the caller stops `pid`."""
    runtime = runtime or installed_runtime(Mode.KRAFT)
    node = kraft_node(work_dir, runtime, overrides)
    config = broker_io.prepare_broker(node, work_dir / "server.properties")
    cluster_id = new_cluster_id()
    broker_io.ensure_storage_formatted(runtime, node, config, cluster_id)
    broker = StandaloneBroker(node, runtime, work_dir, config, work_dir / "broker.log", pid=0,
                              cluster_id=cluster_id)
    return launch(broker, timeout)


def start_zk_broker(work_dir: Path, zookeeper_connect: str, overrides: Mapping[str, str] | None = None,
                    timeout: float = 90.0, runtime: KafkaRuntime | None = None) -> StandaloneBroker:
    """Lay out and start a ZooKeeper-mode broker (Kafka 3.9) under `work_dir`; the caller stops `pid`."""
    runtime = runtime or installed_runtime(Mode.ZOOKEEPER)
    host = procs.loopback_ip()
    node = ZkBroker(
        broker_id=1,
        listener=Listener("PLAINTEXT", host, procs.free_port(host)),
        zookeeper_connect=zookeeper_connect,
        log_dirs=(work_dir / "data",),
        overrides={**SINGLE_NODE_OVERRIDES, **(overrides or {})},
    )
    config = broker_io.prepare_broker(node, work_dir / "server.properties")
    broker = StandaloneBroker(node, runtime, work_dir, config, work_dir / "broker.log", pid=0)
    return launch(broker, timeout)


def start_kraft_cluster(work_dir: Path, n: int = 3, overrides: Mapping[str, str] | None = None,
                        timeout: float = 90.0, runtime: KafkaRuntime | None = None) -> list[StandaloneBroker]:
    """`n` KRaft combined nodes (node ids 0..n-1, a static quorum of all of them) on one 127.0.0.x
    address with free ports, each under `work_dir/node-<id>`; formatted with one cluster id and
    started together (a quorum needs a majority up). Returns once every node serves metadata; on
    failure every node started is stopped again. The caller stops each `pid`."""
    if n < 1:
        raise ValueError(f"a cluster needs at least one node, not {n}")
    runtime = runtime or installed_runtime(Mode.KRAFT)
    host = procs.loopback_ip()
    ports: list[int] = []
    while len(ports) < 2 * n:
        port = procs.free_port(host)
        if port not in ports:
            ports.append(port)
    voters = tuple(Voter(i, host, ports[2 * i + 1]) for i in range(n))
    extra = {**SINGLE_NODE_OVERRIDES, **(overrides or {})}
    cluster_id = new_cluster_id()
    brokers: list[StandaloneBroker] = []
    for i in range(n):
        node_dir = work_dir / f"node-{i}"
        node = KRaftNode(
            node_id=i, role=Role.COMBINED, voters=voters, log_dirs=(node_dir / "data",),
            broker_listener=Listener("PLAINTEXT", host, ports[2 * i]),
            controller_listener=Listener("CONTROLLER", host, ports[2 * i + 1]),
            replication=Replication.for_cluster(n), kafka_major=runtime.major, overrides=extra,
        )
        config = broker_io.prepare_broker(node, node_dir / "server.properties")
        broker_io.ensure_storage_formatted(runtime, node, config, cluster_id)
        brokers.append(StandaloneBroker(node, runtime, node_dir, config, node_dir / "broker.log", pid=0,
                                        cluster_id=cluster_id))
    procs_by_id: dict[int, "subprocess.Popen[bytes]"] = {}
    try:
        for broker in brokers:
            jvm = JvmOptions(heap_mb=HEAP_MB, tmp_dir=broker.work_dir / "tmp")
            proc = broker_io.start_broker(runtime, broker.config_path, broker.log_path, jvm, spawn=_spawn)
            broker.pid = proc.pid
            procs_by_id[broker.broker_id] = proc
        for broker in brokers:
            broker_io.wait_until_serving(broker.bootstrap, broker.broker_id, timeout=timeout,
                                         proc=procs_by_id[broker.broker_id], log_path=broker.log_path)
    except BaseException:
        for broker in brokers:
            if broker.pid:
                procs.stop_group(broker.pid)
        raise
    return brokers
