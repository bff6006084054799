"""A stream instance whose poll loop hangs while it still says RUNNING is restarted: kmf sees its
group's committed offset stay put while records wait (its lag samples), ends the instance that
Kafka says holds the partition, and the relaunched one commits everything. Judged by Kafka's own
view (the group's committed offset) and the master's (the first task ended, a second running)."""
from __future__ import annotations

import pytest
from confluent_kafka import ConsumerGroupTopicPartitions, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from tests.helpers.wait import wait_for

pytestmark = [pytest.mark.timeout(300), pytest.mark.kafka]

TOPIC, GROUP, RECORDS, STALL_AFTER = "stall-in", "stall-g", 1000, 200

# consumes and commits; after STALL_AFTER records (the first run only: the marker file) it stops
# polling for good but keeps its RUNNING state: the hang kmf's state lines cannot show
APP = '''
import os, sys, time
from confluent_kafka import Consumer
from kmfwire.app_state import state_line

e = os.environ
c = Consumer({"bootstrap.servers": e["KAFKA_BOOTSTRAP_SERVERS"], "group.id": "%s",
              "group.instance.id": e["KMF_GROUP_INSTANCE_ID"], "client.id": e["KMF_CLIENT_ID"],
              "session.timeout.ms": int(e["KMF_SESSION_TIMEOUT_MS"]), "enable.auto.commit": False,
              "auto.offset.reset": "earliest"})
c.subscribe(["%s"])
print(state_line("RUNNING"), flush=True)
done = 0
while True:
    msgs = c.consume(50, 1.0)
    if msgs:
        done += len(msgs)
        c.commit(asynchronous=False)
    if done >= %d and not os.path.exists(e["STALL_MARKER"]):
        open(e["STALL_MARKER"], "w").close()
        print("hanging", flush=True)
        time.sleep(3600)
''' % (GROUP, TOPIC, STALL_AFTER)


def committed(admin: AdminClient) -> int:
    res = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(GROUP, [TopicPartition(TOPIC, 0)])])
    return res[GROUP].result(timeout=10).topic_partitions[0].offset


def test_an_instance_that_stops_committing_while_behind_is_restarted(kmf_env, tmp_path):
    (tmp_path / "stall_app.py").write_text(APP)
    env = kmf_env(agents=1)
    app = {"name": "st", "count": 1, "cpus": 0.1, "mem_mb": 128, "runtime": "python",
           "uris": [str(tmp_path / "stall_app.py")], "command": ["-m", "stall_app"], "group": GROUP,
           "env": {"STALL_MARKER": str(tmp_path / "marker")}, "stuck_limit_s": 10}
    cfg = env.config(brokers=1, apps=[app])
    cfg["policies"]["lag_sample_interval_s"] = 2
    s = env.start_scheduler(cfg)
    wait_for(lambda: s.pod("broker-0").get("ready"), timeout=120, interval=1, what="broker ready")
    code, doc = s.request("POST", "/v1/topics", {"name": TOPIC, "partitions": 1})
    assert code in (200, 409), doc
    s.wait_deployed(timeout=180)
    first = s.pod("st-0")["task_id"]
    boot = s.get("/v1/endpoints/broker")["bootstrap_servers"]
    p = Producer({"bootstrap.servers": boot})
    for i in range(RECORDS):
        p.produce(TOPIC, str(i).encode())
    assert p.flush(30) == 0
    admin = AdminClient({"bootstrap.servers": boot})

    wait_for(lambda: (tmp_path / "marker").exists(), timeout=60, interval=0.5, what="the instance hanging")
    stuck_at = committed(admin)
    assert STALL_AFTER <= stuck_at < RECORDS, stuck_at
    # kmf ends it (its committed offset stays put with records behind for stuck_limit_s) and the
    # relaunched instance commits the rest
    wait_for(lambda: committed(admin) == RECORDS, timeout=120, interval=1, what="every record committed")
    assert s.pod("st-0")["task_id"] != first
    ended = {t["id"]: t["state"] for fw in env.lm.get("/master/frameworks")["frameworks"]
             for t in fw.get("completed_tasks", [])}
    assert ended.get(first) in ("TASK_KILLED", "TASK_FAILED"), ended
    assert f"not committing: {TOPIC}-0 stayed at offset {stuck_at}" in s.log(10**6)
