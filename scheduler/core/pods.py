"""The pods a service spec asks for: names, identities, resources, placement, deploy order.

KRaft quorum, which kmf manages in KRaft mode: with ``controllers: combined`` the first k brokers
(k = 3, or 1 below three brokers) are broker+controller nodes: no extra tasks or resources, and a
3-broker cluster survives one loss in both roles. With ``separate``, controllers are their own
pods ``controller-<n>`` (node ids 1000+n) so brokers can roll or move without touching the quorum.
"""
from __future__ import annotations

from typing import TypedDict

import attrs

from config import AppUri, Constraint, ServiceSpec
from config.models import quorum_size
from kmfwire.taskdata import STREAM_STATE_DIR
from scheduler.core.state import PodKind

EXECUTOR_CPUS = 0.1
EXECUTOR_MEM_MB = 64
CONTROLLER_ID_BASE = 1000
# where a pod's volume is mounted in its sandbox: a broker's log dirs, a stream instance's state
# (the executor's Kafka Streams state.dir and $KMF_STATE_DIR, with or without a volume)
VOLUME_PATH = "kafka-data"
STATE_VOLUME_PATH = STREAM_STATE_DIR
# the port of Prometheus' JMX exporter in every broker and controller JVM, by its DiscoveryInfo name
METRICS_PORT = "metrics"


@attrs.frozen
class PodDef:
    name: str
    kind: PodKind
    group: str  # placement group: "kafka" or "app:<name>"
    index: int
    cpus: float
    mem_mb: int
    disk_mb: int = 0
    roles: tuple[str, ...] = ()
    app: str | None = None
    placement: tuple[Constraint, ...] = ()
    # client listeners besides PLAINTEXT ("tls", "sasl"): one more reserved port each
    listeners: tuple[str, ...] = ()
    # stream instances: go where the app has the fewest instances (an app without placement rules:
    # Marathon's hostname:GROUP_BY among the agents that can take it); keep off brokers' agents
    spread: bool = False
    avoid_brokers: bool = False
    uris: tuple[AppUri, ...] = ()  # a stream instance's code, fetched with its executor

    @property
    def node_id(self) -> int:
        return CONTROLLER_ID_BASE + self.index if self.roles == ("controller",) else self.index

    @property
    def is_controller(self) -> bool:
        return "controller" in self.roles

    @property
    def extra_ports(self) -> tuple[str, ...]:
        """What the ports reserved besides the broker and controller ones are for, in the order
        they are given (ascending): the client listeners, then the metrics exporter's. The metrics
        port comes last so that a reservation made before kmf reserved it still maps its listeners."""
        return (*self.listeners, METRICS_PORT) if self.kind == PodKind.BROKER else ()

    @property
    def reserves(self) -> bool:
        """Whether the pod runs on resources reserved for it on one agent, with a volume: every
        broker and controller; a stream instance with a state volume (`state_volume_mb`)."""
        return self.kind == PodKind.BROKER or self.disk_mb > 0

    @property
    def volume_path(self) -> str:
        """Where the volume is mounted in the sandbox: a broker's data, or Kafka Streams' state.dir."""
        return VOLUME_PATH if self.kind == PodKind.BROKER else STATE_VOLUME_PATH

    @property
    def ports_needed(self) -> int:
        return len(self.roles) + len(self.extra_ports) if self.kind == PodKind.BROKER else 0


class _BrokerFields(TypedDict):
    """The fields every broker and controller PodDef of a spec shares."""
    kind: PodKind
    group: str
    cpus: float
    mem_mb: int
    disk_mb: int
    placement: tuple[Constraint, ...]


def client_listeners(spec: ServiceSpec) -> tuple[str, ...]:
    """The extra client listeners a broker of `spec` serves, in the order their ports are given."""
    k = spec.kafka
    return tuple(name for name, on in (("tls", k.tls.enabled), ("sasl", k.sasl.enabled)) if on)


def desired_pods(spec: ServiceSpec) -> list[PodDef]:
    """Every pod of the spec in deploy order: controllers, brokers, then each app's instances."""
    k = spec.kafka
    out: list[PodDef] = []
    common: _BrokerFields = dict(kind=PodKind.BROKER, group="kafka", cpus=k.cpus, mem_mb=k.mem_mb, disk_mb=k.disk_mb,
                                 placement=k.placement)
    if k.mode == "kraft" and k.controllers == "separate":
        for n in range(quorum_size(k.brokers)):
            out.append(PodDef(name=f"controller-{n}", index=n, roles=("controller",), **common))
    for n in k.broker_ids:
        if k.mode == "kraft" and k.controllers == "combined" and n < quorum_size(k.brokers):
            roles: tuple[str, ...] = ("broker", "controller")
        else:
            roles = ("broker",)
        out.append(PodDef(name=f"broker-{n}", index=n, roles=roles, listeners=client_listeners(spec),
                          **common))
    for app in spec.apps:
        for i in range(app.count):
            out.append(PodDef(name=f"{app.name}-{i}", kind=PodKind.STREAM, group=f"app:{app.name}", index=i,
                              cpus=app.cpus, mem_mb=app.mem_mb, disk_mb=app.state_volume_mb, app=app.name,
                              placement=app.placement,
                              spread=not app.placement, avoid_brokers=app.avoid_brokers, uris=app.uris))
    return out


def pods_by_name(spec: ServiceSpec) -> dict[str, PodDef]:
    return {p.name: p for p in desired_pods(spec)}
