"""The operator's week in one scenario (issue 12), driven through the `kmf` CLI against a running
service, checked on Kafka's own view and the master's task ids, with every partition's ISR sampled
every 0.2 s throughout:

live setting → restart-needing change (rolled, gated, honest plan) → scheduler kill -9 (nothing
reverted, nothing rolled) → two quick pod restarts (the second refused) → scale-in via config
(refused) → a mutation sent to a standby (done, or a non-zero exit) → uninstall (stays gone).
The minimum ISR seen over the whole run must stay at min.insync.replicas (2) or above.
"""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest
import yaml

from localmesos import procs
from tests.helpers.kafka_views import IsrSampler, broker_values
from tests.helpers.wait import wait_for
from tests.helpers.master_views import broker_heap, master_tasks

pytestmark = [pytest.mark.timeout(900), pytest.mark.kafka]

TOPIC = "safety"


def kmf(api: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kmf", *args, "--api", api],
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


def broker_ids(boot: str) -> set[int]:
    from confluent_kafka.admin import AdminClient
    return set(AdminClient({"bootstrap.servers": boot, "log_level": 0}).list_topics(timeout=10).brokers)


def test_operator_paths_never_lose_data_lie_or_drop_below_min_isr(kmf_env, tmp_path):
    env = kmf_env(agents=3)
    config = env.config(brokers=3)
    # a live key's value changes live; adding or removing the key rolls (docs/configuration.md)
    config["kafka"]["overrides"]["log.retention.ms"] = "3600000"
    s = env.start_scheduler(config=config)
    s.wait_deployed()
    boot = s.get("/v1/endpoints/broker")["bootstrap_servers"]
    code, doc = s.request("POST", "/v1/topics", {"name": TOPIC, "partitions": 6, "replication": 3,
                                                  "config": {"min.insync.replicas": "2"}})
    assert code == 200, doc
    wait_for(lambda: broker_ids(boot) == {0, 1, 2}, timeout=30, what="three brokers in the metadata")
    sampler = IsrSampler(boot, TOPIC)
    sampler.thread.start()
    wait_for(sampler.full_now, timeout=30, what="ISR sampled")
    timings: dict[str, float] = {}
    try:
        # 1. a live setting: applied on every broker, verified by Kafka, no restart
        tasks = master_tasks(env.lm)
        live = yaml.safe_load(s.path.read_text())
        live["kafka"]["overrides"]["log.retention.ms"] = "7200000"
        path = tmp_path / "live.yaml"
        path.write_text(yaml.safe_dump(live))
        out = kmf(s.url, "config", "update", str(path))
        assert out.returncode == 0, out.stdout + out.stderr
        assert broker_values(boot, "log.retention.ms") == {0: "7200000", 1: "7200000", 2: "7200000"}
        assert master_tasks(env.lm) == tasks

        # 2. a restart-needing change: rolled one broker at a time; the plan is COMPLETE only with
        # every broker back and every partition in sync
        heap = dict(live, kafka={**live["kafka"], "heap_mb": 300})
        path.write_text(yaml.safe_dump(heap))
        started = time.monotonic()
        out = kmf(s.url, "config", "update", str(path))
        assert out.returncode == 0, out.stdout + out.stderr
        out = kmf(s.url, "plan", "show", "update", "--wait", "--wait-timeout", "400")
        assert out.returncode == 0, out.stdout + out.stderr
        done_at = time.time()
        timings["roll of 3 brokers"] = time.monotonic() - started
        from confluent_kafka.admin import AdminClient
        md = AdminClient({"bootstrap.servers": boot, "log_level": 0}).list_topics(topic=TOPIC, timeout=10)
        assert all(len(p.isrs) == 3 for p in md.topics[TOPIC].partitions.values()), "COMPLETE while out of sync"
        rolled = master_tasks(env.lm)
        assert all(rolled[f"broker-{b}"] != tasks[f"broker-{b}"] for b in range(3))
        assert all(broker_heap(rolled[f"broker-{b}"]) == "300m" for b in range(3))
        wait_for(lambda: sampler.in_sync_since(done_at), timeout=10, what="ISR sampled in sync after the roll")

        # 3. kill -9 of the scheduler; Marathon starts it again with its launch file
        s.kill(signal.SIGKILL)
        s = env.start_scheduler(config=config)
        wait_for(lambda: s.get("/v1/health")["mesos_connected"], timeout=60, what="scheduler back")
        time.sleep(12)
        assert master_tasks(env.lm) == rolled, "a scheduler restart relaunched tasks"
        target = s.get("/v1/config/target")["config"]["kafka"]
        assert target["heap_mb"] == 300 and target["overrides"]["log.retention.ms"] == "7200000"
        assert set(broker_values(boot, "log.retention.ms").values()) == {"7200000"}

        # 4. two quick restarts: the second would take partitions below min ISR, so it is refused
        first = kmf(s.url, "pod", "restart", "broker-0")
        second = kmf(s.url, "pod", "restart", "broker-2")
        assert first.returncode == 0, first.stdout + first.stderr
        assert second.returncode == 1, second.stdout + second.stderr
        wait_for(lambda: master_tasks(env.lm).get("broker-0") not in (None, rolled["broker-0"]), timeout=60,
                 what="broker-0 relaunched")
        assert master_tasks(env.lm)["broker-2"] == rolled["broker-2"]
        back = time.time()
        wait_for(lambda: s.pod("broker-0").get("ready") and sampler.in_sync_since(back), timeout=120,
                 what="broker-0 back and in sync")

        # 5. scale-in through a config file: refused (quorum), with or without --yes; nothing dies
        now = master_tasks(env.lm)
        fewer = dict(heap, kafka={**heap["kafka"], "brokers": 2})
        path.write_text(yaml.safe_dump(fewer))
        for extra in ((), ("--yes",)):
            out = kmf(s.url, "config", "update", str(path), *extra)
            assert out.returncode == 1 and "quorum" in out.stderr, out.stdout + out.stderr
        assert master_tasks(env.lm) == now and broker_ids(boot) == {0, 1, 2}
        assert s.get("/v1/config/target")["config"]["kafka"]["brokers"] == 3

        # 6. a mutation sent to a standby: done through the leader (exit 0), or a non-zero exit
        standby = env.start_scheduler(config=dict(config, api=dict(config["api"],
                                                                   port=procs.free_port("127.0.0.1"))))
        assert standby.get("/v1/health")["role"] == "standby"
        out = kmf(standby.url, "pod", "restart", "broker-1")
        if out.returncode == 0:
            wait_for(lambda: master_tasks(env.lm).get("broker-1") not in (None, now["broker-1"]), timeout=60,
                     what="broker-1 restarted through the standby")
        else:
            time.sleep(5)
            assert master_tasks(env.lm)["broker-1"] == now["broker-1"]
        back = time.time()
        wait_for(lambda: s.pod("broker-1").get("ready") and sampler.in_sync_since(back), timeout=120,
                 what="broker-1 back and in sync")
    finally:
        sampler.stopped.set()
        sampler.thread.join(5)
    print(f"minimum ISR seen over {len(sampler.samples)} samples: {sampler.smallest()}; {timings}")
    assert sampler.smallest() >= 2

    # 7. uninstall: gone, and it stays gone when the schedulers run on
    out = kmf(s.url, "uninstall", "--yes")
    assert out.returncode == 0, out.stdout + out.stderr
    assert s.proc.wait(timeout=120) == 0, s.log()
    # the standby takes over an uninstalled service: it reports that and installs nothing
    wait_for(lambda: standby.get("/v1/health")["role"] == "uninstalled", timeout=60, what="standby sees it")
    again = env.start_scheduler(config=config)
    assert again.get("/v1/health")["role"] == "uninstalled"
    time.sleep(5)
    assert not master_tasks(env.lm)
    assert all(f["name"] != env.name for f in env.lm.get("/master/frameworks")["frameworks"])
    out = kmf(again.url, "pod", "restart", "broker-0")
    assert out.returncode != 0
    print(json.dumps(again.get("/v1/health")["uninstalled"]))
