"""The Mesos master crashes and comes back while the deploy is under way (tasks launched, not
all running yet): the scheduler subscribes again with the same framework, reconciles, and the
deploy completes with one live task per pod, no task id used twice, and every broker where
Kafka says it is."""
from __future__ import annotations

import os
import random
import time
from collections import Counter

import pytest
from confluent_kafka.admin import AdminClient

from tests.helpers.wait import WaitTimeout, wait_for

pytestmark = [pytest.mark.timeout(420), pytest.mark.kafka]


def test_master_restart_mid_deploy_completes_without_duplicates(kmf_env):
    env = kmf_env(agents=3)
    s = env.start_scheduler(brokers=3)

    def launched_not_done():
        plan = s.plan()
        pods = [s.pod(f"broker-{i}") for i in range(3)]
        return plan.get("status") != "COMPLETE" and any(p.get("task_id") for p in pods)
    wait_for(launched_not_done, timeout=120, interval=0.2, what="a deploy under way (tasks launched)")
    framework = s.get("/v1/health")["framework_id"]
    # a different moment of the deploy each run (launch sent, executors starting, brokers booting)
    seed = int(os.environ.get("KMF_RESTART_SEED") or random.randrange(2**31))
    delay = random.Random(seed).uniform(0.0, 3.0)
    print(f"master restart {delay:.2f}s into the deploy (KMF_RESTART_SEED={seed})")
    time.sleep(delay)
    env.lm.restart_master()
    try:
        s.wait_deployed(timeout=300)
    except WaitTimeout as exc:
        raise WaitTimeout(f"restart {delay:.2f}s in (KMF_RESTART_SEED={seed}): {exc}\nmaster log (end):\n{env.lm.master_log()[-8000:]}") from None
    health = s.get("/v1/health")
    assert health["framework_id"] == framework and health["mesos_connected"]

    fws = [fw for fw in env.lm.get("/master/frameworks")["frameworks"] if fw["id"] == framework]
    assert len(fws) == 1
    tasks = fws[0].get("tasks", []) + fws[0].get("unreachable_tasks", []) + fws[0].get("completed_tasks", [])
    ids = Counter(t["id"] for t in tasks)
    assert all(n == 1 for n in ids.values()), ids
    live = Counter(t["name"] for t in fws[0].get("tasks", [])
                   if t["state"] in ("TASK_STAGING", "TASK_STARTING", "TASK_RUNNING"))
    assert live == Counter({"broker-0": 1, "broker-1": 1, "broker-2": 1}), live
    for i in range(3):
        assert s.pod(f"broker-{i}")["task_id"] in ids

    endpoint = s.get("/v1/endpoints/broker")
    admin = AdminClient({"bootstrap.servers": endpoint["bootstrap_servers"], "log_level": 3})
    nodes = wait_for(lambda: (lambda n: n if len(n) == 3 else None)(
        {n.id: f"{n.host}:{n.port}" for n in admin.describe_cluster().result(10).nodes}),
        timeout=60, interval=1, what="3 brokers in Kafka's metadata")
    assert nodes == dict(zip(endpoint["broker_ids"], endpoint["address"]))
