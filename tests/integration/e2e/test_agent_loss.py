"""A broker's agent dies: the broker is replaced on another agent with the same node id, the
quorum's new address rolls the other brokers, and data written before is still there."""
from __future__ import annotations

import pytest

from tests.helpers.wait import wait_for
from tests.helpers.kafka_clients import consume, produce_consume

pytestmark = [pytest.mark.timeout(420), pytest.mark.kafka]


def test_broker_replaced_on_another_agent_when_its_agent_is_lost(kmf_env):
    env = kmf_env(agents=4)
    s = env.start_scheduler(brokers=3)
    s.wait_deployed()
    boot = s.get("/v1/endpoints/broker")["bootstrap_servers"]
    code, doc = s.request("POST", "/v1/topics", {"name": "safe", "partitions": 3, "replication": 3,
                                                  "config": {"min.insync.replicas": "2"}})
    assert code == 200, doc
    assert produce_consume(boot, "safe", 300) == set(range(300))

    victim = s.pod("broker-2")
    env.lm.kill_agent(env.agent_index(victim["hostname"]))

    def replaced():
        p = s.pod("broker-2")
        return p if p.get("ready") and p["hostname"] != victim["hostname"] else None
    new = wait_for(replaced, timeout=180, interval=1, what="broker-2 ready on another agent")
    assert new["node_id"] == 2 and new["reservation"]["persistence_id"] != victim["reservation"]["persistence_id"]
    # the controller moved: the others restart with the new quorum, one at a time
    wait_for(lambda: s.plan("update")["status"] == "COMPLETE" and s.plan("deploy")["status"] == "COMPLETE",
             timeout=240, interval=2, what="update and deploy plans COMPLETE again")
    boot = s.get("/v1/endpoints/broker")["bootstrap_servers"]
    assert consume(boot, "safe", 300) == set(range(300))
