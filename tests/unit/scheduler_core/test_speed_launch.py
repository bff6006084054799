"""The fast launch path builds exactly what the plain one built (issue 14 item 6).

Two checks:

* golden: whole deploys (several specs: KRaft combined and separate, ZooKeeper mode, TLS/SASL
  listeners, python/java/command apps with env, served/urls/preinstalled executors, a relaunch in
  place) are driven through `decide`, and the JSON text of every action (operations, TaskInfos,
  payloads, persisted records) is hashed; the digests were recorded on the code before the
  template and integer fast paths (commit 47554f5);
* reference: the functions as they were before that change are kept below, and the new
  `task_info`, `fingerprint` and `new_id` are compared with them for many pod shapes, text for text.
"""
from __future__ import annotations

import base64
import hashlib
import json
import shlex
import uuid
from typing import Any

import attrs
import pytest

from config import load_text
from config.rules import restart_overrides
from mesoslib.resources import Resources, parse_resources_flag
from scheduler.core import actions as act
from scheduler.core import artifacts
from scheduler.core import events as ev
from scheduler.core.artifacts import Artifact, Served
from scheduler.core.decide import decide, initial_state
from scheduler.core.pods import desired_pods
from scheduler.core.state import Reservation, TaskRecord
from scheduler.core.taskinfo import (
    bootstrap_servers,
    executor_info,
    fingerprint,
    new_id,
    payload,
    task_data,
    task_info,
    voters,
)

pytestmark = pytest.mark.timeout(120)

# ------------------------------------------------------------------------------------------------
# the functions as they were before the fast path (scheduler/core/taskinfo.py at 47554f5)

_NS = uuid.UUID("6f1c3a52-8e0b-4c55-9d43-6f0e1d2a7b10")


def old_new_id(*parts: object) -> str:
    return str(uuid.uuid5(_NS, "/".join(str(p) for p in parts)))


def old_to_json(data) -> dict[str, Any]:
    doc = json.loads(json.dumps(attrs.asdict(data, recurse=True)))
    if doc["stream"] is not None:  # TaskData.to_json leaves out an app's unset new fields
        for key, unset in (("session_timeout_ms", None), ("artifacts", []), ("stuck_limit_s", 300.0), ("properties", {})):
            if doc["stream"][key] == unset:
                del doc["stream"][key]
    if doc["broker"] is not None and doc["broker"]["migration"] is None:  # likewise a broker's (issue 19)
        del doc["broker"]["migration"]
    return doc


def old_encode(data) -> str:
    raw = json.dumps(old_to_json(data), sort_keys=True, separators=(",", ":")).encode()
    return base64.b64encode(raw).decode("ascii")


def old_fingerprint(pod, data, executor: str = "") -> str:
    doc = old_to_json(data)
    if doc.get("stream"):
        doc["stream"]["bootstrap_servers"] = ""
    if doc.get("broker"):
        doc["broker"]["overrides"] = restart_overrides(doc["broker"]["overrides"])
        doc["broker"].pop("tls", None)
        for key in ("tls_port", "sasl_port", "sasl_mechanism", "inter_broker_tls"):
            if not doc["broker"].get(key):
                doc["broker"].pop(key, None)
    parts: list[Any] = [doc, pod.cpus, pod.mem_mb, pod.disk_mb]
    if executor:
        parts.append(executor)
    raw = json.dumps(parts, sort_keys=True).encode()
    return hashlib.sha256(raw).hexdigest()[:16]


def old_executor_info(spec, pod, executor_id, resources, served=None) -> dict[str, Any]:
    e = spec.executor
    variables = [{"name": "KMF_POD", "value": pod.name}]
    info: dict[str, Any] = {
        "executor_id": {"value": executor_id},
        "name": f"kmf executor for {pod.name}",
        "source": spec.name,
        "resources": resources.to_json("pre"),
    }
    if e.artifacts == "preinstalled":
        if e.pythonpath:
            variables.append({"name": "PYTHONPATH", "value": e.pythonpath})
        if e.kafka_cache:
            variables.append({"name": "KMF_KAFKA_CACHE", "value": e.kafka_cache})
        variables.append({"name": "KMF_PYTHON", "value": e.python})
        info["command"] = {"shell": False, "value": e.python, "arguments": [e.python, "-m", "executor"],
                           "environment": {"variables": variables}}
        return info
    bundle, kafka = artifacts.for_pod(spec, pod, served)
    fetched = [a for a in (bundle, kafka) if a is not None]
    exports = [f'{name}="$MESOS_SANDBOX/{a.folder}"' for name, a in
               (("PYTHONPATH", bundle), ("KMF_KAFKA_CACHE", kafka)) if a is not None]
    run = f"exec {shlex.quote(e.python)} -m executor"
    info["command"] = {
        "shell": True, "value": f"export {' '.join(exports)} && {run}" if exports else run,
        "uris": [{"value": a.uri, "extract": True, "cache": True, "executable": False} for a in fetched],
        "environment": {"variables": variables}}
    return info


def old_task_info(spec, pod, task_id, agent_id, data, task_resources, exec_resources, config_id, ports,
                  served=None) -> dict[str, Any]:
    grace = data.grace_period_s
    labels = [("kmf.service", spec.name), ("kmf.pod", pod.name), ("kmf.kind", pod.kind),
              ("kmf.config_id", config_id)]
    if pod.kind == "broker":
        labels.append(("kmf.node_id", str(pod.node_id)))
    port_names = [*pod.roles, *pod.listeners] if pod.kind == "broker" else []
    if data.broker is not None:
        ports = (*ports, *(p for p in (data.broker.tls_port, data.broker.sasl_port) if p is not None))
        if data.broker.metrics_port is not None:  # the JMX exporter's port (issue 17)
            ports, port_names = (*ports, data.broker.metrics_port), [*port_names, "metrics"]
    return {
        "name": pod.name,
        "task_id": {"value": task_id},
        "agent_id": {"value": agent_id},
        "resources": task_resources.to_json("pre"),
        "executor": old_executor_info(spec, pod, task_id, exec_resources, served),
        "data": old_encode(data),
        "labels": {"labels": [{"key": k, "value": v} for k, v in labels]},
        "kill_policy": {"grace_period": {"nanoseconds": int(grace * 1e9)}},
        "discovery": {
            "visibility": "FRAMEWORK", "name": f"{pod.name}.{spec.name}",
            "ports": {"ports": [{"number": p, "name": n, "protocol": "tcp"}
                                for p, n in zip(ports, port_names)]},
        },
    }


# ------------------------------------------------------------------------------------------------
# specs

HEAD = """\
name: %s
mesos: {master: 'zk://127.0.0.1:2181/mesos', role: kafka-role, principal: kmf}
zookeeper: {connect: '127.0.0.1:2181'}
"""
SPECS = {
    "kraft_tls_sasl_served": HEAD % "kafka" + """\
kafka:
  brokers: 3
  cpus: 1
  mem_mb: 1024
  heap_mb: 256
  disk_mb: 1000
  placement: ['hostname:UNIQUE']
  overrides: {log.retention.ms: '3600000', num.io.threads: '4'}
  tls: {enabled: true, inter_broker: true}
  sasl: {enabled: true}
apps:
  - {name: wc, count: 3, cpus: 0.5, mem_mb: 256, command: ['-m', 'streams.wordcount'], env: {A: '1', B: 'x y'}}
  - {name: wcj, count: 2, cpus: 0.25, mem_mb: 512, runtime: java, command: ['Demo', '{properties}']}
  - {name: sh, count: 2, cpus: 1, mem_mb: 128, runtime: command, command: [sleep, '1000']}
policies: {deploy_strategy: parallel, backoff_initial_s: 1, backoff_max_s: 8}
""",
    "zookeeper_preinstalled": HEAD % "zk-svc" + """\
kafka: {version: "3.9.2", mode: zookeeper, brokers: 2, cpus: 0.5, mem_mb: 768, heap_mb: 256, disk_mb: 500, rack_attribute: null}
apps:
  - {name: cmd, count: 3, cpus: 0.1, mem_mb: 128, runtime: command, command: [sh, '-c', 'echo "héllo" && sleep 9']}
executor: {artifacts: preinstalled, python: /opt/py/bin/python, pythonpath: /opt/kmf, kafka_cache: /opt/kafka}
policies: {deploy_strategy: parallel}
""",
    "kraft_separate_urls": HEAD % "sep" + """\
kafka: {brokers: 4, controllers: separate, cpus: 0.5, mem_mb: 512, heap_mb: 128, disk_mb: 100, replication: 2}
apps:
  - {name: py, count: 4, cpus: 0.2, mem_mb: 128, command: ['-m', 'x'], env: {K: v}}
executor:
  artifacts: urls
  python: /usr/bin/python3.11
  bundle_uri: https://repo.example/kmf/kmf-0.2.0-py3.11-linux-x86_64.tar.gz
  kafka_uris: {4.3.1: 'https://repo.example/kafka/kafka-4.3.1.tar.gz'}
policies: {deploy_strategy: serial}
""",
    # many small instances on few agents: packing, offers too small, and the reasons why
    "dense": HEAD % "dense" + """\
kafka: {brokers: 1, cpus: 1, mem_mb: 1024, heap_mb: 256, disk_mb: 1000}
apps:
  - {name: a, count: 40, cpus: 0.3, mem_mb: 128, runtime: command, command: [sleep, '1']}
  - {name: b, count: 25, cpus: 0.15, mem_mb: 700, runtime: command, command: [sleep, '2']}
policies: {deploy_strategy: parallel}
""",
}
SERVED = Served(Artifact("http://10.0.0.5:8080/v1/artifacts/aa/kmf.tar.gz", "kmf-0.1.0", "a" * 64),
                {"4.3.1": Artifact("http://10.0.0.5:8080/v1/artifacts/bb/kafka-4.3.1.tar.gz", "kafka", "b" * 64)})


def _spec(name: str):
    return load_text(SPECS[name], "test.yaml", env={})


# ------------------------------------------------------------------------------------------------
# golden: whole deploys through decide


def _jsonable(value: Any) -> Any:
    if attrs.has(type(value)):
        return {"@": type(value).__name__, **{f.name: _jsonable(getattr(value, f.name))
                                              for f in attrs.fields(type(value))}}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, frozenset):
        return sorted(_jsonable(v) for v in value)
    return value


def _drive(name: str) -> list[str]:
    """Every step's actions as JSON text (order and types kept), for a deploy with one relaunch."""
    spec = _spec(name)
    served = SERVED if spec.executor.artifacts == "served" else None
    state = initial_state(spec, "cfg-1", None, {}, {}, cluster_id="MkU3OEVBNTcwNTJENDM2Qk", served=served)
    free = {f"A{i}": parse_resources_flag("cpus:6;mem:8192;disk:20000;ports:[31000-31010,32000-32004]")
            for i in range(5)}
    if name == "dense":
        free = {"A0": free["A0"], "A1": parse_resources_flag("cpus:2;mem:2048;disk:2000;ports:[31000-31005]")}
        free["A5"] = parse_resources_flag("cpus:0.5;mem:100000;disk:0;ports:[1-2]")
        free["A6"] = parse_resources_flag("cpus(kafka-role):3;mem(kafka-role):3000;cpus:0.05;mem:100")
    tasks: dict[str, tuple[str, Resources]] = {}
    out: list[str] = []
    now = 1000.0
    offer_no = 0

    def step(event) -> tuple:
        nonlocal state
        state, actions = decide(state, event)
        out.append(json.dumps(_jsonable(actions)))
        out.append(json.dumps([state.last_placement, state.releasing]))
        return actions

    def offer_round() -> None:
        nonlocal offer_no
        docs, by_offer = [], {}
        for i, (agent, pool) in enumerate(free.items()):
            oid = f"O{offer_no}"
            offer_no += 1
            by_offer[oid] = agent
            docs.append({"id": {"value": oid}, "agent_id": {"value": agent}, "hostname": f"10.0.0.{i + 1}",
                         "resources": pool.to_json("pre"),
                         "attributes": [{"name": "zone", "type": "TEXT", "text": {"value": f"z{i % 3}"}}]})
        for a in step(ev.Offers(tuple(docs), now)):
            if not isinstance(a, act.Accept):
                continue
            agent = by_offer[a.offer_ids[0]]
            pool = free[agent]
            for op in a.operations:
                if op["type"] == "RESERVE":
                    res = Resources.from_json(op["reserve"]["resources"])
                    pool = pool - res.unreserve() + res
                elif op["type"] == "CREATE":
                    vol = Resources.from_json(op["create"]["volumes"])
                    pool = pool - Resources(v.without_volume() for v in vol) + vol
                elif op["type"] == "LAUNCH":
                    for t in op["launch"]["task_infos"]:
                        need = Resources.from_json(t["resources"]) + Resources.from_json(t["executor"]["resources"])
                        assert pool.contains(need)
                        pool = pool - need
                        tasks[t["task_id"]["value"]] = (agent, need)
            free[agent] = pool

    def status(task_id: str, state_: str, ready: bool = False) -> None:
        doc: dict[str, Any] = {"task_id": {"value": task_id}, "state": state_, "source": "SOURCE_EXECUTOR",
                               "agent_id": {"value": tasks[task_id][0]}}
        if ready:
            doc["labels"] = {"labels": [{"key": "kmf.ready", "value": "true"}]}
        if state_ == "TASK_FAILED":
            agent, need = tasks.pop(task_id)
            free[agent] = free[agent] + need
        step(ev.Status(doc, now))

    step(ev.Subscribed("fw", now))
    for _ in range(14):
        offer_round()
        for tid in list(tasks):
            rec = state.by_task_id(tid)
            if rec is not None and not rec.ready:
                status(tid, "TASK_RUNNING", ready=True)
        now += 1
        step(ev.Tick(now))
    # one broker and one app instance fail and are relaunched (in place, after the backoff)
    for pod in ("broker-0", next(p.name for p in desired_pods(spec) if p.kind == "stream")):
        status(state.tasks[pod].task_id, "TASK_FAILED")
    now += 30
    for _ in range(2):
        offer_round()
        now += 1
    out.append(json.dumps({k: r.to_json() for k, r in sorted(state.tasks.items())}))
    launched = sum(s.count('"LAUNCH"') for s in out)
    assert launched >= min(len(desired_pods(spec)), 20) + 2, (
        f"{name}: the scenario launched only {launched} tasks: "
        + "; ".join(f"{k} {r.state} {r.message}" for k, r in sorted(state.tasks.items())))
    return out


GOLDEN = {
    "dense": "6115136922c61dc8880ee6711c2706236169240e2e923832fe7e9d6c3a13028c",
    "kraft_separate_urls": "050d7f246622a36a568f329a9b64dbe193761327cd134f15822f30a8d0bfbe02",
    "kraft_tls_sasl_served": "817845a2730c04d3ad452a85dcc6976d3f25904d23d4e50c81e7f32be14bfa84",
    "zookeeper_preinstalled": "0fe03e62f476017ac70902f82937ecf700d81f62fdd8d6162b77a6c2e691848a",
}


@pytest.mark.parametrize("name", sorted(SPECS))
def test_a_whole_deploy_decides_exactly_what_it_did_before_the_fast_path(name):
    steps = _drive(name)
    digest = hashlib.sha256("\n".join(steps).encode()).hexdigest()
    assert digest == GOLDEN[name], f"{name}: the decisions changed:\n" + "\n".join(steps)[:20000]


# ------------------------------------------------------------------------------------------------
# reference: the new functions against the old ones, text for text


def _records_with_reservations(spec) -> dict[str, TaskRecord]:
    """Every broker with a reservation (ports from 31000, a volume), so broker payloads can be built."""
    out = {}
    for i, pod in enumerate(p for p in desired_pods(spec) if p.kind == "broker"):
        ports = list(range(31000 + 10 * i, 31000 + 10 * i + pod.ports_needed))
        res = parse_resources_flag(f"cpus:{pod.cpus + 0.1};mem:{pod.mem_mb + 64};disk:{pod.disk_mb};"
                                   f"ports:[{ports[0]}-{ports[-1]}]")
        reserved = res.reserve(spec.mesos.role, spec.mesos.principal,
                               (("kmf.service", spec.name), ("kmf.pod", pod.name), ("kmf.reservation", f"r{i}")))
        port_of = dict(zip(pod.roles, ports))
        out[pod.name] = TaskRecord(pod.name, "broker", reservation=Reservation(
            f"A{i}", f"10.0.0.{i + 1}", f"r{i}", tuple(reserved.to_json("pre")), port_of.get("broker"),
            port_of.get("controller"), {"zone": f"z{i % 3}"}))
    return out


@pytest.mark.parametrize("name", sorted(SPECS))
@pytest.mark.parametrize("served", [None, SERVED])
def test_task_info_and_fingerprint_match_the_plain_functions_for_every_pod_shape(name, served):
    spec = _spec(name)
    pods = desired_pods(spec)
    tasks = _records_with_reservations(spec)
    props = {"cluster_id": "MkU3OEVBNTcwNTJENDM2Qk"}
    quorum, boot = voters(tasks, pods), bootstrap_servers(tasks, pods)
    task_res = parse_resources_flag("cpus:0.25;mem:100;ports:[31001-31001]")
    exec_res = parse_resources_flag("cpus:0.1;mem:64")
    for launch in range(3):  # the same shapes again: from the templates made by the first pass
        for pod in pods:
            for bootstrap in (boot, "", "h\u00e9:1,\"q\":2"):
                data = task_data(spec, pod, tasks.get(pod.name), props, quorum, bootstrap)
                tid = f"{pod.name}__{old_new_id(spec.name, pod.name, launch, 3.5, 'O1')}"
                args = (spec, pod, tid, f"A{launch}", data, task_res, exec_res, f"cfg-{launch % 2}", (31001,), served)
                assert json.dumps(task_info(*args)) == json.dumps(old_task_info(*args)), pod.name
                assert executor_info(spec, pod, tid, exec_res, served) == old_executor_info(
                    spec, pod, tid, exec_res, served)
                for identity in ("", artifacts.identity(spec, pod, served)):
                    assert fingerprint(pod, data, identity) == old_fingerprint(pod, data, identity), pod.name


def test_stream_payloads_of_odd_values_match():
    spec = _spec("kraft_tls_sasl_served")
    pod = next(p for p in desired_pods(spec) if p.app == "wc")
    for index, boot in ((0, ""), (7, "a:1"), (123456, "\u2603:9,\x00:1"), (10**12, "x" * 300)):
        p = attrs.evolve(pod, name=f"wc-{index}", index=index)
        for cpus in (0.5, 1, 2.0):
            q = attrs.evolve(p, cpus=cpus)
            data = task_data(spec, q, None, {}, None, boot)
            assert data.encode() == old_encode(data)
            assert fingerprint(q, data, "") == old_fingerprint(q, data, "")
            args = (spec, q, "t", "a", data, Resources(), Resources(), "c", (), None)
            assert json.dumps(task_info(*args)) == json.dumps(old_task_info(*args))
    # a payload whose values differ from the spec's (not made by task_data) is still right
    data = task_data(spec, pod, None, {}, None, "b:1")
    other = attrs.evolve(data, grace_period_s=5, stream=attrs.evolve(data.stream, env={"Z": "1"}, instance=3))
    args = (spec, pod, "t", "a", other, Resources(), Resources(), "c", (), None)
    assert json.dumps(task_info(*args)) == json.dumps(old_task_info(*args))
    assert fingerprint(pod, other, "x") == old_fingerprint(pod, other, "x")


def test_new_id_is_the_uuid5_it_was():
    for parts in [("kafka", "broker-0", 1, 3.0, "O1"), ("s", "app-9", 12, 1e-7, "é"), (), ("",),
                  ("x" * 500, 10**30, -0.0, None)]:
        assert new_id(*parts) == old_new_id(*parts)


def test_templates_tell_apart_values_that_compare_equal():
    """1, 1.0 and True are equal dict keys but not equal JSON: each gets its own template."""
    spec = _spec("kraft_tls_sasl_served")
    pod = next(p for p in desired_pods(spec) if p.app == "wc")
    data = task_data(spec, pod, None, {}, None, "b:1")
    for grace in (30, 30.0, 0.0, -0.0, 0, False, 1, True, 1.0):
        for env in ({"A": "1"}, {"A": "1", "B": "2"}, {"B": "2", "A": "1"}):
            d = attrs.evolve(data, grace_period_s=grace, stream=attrs.evolve(data.stream, env=env))
            assert payload(d) == old_encode(d), (grace, env)
            for cpus in (1, 1.0, True):
                p = attrs.evolve(pod, cpus=cpus)
                assert fingerprint(p, d, "") == old_fingerprint(p, d, ""), (grace, cpus)
