"""ZooKeeper → KRaft migration in the core (scheduler/core/zk_migration*.py): a config update to
KRaft with dedicated controllers starts it; each phase renders the pods' tasks as Kafka's
procedure says and advances only when every pod of the phase runs that and serves (and, for the
metadata copy, when Kafka's /migration znode says so); refusals name the reason."""
from __future__ import annotations

import pytest

from kmfwire.taskdata import TaskData
from scheduler.core import events as ev
from scheduler.core import zk_migration as zm
from tests.helpers.core_kit import Scenario, deployed, spec

ZK = """\
name: kafka
mesos: {master: 'zk://127.0.0.1:2181/mesos'}
zookeeper: {connect: '127.0.0.1:2181'}
kafka: {version: '3.9.2', mode: %s, brokers: 2, cpus: 1, mem_mb: 1024, heap_mb: 256, disk_mb: 1000%s}
policies: {backoff_initial_s: 1, backoff_max_s: 8, permanent_failure_timeout_s: 30}
"""
ZK_SPEC = ZK % ("zookeeper", "")
KRAFT_SPEC = ZK % ("kraft", ", controllers: separate")
ZK_ID = "MkU3OEVBNTcwNTJENDM2Qg"


def _task(sim: Scenario, pod: str) -> TaskData:
    """What the running task of `pod` was launched with."""
    rec = sim.record(pod)
    info = sim.tasks[rec.task_id]["info"]
    return TaskData.decode(info["executor"]["data"] if "executor" in info and "data" in info["executor"] else info["data"])


def _observe(sim: Scenario, copied: bool = False, cluster_id: str | None = ZK_ID):
    sim.now += 3
    return sim.send.event(ev.MigrationObserved(sim.now, cluster_id, copied))


def _settle(sim: Scenario, copied: bool = False) -> None:
    """Rolls done (each task kmf stops ends, the new one is ready, Kafka healthy), with an
    observation after each step."""
    for _ in range(8):
        for rec in list(sim.state.tasks.values()):
            if rec.kill_reason is not None and rec.task_id in sim.tasks:
                sim.send.status(rec.pod, "TASK_KILLED")
        sim.run_all_ready(3)
        sim.send.kafka_healthy()
        _observe(sim, copied)


def test_a_migration_runs_kafkas_phases_in_order_and_ends_in_kraft():
    sim = deployed(ZK_SPEC)
    before = {p: _task(sim, p).broker for p in ("broker-0", "broker-1")}
    assert all(b.mode == "zookeeper" and b.migration is None for b in before.values())
    sim.send.command("update_config", spec=spec(KRAFT_SPEC)).replied(ok=True)
    assert zm.phase(sim.state.properties) == "cluster-id"
    assert sim.state.spec.kafka.mode == "zookeeper"  # nothing moves before the cluster id is known
    _observe(sim, cluster_id=None)
    assert "cluster's id" in sim.plans()["migration"]["phases"][0]["message"]

    _observe(sim)  # the id read from ZooKeeper: the KRaft spec is adopted, controllers launch
    assert sim.state.properties["cluster_id"] == ZK_ID
    assert zm.phase(sim.state.properties) == "controllers" and sim.state.spec.kafka.mode == "kraft"
    sim.run_all_ready(4)
    ctl = _task(sim, "controller-0").broker
    assert (ctl.mode, ctl.migration, ctl.cluster_id) == ("kraft", "controller", ZK_ID)
    assert ctl.zookeeper_connect == "127.0.0.1:2181/kmf/kafka/kafka"
    assert _task(sim, "broker-0").broker == before["broker-0"]  # the brokers did not roll
    sim.send.kafka_healthy()

    _observe(sim)  # every controller serves: the brokers roll into migration mode
    assert zm.phase(sim.state.properties) == "brokers-migrating"
    _settle(sim)
    b = _task(sim, "broker-1").broker
    assert (b.mode, b.migration, b.zookeeper_connect) == ("zookeeper", "zk-broker", before["broker-1"].zookeeper_connect)
    assert [v.node_id for v in b.voters] == [1000]
    # every broker migrating, but the copy is not done: it waits
    assert zm.phase(sim.state.properties) == "brokers-migrating"
    assert "copy of the metadata" in sim.plans()["migration"]["phases"][2]["message"]

    _observe(sim, copied=True)
    assert zm.phase(sim.state.properties) == "brokers-kraft"
    _settle(sim, copied=True)
    b = _task(sim, "broker-0").broker
    assert (b.mode, b.migration, b.node_id, b.cluster_id) == ("kraft", None, 0, ZK_ID)
    assert zm.phase(sim.state.properties) in ("finalize", "done")
    _settle(sim, copied=True)
    assert zm.phase(sim.state.properties) == "done"
    ctl = _task(sim, "controller-0").broker
    assert (ctl.migration, ctl.zookeeper_connect) == (None, None)
    assert sim.plans()["migration"]["status"] == "COMPLETE"


def test_a_migration_needs_dedicated_controllers_the_same_version_and_nothing_else():
    sim = deployed(ZK_SPEC)
    out = sim.send.command("update_config", spec=spec(ZK % ("kraft", ", controllers: combined")))
    out.replied(ok=False)
    assert "needs dedicated controllers" in out.reply.result["message"]
    sim.send.command("update_config", spec=spec(KRAFT_SPEC.replace("3.9.2", "4.3.1"))).replied(ok=False)
    assert "keep 3.9.2 during the migration" in sim.expect.reply.result["message"]
    sim.send.command("update_config", spec=spec(KRAFT_SPEC.replace("brokers: 2", "brokers: 3"))).replied(ok=False)
    assert "changes only kafka.mode" in sim.expect.reply.result["message"]
    assert zm.phase(sim.state.properties) is None


def test_no_other_update_and_no_replace_while_a_migration_is_under_way():
    sim = deployed(ZK_SPEC)
    sim.send.command("update_config", spec=spec(KRAFT_SPEC)).replied(ok=True)
    _observe(sim)
    sim.send.command("update_config", spec=spec(KRAFT_SPEC.replace("heap_mb: 256", "heap_mb: 300"))).replied(ok=False)
    assert "migration is under way (phase controllers)" in sim.expect.reply.result["message"]
    sim.run_all_ready(4)
    for pod in ("controller-0", "broker-1"):  # not even forced: a node formatted anew mid-migration
        sim.send.command("replace_pod", pod=pod, confirm=True, force=True).replied(ok=False).nothing_killed()
        assert "refused while a ZooKeeper → KRaft migration is under way" in sim.expect.reply.result["message"]


@pytest.mark.parametrize("ph, broker, controller", [
    ("cluster-id", ("zookeeper", None), ("kraft", "controller")),
    ("controllers", ("zookeeper", None), ("kraft", "controller")),
    ("brokers-migrating", ("zookeeper", "zk-broker"), ("kraft", "controller")),
    ("brokers-kraft", ("kraft", None), ("kraft", "controller")),
    ("finalize", ("kraft", None), ("kraft", None)),
    ("done", ("kraft", None), ("kraft", None)),
])
def test_each_phase_renders_the_pods_as_kafkas_procedure_says(ph, broker, controller):
    from scheduler.core.pods import desired_pods

    pods = {p.name: p for p in desired_pods(spec(KRAFT_SPEC))}
    props = {zm.PHASE: ph}
    assert zm.rendering(props, pods["broker-0"], "kraft") == broker
    assert zm.rendering(props, pods["controller-0"], "kraft") == controller
    assert zm.rendering({}, pods["broker-0"], "kraft") == ("kraft", None)


def test_an_interrupted_migration_finishes_its_phase_and_holds_before_the_next():
    sim = deployed(ZK_SPEC)
    sim.send.command("update_config", spec=spec(KRAFT_SPEC)).replied(ok=True)
    _observe(sim)
    sim.run_all_ready(4)
    sim.send.kafka_healthy()
    _observe(sim)
    _settle(sim)
    _observe(sim, copied=True)
    assert zm.phase(sim.state.properties) == "brokers-kraft"
    sim.send.command("plan_interrupt", plan="migration").replied(ok=True)
    _settle(sim, copied=True)  # the brokers' roll to KRaft completes, finalize does not start
    assert zm.phase(sim.state.properties) == "brokers-kraft"
    assert _task(sim, "broker-0").broker.mode == "kraft" and _task(sim, "controller-0").broker.migration == "controller"
    view = sim.plans()["migration"]
    assert view["status"] == "WAITING" and "kmf plan continue migration" in view["phases"][3]["message"]
    sim.send.command("plan_interrupt", plan="migration", phase="finalize").replied(ok=False)
    sim.send.command("plan_continue", plan="migration").replied(ok=True)
    _settle(sim, copied=True)
    assert zm.phase(sim.state.properties) == "done"
