"""Issue 16, data movement, against a running service on localmesos (5 agents, KRaft, a topic
with replication 3 and min.insync.replicas 2 whose ISR is sampled every 0.2 s), judged by Kafka's
own view (AdminClient metadata and broker configs) and the master's reservations:

- `kmf scale brokers 5` ends with a rebalance that puts replicas on the new brokers (the plan
  `rebalance`, throttled, in batches), never taking a partition below min ISR, and the throttles
  are gone afterwards;
- `kmf rebalance --dry-run` then has nothing to move;
- `kmf pod decommission broker-3 --wait` empties broker-3 and removes it while broker-4 keeps its
  node id (Kafka's metadata: brokers 0, 1, 2, 4; broker-4's task never restarted);
- `kmf scale brokers 3 --drain --wait` moves every replica off broker-4, then removes it: Kafka
  knows brokers 0-2 only, every record is still readable, and the master holds no reservation of
  the removed brokers any more;
- and the removed brokers are unregistered from KRaft (Kafka's own list, fenced brokers included,
  has brokers 0-2 only), so a topic created afterwards gets all its replicas on live brokers.
"""
from __future__ import annotations

import json
import subprocess

import pytest
from confluent_kafka.admin import AdminClient

from executor.runtime.kafka_dist import Mode
from tests.helpers.fixtures_kafka import kafka_runtime

from tests.helpers.kafka_clients import consume, produce_consume
from tests.helpers.kafka_views import IsrSampler, broker_values
from tests.helpers.master_views import reservation_ids
from tests.helpers.operator_cli import kmf
from tests.helpers.wait import wait_for

pytestmark = [pytest.mark.timeout(900), pytest.mark.kafka]

TOPIC = "moving"
RECORDS = 3000


def replicas_by_broker(boot: str) -> dict[int, int]:
    from confluent_kafka.admin import AdminClient
    md = AdminClient({"bootstrap.servers": boot, "log_level": 0}).list_topics(timeout=10)
    out = {b: 0 for b in md.brokers}
    for topic in md.topics.values():
        for p in topic.partitions.values():
            for b in p.replicas:
                out[b] = out.get(b, 0) + 1
    return out


def registered_brokers(boot: str) -> set[int]:
    """Every broker id Kafka has registered, fenced ones included (kafka-cluster list-endpoints)."""
    out = subprocess.run(["java", "-cp", kafka_runtime(Mode.KRAFT).classpath, "org.apache.kafka.tools.ClusterTool",
                          "list-endpoints", "--bootstrap-server", boot, "--include-fenced-brokers"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    return {int(line.split()[0]) for line in out.stdout.splitlines() if line.split() and line.split()[0].isdigit()}


def assignment(boot: str, topic: str) -> dict[int, tuple[tuple[int, ...], tuple[int, ...]]]:
    """partition → (replicas, ISR) in Kafka's metadata."""
    meta = AdminClient({"bootstrap.servers": boot, "log_level": 0}).list_topics(topic, timeout=10).topics.get(topic)
    if meta is None or meta.error is not None:
        return {}
    return {p: (tuple(m.replicas), tuple(m.isrs)) for p, m in meta.partitions.items()}


def test_scale_out_rebalances_and_drain_empties_then_removes_a_broker(kmf_env):
    env = kmf_env(agents=5)
    s = env.start_scheduler(brokers=3, rebalance={"max_moves": 25, "throttle_mb_s": 20})
    s.wait_deployed()
    boot = s.get("/v1/endpoints/broker")["bootstrap_servers"]
    code, doc = s.request("POST", "/v1/topics", {"name": TOPIC, "partitions": 8, "replication": 3,
                                                  "config": {"min.insync.replicas": "2"}})
    assert code == 200, doc
    assert produce_consume(boot, TOPIC, RECORDS) == set(range(RECORDS))
    with IsrSampler(boot, TOPIC) as sampler:
        wait_for(sampler.full_now, timeout=60, interval=0.5, what="every replica of the topic in sync")

        # --- scale-out: the new brokers get replicas without anyone asking
        out = kmf(s.url, "scale", "brokers", "5")
        assert out.returncode == 0, out
        wait_for(lambda: s.plan("rebalance").get("status") == "COMPLETE", timeout=420, interval=1,
                 what="the scale-out's rebalance COMPLETE")
        plan = s.plan("rebalance")
        assert plan["reason"] == "scale-out" and plan["done"] == plan["moves"] > 0, plan
        assert len(plan["phases"]) > 1  # in batches of max_moves
        # every moved partition's size came from Kafka's log dirs (an unused offsets partition is 0 bytes)
        assert all(step["bytes"] is not None for ph in plan["phases"] for step in ph["steps"]), plan
        assert plan["bytes_copied"] == plan["bytes_to_copy"], plan
        held = replicas_by_broker(s.get("/v1/endpoints/broker")["bootstrap_servers"])
        assert set(held) == {0, 1, 2, 3, 4} and min(held.values()) >= 4, held  # 8 × 3 + offsets topics
        wait_for(lambda: not any(broker_values(boot, "leader.replication.throttled.rate").values())
                 or all(v in (None, "", "9223372036854775807")
                        for v in broker_values(boot, "leader.replication.throttled.rate").values()),
                 timeout=60, interval=2, what="the replication throttles removed")
        assert sampler.smallest() >= 2, f"a partition fell to ISR {sampler.smallest()} during the rebalance"

        out = kmf(s.url, "rebalance", "--dry-run", "--json")
        assert out.returncode == 0, out
        assert json.loads(out.stdout)["moves"] == [], out.stdout

        # --- decommission: broker-3 empties and goes; broker-4 keeps node id 4 and its task
        pid3 = s.pod("broker-3")["reservation"]["persistence_id"]
        task4 = s.pod("broker-4")["task_id"]
        assert pid3 in reservation_ids(env.lm)
        out = kmf(s.url, "pod", "decommission", "broker-3", "--wait", "--wait-timeout", "420", timeout=480)
        assert out.returncode == 0, out
        assert "decommissioning broker-3" in out.stdout, out.stdout
        wait_for(lambda: s.get("/v1/config/target")["config"]["kafka"]["retired"] == [3], timeout=60, interval=1,
                 what="node id 3 retired in the target config")
        wait_for(lambda: pid3 not in reservation_ids(env.lm), timeout=120, interval=1,
                 what="broker-3's reservation released on the master")
        boot = s.get("/v1/endpoints/broker")["bootstrap_servers"]
        wait_for(lambda: set(replicas_by_broker(boot)) == {0, 1, 2, 4}, timeout=120, interval=2,
                 what="Kafka's metadata with brokers 0, 1, 2 and 4")
        assert s.pod("broker-4")["task_id"] == task4  # not restarted, not renumbered
        assert sampler.smallest() >= 2, f"a partition fell to ISR {sampler.smallest()} during the decommission"

        # --- drain: broker-4 empties, then goes with its reservation
        pid4 = s.pod("broker-4")["reservation"]["persistence_id"]
        out = kmf(s.url, "scale", "brokers", "3", "--drain", "--wait", "--wait-timeout", "420", timeout=480)
        assert out.returncode == 0, out
        assert "draining broker-4" in out.stdout, out.stdout
        wait_for(lambda: s.get("/v1/config/target")["config"]["kafka"]["brokers"] == 3, timeout=60, interval=1,
                 what="the target config at 3 brokers")
        wait_for(lambda: pid4 not in reservation_ids(env.lm), timeout=120, interval=1,
                 what="broker-4's reservation released on the master")
        boot = s.get("/v1/endpoints/broker")["bootstrap_servers"]
        wait_for(lambda: set(replicas_by_broker(boot)) == {0, 1, 2}, timeout=120, interval=2,
                 what="Kafka's metadata with brokers 0-2 only")
        assert sampler.smallest() >= 2, f"a partition fell to ISR {sampler.smallest()} during the drain"
    assert consume(boot, TOPIC, RECORDS) == set(range(RECORDS))

    # --- the removed brokers are gone from KRaft too: Kafka lists brokers 0-2 only, fenced ones
    # included, and a topic created now gets no replica on a removed broker (before, a fenced
    # registration of broker 3 or 4, each its own rack, took a replica of most new partitions)
    wait_for(lambda: registered_brokers(boot) == {0, 1, 2}, timeout=120, interval=2,
             what="Kafka's registrations (fenced included) down to brokers 0-2")
    code, doc = s.request("POST", "/v1/topics", {"name": "after-removals", "partitions": 12, "replication": 3})
    assert code == 200, doc
    placed = wait_for(lambda: (lambda m: m if len(m) == 12 else None)(assignment(boot, "after-removals")),
                      timeout=60, interval=1, what="the new topic's partitions in Kafka's metadata")
    off = {p: r for p, (r, _) in placed.items() if not set(r) <= {0, 1, 2}}
    assert not off, f"partitions of a new topic placed on removed brokers: {off}"
    wait_for(lambda: all(len(isr) == 3 for _, isr in assignment(boot, "after-removals").values()),
             timeout=60, interval=1, what="every partition of the new topic fully in sync")
