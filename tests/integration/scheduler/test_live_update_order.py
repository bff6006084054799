"""The order of a config update with a live broker setting (scheduler.main.Service), on a real
KRaft broker, the real decision loop and a real ZooKeeper state store; Mesos is not involved
(its calls are recorded). Judged by the broker's describe_configs and the stored target:

- accepted: the broker shows the value, the target is stored, the reply says what was verified;
- refused by the core (a shrinking disk), seen on the snapshot before Kafka is touched: the broker
  is never changed;
- refused by the core only when it decides (another update got in first): the value that was
  already set on the broker is set back, and the target is the other update's."""
from __future__ import annotations

import threading
import time

import attrs
import pytest
from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType

import config
from executor.runtime import broker as broker_io
from executor.runtime.broker_config import Voter
from kmfwire.cluster_id import new_cluster_id
from executor.runtime.kafka_dist import Mode
from localmesos import procs
from scheduler.core import events as ev
from scheduler.core.decide import desired_fingerprints, initial_state
from scheduler.core.pods import desired_pods
from scheduler.core.state import Reservation, TaskRecord
from scheduler.main import Service
from scheduler.shell.loop import Loop
from scheduler.shell.store import StateStore
from tests.helpers.fixtures_kafka import RunningBroker, kafka_runtime, kraft_node, launch
from tests.helpers.wait import wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(180)]

SPEC = """\
name: kafka
mesos: {{master: 'zk://127.0.0.1:2181/mesos'}}
zookeeper: {{connect: '127.0.0.1:2181'}}
kafka: {{brokers: 1, cpus: 1, mem_mb: 1024, heap_mb: 256, disk_mb: {disk}, overrides: {{log.retention.ms: '{ms}'}}}}
"""


def spec(disk: int = 500, ms: str = "3600000"):
    return config.load_text(SPEC.format(disk=disk, ms=ms), "test.yaml", env={})


class MesosCalls:
    """Stands in for the Mesos adapter: the decisions' calls are recorded, none is needed here."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __getattr__(self, name: str):
        return lambda *args, **kwargs: self.calls.append(name)


@pytest.fixture
def broker0(tmp_path):
    """A KRaft combined node with node id 0 (kmf's broker-0)."""
    runtime = kafka_runtime(Mode.KRAFT)
    node = kraft_node(tmp_path / "b0", runtime, {"log.retention.ms": "3600000"})  # as kmf writes it
    ctl = node.controller_listener
    node = attrs.evolve(node, node_id=0, voters=(Voter(0, ctl.host, ctl.port),))
    cfg = broker_io.prepare_broker(node, tmp_path / "b0" / "server.properties")
    broker_io.ensure_storage_formatted(runtime, node, cfg, new_cluster_id())
    b = launch(RunningBroker(node, runtime, tmp_path / "b0", cfg, tmp_path / "b0" / "broker.log", pid=0))
    try:
        yield b
    finally:
        procs.stop_group(b.pid, grace=10.0)


def retention(boot: str) -> tuple[str | None, int]:
    admin = AdminClient({"bootstrap.servers": boot, "log_level": 0})
    resource = ConfigResource(ResourceType.BROKER, "0")
    entry = admin.describe_configs([resource], request_timeout=20)[resource].result(30)["log.retention.ms"]
    return entry.value, int(getattr(entry.source, "value", entry.source))


def test_live_settings_follow_the_cores_decision(broker0, zk_client):
    host, port = broker0.node.broker_listener.host, broker0.node.broker_listener.port
    first = spec()
    store = StateStore(zk_client, first.name, root="/kmf")
    store.initialize()
    store.apply_config(config.config_id(first), config.spec_to_json(first))
    rec = TaskRecord("broker-0", "broker", task_id="broker-0__1", agent_id="a0", hostname=host,
                     state="TASK_RUNNING", ready=True,
                     reservation=Reservation("a0", host, "p0", (), broker_port=port,
                                             controller_port=broker0.node.controller_listener.port))
    state = initial_state(first, config.config_id(first), "fw", {"broker-0": rec}, {"cluster_id": "x"})
    wanted = desired_fingerprints(state, desired_pods(first))["broker-0"]
    state = attrs.evolve(state, tasks={"broker-0": attrs.evolve(rec, fingerprint=wanted)})
    loop = Loop(state, store, MesosCalls())
    service = Service(first, zk_client, store)
    service.loop = loop
    static = retention(broker0.bootstrap)
    assert static[0] == "3600000"

    # another update (a bigger disk) is queued first; ours (a live value, the old disk) passes the
    # core's check on the snapshot, is set on the broker, and is refused when the core decides it
    bigger = spec(disk=600)
    loop.put(ev.Command("other", "update_config", {"spec": bigger}, time.time()))
    answer: list = []
    ours = threading.Thread(target=lambda: answer.append(
        service.submit("update_config", {"spec": spec(ms="7200000")})))
    ours.start()
    wait_for(lambda: loop.events.qsize() == 2, timeout=60, what="our update queued behind the other")
    assert retention(broker0.bootstrap)[0] == "7200000"  # set before the target is stored
    runner = threading.Thread(target=loop.run, daemon=True)
    runner.start()
    try:
        ours.join(60)
        reply = answer[0]
        assert not reply.ok and "cannot shrink" in reply.result["message"], reply
        assert reply.result["live_undone"] is True
        assert retention(broker0.bootstrap) == static  # set back: the broker's own value again
        assert store.load().target_config_id == config.config_id(bigger)

        # refused by the core on the snapshot: Kafka is never touched
        reply = service.submit("update_config", {"spec": spec(disk=500, ms="9000000")})
        assert not reply.ok and "cannot shrink" in reply.result["message"], reply
        assert retention(broker0.bootstrap) == static
        assert store.load().target_config_id == config.config_id(bigger)

        # accepted: on the broker, verified, and stored
        good = spec(disk=600, ms="7200000")
        reply = service.submit("update_config", {"spec": good})
        assert reply.ok and reply.result["live_applied"] == {"0": {"log.retention.ms": "7200000"}}, reply
        assert retention(broker0.bootstrap)[0] == "7200000"
        assert store.load().target_config_id == config.config_id(good)
    finally:
        loop.stop("test over")
        runner.join(10)
