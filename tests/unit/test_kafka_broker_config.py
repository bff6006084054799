"""Pure broker configuration: server.properties per mode and role, overrides, cluster ids, argv (jvm),
the pinned versions file, and the perf tools' summary parsers."""
from __future__ import annotations

import base64
import random
import re
import uuid
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from executor.runtime import tools
from executor.runtime.broker_config import (
    BrokerConfigError,
    KRaftNode,
    Listener,
    Replication,
    Role,
    Voter,
    ZkBroker,
    bootstrap_address,
    render_properties,
    render_server_properties,
    server_properties,
)
from executor.runtime.jvm import JvmOptions, broker_argv, storage_format_argv
from kmfwire.cluster_id import check_cluster_id, cluster_id_from_int, new_cluster_id
from executor.runtime.kafka_dist import (
    VERSIONS_FILE,
    KafkaDistError,
    KafkaRuntime,
    Mode,
    logging_jvm_flags,
    parse_versions,
    read_versions,
    supported_modes,
)

HOST = "127.0.0.7"
RT4 = KafkaRuntime("4.3.1", Path("/opt/kafka/4.3.1"))
RT3 = KafkaRuntime("3.9.2", Path("/opt/kafka/3.9.2"))


def parse_java_properties(text: str) -> dict[str, str]:
    """A reader for the subset of java.util.Properties that render_properties writes."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        key, value, current, escaped = None, None, [], False
        chars = iter(line)
        for ch in chars:
            if escaped:
                if ch == "t":
                    current.append("\t")
                elif ch == "u":
                    current.append(chr(int("".join(next(chars) for _ in range(4)), 16)))
                else:
                    current.append(ch)
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == "=" and key is None:
                key, current = "".join(current).encode("utf-16-le", "surrogatepass").decode("utf-16-le"), []
            else:
                current.append(ch)
        value = "".join(current).encode("utf-16-le", "surrogatepass").decode("utf-16-le")
        assert key is not None, f"no '=' in {line!r}"
        out[key] = value
    return out


def combined(**changes) -> KRaftNode:
    args = dict(
        node_id=1, role=Role.COMBINED, voters=(Voter(1, HOST, 9093),), log_dirs=(Path("/data/n1"),),
        broker_listener=Listener("PLAINTEXT", HOST, 9092),
        controller_listener=Listener("CONTROLLER", HOST, 9093),
    )
    args.update(changes)
    return KRaftNode(**args)


def zk_broker(**changes) -> ZkBroker:
    args = dict(broker_id=3, listener=Listener("PLAINTEXT", HOST, 9092),
                zookeeper_connect="127.0.0.2:2181/kmf/svc", log_dirs=(Path("/data/b3"),))
    args.update(changes)
    return ZkBroker(**args)


VOTERS = (Voter(1, "127.0.0.1", 19093), Voter(2, "127.0.0.2", 19093), Voter(3, "127.0.0.3", 19093))


# --- rendering per mode and role -----------------------------------------------------------------

def test_combined_node_renders_a_single_node_kraft_config():
    props = server_properties(combined())
    assert props["process.roles"] == "broker,controller"
    assert props["node.id"] == "1"
    assert props["controller.quorum.voters"] == f"1@{HOST}:9093"
    assert props["listeners"] == f"PLAINTEXT://{HOST}:9092,CONTROLLER://{HOST}:9093"
    assert props["advertised.listeners"] == f"PLAINTEXT://{HOST}:9092"
    assert props["controller.listener.names"] == "CONTROLLER"
    assert props["inter.broker.listener.name"] == "PLAINTEXT"
    assert props["listener.security.protocol.map"] == "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
    assert props["log.dirs"] == "/data/n1"
    assert props["offsets.topic.replication.factor"] == "1"
    assert props["share.coordinator.state.topic.replication.factor"] == "1"
    assert "broker.id" not in props and "zookeeper.connect" not in props


def test_rendered_file_reads_back_as_the_same_properties():
    for node in (combined(rack="zone-a"), zk_broker(rack="r1")):
        assert parse_java_properties(render_server_properties(node)) == server_properties(node)


def test_broker_only_node_knows_the_controllers_but_does_not_listen_as_one():
    node = KRaftNode(node_id=4, role=Role.BROKER, voters=VOTERS, log_dirs=("/d/4a", "/d/4b"),
                     broker_listener=Listener("INTERNAL", "127.0.0.4", 19092), rack="rack-2",
                     replication=Replication.for_cluster(3))
    props = server_properties(node)
    assert props["process.roles"] == "broker"
    assert props["listeners"] == "INTERNAL://127.0.0.4:19092"
    assert props["controller.listener.names"] == "CONTROLLER"
    assert props["listener.security.protocol.map"] == "CONTROLLER:PLAINTEXT,INTERNAL:PLAINTEXT"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:19093,2@127.0.0.2:19093,3@127.0.0.3:19093"
    assert props["log.dirs"] == "/d/4a,/d/4b"
    assert props["broker.rack"] == "rack-2"
    assert props["default.replication.factor"] == "3"
    assert props["min.insync.replicas"] == "2"
    assert bootstrap_address(node) == "127.0.0.4:19092"


def test_controller_only_node_has_no_broker_settings():
    node = KRaftNode(node_id=2, role=Role.CONTROLLER, voters=VOTERS, log_dirs=("/d/c2",),
                     controller_listener=Listener("CONTROLLER", "127.0.0.2", 19093), rack="ignored")
    props = server_properties(node)
    assert props["process.roles"] == "controller"
    assert props["listeners"] == "CONTROLLER://127.0.0.2:19093"
    for key in ("advertised.listeners", "inter.broker.listener.name", "broker.rack",
                "offsets.topic.replication.factor", "num.partitions"):
        assert key not in props
    with pytest.raises(BrokerConfigError, match="controller-only"):
        bootstrap_address(node)


def test_kafka_3_kraft_node_leaves_out_share_group_settings():
    props = server_properties(combined(kafka_major=3))
    assert not [key for key in props if key.startswith("share.")]
    assert props["offsets.topic.replication.factor"] == "1"


def test_zookeeper_mode_broker_renders_broker_id_and_chroot():
    props = server_properties(zk_broker(rack="r1"))
    assert props["broker.id"] == "3"
    assert props["zookeeper.connect"] == "127.0.0.2:2181/kmf/svc"
    assert props["listeners"] == props["advertised.listeners"] == f"PLAINTEXT://{HOST}:9092"
    assert props["broker.rack"] == "r1"
    assert "process.roles" not in props and "node.id" not in props
    assert not [key for key in props if key.startswith(("controller.", "share."))]


def test_advertised_host_differs_from_bind_host():
    node = combined(broker_listener=Listener("PLAINTEXT", "0.0.0.0", 9092, advertised_host="10.1.2.3"))
    props = server_properties(node)
    assert props["listeners"].startswith("PLAINTEXT://0.0.0.0:9092")
    assert props["advertised.listeners"] == "PLAINTEXT://10.1.2.3:9092"
    assert bootstrap_address(node) == "10.1.2.3:9092"


# --- overrides -----------------------------------------------------------------------------------

_keys = st.from_regex(r"[a-z][a-z0-9]{0,8}(\.[a-z][a-z0-9]{0,8}){0,3}", fullmatch=True)
_values = st.text(st.characters(min_codepoint=32, max_codepoint=0x2FF), max_size=20)


@given(data=st.data(), value=_values)
def test_an_override_of_a_rendered_key_wins_and_appears_once(data, value):
    node = data.draw(st.sampled_from([combined(), zk_broker()]))
    key = data.draw(st.sampled_from(sorted(server_properties(node))))
    changed = (combined if isinstance(node, KRaftNode) else zk_broker)(overrides={key: value})
    props = server_properties(changed)
    assert props[key] == value
    text = render_server_properties(changed)
    assert sum(1 for line in text.splitlines() if line.split("=", 1)[0] == key) == 1
    assert parse_java_properties(text) == props


@given(overrides=st.dictionaries(_keys, _values, max_size=6))
def test_overrides_are_all_present_after_rendered_keys(overrides):
    node = combined(overrides=overrides)
    props = server_properties(node)
    for key, value in overrides.items():
        assert props[key] == value
    assert parse_java_properties(render_server_properties(node)) == props


def test_override_values_are_rendered_as_kafka_text():
    props = server_properties(combined(overrides={"auto.create.topics.enable": False, "num.io.threads": 4}))
    assert props["auto.create.topics.enable"] == "false"
    assert props["num.io.threads"] == "4"


@pytest.mark.parametrize("overrides, message", [
    ({"bad key": "x"}, "not a Kafka property name"),
    ({"a.b": "two\nlines"}, "line break"),
    ({"": "x"}, "not a Kafka property name"),
])
def test_bad_overrides_are_refused_with_the_key(overrides, message):
    with pytest.raises(BrokerConfigError, match=message):
        combined(overrides=overrides)


@given(props=st.dictionaries(_keys, st.text(max_size=30).filter(lambda s: "\n" not in s and "\r" not in s)))
def test_properties_rendering_escapes_what_java_would_misread(props):
    assert parse_java_properties(render_properties(props, "header\nsecond line")) == props


# --- validation ----------------------------------------------------------------------------------

@pytest.mark.parametrize("changes, message", [
    (dict(voters=(Voter(2, HOST, 9093),)), "must be one of the voters"),
    (dict(voters=(Voter(1, HOST, 9999),)), "differs from controller listener"),
    (dict(voters=()), "quorum .voters. is empty"),
    (dict(voters=(Voter(1, HOST, 9093), Voter(1, HOST, 9094))), "node id twice"),
    (dict(broker_listener=None), "needs a broker_listener"),
    (dict(controller_listener=None), "needs a controller_listener"),
    (dict(log_dirs=()), "log_dirs is empty"),
    (dict(log_dirs=("relative/dir",)), "absolute path"),
    (dict(log_dirs=("/a", "/a")), "twice"),
    (dict(rack="two words"), "rack"),
    (dict(node_id=-1), "node id must be >= 0"),
    (dict(broker_listener=Listener("CONTROLLER", HOST, 9092)), "share a name"),
    (dict(kafka_major=5), "kafka_major"),
])
def test_inconsistent_kraft_nodes_are_refused(changes, message):
    with pytest.raises(BrokerConfigError, match=message):
        combined(**changes)


def test_broker_only_node_must_not_have_a_controller_listener():
    with pytest.raises(BrokerConfigError, match="no controller_listener"):
        combined(role=Role.BROKER)


def test_broker_only_node_must_not_share_a_voters_id():
    with pytest.raises(BrokerConfigError, match="must not be a voter's id"):
        combined(role=Role.BROKER, controller_listener=None)


def test_voters_must_be_voter_values():
    with pytest.raises(BrokerConfigError, match="Voter values"):
        combined(voters=["1@127.0.0.7:9093"])


@pytest.mark.parametrize("connect", ["", "zk", "zk:notaport", "zk:2181/a/", "zk:2181//a", "a b:2181", "zk:70000"])
def test_bad_zookeeper_connect_strings_are_refused(connect):
    with pytest.raises(BrokerConfigError, match="zookeeper_connect|port"):
        zk_broker(zookeeper_connect=connect)


@pytest.mark.parametrize("make, message", [
    (lambda: Listener("plaintext", HOST, 9092), "upper case"),
    (lambda: Listener("PLAINTEXT", HOST, 0), "outside 1..65535"),
    (lambda: Listener("PLAINTEXT", "a,b", 9092), "plain host"),
    (lambda: Listener("PLAINTEXT", HOST, 9092, protocol="TLS"), "protocol"),
    (lambda: Voter(1, HOST, 65536), "outside 1..65535"),
    (lambda: Replication(default_replication_factor=1, min_insync_replicas=2), "exceeds"),
    (lambda: Replication(num_partitions=0), "num_partitions must be >= 1"),
    (lambda: JvmOptions(heap_mb=10), "heap_mb"),
])
def test_bad_values_name_what_is_wrong(make, message):
    with pytest.raises(BrokerConfigError, match=message):
        make()


@given(st.integers(min_value=1, max_value=20))
def test_cluster_replication_defaults_never_exceed_the_broker_count(brokers):
    rep = Replication.for_cluster(brokers)
    assert 1 <= rep.default_replication_factor <= min(3, brokers)
    assert 1 <= rep.min_insync_replicas <= rep.default_replication_factor


# --- cluster ids ---------------------------------------------------------------------------------

@settings(max_examples=300)
@given(seed=st.integers(min_value=0, max_value=2**64))
def test_cluster_ids_have_kafkas_uuid_format(seed):
    cid = new_cluster_id(random.Random(seed))
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", cid)
    assert not cid.startswith("-")
    raw = base64.urlsafe_b64decode(cid + "==")
    assert len(raw) == 16
    assert uuid.UUID(bytes=raw).version == 4  # as java.util.UUID.randomUUID makes them
    assert check_cluster_id(cid) == cid
    assert new_cluster_id(random.Random(seed)) == cid  # chance is an argument


def test_cluster_ids_never_start_with_a_dash():
    class DashFirst(random.Random):
        """Returns a value whose id starts with '-' first, then ordinary ones."""

        def __init__(self) -> None:
            super().__init__(1)
            self.calls = 0

        def getrandbits(self, k: int) -> int:
            self.calls += 1
            return (0b111110 << 122) if self.calls == 1 else super().getrandbits(k)

    rng = DashFirst()
    assert cluster_id_from_int(uuid.UUID(int=0b111110 << 122, version=4).int).startswith("-")
    cid = new_cluster_id(rng)
    assert not cid.startswith("-") and rng.calls == 2


@pytest.mark.parametrize("bad", ["", "short", "A" * 23, "MkU3OEVBNTcwNTJENDM2Q!", "AAAAAAAAAAAAAAAAAAAAAB"])
def test_malformed_cluster_ids_are_refused(bad):
    with pytest.raises(BrokerConfigError, match="cluster id"):
        check_cluster_id(bad)


# --- java command lines --------------------------------------------------------------------------

def test_storage_format_argv_formats_with_the_cluster_id_and_config():
    cid = new_cluster_id(random.Random(7))
    argv = storage_format_argv(RT4, Path("/run/n1/server.properties"), cid)
    assert argv[0] == "java"
    assert argv[argv.index("-cp") + 1] == "/opt/kafka/4.3.1/libs/*"
    tail = argv[argv.index("kafka.tools.StorageTool"):]
    assert tail == ["kafka.tools.StorageTool", "format", "-t", cid, "-c", "/run/n1/server.properties"]
    assert "-Dlog4j2.configurationFile=/opt/kafka/4.3.1/config/log4j2.properties" in argv
    assert "--standalone" not in argv  # static voters: Kafka refuses --standalone
    with_ignore = storage_format_argv(RT4, Path("/c"), cid, ignore_formatted=True)
    assert with_ignore[-1] == "--ignore-formatted"


def test_storage_format_argv_refuses_a_bad_cluster_id():
    with pytest.raises(BrokerConfigError, match="cluster id"):
        storage_format_argv(RT4, Path("/c"), "not-an-id")


def test_broker_argv_per_line_uses_that_lines_logging_flag():
    jvm = JvmOptions(heap_mb=384, tmp_dir=Path("/sandbox/tmp"), extra=("-Dx=y",))
    argv4 = broker_argv(RT4, Path("/s/server.properties"), jvm, logs_dir=Path("/s/logs"))
    assert argv4[-3:] == ["/opt/kafka/4.3.1/libs/*", "kafka.Kafka", "/s/server.properties"]
    assert "-Xmx384m" in argv4 and "-Djava.io.tmpdir=/sandbox/tmp" in argv4 and "-Dx=y" in argv4
    assert "-Dkafka.logs.dir=/s/logs" in argv4
    assert "-Dlog4j2.configurationFile=/opt/kafka/4.3.1/config/log4j2.properties" in argv4
    argv3 = broker_argv(RT3, Path("/s/server.properties"))
    assert "-Dlog4j.configuration=file:/opt/kafka/3.9.2/config/log4j.properties" in argv3
    assert not [flag for flag in argv3 if flag.startswith("-Dlog4j2")]
    assert "-Xmx512m" in argv3


# --- versions and runtimes -----------------------------------------------------------------------

def test_supported_modes_per_line():
    assert supported_modes("4.3.1") == {Mode.KRAFT}
    assert supported_modes("3.9.2") == {Mode.KRAFT, Mode.ZOOKEEPER}
    with pytest.raises(KafkaDistError, match="too old"):
        supported_modes("2.8.2")
    with pytest.raises(KafkaDistError, match="MAJOR.MINOR.PATCH"):
        supported_modes("4.3")


def test_logging_flags_per_line():
    assert logging_jvm_flags("3.9.2", Path("/c")) == ("-Dlog4j.configuration=file:/c/log4j.properties",)
    assert logging_jvm_flags("4.0.0", Path("/c")) == ("-Dlog4j2.configurationFile=/c/log4j2.properties",)


def test_the_pinned_versions_file_parses():
    versions = read_versions(VERSIONS_FILE)
    assert versions.for_mode(Mode.KRAFT) == versions.kafka4
    assert supported_modes(versions.kafka4) == {Mode.KRAFT}
    assert Mode.ZOOKEEPER in supported_modes(versions.for_mode(Mode.ZOOKEEPER))


@pytest.mark.parametrize("text, message", [
    ("KAFKA4_VERSION=4.3.1\n", "KAFKA3_VERSION not set"),
    ("KAFKA4_VERSION=4.3.1\nKAFKA3_VERSION=3.9.2\nbad line\n", r"line 3"),
    ("KAFKA4_VERSION=\"4.3.1\"\nKAFKA3_VERSION=3.9.2\n", r"line 1"),
    ("KAFKA4_VERSION=3.9.2\nKAFKA3_VERSION=3.9.2\n", "not a 4.x version"),
    ("KAFKA4_VERSION=4.3.1\nKAFKA3_VERSION=4.0.0\n", "no ZooKeeper mode"),
])
def test_bad_versions_files_are_refused_with_the_line(text, message):
    with pytest.raises(KafkaDistError, match=message):
        parse_versions(text, "versions.env")


def test_missing_runtime_says_to_run_setup(tmp_path):
    with pytest.raises(KafkaDistError, match="make setup"):
        KafkaRuntime("4.3.1", tmp_path / "4.3.1").check_installed()


# --- perf tools and WordCountDemo ----------------------------------------------------------------

PRODUCER_OUTPUT = """\
[2026-11-25 03:27:31,772] WARN [Producer clientId=perf-producer-client] metadata ... (NetworkClient)
2000 records sent, 399.9 records/sec (0.04 MB/sec), 12.5 ms avg latency, 300.0 ms max latency.
3000 records sent, 4137.931034 records/sec (0.39 MB/sec), 68.92 ms avg latency, 585.00 ms max latency, 72 ms 50th, 85 ms 95th, 88 ms 99th, 89 ms 99.9th.
"""


def test_producer_perf_summary_is_the_line_with_percentiles():
    result = tools.parse_producer_perf(PRODUCER_OUTPUT)
    assert (result.records, result.records_per_sec, result.mb_per_sec) == (3000, 4137.931034, 0.39)
    assert (result.avg_latency_ms, result.max_latency_ms) == (68.92, 585.0)
    assert (result.p50_ms, result.p95_ms, result.p99_ms, result.p999_ms) == (72, 85, 88, 89)


@given(records=st.integers(1, 10**9), rate=st.floats(0, 1e7), mb=st.floats(0, 1e4),
       lat=st.lists(st.integers(0, 10**6), min_size=4, max_size=4))
def test_producer_perf_parser_reads_back_what_the_tool_prints(records, rate, mb, lat):
    p50, p95, p99, p999 = sorted(lat)
    line = (f"{records} records sent, {rate:.6f} records/sec ({mb:.2f} MB/sec), {rate / 7:.2f} ms avg "
            f"latency, {p999:.2f} ms max latency, {p50} ms 50th, {p95} ms 95th, {p99} ms 99th, "
            f"{p999} ms 99.9th.")
    result = tools.parse_producer_perf("noise\n" + line + "\n")
    assert result.records == records and result.records_per_sec == float(f"{rate:.6f}")
    assert (result.p50_ms, result.p95_ms, result.p99_ms, result.p999_ms) == (p50, p95, p99, p999)


def test_consumer_perf_row_is_parsed_by_header():
    output = (
        "WARN something\n"
        "start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, "
        "rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec\n"
        "2026-11-25 03:27:32:836, 2026-11-25 03:27:33:355, 0.2861, 0.5513, 3000, 5780.3468, 449, 70, "
        "4.0872, 42857.1429\n"
    )
    result = tools.parse_consumer_perf(output)
    assert result.records == 3000 and result.mb == 0.2861 and result.rebalance_ms == 449
    assert result.start_time == "2026-11-25 03:27:32:836" and result.fetch_records_per_sec == 42857.1429


@pytest.mark.parametrize("parse", [tools.parse_producer_perf, tools.parse_consumer_perf])
def test_output_without_a_summary_is_an_error_quoting_it(parse):
    with pytest.raises(tools.ToolOutputError, match="Exception in thread"):
        parse("Exception in thread main: TimeoutException\n")


def test_perf_tool_flags_follow_the_kafka_version():
    p4 = tools.producer_perf_argv(RT4, "h:1", "t", 10, producer_props={"linger.ms": "5"})
    assert p4[p4.index("--command-property") + 1:] == ["bootstrap.servers=h:1", "acks=all", "linger.ms=5"]
    assert "--producer-props" in tools.producer_perf_argv(RT3, "h:1", "t", 10)
    assert "--num-records" in tools.consumer_perf_argv(RT4, "h:1", "t", 10)
    assert "--messages" in tools.consumer_perf_argv(RT3, "h:1", "t", 10)
    with pytest.raises(ValueError, match="num_records"):
        tools.producer_perf_argv(RT4, "h:1", "t", 0)


def test_wordcount_gets_its_properties_file():
    argv = tools.wordcount_argv(RT4, Path("/s/app.properties"))
    assert argv[-2:] == [tools.WORDCOUNT_MAIN, "/s/app.properties"]
    props = parse_java_properties(tools.wordcount_properties("127.0.0.3:9092", Path("/s/state"),
                                                             overrides={"num.stream.threads": "2"}))
    assert props == {"bootstrap.servers": "127.0.0.3:9092", "application.id": "streams-wordcount",
                     "state.dir": "/s/state", "num.stream.threads": "2"}


# --- the format-once rule, on files only (no java runs here) -------------------------------------

def write_meta(directory: Path, cluster_id: str, node: int) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "meta.properties").write_text(
        f"#\n#Wed Nov 25 03:24:33 UTC 2026\nnode.id={node}\ndirectory.id=SF81rLZbUMBf0m3DRJNtfg\n"
        f"version=1\ncluster.id={cluster_id}\n")


def test_formatted_dirs_are_never_formatted_again(tmp_path):
    from executor.runtime import broker as broker_io

    cid = new_cluster_id(random.Random(3))
    node = combined(log_dirs=(tmp_path / "a", tmp_path / "b"))
    assert broker_io.storage_state(node, cid) == ([], [tmp_path / "a", tmp_path / "b"])
    for directory in node.log_dirs:
        write_meta(directory, cid, 1)
    before = {d: (d / "meta.properties").read_text() for d in node.log_dirs}
    # The runtime folder does not exist: had it tried to run StorageTool, this would fail.
    missing_runtime = KafkaRuntime("4.3.1", tmp_path / "no-such-runtime")
    outcome = broker_io.ensure_storage_formatted(missing_runtime, node, tmp_path / "server.properties", cid)
    assert outcome is broker_io.FormatOutcome.ALREADY_FORMATTED
    assert {d: (d / "meta.properties").read_text() for d in node.log_dirs} == before


@pytest.mark.parametrize("meta_cluster, meta_node, message", [
    ("AAAAAAAAAAAAAAAAAAAAAQ", 1, "another cluster"),
    (None, 2, "another node"),
])
def test_data_dirs_of_another_cluster_or_node_are_refused(tmp_path, meta_cluster, meta_node, message):
    from executor.runtime import broker as broker_io

    cid = new_cluster_id(random.Random(4))
    node = combined(log_dirs=(tmp_path / "a",))
    write_meta(tmp_path / "a", meta_cluster or cid, meta_node)
    with pytest.raises(broker_io.StorageError, match=message) as err:
        broker_io.storage_state(node, cid)
    assert str(tmp_path / "a" / "meta.properties") in str(err.value)


def test_runtime_paths_per_line():
    assert RT4.classpath == "/opt/kafka/4.3.1/libs/*"
    assert RT4.logging_config == Path("/opt/kafka/4.3.1/config/log4j2.properties")
    assert RT3.logging_config == Path("/opt/kafka/3.9.2/config/log4j.properties")
    assert RT3.supports(Mode.ZOOKEEPER) and not RT4.supports(Mode.ZOOKEEPER)


# --- ZooKeeper → KRaft migration (Kafka 3.9) ------------------------------------------------------

def test_a_zookeeper_mode_broker_in_migration_mode_knows_the_quorum_and_pins_its_protocol():
    from executor.runtime.broker_config import ZkMigration

    props = server_properties(zk_broker(migration=ZkMigration(VOTERS, "3.9")))
    assert props["zookeeper.metadata.migration.enable"] == "true"
    assert props["controller.quorum.voters"] == ",".join(str(v) for v in VOTERS)
    assert props["controller.listener.names"] == "CONTROLLER"
    assert props["listener.security.protocol.map"] == "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
    assert props["inter.broker.protocol.version"] == "3.9"
    assert props["zookeeper.connect"] == "127.0.0.2:2181/kmf/svc" and props["broker.id"] == "3"
    assert "zookeeper.metadata.migration.enable" not in server_properties(zk_broker())


def test_a_migrating_controller_reaches_zookeeper_and_the_brokers_inter_broker_listener():
    from executor.runtime.broker_config import ZkLink

    node = KRaftNode(node_id=1, role=Role.CONTROLLER, voters=(Voter(1, HOST, 9093),), log_dirs=(Path("/c"),),
                     controller_listener=Listener("CONTROLLER", HOST, 9093), kafka_major=3,
                     zk_migration=ZkLink("127.0.0.2:2181/kmf/svc", "REPLICATION", "SSL"))
    props = server_properties(node)
    assert props["zookeeper.metadata.migration.enable"] == "true"
    assert props["zookeeper.connect"] == "127.0.0.2:2181/kmf/svc"
    assert props["inter.broker.listener.name"] == "REPLICATION"
    assert props["listener.security.protocol.map"] == "CONTROLLER:PLAINTEXT,REPLICATION:SSL"
    assert props["listeners"] == f"CONTROLLER://{HOST}:9093"  # it serves no broker listener


@pytest.mark.parametrize("build, message", [
    (lambda m: combined(kafka_major=3, zk_migration=m.ZkLink("h:1")), "only a Kafka 3 controller-only node"),
    (lambda m: KRaftNode(node_id=1, role=Role.CONTROLLER, voters=(Voter(1, HOST, 9093),), log_dirs=(Path("/c"),),
                         controller_listener=Listener("CONTROLLER", HOST, 9093), kafka_major=4,
                         zk_migration=m.ZkLink("h:1")), "Kafka 4"),
    (lambda m: m.ZkMigration(VOTERS, "3.9.2"), "not a major.minor release"),
    (lambda m: m.ZkMigration((), "3.9"), r"\(voters\) is empty"),
    (lambda m: m.ZkLink("h:1", "plain"), "not NAME:PROTOCOL"),
    (lambda m: zk_broker(listener=Listener("CONTROLLER", HOST, 9092), migration=m.ZkMigration(VOTERS, "3.9")),
     "the KRaft quorum's name"),
])
def test_migration_settings_kafka_would_refuse_are_refused_here(build, message):
    from executor.runtime import broker_config

    with pytest.raises(BrokerConfigError, match=message):
        build(broker_config)


def test_a_migrated_zookeeper_mode_dir_is_this_nodes_and_never_formatted_again(tmp_path):
    from executor.runtime import broker as broker_io

    cid = new_cluster_id(random.Random(5))
    node = KRaftNode(node_id=7, role=Role.BROKER, voters=VOTERS, log_dirs=(tmp_path / "d",),
                     broker_listener=Listener("PLAINTEXT", HOST, 9092), kafka_major=3)
    (tmp_path / "d").mkdir()
    # what a Kafka 3.9 ZooKeeper-mode broker writes (and keeps, adding directory.id, once migrated)
    (tmp_path / "d" / "meta.properties").write_text(f"version=0\nbroker.id=7\ncluster.id={cid}\n")
    assert broker_io.storage_state(node, cid) == ([tmp_path / "d"], [])
    missing_runtime = KafkaRuntime("3.9.2", tmp_path / "no-such-runtime")
    assert broker_io.ensure_storage_formatted(missing_runtime, node, tmp_path / "s.properties", cid) \
        is broker_io.FormatOutcome.ALREADY_FORMATTED
    # another broker's ZooKeeper-mode dir is still refused
    (tmp_path / "d" / "meta.properties").write_text(f"version=0\nbroker.id=4\ncluster.id={cid}\n")
    with pytest.raises(broker_io.StorageError, match="another node"):
        broker_io.storage_state(node, cid)
