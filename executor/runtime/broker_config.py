"""Pure broker configuration: server.properties for KRaft and ZooKeeper mode.

Cluster ids and the quorum's `Voter` are part of the wire contract (kmfwire.cluster_id, kmfwire.taskdata).

No I/O here: typed frozen inputs in, text out (`jvm.py` builds the java command lines, `broker.py`
formats storage, starts the process and probes it).

- `KRaftNode`: `process.roles` = broker, controller or both (combined), a static controller quorum
  (`controller.quorum.voters`), its listeners and log dirs.
- `ZkBroker`: a Kafka 3.9 broker in ZooKeeper mode (`broker.id`, `zookeeper.connect` with a chroot).
- `Security`: client listeners besides PLAINTEXT — SSL with PEM key and trust stores, SASL/SCRAM —
  and which listener brokers replicate over.
- `Overrides` always win over what kmf renders; they are written last, in the order given.
"""
from __future__ import annotations

import enum
import re
from pathlib import Path
from typing import Iterable, Mapping, Union

import attrs

from kmfwire.errors import BrokerConfigError
from kmfwire.kafka_versions import Mode
from kmfwire.taskdata import Voter
from kmfwire.taskdata import check_host as _check_host
from kmfwire.taskdata import check_port as _check_port

_NAME_RE = re.compile(r"^[A-Z][A-Z0-9_]*$")
_KEY_RE = re.compile(r"^[A-Za-z0-9_.\-]+$")
_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
CONTROLLER_LISTENER = "CONTROLLER"


def _listeners(items: Iterable["Listener"]) -> tuple["Listener", ...]:
    return tuple(items)


def _voters(items: Iterable[Voter]) -> tuple[Voter, ...]:
    return tuple(items)


def _property_text(where: str, value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    if "\n" in text or "\r" in text:
        raise BrokerConfigError(f"{where}: value {text!r} contains a line break")
    return text


@attrs.frozen
class Listener:
    """One listener: `NAME://host:port`, with its security protocol and advertised host."""

    name: str
    host: str
    port: int
    protocol: str = "PLAINTEXT"
    advertised_host: str | None = None

    def __attrs_post_init__(self) -> None:
        where = f"listener {self.name!r}"
        if not _NAME_RE.match(self.name):
            raise BrokerConfigError(f"{where}: name must be upper case letters, digits and _")
        _check_host(where, self.host)
        _check_port(where, self.port)
        if self.advertised_host is not None:
            _check_host(f"{where} advertised", self.advertised_host)
        if self.protocol not in _PROTOCOLS:
            raise BrokerConfigError(f"{where}: protocol {self.protocol!r} not one of {_PROTOCOLS}")

    @property
    def url(self) -> str:
        return f"{self.name}://{self.host}:{self.port}"

    @property
    def advertised_url(self) -> str:
        return f"{self.name}://{self.advertised_host or self.host}:{self.port}"

    @property
    def address(self) -> str:
        """`host:port` as a client dials it (the advertised host)."""
        return f"{self.advertised_host or self.host}:{self.port}"


@attrs.frozen
class Security:
    """Extra client listeners of a broker and what they need.

    ``keystore`` is a PEM file with the private key (PKCS#8, unencrypted: Kafka then needs no key
    password) followed by the certificate chain; ``truststore`` a PEM file with the CA. Both
    live in the sandbox with mode 0600. ``inter_broker`` names the listener brokers replicate
    over (None: the PLAINTEXT broker listener)."""

    listeners: tuple[Listener, ...] = attrs.field(default=(), converter=_listeners)
    keystore: Path | None = None
    truststore: Path | None = None
    sasl_mechanism: str | None = None
    inter_broker: str | None = None

    def __attrs_post_init__(self) -> None:
        names = [lis.name for lis in self.listeners]
        if len(set(names)) != len(names):
            raise BrokerConfigError(f"security: listener names repeat: {names}")
        for lis in self.listeners:
            if lis.protocol in ("SSL", "SASL_SSL") and (self.keystore is None or self.truststore is None):
                raise BrokerConfigError(f"security: listener {lis.name} ({lis.protocol}) needs a keystore "
                                        "and a truststore")
            if lis.protocol.startswith("SASL_") and self.sasl_mechanism not in ("SCRAM-SHA-256", "SCRAM-SHA-512"):
                raise BrokerConfigError(f"security: listener {lis.name} needs a SCRAM mechanism, "
                                        f"got {self.sasl_mechanism!r}")
        if self.inter_broker is not None:
            mine = [lis for lis in self.listeners if lis.name == self.inter_broker]
            if not mine or mine[0].protocol.startswith("SASL_"):
                # a SASL listener would need a SCRAM user for the brokers themselves
                raise BrokerConfigError(f"security: inter_broker {self.inter_broker!r} must name one of "
                                        f"the SSL or PLAINTEXT listeners {names}")

    def properties(self) -> list[tuple[str, str]]:
        props: list[tuple[str, str]] = []
        if self.keystore is not None and self.truststore is not None:
            props += [("ssl.keystore.type", "PEM"), ("ssl.keystore.location", str(self.keystore)),
                      ("ssl.truststore.type", "PEM"), ("ssl.truststore.location", str(self.truststore))]
        sasl = [lis for lis in self.listeners if lis.protocol.startswith("SASL_")]
        if sasl and self.sasl_mechanism:
            mech = self.sasl_mechanism
            props.append(("sasl.enabled.mechanisms", mech))
            for lis in sasl:
                # the server side of SCRAM needs a login module but no credentials: users' salted
                # credentials are in Kafka's metadata (KRaft) or ZooKeeper
                props.append((f"listener.name.{lis.name.lower()}.{mech.lower()}.sasl.jaas.config",
                              "org.apache.kafka.common.security.scram.ScramLoginModule required;"))
        return props


def _listener_properties(main: Listener, security: Security, others: tuple[Listener, ...] = (),
                         protocols: Mapping[str, str] | None = None) -> list[tuple[str, str]]:
    """listeners, advertised.listeners, the inter-broker listener and the protocol map of a broker
    whose PLAINTEXT listener is `main` (`others`, e.g. the controller listener, are not advertised;
    `protocols` adds names without a listener here, e.g. the quorum's on a broker-only node)."""
    clients = (main, *security.listeners)
    names = {**(protocols or {}), **{lis.name: lis.protocol for lis in (*clients, *others)}}
    return [
        ("listeners", ",".join(lis.url for lis in (*clients, *others))),
        ("advertised.listeners", ",".join(lis.advertised_url for lis in clients)),
        ("inter.broker.listener.name", security.inter_broker or main.name),
        ("listener.security.protocol.map", ",".join(f"{n}:{p}" for n, p in sorted(names.items()))),
    ]


@attrs.frozen
class Replication:
    """Replication defaults; the single-node values (all 1) are the default."""

    default_replication_factor: int = 1
    min_insync_replicas: int = 1
    offsets_topic_replication_factor: int = 1
    transaction_state_log_replication_factor: int = 1
    transaction_state_log_min_isr: int = 1
    num_partitions: int = 1

    def __attrs_post_init__(self) -> None:
        for field in attrs.fields(Replication):
            if getattr(self, field.name) < 1:
                raise BrokerConfigError(f"replication.{field.name} must be >= 1")
        if self.min_insync_replicas > self.default_replication_factor:
            raise BrokerConfigError(
                f"replication: min_insync_replicas {self.min_insync_replicas} exceeds "
                f"default_replication_factor {self.default_replication_factor}"
            )

    @classmethod
    def for_cluster(cls, brokers: int) -> "Replication":
        """Defaults for `brokers` brokers: RF min(3, brokers), min ISR RF-1 (at least 1)."""
        rf = max(1, min(3, brokers))
        isr = max(1, rf - 1)
        return cls(rf, isr, rf, rf, isr, 1)

    def properties(self, kraft_4x: bool) -> list[tuple[str, str]]:
        props = [
            ("num.partitions", str(self.num_partitions)),
            ("default.replication.factor", str(self.default_replication_factor)),
            ("min.insync.replicas", str(self.min_insync_replicas)),
            ("offsets.topic.replication.factor", str(self.offsets_topic_replication_factor)),
            ("transaction.state.log.replication.factor",
             str(self.transaction_state_log_replication_factor)),
            ("transaction.state.log.min.isr", str(self.transaction_state_log_min_isr)),
        ]
        if kraft_4x:  # share groups exist from 4.0; 3.9 would log "not a known config"
            props += [
                ("share.coordinator.state.topic.replication.factor",
                 str(self.offsets_topic_replication_factor)),
                ("share.coordinator.state.topic.min.isr", str(self.transaction_state_log_min_isr)),
            ]
        return props


def _to_overrides(value: Mapping[str, object] | Iterable[tuple[str, object]]) -> tuple[tuple[str, str], ...]:
    items = value.items() if isinstance(value, Mapping) else value
    pairs = []
    for key, raw in items:
        if not isinstance(key, str) or not _KEY_RE.match(key):
            raise BrokerConfigError(f"override key {key!r} is not a Kafka property name")
        pairs.append((key, _property_text(f"override {key}", raw)))
    return tuple(pairs)


def _to_dirs(value: Iterable[Path | str] | Path | str) -> tuple[Path, ...]:
    if isinstance(value, (str, Path)):
        value = (value,)
    return tuple(Path(item) for item in value)


def _check_common(where: str, log_dirs: tuple[Path, ...], rack: str | None) -> None:
    if not log_dirs:
        raise BrokerConfigError(f"{where}: log_dirs is empty")
    for directory in log_dirs:
        text = str(directory)
        if not directory.is_absolute() or "," in text or any(ch.isspace() for ch in text):
            raise BrokerConfigError(
                f"{where}: log dir {text!r} must be an absolute path without commas or spaces"
            )
    if len(set(log_dirs)) != len(log_dirs):
        raise BrokerConfigError(f"{where}: log_dirs lists a directory twice")
    if rack is not None and (not rack or any(ch.isspace() for ch in rack)):
        raise BrokerConfigError(f"{where}: rack {rack!r} must be a non-empty word")


@attrs.frozen
class ZkMigration:
    """What a ZooKeeper-mode broker adds while its cluster moves to KRaft (Kafka 3.9's "enter
    migration mode on the brokers"): the KRaft controllers' quorum, reached over their
    `controller_protocol`, and the inter-broker protocol pinned to `ibp` (the release's major.minor:
    the controllers' metadata.version must equal it, and it must not change during the migration)."""

    voters: tuple[Voter, ...] = attrs.field(converter=_voters)
    ibp: str
    controller_protocol: str = "PLAINTEXT"

    def __attrs_post_init__(self) -> None:
        if not self.voters:
            raise BrokerConfigError("migration: the controller quorum (voters) is empty")
        if not re.fullmatch(r"[0-9]+\.[0-9]+", self.ibp):
            raise BrokerConfigError(f"migration: ibp {self.ibp!r} is not a major.minor release such as 3.9")
        if self.controller_protocol not in _PROTOCOLS:
            raise BrokerConfigError(f"migration: controller_protocol {self.controller_protocol!r}")


@attrs.frozen
class ZkLink:
    """What a KRaft controller adds while it migrates a ZooKeeper-mode cluster: the brokers'
    ZooKeeper (`connect`, with their chroot) and the listener it reaches the ZooKeeper-mode brokers
    on (their inter-broker listener's name and protocol: it sends them LeaderAndIsr and
    UpdateMetadata as their controller)."""

    connect: str
    inter_broker_name: str = "PLAINTEXT"
    inter_broker_protocol: str = "PLAINTEXT"

    def __attrs_post_init__(self) -> None:
        if not self.connect or any(ch.isspace() for ch in self.connect):
            raise BrokerConfigError(f"migration: zookeeper connect {self.connect!r} is empty or has spaces")
        if not _NAME_RE.match(self.inter_broker_name) or self.inter_broker_protocol not in _PROTOCOLS:
            raise BrokerConfigError(f"migration: inter-broker listener {self.inter_broker_name}:"
                                    f"{self.inter_broker_protocol} is not NAME:PROTOCOL")


class Role(enum.Enum):
    """A KRaft node's `process.roles`."""

    BROKER = "broker"
    CONTROLLER = "controller"
    COMBINED = "broker,controller"

    @property
    def is_broker(self) -> bool:
        return self is not Role.CONTROLLER

    @property
    def is_controller(self) -> bool:
        return self is not Role.BROKER


@attrs.frozen
class KRaftNode:
    """A KRaft node. `broker_listener` is needed for broker roles, `controller_listener` for
    controller roles; a controller must appear in `voters` with its controller listener's address.
    `kafka_major` (3 or 4) only decides whether 4.x-only properties are written."""

    node_id: int
    role: Role
    voters: tuple[Voter, ...] = attrs.field(converter=_voters)
    log_dirs: tuple[Path, ...] = attrs.field(converter=_to_dirs)
    broker_listener: Listener | None = None
    controller_listener: Listener | None = None
    controller_protocol: str = "PLAINTEXT"
    rack: str | None = None
    replication: Replication = Replication()
    kafka_major: int = 4
    overrides: tuple[tuple[str, str], ...] = attrs.field(default=(), converter=_to_overrides)
    security: Security = Security()
    # a controller migrating a ZooKeeper-mode cluster (Kafka 3.9 only; None once it is finalised)
    zk_migration: ZkLink | None = None

    def __attrs_post_init__(self) -> None:
        where = f"KRaft node {self.node_id}"
        if self.zk_migration is not None and (self.role is not Role.CONTROLLER or self.kafka_major != 3):
            raise BrokerConfigError(f"{where}: only a Kafka 3 controller-only node migrates from ZooKeeper "
                                    f"(this one is {self.role.value}, Kafka {self.kafka_major})")
        if self.node_id < 0:
            raise BrokerConfigError(f"{where}: node id must be >= 0")
        _check_common(where, self.log_dirs, self.rack)
        if not self.voters:
            raise BrokerConfigError(f"{where}: the controller quorum (voters) is empty")
        strays = [voter for voter in self.voters if not isinstance(voter, Voter)]
        if strays:
            raise BrokerConfigError(f"{where}: voters must be Voter values, not {strays!r}")
        ids = [voter.node_id for voter in self.voters]
        if len(set(ids)) != len(ids):
            raise BrokerConfigError(f"{where}: voters list a node id twice: {ids}")
        if self.role.is_broker and self.broker_listener is None:
            raise BrokerConfigError(f"{where}: role {self.role.value} needs a broker_listener")
        if self.role.is_controller:
            if self.controller_listener is None:
                raise BrokerConfigError(f"{where}: role {self.role.value} needs a controller_listener")
            mine = [voter for voter in self.voters if voter.node_id == self.node_id]
            ctl = self.controller_listener
            if not mine:
                raise BrokerConfigError(f"{where}: a controller must be one of the voters {ids}")
            if (mine[0].host, mine[0].port) != (ctl.advertised_host or ctl.host, ctl.port):
                raise BrokerConfigError(
                    f"{where}: voter entry {mine[0]} differs from controller listener {ctl.address}"
                )
        else:
            if self.controller_listener is not None:
                raise BrokerConfigError(f"{where}: a broker-only node has no controller_listener")
            if self.node_id in ids:
                raise BrokerConfigError(
                    f"{where}: a broker-only node's id must not be a voter's id {ids}")
        if (self.broker_listener and self.controller_listener
                and self.broker_listener.name == self.controller_listener.name):
            raise BrokerConfigError(f"{where}: broker and controller listeners share a name")
        if self.controller_protocol not in _PROTOCOLS:
            raise BrokerConfigError(f"{where}: controller_protocol {self.controller_protocol!r}")
        if self.kafka_major not in (3, 4):
            raise BrokerConfigError(f"{where}: kafka_major {self.kafka_major} is not 3 or 4")
        if self.security.listeners and not self.role.is_broker:
            raise BrokerConfigError(f"{where}: a controller-only node serves no client listeners")
        _check_listener_names(where, [lis for lis in (self.broker_listener, self.controller_listener)
                                      if lis is not None], self.security)

    @property
    def controller_listener_name(self) -> str:
        return self.controller_listener.name if self.controller_listener else CONTROLLER_LISTENER


@attrs.frozen
class ZkBroker:
    """A Kafka 3.9 broker in ZooKeeper mode; `zookeeper_connect` is `host:port[,...][/chroot]`."""

    broker_id: int
    listener: Listener
    zookeeper_connect: str
    log_dirs: tuple[Path, ...] = attrs.field(converter=_to_dirs)
    rack: str | None = None
    replication: Replication = Replication()
    overrides: tuple[tuple[str, str], ...] = attrs.field(default=(), converter=_to_overrides)
    security: Security = Security()
    migration: ZkMigration | None = None  # set while its cluster moves to KRaft

    def __attrs_post_init__(self) -> None:
        where = f"ZooKeeper-mode broker {self.broker_id}"
        if self.migration is not None and CONTROLLER_LISTENER in (
                {self.listener.name} | {lis.name for lis in self.security.listeners}):
            raise BrokerConfigError(f"{where}: a listener is named {CONTROLLER_LISTENER}, the KRaft quorum's name")
        _check_listener_names(where, [self.listener], self.security)
        if self.broker_id < 0:
            raise BrokerConfigError(f"{where}: broker id must be >= 0")
        _check_common(where, self.log_dirs, self.rack)
        hosts, slash, rest = self.zookeeper_connect.partition("/")
        chroot = slash + rest
        if not hosts or any(ch.isspace() for ch in self.zookeeper_connect):
            raise BrokerConfigError(f"{where}: zookeeper_connect {self.zookeeper_connect!r} is empty or has spaces")
        for part in hosts.split(","):
            host, sep, port = part.rpartition(":")
            if not sep or not host or not port.isdigit():
                raise BrokerConfigError(f"{where}: zookeeper_connect entry {part!r} is not host:port")
            _check_port(f"{where} zookeeper_connect", int(port))
        if chroot not in ("", "/") and (chroot.endswith("/") or "//" in chroot):
            raise BrokerConfigError(
                f"{where}: zookeeper_connect chroot {chroot!r} must not end in / or contain //")


BrokerNode = Union[KRaftNode, ZkBroker]


def _check_listener_names(where: str, own: list[Listener], security: Security) -> None:
    clash = {lis.name for lis in own} & {lis.name for lis in security.listeners}
    if clash:
        raise BrokerConfigError(f"{where}: security listeners reuse the names {sorted(clash)}")


def node_id(node: BrokerNode) -> int:
    """The id a broker registers with (`node.id` in KRaft, `broker.id` in ZooKeeper mode)."""
    return node.node_id if isinstance(node, KRaftNode) else node.broker_id


def mode_of(node: BrokerNode) -> Mode:
    return Mode.KRAFT if isinstance(node, KRaftNode) else Mode.ZOOKEEPER


def bootstrap_address(node: BrokerNode) -> str:
    """`host:port` clients use to reach this broker; a controller-only node has none."""
    listener = node.broker_listener if isinstance(node, KRaftNode) else node.listener
    if listener is None:
        raise BrokerConfigError(f"KRaft node {node_id(node)}: a controller-only node serves no clients")
    return listener.address


def _kraft_properties(node: KRaftNode) -> list[tuple[str, str]]:
    props = [
        ("process.roles", node.role.value),
        ("node.id", str(node.node_id)),
        ("controller.quorum.voters", ",".join(str(voter) for voter in node.voters)),
        ("controller.listener.names", node.controller_listener_name),
    ]
    if node.broker_listener is not None:
        # Only client listeners are advertised: clients never talk to controllers, and with a
        # static quorum the controllers' addresses are in controller.quorum.voters.
        others = (node.controller_listener,) if node.controller_listener is not None else ()
        props += _listener_properties(node.broker_listener, node.security, others,
                                      {node.controller_listener_name: node.controller_protocol})
    else:
        ctl = node.controller_listener
        assert ctl is not None
        names = {ctl.name: ctl.protocol}
        link = node.zk_migration
        if link is not None:  # the brokers' inter-broker listener must be in the map
            names[link.inter_broker_name] = link.inter_broker_protocol
        props += [("listeners", ctl.url),
                  ("listener.security.protocol.map", ",".join(f"{n}:{p}" for n, p in sorted(names.items())))]
        if link is not None:
            props += [("zookeeper.metadata.migration.enable", "true"), ("zookeeper.connect", link.connect),
                      ("inter.broker.listener.name", link.inter_broker_name)]
    props.append(("log.dirs", ",".join(str(d) for d in node.log_dirs)))
    if node.rack is not None and node.role.is_broker:
        props.append(("broker.rack", node.rack))
    if node.role.is_broker:
        props += node.replication.properties(kraft_4x=node.kafka_major >= 4)
    return props + node.security.properties()


def _zk_properties(node: ZkBroker) -> list[tuple[str, str]]:
    mig = node.migration
    quorum = {CONTROLLER_LISTENER: mig.controller_protocol} if mig is not None else None
    props = [
        ("broker.id", str(node.broker_id)),
        *_listener_properties(node.listener, node.security, protocols=quorum),
        ("zookeeper.connect", node.zookeeper_connect),
        ("log.dirs", ",".join(str(d) for d in node.log_dirs)),
    ]
    if mig is not None:
        props += [("zookeeper.metadata.migration.enable", "true"),
                  ("controller.quorum.voters", ",".join(str(voter) for voter in mig.voters)),
                  ("controller.listener.names", CONTROLLER_LISTENER),
                  ("inter.broker.protocol.version", mig.ibp)]
    if node.rack is not None:
        props.append(("broker.rack", node.rack))
    return props + node.replication.properties(kraft_4x=False) + node.security.properties()


def server_properties(node: BrokerNode) -> dict[str, str]:
    """The broker's properties in render order; overrides replace rendered keys in place or come last."""
    rendered = _kraft_properties(node) if isinstance(node, KRaftNode) else _zk_properties(node)
    props = dict(rendered)
    for key, value in node.overrides:
        props[key] = value
    return props


def _escape(text: str, is_key: bool) -> str:
    out = []
    for index, ch in enumerate(text):
        if ch == "\\":
            out.append("\\\\")
        elif ch in "=:#!" or (ch == " " and (is_key or index == 0)):
            out.append("\\" + ch)
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) > 0xFFFF:  # Java reads \\u escapes as UTF-16: a surrogate pair
            high, low = divmod(ord(ch) - 0x10000, 0x400)
            out.append(f"\\u{0xD800 + high:04x}\\u{0xDC00 + low:04x}")
        elif ord(ch) > 126 or ord(ch) < 32:  # Properties.load(InputStream) reads ISO-8859-1
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "".join(out)


def render_properties(props: Mapping[str, str], header: str = "") -> str:
    """Java .properties text for `props` (escaped so that java.util.Properties reads them back)."""
    lines = [f"# {line}" for line in header.splitlines()]
    lines += [f"{_escape(key, True)}={_escape(value, False)}" for key, value in props.items()]
    return "\n".join(lines) + "\n"


def render_server_properties(node: BrokerNode) -> str:
    """The whole server.properties file for `node`."""
    mode = mode_of(node).value
    return render_properties(server_properties(node), f"Written by kmf for {mode} node {node_id(node)}.")
