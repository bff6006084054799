"""Issue 15, disk full: one broker's data volume fills up while acks=all records flow.

Each agent's persistent volumes live on a small tmpfs of their own (mounted by the test at the
agent's `volumes/` directory before kmf reserves anything, so the volume path is the one Mesos
would use). A filler file takes all the space left on broker-0's. Kafka then fails that broker's
only log dir and the JVM stops. What must follow, judged by the real system's own view:

- kmf reports it: the pod's status message says the data volume is full, naming it;
- kmf keeps the volume: the master still holds broker-0's reservation and persistent volume, the
  partition directories are still on the volume, and broker-0 is not placed anywhere else, also
  past `permanent_failure_timeout_s` (a move would release, i.e. destroy, the full volume);
- the other two brokers keep taking acks=all writes (min.insync.replicas 2);
- once the filler is deleted, broker-0 comes back in place, on the same volume, catches up (Kafka's
  metadata shows every partition's ISR full again) and every acknowledged record is read back.
"""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from kmfwire.task_states import VOLUME_FULL
from tests.helpers.kafka_clients import consume
from tests.helpers.maintenance_scenario import volume_of
from tests.helpers.volumes import TmpfsMounts, fill
from tests.helpers.wait import wait_for

pytestmark = [pytest.mark.timeout(600), pytest.mark.kafka]

TOPIC = "filling"
VOLUME_FS_MB = 160  # room for a broker's logs here; small enough to fill in a moment


@pytest.fixture
def volume_mounts():
    """Mounts a tmpfs at each given agent's volumes/ directory; unmounted at teardown."""
    mounts = TmpfsMounts(VOLUME_FS_MB)

    def mount(work_dir: Path) -> Path:
        try:
            return mounts.mount(work_dir)
        except RuntimeError as exc:
            pytest.skip(str(exc))

    yield mount
    mounts.unmount_all()


def task_ids(env, pod: str) -> set[str]:
    """Every task id of `pod` the master knows, running or completed."""
    return {t["id"] for fw in env.lm.get("/master/frameworks")["frameworks"]
            for t in fw.get("tasks", []) + fw.get("completed_tasks", []) if t["id"].split("__")[0] == pod}


def partition_dirs(volume: Path) -> set[str]:
    return {p.name for p in volume.rglob(f"{TOPIC}-*") if p.is_dir()}


def test_a_full_data_volume_is_reported_kept_and_recovered(kmf_env, volume_mounts):
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient

    env = kmf_env(agents=3)
    mounts = {agent.work_dir: volume_mounts(agent.work_dir) for agent in env.lm.agents}
    config = env.config(brokers=3)
    # short enough that the test would see kmf move the broker (and release its volume) if it did
    config["policies"] = {**config.get("policies", {}), "permanent_failure_timeout_s": 20,
                          "backoff_initial_s": 1, "backoff_max_s": 5}
    s = env.start_scheduler(config=config)
    s.wait_deployed()
    boot = s.get("/v1/endpoints/broker")["bootstrap_servers"]
    code, doc = s.request("POST", "/v1/topics", {"name": TOPIC, "partitions": 3, "replication": 3,
                                                  "config": {"min.insync.replicas": "2"}})
    assert code == 200, doc

    acked: set[int] = set()

    def on_delivery(err, msg) -> None:
        if err is None:
            acked.add(int(msg.value()))

    producer = Producer({"bootstrap.servers": boot, "acks": "all", "enable.idempotence": True,
                         "linger.ms": 5, "message.timeout.ms": 120000})
    sent = 0

    def send(count: int) -> None:
        nonlocal sent
        for _ in range(count):
            producer.produce(TOPIC, str(sent).encode(), on_delivery=on_delivery)
            sent += 1
            producer.poll(0)

    send(2000)
    assert producer.flush(60) == 0 and len(acked) == 2000

    victim = s.pod("broker-0")
    pid = victim["reservation"]["persistence_id"]
    agent = env.lm.agents[env.agent_index(victim["hostname"])]
    mount = mounts[agent.work_dir]
    volume = next(p for p in mount.rglob(pid) if p.is_dir())
    before_dirs = partition_dirs(volume)
    assert len(before_dirs) == 3, before_dirs
    tasks_before = task_ids(env, "broker-0")

    filler = fill(mount)
    t_full = time.monotonic()
    # writes go on: each record reaches broker-0 as a follower, and its log dir fails
    # the failed status lasts only until the relaunch (backoff from 1 s): judge the pod as seen
    # then, not as asked again a moment later (seen: "preparing" by then)
    deadline, pod = time.monotonic() + 120, s.pod("broker-0")
    while time.monotonic() < deadline and VOLUME_FULL not in pod.get("message", ""):
        send(200)
        producer.poll(0.5)
        pod = s.pod("broker-0")
    assert pod["message"].startswith(f"{VOLUME_FULL}: {volume}"), pod
    print(f"disk full: reported {time.monotonic() - t_full:.1f}s after the filler: {pod['message'][:300]!r}")

    # the others keep taking acks=all writes while broker-0 is out
    n = len(acked)
    send(1000)
    assert producer.flush(90) == 0, "records unacknowledged with two brokers in sync"
    assert len(acked) >= n + 1000

    # past permanent_failure_timeout_s: still its volume, still on its agent, nothing released
    time.sleep(30)
    pod = s.pod("broker-0")
    assert pod["hostname"] == victim["hostname"] and pod["reservation"]["persistence_id"] == pid, pod
    assert volume.is_dir() and partition_dirs(volume) == before_dirs
    assert volume_of(env.lm, "broker-0") == (victim["hostname"], pid), "the master no longer holds broker-0's volume"
    assert not pod.get("ready"), pod
    print(f"disk full: held in place past permanent_failure_timeout_s: {pod.get('message', '')[:200]!r}")

    # space freed: it comes back in place, with its data, and catches up
    filler.unlink()
    t_free = time.monotonic()
    wait_for(lambda: s.pod("broker-0").get("ready"), timeout=180, interval=1, what="broker-0 ready again")
    pod = s.pod("broker-0")
    assert pod["hostname"] == victim["hostname"] and pod["reservation"]["persistence_id"] == pid, pod
    admin = AdminClient({"bootstrap.servers": boot})

    def isr_full() -> bool:
        md = admin.list_topics(TOPIC, timeout=10).topics[TOPIC]
        return all(len(p.isrs) == 3 for p in md.partitions.values())
    wait_for(isr_full, timeout=180, interval=1, what="every partition's ISR full again")
    print(f"disk full: broker-0 ready {time.monotonic() - t_free:.1f}s after the filler was removed; "
          f"ISR full; {len(acked)} records acknowledged")
    tasks_after = task_ids(env, "broker-0")
    assert tasks_after - tasks_before, "broker-0 never relaunched"
    assert partition_dirs(volume) == before_dirs and volume_of(env.lm, "broker-0") == (victim["hostname"], pid)
    assert producer.flush(60) == 0
    got = consume(boot, TOPIC, len(acked))
    missing = acked - got
    assert not missing, f"{len(missing)} acknowledged records missing, e.g. {sorted(missing)[:10]}"
