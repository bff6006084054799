"""Chaos: faults against a kmf service while numbered acks=all records flow (RF 3, min ISR 2).

For every fault: time until every broker is back (same node id) and the deploy plan is COMPLETE;
at the end, no acknowledged record missing and never two live tasks for one pod. The short
sequence runs in `make test`; `make chaos` (KMF_CHAOS_FULL=1) adds agent loss, agent pause and
seeded random sequences (the seed is printed: KMF_CHAOS_SEED replays one).
"""
from __future__ import annotations

import os
import random
import signal
import statistics
import time
from collections import Counter

import pytest

from tests.chaos.workload import Workload, create_topic, verify
from tests.helpers.fixtures_scheduler import executor_pid_of, java_pid_of
from tests.helpers.wait import wait_for

pytestmark = [pytest.mark.kafka]
FULL = os.environ.get("KMF_CHAOS_FULL") == "1"


class Chaos:
    def __init__(self, env, scheduler) -> None:
        self.env = env
        self.s = scheduler
        self.rows: list[tuple[str, float]] = []

    def healthy(self) -> bool:
        plan = self.s.plan()
        if plan.get("status") != "COMPLETE":
            return False
        return all(self.s.pod(f"broker-{i}").get("ready") for i in range(3))

    def measure(self, name: str, fault) -> None:
        started = time.monotonic()
        done = fault()  # a fault may say what recovery means beyond "all healthy" (e.g. moved)
        time.sleep(1.0)  # let the fault be noticed before asking whether all is well again
        wait_for(lambda: (done is None or done()) and self.healthy(), timeout=240, interval=0.5,
                 what=f"recovery from {name}")
        self.rows.append((name, time.monotonic() - started))
        self.check_no_duplicates()

    def check_no_duplicates(self) -> None:
        live = Counter()
        for fw in self.env.lm.get("/master/frameworks")["frameworks"]:
            for task in fw.get("tasks", []):
                if task["state"] in ("TASK_STAGING", "TASK_STARTING", "TASK_RUNNING"):
                    live[task["name"]] += 1
        assert all(n == 1 for n in live.values()), f"pods with two live tasks: {live}"

    # faults ---------------------------------------------------------------------------------
    def kill_broker_jvm(self, rng) -> None:
        pod = f"broker-{rng.randrange(3)}"
        pid = java_pid_of(self.s.pod(pod)["task_id"])
        os.kill(pid, signal.SIGKILL)

    def kill_executor(self, rng) -> None:
        pod = f"broker-{rng.randrange(3)}"
        os.kill(executor_pid_of(self.s.pod(pod)["task_id"]), signal.SIGKILL)

    def kill_scheduler(self, rng) -> None:
        config = self.s.config
        self.s.kill(signal.SIGKILL)
        self.s = self.env.start_scheduler(config=config)

    def restart_master(self, rng) -> None:
        self.env.lm.restart_master()

    def kill_agent(self, rng):
        pod = f"broker-{rng.randrange(3)}"
        victim = self.s.pod(pod)
        self.env.lm.kill_agent(self.env.agent_index(victim["hostname"]))
        return lambda: self.s.pod(pod)["hostname"] != victim["hostname"]  # replaced elsewhere

    def pause_agent(self, rng) -> None:
        victim = self.s.pod(f"broker-{rng.randrange(3)}")
        index = self.env.agent_index(victim["hostname"])
        self.env.lm.pause_agent(index)
        time.sleep(6)  # past the master's ping timeout (3 × 1 s in the test master)
        self.env.lm.resume_agent(index)


SHORT = ["kill_broker_jvm", "kill_executor", "kill_scheduler", "restart_master"]
LONG = SHORT + ["pause_agent", "kill_agent"]


@pytest.mark.timeout(1500 if FULL else 600)
def test_no_acknowledged_record_lost_under_faults(kmf_env):
    seed = int(os.environ.get("KMF_CHAOS_SEED") or random.randrange(1 << 30))
    rng = random.Random(seed)
    print(f"chaos seed {seed}")
    env = kmf_env(agents=5 if FULL else 3)
    s = env.start_scheduler(brokers=3)
    s.wait_deployed()
    boot = s.get("/v1/endpoints/broker")["bootstrap_servers"]
    create_topic(boot, "chaos", partitions=3, replication_factor=3, min_insync_replicas=2)
    chaos = Chaos(env, s)
    workload = Workload(boot, "chaos", rate=200).start()
    try:
        workload.wait_acknowledged(200, timeout=60)
        faults = list(SHORT)
        if FULL:
            faults = LONG + [rng.choice(LONG[:-1]) for _ in range(int(os.environ.get("KMF_CHAOS_RUNS", "4")))]
        for name in faults:
            chaos.measure(name, lambda: getattr(chaos, name)(rng))
            workload.wait_acknowledged(workload.acknowledged_count + 100, timeout=120)
    finally:
        report = workload.stop()
    summary = verify(chaos.s.get("/v1/endpoints/broker")["bootstrap_servers"], report)
    by_fault: dict[str, list[float]] = {}
    for name, secs in chaos.rows:
        by_fault.setdefault(name, []).append(secs)
    print(f"\n{'fault':<18}{'runs':>5}{'acked':>9}{'lost':>6}{'median s':>10}{'max s':>8}")
    for name, times in by_fault.items():
        print(f"{name:<18}{len(times):>5}{summary.acknowledged:>9}{len(summary.lost):>6}"
              f"{statistics.median(times):>10.1f}{max(times):>8.1f}")
    print(summary.line())
    assert summary.lost == (), f"acknowledged records lost: {summary.lost[:20]}"
    assert summary.acknowledged > 0
    for i in range(3):
        assert chaos.s.pod(f"broker-{i}")["node_id"] == i
