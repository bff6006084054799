"""The "by hand" side of the data-path benchmark: one Kafka KRaft combined node started directly
from the assembled runtime, with the same steps as kmf's executor (lay out, format, start, wait
until it serves metadata), no scheduler and no Mesos.

Benchmarks need this at run time, so it lives here rather than in the test helpers (benchmarks do
not import tests).
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import attrs

from executor.runtime import broker as broker_io
from executor.runtime.broker_config import (
    KRaftNode,
    Listener,
    Role,
    Voter,
    bootstrap_address,
    new_cluster_id,
    node_id,
)
from executor.runtime.jvm import JvmOptions
from executor.runtime.kafka_dist import Mode, read_versions, runtime_for_mode
from localmesos import procs

HEAP_MB = 512
# One node: no initial rebalance delay, which ConsumerPerformance would otherwise count.
OVERRIDES = {"group.initial.rebalance.delay.ms": "0"}


@attrs.define
class HandBroker:
    node: KRaftNode
    pid: int

    @property
    def bootstrap(self) -> str:
        return bootstrap_address(self.node)


def _spawn(argv: Sequence[str], log_path: Path):
    return procs.spawn(argv, log_path=log_path)


def start_kraft_broker(work_dir: Path, overrides: Mapping[str, str] | None = None,
                       timeout: float = 90.0) -> HandBroker:
    """Lay out, format and start a KRaft combined node under `work_dir` on a 127.0.0.x address
    with free ports; the caller stops it by `pid` (process group)."""
    runtime = runtime_for_mode(Mode.KRAFT, read_versions()).check_installed()
    host = procs.loopback_ip()
    broker_port, controller_port = procs.free_port(host), procs.free_port(host)
    while controller_port == broker_port:
        controller_port = procs.free_port(host)
    node = KRaftNode(
        node_id=1, role=Role.COMBINED, voters=(Voter(1, host, controller_port),),
        log_dirs=(work_dir / "data",), broker_listener=Listener("PLAINTEXT", host, broker_port),
        controller_listener=Listener("CONTROLLER", host, controller_port), kafka_major=runtime.major,
        overrides={**OVERRIDES, **(overrides or {})})
    config = broker_io.prepare_broker(node, work_dir / "server.properties")
    broker_io.ensure_storage_formatted(runtime, node, config, new_cluster_id())
    jvm = JvmOptions(heap_mb=HEAP_MB, tmp_dir=work_dir / "tmp")
    log_path = work_dir / "broker.log"
    proc = broker_io.start_broker(runtime, config, log_path, jvm, spawn=_spawn)
    try:
        broker_io.wait_until_serving(bootstrap_address(node), node_id(node), timeout=timeout,
                                     proc=proc, log_path=log_path)
    except BaseException:
        procs.stop_group(proc.pid)
        raise
    return HandBroker(node, proc.pid)
