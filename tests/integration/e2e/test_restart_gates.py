"""Issue 12, defects 4, 7 and 8 against a running service (3 KRaft brokers, a topic with
replication 3 and min.insync.replicas 2, its ISR sampled with AdminClient every 0.2 s):

- two quick `pod restart`s through the API: the second is refused (409, naming the broker that
  is down), the smallest ISR Kafka showed stays at 2, and the master's task ids show that only one
  broker was restarted;
- `plan continue update --step nosuch` / `--phase nosuch` are refused with what exists, nothing stored;
- a rolling update's plan is never COMPLETE while Kafka does not have every replica back in sync.
"""
from __future__ import annotations

import json
import time

import pytest
import yaml

from tests.helpers.kafka_views import IsrSampler
from tests.helpers.wait import wait_for
from tests.helpers.kafka_clients import produce_consume
from tests.helpers.operator_cli import kmf

pytestmark = [pytest.mark.timeout(600), pytest.mark.kafka]

TOPIC = "gated"


def task_ids(env) -> dict[str, set[str]]:
    """Every task id of the service the master knows (running and completed), by pod."""
    out: dict[str, set[str]] = {}
    for fw in env.lm.get("/master/frameworks")["frameworks"]:
        for task in fw.get("tasks", []) + fw.get("completed_tasks", []):
            out.setdefault(task["id"].split("__")[0], set()).add(task["id"])
    return out


def test_restart_gate_plan_steering_and_an_honest_update_plan(kmf_env, tmp_path):
    from confluent_kafka.admin import AdminClient
    env = kmf_env(agents=3)
    s = env.start_scheduler(brokers=3)
    s.wait_deployed()
    boot = s.get("/v1/endpoints/broker")["bootstrap_servers"]
    code, doc = s.request("POST", "/v1/topics", {"name": TOPIC, "partitions": 6, "replication": 3,
                                                  "config": {"min.insync.replicas": "2"}})
    assert code == 200, doc
    assert produce_consume(boot, TOPIC, 100) == set(range(100))
    sampler = IsrSampler(boot, TOPIC)
    sampler.thread.start()
    try:
        wait_for(sampler.full_now, timeout=60, interval=0.5, what="every replica of the topic in sync")
        before = task_ids(env)

        # --- defect 4: two quick restarts; the first may wait for a fresh sample of kmf's watcher
        def first_restart():
            code, doc = s.request("POST", "/v1/pod/broker-0/restart")
            assert code in (200, 409), (code, doc)
            return doc if code == 200 else None
        t0 = time.time()
        wait_for(first_restart, timeout=60, interval=0.5, what="the first restart accepted")
        code, doc = s.request("POST", "/v1/pod/broker-2/restart")
        assert code == 409, (code, doc)
        assert doc["force_required"] is True and "broker-0" in doc["error"], doc
        wait_for(lambda: s.pod("broker-0")["ready"] and s.pod("broker-0")["task_id"] not in before["broker-0"],
                 timeout=180, interval=0.5, what="broker-0 back and ready")
        wait_for(lambda: s.plan("deploy")["status"] == "COMPLETE", timeout=120, interval=0.5,
                 what="deploy plan COMPLETE (broker-0 in sync again)")
        assert sampler.full_now()  # COMPLETE means Kafka has every replica back
        after = task_ids(env)
        assert len(after["broker-0"] - before["broker-0"]) == 1 and after["broker-1"] == before["broker-1"] \
            and after["broker-2"] == before["broker-2"], after
        smallest = sampler.smallest(since=t0)
        assert smallest == 2, f"the smallest ISR seen was {smallest} (2 shows the sampler saw the restart)"

        # --- defect 8: steering names that do not exist are refused, nothing is stored
        for flag in ("--step", "--phase"):
            out = kmf(s.url, "plan", "continue", "update", flag, "nosuch")
            assert out.returncode != 0, out
            assert "nosuch" in out.stderr + out.stdout and ("broker-0" in out.stderr + out.stdout
                                                             or "quorum" in out.stderr + out.stdout), out
        assert not [k for k in s.get("/v1/state/properties") if k.startswith("plan.")]

        # --- defect 7: the update plan is COMPLETE only with every replica back in sync
        new = yaml.safe_load(s.path.read_text())
        new["kafka"]["heap_mb"] = 300
        path = tmp_path / "heap.yaml"
        path.write_text(yaml.safe_dump(new))
        out = kmf(s.url, "config", "update", str(path), "--json")
        assert out.returncode == 0, out.stderr
        t1 = time.time()
        admin = AdminClient({"bootstrap.servers": boot, "log_level": 0})
        seen = []
        deadline = time.monotonic() + 420
        while time.monotonic() < deadline:
            plan = s.plan("update")
            seen.append(plan["status"])
            if plan["status"] == "COMPLETE":
                md = admin.list_topics(TOPIC, timeout=10)
                isr = {p.id: len(p.isrs) for p in md.topics[TOPIC].partitions.values()}
                ids = task_ids(env)
                assert all(n == 3 for n in isr.values()), (
                    f"the update plan said COMPLETE while Kafka's ISR sizes were {isr}: {json.dumps(plan)}")
                assert all(ids[f"broker-{i}"] - after[f"broker-{i}"] for i in range(3)), \
                    f"COMPLETE before every broker was restarted: {ids}"
                assert all(s.pod(f"broker-{i}")["ready"] for i in range(3))
                break
            time.sleep(0.2)
        else:
            raise AssertionError(f"the update plan never completed: {seen[-5:]} {json.dumps(s.plan('update'))}")
        assert "IN_PROGRESS" in seen or "PENDING" in seen
        assert sampler.smallest(since=t1) >= 2
    finally:
        sampler.stopped.set()
        sampler.thread.join(10)
    print(f"smallest ISR seen: {sampler.smallest()}, {len(sampler.samples)} samples")
