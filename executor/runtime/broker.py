"""Broker I/O: write server.properties, format KRaft storage once per data dir, start, probe.

The decisions (what the properties are, which argv to run) live in `broker_config.py` and `jvm.py`;
this module only touches files, processes and the network.

Lifecycle, as the executor drives it::

    node = KRaftNode(...)  or  ZkBroker(...)             # broker_config, pure
    prepare_broker(node, sandbox / "server.properties")   # writes the file, creates log dirs
    ensure_storage_formatted(rt, node, config, cluster_id) # KRaft only; never reformats
    proc = start_broker(rt, config, sandbox / "broker.log")
    wait_until_serving(bootstrap_address(node), node_id(node), proc=proc)
    ... probe_broker(...) as a health check; SIGTERM the process group to stop.
"""
from __future__ import annotations

import enum
import logging
import subprocess
import time
from pathlib import Path
from typing import Callable, Mapping, Sequence

import attrs

from executor.runtime.broker_config import (
    BrokerNode,
    KRaftNode,
    render_server_properties,
    server_properties,
)
from executor.runtime.jvm import JvmOptions, broker_argv, storage_format_argv
from executor.runtime.kafka_dist import KafkaRuntime, Mode
from kmfwire.cluster_id import check_cluster_id
from kmfwire.errors import KmfError
from kmfwire.waiting import wait_until

log = logging.getLogger(__name__)

META_PROPERTIES = "meta.properties"


class BrokerRuntimeError(KmfError, RuntimeError):
    """A broker that could not be laid out, formatted, started or reached; says which and where."""


class StorageError(BrokerRuntimeError):
    """A data dir that must not be used as it is (another cluster's or node's, or unformattable)."""


class BrokerNotReady(BrokerRuntimeError):
    """The broker did not serve metadata in time, or its process exited first."""


def prepare_broker(node: BrokerNode, config_path: Path) -> Path:
    """Write `node`'s server.properties to `config_path` and create its log dirs; returns the path."""
    for directory in node.log_dirs:
        directory.mkdir(parents=True, exist_ok=True)
    config_path = Path(config_path)
    config_path.parent.mkdir(parents=True, exist_ok=True)
    config_path.write_text(render_server_properties(node))
    return config_path


def read_meta_properties(log_dir: Path) -> dict[str, str] | None:
    """The `meta.properties` of a data dir as a dict, or None when the dir is not formatted."""
    path = Path(log_dir) / META_PROPERTIES
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StorageError(f"cannot read {path}: {exc}") from exc
    meta: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            meta[key.strip()] = value.strip()
    return meta


class FormatOutcome(enum.Enum):
    FORMATTED = "formatted"  # every dir was empty and is now formatted
    ALREADY_FORMATTED = "already-formatted"  # nothing ran
    COMPLETED = "completed"  # some dirs were formatted, the missing ones were added


def _metadata_dirs(node: KRaftNode) -> list[Path]:
    dirs = list(node.log_dirs)
    meta_dir = server_properties(node).get("metadata.log.dir")
    if meta_dir and Path(meta_dir) not in dirs:
        dirs.append(Path(meta_dir))
    return dirs


def storage_state(node: KRaftNode, cluster_id: str) -> tuple[list[Path], list[Path]]:
    """(formatted dirs, unformatted dirs) of `node`; a dir of another cluster or node is an error."""
    formatted, empty = [], []
    for directory in _metadata_dirs(node):
        meta = read_meta_properties(directory)
        if meta is None:
            empty.append(directory)
            continue
        if meta.get("cluster.id") != cluster_id:
            raise StorageError(
                f"{directory / META_PROPERTIES}: cluster.id {meta.get('cluster.id')!r} is not this "
                f"cluster's {cluster_id!r}; refusing to reuse a data dir of another cluster"
            )
        # a ZooKeeper-mode broker's dir (meta.properties version 0: broker.id, no node.id) migrated
        # to KRaft is this node's when the ids match: Kafka reads broker.id as the node id and
        # rewrites the file itself; formatting it would be refused, and it holds the data
        migrated = meta.get("version") == "0" and "node.id" not in meta and meta.get("broker.id") == str(node.node_id)
        if meta.get("node.id") != str(node.node_id) and not migrated:
            raise StorageError(
                f"{directory / META_PROPERTIES}: node.id {meta.get('node.id')!r} is not "
                f"{node.node_id}; refusing to reuse another node's data dir"
            )
        formatted.append(directory)
    return formatted, empty


def ensure_storage_formatted(
    runtime: KafkaRuntime,
    node: KRaftNode,
    config_path: Path,
    cluster_id: str,
    jvm: JvmOptions = JvmOptions(heap_mb=256, log_level="WARN"),
    timeout: float = 120.0,
) -> FormatOutcome:
    """Run `StorageTool format` unless every data dir already has a meta.properties of this
    cluster and node. A dir that is formatted is never formatted again (only the missing dirs
    are added, with --ignore-formatted). `config_path` must hold `node`'s rendered properties."""
    check_cluster_id(cluster_id)
    if Mode.KRAFT not in runtime.modes:
        raise StorageError(f"Kafka {runtime.version} cannot run KRaft; nothing to format")
    formatted, empty = storage_state(node, cluster_id)
    if not empty:
        log.info("storage of node %s already formatted: %s", node.node_id, formatted)
        return FormatOutcome.ALREADY_FORMATTED
    for directory in empty:
        directory.mkdir(parents=True, exist_ok=True)
    argv = storage_format_argv(runtime, config_path, cluster_id, jvm, ignore_formatted=bool(formatted))
    log.info("formatting storage of node %s in %s", node.node_id, empty)
    try:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise StorageError(f"StorageTool format of {empty} took longer than {timeout}s") from exc
    except OSError as exc:
        raise StorageError(f"cannot run {argv[0]} to format {empty}: {exc}") from exc
    if done.returncode != 0:
        tail = (done.stdout + done.stderr).strip().splitlines()[-10:]
        raise StorageError(
            f"StorageTool format of node {node.node_id} ({config_path}) exited {done.returncode}: "
            + " | ".join(tail)
        )
    _, still_empty = storage_state(node, cluster_id)
    if still_empty:
        raise StorageError(f"StorageTool format exited 0 but left {still_empty} without {META_PROPERTIES}")
    return FormatOutcome.COMPLETED if formatted else FormatOutcome.FORMATTED


Spawner = Callable[[Sequence[str], Path], "subprocess.Popen[bytes]"]


def spawn_in_session(argv: Sequence[str], log_path: Path, env: Mapping[str, str] | None = None,
                     cwd: Path | None = None) -> "subprocess.Popen[bytes]":
    """Start `argv` in its own session (one process group to signal), output appended to `log_path`."""
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as out:
        return subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True,
                                env=dict(env) if env is not None else None,
                                cwd=str(cwd) if cwd else None)


def start_broker(
    runtime: KafkaRuntime,
    config_path: Path,
    log_path: Path,
    jvm: JvmOptions = JvmOptions(),
    spawn: Spawner | None = None,
) -> "subprocess.Popen[bytes]":
    """Start `kafka.Kafka config_path` with its console output in `log_path`; returns at once.
    `spawn(argv, log_path)` starts the process (default: `spawn_in_session`)."""
    runtime.check_installed()
    if jvm.tmp_dir is not None:
        Path(jvm.tmp_dir).mkdir(parents=True, exist_ok=True)
    argv = broker_argv(runtime, Path(config_path), jvm, logs_dir=Path(log_path).parent)
    log.info("starting Kafka %s broker: %s", runtime.version, " ".join(argv))
    return (spawn or spawn_in_session)(argv, Path(log_path))


@attrs.frozen
class ClusterView:
    """What a broker's metadata says: the cluster id, the active controller, the live brokers."""

    cluster_id: str | None
    controller_id: int
    broker_ids: tuple[int, ...]
    topics: tuple[str, ...]


def _admin_client(bootstrap: str) -> object:
    from confluent_kafka.admin import AdminClient  # imported here: pure callers need no librdkafka

    # log_level 0: until the broker listens, librdkafka would print a "Connection refused" line to
    # stderr per attempt; the failure still comes back as the exception of list_topics.
    return AdminClient({"bootstrap.servers": bootstrap, "log_level": 0,
                        "socket.connection.setup.timeout.ms": 2000})


def probe_broker(bootstrap: str, broker_id: int, timeout: float = 3.0,
                 admin: object | None = None) -> ClusterView | None:
    """One metadata request (AdminClient.list_topics): the view if `broker_id` is registered in it,
    else None. Errors (nothing listening yet, timeouts) are None too."""
    client = admin if admin is not None else _admin_client(bootstrap)
    try:
        metadata = client.list_topics(timeout=timeout)  # type: ignore[attr-defined]
    except Exception as exc:  # noqa: BLE001 - KafkaException until the broker is up
        log.debug("metadata probe of %s: %s", bootstrap, exc)
        return None
    if broker_id not in metadata.brokers:
        return None
    return ClusterView(
        cluster_id=metadata.cluster_id,
        controller_id=metadata.controller_id,
        broker_ids=tuple(sorted(metadata.brokers)),
        topics=tuple(sorted(metadata.topics)),
    )


def _log_tail(log_path: Path | None, lines: int = 15) -> str:
    if log_path is None:
        return ""
    try:
        tail = Path(log_path).read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return ""
    return "\n  " + "\n  ".join(tail)


def wait_until_serving(
    bootstrap: str,
    broker_id: int,
    timeout: float = 90.0,
    proc: "subprocess.Popen[bytes] | None" = None,
    log_path: Path | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> ClusterView:
    """Probe `bootstrap` until its metadata lists `broker_id`; fail early if `proc` exits.
    Raises BrokerNotReady with the tail of `log_path` when it gives up."""
    admin = _admin_client(bootstrap)
    deadline = clock() + timeout

    def serving() -> ClusterView | None:
        if proc is not None and proc.poll() is not None:
            raise BrokerNotReady(
                f"broker {broker_id} ({bootstrap}) exited with {proc.returncode} before serving"
                + _log_tail(log_path)
            )
        remaining = deadline - clock()
        return probe_broker(bootstrap, broker_id, timeout=max(0.5, min(3.0, remaining)), admin=admin)

    view = wait_until(serving, timeout, 0.25, clock=clock, sleep=sleep)
    if view is None:
        raise BrokerNotReady(
            f"broker {broker_id} not in the metadata of {bootstrap} after {timeout}s"
            + _log_tail(log_path)
        )
    return view
