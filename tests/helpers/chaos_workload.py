"""The chaos workload: numbered records in, every acknowledged number checked out.

- :func:`create_topic` makes the topic (replication factor 3, ``min.insync.replicas=2`` by default).
- :class:`Workload` is a producer thread (``acks=all``, ``enable.idempotence=true``) sending records
  numbered 0, 1, 2, … (key = the number, value = ``record-<n>-<padding>``); the delivery callback
  records exactly which numbers the cluster acknowledged and which failed.
- :func:`read_numbers` reads the whole topic back (a fresh group id, from the beginning,
  ``read_committed``) up to the end offsets taken when it starts.
- :func:`summarize` (pure) compares the two: lost = acknowledged but not read (must be empty),
  duplicates = read more than once, unexpected = read but never sent.
- :func:`verify` = read_numbers + summarize; :func:`run_for` = start, wait for a count, stop.
- The load (several producers): :class:`Load` runs :class:`NumberedProducer` threads, idempotent
  ones and transactional ones (a commit every N records, some transactions aborted on purpose),
  each numbering its own records; :func:`read_load` reads them back (read_committed) and
  :func:`check_load` / :func:`check_stream` (pure) report per producer lost, duplicated,
  reordered within a partition, and read-although-aborted records.
- :func:`start_kraft_cluster` / :func:`stop_cluster`: a real 3-node KRaft cluster for tests
  (a candidate for tests/helpers/fixtures_kafka.py).

Everything has a timeout; nothing here asserts, tests do.
"""
from __future__ import annotations

import collections
import dataclasses
import threading
import time
import uuid
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from executor.runtime import broker as broker_io
from executor.runtime.broker_config import KRaftNode, Listener, Replication, Role, Voter
from kmfwire.cluster_id import new_cluster_id
from executor.runtime.jvm import JvmOptions
from executor.runtime.kafka_dist import Mode
from localmesos import procs
from tests.helpers.fixtures_kafka import BROKER_JVM_HEAP_MB, TEST_OVERRIDES, RunningBroker, kafka_runtime


class WorkloadError(RuntimeError):
    """The workload could not do its job (topic, producer, reader); the message says where."""


def create_topic(bootstrap: str, topic: str, partitions: int = 3, replication_factor: int = 3,
                 min_insync_replicas: int = 2, timeout: float = 60.0) -> None:
    """Create `topic` and wait until every partition has a leader and a full ISR."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    new = NewTopic(topic, num_partitions=partitions, replication_factor=replication_factor,
                   config={"min.insync.replicas": str(min_insync_replicas)})
    try:
        admin.create_topics([new], operation_timeout=timeout)[topic].result(timeout=timeout)
    except KafkaException as exc:
        raise WorkloadError(f"creating topic {topic!r} (RF {replication_factor}, "
                            f"min.insync.replicas {min_insync_replicas}) on {bootstrap}: {exc}") from None
    deadline = time.monotonic() + timeout
    while True:
        try:
            meta = admin.list_topics(topic, timeout=5).topics.get(topic)
            if (meta is not None and meta.error is None and len(meta.partitions) == partitions
                    and all(p.leader >= 0 and len(p.isrs) == replication_factor
                            for p in meta.partitions.values())):
                return
        except KafkaException:
            pass
        if time.monotonic() > deadline:
            raise WorkloadError(f"topic {topic!r} on {bootstrap}: partitions without leader or "
                                f"full ISR after {timeout:g}s")
        time.sleep(0.2)


def record_value(number: int, size: int = 100) -> bytes:
    head = f"record-{number}-".encode()
    return head + b"x" * max(0, size - len(head))


def number_of(key: bytes | None, value: bytes | None, where: str) -> int:
    """The record number from key and value; they must agree (a mangled record is an error)."""
    try:
        number = int((key or b"").decode("ascii"))
    except ValueError:
        raise WorkloadError(f"{where}: key {key!r} is not a record number") from None
    if not (value or b"").startswith(f"record-{number}-".encode()):
        raise WorkloadError(f"{where}: value {value[:40] if value else value!r} does not carry number {number}")
    return number


@dataclass(frozen=True)
class ProducerReport:
    """What the producer thread did. `unresolved` were sent but neither acknowledged nor failed
    when the producer was stopped (still in flight after the flush timeout)."""

    topic: str
    attempted: int
    acknowledged: frozenset[int]
    failed: dict[int, str]
    unresolved: frozenset[int]
    duration_s: float


@dataclass(frozen=True)
class WorkloadSummary:
    """The verdict. `lost` must be empty for a passing run."""

    topic: str
    attempted: int
    acknowledged: int
    failed: int
    unresolved: int
    read: int
    lost: tuple[int, ...]
    duplicates: tuple[int, ...]
    unexpected: tuple[int, ...]
    read_duration_s: float = 0.0
    notes: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.lost and not self.duplicates and not self.unexpected

    def line(self) -> str:
        return (f"{self.topic}: attempted {self.attempted}, acknowledged {self.acknowledged}, "
                f"failed {self.failed}, unresolved {self.unresolved}, read {self.read}, "
                f"lost {len(self.lost)}, duplicates {len(self.duplicates)}, "
                f"unexpected {len(self.unexpected)}")


def summarize(topic: str, report: ProducerReport, read: Iterable[int], read_duration_s: float = 0.0) -> WorkloadSummary:
    """Compare what was acknowledged with what was read back (pure)."""
    seen = collections.Counter(read)
    attempted = set(range(report.attempted))
    lost = tuple(sorted(n for n in report.acknowledged if n not in seen))
    duplicates = tuple(sorted(n for n, times in seen.items() if times > 1))
    unexpected = tuple(sorted(n for n in seen if n not in attempted))
    return WorkloadSummary(topic=topic, attempted=report.attempted,
                           acknowledged=len(report.acknowledged), failed=len(report.failed),
                           unresolved=len(report.unresolved), read=sum(seen.values()), lost=lost,
                           duplicates=duplicates, unexpected=unexpected, read_duration_s=read_duration_s)


class Workload:
    """A producer thread sending numbered records to `topic` until :meth:`stop`.

    `rate` caps records per second (None: as fast as the producer accepts them); `max_records`
    stops sending after that many. :attr:`acknowledged_count` can be polled while it runs.
    """

    def __init__(self, bootstrap: str, topic: str, rate: float | None = 500.0,
                 max_records: int | None = None, value_size: int = 100,
                 delivery_timeout_ms: int = 120_000, extra_config: dict | None = None) -> None:
        self.bootstrap, self.topic, self.rate = bootstrap, topic, rate
        self.max_records, self.value_size = max_records, value_size
        self._config = {
            "bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
            "linger.ms": 5, "message.timeout.ms": delivery_timeout_ms,
            "client.id": f"chaos-workload-{topic}", "log_level": 3, **(extra_config or {}),
        }
        self._lock = threading.Lock()
        self._acked: set[int] = set()
        self._failed: dict[int, str] = {}
        self._sent = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._producer: Producer | None = None
        self._started_at = 0.0

    # the delivery callback runs on the thread that calls poll()/flush()
    def _on_delivery(self, err: KafkaError | None, msg) -> None:
        number = int(msg.key().decode())
        with self._lock:
            if err is None:
                self._acked.add(number)
            else:
                self._failed[number] = err.str()

    @property
    def acknowledged_count(self) -> int:
        with self._lock:
            return len(self._acked)

    @property
    def failed_count(self) -> int:
        with self._lock:
            return len(self._failed)

    @property
    def sent_count(self) -> int:
        return self._sent

    def start(self) -> "Workload":
        if self._thread is not None:
            raise WorkloadError("workload already started")
        self._producer = Producer(self._config)
        self._started_at = time.monotonic()
        self._thread = threading.Thread(target=self._run, name=f"workload-{self.topic}", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        producer = self._producer
        assert producer is not None
        interval = 1.0 / self.rate if self.rate else 0.0
        next_at = time.monotonic()
        try:
            while not self._stop.is_set():
                if self.max_records is not None and self._sent >= self.max_records:
                    producer.poll(0.05)
                    continue
                if interval:
                    delay = next_at - time.monotonic()
                    if delay > 0:
                        producer.poll(min(delay, 0.05))
                        continue
                    next_at += interval
                number = self._sent
                try:
                    producer.produce(self.topic, key=str(number).encode(),
                                     value=record_value(number, self.value_size),
                                     on_delivery=self._on_delivery)
                except BufferError:  # local queue full (brokers away): wait for room
                    producer.poll(0.1)
                    continue
                self._sent += 1
                producer.poll(0)
        except BaseException as exc:  # noqa: BLE001 - surfaced by stop()
            self._error = exc

    def wait_acknowledged(self, count: int, timeout: float) -> int:
        """Block until at least `count` records are acknowledged; raises WorkloadError on timeout."""
        deadline = time.monotonic() + timeout
        while self.acknowledged_count < count:
            if self._error is not None:
                raise WorkloadError(f"producer thread for {self.topic} failed: {self._error!r}")
            if time.monotonic() > deadline:
                raise WorkloadError(f"only {self.acknowledged_count} of {count} records to {self.topic} "
                                    f"acknowledged by {self.bootstrap} within {timeout:g}s "
                                    f"({self.failed_count} failed)")
            time.sleep(0.05)
        return self.acknowledged_count

    def stop(self, flush_timeout: float = 60.0) -> ProducerReport:
        """Stop sending, wait up to `flush_timeout` s for outstanding acknowledgements, report."""
        if self._thread is None or self._producer is None:
            raise WorkloadError("workload not started")
        self._stop.set()
        self._thread.join(timeout=30)
        if self._thread.is_alive():
            raise WorkloadError(f"producer thread for {self.topic} did not stop within 30s")
        self._producer.flush(flush_timeout)
        if self._error is not None:
            raise WorkloadError(f"producer thread for {self.topic} failed: {self._error!r}")
        with self._lock:
            acked, failed = frozenset(self._acked), dict(self._failed)
        unresolved = frozenset(set(range(self._sent)) - acked - set(failed))
        return ProducerReport(topic=self.topic, attempted=self._sent, acknowledged=acked, failed=failed,
                              unresolved=unresolved, duration_s=time.monotonic() - self._started_at)


def read_numbers(bootstrap: str, topic: str, timeout: float = 120.0) -> list[int]:
    """Every record number in `topic`, in the order read, from the beginning of each partition up
    to its end offset when the read starts (a fresh group id, `read_committed`)."""
    numbers: list[int] = []
    _scan(bootstrap, topic, timeout, lambda msg: numbers.append(
        number_of(msg.key(), msg.value(), f"{topic}[{msg.partition()}]@{msg.offset()}")))
    return numbers


def _scan(bootstrap: str, topic: str, timeout: float, take: Callable[[object], None]) -> int:
    """Call `take(msg)` for every record of `topic` in offset order per partition, from the
    beginning up to the end offsets when the scan starts (a fresh group id, `read_committed`);
    returns how many."""
    consumer = Consumer({
        "bootstrap.servers": bootstrap, "group.id": f"chaos-verify-{uuid.uuid4().hex[:8]}",
        "enable.auto.commit": False, "auto.offset.reset": "earliest",
        "isolation.level": "read_committed", "log_level": 3,
    })
    count = 0
    try:
        meta = consumer.list_topics(topic, timeout=min(30.0, timeout)).topics.get(topic)
        if meta is None or meta.error is not None or not meta.partitions:
            raise WorkloadError(f"topic {topic!r} not found on {bootstrap}: "
                                f"{meta.error if meta is not None else 'no metadata'}")
        remaining: dict[int, int] = {}
        for partition in meta.partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition),
                                                       timeout=min(30.0, timeout), cached=False)
            if high > low:
                remaining[partition] = high
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in sorted(remaining)])
        deadline = time.monotonic() + timeout
        while remaining:
            if time.monotonic() > deadline:
                raise WorkloadError(
                    f"reading {topic} from {bootstrap}: partitions {sorted(remaining)} not read to their "
                    f"end offsets {remaining} within {timeout:g}s ({count} records read)")
            for msg in consumer.consume(num_messages=5000, timeout=0.5):
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        continue
                    raise WorkloadError(f"reading {topic}[{msg.partition()}] from {bootstrap}: {err}")
                take(msg)
                count += 1
                end = remaining.get(msg.partition())
                if end is not None and msg.offset() + 1 >= end:
                    del remaining[msg.partition()]
            # A partition whose tail is transaction markers or deleted records ends below its
            # end offset: position() tells when nothing is left there.
            for tp in consumer.position([TopicPartition(topic, p) for p in list(remaining)]):
                if tp.offset >= 0 and tp.offset >= remaining.get(tp.partition, tp.offset + 1):
                    remaining.pop(tp.partition, None)
    finally:
        consumer.close()
    return count


def verify(bootstrap: str, report: ProducerReport, timeout: float = 120.0) -> WorkloadSummary:
    """Read `report.topic` back and compare it with what the producer had acknowledged."""
    started = time.monotonic()
    numbers = read_numbers(bootstrap, report.topic, timeout)
    return summarize(report.topic, report, numbers, time.monotonic() - started)


def run_for(bootstrap: str, topic: str, acknowledged: int, during: Callable[[Workload], None] | None = None,
            rate: float | None = 500.0, timeout: float = 120.0) -> tuple[ProducerReport, WorkloadSummary]:
    """Start a workload, call `during(workload)` (the fault), wait for `acknowledged` records,
    stop, verify. The caller asserts on the summary."""
    workload = Workload(bootstrap, topic, rate=rate).start()
    try:
        if during is not None:
            during(workload)
        workload.wait_acknowledged(acknowledged, timeout)
    finally:
        report = workload.stop()
    return report, verify(bootstrap, report, timeout)


# ---------------------------------------------------------------------------- a test cluster


def start_kraft_cluster(base: Path, size: int = 3, overrides: Mapping[str, str] | None = None) -> list[RunningBroker]:
    """`size` combined KRaft nodes (static quorum of all of them), RF min(3, size) / min ISR
    RF-1 defaults, each on its own 127.0.0.x; started together, returned once all serve metadata.
    The caller stops them with :func:`stop_cluster`; a broker killed on purpose comes back with
    `tests.helpers.fixtures_kafka.launch(broker)` (same node id, same data dir)."""
    runtime = kafka_runtime(Mode.KRAFT)
    hosts: list[str] = []
    while len(hosts) < size:
        host = procs.loopback_ip()
        if host not in hosts:
            hosts.append(host)
    ports = [(procs.free_port(h), procs.free_port(h)) for h in hosts]
    voters = tuple(Voter(i, hosts[i], ports[i][1]) for i in range(size))
    cluster_id = new_cluster_id()
    brokers = []
    for i in range(size):
        work = base / f"node{i}"
        node = KRaftNode(node_id=i, role=Role.COMBINED, voters=voters, log_dirs=(work / "data",),
                         broker_listener=Listener("PLAINTEXT", hosts[i], ports[i][0]),
                         controller_listener=Listener("CONTROLLER", hosts[i], ports[i][1]),
                         replication=Replication.for_cluster(size), kafka_major=runtime.major,
                         overrides={**TEST_OVERRIDES, **(overrides or {})})
        config = broker_io.prepare_broker(node, work / "server.properties")
        broker_io.ensure_storage_formatted(runtime, node, config, cluster_id)
        brokers.append(RunningBroker(node, runtime, work, config, work / "broker.log", pid=0,
                                     cluster_id=cluster_id))
    try:
        procs_ = []
        for broker in brokers:  # the quorum needs a majority up before anyone serves
            jvm = JvmOptions(heap_mb=BROKER_JVM_HEAP_MB, tmp_dir=broker.work_dir / "tmp")
            proc = broker_io.start_broker(runtime, broker.config_path, broker.log_path, jvm,
                                          spawn=lambda argv, log: procs.spawn(argv, log_path=log))
            broker.pid = proc.pid
            procs_.append(proc)
        for broker, proc in zip(brokers, procs_):
            broker_io.wait_until_serving(broker.bootstrap, broker.broker_id, timeout=120, proc=proc,
                                         log_path=broker.log_path)
    except BaseException:
        for broker in brokers:
            if broker.pid:
                procs.stop_group(broker.pid, grace=2.0)
        raise
    return brokers


def stop_cluster(brokers: Sequence[RunningBroker], grace: float = 10.0) -> None:
    """Stop every broker, in parallel (one by one, the last of a quorum waits out its grace)."""
    stoppers = [threading.Thread(target=procs.stop_group, args=(b.pid, grace)) for b in brokers if b.pid]
    for thread in stoppers:
        thread.start()
    for thread in stoppers:
        thread.join()


# ---------------------------------------------------------------------------- several producers
#
# The load: several producers at once, each numbering its own records 0, 1, 2, … (the key names
# the producer and one of a few sub-keys, so every producer writes to every partition; the value
# carries producer id and number). Idempotent producers are acknowledged record by record; a
# transactional producer is "acknowledged" a transaction at a time (commit_transaction returned),
# aborts every `abort_every`-th transaction on purpose, and aborts when the broker says it must.
# What each number became is one byte in a status array (compact at millions of records).

SENT, ACKED, FAILED, ABORTED, UNCERTAIN = 0, 1, 2, 3, 4  # a record's fate, as the producer knows it
SUBKEYS = 8  # keys per producer: enough to spread each producer over a few partitions


def load_key(producer: int, number: int) -> bytes:
    return f"p{producer}.{number % SUBKEYS}".encode()


def load_value(producer: int, number: int, size: int = 32) -> bytes:
    head = f"p{producer}-{number}-".encode()
    return head + b"x" * max(0, size - len(head))


def parse_load_record(key: bytes | None, value: bytes | None, where: str) -> tuple[int, int]:
    """(producer, number) of a load record; key and value must agree (a mangled record is an error)."""
    try:
        head, number_s, _ = (value or b"").decode("ascii").split("-", 2)
        producer, number = int(head[1:]), int(number_s)
    except ValueError:
        raise WorkloadError(f"{where}: value {value[:40] if value else value!r} is not a load record") from None
    if not head.startswith("p") or key != load_key(producer, number):
        raise WorkloadError(f"{where}: key {key!r} does not match value {value[:40]!r}")
    return producer, number


@dataclass(frozen=True)
class StreamReport:
    """What one producer did: `status[n]` is record n's fate (SENT = still unresolved when stopped,
    ACKED, FAILED, ABORTED in an aborted transaction, UNCERTAIN = a commit whose outcome is unknown)."""

    producer: int
    transactional: bool
    status: bytes
    transactions: int = 0  # committed
    aborts: int = 0
    fatal: tuple[str, ...] = ()  # fatal producer errors (a new producer took over)

    @property
    def attempted(self) -> int:
        return len(self.status)

    def count(self, fate: int) -> int:
        return self.status.count(fate)


@dataclass(frozen=True)
class StreamVerdict:
    """One producer's records as read back (read_committed). Must be empty: lost (acknowledged,
    not read), duplicates (read twice), reorders (a number read after a higher one of the same
    producer in the same partition), aborted_read (from an aborted transaction), unexpected
    (never sent)."""

    producer: int
    transactional: bool
    attempted: int
    acknowledged: int
    read: int
    lost: tuple[int, ...]
    duplicates: tuple[int, ...]
    reorders: tuple[tuple[int, int], ...]  # (partition, number)
    aborted_read: tuple[int, ...]
    unexpected: tuple[int, ...]

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicates or self.reorders or self.aborted_read or self.unexpected)

    def line(self) -> str:
        kind = "transactional" if self.transactional else "idempotent"
        return (f"producer {self.producer} ({kind}): attempted {self.attempted}, acknowledged "
                f"{self.acknowledged}, read {self.read}, lost {len(self.lost)}, duplicates "
                f"{len(self.duplicates)}, reorders {len(self.reorders)}, aborted read "
                f"{len(self.aborted_read)}, unexpected {len(self.unexpected)}")


def check_stream(report: StreamReport, partitions: Mapping[int, Sequence[int]]) -> StreamVerdict:
    """Compare what one producer knows with what was read (pure). `partitions`: for each partition,
    this producer's numbers in offset order."""
    seen = collections.Counter(n for numbers in partitions.values() for n in numbers)
    status = report.status
    reorders = []
    for partition, numbers in partitions.items():
        high = -1
        for n in numbers:
            if n < high and seen[n] == 1:  # a duplicate is counted as one, not again as a reorder
                reorders.append((partition, n))
            high = max(high, n)
    in_range = [n for n in seen if 0 <= n < len(status)]
    return StreamVerdict(
        producer=report.producer, transactional=report.transactional, attempted=report.attempted,
        acknowledged=report.count(ACKED), read=sum(seen.values()),
        lost=tuple(n for n in range(len(status)) if status[n] == ACKED and n not in seen),
        duplicates=tuple(sorted(n for n, times in seen.items() if times > 1)),
        reorders=tuple(sorted(reorders)),
        aborted_read=tuple(sorted(n for n in in_range if status[n] == ABORTED)),
        unexpected=tuple(sorted(n for n in seen if not 0 <= n < len(status))))


@dataclass(frozen=True)
class LoadSummary:
    """Every producer's verdict and the achieved rate (acknowledged records per second of load)."""

    topic: str
    verdicts: tuple[StreamVerdict, ...]
    seconds: float
    strays: tuple[str, ...] = ()  # producer ids read that no producer of this load had
    read_duration_s: float = 0.0
    live: "LiveVerdict | None" = None  # the live consumers' verdict (verify_load with live readers)

    @property
    def attempted(self) -> int:
        return sum(v.attempted for v in self.verdicts)

    @property
    def acknowledged(self) -> int:
        return sum(v.acknowledged for v in self.verdicts)

    @property
    def read(self) -> int:
        return sum(v.read for v in self.verdicts)

    @property
    def lost(self) -> tuple[tuple[int, int], ...]:
        return tuple((v.producer, n) for v in self.verdicts for n in v.lost)

    @property
    def duplicates(self) -> tuple[tuple[int, int], ...]:
        return tuple((v.producer, n) for v in self.verdicts for n in v.duplicates)

    @property
    def reorders(self) -> tuple[tuple[int, int, int], ...]:
        return tuple((v.producer, p, n) for v in self.verdicts for p, n in v.reorders)

    @property
    def ok(self) -> bool:
        return all(v.ok for v in self.verdicts) and not self.strays and not (self.live and self.live.mismatches)

    @property
    def rate(self) -> float:
        return self.acknowledged / self.seconds if self.seconds > 0 else 0.0

    def line(self) -> str:
        bad = sum(len(v.aborted_read) + len(v.unexpected) for v in self.verdicts)
        return (f"{self.topic}: {len(self.verdicts)} producers, attempted {self.attempted}, acknowledged "
                f"{self.acknowledged} in {self.seconds:.0f}s ({self.rate:.0f} records/s), read {self.read}, "
                f"lost {len(self.lost)}, duplicates {len(self.duplicates)}, reorders {len(self.reorders)}, "
                f"aborted or stray read {bad + len(self.strays)}"
                + (f"; live read_committed consumers: {self.live.read} records ({self.live.read_while_running} "
                   f"while the load ran, caught up {self.live.catch_up_s:.1f}s after it stopped), "
                   f"{len(self.live.mismatches)} differences from the final read" if self.live else ""))


def check_load(topic: str, reports: Sequence[StreamReport], read: Mapping[tuple[int, int], Sequence[int]],
               seconds: float, read_duration_s: float = 0.0) -> LoadSummary:
    """Every producer's verdict (pure); `read` maps (producer, partition) to numbers in offset order."""
    mine = {r.producer for r in reports}
    verdicts = []
    for report in reports:
        parts = {p: numbers for (producer, p), numbers in read.items() if producer == report.producer}
        verdicts.append(check_stream(report, parts))
    strays = tuple(sorted({f"p{producer}" for producer, _ in read if producer not in mine}))
    return LoadSummary(topic, tuple(verdicts), seconds, strays, read_duration_s)


def read_load(bootstrap: str, topic: str, timeout: float = 300.0) -> dict[tuple[int, int], array]:
    """Every load record in `topic` (read_committed, from the beginning up to the end offsets when
    the read starts): (producer, partition) → numbers in offset order."""
    read: dict[tuple[int, int], array] = {}

    def take(msg) -> None:
        where = f"{topic}[{msg.partition()}]@{msg.offset()}"
        producer, number = parse_load_record(msg.key(), msg.value(), where)
        read.setdefault((producer, msg.partition()), array("q")).append(number)
    _scan(bootstrap, topic, timeout, take)
    return read


class NumberedProducer:
    """One producer thread (`acks=all`, idempotent; `transactional`: commits every `txn_records`
    records and aborts every `abort_every`-th transaction on purpose) sending numbered records at
    `rate` per second until stopped."""

    def __init__(self, bootstrap: str, topic: str, producer: int, rate: float, transactional: bool = False,
                 txn_records: int = 200, abort_every: int = 7, value_size: int = 32,
                 delivery_timeout_ms: int = 120_000) -> None:
        self.bootstrap, self.topic, self.producer, self.rate = bootstrap, topic, producer, rate
        self.transactional, self.txn_records, self.abort_every = transactional, txn_records, abort_every
        self.value_size = value_size
        self._config = {
            "bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
            # batches, not records, make the rate affordable on a shared 2-core machine
            "linger.ms": 20, "batch.num.messages": 2000, "message.timeout.ms": delivery_timeout_ms,
            "client.id": f"chaos-load-p{producer}", "log_level": 3,
        }
        if transactional:
            self._config.update({"transactional.id": f"chaos-load-{topic}-p{producer}-{uuid.uuid4().hex[:6]}",
                                 "transaction.timeout.ms": delivery_timeout_ms})
        self.status = bytearray()
        self._lock = threading.Lock()
        self._acked = 0
        self.transactions = self.aborts = 0
        self.fatal: list[str] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._producer: Producer | None = None

    def _on_delivery(self, err: KafkaError | None, msg) -> None:
        if self.transactional:  # a transaction's records count once it commits
            return
        number = int(msg.value().split(b"-", 2)[1])
        with self._lock:
            if err is None:
                self.status[number] = ACKED
                self._acked += 1
            else:
                self.status[number] = FAILED

    @property
    def acknowledged_count(self) -> int:
        with self._lock:
            return self._acked

    @property
    def sent_count(self) -> int:
        return len(self.status)

    def start(self) -> "NumberedProducer":
        self._thread = threading.Thread(target=self._run, name=f"load-p{self.producer}", daemon=True)
        self._thread.start()
        return self

    def _new_producer(self) -> Producer:
        producer = Producer(self._config)
        if self.transactional:
            while True:  # the transaction coordinator may be away (a broker down) for a while
                try:
                    producer.init_transactions(30)
                    break
                except KafkaException as exc:
                    if self._stop.is_set() or not exc.args[0].retriable():
                        raise
            producer.begin_transaction()
        return producer

    def _finish_transaction(self, producer: Producer, first: int, abort: bool) -> Producer:
        """Commit (or abort) records [first, sent); returns the producer to go on with (a new one
        after a fatal error, which fences the old one)."""
        end = len(self.status)
        fate = ABORTED
        deadline = time.monotonic() + 300
        try:
            while True:
                try:
                    if abort:
                        producer.abort_transaction(60)
                    else:
                        producer.commit_transaction(60)
                        fate = ACKED
                    break
                except KafkaException as exc:
                    err = exc.args[0]
                    if err.retriable() and time.monotonic() < deadline:
                        continue  # the same call again is how a timed-out commit is retried
                    if err.txn_requires_abort() and not abort:
                        abort = True
                        continue
                    raise
        except KafkaException as exc:  # fatal: the outcome of this transaction is not known
            fate = UNCERTAIN
            self.fatal.append(str(exc.args[0]))
            producer = self._new_producer()  # init_transactions fences the old one
            with self._lock:
                self.status[first:end] = bytes([fate]) * (end - first)
            return producer
        with self._lock:
            self.status[first:end] = bytes([fate]) * (end - first)
            if fate == ACKED:
                self._acked += end - first
                self.transactions += 1
            else:
                self.aborts += 1
        producer.begin_transaction()
        return producer

    def _run(self) -> None:
        interval = 1.0 / self.rate
        try:
            producer = self._new_producer()
            self._producer = producer
            next_at = time.monotonic()
            first = 0
            count = 0
            while not self._stop.is_set():
                delay = next_at - time.monotonic()
                if delay > 0:
                    producer.poll(min(delay, 0.05))
                    continue
                number = len(self.status)
                try:
                    producer.produce(self.topic, key=load_key(self.producer, number),
                                     value=load_value(self.producer, number, self.value_size),
                                     on_delivery=self._on_delivery)
                except BufferError:  # local queue full (brokers away): wait for room
                    producer.poll(0.1)
                    continue
                except KafkaException:
                    if not self.transactional:
                        raise
                    # the transaction is in a state that must abort first (its commit says so)
                    producer = self._finish_transaction(producer, first, abort=True)
                    self._producer = producer
                    first = len(self.status)
                    continue
                with self._lock:
                    self.status.append(SENT)
                next_at = max(next_at + interval, time.monotonic() - 1.0)  # no burst after a stall
                producer.poll(0)
                if self.transactional and len(self.status) - first >= self.txn_records:
                    count += 1
                    producer = self._finish_transaction(producer, first, abort=count % self.abort_every == 0)
                    self._producer = producer
                    first = len(self.status)
            if self.transactional:
                self._producer = self._finish_transaction(producer, first, abort=False)
        except BaseException as exc:  # noqa: BLE001 - surfaced by stop()
            self._error = exc

    def stop(self, flush_timeout: float = 60.0) -> StreamReport:
        assert self._thread is not None
        self._stop.set()
        self._thread.join(timeout=flush_timeout + 130)  # a last commit may take its retries
        if self._thread.is_alive():
            raise WorkloadError(f"load producer {self.producer} did not stop")
        if self._error is not None:
            raise WorkloadError(f"load producer {self.producer} failed: {self._error!r}")
        if self._producer is not None:
            self._producer.flush(flush_timeout)
        with self._lock:
            status = bytes(self.status)
        return StreamReport(self.producer, self.transactional, status, self.transactions, self.aborts,
                            tuple(self.fatal))


class Load:
    """`idempotent` + `transactional` producers sharing `rate` records/s, each numbering its own
    records; :meth:`stop` returns their reports, :func:`verify_load` reads them back."""

    def __init__(self, bootstrap: str, topic: str, rate: float = 2000.0, idempotent: int = 3,
                 transactional: int = 1, txn_records: int = 200) -> None:
        n = idempotent + transactional
        self.topic = topic
        self.producers = [NumberedProducer(bootstrap, topic, i, rate / n, transactional=i >= idempotent,
                                           txn_records=txn_records) for i in range(n)]
        self._started = 0.0
        self.seconds = 0.0

    def start(self) -> "Load":
        self._started = time.monotonic()
        for p in self.producers:
            p.start()
        return self

    @property
    def acknowledged_count(self) -> int:
        return sum(p.acknowledged_count for p in self.producers)

    def sent_counts(self) -> tuple[int, ...]:
        return tuple(p.sent_count for p in self.producers)

    def wait_acknowledged(self, count: int, timeout: float) -> int:
        """Block until at least `count` records in all are acknowledged; WorkloadError on timeout."""
        deadline = time.monotonic() + timeout
        while self.acknowledged_count < count:
            broken = [(p.producer, p._error) for p in self.producers if p._error is not None]
            if broken:
                raise WorkloadError(f"load producers failed: {broken}")
            if time.monotonic() > deadline:
                raise WorkloadError(f"only {self.acknowledged_count} of {count} load records to {self.topic} "
                                    f"acknowledged within {timeout:g}s (sent {self.sent_counts()})")
            time.sleep(0.05)
        return self.acknowledged_count

    def stop(self, flush_timeout: float = 60.0) -> list[StreamReport]:
        for p in self.producers:
            p._stop.set()  # all stop sending at once
        reports = [p.stop(flush_timeout) for p in self.producers]
        self.seconds = time.monotonic() - self._started
        return reports


def verify_load(bootstrap: str, topic: str, reports: Sequence[StreamReport], seconds: float,
                timeout: float = 300.0, live: "LiveReaders | None" = None) -> LoadSummary:
    """Read `topic` back (a fresh read_committed consumer) and judge every producer; with `live`,
    the live readers first read on to the same end and must have been given exactly that."""
    started = time.monotonic()
    live_read = live.finish(timeout) if live is not None else None
    read = read_load(bootstrap, topic, timeout)
    summary = check_load(topic, reports, read, seconds, time.monotonic() - started)
    if live is None or live_read is None:
        return summary
    return dataclasses.replace(summary, live=LiveVerdict(
        read=sum(len(v) for v in live_read.values()), read_while_running=live.read_while_running,
        catch_up_s=live.catch_up_s, mismatches=compare_reads(live_read, read) + live.anomalies))


# ---------------------------------------------------------------------------- live consumers
#
# Jepsen's Kafka analyses found records a consumer was given and that later vanished (a leader
# truncated after the read). The final read alone cannot see that: a record read live and then
# taken back is simply not there at the end. So consumers read the load while it runs and faults
# strike, and what they were given must be exactly what the final read finds.


@dataclass(frozen=True)
class LiveVerdict:
    """What the live read_committed consumers were given, against the final read: `mismatches`
    (must be empty) names every (producer, partition) whose live sequence differs and every
    anomaly a consumer hit (an offset read twice or going back, an offset reset)."""

    read: int
    read_while_running: int
    catch_up_s: float
    mismatches: tuple[str, ...]


def compare_reads(live: Mapping[tuple[int, int], Sequence[int]],
                  final: Mapping[tuple[int, int], Sequence[int]]) -> tuple[str, ...]:
    """Where the live read and the final read of the same offsets differ (pure): per (producer,
    partition), the first position where they part and both lengths."""
    out = []
    for key in sorted(set(live) | set(final)):
        a, b = list(live.get(key, ())), list(final.get(key, ()))
        if a != b:
            at = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
            out.append(f"producer {key[0]} partition {key[1]}: live read {len(a)} records, final read {len(b)}; "
                       f"first difference at position {at} (live {a[at] if at < len(a) else 'end'}, "
                       f"final {b[at] if at < len(b) else 'end'})")
    return tuple(out)


class LiveReaders:
    """`consumers` read_committed consumers of `topic` while the load runs: consumer i is assigned
    (no group, so no rebalance) every partition p with p % consumers == i, from the beginning, and
    `auto.offset.reset=error` (a silent reset would hide a truncation). :meth:`finish` reads on to
    the end offsets of that moment and returns (producer, partition) → numbers in offset order."""

    def __init__(self, bootstrap: str, topic: str, consumers: int = 2) -> None:
        self.bootstrap, self.topic, self.n = bootstrap, topic, consumers
        self.read: dict[tuple[int, int], array] = {}
        self._offsets: dict[int, int] = {}  # partition → last offset given
        self._anomalies: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ends: dict[int, int] | None = None  # set by finish: read up to here, then end
        self._threads: list[threading.Thread] = []
        self._errors: list[BaseException] = []
        self.read_while_running = 0
        self.catch_up_s = 0.0
        self.errors: collections.Counter[str] = collections.Counter()  # consumer errors by name

    @property
    def anomalies(self) -> tuple[str, ...]:
        with self._lock:
            return tuple(self._anomalies)

    @property
    def count(self) -> int:
        with self._lock:
            return sum(len(v) for v in self.read.values())

    def progress(self) -> str:
        """The last offset given per partition and the consumer errors so far, for a log line."""
        with self._lock:
            return f"last offsets {dict(sorted(self._offsets.items()))}, errors {dict(self.errors)}"

    def start(self) -> "LiveReaders":
        admin = AdminClient({"bootstrap.servers": self.bootstrap, "log_level": 3})
        meta = admin.list_topics(self.topic, timeout=30).topics.get(self.topic)
        if meta is None or meta.error is not None:
            raise WorkloadError(f"live readers: topic {self.topic!r} not found on {self.bootstrap}")
        partitions = sorted(meta.partitions)
        for i in range(self.n):
            mine = [p for p in partitions if p % self.n == i]
            if mine:
                thread = threading.Thread(target=self._run, args=(i, mine), name=f"live-reader-{i}", daemon=True)
                thread.start()
                self._threads.append(thread)
        return self

    def _take(self, msg) -> None:
        partition, offset = msg.partition(), msg.offset()
        where = f"{self.topic}[{partition}]@{offset}"
        producer, number = parse_load_record(msg.key(), msg.value(), where)
        with self._lock:
            last = self._offsets.get(partition, -1)
            if offset <= last:  # given again, or from before what was given: the log went back
                self._anomalies.append(f"{where} given after offset {last} (read again or rewound)")
                return
            self._offsets[partition] = offset
            self.read.setdefault((producer, partition), array("q")).append(number)

    def _positions(self, mine: list[int]) -> list[TopicPartition]:
        """Where reading `mine` goes on: after the last offset given, or from the beginning."""
        with self._lock:
            return [TopicPartition(self.topic, p, self._offsets[p] + 1 if p in self._offsets else OFFSET_BEGINNING)
                    for p in mine]

    def _caught_up(self, consumer: Consumer, mine: list[int]) -> bool:
        ends = self._ends
        if ends is None:
            return False
        left = [p for p in mine if self._offsets.get(p, -1) + 1 < ends.get(p, 0)]
        if not left:
            return True
        # a tail of transaction markers or aborted records is never given: position tells
        return all(tp.offset >= ends[tp.partition]
                   for tp in consumer.position([TopicPartition(self.topic, p) for p in left]))

    def _run(self, index: int, mine: list[int]) -> None:
        consumer = Consumer({
            "bootstrap.servers": self.bootstrap, "group.id": f"chaos-live-{uuid.uuid4().hex[:8]}",
            "client.id": f"chaos-live-{index}", "enable.auto.commit": False,
            "auto.offset.reset": "error", "isolation.level": "read_committed", "log_level": 0,
        })
        try:
            consumer.assign(self._positions(mine))
            while not (self._stop.is_set() or self._caught_up(consumer, mine)):
                for msg in consumer.consume(num_messages=5000, timeout=0.5):
                    err = msg.error()
                    if err is None:
                        self._take(msg)
                        continue
                    with self._lock:
                        self.errors[err.name()] += 1
                    if err.code() == KafkaError._AUTO_OFFSET_RESET:
                        # the position is not in the log: after records were given from it, the
                        # log went back (an anomaly); before, the query for its start failed (a
                        # leader away at the start). Either way fetching stopped: resume where
                        # the reader is
                        with self._lock:
                            if msg.partition() in self._offsets:
                                self._anomalies.append(f"{self.topic}[{msg.partition()}]: position after offset "
                                                       f"{self._offsets[msg.partition()]} is gone: {err.str()}")
                        time.sleep(0.5)
                        consumer.assign(self._positions(mine))
                    # other errors (a broker away, a leader moving) are transient for a consumer
        except BaseException as exc:  # noqa: BLE001 - surfaced by finish()
            self._errors.append(exc)
        finally:
            consumer.close()

    def finish(self, timeout: float = 300.0) -> dict[tuple[int, int], array]:
        """Read on up to the end offsets of now (call it once the producers stopped), stop, and
        return what was read. WorkloadError when a reader failed or did not catch up in time."""
        started = time.monotonic()
        self.read_while_running = self.count
        consumer = Consumer({"bootstrap.servers": self.bootstrap, "group.id": f"chaos-ends-{uuid.uuid4().hex[:8]}",
                             "log_level": 3})
        try:
            meta = consumer.list_topics(self.topic, timeout=30).topics[self.topic]
            self._ends = {p: consumer.get_watermark_offsets(TopicPartition(self.topic, p), timeout=30,
                                                            cached=False)[1] for p in meta.partitions}
        finally:
            consumer.close()
        for thread in self._threads:
            thread.join(timeout=max(1.0, timeout - (time.monotonic() - started)))
        self._stop.set()
        stuck = [t.name for t in self._threads if t.is_alive()]
        for thread in self._threads:
            thread.join(timeout=10)
        if self._errors:
            raise WorkloadError(f"live readers of {self.topic} failed: {self._errors!r}")
        if stuck:
            raise WorkloadError(f"live readers {stuck} of {self.topic} did not reach the end offsets {self._ends} "
                                f"within {timeout:g}s (at {self._offsets}; errors {dict(self.errors)}; "
                                f"anomalies {self.anomalies[:5]})")
        self.catch_up_s = time.monotonic() - started
        with self._lock:
            return dict(self.read)

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)
