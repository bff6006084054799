"""What the scheduler tells the kmf executor about a task: the contract between the two.

The scheduler puts `TaskData.encode()` in ``TaskInfo.data`` (the v1 JSON API carries it base64
encoded; pymesos hands it over as that base64 text); the executor calls `TaskData.decode()` on it.
Everything a task needs that is not an ordinary Mesos field lives here, versioned so that an
executor never guesses at a payload written by a newer scheduler.

Pure values only: no I/O, no imports from scheduler/ or executor/.
"""
from __future__ import annotations

import base64
import binascii
import json
from typing import Any, Mapping

import attrs

from kmfwire.errors import BrokerConfigError, KmfError

FORMAT_VERSION = 1
KINDS = ("broker", "stream")
MODES = ("kraft", "zookeeper")
ROLES = ("broker", "controller")
MIGRATION_ROLES = ("zk-broker", "controller")  # BrokerTask.migration
RUNTIMES = ("python", "java", "command")
DEFAULT_STUCK_LIMIT_S = 300.0
# a stream instance's state directory in its sandbox (Kafka Streams' state.dir, $KMF_STATE_DIR):
# where the scheduler mounts the app's state volume when it has one
STREAM_STATE_DIR = "streams-state"
SASL_MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256")


class TaskDataError(KmfError, ValueError):
    """A payload that is not a valid kmf task description; the message names the field."""


def _tuple(value: Any) -> tuple[Any, ...]:
    return tuple(value) if value is not None else ()


def _str_map(value: Mapping[str, Any] | None) -> dict[str, str]:
    return {str(k): str(v) for k, v in (value or {}).items()}


def check_port(where: str, port: int) -> None:
    """BrokerConfigError unless `port` is a TCP port number."""
    if not 1 <= port <= 65535:
        raise BrokerConfigError(f"{where}: port {port} is outside 1..65535")


def check_host(where: str, host: str) -> None:
    """BrokerConfigError unless `host` can stand in a listener URL or a quorum voter."""
    if not host or any(ch.isspace() for ch in host) or "," in host or "/" in host:
        raise BrokerConfigError(f"{where}: host {host!r} is not a plain host name or address")


@attrs.frozen
class Voter:
    """One member of a KRaft controller quorum as brokers and controllers must reach it:
    `node_id@host:port` in ``controller.quorum.voters``."""

    node_id: int
    host: str
    port: int

    def __attrs_post_init__(self) -> None:
        if self.node_id < 0:
            raise BrokerConfigError(f"voter {self.node_id}: node id must be >= 0")
        check_host(f"voter {self.node_id}", self.host)
        check_port(f"voter {self.node_id}", self.port)

    def __str__(self) -> str:
        return f"{self.node_id}@{self.host}:{self.port}"


@attrs.frozen
class TlsMaterial:
    """A broker's TLS identity for one launch: PEM text the executor writes to its sandbox (0600).

    Issued by the scheduler per launch for the agent's address; the key never appears in a repr
    (and so in no log line)."""

    ca_cert: str
    cert_chain: str
    key: str = attrs.field(repr=False)


@attrs.frozen
class BrokerTask:
    """A Kafka node: a broker, a controller, or both (KRaft combined mode)."""

    node_id: int
    mode: str
    kafka_version: str
    roles: tuple[str, ...] = attrs.field(converter=_tuple)
    host: str
    broker_port: int | None = None
    controller_port: int | None = None
    cluster_id: str | None = None
    voters: tuple[Voter, ...] = attrs.field(default=(), converter=_tuple)
    zookeeper_connect: str | None = None
    volume: str = "data"
    rack: str | None = None
    heap_mb: int = 512
    replication: int = 1
    min_insync_replicas: int = 1
    overrides: dict[str, str] = attrs.field(factory=dict, converter=_str_map)
    # client listeners besides PLAINTEXT: SSL on tls_port, SASL (SASL_SSL when tls_port is set,
    # else SASL_PLAINTEXT) on sasl_port; `tls` is added by the scheduler's shell at launch
    tls_port: int | None = None
    sasl_port: int | None = None
    sasl_mechanism: str | None = None
    inter_broker_tls: bool = False
    tls: TlsMaterial | None = None
    # Prometheus' JMX exporter agent in the JVM serves /metrics on host:metrics_port (None: a
    # reservation made before kmf reserved that port; the node runs without the agent)
    metrics_port: int | None = None
    # ZooKeeper → KRaft migration (Kafka 3.9): "zk-broker" a ZooKeeper-mode broker in migration mode
    # (it also gets `voters`), "controller" a KRaft controller migrating it (it also gets
    # `zookeeper_connect`); None outside a migration
    migration: str | None = None


@attrs.frozen
class StreamTask:
    """One instance of a stream-processing app."""

    app: str
    instance: int
    runtime: str
    command: tuple[str, ...] = attrs.field(converter=_tuple)
    bootstrap_servers: str = ""
    env: dict[str, str] = attrs.field(factory=dict, converter=_str_map)
    kafka_version: str | None = None
    # static membership: the consumer's session timeout (None: the app joins as a dynamic member)
    session_timeout_ms: int | None = None
    # the URIs the fetcher put in the sandbox: the app's code (PYTHONPATH or classpath from them)
    artifacts: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    # out of RUNNING longer than this (as its output says: executor.app_state), the instance is ended
    stuck_limit_s: float = DEFAULT_STUCK_LIMIT_S
    # the app's own Kafka Streams properties, added to the file kmf writes for "{properties}"
    properties: dict[str, str] = attrs.field(factory=dict, converter=_str_map)

    def group_instance_id(self, service: str) -> str:
        """The instance's ``group.instance.id``: the same for every relaunch of `<app>-<i>`, so
        Kafka hands it its partitions back without a rebalance."""
        return f"{service}-{self.app}-{self.instance}"

    @property
    def client_id(self) -> str:
        """The instance's Kafka client id: its pod's name."""
        return f"{self.app}-{self.instance}"


@attrs.frozen
class TaskData:
    """The executor's whole input besides the TaskInfo's own fields.

    ``grace_period_s`` bounds a graceful stop (SIGTERM → SIGKILL); the scheduler also sets it as
    the TaskInfo's kill policy so both sides agree.
    """

    kind: str
    service: str
    broker: BrokerTask | None = None
    stream: StreamTask | None = None
    grace_period_s: float = 30.0
    health_interval_s: float = 5.0
    health_consecutive_failures: int = 3
    version: int = FORMAT_VERSION

    def __attrs_post_init__(self) -> None:
        validate(self)

    def to_json(self) -> dict[str, Any]:
        # through JSON once so tuples become lists exactly as a decoder will see them
        doc: dict[str, Any] = json.loads(json.dumps(attrs.asdict(self, recurse=True)))
        if doc["broker"] is not None and doc["broker"]["metrics_port"] is None:
            # a broker without the exporter (reserved before its port) keeps the payload an
            # executor from before the field reads
            del doc["broker"]["metrics_port"]
        if doc["broker"] is not None and doc["broker"]["migration"] is None:
            del doc["broker"]["migration"]  # the payload of before migrations
        if doc["stream"] is not None:
            # an app without static membership or fetched code keeps the payload of before them
            for key, unset in (("session_timeout_ms", None), ("artifacts", []),
                               ("stuck_limit_s", DEFAULT_STUCK_LIMIT_S), ("properties", {})):
                if doc["stream"][key] == unset:
                    del doc["stream"][key]
        return doc

    def encode(self) -> str:
        """Base64 text of the JSON form, as ``TaskInfo.data`` holds it in the v1 JSON API."""
        raw = json.dumps(self.to_json(), sort_keys=True, separators=(",", ":")).encode()
        return base64.b64encode(raw).decode("ascii")

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> "TaskData":
        if not isinstance(doc, Mapping):
            raise TaskDataError(f"task data: expected a JSON object, got {type(doc).__name__}")
        version = doc.get("version")
        if version != FORMAT_VERSION:
            raise TaskDataError(f"task data.version: {version!r} is not supported "
                                f"(this executor reads version {FORMAT_VERSION})")
        try:
            broker = doc.get("broker")
            stream = doc.get("stream")
            return cls(
                kind=doc["kind"],
                service=doc["service"],
                broker=None if broker is None else BrokerTask(
                    **{**broker, "voters": [Voter(**v) for v in broker.get("voters") or ()],
                       "tls": TlsMaterial(**broker["tls"]) if broker.get("tls") else None}),
                stream=None if stream is None else StreamTask(**stream),
                grace_period_s=float(doc.get("grace_period_s", 30.0)),
                health_interval_s=float(doc.get("health_interval_s", 5.0)),
                health_consecutive_failures=int(doc.get("health_consecutive_failures", 3)),
                version=version,
            )
        except KeyError as exc:
            raise TaskDataError(f"task data: missing field {exc.args[0]!r}") from None
        except TypeError as exc:
            raise TaskDataError(f"task data: {exc}") from None
        except BrokerConfigError as exc:  # a voter that no broker could reach
            raise TaskDataError(f"task data.broker.voters: {exc}") from None

    @classmethod
    def decode(cls, data: str | bytes) -> "TaskData":
        """Read ``TaskInfo.data`` as given: base64 text (v1 JSON) or the raw JSON bytes."""
        raw = data.encode("ascii", "replace") if isinstance(data, str) else bytes(data)
        if not raw.lstrip().startswith(b"{"):
            try:
                raw = base64.b64decode(raw, validate=True)
            except (binascii.Error, ValueError):
                raise TaskDataError("task data: neither JSON nor base64 of JSON") from None
        try:
            doc = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise TaskDataError(f"task data: not JSON ({exc})") from None
        return cls.from_json(doc)


def _port(where: str, value: int | None) -> None:
    if value is not None and (not isinstance(value, int) or not 0 < value < 65536):
        raise TaskDataError(f"{where}: {value!r} is not a TCP port")


def validate(data: TaskData) -> None:
    """Raise `TaskDataError` naming the first field that is wrong."""
    if data.kind not in KINDS:
        raise TaskDataError(f"task data.kind: {data.kind!r} is not one of {', '.join(KINDS)}")
    if not data.service:
        raise TaskDataError("task data.service: must not be empty")
    if data.grace_period_s < 0:
        raise TaskDataError(f"task data.grace_period_s: {data.grace_period_s} is negative")
    if data.kind == "broker":
        b = data.broker
        if b is None or data.stream is not None:
            raise TaskDataError("task data.broker: a broker task needs broker and no stream")
        if b.mode not in MODES:
            raise TaskDataError(f"task data.broker.mode: {b.mode!r} is not one of {', '.join(MODES)}")
        if not b.roles or any(r not in ROLES for r in b.roles):
            raise TaskDataError(f"task data.broker.roles: {b.roles!r} must be a non-empty subset of {ROLES}")
        _port("task data.broker.broker_port", b.broker_port)
        _port("task data.broker.controller_port", b.controller_port)
        _port("task data.broker.tls_port", b.tls_port)
        _port("task data.broker.sasl_port", b.sasl_port)
        _port("task data.broker.metrics_port", b.metrics_port)
        if (b.tls_port is not None or b.sasl_port is not None) and "broker" not in b.roles:
            raise TaskDataError("task data.broker.tls_port: only brokers have client listeners")
        if b.sasl_port is not None and b.sasl_mechanism not in SASL_MECHANISMS:
            raise TaskDataError(f"task data.broker.sasl_mechanism: {b.sasl_mechanism!r} is not one of "
                                f"{', '.join(SASL_MECHANISMS)}")
        if b.inter_broker_tls and b.tls_port is None:
            raise TaskDataError("task data.broker.inter_broker_tls: needs a tls_port")
        if "broker" in b.roles and b.broker_port is None:
            raise TaskDataError("task data.broker.broker_port: a broker needs a port")
        if b.migration not in (None, *MIGRATION_ROLES):
            raise TaskDataError(f"task data.broker.migration: {b.migration!r} is not one of {', '.join(MIGRATION_ROLES)}")
        if b.mode == "kraft":
            if "controller" in b.roles and b.controller_port is None:
                raise TaskDataError("task data.broker.controller_port: a controller needs a port")
            if not b.cluster_id:
                raise TaskDataError("task data.broker.cluster_id: KRaft mode needs the cluster id")
            if not b.voters:
                raise TaskDataError("task data.broker.voters: KRaft mode needs the controller quorum")
            if b.migration == "controller" and (b.roles != ("controller",) or not b.zookeeper_connect):
                raise TaskDataError("task data.broker.migration: a migrating controller is controller-only "
                                    "with the brokers' zookeeper_connect")
            if b.migration == "zk-broker":
                raise TaskDataError("task data.broker.migration: zk-broker is a ZooKeeper-mode task")
        else:
            if b.roles != ("broker",):
                raise TaskDataError("task data.broker.roles: ZooKeeper mode has brokers only")
            if not b.zookeeper_connect:
                raise TaskDataError("task data.broker.zookeeper_connect: ZooKeeper mode needs it")
            if b.migration == "controller":
                raise TaskDataError("task data.broker.migration: controller is a KRaft task")
            if (b.migration == "zk-broker") != bool(b.voters):
                raise TaskDataError("task data.broker.voters: a ZooKeeper-mode broker has the KRaft quorum "
                                    "exactly while it migrates (migration zk-broker)")
    else:
        s = data.stream
        if s is None or data.broker is not None:
            raise TaskDataError("task data.stream: a stream task needs stream and no broker")
        if s.runtime not in RUNTIMES:
            raise TaskDataError(f"task data.stream.runtime: {s.runtime!r} is not one of {', '.join(RUNTIMES)}")
        if not s.command:
            raise TaskDataError("task data.stream.command: must not be empty")
        if not s.stuck_limit_s > 0:
            raise TaskDataError(f"task data.stream.stuck_limit_s: {s.stuck_limit_s} is not positive")
