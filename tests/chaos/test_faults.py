"""Chaos: faults against a kmf service while numbered acks=all records flow (RF 3, min ISR 2).

The service: 3 KRaft brokers and one instance of the Python word-count app. Every fault is a
method of :class:`Chaos`; it returns what recovery means beyond "all healthy" when that needs
saying (a broker moved, a new task id). Healthy = the scheduler answering is the leader, connected
to Mesos and ZooKeeper, the deploy plan COMPLETE and every pod ready.

After every fault (invariants): the same framework id; no task id used twice; never two live
tasks for one pod; every broker back with its id (Kafka's own metadata puts node id *i* at the
address kmf gives broker-*i*). At the end: no acknowledged record missing.

The short sequence runs in `make test`; `make chaos` (KMF_CHAOS_FULL=1) adds the leading
scheduler's kill with a standby, a ZooKeeper restart, agent pause and loss, and seeded random
sequences (the seed is printed: KMF_CHAOS_SEED replays one, KMF_CHAOS_RUNS sets their length),
and writes the table to docs/chaos.md. KMF_CHAOS_FAULTS=a,b,c runs just those faults in that order. Times are printed, never asserted.
"""
from __future__ import annotations

import os
import platform
import random
import signal
import statistics
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient
from kazoo.client import KazooClient
from kazoo.exceptions import NoNodeError

from localmesos import procs
from tests.helpers.chaos_workload import Workload, WorkloadSummary, create_topic, verify
from tests.helpers.fixtures_scheduler import executor_pid_of, java_pid_of, pid_in_sandbox
from tests.helpers.fixtures_zookeeper import restart_zookeeper
from tests.helpers.wait import wait_for

pytestmark = [pytest.mark.kafka]
FULL = os.environ.get("KMF_CHAOS_FULL") == "1"
DOC = Path(__file__).resolve().parents[2] / "docs" / "chaos.md"

BROKERS = [f"broker-{i}" for i in range(3)]
APP = {"name": "wordcount", "count": 1, "cpus": 0.25, "mem_mb": 256, "runtime": "python",
       "command": ["-m", "streams.wordcount", "--input", "text", "--output", "counts"]}
APP_POD = "wordcount-0"
LIVE = ("TASK_STAGING", "TASK_STARTING", "TASK_RUNNING")
# ended for good (TASK_LOST and TASK_UNREACHABLE tasks may come back with their agent)
ENDED = ("TASK_FINISHED", "TASK_FAILED", "TASK_KILLED", "TASK_ERROR", "TASK_DROPPED", "TASK_GONE",
         "TASK_GONE_BY_OPERATOR")


@dataclass(frozen=True)
class Run:
    """One fault and its recovery; records numbered [first, end) were sent meanwhile."""

    fault: str
    seconds: float
    first: int
    end: int


class Chaos:
    def __init__(self, env, scheduler, zookeeper) -> None:
        self.env = env
        self.s = scheduler
        self.zookeeper = zookeeper
        self.runs: list[Run] = []
        self.t0 = 0.0
        self.framework_id = scheduler.get("/v1/health")["framework_id"]
        self.ended_task_ids: set[str] = set()
        self.zk = KazooClient(hosts=env.zk_connect, timeout=10.0)
        self.zk.start(timeout=15)

    def close(self) -> None:
        self.zk.stop()
        self.zk.close()

    # recovery ----------------------------------------------------------------------------------
    def health(self) -> dict:
        _, doc = self.s.request("GET", "/v1/health")
        return doc if isinstance(doc, dict) else {}

    def healthy(self) -> bool:
        if self.s.proc.poll() is not None:
            raise AssertionError(f"scheduler exited with {self.s.proc.returncode}: {self.s.log(1500)}")
        h = self.health()
        if not (h.get("role") == "leader" and h.get("mesos_connected") and h.get("zookeeper_connected")):
            return False
        if self.s.plan().get("status") != "COMPLETE":
            return False
        return all(self.s.pod(p).get("ready") for p in BROKERS + [APP_POD])

    def measure(self, name: str, workload: Workload, rng: random.Random) -> None:
        first = workload.sent_count
        self.t0 = time.monotonic()  # a fault that prepares something (a standby) moves it
        done = getattr(self, name)(rng)
        time.sleep(1.0)  # let the fault be noticed before asking whether all is well again
        wait_for(lambda: (done is None or done()) and self.healthy(), timeout=240, interval=0.5,
                 what=f"recovery from {name}")
        seconds = time.monotonic() - self.t0
        self.check_invariants(name)
        self.runs.append(Run(name, seconds, first, workload.sent_count))
        print(f"chaos: {name} recovered in {seconds:.1f}s", flush=True)

    # invariants --------------------------------------------------------------------------------
    def check_invariants(self, after: str) -> None:
        assert self.health().get("framework_id") == self.framework_id, f"framework changed after {after}"
        frameworks = [fw for fw in self.env.lm.get("/master/frameworks")["frameworks"]
                      if fw["id"] == self.framework_id]
        assert len(frameworks) == 1, f"after {after}: framework {self.framework_id} not (once) at the master"
        fw = frameworks[0]
        tasks = fw.get("tasks", []) + fw.get("unreachable_tasks", []) + fw.get("completed_tasks", [])
        ids = Counter(t["id"] for t in tasks)
        assert all(n == 1 for n in ids.values()), \
            f"after {after}: task ids used twice: {[i for i, n in ids.items() if n > 1]}"
        live = [t for t in fw.get("tasks", []) if t["state"] in LIVE]
        reused = [t["id"] for t in live if t["id"] in self.ended_task_ids]
        assert not reused, f"after {after}: ended task ids live again: {reused}"
        self.ended_task_ids |= {t["id"] for t in tasks if t["state"] in ENDED}
        per_pod = Counter(t["name"] for t in live)
        assert all(n == 1 for n in per_pod.values()), f"after {after}: pods with two live tasks: {per_pod}"
        assert set(per_pod) == set(BROKERS + [APP_POD]), f"after {after}: live pods {sorted(per_pod)}"
        self.check_broker_ids(after)

    def check_broker_ids(self, after: str) -> None:
        """Kafka's metadata and kmf agree: node id i serves at broker-i's address."""
        endpoint = self.s.get("/v1/endpoints/broker")
        kmf = dict(zip(endpoint["broker_ids"], endpoint["address"]))
        assert sorted(kmf) == [0, 1, 2], f"after {after}: kmf's brokers {kmf}"
        admin = AdminClient({"bootstrap.servers": endpoint["bootstrap_servers"], "log_level": 3})

        def kafka_nodes():
            return {n.id: f"{n.host}:{n.port}" for n in admin.describe_cluster().result(10).nodes}
        nodes = wait_for(lambda: (lambda n: n if len(n) == 3 else None)(kafka_nodes()), timeout=60,
                         interval=1, what="3 brokers in Kafka's metadata")
        assert nodes == kmf, f"after {after}: Kafka's brokers {nodes}, kmf's {kmf}"

    # helpers -----------------------------------------------------------------------------------
    def lock_held_by(self, url: str) -> bool:
        """Whether `url`'s scheduler still has a node in the leader election (its session lives)."""
        path = f"{self.env.zk_root}/{self.env.name}/leader"
        try:
            children = self.zk.get_children(path)
        except NoNodeError:
            return False
        for child in children:
            try:
                data, _ = self.zk.get(f"{path}/{child}")
            except NoNodeError:
                continue
            if data.decode().rstrip("/") == url.rstrip("/"):
                return True
        return False

    def relaunch_after_exit(self, old, why: str) -> None:
        """What Marathon does: the scheduler that lost its term exits 1; a fresh one is started."""
        wait_for(lambda: old.proc.poll() is not None, timeout=60, interval=0.2,
                 what=f"the scheduler stops deciding after {why}")
        assert old.proc.returncode == 1, f"exit {old.proc.returncode} after {why}: {old.log(1500)}"
        assert "leadership lost" in old.log(20000), old.log(1500)
        self.s = self.env.start_scheduler(config=old.config)

    # faults ------------------------------------------------------------------------------------
    def kill_broker_jvm(self, rng) -> None:
        pid = java_pid_of(self.s.pod(rng.choice(BROKERS))["task_id"])
        os.kill(pid, signal.SIGKILL)

    def kill_executor(self, rng) -> None:
        os.kill(executor_pid_of(self.s.pod(rng.choice(BROKERS))["task_id"]), signal.SIGKILL)

    def kill_app_instance(self, rng):
        task = self.s.pod(APP_POD)["task_id"]
        pid = pid_in_sandbox(task, lambda argv: b"streams.wordcount" in argv)
        assert pid, f"no word-count process in the sandbox of {task}"
        os.kill(pid, signal.SIGKILL)
        return lambda: self.s.pod(APP_POD)["task_id"] != task  # a new task, not the old one's status

    def kill_scheduler(self, rng) -> None:
        """Kill every scheduler (there is one): a new one recovers from ZooKeeper."""
        config = self.s.config
        self.s.kill(signal.SIGKILL)
        self.s = self.env.start_scheduler(config=config)

    def kill_leader(self, rng) -> None:
        """Kill the leading scheduler while a standby waits in line: the standby takes over."""
        api = dict(self.s.config["api"], port=procs.free_port("127.0.0.1"))
        standby = self.env.start_scheduler(config=dict(self.s.config, api=api))
        wait_for(lambda: standby.get("/v1/health")["role"] == "standby" and self.lock_held_by(standby.url),
                 timeout=30, interval=0.2, what="a standby in line")
        self.t0 = time.monotonic()  # the fault is the kill, not the standby's start
        self.s.kill(signal.SIGKILL)
        self.s = standby

    def expire_zk_session(self, rng) -> None:
        """The scheduler's ZooKeeper session expires while it cannot notice (paused past the
        session timeout, so the server ends the session as it would for a partitioned client);
        woken up, it must stop deciding (exit 1) before a new instance leads."""
        old = self.s
        os.killpg(old.proc.pid, signal.SIGSTOP)
        try:
            wait_for(lambda: not self.lock_held_by(old.url), timeout=60, interval=0.5,
                     what="ZooKeeper expired the paused scheduler's session")
        finally:
            os.killpg(old.proc.pid, signal.SIGCONT)
        self.relaunch_after_exit(old, "its ZooKeeper session expired")

    def restart_zookeeper(self, rng) -> None:
        """kill -9 ZooKeeper and start it again (same port and data): the scheduler's session is
        suspended, so it ends its term; brokers (KRaft) and the master carry on."""
        old = self.s
        down = restart_zookeeper(self.zookeeper)
        print(f"chaos: ZooKeeper down for {down:.1f}s", flush=True)
        self.relaunch_after_exit(old, "ZooKeeper restarted")

    def restart_master(self, rng) -> None:
        self.env.lm.restart_master()

    def kill_agent(self, rng):
        pod = rng.choice(BROKERS)
        victim = self.s.pod(pod)
        self.env.lm.kill_agent(self.env.agent_index(victim["hostname"]))
        return lambda: self.s.pod(pod)["hostname"] != victim["hostname"]  # replaced elsewhere

    def pause_agent(self, rng) -> None:
        victim = self.s.pod(rng.choice(BROKERS))
        index = self.env.agent_index(victim["hostname"])
        self.env.lm.pause_agent(index)
        time.sleep(6)  # past the master's ping timeout (3 × 1 s in the test master)
        self.env.lm.resume_agent(index)


SHORT = ["kill_broker_jvm", "kill_executor", "kill_app_instance", "kill_scheduler", "expire_zk_session",
         "restart_master"]
LONG = SHORT + ["kill_leader", "restart_zookeeper", "pause_agent", "kill_agent"]
RANDOM = [f for f in LONG if f != "kill_agent"]  # each agent loss costs an agent for good


def table(runs: list[Run], summary: WorkloadSummary, acknowledged: frozenset[int]) -> list[str]:
    """Markdown rows: per fault, the records sent during its runs that were acknowledged / lost."""
    lost = set(summary.lost)
    rows = ["| fault | runs | records acknowledged | records lost | median s to recover | max s |",
            "| --- | ---: | ---: | ---: | ---: | ---: |"]
    by_fault: dict[str, list[Run]] = {}
    for run in runs:
        by_fault.setdefault(run.fault, []).append(run)
    for name, group in by_fault.items():
        numbers = {n for r in group for n in range(r.first, r.end)}
        times = [r.seconds for r in group]
        rows.append(f"| {name} | {len(group)} | {len(numbers & acknowledged)} | {len(numbers & lost)} | "
                    f"{statistics.median(times):.1f} | {max(times):.1f} |")
    rows.append(f"| whole run | {len(runs)} | {summary.acknowledged} | {len(summary.lost)} | | |")
    return rows


def write_doc(rows: list[str], seed: int, summary: WorkloadSummary, faults: list[str]) -> None:
    command = (f"KMF_CHAOS_FULL=1 KMF_CHAOS_SEED={seed} KMF_CHAOS_RUNS={os.environ.get('KMF_CHAOS_RUNS', '4')} "
               ".venv/bin/python -m pytest tests/chaos/test_faults.py -s")
    DOC.write_text("\n".join([
        "# Chaos results",
        "",
        "Written by `tests/chaos/test_faults.py` when it runs with `KMF_CHAOS_FULL=1` (`make chaos`).",
        "A producer sends numbered records (`acks=all`, idempotent) to a topic with replication factor 3",
        "and `min.insync.replicas=2` throughout; at the end every acknowledged number is read back.",
        "A fault's records are those sent from the fault until the service was healthy again (leader",
        "scheduler connected, deploy plan COMPLETE, 3 brokers and the word-count instance ready).",
        "After every fault the test also checked: the same framework, no task id used twice, never two",
        "live tasks for one pod, and Kafka's metadata placing node id *i* at broker-*i*'s address.",
        "",
        f"- date: {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- seed: {seed}",
        f"- command: `{command}`",
        f"- machine: {os.cpu_count()} cores, {platform.system()} {platform.release()}, Python {platform.python_version()}",
        f"- faults in order: {', '.join(faults)}",
        f"- workload: {summary.line()}",
        "",
        *rows,
        "",
    ]))


@pytest.mark.timeout(2400 if FULL else 900)
def test_no_acknowledged_record_lost_under_faults(kmf_env, zookeeper):
    seed = int(os.environ.get("KMF_CHAOS_SEED") or random.randrange(1 << 30))
    rng = random.Random(seed)
    print(f"chaos seed {seed}")
    env = kmf_env(agents=5 if FULL else 3)
    s = env.start_scheduler(brokers=3, apps=[APP])
    wait_for(lambda: all(s.pod(p).get("ready") for p in BROKERS), timeout=180, interval=1,
             what="3 brokers ready")
    boot = s.get("/v1/endpoints/broker")["bootstrap_servers"]
    create_topic(boot, "text", partitions=1, replication_factor=3, min_insync_replicas=2)
    s.wait_deployed()
    create_topic(boot, "chaos", partitions=3, replication_factor=3, min_insync_replicas=2)
    chaos = Chaos(env, s, zookeeper)
    faults = list(SHORT)
    if FULL:
        faults = LONG + [rng.choice(RANDOM) for _ in range(int(os.environ.get("KMF_CHAOS_RUNS", "4")))]
    if os.environ.get("KMF_CHAOS_FAULTS"):  # replay or debug a chosen sequence
        faults = os.environ["KMF_CHAOS_FAULTS"].split(",")
        assert set(faults) <= set(LONG), f"unknown faults {set(faults) - set(LONG)}; known: {LONG}"
    print(f"chaos faults: {', '.join(faults)}", flush=True)
    workload = Workload(boot, "chaos", rate=200).start()
    try:
        workload.wait_acknowledged(200, timeout=60)
        for name in faults:
            chaos.measure(name, workload, rng)
            workload.wait_acknowledged(workload.acknowledged_count + 100, timeout=120)
    finally:
        report = workload.stop()
        chaos.close()
    summary = verify(chaos.s.get("/v1/endpoints/broker")["bootstrap_servers"], report)
    rows = table(chaos.runs, summary, report.acknowledged)
    print("\n" + "\n".join(rows))
    print(summary.line())
    if FULL and not os.environ.get("KMF_CHAOS_FAULTS"):
        write_doc(rows, seed, summary, faults)
    assert summary.lost == (), f"acknowledged records lost: {summary.lost[:20]}"
    assert summary.acknowledged > 0 and len(chaos.runs) == len(faults)
