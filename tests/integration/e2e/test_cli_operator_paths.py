"""The operator CLI (`python -m kmf ...` as a subprocess) against one running service with a token,
a leader and a standby, started once for the module: mutations sent to the standby's URL are done
by the leader (checked in the Mesos master's task list and in Kafka's metadata, not in kmf's
replies) or exit non-zero; refusals, errors and reads are readable and their exit codes honest."""
from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid

import pytest
from kazoo.client import KazooClient

from localmesos import procs
from tests.helpers.fixtures_localmesos import FAST_MASTER_FLAGS, LocalMesos
from tests.helpers.fixtures_scheduler import AGENT_FLAGS, AGENT_RESOURCES, KmfEnv
from tests.helpers.wait import wait_for
from tests.helpers.operator_cli import SLEEPER

pytestmark = [pytest.mark.timeout(420), pytest.mark.kafka]


class Service:
    def __init__(self, env: KmfEnv, leader, standby, token: str) -> None:
        self.env, self.leader, self.standby, self.token = env, leader, standby, token
        self.framework_id = leader.get("/v1/health")["framework_id"]

    def tasks(self) -> dict[str, str]:
        """The master's own view: task id → state of this service's framework."""
        state = self.env.lm.get("/master/state")
        fw = next((f for f in state["frameworks"] if f["id"] == self.framework_id), None)
        return {} if fw is None else {t["id"]: t["state"] for t in fw["tasks"]}

    def running(self, pod: str) -> set[str]:
        return {t for t, st in self.tasks().items() if t.startswith(f"{pod}__") and st == "TASK_RUNNING"}

    def bootstrap(self) -> str:
        return self.leader.get("/v1/endpoints/broker")["bootstrap_servers"]


@pytest.fixture(scope="module")
def service(zookeeper, tmp_path_factory):
    """One service for every test here (a broker takes a while to start): ZooKeeper chroot,
    localmesos with one agent, a leader (1 broker, 1 sleeper app, an API token) and a standby."""
    base = tmp_path_factory.mktemp("cli-paths")
    root = f"/kmftest-{uuid.uuid4().hex[:12]}"
    zk = KazooClient(hosts=zookeeper.connect_string)
    zk.start(timeout=15)
    zk.ensure_path(root)
    lm = LocalMesos(base / "lm", f"zk://{zookeeper.connect_string}{root}/mesos", FAST_MASTER_FLAGS)
    env = KmfEnv(lm, zookeeper.connect_string, root, base)
    try:
        lm.start_master()
        lm.add_agent(resources=AGENT_RESOURCES, extra=AGENT_FLAGS)
        lm.wait_agents()
        token = base / "token"
        token.write_text("cli-s3cret\n")
        config = env.config(brokers=1, apps=[SLEEPER])
        config["api"]["token_file"] = str(token)
        leader = env.start_scheduler(config=config)
        leader.wait_deployed()
        standby = env.start_scheduler(config=dict(config, api=dict(config["api"],
                                                                   port=procs.free_port("127.0.0.1"))))
        wait_for(lambda: standby.get("/v1/health")["role"] == "standby", timeout=30, what="standby")
        yield Service(env, leader, standby, str(token))
    finally:
        env.stop()
        zk.delete(root, recursive=True)
        zk.stop()
        zk.close()


def kmf(*argv: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("KMF_API", "KMF_TOKEN_FILE")}
    return subprocess.run([sys.executable, "-m", "kmf", *argv], capture_output=True, text=True,
                          timeout=90, stdin=subprocess.DEVNULL, env=env)


def no_traceback(out: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in out.stdout + out.stderr, out.stderr


def test_reads_refusals_and_usage_errors_are_readable_and_change_nothing(service, tmp_path):
    s = service
    broker = s.running("broker-0")
    assert len(broker) == 1
    # reads at the standby, with --api before the sub-command or before the action
    out = kmf("--api", s.standby.url, "pods")
    assert out.returncode == 0 and "broker-0" in out.stdout and "sleeper-0" in out.stdout, out.stderr
    out = kmf("pod", "--api", s.leader.url, "info", "broker-0")
    assert out.returncode == 0, out.stderr
    for repr_bit in ("{'", "['", "None", "True", "False"):
        assert repr_bit not in out.stdout, out.stdout
    lines = [line.strip() for line in out.stdout.splitlines()]
    assert "reservation:" in lines and any(line.startswith("hostname:") for line in lines), out.stdout
    assert any(line.startswith("task_id:") and line.split()[-1] in broker for line in lines)

    out = kmf("pod", "info", "nope", "--api", s.leader.url)
    assert out.returncode == 1 and "not found: pod 'nope' does not exist" in out.stderr, out.stderr
    assert "refused" not in out.stderr

    # a plan followed without a terminal: plain lines, no \r frames
    out = kmf("plan", "show", "deploy", "--wait", "--api", s.leader.url)
    assert out.returncode == 0 and "\r" not in out.stdout and "COMPLETE" in out.stdout, out

    # an unsafe update is refused once, readably; nothing restarts
    import yaml
    new = yaml.safe_load(s.leader.path.read_text())
    new["kafka"]["disk_mb"] = 100
    path = tmp_path / "shrink.yaml"
    path.write_text(yaml.safe_dump(new))
    out = kmf("config", "update", str(path), "--api", s.leader.url, "--token-file", s.token)
    assert out.returncode == 1 and out.stderr.count("refused:") == 1 and "refused: refused" not in out.stderr, \
        out.stderr

    # usage errors: exit 2, the item named, nothing sent
    out = kmf("topic", "create", "t-bad", "--config", "retention.ms", "--api", s.leader.url)
    no_traceback(out)
    assert out.returncode == 2 and "retention.ms" in out.stderr
    out = kmf("pods", "--token-file", "/nope", "--api", s.leader.url)
    no_traceback(out)
    assert out.returncode == 2 and "/nope" in out.stderr

    # uninstall with no terminal and no --yes: refused, exit 1, the service untouched
    out = kmf("uninstall", "--api", s.leader.url, "--token-file", s.token)
    no_traceback(out)
    assert out.returncode == 1 and "--yes" in out.stderr
    time.sleep(1)
    assert s.leader.get("/v1/health")["role"] == "leader"
    assert s.running("broker-0") == broker


def test_topic_create_through_the_standby_is_done_and_kafka_errors_are_in_kafkas_words(service):
    from confluent_kafka.admin import AdminClient
    s = service
    out = kmf("topic", "create", "via-standby", "--partitions", "2", "--replication", "1",
              "--api", s.standby.url, "--token-file", s.token)
    assert out.returncode == 0, out.stdout + out.stderr
    admin = AdminClient({"bootstrap.servers": s.bootstrap()})
    topics = admin.list_topics(timeout=10).topics
    assert "via-standby" in topics and len(topics["via-standby"].partitions) == 2
    out = kmf("topic", "create", "via-standby", "--api", s.leader.url, "--token-file", s.token)
    assert out.returncode == 1
    assert "KafkaError{" not in out.stderr and "already exists" in out.stderr, out.stderr
    assert "TOPIC_ALREADY_EXISTS" in out.stderr


def test_scale_and_pod_restart_sent_to_the_standby_are_done_by_the_leader(service):
    s = service
    out = kmf("scale", "app", "sleeper", "2", "--api", s.standby.url, "--token-file", s.token)
    assert out.returncode == 0, out.stdout + out.stderr
    wait_for(lambda: s.running("sleeper-1"), timeout=90, what="sleeper-1 running in the master's view")

    before = s.running("broker-0")
    out = kmf("pod", "restart", "broker-0", "--force", "--api", s.standby.url, "--token-file", s.token)
    assert out.returncode == 0, out.stdout + out.stderr
    # the master's view: the old task no longer runs, a new one does
    wait_for(lambda: s.running("broker-0") and not s.running("broker-0") & before, timeout=120, interval=0.5,
             what="broker-0 running under a new task id in the master's view")
    wait_for(lambda: s.leader.pod("broker-0")["ready"], timeout=120, what="broker-0 ready again")


def test_uninstall_sent_to_the_standby_is_done_and_says_what_stays(service):
    s = service
    assert s.tasks()
    out = kmf("uninstall", "--yes", "--api", s.standby.url, "--token-file", s.token)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.strip(), "the server's message is printed"
    wait_for(lambda: not any(st == "TASK_RUNNING" for st in s.tasks().values()), timeout=120, interval=0.5,
             what="every task of the framework gone from the master")
