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
from tests.integration.e2e.test_deploy import consume, produce_consume
from tests.integration.e2e.test_operating import kmf

pytestmark = [pytest.mark.timeout(420), pytest.mark.kafka]


def _stop_time(lm, task_id: str) -> float:
    """Wall-clock time of the first status saying the task was stopping or had ended."""
    for fw in lm.get("/master/frameworks")["frameworks"]:
        for task in fw.get("tasks", []) + fw.get("completed_tasks", []):
            if task["id"] == task_id:
                return min(st["timestamp"] for st in task["statuses"]
                           if st["state"] in ("TASK_KILLING", "TASK_KILLED", "TASK_FAILED", "TASK_FINISHED"))
    raise AssertionError(f"the master does not know task {task_id}")


@pytest.mark.xfail(strict=False, reason="open bug (issue 6): in about half the runs at the end of "
                   "2026-12-02 a broker was restarted while the test's metadata showed every partition "
                   "under-replicated for the 3.5 s before its kill; kmf's rolling gate saw none")
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

    samples: list[tuple[float, int]] = []
    restarts: dict[str, float] = {}
    stop = threading.Event()

    def watch():
        admin = AdminClient({"bootstrap.servers": boot, "log_level": 0})
        while not stop.is_set():
            try:
                asked = time.time()  # the metadata shows the cluster as it was when asked
                md = admin.list_topics(timeout=3)
                urp = sum(len(p.isrs) < len(p.replicas) for t in md.topics.values() for p in t.partitions.values())
                samples.append((asked, urp))
            except Exception:  # noqa: BLE001 - a broker restarting
                pass
            for pod, tid in before.items():
                info = s.pod(pod)
                if pod not in restarts and (info["task_id"] != tid or info["state"] != "TASK_RUNNING"):
                    restarts[pod] = time.monotonic()  # the kill was issued (KILLING) or it is back
            time.sleep(0.3)
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
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
        watcher.join(10)
    # when each old task was told to stop, as the master recorded it (the watcher above notices
    # only after its own metadata call returns, which a stopping broker can delay by seconds)
    killed = {pod: _stop_time(env.lm, tid) for pod, tid in before.items()}
    order = sorted(killed, key=killed.get)
    assert order[-1] in ("broker-0", "broker-1", "broker-2")
    for pod in order[1:]:
        # just before each later restart, the brokers had caught up completely
        before_it = [u for t, u in samples if killed[pod] - 5 <= t < killed[pod] - 1.5]
        assert before_it and before_it[-1] == 0, (pod, before_it)
    assert consume(boot, "roll", 300) == set(range(300))
    info = json.loads(kmf(s.url, "pod", "info", "broker-0", "--json").stdout)
    assert info["ready"] and info["node_id"] == 0
