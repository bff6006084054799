"""Kafka's own programs from the 4.x runtime: the Streams WordCountDemo and the perf tools.

Pure: argv builders and parsers of the tools' summary output. The caller runs the argv (the
supervisor for a stream app, `subprocess.run` for a perf tool) and hands the output back here.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Mapping

import attrs

from executor.runtime.broker_config import render_properties
from executor.runtime.jvm import JvmOptions
from executor.runtime.kafka_dist import KafkaRuntime, parse_version
from kmfwire.errors import KmfError

WORDCOUNT_MAIN = "org.apache.kafka.streams.examples.wordcount.WordCountDemo"
PRODUCER_PERF_MAIN = "org.apache.kafka.tools.ProducerPerformance"
CONSUMER_PERF_MAIN = "org.apache.kafka.tools.ConsumerPerformance"
WORDCOUNT_INPUT = "streams-plaintext-input"
WORDCOUNT_OUTPUT = "streams-wordcount-output"
WORDCOUNT_APP_ID = "streams-wordcount"

TOOL_JVM = JvmOptions(heap_mb=256, log_level="WARN")


class ToolOutputError(KmfError, ValueError):
    """Tool output without the summary kmf expects; the message quotes what was there."""


def _java(runtime: KafkaRuntime, jvm: JvmOptions, main: str) -> list[str]:
    return [jvm.java, *jvm.flags(runtime, gc=False), "-cp", runtime.classpath, main]


def _check_bootstrap(bootstrap: str) -> str:
    if not bootstrap or any(ch.isspace() for ch in bootstrap):
        raise ValueError(f"bootstrap servers {bootstrap!r} must be host:port[,host:port...]")
    return bootstrap


# --- Kafka Streams WordCountDemo -----------------------------------------------------------------

def wordcount_properties(
    bootstrap: str,
    state_dir: Path,
    application_id: str = WORDCOUNT_APP_ID,
    overrides: Mapping[str, str] | None = None,
) -> str:
    """The properties file WordCountDemo takes as args[0] (its own defaults fill the rest).
    Every instance needs its own `state_dir`; instances sharing `application_id` share the work."""
    props = {
        "bootstrap.servers": _check_bootstrap(bootstrap),
        "application.id": application_id,
        "state.dir": str(state_dir),
    }
    props.update(overrides or {})
    return render_properties(props, "Kafka Streams WordCountDemo, written by kmf.")


def wordcount_argv(runtime: KafkaRuntime, properties_path: Path, jvm: JvmOptions = TOOL_JVM) -> list[str]:
    """`java ... WordCountDemo app.properties`; reads streams-plaintext-input, writes
    streams-wordcount-output (String word -> Long count). Create both topics first."""
    return [*_java(runtime, jvm, WORDCOUNT_MAIN), str(properties_path)]


# --- ProducerPerformance -------------------------------------------------------------------------

def _at_least(runtime: KafkaRuntime, major: int, minor: int) -> bool:
    return parse_version(runtime.version)[:2] >= (major, minor)


def producer_perf_argv(
    runtime: KafkaRuntime,
    bootstrap: str,
    topic: str,
    num_records: int,
    record_size: int = 100,
    throughput: int = -1,
    acks: str = "all",
    producer_props: Mapping[str, str] | None = None,
    jvm: JvmOptions = TOOL_JVM,
) -> list[str]:
    """`ProducerPerformance` sending `num_records` records of `record_size` bytes (throughput -1:
    as fast as it can). From 4.3 the producer settings go through --command-property."""
    if num_records < 1 or record_size < 1:
        raise ValueError(f"num_records {num_records} and record_size {record_size} must be >= 1")
    props = {"bootstrap.servers": _check_bootstrap(bootstrap), "acks": acks, **(producer_props or {})}
    flag = "--command-property" if _at_least(runtime, 4, 3) else "--producer-props"
    return [*_java(runtime, jvm, PRODUCER_PERF_MAIN), "--topic", topic,
            "--num-records", str(num_records), "--record-size", str(record_size),
            "--throughput", str(throughput), flag, *(f"{k}={v}" for k, v in props.items())]


@attrs.frozen
class ProducerPerfResult:
    """ProducerPerformance's final line: totals, rates and latency percentiles (ms)."""

    records: int
    records_per_sec: float
    mb_per_sec: float
    avg_latency_ms: float
    max_latency_ms: float
    p50_ms: int
    p95_ms: int
    p99_ms: int
    p999_ms: int


_PRODUCER_SUMMARY = re.compile(
    r"^(?P<records>\d+) records sent, (?P<rps>[\d.]+) records/sec \((?P<mbps>[\d.]+) MB/sec\), "
    r"(?P<avg>[\d.]+) ms avg latency, (?P<max>[\d.]+) ms max latency, "
    r"(?P<p50>\d+) ms 50th, (?P<p95>\d+) ms 95th, (?P<p99>\d+) ms 99th, (?P<p999>\d+) ms 99\.9th\.?\s*$"
)


def parse_producer_perf(output: str) -> ProducerPerfResult:
    """The final summary line (the one with percentiles) of ProducerPerformance's output; the
    periodic progress lines before it have no percentiles and are skipped."""
    for line in reversed(output.splitlines()):
        match = _PRODUCER_SUMMARY.match(line.strip())
        if match:
            return ProducerPerfResult(
                records=int(match["records"]), records_per_sec=float(match["rps"]),
                mb_per_sec=float(match["mbps"]), avg_latency_ms=float(match["avg"]),
                max_latency_ms=float(match["max"]), p50_ms=int(match["p50"]),
                p95_ms=int(match["p95"]), p99_ms=int(match["p99"]), p999_ms=int(match["p999"]),
            )
    tail = " | ".join(output.strip().splitlines()[-3:])
    raise ToolOutputError(f"no ProducerPerformance summary line in its output (last lines: {tail!r})")


# --- ConsumerPerformance -------------------------------------------------------------------------

def consumer_perf_argv(
    runtime: KafkaRuntime,
    bootstrap: str,
    topic: str,
    num_records: int,
    timeout_ms: int = 30000,
    group: str | None = None,
    jvm: JvmOptions = TOOL_JVM,
) -> list[str]:
    """`ConsumerPerformance` reading `num_records` records (--messages before 4.2, --num-records from
    4.2); it gives up after `timeout_ms` without records."""
    if num_records < 1:
        raise ValueError(f"num_records {num_records} must be >= 1")
    count_flag = "--num-records" if _at_least(runtime, 4, 2) else "--messages"
    argv = [*_java(runtime, jvm, CONSUMER_PERF_MAIN), "--bootstrap-server", _check_bootstrap(bootstrap),
            "--topic", topic, count_flag, str(num_records), "--timeout", str(timeout_ms)]
    if group:
        argv += ["--group", group]
    return argv


@attrs.frozen
class ConsumerPerfResult:
    """ConsumerPerformance's CSV row (times as printed, `yyyy-MM-dd HH:mm:ss:SSS`)."""

    start_time: str
    end_time: str
    mb: float
    mb_per_sec: float
    records: int
    records_per_sec: float
    rebalance_ms: int
    fetch_ms: int
    fetch_mb_per_sec: float
    fetch_records_per_sec: float


_CONSUMER_COLUMNS = {
    "start.time": "start_time", "end.time": "end_time", "data.consumed.in.MB": "mb",
    "MB.sec": "mb_per_sec", "data.consumed.in.nMsg": "records", "nMsg.sec": "records_per_sec",
    "rebalance.time.ms": "rebalance_ms", "fetch.time.ms": "fetch_ms", "fetch.MB.sec": "fetch_mb_per_sec",
    "fetch.nMsg.sec": "fetch_records_per_sec",
}


def parse_consumer_perf(output: str) -> ConsumerPerfResult:
    """The header line starting `start.time, end.time, ...` and the row after it."""
    lines = [line.strip() for line in output.splitlines()]
    for index, line in enumerate(lines):
        if line.startswith("start.time,") and index + 1 < len(lines):
            header = [cell.strip() for cell in line.split(",")]
            row = [cell.strip() for cell in lines[index + 1].split(",")]
            if len(row) != len(header):
                raise ToolOutputError(f"ConsumerPerformance row {lines[index + 1]!r} does not match {line!r}")
            values = dict(zip(header, row))
            missing = [name for name in _CONSUMER_COLUMNS if name not in values]
            if missing:
                raise ToolOutputError(f"ConsumerPerformance header {line!r} lacks {missing}")
            fields = {attr: values[col] for col, attr in _CONSUMER_COLUMNS.items()}
            try:
                return ConsumerPerfResult(
                    start_time=fields["start_time"], end_time=fields["end_time"],
                    mb=float(fields["mb"]), mb_per_sec=float(fields["mb_per_sec"]),
                    records=int(fields["records"]), records_per_sec=float(fields["records_per_sec"]),
                    rebalance_ms=int(fields["rebalance_ms"]), fetch_ms=int(fields["fetch_ms"]),
                    fetch_mb_per_sec=float(fields["fetch_mb_per_sec"]),
                    fetch_records_per_sec=float(fields["fetch_records_per_sec"]),
                )
            except ValueError as exc:
                raise ToolOutputError(f"ConsumerPerformance row {lines[index + 1]!r}: {exc}") from exc
    tail = " | ".join(output.strip().splitlines()[-3:])
    raise ToolOutputError(f"no ConsumerPerformance header and row in its output (last lines: {tail!r})")
