"""scheduler.shell.kafka_tools against a real 3-broker KRaft cluster (Kafka 4.x from .cache): Kafka's
own ReassignPartitionsCommand and LogDirsCommand, run from the served Kafka archive, checked on
Kafka's own view (metadata, broker configs, the records themselves)."""
from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from executor.runtime.kafka_dist import Mode
from kmfwire import artifacts as names
from localmesos import procs
from scheduler.shell.kafka_tools import (
    COMPLETE,
    IN_PROGRESS,
    KafkaTools,
    KafkaToolsError,
    Move,
    parse_log_dirs,
    parse_verify,
)
from tests.helpers.fixtures_kafka import RunningBroker, kafka_runtime, start_kraft_cluster, stop_cluster
from tests.helpers.wait import wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.slow, pytest.mark.timeout(120)]

THROTTLE_RATES = ("leader.replication.throttled.rate", "follower.replication.throttled.rate")
THROTTLED_REPLICAS = ("leader.replication.throttled.replicas", "follower.replication.throttled.replicas")
RECORD = 1000  # bytes per record
# Small replica fetches, so that a throttle holds a move back at once: a follower's first fetch of a
# partition is not throttled and would otherwise bring up to 1 MB (replica.fetch.max.bytes).
SMALL_FETCHES = {"replica.fetch.max.bytes": "65536", "replica.fetch.response.max.bytes": "65536"}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> list[RunningBroker]:
    brokers = start_kraft_cluster(tmp_path_factory.mktemp("kafka-cluster"), 3, SMALL_FETCHES)
    try:
        yield brokers
    finally:
        stop_cluster(brokers)


@pytest.fixture(scope="module")
def bootstrap(cluster) -> str:
    return ",".join(broker.bootstrap for broker in cluster)


@pytest.fixture(scope="module")
def archive() -> Path:
    path = names.DEFAULT_DIR / names.kafka_file(kafka_runtime(Mode.KRAFT).version)
    if not path.is_file():
        pytest.fail(f"{path} is missing: run `make setup` (tools/artifacts.sh builds it)")
    return path


@pytest.fixture(scope="module")
def tools(archive, tmp_path_factory) -> KafkaTools:
    return KafkaTools(archive, tmp_path_factory.mktemp("kafka-tools"), timeout_s=60.0)


def create_topic(bootstrap: str, name: str, assignment: list[list[int]]) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    topic = NewTopic(name, num_partitions=len(assignment), replica_assignment=assignment)
    for future in admin.create_topics([topic], operation_timeout=30).values():
        future.result(timeout=60)
    wait_for(lambda: name in admin.list_topics(timeout=5).topics, timeout=30, what=f"topic {name}")


def produce(bootstrap: str, topic: str, partitions: int, per_partition: int) -> set[bytes]:
    """`per_partition` records of RECORD bytes to each partition, all acknowledged (acks=all)."""
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                         "linger.ms": 20})
    errors: list[str] = []
    sent: set[bytes] = set()
    for index in range(per_partition * partitions):
        value = f"{index:08d}".encode().ljust(RECORD, b".")
        sent.add(value)
        producer.produce(topic, value=value, partition=index % partitions,
                         on_delivery=lambda err, _msg: errors.append(str(err)) if err else None)
        producer.poll(0)
    assert producer.flush(60) == 0
    assert not errors, errors[:3]
    return sent


def consume_all(bootstrap: str, topic: str, count: int) -> set[bytes]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"kt-{uuid.uuid4().hex[:8]}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    got: set[bytes] = set()
    deadline = time.monotonic() + 40
    try:
        while len(got) < count and time.monotonic() < deadline:
            message = consumer.poll(1.0)
            if message is not None and not message.error():
                got.add(message.value())
    finally:
        consumer.close()
    return got


def replicas(bootstrap: str, topic: str) -> dict[int, list[int]]:
    metadata = AdminClient({"bootstrap.servers": bootstrap}).list_topics(topic, timeout=10)
    return {p: list(meta.replicas) for p, meta in metadata.topics[topic].partitions.items()}


def throttle_configs(bootstrap: str, topic: str) -> dict[str, str]:
    """Every throttle setting in effect: the brokers' rates ("<broker>:<name>") and the topic's
    throttled replica lists, with their values (one broker per call: Kafka allows no more)."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    found: dict[str, str] = {}
    for broker in ("0", "1", "2"):
        resource = ConfigResource("broker", broker)
        configs = admin.describe_configs([resource])[resource].result(timeout=30)
        found.update({f"{broker}:{name}": configs[name].value for name in THROTTLE_RATES
                      if name in configs and configs[name].value is not None})
    resource = ConfigResource("topic", topic)
    configs = admin.describe_configs([resource])[resource].result(timeout=30)
    found.update({name: configs[name].value for name in THROTTLED_REPLICAS
                  if name in configs and configs[name].value})
    return found


def rates(throttles: dict[str, str]) -> set[str]:
    return {value for name, value in throttles.items() if name.endswith("rate")}


def throttles_become(bootstrap: str, topic: str, check, what: str) -> dict[str, str]:
    """Wait until `check(throttle_configs(...))` holds: a config change goes through the controller
    and reaches each broker's metadata a moment later, so a describe right after it may lag."""
    seen: dict[str, str] = {}

    def probe() -> bool:
        seen.clear()
        seen.update(throttle_configs(bootstrap, topic))
        return bool(check(seen))

    wait_for(probe, timeout=20, interval=0.3, what=f"{what} (throttles seen: {seen})")
    return seen


def test_throttled_reassignment_moves_replicas_and_the_final_verify_removes_the_throttles(bootstrap, tools):
    create_topic(bootstrap, "moves", [[0, 1], [1, 0], [0, 1]])
    sent = produce(bootstrap, "moves", 3, per_partition=1000)  # ~1 MB a partition
    moves = [Move("moves", 0, (2, 0)), Move("moves", 1, (1, 2)), Move("moves", 2, (0, 1, 2))]

    tools.execute(bootstrap, moves, throttle_bytes_per_s=2_000_000)
    throttles_become(bootstrap, "moves", lambda seen: {seen.get(f"{b}:{name}") for b in "012"
                                                       for name in THROTTLE_RATES} == {"2000000"},
                     "the throttle rate on every broker")

    states: dict = {}

    def all_complete() -> bool:
        states.update(tools.verify(bootstrap, moves))
        assert set(states.values()) <= {COMPLETE, IN_PROGRESS}, states
        return set(states.values()) == {COMPLETE}

    wait_for(all_complete, timeout=60, interval=0.5, what=f"the reassignment to complete ({states})")
    target = {m.partition: list(m.replicas) for m in moves}
    wait_for(lambda: replicas(bootstrap, "moves") == target, timeout=20, what=f"the replicas {target}")
    throttles_become(bootstrap, "moves", lambda seen: seen == {}, "the final verify to remove every throttle")
    assert consume_all(bootstrap, "moves", len(sent)) == sent


def test_log_dir_sizes_reports_each_partitions_largest_replica(bootstrap, tools):
    create_topic(bootstrap, "log-dir-sizes", [[0, 1], [1, 2], [2, 0]])
    produce(bootstrap, "log-dir-sizes", 3, per_partition=200)
    sizes = tools.log_dir_sizes(bootstrap, [0, 1, 2])
    for partition in range(3):
        assert sizes[("log-dir-sizes", partition)] >= 200 * RECORD, sizes
    # client settings reach the tool through --command-config
    only_broker_0 = tools.log_dir_sizes(bootstrap, [0], {"client.id": "kmf-test", "request.timeout.ms": "20000"})
    assert ("log-dir-sizes", 1) not in only_broker_0 and only_broker_0[("log-dir-sizes", 0)] > 0
    with pytest.raises(KafkaToolsError, match="LogDirsCommand"):
        tools.log_dir_sizes(bootstrap, [0], {"security.protocol": "NO-SUCH-PROTOCOL"})


def test_cancel_keeps_the_old_replicas_and_removes_the_throttles(bootstrap, tools):
    create_topic(bootstrap, "to-cancel", [[0, 1]])
    produce(bootstrap, "to-cancel", 1, per_partition=1000)
    moves = [Move("to-cancel", 0, (2, 0))]
    tools.execute(bootstrap, moves, throttle_bytes_per_s=1024)  # ~1 MB at 1 KB/s: far from done
    throttles_become(bootstrap, "to-cancel", lambda seen: rates(seen) == {"1024"}, "the 1 KB/s throttle")
    assert tools.verify(bootstrap, moves) == {("to-cancel", 0): IN_PROGRESS}
    assert rates(throttle_configs(bootstrap, "to-cancel")) == {"1024"}  # verify while in progress keeps them
    with pytest.raises(KafkaToolsError, match="existing partition assignment"):
        tools.execute(bootstrap, moves, throttle_bytes_per_s=2048)
    tools.execute(bootstrap, moves, throttle_bytes_per_s=2048, additional=True)  # a new throttle
    throttles_become(bootstrap, "to-cancel", lambda seen: rates(seen) == {"2048"}, "the new 2 KB/s throttle")
    tools.cancel(bootstrap, moves)
    wait_for(lambda: replicas(bootstrap, "to-cancel") == {0: [0, 1]}, timeout=20, what="the old replicas")
    throttles_become(bootstrap, "to-cancel", lambda seen: seen == {}, "cancel to remove every throttle")
    # no reassignment is going, and the replicas are not the target: the tool's own words
    state = tools.verify(bootstrap, moves)[("to-cancel", 0)]
    assert "no active reassignment" in state and "to-cancel-0" in state, state


def test_a_move_to_an_unknown_broker_is_a_readable_error(bootstrap, tools):
    create_topic(bootstrap, "unknown-broker", [[0, 1]])
    with pytest.raises(KafkaToolsError) as caught:
        tools.execute(bootstrap, [Move("unknown-broker", 0, (0, 7))], throttle_bytes_per_s=None)
    message = str(caught.value)
    assert "ReassignPartitionsCommand --execute" in message and "Unknown broker id 7" in message, message
    assert "\tat " not in message and "at org.apache" not in message  # no stack frames
    assert replicas(bootstrap, "unknown-broker") == {0: [0, 1]}
    assert not list(tools.work_dir.glob(".run-*"))  # the reassignment JSON files are gone


def test_a_tool_that_runs_over_its_timeout_is_killed_with_its_process_group(archive, tmp_path):
    silent = procs.free_port("127.0.0.1")  # nobody listens: the admin client retries for 60 s
    tools = KafkaTools(archive, tmp_path, timeout_s=4.0)
    started = time.monotonic()
    with pytest.raises(KafkaToolsError, match="ran over 4 s and was killed"):
        tools.verify(f"127.0.0.1:{silent}", [Move("t", 0, (0, 1))])
    assert time.monotonic() - started < 10
    assert procs.pids_under(tmp_path) == []  # the JVM ran in tmp_path; nothing is left of it
    assert not list(tmp_path.glob(".run-*"))


def test_missing_java_is_a_readable_error(archive, tmp_path):
    with pytest.raises(KafkaToolsError) as caught:
        KafkaTools(archive, tmp_path, java="/nonexistent/java")
    message = str(caught.value)
    assert "needs Java 17" in message and "JAVA_HOME" in message and "/nonexistent/java" in message
    assert list(tmp_path.iterdir()) == []  # nothing unpacked for nothing


def test_a_missing_archive_is_a_readable_error(tmp_path):
    with pytest.raises(KafkaToolsError, match="kafka-9.9.9.tar.gz is missing"):
        KafkaTools(tmp_path / "kafka-9.9.9.tar.gz", tmp_path / "work")


def test_the_archive_is_unpacked_once_and_reused(archive, tmp_path):
    first = KafkaTools(archive, tmp_path)
    marker = first.home / "marker"
    marker.write_text("unpacked once")
    second = KafkaTools(archive, tmp_path)
    assert second.home == first.home and marker.is_file()
    assert [p.name for p in tmp_path.iterdir()] == [first.home.parents[1].name]  # no temp dirs left


def test_the_parsers_read_the_tools_exact_words():
    """The lines Kafka 4.3.1 prints (captured from the runs above), topic names with dashes."""
    moves = [Move("a-b", 0, (0, 1, 2)), Move("a-b", 1, (1, 2)), Move("c", 10, (2, 0))]
    verify = ("Status of partition reassignment:\n"
              "Reassignment of partition a-b-0 is completed.\n"
              "Reassignment of partition a-b-1 is still in progress.\n"
              "There is no active reassignment of partition c-10, but replica set is 0,1 rather than 2,0.\n\n"
              "Clearing broker-level throttles on brokers 0,1,2\n")
    assert parse_verify(verify, moves) == {
        ("a-b", 0): COMPLETE, ("a-b", 1): IN_PROGRESS,
        ("c", 10): "There is no active reassignment of partition c-10, but replica set is 0,1 rather than 2,0."}
    with pytest.raises(KafkaToolsError, match="said nothing about c-11"):
        parse_verify(verify, [*moves, Move("c", 11, (0,))])
    log_dirs = ("Querying brokers for log directories information\n"
                "Received log directory information from brokers 0,1\n"
                '{"brokers":[{"broker":0,"logDirs":[{"partitions":[{"partition":"a-b-0","size":10,"offsetLag":0,'
                '"isFuture":false}],"error":null,"logDir":"/d0"}]},{"broker":1,"logDirs":[{"partitions":['
                '{"partition":"a-b-0","size":12,"offsetLag":0,"isFuture":false},{"partition":"c-10","size":0,'
                '"offsetLag":0,"isFuture":false}],"error":null,"logDir":"/d1"}]}],"version":1}\n')
    assert parse_log_dirs(log_dirs) == {("a-b", 0): 12, ("c", 10): 0}
    with pytest.raises(KafkaToolsError, match="no JSON"):
        parse_log_dirs("ERROR: The given brokers do not exist from --broker-list: 9.")
