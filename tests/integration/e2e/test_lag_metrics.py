"""Consumer-group lag on a deployed service: a group commits part of a topic, the leader's sampler
finds the uncommitted count, /metrics (scraped over HTTP, with the service label) and GET /v1/lag
show it, and it grows by what is produced while the consumer is stopped."""
from __future__ import annotations

import time
import urllib.request
import uuid

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers.wait import wait_for

pytestmark = [pytest.mark.timeout(300), pytest.mark.kafka]


def scrape(url: str, service: str, group: str, topic: str) -> float | None:
    with urllib.request.urlopen(url + "/metrics", timeout=10) as resp:
        text = resp.read().decode()
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name == "kmf_consumer_group_lag" and s.labels == {"service": service, "group": group, "topic": topic}:
                return s.value
    return None


def test_consumer_group_lag_is_scraped_and_grows_while_the_consumer_is_stopped(kmf_env):
    from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
    started = time.monotonic()
    env = kmf_env(agents=1)
    group, topic = f"lag-{uuid.uuid4().hex[:6]}", "lagged"
    s = env.start_scheduler(brokers=1, apps=[{"name": "lagapp", "count": 0, "cpus": 0.25, "mem_mb": 256,
                                              "command": ["-c", "pass"], "group": group}])
    service = s.config["name"]
    wait_for(lambda: s.pod("broker-0").get("ready"), timeout=150, interval=1, what="broker ready")
    code, doc = s.request("POST", "/v1/topics", {"name": topic, "partitions": 1})
    assert code in (200, 409), doc
    boot = s.get("/v1/endpoints/broker")["bootstrap_servers"]

    p = Producer({"bootstrap.servers": boot})
    for i in range(50):
        p.produce(topic, f"r{i}".encode())
    assert p.flush(30) == 0
    c = Consumer({"bootstrap.servers": boot, "group.id": group, "enable.auto.commit": False})

    def commit() -> bool:  # the first commit creates __consumer_offsets: NOT_COORDINATOR for a while
        try:
            c.commit(offsets=[TopicPartition(topic, 0, 20)], asynchronous=False)  # 20 of 50 consumed
            return True
        except KafkaException:
            return False
    wait_for(commit, timeout=60, interval=1, what="the group's commit")
    c.close()  # the consumer stops
    committed_at = time.time()

    def sampled_after(t: float) -> dict | None:
        doc = s.get("/v1/lag")
        return doc if doc["sampled_at"] is not None and doc["sampled_at"] > t else None

    wait_for(lambda: sampled_after(committed_at), timeout=40, interval=1, what="a lag sample after the commit")
    assert scrape(s.url, service, group, topic) == 30.0
    doc = s.get("/v1/lag")
    assert doc["groups"][group]["lag"] == 30 and doc["groups"][group]["topics"][topic]["lag"] == 30
    assert doc["groups"][group]["topics"][topic]["partitions"]["0"] == {"committed": 20, "end": 50, "lag": 30}
    assert doc["apps"]["lagapp"] == {"group": group, "lag": 30}

    for i in range(25):  # produced while the consumer is stopped
        p.produce(topic, f"s{i}".encode())
    assert p.flush(30) == 0
    produced_at = time.time()
    wait_for(lambda: sampled_after(produced_at), timeout=40, interval=1, what="a lag sample after producing")
    assert scrape(s.url, service, group, topic) == 55.0
    doc = s.get("/v1/lag")
    assert doc["groups"][group]["lag"] == 55 and doc["apps"]["lagapp"]["lag"] == 55
    assert doc["round_s"] < 5, doc["round_s"]
    print(f"lag e2e: {time.monotonic() - started:.1f} s, sample round {doc['round_s']} s")
