"""Word count over a Kafka topic, exactly once, with confluent-kafka.

    python -m streams.wordcount --input text --output counts [--group wordcount]
                                [--bootstrap-servers HOST:PORT,...]

How it works (the same shape as a Kafka Streams app with one repartition step):

- The app consumes the input topic (lines) and its own repartition topic
  ``<group>-words-repartition`` in one consumer group. A line becomes one record per word on the
  repartition topic, keyed by the word, so every occurrence of a word lands on one partition and
  so on one instance.
- A word read from repartition partition *p* adds one to the count of that word held for *p*; the
  new total goes to the output topic (``word → count``, decimal text) and to partition *p* of the
  compacted changelog topic ``<group>-counts-changelog``.
- Everything a batch writes, and the consumed offsets, go in one Kafka transaction
  (``send_offsets_to_transaction`` with the consumer's group metadata, KIP-447 fencing); all reads
  use ``isolation.level=read_committed``. A batch is counted once or not at all.
- When partitions are assigned (start, rebalance, takeover of a dead instance) their counts are
  rebuilt from the changelog before any of their records is processed, so the counts of a killed
  instance survive it.
- A transaction may last ``--transaction-timeout-ms`` (30 s), longer than a broker failover: a
  batch in flight when a broker dies commits once its leaderships and coordinators have moved.
  A retriable error is retried within that time; an abortable one aborts the batch, a fatal one
  (fenced, or aborted by the coordinator) fences the producer with a new one; either way the
  batch is rewound and counted again, never twice.
- One ``transactional.id`` per instance, ``<group>.<app>-<instance>`` from ``KMF_APP`` and
  ``KMF_INSTANCE``: a restarted instance fences its own zombie at once.
- SIGTERM/SIGINT: the batch in hand is committed (or aborted), then the consumer leaves the group.
- Its state goes to stdout in kmf's line protocol (``KMF_APP_STATE REBALANCING`` once subscribed,
  which is after its input topic exists, and when partitions are revoked; ``RUNNING`` once
  partitions are assigned and their state restored; ``PENDING_SHUTDOWN`` when stopping: see
  kmfwire.app_state), and ``kmf: ready`` once it first runs; progress is logged on stderr.

Exit codes: 0 after a graceful stop, 1 on a runtime failure (fenced, broker lost for good),
2 on bad arguments, 3 when Kafka cannot be reached at start.
"""
from __future__ import annotations

import argparse
import faulthandler
import logging
import os
import signal
import socket
import sys
import threading
import time
from typing import Sequence, TextIO

import attrs
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic

from kmfwire.app_state import PENDING_SHUTDOWN, REBALANCING, RUNNING, state_line
from kmfwire.errors import KmfError
from kmfwire.ready import READY_MARKER
from kmfwire.waiting import wait_until
from streams.counting import PartitionCounts, decode_count, encode_count, words

log = logging.getLogger("streams.wordcount")

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3
MAX_FAILURES_IN_A_ROW = 10
RESTORE_TIMEOUT_S = 120.0
# How long past its own timeout a transactional call may run before its producer is given up
CALL_GRACE_S = 5.0
DEFAULT_TRANSACTION_TIMEOUT_MS = 30_000


class WordCountError(KmfError, RuntimeError):
    """A failure that stops the app, with a message that says what and where."""


class KafkaUnreachable(WordCountError):
    pass


class _Stopped(Exception):
    """A stop was asked for before the app got going."""


class _Hung(Exception):
    """A transactional producer call still running well past its timeout."""


@attrs.frozen
class Settings:
    bootstrap: str
    input_topic: str
    output_topic: str
    group: str = "wordcount"
    app: str = "wordcount"
    instance: str = "0"
    # Longer than a broker failover (KRaft fences a dead broker after broker.session.timeout.ms,
    # 9 s, then moves its leaderships and coordinators): a transaction in flight when a broker dies
    # completes once they have moved, instead of timing out in the producer (librdkafka caps the
    # message and socket timeouts at this value) and being aborted by the coordinator.
    transaction_timeout_ms: int = DEFAULT_TRANSACTION_TIMEOUT_MS
    session_timeout_ms: int = 10_000
    # static membership (kmf passes both): the same id for every relaunch of this instance, so the
    # group hands it its partitions back without a rebalance; client_id names the pod
    group_instance_id: str | None = None
    client_id: str | None = None
    connect_timeout_s: float = 15.0
    batch_size: int = 500
    progress_interval_s: float = 10.0

    @property
    def repartition_topic(self) -> str:
        return f"{self.group}-words-repartition"

    @property
    def changelog_topic(self) -> str:
        return f"{self.group}-counts-changelog"

    @property
    def transactional_id(self) -> str:
        return f"{self.group}.{self.app}-{self.instance}"


def _kafka_error(exc: BaseException) -> KafkaError | None:
    if isinstance(exc, KafkaException) and exc.args and isinstance(exc.args[0], KafkaError):
        return exc.args[0]
    return None


class WordCount:
    """One instance of the word count. `run()` blocks until `stop()` (or a signal) or a failure."""

    def __init__(self, settings: Settings, out: TextIO = sys.stdout) -> None:
        self.settings = settings
        self.out = out
        self._stop = threading.Event()
        self._state: dict[int, PartitionCounts] = {}
        self._assigned: list[tuple[str, int]] = []
        self._ready = False
        self._consumer: Consumer | None = None
        self._producer: Producer | None = None
        self.lines = 0
        self.words = 0
        self.transactions = 0
        self._failures_in_a_row = 0
        self._abandoned: list[Producer] = []  # producers left inside a hung call

    # ------------------------------------------------------------------ control

    def stop(self) -> None:
        self._stop.set()

    def install_signal_handlers(self) -> None:
        def handler(signum, _frame) -> None:
            log.info("got %s: finishing the batch in hand, then leaving the group",
                     signal.Signals(signum).name)
            self.stop()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    # ------------------------------------------------------------------ topics

    def _admin(self) -> AdminClient:
        # log_level 0: an unreachable broker is reported once, by _metadata, not every 50 ms
        return AdminClient({"bootstrap.servers": self.settings.bootstrap, "log_level": 0})

    def _metadata(self, admin: AdminClient):
        try:
            return admin.list_topics(timeout=self.settings.connect_timeout_s)
        except KafkaException as exc:
            err = _kafka_error(exc)
            raise KafkaUnreachable(
                f"cannot reach Kafka at {self.settings.bootstrap!r} within "
                f"{self.settings.connect_timeout_s:g}s: {err.str() if err else exc} "
                "(check --bootstrap-servers / KAFKA_BOOTSTRAP_SERVERS)") from None

    def prepare_topics(self) -> int:
        """Wait for the input topic, create the output, repartition and changelog topics if
        missing; returns the number of partitions of the repartition/changelog pair."""
        s = self.settings
        admin = self._admin()
        metadata = self._metadata(admin)
        waited_since = time.monotonic()
        while s.input_topic not in metadata.topics or metadata.topics[s.input_topic].error is not None:
            if self._stop.is_set():
                raise _Stopped()
            if time.monotonic() - waited_since >= s.progress_interval_s:
                log.info("waiting for input topic %r on %s", s.input_topic, s.bootstrap)
                waited_since = time.monotonic()
            self._stop.wait(0.5)
            metadata = self._metadata(admin)
        partitions = len(metadata.topics[s.input_topic].partitions)
        replication = max(1, min(3, len(metadata.brokers)))
        wanted = {
            s.output_topic: {"cleanup.policy": "compact"},
            s.repartition_topic: {"cleanup.policy": "delete"},
            s.changelog_topic: {"cleanup.policy": "compact"},
        }
        missing = [NewTopic(name, num_partitions=partitions, replication_factor=replication, config=cfg)
                   for name, cfg in wanted.items() if name not in metadata.topics]
        if missing:
            for name, future in admin.create_topics(missing, operation_timeout=30).items():
                try:
                    future.result(timeout=60)
                    log.info("created topic %s (%d partitions, replication %d)", name, partitions,
                             replication)
                except KafkaException as exc:
                    err = _kafka_error(exc)
                    if err is None or err.code() != KafkaError.TOPIC_ALREADY_EXISTS:
                        raise WordCountError(f"creating topic {name!r} on {s.bootstrap}: {exc}") from None

        def both_listed() -> dict[str, int] | None:
            metadata = self._metadata(admin)
            counts = {name: len(metadata.topics[name].partitions)
                      for name in (s.repartition_topic, s.changelog_topic)
                      if name in metadata.topics and metadata.topics[name].partitions}
            return counts if len(counts) == 2 else None

        counts = wait_until(both_listed, 30, 0.2)
        if counts is None:
            raise WordCountError(f"topics {sorted(wanted)} not in the metadata of {s.bootstrap} after 30s")
        if counts[s.repartition_topic] != counts[s.changelog_topic]:
            raise WordCountError(
                f"topic {s.changelog_topic!r} has {counts[s.changelog_topic]} partitions but "
                f"{s.repartition_topic!r} has {counts[s.repartition_topic]}: they must match "
                f"(delete both to start over)")
        return counts[s.repartition_topic]

    # ------------------------------------------------------------------ state

    def restore(self, partitions: Sequence[int], consumer: Consumer | None = None) -> dict[int, dict[str, int]]:
        """Counts of the given repartition partitions, read back from the changelog.

        The previous owner of a partition may still have a transaction in flight (it was expelled
        from the group while committing, say, after a broker failure). Its outcome must be part of
        what is restored, or the counts would go back in time. So, first the committed offsets of
        the repartition partitions are read with `consumer` (read_committed: the group coordinator
        answers only once no transactional offset commit is pending on them, KIP-447), then the
        changelog is read up to its high watermark taken after that: a read_committed reader gets
        there only once every transaction below it has been committed or aborted."""
        s = self.settings
        restored: dict[int, dict[str, int]] = {p: {} for p in partitions}
        if not partitions:
            return restored
        deadline = time.monotonic() + RESTORE_TIMEOUT_S
        if consumer is not None:
            def stable_offsets(timeout: float) -> None:
                for tp in consumer.committed([TopicPartition(s.repartition_topic, p) for p in partitions],
                                             timeout=timeout):
                    if tp.error is not None:
                        raise KafkaException(tp.error)

            self._until(deadline, f"stable committed offsets of {s.repartition_topic}{sorted(partitions)}",
                        stable_offsets)
        reader = Consumer({
            "bootstrap.servers": s.bootstrap, "group.id": f"{s.group}-restore",
            "enable.auto.commit": False, "isolation.level": "read_committed",
            "enable.partition.eof": True, "auto.offset.reset": "earliest", "log_level": 3,
        })
        try:
            ends: dict[int, int] = {}  # partition → high watermark to reach
            for p in partitions:
                low, high = self._until(
                    deadline, f"watermarks of {s.changelog_topic}[{p}]",
                    lambda t, p=p: reader.get_watermark_offsets(TopicPartition(s.changelog_topic, p),
                                                                timeout=t, cached=False))
                if high > low:
                    ends[p] = high
            reader.assign([TopicPartition(s.changelog_topic, p, OFFSET_BEGINNING) for p in sorted(ends)])
            while ends:
                if time.monotonic() > deadline:
                    raise WordCountError(
                        f"restoring {s.changelog_topic} partitions {sorted(ends)} from {s.bootstrap} "
                        f"took more than {RESTORE_TIMEOUT_S:g}s (an open transaction below offsets "
                        f"{ends} that is never resolved?)")
                for msg in reader.consume(num_messages=1000, timeout=0.5):
                    err = msg.error()
                    if err is not None:
                        if err.code() == KafkaError._PARTITION_EOF:
                            part, offset = msg.partition(), msg.offset()
                            assert part is not None and offset is not None  # an end of partition names both
                            # at the last stable offset: done once that is the wanted end
                            if offset >= ends.get(part, 0):
                                ends.pop(part, None)
                            continue
                        if err.fatal():
                            raise WordCountError(f"reading {s.changelog_topic}[{msg.partition()}]: {err}")
                        log.warning("restore: %s", err)  # a broker moving: the reader retries
                        continue
                    part, key = msg.partition(), msg.key()
                    assert part is not None and key is not None  # a changelog record: this app's, keyed
                    word = key.decode("utf-8", errors="replace")
                    if msg.value() is None:  # a tombstone
                        restored[part].pop(word, None)
                    else:
                        restored[part][word] = decode_count(
                            msg.value(), f"{s.changelog_topic}[{msg.partition()}]@{msg.offset()}")
        finally:
            reader.close()
        return restored

    def _until(self, deadline: float, what: str, call):
        """`call(timeout)` again after a Kafka error (a leader or coordinator moving) until it
        succeeds or `deadline` (monotonic) passes."""
        while True:
            remaining = deadline - time.monotonic()
            try:
                return call(max(1.0, min(10.0, remaining)))
            except KafkaException as exc:
                err = _kafka_error(exc)
                if (err is not None and err.fatal()) or time.monotonic() >= deadline:
                    raise WordCountError(f"{what} from {self.settings.bootstrap}: {exc}") from None
                log.info("%s: %s; trying again", what, err or exc)
                time.sleep(0.2)

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        s = self.settings
        mine = [tp.partition for tp in partitions if tp.topic == s.repartition_topic]
        started = time.monotonic()
        restored = self.restore(mine, consumer)
        for p, counts in restored.items():
            self._state[p] = PartitionCounts(counts)
        consumer.assign(partitions)
        self._assigned = sorted((tp.topic, tp.partition) for tp in partitions)
        log.info("assigned %s; restored %d words of partitions %s from %s in %.2fs",
                 self._describe(partitions), sum(len(c) for c in restored.values()), mine,
                 s.changelog_topic, time.monotonic() - started)
        self._tell(RUNNING)
        if not self._ready:
            self._ready = True
            print(READY_MARKER, file=self.out, flush=True)

    def _tell(self, state: str) -> None:
        """kmf's state line (kmfwire.app_state): the executor reads readiness and stuckness from it."""
        print(state_line(state), file=self.out, flush=True)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # No transaction is open while the consumer polls: a batch is committed or aborted before
        # the next poll (see _process), so there is nothing to finish here.
        for tp in partitions:
            if tp.topic == self.settings.repartition_topic:
                self._state.pop(tp.partition, None)
        gone = {(tp.topic, tp.partition) for tp in partitions}
        self._assigned = [tp for tp in self._assigned if tp not in gone]
        log.info("revoked %s", self._describe(partitions))
        self._tell(REBALANCING)
        try:
            consumer.unassign()
        except KafkaException:
            pass

    @staticmethod
    def _describe(partitions: Sequence[TopicPartition]) -> str:
        by_topic: dict[str, list[int]] = {}
        for tp in partitions:
            by_topic.setdefault(tp.topic, []).append(tp.partition)
        return ", ".join(f"{t}{sorted(ps)}" for t, ps in sorted(by_topic.items())) or "nothing"

    # ------------------------------------------------------------------ processing

    def _process(self, batch: list[Message]) -> None:
        """Count `batch` in one transaction; on a failure abort it (or fence it with a new
        producer), rewind and let the batch come again. Returns with no transaction open."""
        s = self.settings
        producer, consumer = self._producer, self._consumer
        assert producer is not None and consumer is not None
        first: dict[tuple[str, int], int] = {}
        last: dict[tuple[str, int], int] = {}
        pending: dict[int, dict[str, int]] = {}
        lines = words_out = 0
        # Past the transaction timeout the coordinator aborts the transaction anyway.
        deadline = time.monotonic() + s.transaction_timeout_ms / 1000
        try:
            producer.begin_transaction()
            for msg in batch:
                topic, part, offset = msg.topic(), msg.partition(), msg.offset()
                assert topic is not None and part is not None and offset is not None  # a record has all three
                tp = (topic, part)
                first.setdefault(tp, offset)
                last[tp] = offset
                if topic == s.input_topic:
                    lines += 1
                    for word in words((msg.value() or b"").decode("utf-8", errors="replace")):
                        producer.produce(s.repartition_topic, key=word.encode(), value=b"1")
                        words_out += 1
                else:
                    state = self._state.get(part)
                    if state is None:
                        raise WordCountError(
                            f"record of {s.repartition_topic}[{msg.partition()}] without restored state")
                    word = (msg.key() or b"").decode("utf-8", errors="replace")
                    pending[part] = state.count([word], pending.get(part))
                producer.poll(0)
            for p, updates in pending.items():
                for word, total in updates.items():
                    key, value = word.encode(), encode_count(total)
                    producer.produce(s.output_topic, key=key, value=value)
                    producer.produce(s.changelog_topic, key=key, value=value, partition=p)
            offsets = [TopicPartition(t, p, off + 1) for (t, p), off in sorted(last.items())]
            group = consumer.consumer_group_metadata()
            self._txn_call("send_offsets_to_transaction", deadline,
                           lambda t: producer.send_offsets_to_transaction(offsets, group, t))
            self._txn_call("commit_transaction", deadline, producer.commit_transaction)
        except KafkaException as exc:
            self._recover_from(exc, len(batch))
            self._rewind(first)
            return
        except _Hung as exc:
            self._abandon_producer(exc, len(batch))
            self._rewind(first)
            return
        except BaseException:
            self._abort_quietly()  # the app stops: leave no transaction open behind
            raise
        for p, updates in pending.items():
            self._state[p].apply(updates)
        self.lines += lines
        self.words += sum(1 for msg in batch if msg.topic() == s.repartition_topic)
        self.transactions += 1
        self._failures_in_a_row = 0

    def _txn_call(self, what: str, deadline: float, call) -> None:
        """`call(timeout)`, a transactional producer call, again after a retriable error (a broker
        moving, a coordinator loading) until `deadline`; librdkafka keeps the transaction's state
        across a retriable failure, so the same call simply continues. Abortable and fatal errors,
        and the last retriable one, go to the caller."""
        attempt = 0
        while True:
            try:
                self._bounded(what, call, max(1.0, deadline - time.monotonic()))
                return
            except KafkaException as exc:
                err = _kafka_error(exc)
                if (err is None or not err.retriable() or err.txn_requires_abort() or err.fatal()
                        or time.monotonic() >= deadline):
                    raise
                attempt += 1
                log.warning("%s retried (attempt %d): %s", what, attempt, err)
                time.sleep(min(0.1 * 2 ** attempt, 1.0, max(0.0, deadline - time.monotonic())))

    def _bounded(self, what: str, call, timeout: float) -> None:
        """`call(timeout)` on a helper thread, waited for at most `timeout` + CALL_GRACE_S.

        librdkafka does not always honour the timeout of send_offsets_to_transaction(): when the
        group coordinator's broker has died, the request for the new coordinator can wait forever
        (confluentinc/librdkafka#5456, #5511; seen here after a broker kill -9: the call still
        running a minute later, the loop silent, the transaction open, the consumer still holding
        its partitions). The main loop must never wait on such a call: `_Hung` tells the caller to
        give the producer up."""
        outcome: list[BaseException | None] = []

        def target() -> None:
            try:
                call(timeout)
                outcome.append(None)
            except BaseException as exc:  # handed to the main thread
                outcome.append(exc)

        thread = threading.Thread(target=target, name=f"wordcount-{what}", daemon=True)
        thread.start()
        thread.join(timeout + CALL_GRACE_S)
        if not outcome:
            raise _Hung(f"{what} still running {timeout + CALL_GRACE_S:.1f}s after it was called "
                        f"with a {timeout:.1f}s timeout")
        if outcome[0] is not None:
            raise outcome[0]

    def _abandon_producer(self, exc: _Hung, records: int) -> None:
        """The producer is stuck inside a call: leave it there and go on with a new one. Its
        init_transactions() fences the stuck one (a newer epoch for the same transactional.id) and
        has the coordinator abort the transaction it left open, so nothing it might still send
        can be committed."""
        s = self.settings
        self._failures_in_a_row += 1
        if self._failures_in_a_row > MAX_FAILURES_IN_A_ROW:
            raise WordCountError(f"transaction of {records} records failed {self._failures_in_a_row} "
                                 f"times in a row (transactional.id {s.transactional_id}): {exc}")
        log.warning("transaction of %d records: %s; giving that producer up and fencing it with a "
                    "new one as %s, the batch comes again", records, exc, s.transactional_id)
        assert self._producer is not None  # the one that hung
        self._abandoned.append(self._producer)  # its helper thread still uses it
        self._producer = self._new_producer()

    def _recover_from(self, exc: KafkaException, records: int) -> None:
        """After a failed transaction: abort it, or, when the producer itself is unusable (a fatal
        error: fenced, or the coordinator already aborted the transaction), start a new producer
        with the same transactional.id, which fences the old one and aborts what it left open.
        Nothing was applied to the counts, so the batch is simply processed again. Gives up after
        `MAX_FAILURES_IN_A_ROW` failures."""
        s = self.settings
        err = _kafka_error(exc)
        self._failures_in_a_row += 1
        if err is None or self._failures_in_a_row > MAX_FAILURES_IN_A_ROW:
            raise WordCountError(f"transaction of {records} records failed {self._failures_in_a_row} "
                                 f"times in a row (transactional.id {s.transactional_id}): {exc}") from None
        assert self._producer is not None  # the one whose transaction failed
        if not err.fatal():
            log.warning("transaction of %d records failed (%s); aborting it, the batch comes again",
                        records, err)
            try:
                # abort waits for messages still in flight, bounded by the socket timeout, which
                # librdkafka keeps below the transaction timeout
                self._txn_call("abort_transaction", time.monotonic() + s.transaction_timeout_ms / 1000,
                               self._producer.abort_transaction)
                return
            except KafkaException as abort_exc:
                err = _kafka_error(abort_exc) or err
                log.warning("abort failed too: %s", err)
            except _Hung as hung:
                self._failures_in_a_row -= 1  # the same failure, counted once
                self._abandon_producer(hung, records)
                return
        log.warning("producer unusable (%s); starting a new one as %s", err, s.transactional_id)
        self._producer = self._new_producer()

    def _abort_quietly(self) -> None:
        assert self._producer is not None  # called while processing
        try:
            self._bounded("abort_transaction", self._producer.abort_transaction, 5)
        except (KafkaException, _Hung):
            pass  # fenced by the next incarnation, or aborted by the coordinator on timeout

    def _rewind(self, first: dict[tuple[str, int], int]) -> None:
        assert self._consumer is not None  # called while processing
        for (topic, partition), offset in first.items():
            try:
                self._consumer.seek(TopicPartition(topic, partition, offset))
            except KafkaException as exc:  # revoked meanwhile: the new owner redoes it
                log.info("cannot rewind %s[%d]: %s", topic, partition, exc)

    def _new_producer(self) -> Producer:
        """A transactional producer, initialised (which also fences an older one with the same id)."""
        s = self.settings
        producer = Producer({
            "bootstrap.servers": s.bootstrap, "transactional.id": s.transactional_id,
            # also the message timeout (librdkafka keeps it, and the socket timeout, below this)
            "transaction.timeout.ms": s.transaction_timeout_ms, "linger.ms": 5,
            "enable.idempotence": True, "acks": "all", "log_level": 3,
        })
        try:
            producer.init_transactions(max(30.0, s.transaction_timeout_ms / 1000 * 3))
        except KafkaException as exc:
            raise WordCountError(f"init_transactions for {s.transactional_id} on {s.bootstrap}: {exc}") from None
        return producer

    # ------------------------------------------------------------------ main loop

    def run(self) -> int:
        s = self.settings
        log.info("word count %s → %s, group %s, transactional.id %s, bootstrap %s",
                 s.input_topic, s.output_topic, s.group, s.transactional_id, s.bootstrap)
        # no state line while it waits for its input topic: kmf's old rule (ready after a few
        # seconds up) holds until it subscribes, so a deploy does not wait for a topic that is
        # created after it (the demo's); from then on, ready means RUNNING
        try:
            partitions = self.prepare_topics()
        except _Stopped:
            log.info("stopped while waiting for input topic %r", s.input_topic)
            return EXIT_OK
        log.info("repartition/changelog topics have %d partitions", partitions)
        self._producer = self._new_producer()
        self._consumer = Consumer({
            "bootstrap.servers": s.bootstrap, "group.id": s.group,
            # names the instance in group descriptions
            "client.id": s.client_id or s.transactional_id,
            **({"group.instance.id": s.group_instance_id} if s.group_instance_id else {}),
            "isolation.level": "read_committed", "enable.auto.commit": False,
            "enable.auto.offset.store": False, "auto.offset.reset": "earliest",
            "session.timeout.ms": s.session_timeout_ms,
            "heartbeat.interval.ms": max(500, s.session_timeout_ms // 10), "log_level": 3,
        })
        self._consumer.subscribe([s.input_topic, s.repartition_topic], on_assign=self._on_assign,
                                 on_revoke=self._on_revoke, on_lost=self._on_revoke)
        self._tell(REBALANCING)
        last_report = time.monotonic()
        try:
            while not self._stop.is_set():
                batch = []
                for msg in self._consumer.consume(num_messages=s.batch_size, timeout=0.5):
                    err = msg.error()
                    if err is None:
                        batch.append(msg)
                    elif err.fatal():
                        raise WordCountError(f"consumer of group {s.group} on {s.bootstrap}: {err}")
                    elif err.code() != KafkaError._PARTITION_EOF:
                        log.warning("consumer: %s", err)
                if batch:
                    self._process(batch)
                if time.monotonic() - last_report >= s.progress_interval_s:
                    last_report = time.monotonic()
                    log.info("progress: %d lines, %d words counted in %d transactions; %d distinct "
                             "words held; assigned %s", self.lines, self.words, self.transactions,
                             sum(len(c) for c in self._state.values()),
                             self._describe([TopicPartition(t, p) for t, p in self._assigned]))
        finally:
            self._shutdown()
        return EXIT_OK

    def _shutdown(self) -> None:
        self._tell(PENDING_SHUTDOWN)
        if self._consumer is not None:
            try:
                self._consumer.close()  # leaves the group, so the others take over at once
            except (KafkaException, RuntimeError) as exc:
                log.warning("closing the consumer: %s", exc)
        if self._producer is not None:
            try:
                self._producer.flush(10)
            except KafkaException as exc:
                log.warning("flushing the producer: %s", exc)
        log.info("stopped after %d lines, %d words, %d transactions", self.lines, self.words,
                 self.transactions)


# ---------------------------------------------------------------------- command line


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m streams.wordcount",
        description="Exactly-once word count: lines of --input become word → count updates in --output.")
    parser.add_argument("--input", required=True, help="topic of text lines")
    parser.add_argument("--output", required=True, help="topic of word → count (decimal text)")
    parser.add_argument("--group", default="wordcount",
                        help="consumer group; also names the internal topics (default: %(default)s)")
    parser.add_argument("--bootstrap-servers", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS"),
                        help="Kafka bootstrap servers (default: $KAFKA_BOOTSTRAP_SERVERS)")
    parser.add_argument("--app", default=os.environ.get("KMF_APP") or "wordcount",
                        help="app name for the transactional id (default: $KMF_APP or wordcount)")
    parser.add_argument("--instance", default=os.environ.get("KMF_INSTANCE"),
                        help="instance index for the transactional id (default: $KMF_INSTANCE)")
    parser.add_argument("--transaction-timeout-ms", type=int, default=DEFAULT_TRANSACTION_TIMEOUT_MS,
                        help="Kafka transaction timeout; also bounds how long a batch may take "
                             "(default: %(default)s, longer than a broker failover)")
    parser.add_argument("--session-timeout-ms", type=int,
                        default=os.environ.get("KMF_SESSION_TIMEOUT_MS") or 10_000,
                        help="consumer session timeout (default: $KMF_SESSION_TIMEOUT_MS or 10000)")
    parser.add_argument("--group-instance-id", default=os.environ.get("KMF_GROUP_INSTANCE_ID") or None,
                        help="static group membership id (default: $KMF_GROUP_INSTANCE_ID; none: dynamic)")
    parser.add_argument("--client-id", default=os.environ.get("KMF_CLIENT_ID") or None,
                        help="consumer client id (default: $KMF_CLIENT_ID, else the transactional id)")
    parser.add_argument("--connect-timeout", type=float, default=15.0,
                        help="seconds to reach Kafka at start (default: %(default)s)")
    parser.add_argument("--progress-interval", type=float, default=10.0,
                        help="seconds between progress lines (default: %(default)s)")
    return parser


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Validated settings; raises ValueError naming the bad option."""
    if not args.bootstrap_servers or not args.bootstrap_servers.strip():
        raise ValueError("--bootstrap-servers: not given and KAFKA_BOOTSTRAP_SERVERS is not set")
    for option, value in (("--input", args.input), ("--output", args.output), ("--group", args.group)):
        if not value or any(ch.isspace() for ch in value):
            raise ValueError(f"{option}: {value!r} is not a topic/group name")
    if args.input == args.output:
        raise ValueError(f"--output: must differ from --input ({args.input!r})")
    if args.transaction_timeout_ms < 1000:
        raise ValueError(f"--transaction-timeout-ms: {args.transaction_timeout_ms} is below 1000")
    if args.session_timeout_ms < 1000:
        raise ValueError(f"--session-timeout-ms: {args.session_timeout_ms} is below 1000")
    instance = args.instance
    if instance is None or not str(instance).strip():
        instance = f"{socket.gethostname()}-{os.getpid()}"
        log.warning("no --instance / KMF_INSTANCE: transactional id uses %s, so a restarted "
                    "instance will not fence its predecessor at once", instance)
    return Settings(bootstrap=args.bootstrap_servers.strip(), input_topic=args.input,
                    output_topic=args.output, group=args.group, app=args.app, instance=str(instance),
                    transaction_timeout_ms=args.transaction_timeout_ms,
                    session_timeout_ms=args.session_timeout_ms, connect_timeout_s=args.connect_timeout,
                    group_instance_id=args.group_instance_id, client_id=args.client_id,
                    progress_interval_s=args.progress_interval)


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    faulthandler.register(signal.SIGUSR1)  # `kill -USR1 <pid>` prints every thread's stack to stderr
    try:
        settings = settings_from_args(args)
    except ValueError as exc:
        print(f"wordcount: {exc}", file=sys.stderr)
        return EXIT_USAGE
    app = WordCount(settings)
    app.install_signal_handlers()
    try:
        return app.run()
    except KafkaUnreachable as exc:
        print(f"wordcount: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except WordCountError as exc:
        print(f"wordcount: {exc}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    raise SystemExit(main())
