"""End to end: kmf scheduler + localmesos + kmf executor + real Kafka brokers."""
from __future__ import annotations

import os
import signal

import pytest

from tests.helpers.fixtures_scheduler import java_pid_of
from tests.helpers.kafka_clients import consume, produce_consume
from tests.helpers.wait import wait_for

pytestmark = [pytest.mark.timeout(420), pytest.mark.kafka]


def test_three_kraft_brokers_deploy_recover_in_place_and_survive_scheduler_restart(kmf_env):
    env = kmf_env(agents=3)
    s = env.start_scheduler(brokers=3)
    plan = s.wait_deployed()
    assert [p["name"] for p in plan["phases"]] == ["quorum"]
    ep = s.get("/v1/endpoints/broker")
    assert ep["broker_ids"] == [0, 1, 2] and len(ep["address"]) == 3
    hosts = {a.split(":")[0] for a in ep["address"]}
    assert len(hosts) == 3  # hostname:UNIQUE
    status, created = s.request("POST", "/v1/topics", {"name": "kept", "partitions": 3, "replication": 3,
                                                       "config": {"min.insync.replicas": "2"}})
    assert status == 200, created
    assert produce_consume(ep["bootstrap_servers"], "kept") == set(range(200))

    # a broker JVM killed -9: relaunched in place (same agent, same volume, same node id)
    before = s.pod("broker-1")
    pid = java_pid_of(before["task_id"])
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    after = wait_for(lambda: (lambda p: p if p["task_id"] != before["task_id"] and p["ready"] else None)(
        s.pod("broker-1")), timeout=120, interval=1, what="broker-1 relaunched and ready")
    assert after["agent_id"] == before["agent_id"]
    assert after["reservation"]["persistence_id"] == before["reservation"]["persistence_id"]
    assert consume(ep["bootstrap_servers"], "kept", 200) == set(range(200))

    # the scheduler is killed and restarted: same framework, tasks untouched
    framework = s.get("/v1/health")["framework_id"]
    tasks = {n: s.pod(n)["task_id"] for n in ("broker-0", "broker-1", "broker-2")}
    s.kill(signal.SIGKILL)
    s2 = env.start_scheduler(config=s.config)
    wait_for(lambda: s2.get("/v1/health")["mesos_connected"], timeout=30, what="re-subscribed")
    assert s2.get("/v1/health")["framework_id"] == framework
    s2.wait_deployed(timeout=60)
    assert {n: s2.pod(n)["task_id"] for n in tasks} == tasks
