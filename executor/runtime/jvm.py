"""Java command lines of Kafka processes: JVM options, the broker, and the KRaft storage format step.

Pure: a runtime folder and paths in, argv lists out (nothing is run here).
"""
from __future__ import annotations

from pathlib import Path

import attrs

from executor.runtime.broker_config import BrokerConfigError
from executor.runtime.kafka_dist import KafkaRuntime, Mode
from kmfwire.cluster_id import check_cluster_id

BROKER_MAIN = "kafka.Kafka"
STORAGE_TOOL_MAIN = "kafka.tools.StorageTool"
# the exporter rules kmf ships (the metric names documented in docs/configuration.md#broker-metrics)
METRICS_RULES = Path(__file__).resolve().with_name("jmx_exporter.yaml")


@attrs.frozen
class JvmOptions:
    """JVM settings of one Kafka process. `tmp_dir` moves native-library unpacking (zstd, snappy,
    rocksdb) off /tmp; `log_level` is the console root level (4.x only; 3.9 stays at INFO)."""

    heap_mb: int = 512
    java: str = "java"
    tmp_dir: Path | None = None
    log_level: str | None = None
    extra: tuple[str, ...] = attrs.field(default=(), converter=lambda flags: tuple(str(f) for f in flags))

    def __attrs_post_init__(self) -> None:
        if not 64 <= self.heap_mb <= 65536:
            raise BrokerConfigError(f"jvm heap_mb {self.heap_mb} is outside 64..65536")

    def flags(self, runtime: KafkaRuntime, gc: bool = True) -> list[str]:
        flags = [f"-Xmx{self.heap_mb}m", f"-Xms{min(self.heap_mb, 256)}m"]
        if gc:  # kafka-run-class.sh's defaults
            flags += ["-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
                      "-XX:InitiatingHeapOccupancyPercent=35", "-XX:+ExplicitGCInvokesConcurrent"]
        flags.append("-Djava.awt.headless=true")
        flags += runtime.logging_flags()
        if self.log_level:
            flags.append(f"-Dkmf.log.level={self.log_level}")
        if self.tmp_dir is not None:
            tmp = str(self.tmp_dir)
            flags += [f"-Djava.io.tmpdir={tmp}", f"-DZstdTempFolder={tmp}",
                      f"-Dorg.xerial.snappy.tempdir={tmp}"]
        return flags + list(self.extra)


def metrics_agent_flag(agent: Path, host: str, port: int, rules: Path = METRICS_RULES) -> str:
    """``-javaagent:<jar>=<host>:<port>:<rules>``: Prometheus' JMX exporter in the broker's JVM,
    serving /metrics on `host` (the agent's address the broker's listeners use, so the port is
    taken on that address only, as Mesos reserved it) and reading `rules`."""
    if "=" in str(agent):  # the JVM takes what follows the first '=' as the agent's argument
        raise BrokerConfigError(f"JMX exporter agent jar {str(agent)!r}: a path with '=' cannot be passed")
    if not host or ":" in host:
        raise BrokerConfigError(f"JMX exporter host {host!r}: an IPv4 address or a host name is needed")
    if not 1 <= port <= 65535:
        raise BrokerConfigError(f"JMX exporter port {port} is outside 1..65535")
    return f"-javaagent:{agent}={host}:{port}:{rules}"


def broker_argv(
    runtime: KafkaRuntime,
    config_path: Path,
    jvm: JvmOptions = JvmOptions(),
    logs_dir: Path | None = None,
) -> list[str]:
    """`java ... kafka.Kafka server.properties` as kafka-server-start.sh runs it."""
    flags = jvm.flags(runtime)
    if logs_dir is not None:
        flags.append(f"-Dkafka.logs.dir={logs_dir}")
    return [jvm.java, *flags, "-cp", runtime.classpath, BROKER_MAIN, str(config_path)]


def storage_format_argv(
    runtime: KafkaRuntime,
    config_path: Path,
    cluster_id: str,
    jvm: JvmOptions = JvmOptions(heap_mb=256, log_level="WARN"),
    ignore_formatted: bool = False,
) -> list[str]:
    """`java ... kafka.tools.StorageTool format -t ID -c server.properties` (static quorum, so no
    --standalone). `ignore_formatted` formats only the dirs that are not formatted yet."""
    if Mode.KRAFT not in runtime.modes:
        raise BrokerConfigError(f"Kafka {runtime.version} has no KRaft mode to format storage for")
    argv = [jvm.java, *jvm.flags(runtime, gc=False), "-cp", runtime.classpath, STORAGE_TOOL_MAIN,
            "format", "-t", check_cluster_id(cluster_id), "-c", str(config_path)]
    if ignore_formatted:
        argv.append("--ignore-formatted")
    return argv
