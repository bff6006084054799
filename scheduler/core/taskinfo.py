"""TaskInfo and ExecutorInfo as kmf launches them (the executor reads the TaskData payload,
`kmfwire.taskdata`), and each pod's TaskData.

The fingerprint of a pod is a hash of what its task would be given now (payload without the
changing bootstrap list, resources): a running task whose fingerprint differs is outdated and is
rolled by the update plan (a config update, or a controller that moved and changed the voters).
"""
from __future__ import annotations

import base64
import hashlib
import json
import shlex
import uuid
from typing import Any, Mapping


from config import ServiceSpec
from config.declared import authorizer_properties
from config.rules import restart_overrides
from kmfwire.taskdata import BrokerTask, StreamTask, TaskData, Voter
from mesoslib.resources import Resources
from scheduler.core import artifacts
from scheduler.core.artifacts import Served
from scheduler.core import stream_templates
from scheduler.core import zk_migration
from scheduler.core.pods import METRICS_PORT, PodDef
from scheduler.core.state import Reservation, TaskRecord

_NS = uuid.UUID("6f1c3a52-8e0b-4c55-9d43-6f0e1d2a7b10")
_NS_BYTES = _NS.bytes


def new_id(*parts: object) -> str:
    """A uuid derived from its inputs: pure, and unique as long as one input changes.

    `uuid.uuid5(_NS, "/".join(parts))` as text, computed without the UUID object (one per launch)."""
    digest = bytearray(hashlib.sha1(_NS_BYTES + "/".join(str(p) for p in parts).encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def zookeeper_chroot(spec: ServiceSpec) -> str:
    return f"{spec.zookeeper.connect}{spec.zookeeper.root.rstrip('/')}/{spec.name}/kafka"


def voters(tasks: Mapping[str, TaskRecord], pods: list[PodDef]) -> tuple[Voter, ...] | None:
    """The controller quorum, or None while a controller has no reservation (address unknown)."""
    out = []
    for pod in pods:
        if pod.kind != "broker" or not pod.is_controller:
            continue
        rec = tasks.get(pod.name)
        if rec is None or rec.reservation is None or rec.reservation.controller_port is None:
            return None
        out.append(Voter(pod.node_id, rec.reservation.hostname, rec.reservation.controller_port))
    return tuple(out)


def bootstrap_servers(tasks: Mapping[str, TaskRecord], pods: list[PodDef]) -> str:
    hosts = []
    for pod in pods:
        rec = tasks.get(pod.name)
        if pod.kind == "broker" and "broker" in pod.roles and rec and rec.reservation \
                and rec.reservation.broker_port:
            hosts.append(f"{rec.reservation.hostname}:{rec.reservation.broker_port}")
    return ",".join(hosts)


def extra_ports(pod: PodDef, res: Reservation | None) -> dict[str, int]:
    """Ports of the pod's client listeners ("tls", "sasl") and metrics exporter ("metrics") in its
    reservation.

    The reservation records the broker and controller ports; the ports reserved besides them are
    given in `PodDef.extra_ports` order (ports are chosen in ascending order and TLS/SASL cannot be
    switched on or off in place, so the mapping never changes). A reservation made before kmf
    reserved a metrics port has no port left for it: no "metrics" key."""
    if res is None or not pod.extra_ports:
        return {}
    reserved = Resources.from_json(list(res.resources), "reservation.resources")
    taken = {res.broker_port, res.controller_port}
    extra = sorted(p for begin, end in reserved.ranges_of("ports") for p in range(begin, end + 1)
                   if p not in taken)
    return dict(zip(pod.extra_ports, extra))


def listener_ports(pod: PodDef, res: Reservation | None) -> dict[str, int]:
    """Ports of the pod's client listeners ("tls", "sasl") in its reservation."""
    return {name: port for name, port in extra_ports(pod, res).items() if name in pod.listeners}


def metrics_port(pod: PodDef, res: Reservation | None) -> int | None:
    """The port of the pod's JMX exporter in its reservation (None: not a broker, or reserved
    before kmf reserved one)."""
    return extra_ports(pod, res).get(METRICS_PORT)


def task_data(spec: ServiceSpec, pod: PodDef, rec: TaskRecord | None, properties: Mapping[str, str],
              quorum: tuple[Voter, ...] | None, bootstrap: str) -> TaskData:
    k = spec.kafka
    if pod.kind == "broker":
        res = rec.reservation if rec else None
        assert res is not None, "a broker is launched on its reservation"
        extra = extra_ports(pod, res)
        # during a ZooKeeper → KRaft migration the phase decides each pod's mode (zk_migration)
        mode, migration = zk_migration.rendering(properties, pod, k.mode)
        return TaskData(kind="broker", service=spec.name, broker=BrokerTask(
            node_id=pod.node_id, mode=mode, kafka_version=k.version, roles=pod.roles,
            host=res.hostname, broker_port=res.broker_port if "broker" in pod.roles else None,
            controller_port=res.controller_port if pod.is_controller else None,
            cluster_id=properties.get("cluster_id") if mode == "kraft" else None,
            voters=(quorum or ()) if mode == "kraft" or migration else (),
            zookeeper_connect=zookeeper_chroot(spec) if mode == "zookeeper" or migration else None,
            volume=pod.volume_path, rack=(res.attributes.get(k.rack_attribute) if k.rack_attribute else None),
            heap_mb=k.heap_mb, replication=k.replication_factor, min_insync_replicas=k.min_isr,
            overrides={**authorizer_properties(mode, k.sasl.enabled, k.sasl.authorizer), **k.overrides},
            migration=migration,
            tls_port=extra.get("tls"), sasl_port=extra.get("sasl"),
            sasl_mechanism=k.sasl.mechanism if "sasl" in extra else None,
            inter_broker_tls=k.tls.inter_broker and "tls" in extra, metrics_port=extra.get(METRICS_PORT)))
    app = spec.app(pod.app or "")
    assert app is not None
    return TaskData(kind="stream", service=spec.name, stream=StreamTask(
        app=app.name, instance=pod.index, runtime=app.runtime, command=app.command,
        bootstrap_servers=bootstrap, env=app.env, kafka_version=k.version,
        session_timeout_ms=app.session_timeout_ms(spec.policies), artifacts=tuple(u.value for u in app.uris),
        stuck_limit_s=app.stuck_limit_s, properties=app.properties))


def fingerprint(pod: PodDef, data: TaskData, executor: str = "") -> str:
    """`executor` is `artifacts.identity`: a new kmf bundle (an upgrade) or Kafka archive rolls the
    pod; a restarted scheduler serving the same ones does not. Empty (preinstalled, or nothing
    served) leaves the fingerprint as it was before kmf fetched anything."""
    template = stream_templates.fingerprint_template(pod, data, executor, _fingerprint_text)
    if template is not None and data.stream is not None:
        return hashlib.sha256(template.fill(data.stream.instance).encode()).hexdigest()[:16]
    return hashlib.sha256(_fingerprint_text(pod, data, executor).encode()).hexdigest()[:16]


def _fingerprint_text(pod: PodDef, data: TaskData, executor: str) -> str:
    doc = data.to_json()
    if doc.get("stream"):
        doc["stream"]["bootstrap_servers"] = ""
    if doc.get("broker"):
        # values Kafka applies live are changed through the AdminClient, not by a restart (adding
        # or removing such a key still rolls: config.rules.restart_overrides says why)
        doc["broker"]["overrides"] = restart_overrides(doc["broker"]["overrides"])
        doc["broker"].pop("tls", None)  # issued afresh for every launch: not a change of config
        for key in ("tls_port", "sasl_port", "sasl_mechanism", "inter_broker_tls", "metrics_port"):
            # unset: the fingerprint of a broker from before TLS/SASL (or before its metrics port)
            if not doc["broker"].get(key):
                doc["broker"].pop(key, None)
    parts: list[Any] = [doc, pod.cpus, pod.mem_mb, pod.disk_mb]
    if executor:
        parts.append(executor)
    return json.dumps(parts, sort_keys=True)


def payload(data: TaskData) -> str:
    """`data.encode()` (what `TaskInfo.data` holds), from the stream template when there is one."""
    template = stream_templates.payload_template(data)
    if template is not None:
        text = template.fill(data.stream.instance, data.stream.bootstrap_servers)  # type: ignore[union-attr]
        return base64.b64encode(text.encode()).decode("ascii")
    return data.encode()


def executor_info(spec: ServiceSpec, pod: PodDef, executor_id: str, resources: Resources,
                  served: Served | None = None) -> dict[str, Any]:
    e = spec.executor
    variables = [{"name": "KMF_POD", "value": pod.name}]
    info: dict[str, Any] = {
        "executor_id": {"value": executor_id},
        "name": f"kmf executor for {pod.name}",
        "source": spec.name,
        "resources": resources.to_json("pre"),
    }
    app_uris = artifacts.app_uris(pod)
    if e.artifacts == "preinstalled":
        if e.pythonpath:
            variables.append({"name": "PYTHONPATH", "value": e.pythonpath})
        if e.kafka_cache:
            variables.append({"name": "KMF_KAFKA_CACHE", "value": e.kafka_cache})
        variables.append({"name": "KMF_PYTHON", "value": e.python})
        info["command"] = {"shell": False, "value": e.python, "arguments": [e.python, "-m", "executor"],
                           "environment": {"variables": variables}}
        if app_uris:
            info["command"]["uris"] = app_uris
        return info
    bundle, kafka = artifacts.for_pod(spec, pod, served)
    fetched = [a for a in (bundle, kafka) if a is not None]
    # Mesos expands no variable in CommandInfo.environment, and the sandbox path is known only on
    # the agent: the shell exports the paths from $MESOS_SANDBOX, then exec's the interpreter (so the
    # executor is the task's process, with absolute paths in its environment that stream apps
    # inherit; KMF_PYTHON is not set: the executor gives its apps its own sys.executable).
    exports = [f'{name}="$MESOS_SANDBOX/{a.folder}"' for name, a in
               (("PYTHONPATH", bundle), ("KMF_KAFKA_CACHE", kafka)) if a is not None]
    run = f"exec {shlex.quote(e.python)} -m executor"
    info["command"] = {
        "shell": True, "value": f"export {' '.join(exports)} && {run}" if exports else run,
        "uris": [{"value": a.uri, "extract": True, "cache": True, "executable": False} for a in fetched]
        + app_uris,
        "environment": {"variables": variables}}
    return info


def task_info(spec: ServiceSpec, pod: PodDef, task_id: str, agent_id: str, data: TaskData,
              task_resources: Resources, exec_resources: Resources, config_id: str,
              ports: tuple[int, ...], served: Served | None = None) -> dict[str, Any]:
    grace = data.grace_period_s
    labels = [("kmf.service", spec.name), ("kmf.pod", pod.name), ("kmf.kind", pod.kind),
              ("kmf.config_id", config_id)]
    if pod.kind == "broker":
        labels.append(("kmf.node_id", str(pod.node_id)))
    port_names = list(pod.roles) if pod.kind == "broker" else []
    if data.broker is not None:
        # the core records broker/controller ports; the listeners' and the exporter's come from the data
        b = data.broker
        for name, port in (("tls", b.tls_port), ("sasl", b.sasl_port), (METRICS_PORT, b.metrics_port)):
            if port is not None:
                ports, port_names = (*ports, port), [*port_names, name]
    info: dict[str, Any] = {
        "name": pod.name,
        "task_id": {"value": task_id},
        "agent_id": {"value": agent_id},
        "resources": task_resources.to_json("pre"),
        "executor": executor_info(spec, pod, task_id, exec_resources, served),
        "data": payload(data),
        "labels": {"labels": [{"key": k, "value": v} for k, v in labels]},
        "kill_policy": {"grace_period": {"nanoseconds": int(grace * 1e9)}},
        "discovery": {
            "visibility": "FRAMEWORK", "name": f"{pod.name}.{spec.name}",
            "ports": {"ports": [{"number": p, "name": n, "protocol": "tcp"}
                                for p, n in zip(ports, port_names)]},
        },
    }
    return info


__all__ = ["bootstrap_servers", "executor_info", "extra_ports", "fingerprint", "listener_ports", "metrics_port",
           "new_id", "payload", "task_data", "task_info", "voters", "zookeeper_chroot"]
