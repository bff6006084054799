"""A broker setting that needs a restart rolls across 3 brokers one at a time, each only after the
previous one caught up (no under-replicated partition left); the plan can be interrupted and
continued from the CLI; data is intact afterwards."""
from __future__ import annotations

import json
import threading
import time

import pytest
import yaml

from tests.helpers.wait import wait_for
from tests.helpers.kafka_clients import consume, produce_consume
from tests.helpers.operator_cli import kmf

pytestmark = [pytest.mark.timeout(420), pytest.mark.kafka]


def _stop_time(lm, task_id: str) -> float:
    """Wall-clock time of the first status saying the task was stopping or had ended."""
    for fw in lm.get("/master/frameworks")["frameworks"]:
        for task in fw.get("tasks", []) + fw.get("completed_tasks", []):
            if task["id"] == task_id:
                return min(st["timestamp"] for st in task["statuses"]
                           if st["state"] in ("TASK_KILLING", "TASK_KILLED", "TASK_FAILED", "TASK_FINISHED"))
    raise AssertionError(f"the master does not know task {task_id}")


def test_update_rolls_one_broker_at_a_time_with_no_under_replicated_partition_between(kmf_env, tmp_path):
    from confluent_kafka.admin import AdminClient
    env = kmf_env(agents=3)
    s = env.start_scheduler(brokers=3)
    s.wait_deployed()
    boot = s.get("/v1/endpoints/broker")["bootstrap_servers"]
    code, doc = s.request("POST", "/v1/topics", {"name": "roll", "partitions": 6, "replication": 3,
                                                  "config": {"min.insync.replicas": "2"}})
    assert code == 200, doc
    assert produce_consume(boot, "roll", 300) == set(range(300))
    before = {f"broker-{i}": s.pod(f"broker-{i}")["task_id"] for i in range(3)}

    # (asked at, answered at, under-replicated partitions, answering broker), sampled densely on
    # their own thread: the next restart may follow the previous broker's catch-up within a second
    samples: list[tuple[float, float, int, int]] = []
    restarts: dict[str, float] = {}
    stop = threading.Event()

    def sample():
        admin = AdminClient({"bootstrap.servers": boot, "log_level": 0})
        while not stop.is_set():
            try:
                asked = time.time()
                md = admin.list_topics(timeout=3)
                urp = sum(len(p.isrs) < len(p.replicas) for t in md.topics.values() for p in t.partitions.values())
                samples.append((asked, time.time(), urp, md.orig_broker_id))
            except Exception:  # noqa: BLE001 - a broker restarting
                pass
            time.sleep(0.1)

    def watch_pods():
        while not stop.is_set():
            for pod, tid in before.items():
                info = s.pod(pod)
                if pod not in restarts and (info["task_id"] != tid or info["state"] != "TASK_RUNNING"):
                    restarts[pod] = time.monotonic()  # the kill was issued (KILLING) or it is back
            time.sleep(0.3)
    threads = [threading.Thread(target=f, daemon=True) for f in (sample, watch_pods)]
    for t in threads:
        t.start()
    try:
        new = yaml.safe_load(s.path.read_text())
        new["kafka"]["heap_mb"] = 300
        path = tmp_path / "heap.yaml"
        path.write_text(yaml.safe_dump(new))
        out = kmf(s.url, "config", "update", str(path), "--json")
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["restart"] is True
        assert kmf(s.url, "plan", "interrupt", "update").returncode == 0
        time.sleep(8)
        assert len(restarts) <= 1  # at most the one already under way when interrupted
        assert json.loads(kmf(s.url, "plan", "show", "update", "--json").stdout)["status"] in ("WAITING", "COMPLETE")
        assert kmf(s.url, "plan", "continue", "update").returncode == 0
        wait_for(lambda: len(restarts) == 3 and s.plan("update")["status"] == "COMPLETE"
                 and s.plan("deploy")["status"] == "COMPLETE", timeout=300, interval=1,
                 what="every broker restarted and the update plan COMPLETE")
    finally:
        stop.set()
        for t in threads:
            t.join(10)
    # when each old task was told to stop, as its executor reported it to the master (TASK_KILLING
    # comes before the SIGTERM, so metadata answered before it shows the cluster before the stop)
    killed = {pod: _stop_time(env.lm, tid) for pod, tid in before.items()}
    order = sorted(killed, key=killed.get)
    for prev, pod in zip(order, order[1:]):
        # the samples saw the previous restart (so this check can fail) ...
        assert any(u > 0 for asked, _, u, _ in samples if killed[prev] <= asked < killed[pod]), (prev, pod)
        # ... and the last metadata Kafka gave before this restart has every replica back in sync
        before_it = [(u, b) for asked, answered, u, b in samples if killed[pod] - 5 <= asked and answered < killed[pod]]
        if not (before_it and before_it[-1][0] == 0):
            kills = [line for line in s.log(200_000).splitlines() if "killing task" in line]
            raise AssertionError(f"{pod} stopped at {killed[pod]:.3f} with under-replicated partitions "
                                 f"just before (count, answering broker): {before_it[-10:]}; stop times "
                                 f"{killed}; kmf: {kills}")
    assert consume(boot, "roll", 300) == set(range(300))
    info = json.loads(kmf(s.url, "pod", "info", "broker-0", "--json").stdout)
    assert info["ready"] and info["node_id"] == 0
