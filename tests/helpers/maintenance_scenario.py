"""Issue 16 (Mesos maintenance) end to end, the same on localmesos and on Apache Mesos.

A service of 3 KRaft brokers, a topic of replication 3 with min.insync.replicas 2 whose ISR is
sampled every 0.2 s. The operator schedules a maintenance window for one broker's agent (the
master's ``/master/maintenance/schedule``); kmf stops that broker gracefully through its stop gate
and accepts the inverse offer (``/master/maintenance/status``); the operator takes the machine
DOWN (the master removes the agent, which shuts down), brings it UP and starts the agent again;
kmf relaunches the broker in place: same node id, same persistent volume, in Kafka's metadata with
every replica in sync. No sample may show a partition below min.insync.replicas.
"""
from __future__ import annotations

import json
import time
import urllib.request
from typing import Any

from tests.helpers.kafka_clients import consume, produce_consume
from tests.helpers.kafka_views import IsrSampler
from tests.helpers.wait import wait_for

TOPIC = "maint"
NS = 1_000_000_000


def post(lm: Any, path: str, body: Any) -> tuple[int, str]:
    req = urllib.request.Request(lm.url + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=15) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def master_tasks(lm: Any, pod: str) -> list[dict]:
    """Every task of `pod` the master knows (running and completed), oldest first."""
    state = lm.get("/master/state")
    out = []
    for fw in state["frameworks"] + state.get("completed_frameworks", []):
        for task in fw.get("tasks", []) + fw.get("completed_tasks", []):
            if task["id"].split("__")[0] == pod:
                out.append(task)
    return out


def volume_of(lm: Any, pod: str) -> tuple[str, str] | None:
    """(hostname, persistence id) of the pod's persistent volume as the master's agents report it."""
    for slave in lm.get("/master/slaves")["slaves"]:
        for role_res in (slave.get("reserved_resources_full") or {}).values():
            for res in role_res:
                disk = res.get("disk") or {}
                labels = {l["key"]: l.get("value") for l in
                          ((res.get("reservations") or [{}])[-1].get("labels") or {}).get("labels", [])}
                if disk.get("persistence") and labels.get("kmf.pod") == pod:
                    return slave["hostname"], disk["persistence"]["id"]
    return None


def answers(lm: Any) -> list[str]:
    status = lm.get("/master/maintenance/status")
    return [s["status"] for d in status.get("draining_machines", []) for s in d.get("statuses", [])]


def _service_with_topic(env: Any, config: dict) -> tuple[Any, str]:
    """A deployed service with the topic (replication 3, min ISR 2) holding 100 records."""
    s = env.start_scheduler(config=config)
    s.wait_deployed(timeout=400)
    boot = s.get("/v1/endpoints/broker")["bootstrap_servers"]
    code, doc = s.request("POST", "/v1/topics", {"name": TOPIC, "partitions": 6, "replication": 3,
                                                  "config": {"min.insync.replicas": "2"}})
    assert code == 200, doc
    assert produce_consume(boot, TOPIC, 100) == set(range(100))
    return s, boot


def run(env: Any, pod: str = "broker-1") -> dict[str, float]:
    """The scenario (module docstring); returns the measured figures."""
    from confluent_kafka.admin import AdminClient

    s, boot = _service_with_topic(env, env.config(brokers=3))
    node = int(pod.split("-")[1])
    info = s.pod(pod)
    host = info["reservation"]["hostname"]
    volume = info["reservation"]["persistence_id"]
    old_task = info["task_id"]
    old_agent = info["reservation"]["agent_id"]
    index = env.agent_index(host)
    agent = env.lm.agents[index]
    machine = {"hostname": host, "ip": agent.ip}
    figures: dict[str, float] = {}
    with IsrSampler(boot, TOPIC) as sampler:
        wait_for(sampler.full_now, timeout=90, interval=0.5, what="every replica of the topic in sync")
        # the operator schedules a window of 2 minutes starting in 30 s for the broker's machine
        t0 = time.time()
        window = {"machine_ids": [machine],
                  "unavailability": {"start": {"nanoseconds": int((t0 + 30) * NS)},
                                     "duration": {"nanoseconds": 120 * NS}}}
        assert post(env.lm, "/master/maintenance/schedule", {"windows": [window]}) == (200, "")

        def stopped():
            tasks = [t for t in master_tasks(env.lm, pod) if t["id"] == old_task]
            return tasks and tasks[0]["state"] in ("TASK_KILLED", "TASK_FINISHED", "TASK_FAILED") and tasks[0]
        task = wait_for(stopped, timeout=120, interval=0.2, what=f"{pod} stopped for the maintenance")
        figures["schedule_to_stopped_s"] = time.time() - t0
        assert task["state"] == "TASK_KILLED", f"{pod} did not stop gracefully: {task['state']}"
        wait_for(lambda: "ACCEPT" in answers(env.lm), timeout=60, interval=0.2,
                 what="the inverse offer accepted (master's /master/maintenance/status)")
        figures["schedule_to_accepted_s"] = time.time() - t0
        maint = s.pod(pod).get("maintenance")
        assert maint and maint["hostname"] == host and maint["mode"] == "stop in place", s.pod(pod)
        # the broker is gone from Kafka's metadata, it leads nothing; the others still serve
        admin = AdminClient({"bootstrap.servers": boot, "log_level": 0})
        md = admin.list_topics(TOPIC, timeout=10)
        assert node not in md.brokers and all(p.leader != node for p in md.topics[TOPIC].partitions.values())
        time.sleep(3)  # still held: not relaunched while the machine is in its window
        assert s.pod(pod)["task_id"] == old_task

        # the window: the machine goes DOWN (its agent removed and shut down), then UP again
        assert post(env.lm, "/master/machine/down", [machine]) == (200, "")
        wait_for(lambda: agent.proc.poll() is not None, timeout=60, interval=0.5,
                 what="the agent of the DOWN machine to shut down")
        assert env.lm.get("/master/maintenance/status").get("down_machines") == [machine]
        time.sleep(2)
        assert s.pod(pod)["task_id"] == old_task
        assert post(env.lm, "/master/machine/up", [machine]) == (200, "")
        up = time.time()
        env.lm.restart_agent(index)

        def back():
            p = s.pod(pod)
            return p["ready"] and p["task_id"] != old_task and p
        info = wait_for(back, timeout=240, interval=0.5, what=f"{pod} relaunched after the window")
        figures["up_to_ready_s"] = time.time() - up
        assert info["hostname"] == host and info["reservation"]["persistence_id"] == volume, info
        assert "maintenance" not in info
        # whether the agent came back under a new id (kmf finds its reservation by host either way)
        figures["new_agent_id"] = float(info["reservation"]["agent_id"] != old_agent)
        assert info["agent_id"] == info["reservation"]["agent_id"] and info["agent_id"] in {
            sl["id"] for sl in env.lm.get("/master/slaves")["slaves"] if sl["hostname"] == host}
        assert volume_of(env.lm, pod) == (host, volume)

        def in_sync():
            md = admin.list_topics(TOPIC, timeout=10)
            return node in md.brokers and all(len(p.isrs) == 3 for p in md.topics[TOPIC].partitions.values())
        wait_for(in_sync, timeout=180, interval=0.5, what=f"node {node} back in Kafka's metadata, ISR full")
        figures["up_to_isr_full_s"] = time.time() - up
        synced = time.time()
        wait_for(lambda: sampler.in_sync_since(synced), timeout=30, interval=0.3, what="a fresh full sample")
        figures["smallest_isr"] = sampler.smallest(since=t0)
        figures["samples"] = len([1 for at, _, _ in sampler.samples if at >= t0])
    assert figures["smallest_isr"] >= 2, f"a partition fell below min.insync.replicas: {figures}"
    ids = {t["id"] for t in master_tasks(env.lm, pod)}
    assert len(ids) == 2, ids  # the one stopped for the window and the one relaunched after it
    assert consume(boot, TOPIC, 100) == set(range(100))  # every record acknowledged before is there
    return figures


def run_move(env: Any, pod: str = "broker-1") -> dict[str, float]:
    """A machine drained for good (a window without a duration): the broker moves with its node id
    to another agent, through the gate, and the inverse offer is accepted once it has left."""
    from confluent_kafka.admin import AdminClient

    config = env.config(brokers=3)
    config["policies"]["maintenance_move_after_s"] = 60
    s, boot = _service_with_topic(env, config)
    node = int(pod.split("-")[1])
    info = s.pod(pod)
    host, volume, old_task = info["reservation"]["hostname"], info["reservation"]["persistence_id"], info["task_id"]
    agent = env.lm.agents[env.agent_index(host)]
    machine = {"hostname": host, "ip": agent.ip}
    figures: dict[str, float] = {}
    with IsrSampler(boot, TOPIC) as sampler:
        wait_for(sampler.full_now, timeout=90, interval=0.5, what="every replica of the topic in sync")
        t0 = time.time()
        window = {"machine_ids": [machine], "unavailability": {"start": {"nanoseconds": int((t0 + 10) * NS)}}}
        assert post(env.lm, "/master/maintenance/schedule", {"windows": [window]}) == (200, "")

        def moved():
            p = s.pod(pod)
            return p["ready"] and p["reservation"] and p["reservation"]["hostname"] != host and p
        info = wait_for(moved, timeout=240, interval=0.5, what=f"{pod} running on another agent")
        figures["schedule_to_moved_s"] = time.time() - t0
        [old] = [t for t in master_tasks(env.lm, pod) if t["id"] == old_task]
        assert old["state"] == "TASK_KILLED", old
        assert info["reservation"]["persistence_id"] != volume
        wait_for(lambda: "ACCEPT" in answers(env.lm), timeout=60, interval=0.2,
                 what="the inverse offer accepted (master's /master/maintenance/status)")
        wait_for(lambda: volume_of(env.lm, pod) == (info["reservation"]["hostname"],
                                                   info["reservation"]["persistence_id"]),
                 timeout=60, interval=0.5, what="the old reservation released, the new one in place")
        admin = AdminClient({"bootstrap.servers": boot, "log_level": 0})

        def in_sync():
            md = admin.list_topics(TOPIC, timeout=10)
            return node in md.brokers and all(len(p.isrs) == 3 for p in md.topics[TOPIC].partitions.values())
        wait_for(in_sync, timeout=240, interval=0.5, what=f"node {node} in Kafka's metadata on its new agent, ISR full")
        figures["schedule_to_isr_full_s"] = time.time() - t0
        figures["smallest_isr"] = sampler.smallest(since=t0)
        figures["samples"] = len([1 for at, _, _ in sampler.samples if at >= t0])
    assert figures["smallest_isr"] >= 2, f"a partition fell below min.insync.replicas: {figures}"
    assert consume(boot, TOPIC, 100) == set(range(100))
    return figures
