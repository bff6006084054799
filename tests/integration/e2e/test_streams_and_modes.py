"""The two word-count apps under kmf (Python EOS app and Kafka Streams' WordCountDemo from the
assembled runtime), and the same kind of deploy in ZooKeeper mode (Kafka 3.9), seen by kcat."""
from __future__ import annotations

import struct
import subprocess
import time
import uuid

import pytest

from tests.helpers.wait import wait_for
from tests.helpers.kafka_clients import consume, produce_consume

pytestmark = [pytest.mark.timeout(420), pytest.mark.kafka]

APPS = [
    {"name": "wordcount", "count": 1, "cpus": 0.25, "mem_mb": 256, "runtime": "python",
     "command": ["-m", "streams.wordcount", "--input", "text", "--output", "counts"]},
    {"name": "wordcount-java", "count": 1, "cpus": 0.25, "mem_mb": 512, "runtime": "java",
     "command": ["org.apache.kafka.streams.examples.wordcount.WordCountDemo", "{properties}"],
     # ready only once RUNNING: an instance that started before its topics (ERROR) is restarted soon
     "stuck_limit_s": 60},
]


def latest(bootstrap: str, topic: str, decode, want: dict, timeout: float = 120) -> dict:
    from confluent_kafka import Consumer
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"check-{uuid.uuid4().hex[:6]}",
                  "auto.offset.reset": "earliest", "isolation.level": "read_committed"})
    c.subscribe([topic])
    seen: dict = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(seen.get(k) != v for k, v in want.items()):
        m = c.poll(1)
        if m is not None and not m.error() and m.key():
            seen[m.key().decode()] = decode(m.value())
    c.close()
    return seen


def test_python_and_kafka_streams_word_counts(kmf_env):
    from confluent_kafka import Producer
    env = kmf_env(agents=2)
    s = env.start_scheduler(brokers=1, apps=APPS)
    wait_for(lambda: s.pod("broker-0").get("ready"), timeout=120, interval=1, what="broker ready")
    for topic in ("text", "counts", "streams-plaintext-input", "streams-wordcount-output"):
        code, doc = s.request("POST", "/v1/topics", {"name": topic, "partitions": 1})
        assert code in (200, 409), doc
    s.wait_deployed(timeout=180)  # apps that started before their topics existed are relaunched
    boot = s.get("/v1/endpoints/broker")["bootstrap_servers"]
    p = Producer({"bootstrap.servers": boot})
    for line in ["mesos runs kafka", "kafka runs streams", "kafka"]:
        p.produce("text", line.encode())
        p.produce("streams-plaintext-input", line.encode())
    assert p.flush(30) == 0
    want = {"kafka": 3, "runs": 2, "mesos": 1, "streams": 1}
    assert latest(boot, "counts", lambda v: int(v.decode()), want) == want
    java = latest(boot, "streams-wordcount-output", lambda v: struct.unpack(">q", v)[0], want)
    assert {k: java.get(k) for k in want} == want


def test_zookeeper_mode_brokers_with_racks_seen_by_kcat(kmf_env, zk_client):
    from confluent_kafka.admin import AdminClient
    env = kmf_env(agents=4)
    s = env.start_scheduler(brokers=3, version="3.9.2", mode="zookeeper")
    s.wait_deployed()
    boot = s.get("/v1/endpoints/broker")["bootstrap_servers"]
    assert produce_consume(boot, "zk-mode", 100) == set(range(100))
    # the brokers registered under the service's chroot in the same ZooKeeper
    assert sorted(zk_client.get_children(f"/{env.name}/kafka/brokers/ids")) == ["0", "1", "2"]
    out = subprocess.run(["kcat", "-L", "-b", boot], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    for i, address in enumerate(s.get("/v1/endpoints/broker")["address"]):
        assert f"broker {i} at {address}" in out.stdout
    admin = AdminClient({"bootstrap.servers": boot})  # referenced while its future runs
    cluster = admin.describe_cluster().result(30)
    racks = {n.id: n.rack for n in cluster.nodes}
    zones = {a.ip: f"{'abcdefgh'[a.index % 8]}" for a in env.lm.agents}
    for i in range(3):
        assert racks[i] == zones[s.pod(f"broker-{i}")["hostname"]]
    # a scale-out rebalances onto the new broker: Kafka 4's reassignment tool (the 3.9 runtime has
    # none) moving replicas between 3.9 brokers in ZooKeeper mode
    code, doc = s.request("POST", "/v1/scale", {"kind": "brokers", "count": 4})
    assert code == 200, doc
    wait_for(lambda: s.plan("rebalance").get("status") == "COMPLETE", timeout=300, interval=1,
             what="the scale-out's rebalance COMPLETE")
    md = admin.list_topics(timeout=10)
    held = {b: sum(b in p.replicas for t in md.topics.values() for p in t.partitions.values()) for b in md.brokers}
    assert set(held) == {0, 1, 2, 3} and held[3] > 0, held
    assert consume(boot, "zk-mode", 100) == set(range(100))
