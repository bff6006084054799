"""What the executor runs for a task: a broker or a stream app, with its readiness and health checks.

`prepare(task, sandbox, env)` does the work that must happen before the process starts (render
server.properties, format KRaft storage once) and returns a `Workload`: the argv and env to
supervise plus the two checks. Readiness says the task has done what its plan step waits for;
health says it still serves. A stream app also has a state (Kafka Streams' client state, read
from its output) and a stuck check that ends the task.
"""
from __future__ import annotations

import logging
import os
import socket
import sys
import time
from pathlib import Path
from typing import Callable, Mapping

import attrs

from executor import app_state
from executor.app_state import AppState
from executor.runtime import broker as broker_io
from executor.runtime.broker_config import (
    KRaftNode,
    Listener,
    Replication,
    Role,
    Security,
    ZkBroker,
    ZkLink,
    ZkMigration,
    bootstrap_address,
    render_properties,
)
from executor.runtime.jvm import METRICS_RULES, JvmOptions, broker_argv, metrics_agent_flag
from executor.runtime.tls_files import write_tls_files
from executor.runtime.kafka_dist import DEFAULT_CACHE_DIR, KafkaRuntime, runtime
from kmfwire.errors import KmfError
from kmfwire.ready import READY_MARKER
from kmfwire.taskdata import STREAM_STATE_DIR, BrokerTask, TaskData

log = logging.getLogger(__name__)

Check = Callable[[], bool]


class WorkloadError(KmfError, RuntimeError):
    """The task cannot start (bad runtime, storage that belongs to another cluster, ...)."""


@attrs.frozen
class Workload:
    argv: tuple[str, ...]
    env: Mapping[str, str]
    ready: Check
    healthy: Check
    description: str
    volume: Path | None = None  # its persistent data, checked for free space when it fails
    # a stream app's state as its output says (None: not known, or not an app)
    app_state: Callable[[], str | None] = lambda: None
    # why the task must end now (a stream app stuck out of RUNNING), or None
    stuck: Callable[[], str | None] = lambda: None


def kafka_runtime(version: str, env: Mapping[str, str]) -> KafkaRuntime:
    cache = Path(env.get("KMF_KAFKA_CACHE") or DEFAULT_CACHE_DIR)
    try:
        return runtime(version, cache).check_installed()
    except Exception as exc:  # noqa: BLE001 - KafkaDistError and friends: say which and where
        raise WorkloadError(f"Kafka {version} runtime not usable under {cache}: {exc}") from None


def _replication(b: BrokerTask) -> Replication:
    rf = max(1, b.replication)
    isr = max(1, min(b.min_insync_replicas, rf))
    return Replication(rf, isr, rf, rf, isr, 1)


def broker_node(b: BrokerTask, data_dir: Path, tls_files: tuple[Path, Path] | None = None) -> KRaftNode | ZkBroker:
    """The runtime's node description for a broker task, data under `data_dir`; `tls_files` are
    the key and trust stores written for its TLS listeners."""
    log_dirs = (data_dir / "logs",)
    broker_listener = (Listener("PLAINTEXT", b.host, b.broker_port)
                       if b.broker_port is not None else None)
    security = broker_security(b, tls_files)
    if b.mode == "zookeeper":
        # TaskData.validate: a ZooKeeper-mode task is a broker with a port and zookeeper_connect
        assert broker_listener is not None and b.zookeeper_connect is not None
        # in migration mode it also knows the KRaft quorum, at its release's protocol (3.9)
        migration = (ZkMigration(b.voters, ".".join(b.kafka_version.split(".")[:2]))
                     if b.migration == "zk-broker" else None)
        return ZkBroker(broker_id=b.node_id, listener=broker_listener, zookeeper_connect=b.zookeeper_connect,
                        log_dirs=log_dirs, rack=b.rack, replication=_replication(b), overrides=b.overrides,
                        security=security, migration=migration)
    roles = set(b.roles)
    role = Role.COMBINED if roles == {"broker", "controller"} else (
        Role.CONTROLLER if roles == {"controller"} else Role.BROKER)
    controller_listener = (Listener("CONTROLLER", b.host, b.controller_port)
                           if b.controller_port is not None and role.is_controller else None)
    return KRaftNode(
        node_id=b.node_id, role=role,
        voters=b.voters,
        log_dirs=log_dirs, broker_listener=broker_listener if role.is_broker else None,
        controller_listener=controller_listener, rack=b.rack, replication=_replication(b),
        kafka_major=int(b.kafka_version.split(".")[0]), overrides=b.overrides, security=security,
        # a controller migrating a ZooKeeper-mode cluster reaches the brokers as their controller
        # over their inter-broker listener, PLAINTEXT (config refuses a migration with TLS between brokers)
        zk_migration=ZkLink(b.zookeeper_connect or "") if b.migration == "controller" else None,
    )


def broker_security(b: BrokerTask, tls_files: tuple[Path, Path] | None) -> Security:
    """The SSL and SASL listeners of a broker task (see kmfwire.taskdata.BrokerTask)."""
    listeners = []
    if b.tls_port is not None:
        if tls_files is None:
            raise WorkloadError(f"broker {b.node_id}: a TLS listener but no certificate in the task data")
        listeners.append(Listener("SSL", b.host, b.tls_port, protocol="SSL"))
    if b.sasl_port is not None:
        name = "SASL_SSL" if b.tls_port is not None else "SASL_PLAINTEXT"
        listeners.append(Listener(name, b.host, b.sasl_port, protocol=name))
    keystore, truststore = tls_files if tls_files is not None else (None, None)
    return Security(listeners=tuple(listeners), keystore=keystore, truststore=truststore,
                    sasl_mechanism=b.sasl_mechanism, inter_broker="SSL" if b.inter_broker_tls else None)


def metrics_agent_options(b: BrokerTask, rt: KafkaRuntime) -> tuple[str, ...]:
    """The JVM option that runs Prometheus' JMX exporter in the node, on its metrics port.

    A runtime without the agent jar (a Kafka archive of the user's own, ``executor.artifacts:
    urls``) starts the broker without it and says so in the executor's log: serving Kafka matters
    more than its metrics, and the target that does not answer shows as ``up == 0`` in Prometheus."""
    if b.metrics_port is None:
        return ()
    missing = [p for p in (rt.metrics_agent, METRICS_RULES) if not p.is_file()]
    if missing:
        log.warning("node %s runs without its metrics exporter on port %s: %s missing", b.node_id,
                    b.metrics_port, " and ".join(str(p) for p in missing))
        return ()
    return (metrics_agent_flag(rt.metrics_agent, b.host, b.metrics_port),)


def _port_open(host: str, port: int, timeout: float = 2.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _workload_env(env: Mapping[str, str]) -> dict[str, str]:
    # the workload inherits the executor's environment (PATH, JAVA_HOME, KMF_*...) but not the
    # agent's MESOS_* variables, which describe the executor, not the broker or app
    return {k: v for k, v in env.items() if not k.startswith("MESOS_")}


def _broker(data: TaskData, sandbox: Path, env: Mapping[str, str]) -> Workload:
    b = data.broker
    assert b is not None
    rt = kafka_runtime(b.kafka_version, env)
    data_dir = sandbox / b.volume
    data_dir.mkdir(parents=True, exist_ok=True)
    tls_files = write_tls_files(sandbox, b.tls) if b.tls is not None else None
    node = broker_node(b, data_dir, tls_files)
    config = broker_io.prepare_broker(node, sandbox / "server.properties")
    if b.mode == "kraft":
        # TaskData.validate: a KRaft-mode task has a cluster id (and so broker_node made a KRaftNode)
        assert isinstance(node, KRaftNode) and b.cluster_id is not None
        try:
            outcome = broker_io.ensure_storage_formatted(
                rt, node, config, b.cluster_id, JvmOptions(heap_mb=128, tmp_dir=sandbox / "tmp", log_level="WARN"))
        except broker_io.BrokerRuntimeError as exc:
            raise WorkloadError(f"storage of node {b.node_id}: {exc}") from None
        log.info("storage of node %s: %s", b.node_id, outcome.name)
    jvm = JvmOptions(heap_mb=b.heap_mb, tmp_dir=sandbox / "tmp", extra=metrics_agent_options(b, rt))
    (sandbox / "tmp").mkdir(exist_ok=True)
    argv = broker_argv(rt, config, jvm, logs_dir=sandbox / "kafka-logs")
    proc_env = _workload_env(env)
    if "broker" in b.roles:
        address = bootstrap_address(node)
        admin = broker_io._admin_client(address)  # one client: probes reuse its connection

        def in_metadata() -> bool:
            return broker_io.probe_broker(address, b.node_id, timeout=3.0, admin=admin) is not None
        check = in_metadata
        what = f"Kafka {b.kafka_version} broker {b.node_id} ({b.mode}) on {address}"
    else:
        port = b.controller_port
        assert port is not None  # TaskData.validate: a controller has a controller port

        def controller_listening() -> bool:
            return _port_open(b.host, port)
        check = controller_listening
        what = f"Kafka {b.kafka_version} controller {b.node_id} on {b.host}:{b.controller_port}"
    return Workload(tuple(argv), proc_env, check, check, what, volume=data_dir)


def _stream(data: TaskData, sandbox: Path, env: Mapping[str, str], stdout: Path) -> Workload:
    s = data.stream
    assert s is not None
    proc_env = _workload_env(env)
    (sandbox / STREAM_STATE_DIR).mkdir(exist_ok=True)  # the volume's mount point when it has one
    # KMF_STATE_DIR: where the app keeps local state; on the app's state volume when it has one
    proc_env.update({"KAFKA_BOOTSTRAP_SERVERS": s.bootstrap_servers, "KMF_APP": s.app,
                     "KMF_INSTANCE": str(s.instance), "KMF_SERVICE": data.service,
                     "KMF_STATE_DIR": str(sandbox / STREAM_STATE_DIR),
                     **identity_env(data)})
    if s.runtime == "python" and s.artifacts:
        # the app's fetched code first, then what the executor runs on (its bundle: confluent_kafka)
        inherited = proc_env.get("PYTHONPATH")
        proc_env["PYTHONPATH"] = os.pathsep.join([*python_path(s.artifacts, sandbox), *([inherited] if inherited else [])])
    proc_env.update(s.env)
    if s.runtime == "python":
        argv = (env.get("KMF_PYTHON") or sys.executable, *s.command)
    elif s.runtime == "java":
        rt = kafka_runtime(s.kafka_version or "4.3.1", env)
        # Kafka Streams apps (e.g. WordCountDemo) take a properties file: "{properties}" in the
        # command becomes one with the live bootstrap servers, an application id, a state dir and
        # the instance's static identity
        props = sandbox / "streams.properties"
        props.write_text(render_properties(streams_properties(data, sandbox, agent_host(env)),
                                           "written by the kmf executor"))
        args = tuple(str(props) if a == "{properties}" else a for a in s.command)
        # the fetched jars (and those extracted archives left in the sandbox) before Kafka's own
        classpath = os.pathsep.join([str(sandbox / "*"), rt.classpath]) if s.artifacts else rt.classpath
        argv = ("java", "-Xmx256m", *rt.logging_flags(), "-cp", classpath, *args)
    else:
        argv = tuple(s.command)
    watch = AppWatch(stdout, s.runtime, s.stuck_limit_s)
    return Workload(argv, proc_env, watch.ready, watch.healthy, f"{s.app} instance {s.instance} ({s.runtime})",
                    app_state=watch.state, stuck=watch.stuck)


class AppWatch:
    """Follows a stream app's stdout as it grows (from its size when the app starts) and keeps
    the app's state (`executor.app_state`, where the rules are); the I/O half: file and clock."""

    def __init__(self, stdout: Path, runtime: str, stuck_limit_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.path = stdout
        self.runtime = runtime
        self.stuck_limit_s = stuck_limit_s
        self.clock = clock
        self.offset = stdout.stat().st_size if stdout.exists() else 0
        self.started = clock()
        self.partial = b""
        self.marker_seen = False
        self.app = AppState()

    def _read(self) -> None:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                chunk = f.read()
        except OSError:
            return
        self.offset += len(chunk)
        *lines, self.partial = (self.partial + chunk).split(b"\n")
        now = self.clock()
        for raw in lines:
            line = raw.decode("utf-8", "replace")
            self.marker_seen = self.marker_seen or READY_MARKER in line
            self.app = self.app.feed(line, now)

    def ready(self) -> bool:
        self._read()
        return app_state.ready(self.runtime, self.app, self.marker_seen, self.clock() - self.started)

    def healthy(self) -> bool:
        self._read()
        return app_state.healthy(self.app)

    def state(self) -> str | None:
        self._read()
        return self.app.state

    def stuck(self) -> str | None:
        self._read()
        return self.app.stuck(self.stuck_limit_s, self.clock())


PYTHON_ARCHIVES = (".whl", ".zip", ".egg", ".pyz")


def identity_env(data: TaskData) -> dict[str, str]:
    """What a Python (or command) app's consumer uses for static membership: its
    ``group.instance.id``, ``client.id`` and ``session.timeout.ms`` (none without a session timeout:
    a payload from a scheduler before static membership)."""
    s = data.stream
    assert s is not None
    if s.session_timeout_ms is None:
        return {}
    return {"KMF_GROUP_INSTANCE_ID": s.group_instance_id(data.service), "KMF_CLIENT_ID": s.client_id,
            "KMF_SESSION_TIMEOUT_MS": str(s.session_timeout_ms)}


# the client tag naming the instance's agent (KIP-708): Kafka Streams puts a task's standby
# replicas (num.standby.replicas) on instances whose tag differs, i.e. on other agents
AGENT_TAG = "agent"


def agent_host(env: Mapping[str, str]) -> str:
    """The agent this executor runs on: the address in MESOS_AGENT_ENDPOINT (every Mesos agent
    sets it for its executors), else this host's name."""
    endpoint = env.get("MESOS_AGENT_ENDPOINT", "")
    return endpoint.rsplit(":", 1)[0] if ":" in endpoint else socket.gethostname()


def streams_properties(data: TaskData, sandbox: Path, agent: str) -> dict[str, str]:
    """The properties file a Kafka Streams app gets for "{properties}" (pure): the app's own
    `properties`, then kmf's (its brokers, application id, state dir, identity) and the agent's
    client tag for standby placement (unless the app chose its own assignment tags)."""
    s = data.stream
    assert s is not None
    props = dict(s.properties)
    if "rack.aware.assignment.tags" not in props:
        props.update({"rack.aware.assignment.tags": AGENT_TAG, f"client.tag.{AGENT_TAG}": agent})
    props.update({"bootstrap.servers": s.bootstrap_servers, "application.id": f"{data.service}-{s.app}",
                  "state.dir": str(sandbox / STREAM_STATE_DIR)})
    if s.session_timeout_ms is not None:
        # Kafka Streams hands group.instance.id and session.timeout.ms to its main consumer, and
        # takes client.id as the prefix of its clients' ids
        props.update({"group.instance.id": s.group_instance_id(data.service), "client.id": s.client_id,
                      "session.timeout.ms": str(s.session_timeout_ms)})
    return props


def python_path(artifacts: tuple[str, ...], sandbox: Path) -> list[str]:
    """PYTHONPATH entries for an app's fetched code: each wheel or zip kept whole, then the sandbox
    itself (modules fetched as files, packages out of extracted archives)."""
    names = [uri.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1] for uri in artifacts]
    return [*(str(sandbox / n) for n in names if n.endswith(PYTHON_ARCHIVES) and (sandbox / n).is_file()),
            str(sandbox)]


def prepare(data: TaskData, sandbox: Path, env: Mapping[str, str] | None = None) -> Workload:
    """The workload for `data` in `sandbox`; `env` is the environment the executor was given
    (KMF_KAFKA_CACHE, KMF_PYTHON, and what the workload inherits). The executor always passes it;
    `os.environ` is only the fallback for callers outside it (tests, tools)."""
    env = os.environ if env is None else env
    if data.kind == "broker":
        return _broker(data, sandbox, env)
    return _stream(data, sandbox, env, sandbox / "stdout")
