"""The service spec: what one kmf service runs, as frozen attrs values.

Loading and validation live in `config.loading` and `config.rules`; these classes only hold values
and their defaults. Field names are the YAML keys.
"""
from __future__ import annotations

import getpass
from pathlib import Path
from typing import Literal

import attrs

from config.declared import TopicSpec, UserSpec

REPO_ROOT = Path(__file__).resolve().parent.parent

CONSTRAINT_OPERATORS = ("UNIQUE", "CLUSTER", "GROUP_BY", "LIKE", "UNLIKE", "MAX_PER", "IS")


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "root"


@attrs.frozen
class Constraint:
    """A Marathon placement constraint: ``field`` is ``hostname`` or an agent attribute name."""

    field: str
    operator: str
    value: str | None = None

    def __str__(self) -> str:
        return ":".join(p for p in (self.field, self.operator, self.value) if p is not None)


@attrs.frozen
class MesosSpec:
    master: str
    role: str = "kafka-role"
    principal: str | None = None
    secret_file: str | None = None
    # the name of an environment variable holding the secret (Marathon's secrets arrive as env vars)
    secret_env: str | None = None
    failover_timeout_s: float = 604800.0
    user: str = attrs.field(factory=_user)
    checkpoint: bool = True


@attrs.frozen
class ZooKeeperSpec:
    connect: str
    root: str = "/kmf"
    digest_user: str | None = None
    digest_password_file: str | None = None


@attrs.frozen
class TlsSpec:
    """TLS for Kafka clients (and brokers among themselves with `inter_broker`).

    Without `ca_cert_file`/`ca_key_file` the scheduler makes a CA of its own once and keeps it in
    ZooKeeper; either way it issues each broker launch a certificate for its agent's address.
    """

    enabled: bool = False
    inter_broker: bool = False
    ca_cert_file: str | None = None
    ca_key_file: str | None = None
    cert_days: float = 365  # validity of each broker certificate (fractions: short-lived, for tests)
    # a broker is restarted (gated, one at a time) for a new certificate this long before its
    # certificate expires; None: 30 days, or a third of cert_days when that is shorter
    renew_before_days: float | None = None

    # kmf's own CA (no ca_cert_file): made valid this long; rotated (a new CA, trusted next to the
    # old one before any broker presents a certificate it signed) this long before it expires;
    # None: 90 days, or a third of ca_days when that is shorter
    ca_days: float = 3650
    ca_renew_before_days: float | None = None
    # during a CA rotation no broker presents a certificate of the new CA until the trust bundle of
    # both has been served this long (clients that refresh their trust at least this often never
    # meet a certificate they cannot verify)
    ca_trust_overlap_days: float = 1.0

    @property
    def renew_margin_days(self) -> float:
        return self.renew_before_days if self.renew_before_days is not None else min(30.0, self.cert_days / 3)

    @property
    def ca_renew_margin_days(self) -> float:
        return self.ca_renew_before_days if self.ca_renew_before_days is not None else min(90.0, self.ca_days / 3)


@attrs.frozen
class SaslSpec:
    """SASL/SCRAM for clients: users are created through the API or declared (`users:`) and kept
    by Kafka itself. `authorizer` turns Kafka's ACLs on (KRaft's StandardAuthorizer): a SASL user
    then does only what its ACLs allow."""

    enabled: bool = False
    mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256"] = "SCRAM-SHA-512"
    authorizer: bool = False


def quorum_size(brokers: int) -> int:
    """KRaft voters of a service with `brokers` brokers: 3, or 1 below three brokers."""
    return 3 if brokers >= 3 else 1


@attrs.frozen
class RebalanceSpec:
    """How kmf moves partition replicas (`kmf rebalance`, drains, after a scale-out)."""

    throttle_mb_s: float = 50.0  # replication throttle per broker while replicas move; 0: none
    max_moves: int = 10  # partitions moving at once (each batch waits for the one before)
    on_scale_out: bool = True  # a broker scale-out ends with a rebalance onto the new brokers


@attrs.frozen
class KafkaSpec:
    version: str = "4.3.1"
    mode: Literal["kraft", "zookeeper"] = "kraft"
    brokers: int = 3
    cpus: float = 1.0
    mem_mb: int = 2048
    heap_mb: int = 512
    disk_mb: int = 5000
    overrides: dict[str, str] = attrs.field(factory=dict)
    rack_attribute: str | None = "zone"
    placement: tuple[Constraint, ...] = ()
    controllers: Literal["combined", "separate"] = "combined"
    # None: derived from the broker count (min(3, brokers) and min(2, replication))
    replication: int | None = None
    min_insync_replicas: int | None = None
    tls: TlsSpec = TlsSpec()
    sasl: SaslSpec = SaslSpec()
    rebalance: RebalanceSpec = RebalanceSpec()
    # node ids of brokers decommissioned (`kmf pod decommission`): never used again, so that the
    # brokers after them keep their ids; written by kmf into the stored target config
    retired: tuple[int, ...] = ()

    @property
    def broker_ids(self) -> tuple[int, ...]:
        """The node ids of the `brokers` brokers: the lowest ones not retired."""
        skip = set(self.retired)
        out: list[int] = []
        n = 0
        while len(out) < self.brokers:
            if n not in skip:
                out.append(n)
            n += 1
        return tuple(out)

    @property
    def replication_factor(self) -> int:
        return self.replication if self.replication is not None else min(3, self.brokers)

    @property
    def min_isr(self) -> int:
        if self.min_insync_replicas is not None:
            return self.min_insync_replicas
        return min(2, self.replication_factor)


@attrs.frozen
class AppUri:
    """One artifact of an app, as Mesos' ``CommandInfo.URI``: the fetcher puts it in the sandbox
    (archives extracted when ``extract``) before kmf's executor starts. In YAML either this mapping
    or just the URI text."""

    value: str
    extract: bool = True
    executable: bool = False
    cache: bool = False

    @classmethod
    def from_text(cls, text: str) -> "AppUri":
        return cls(value=text)

    @property
    def basename(self) -> str:
        """The file name the fetcher gives it in the sandbox (the URI's last path segment)."""
        return self.value.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]


# Static membership: a relaunched instance must rejoin within the session timeout, which covers
# the first relaunch's backoff plus this much for the fetch, the executor and the app to start.
RELAUNCH_MARGIN_S = 30.0
# the bounds Kafka brokers accept by default (group.min/max.session.timeout.ms)
SESSION_TIMEOUT_MIN_S = 6.0
SESSION_TIMEOUT_MAX_S = 1800.0
# how long an app instance may stay out of RUNNING before it is restarted, and the bounds of it
DEFAULT_STUCK_LIMIT_S = 300.0
STUCK_LIMIT_MIN_S = 5.0
STUCK_LIMIT_MAX_S = 86400.0


@attrs.frozen
class AutoscaleSpec:
    """Lag-based autoscaling of one app (scheduler.core.app_autoscale): as many instances as its
    consumer group's lag needs at `target_lag` records (or `target_lag_s` seconds) behind per
    instance, from `min` to `max` and never more than the partitions of the busiest topic the group
    reads (an instance more would get none). A scale-out waits `interval_s` after the last change
    and for every instance to be ready; a scale-in waits until the lag has been low for
    `cooldown_s` (and as long since the last change). Exactly one of the two targets is set."""

    max: int
    target_lag: int | None = None  # records behind per instance
    # seconds behind per instance: the age of the oldest record not consumed (scheduler.core.time_lag)
    target_lag_s: float | None = None
    min: int = 1
    interval_s: float = 30.0
    cooldown_s: float = 300.0


@attrs.frozen
class AppSpec:
    name: str
    command: tuple[str, ...]
    count: int = 1
    cpus: float = 0.5
    mem_mb: int = 512
    runtime: Literal["python", "java", "command"] = "python"
    env: dict[str, str] = attrs.field(factory=dict)
    # empty: the instances spread over the agents (each goes where the app has fewest instances)
    placement: tuple[Constraint, ...] = ()
    # keep the instances off agents that hold a broker
    avoid_brokers: bool = False
    # the app's code, fetched into each instance's sandbox (no app code needs to be on the agents)
    uris: tuple[AppUri, ...] = ()
    # the consumer's session timeout with static membership; None: derived from the recovery policy
    session_timeout_s: float | None = None
    # the app's Kafka consumer group (Kafka Streams: its application.id), for its lag in `kmf pods`,
    # the page and /v1/lag; None: see consumer_group
    group: str | None = None
    # out of Kafka Streams' RUNNING (as the app's output says) this long, an instance is restarted
    stuck_limit_s: float = DEFAULT_STUCK_LIMIT_S
    # lag-based autoscaling (opt-in); `count` is then where it starts, and an operator's `kmf scale
    # app` pauses it until `kmf scale app NAME --auto`
    autoscale: AutoscaleSpec | None = None
    # a persistent volume per instance (MB; 0: none), reserved like a broker's and mounted where
    # Kafka Streams keeps its state (the executor's state.dir; $KMF_STATE_DIR for other apps): a
    # relaunch in place finds its state there, a move starts empty and restores from the changelog
    state_volume_mb: int = 0
    # Kafka Streams (or client) properties added to the file a `java` app gets for "{properties}"
    # (e.g. num.standby.replicas, commit.interval.ms); the ones kmf sets itself are refused
    properties: dict[str, str] = attrs.field(factory=dict)

    def session_timeout_ms(self, policies: "Policies") -> int:
        """`session_timeout_s`, else long enough for a relaunch in place after a first failure
        (its backoff plus `RELAUNCH_MARGIN_S`), within the bounds Kafka accepts by default."""
        if self.session_timeout_s is not None:
            return int(self.session_timeout_s * 1000)
        derived = policies.backoff_initial_s + RELAUNCH_MARGIN_S
        return int(min(SESSION_TIMEOUT_MAX_S, max(SESSION_TIMEOUT_MIN_S, derived)) * 1000)

    def consumer_group(self, service: str) -> str:
        """`group`; else what kmf's executor makes the application.id of a Kafka Streams app given
        "{properties}" (`<service>-<app>`); else the value after `--group` in the command (kmf's
        word count); else the app's name."""
        if self.group:
            return self.group
        if self.runtime == "java" and "{properties}" in self.command:
            return f"{service}-{self.name}"
        if "--group" in self.command[:-1]:
            return self.command[self.command.index("--group") + 1]
        return self.name


@attrs.frozen
class Policies:
    backoff_initial_s: float = 1.0
    backoff_factor: float = 2.0
    backoff_max_s: float = 60.0
    permanent_failure_timeout_s: float = 1200.0  # 0: never move a task off its agent by itself
    # a rolling-update step waiting this long for its gate turns ERROR (it keeps waiting); 0: never
    update_step_timeout_s: float = 600.0
    deploy_strategy: Literal["serial", "parallel"] = "serial"
    # a Mesos maintenance window up to this long stops a broker in place for the window (its data
    # kept); a longer one, or one without an end, moves the broker with its id to another agent
    maintenance_move_after_s: float = 3600.0
    # how often the leader samples consumer-group lag (/metrics, /v1/lag, and what autoscaled apps
    # follow: the autoscaler reacts no faster than this)
    lag_sample_interval_s: float = 10.0


@attrs.frozen
class ApiSpec:
    port: int = 0
    bind: str = "0.0.0.0"
    token_file: str | None = None
    # HTTPS for the API and the web page when both are given (PEM files)
    tls_cert_file: str | None = None
    tls_key_file: str | None = None


@attrs.frozen
class ExecutorSpec:
    """How the kmf executor (and the Kafka runtime it starts) reaches each agent's sandbox.

    ``served`` (default): the scheduler serves the kmf bundle and the Kafka archives that `make
    setup` builds (found in ``artifacts_dir``, else ``$KMF_ARTIFACTS``, else ``.cache/artifacts``)
    and every task fetches them through ``CommandInfo.uris``. ``urls``: the same from a repository
    of your own (``bundle_uri``, ``kafka_uris`` by Kafka version). ``preinstalled``: nothing is
    fetched; ``pythonpath`` and ``kafka_cache`` are paths on every agent (kmf's old way).
    ``python`` is the agents' interpreter, looked up on their PATH unless absolute.
    """

    artifacts: Literal["served", "urls", "preinstalled"] = "served"
    python: str = "python3"
    artifacts_dir: str | None = None
    bundle_uri: str | None = None
    kafka_uris: dict[str, str] = attrs.field(factory=dict)
    pythonpath: str | None = None
    kafka_cache: str | None = None


@attrs.frozen
class ServiceSpec:
    name: str
    mesos: MesosSpec
    zookeeper: ZooKeeperSpec
    kafka: KafkaSpec = KafkaSpec()
    apps: tuple[AppSpec, ...] = ()
    policies: Policies = Policies()
    api: ApiSpec = ApiSpec()
    executor: ExecutorSpec = ExecutorSpec()
    # declared Kafka objects, reconciled by the leading scheduler (config.declared)
    topics: tuple[TopicSpec, ...] = ()
    users: tuple[UserSpec, ...] = ()

    def app(self, name: str) -> AppSpec | None:
        return next((a for a in self.apps if a.name == name), None)
