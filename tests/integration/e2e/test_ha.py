"""Two schedulers of one service: one leads, the other stands by (reads from ZooKeeper, redirects
writes) and takes over when the leader is killed, keeping the framework and every task."""
from __future__ import annotations

import signal
import time

import pytest

from localmesos import procs
from tests.helpers.wait import wait_for

pytestmark = [pytest.mark.timeout(300), pytest.mark.kafka]


def test_standby_takes_over_with_the_same_framework_and_tasks(kmf_env):
    env = kmf_env(agents=1)
    first = env.start_scheduler(brokers=1)
    first.wait_deployed()
    second_config = dict(first.config, api=dict(first.config["api"], port=procs.free_port("127.0.0.1")))
    second = env.start_scheduler(config=second_config)
    health = second.get("/v1/health")
    assert health["role"] == "standby" and first.get("/v1/health")["role"] == "leader"
    # a standby answers reads from ZooKeeper and sends writes to the leader
    assert second.pod("broker-0")["task_id"] == first.pod("broker-0")["task_id"]
    code, doc = second.request("POST", "/v1/pod/broker-0/restart")
    assert code == 307 and doc["location"] == first.url + "/v1/pod/broker-0/restart"
    framework = first.get("/v1/health")["framework_id"]
    task = first.pod("broker-0")["task_id"]

    started = time.monotonic()
    first.kill(signal.SIGKILL)
    wait_for(lambda: second.get("/v1/health")["role"] == "leader" and second.get("/v1/health")["mesos_connected"],
             timeout=60, interval=0.5, what="standby took over")
    took = time.monotonic() - started
    print(f"takeover in {took:.1f}s")
    assert second.get("/v1/health")["framework_id"] == framework
    second.wait_deployed(timeout=60)
    assert second.pod("broker-0")["task_id"] == task
