"""Broker metrics (issue 17): every broker and controller reserves a port for Prometheus' JMX
exporter, names it "metrics" in its DiscoveryInfo, gets it in its payload, and its JVM is started
with the exporter agent on it; ``GET /v1/endpoints/metrics`` lists the targets as file-SD JSON."""
from __future__ import annotations

import json
import logging

import attrs

from executor.runtime.jvm import METRICS_RULES, JvmOptions, broker_argv
from executor.runtime.kafka_dist import DEFAULT_CACHE_DIR, runtime
from executor.workloads import metrics_agent_options
from kmfwire.taskdata import TaskData
from mesoslib.resources import Resources
from scheduler.api.scrape_targets import metrics_targets
from scheduler.core.pods import pods_by_name
from scheduler.core.taskinfo import metrics_port
from tests.helpers.api_backend import api, call
from tests.helpers.core_kit import BASE, deployed, subscribed

SEPARATE = BASE.replace("placement: ['hostname:UNIQUE']}",
                        "placement: ['hostname:UNIQUE'], controllers: separate}")


def _reserved_ports(rec) -> set[int]:
    reserved = Resources.from_json(list(rec.reservation.resources), "reservation")
    return {p for begin, end in reserved.ranges_of("ports") for p in range(begin, end + 1)}


def test_each_broker_reserves_a_metrics_port_named_in_discovery_and_given_in_the_payload():
    sim = subscribed()
    infos = sim.send.offers().launched("broker-0", "broker-1", "broker-2").launches
    pods = pods_by_name(sim.state.spec)
    assert pods["broker-0"].ports_needed == 3  # broker, controller, metrics
    assert pods["wc-0"].ports_needed == 0
    for info in infos:
        b = TaskData.decode(info["data"]).broker
        rec = sim.state.tasks[info["name"]]
        named = {p["name"]: p["number"] for p in info["discovery"]["ports"]["ports"]}
        assert named == {"broker": b.broker_port, "controller": b.controller_port, "metrics": b.metrics_port}
        assert len(set(named.values())) == 3
        # the port is the reservation's (Mesos holds it for the task), and the task's resources have it
        assert b.metrics_port in _reserved_ports(rec)
        task_ports = Resources.from_json(info["resources"], "task").ranges_of("ports")
        assert any(begin <= b.metrics_port <= end for begin, end in task_ports)
        assert metrics_port(pods[info["name"]], rec.reservation) == b.metrics_port


def test_controllers_of_their_own_get_a_metrics_port_too():
    sim = subscribed(SEPARATE, agents=6)
    sim.run_all_ready()
    groups = metrics_targets(sim.state)
    jobs = {g["labels"]["pod"]: g["labels"]["job"] for g in groups}
    assert jobs == {"controller-0": "kafka-controller", "controller-1": "kafka-controller",
                    "controller-2": "kafka-controller", "broker-0": "kafka-broker",
                    "broker-1": "kafka-broker", "broker-2": "kafka-broker"}
    assert {g["labels"]["node_id"] for g in groups} == {"1000", "1001", "1002", "0", "1", "2"}


def test_a_reservation_made_before_the_metrics_port_launches_without_one():
    """A broker reserved by an older kmf has ports for its listeners only: it keeps its payload
    (no metrics_port, so no fingerprint change and no roll) and is not a scrape target."""
    sim = deployed()
    old = {}
    for name in ("broker-0", "broker-1", "broker-2"):
        rec = sim.state.tasks[name]
        kept = [p for p in sorted(_reserved_ports(rec)) if p in (rec.reservation.broker_port,
                                                                  rec.reservation.controller_port)]
        docs = []
        for r in rec.reservation.resources:
            if r["name"] == "ports":
                r = {**r, "ranges": {"range": [{"begin": p, "end": p} for p in kept]}}
            docs.append(r)
        old[name] = attrs.evolve(rec, reservation=attrs.evolve(rec.reservation, resources=tuple(docs)))
    state = attrs.evolve(sim.state, tasks={**sim.state.tasks, **old})
    pod = pods_by_name(state.spec)["broker-0"]
    assert metrics_port(pod, old["broker-0"].reservation) is None
    assert metrics_targets(state) == []


def test_file_sd_lists_the_running_brokers_with_stable_labels():
    sim = deployed()
    groups = metrics_targets(sim.state)
    assert [g["labels"]["pod"] for g in groups] == ["broker-0", "broker-1", "broker-2"]
    for g in groups:
        rec = sim.state.tasks[g["labels"]["pod"]]
        port = metrics_port(pods_by_name(sim.state.spec)[rec.pod], rec.reservation)
        assert g["targets"] == [f"{rec.reservation.hostname}:{port}"]
        assert g["labels"] == {"service": "kafka", "pod": rec.pod, "job": "kafka-broker",
                               "node_id": rec.pod.split("-")[1], "roles": "broker,controller"}
    json.dumps(groups)  # what Prometheus reads: plain JSON
    # a broker whose task ended is not a target until it is launched again
    sim.send.status("broker-1", "TASK_FAILED")
    assert [g["labels"]["pod"] for g in metrics_targets(sim.state)] == ["broker-0", "broker-2"]
    # the same pure view for the same state
    assert metrics_targets(sim.state) == metrics_targets(sim.state)


def test_the_api_serves_the_file_sd_document():
    a = api()
    code, body = call(a, "GET", "/v1/endpoints/metrics")[:2]
    assert code == 200
    assert json.loads(body) == metrics_targets(a.backend.sim.state)
    code, body = call(a, "GET", "/v1/endpoints")[:2]
    assert code == 200 and json.loads(body) == ["broker", "metrics"]


def test_the_broker_jvm_gets_the_exporter_agent_on_its_host_and_metrics_port():
    sim = subscribed()
    info = sim.send.offers().launched("broker-0", "broker-1", "broker-2").launches[0]
    b = TaskData.decode(info["data"]).broker
    rt = runtime(b.kafka_version, DEFAULT_CACHE_DIR)
    assert rt.metrics_agent.is_file(), "make setup lays out the agent jar beside the Kafka libs"
    options = metrics_agent_options(b, rt)
    flag = f"-javaagent:{rt.metrics_agent}={b.host}:{b.metrics_port}:{METRICS_RULES}"
    assert options == (flag,)
    argv = broker_argv(rt, rt.home / "server.properties", JvmOptions(heap_mb=b.heap_mb, extra=options))
    assert argv.index(flag) < argv.index("-cp")  # a JVM option, before the main class


def test_a_runtime_without_the_agent_starts_the_broker_without_it_and_says_so(tmp_path, caplog):
    sim = subscribed()
    b = TaskData.decode(sim.send.offers().launched("broker-0", "broker-1", "broker-2").launches[0]["data"]).broker
    bare = runtime(b.kafka_version, tmp_path)  # a Kafka archive of the user's own: no agents/
    with caplog.at_level(logging.WARNING, logger="executor.workloads"):
        assert metrics_agent_options(b, bare) == ()
    assert str(bare.metrics_agent) in caplog.text and str(b.metrics_port) in caplog.text
    assert metrics_agent_options(attrs.evolve(b, metrics_port=None), bare) == ()



def test_the_payload_carries_the_metrics_port_and_omits_it_when_there_is_none():
    sim = subscribed()
    data = TaskData.decode(sim.send.offers().launched("broker-0", "broker-1", "broker-2").launches[0]["data"])
    assert TaskData.decode(data.encode()) == data and data.to_json()["broker"]["metrics_port"] > 0
    without = attrs.evolve(data, broker=attrs.evolve(data.broker, metrics_port=None))
    assert "metrics_port" not in without.to_json()["broker"]  # what an executor from before reads
    assert TaskData.decode(without.encode()) == without
