"""Real brokers from the assembled runtimes: KRaft (4.x) and ZooKeeper mode (3.9), the storage
format step, Kafka's ProducerPerformance and the Streams WordCountDemo against them."""
from __future__ import annotations

import collections
import random
import subprocess
import uuid

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from executor.runtime import broker as broker_io
from executor.runtime import tools
from executor.runtime.jvm import JvmOptions
from localmesos import procs
from tests.helpers.fixtures_kafka import RunningBroker, launch
from tests.helpers.wait import wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(150)]


def create_topics(bootstrap: str, *topics: NewTopic) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for name, future in admin.create_topics(list(topics), operation_timeout=30).items():
        future.result(timeout=60)
    wait_for(lambda: all(t.topic in admin.list_topics(timeout=5).topics for t in topics),
             timeout=30, what=f"topics {[t.topic for t in topics]} in the metadata")


def produce(bootstrap: str, topic: str, values: list[bytes], keys: list[bytes] | None = None) -> None:
    """Send `values` with acks=all and fail unless every one was acknowledged."""
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                         "linger.ms": 5})
    errors: list[str] = []
    acked = []

    def on_delivery(err, msg) -> None:
        if err is not None:
            errors.append(str(err))
        else:
            acked.append(msg.offset())

    for index, value in enumerate(values):
        producer.produce(topic, value=value, key=keys[index] if keys else None, on_delivery=on_delivery)
        producer.poll(0)
    remaining = producer.flush(60)
    assert remaining == 0, f"{remaining} records still unsent to {bootstrap} after 60 s"
    assert not errors, f"delivery errors from {bootstrap}: {errors[:5]}"
    assert len(acked) == len(values)


def consume(bootstrap: str, topic: str, count: int, timeout: float = 60.0) -> list:
    """Read `count` records of `topic` from the beginning with a fresh group."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"kmftest-{uuid.uuid4().hex[:8]}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    got: list = []

    def poll_some():
        for msg in consumer.consume(num_messages=500, timeout=0.5):
            assert msg.error() is None, f"consume error from {bootstrap}: {msg.error()}"
            got.append(msg)
        return len(got) >= count

    try:
        wait_for(poll_some, timeout=timeout, interval=0, what=f"{count} records of {topic} from {bootstrap}")
    finally:
        consumer.close()
    return got


def round_trip(broker: RunningBroker, records: int = 1000) -> None:
    topic = f"roundtrip-{uuid.uuid4().hex[:8]}"
    create_topics(broker.bootstrap, NewTopic(topic, num_partitions=3, replication_factor=1))
    values = [f"record-{i}-{uuid.uuid4().hex}".encode() for i in range(records)]
    produce(broker.bootstrap, topic, values)
    got = consume(broker.bootstrap, topic, records)
    assert len(got) == records
    assert sorted(msg.value() for msg in got) == sorted(values)


def test_kraft_broker_round_trips_1000_records(kafka_kraft):
    view = broker_io.probe_broker(kafka_kraft.bootstrap, kafka_kraft.broker_id)
    assert view is not None and view.cluster_id == kafka_kraft.cluster_id
    assert view.controller_id == kafka_kraft.broker_id
    round_trip(kafka_kraft)


def test_zookeeper_mode_broker_round_trips_1000_records(kafka_zk, zk_chroot):
    from kazoo.client import KazooClient

    round_trip(kafka_zk)
    # The broker registered itself under the test's own chroot.
    client = KazooClient(hosts=zk_chroot)
    client.start(timeout=15)
    try:
        assert client.get_children("/brokers/ids") == [str(kafka_zk.broker_id)]
    finally:
        client.stop()
        client.close()


def test_formatting_again_keeps_storage_and_data(kafka_kraft):
    node, data_dir = kafka_kraft.node, kafka_kraft.node.log_dirs[0]
    meta_before = (data_dir / broker_io.META_PROPERTIES).read_text()
    topic = "kept-across-restart"
    create_topics(kafka_kraft.bootstrap, NewTopic(topic, num_partitions=1, replication_factor=1))
    produce(kafka_kraft.bootstrap, topic, [b"a", b"b", b"c"])

    procs.stop_group(kafka_kraft.pid, grace=10.0)
    outcome = broker_io.ensure_storage_formatted(
        kafka_kraft.runtime, node, kafka_kraft.config_path, kafka_kraft.cluster_id)
    assert outcome is broker_io.FormatOutcome.ALREADY_FORMATTED
    assert (data_dir / broker_io.META_PROPERTIES).read_text() == meta_before

    # Another cluster id on the same dir is refused rather than reformatted.
    with pytest.raises(broker_io.StorageError, match="another cluster"):
        broker_io.ensure_storage_formatted(
            kafka_kraft.runtime, node, kafka_kraft.config_path, "AAAAAAAAAAAAAAAAAAAAAQ")

    launch(kafka_kraft)  # the fixture stops the new pid at teardown
    assert [m.value() for m in consume(kafka_kraft.bootstrap, topic, 3)] == [b"a", b"b", b"c"]


def test_producer_and_consumer_performance_against_kraft_broker(kafka_kraft):
    topic, records = "perf-producer", 4000
    create_topics(kafka_kraft.bootstrap, NewTopic(topic, num_partitions=1, replication_factor=1))
    argv = tools.producer_perf_argv(kafka_kraft.runtime, kafka_kraft.bootstrap, topic, records,
                                    record_size=100)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    result = tools.parse_producer_perf(done.stdout)
    assert result.records == records
    assert result.records_per_sec > 0 and result.p50_ms <= result.p99_ms <= result.max_latency_ms + 1
    consumer = Consumer({"bootstrap.servers": kafka_kraft.bootstrap, "group.id": "perf-check"})
    try:
        from confluent_kafka import TopicPartition

        low, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
    finally:
        consumer.close()
    assert high - low == records

    argv = tools.consumer_perf_argv(kafka_kraft.runtime, kafka_kraft.bootstrap, topic, records,
                                    timeout_ms=20000)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    consumed = tools.parse_consumer_perf(done.stdout)
    assert consumed.records == records
    assert consumed.mb > 0


def test_wordcount_demo_counts_words(kafka_kraft, tmp_path):
    bootstrap = kafka_kraft.bootstrap
    create_topics(
        bootstrap,
        NewTopic(tools.WORDCOUNT_INPUT, num_partitions=1, replication_factor=1),
        NewTopic(tools.WORDCOUNT_OUTPUT, num_partitions=1, replication_factor=1,
                 config={"cleanup.policy": "compact"}),
    )
    rng = random.Random(20261125)
    vocabulary = ["kafka", "mesos", "broker", "stream", "count", "word", "zookeeper", "kraft"]
    lines = [" ".join(rng.choice(vocabulary) for _ in range(rng.randint(1, 8))) for _ in range(200)]
    expected = collections.Counter(word for line in lines for word in line.split())
    produce(bootstrap, tools.WORDCOUNT_INPUT, [line.encode() for line in lines])

    props = tmp_path / "wordcount.properties"
    props.write_text(tools.wordcount_properties(
        bootstrap, tmp_path / "streams-state",
        overrides={"commit.interval.ms": "200", "statestore.cache.max.bytes": "0"}))
    log_path = tmp_path / "wordcount.log"
    app = procs.spawn(tools.wordcount_argv(kafka_kraft.runtime, props), log_path=log_path)
    try:
        latest: dict[str, int] = {}
        consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "wordcount-check",
                             "auto.offset.reset": "earliest"})
        consumer.subscribe([tools.WORDCOUNT_OUTPUT])

        def counts_complete() -> bool:
            assert app.poll() is None, "WordCountDemo exited:\n" + log_path.read_text()[-3000:]
            for msg in consumer.consume(num_messages=500, timeout=0.5):
                assert msg.error() is None, msg.error()
                latest[msg.key().decode()] = int.from_bytes(msg.value(), "big", signed=True)
            return latest == dict(expected)

        try:
            wait_for(counts_complete, timeout=90, interval=0,
                     what=f"word counts {dict(expected)} in {tools.WORDCOUNT_OUTPUT}")
        finally:
            consumer.close()
    finally:
        procs.stop_group(app.pid, grace=10.0)
    assert latest == dict(expected)


@pytest.mark.parametrize("mode_version", ["kafka4", "kafka3"])
def test_split_controller_and_broker_roles_form_a_cluster(tmp_path, mode_version):
    """A controller-only and a broker-only node (static quorum) of the same cluster id serve data."""
    from executor.runtime.broker_config import KRaftNode, Listener, Role, Voter
    from kmfwire.cluster_id import new_cluster_id
    from executor.runtime.kafka_dist import read_versions, runtime
    from tests.helpers.fixtures_kafka import BROKER_JVM_HEAP_MB, TEST_OVERRIDES

    rt = runtime(getattr(read_versions(), mode_version)).check_installed()
    ctl_host, broker_host = procs.loopback_ip(), procs.loopback_ip()
    ctl_port, broker_port = procs.free_port(ctl_host), procs.free_port(broker_host)
    voters = (Voter(1, ctl_host, ctl_port),)
    controller = KRaftNode(node_id=1, role=Role.CONTROLLER, voters=voters, log_dirs=(tmp_path / "c1",),
                           controller_listener=Listener("CONTROLLER", ctl_host, ctl_port),
                           kafka_major=rt.major)
    broker = KRaftNode(node_id=2, role=Role.BROKER, voters=voters, log_dirs=(tmp_path / "b2",),
                       broker_listener=Listener("PLAINTEXT", broker_host, broker_port),
                       kafka_major=rt.major, overrides=TEST_OVERRIDES)
    cluster_id = new_cluster_id()
    running = []
    try:
        for node in (controller, broker):
            work = tmp_path / f"node{node.node_id}"
            config = broker_io.prepare_broker(node, work / "server.properties")
            assert broker_io.ensure_storage_formatted(rt, node, config, cluster_id) \
                is broker_io.FormatOutcome.FORMATTED
            handle = RunningBroker(node, rt, work, config, work / "kafka.log", pid=0, cluster_id=cluster_id)
            if node.role is Role.BROKER:
                launch(handle)
            else:
                handle.pid = broker_io.start_broker(
                    rt, config, handle.log_path, JvmOptions(heap_mb=BROKER_JVM_HEAP_MB // 2),
                    spawn=lambda argv, log: procs.spawn(argv, log_path=log)).pid
            running.append(handle)
        view = broker_io.probe_broker(running[1].bootstrap, 2)
        assert view is not None and view.cluster_id == cluster_id and view.broker_ids == (2,)
        round_trip(running[1], records=200)
    finally:
        for handle in reversed(running):  # the broker first: its controlled shutdown needs the controller
            procs.stop_group(handle.pid, grace=10.0)
