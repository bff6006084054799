"""The chaos workload proven on a real 3-broker KRaft cluster: no acknowledged record lost while a
broker is killed -9 and restarted; and the verifier does report lost, duplicated and stray records
when they are there (so it can fail)."""
from __future__ import annotations

import os
import signal
import time
import uuid

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from hypothesis import given
from hypothesis import strategies as st

from localmesos import procs
from tests.helpers.chaos_workload import (
    ProducerReport,
    Workload,
    create_topic,
    read_numbers,
    record_value,
    start_kraft_cluster,
    stop_cluster,
    summarize,
    verify,
)
from tests.helpers.fixtures_kafka import RunningBroker, launch
from tests.helpers.wait import wait_for

pytestmark = pytest.mark.timeout(240)


# ---------------------------------------------------------------------------- pure verdicts


def report_of(attempted: int, acked: set[int], failed: set[int] = frozenset()) -> ProducerReport:
    return ProducerReport("t", attempted, frozenset(acked), {n: "err" for n in failed},
                          frozenset(set(range(attempted)) - acked - set(failed)), 1.0)


@given(st.integers(0, 200).flatmap(lambda n: st.tuples(
    st.just(n), st.sets(st.integers(0, max(n - 1, 0)), max_size=n), st.lists(st.integers(0, 250)))))
def test_summarize_names_exactly_the_lost_duplicated_and_stray_numbers(case):
    attempted, acked, read = case
    acked = {a for a in acked if a < attempted}
    summary = summarize("t", report_of(attempted, acked), read)
    assert set(summary.lost) == acked - set(read)
    assert set(summary.duplicates) == {n for n in read if read.count(n) > 1}
    assert set(summary.unexpected) == {n for n in read if n >= attempted}
    assert summary.read == len(read)
    assert summary.ok == (not summary.lost and not summary.duplicates and not summary.unexpected)


def test_summarize_a_clean_run():
    summary = summarize("t", report_of(5, {0, 1, 2, 3}, failed={4}), [3, 1, 0, 2, 4])
    assert summary.ok and summary.acknowledged == 4 and summary.failed == 1 and summary.read == 5


# ---------------------------------------------------------------------------- a 3-broker cluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    brokers = start_kraft_cluster(tmp_path_factory.mktemp("chaos-cluster"))
    try:
        yield brokers
    finally:
        stop_cluster(brokers)


def bootstrap_of(brokers: list[RunningBroker]) -> str:
    return ",".join(b.bootstrap for b in brokers)


def full_isr(bootstrap: str, topic: str, replicas: int = 3) -> bool:
    meta = AdminClient({"bootstrap.servers": bootstrap}).list_topics(topic, timeout=5).topics[topic]
    return all(p.leader >= 0 and len(p.isrs) == replicas for p in meta.partitions.values())


@pytest.mark.kafka
def test_no_acknowledged_record_lost_when_a_broker_is_killed_and_restarted(cluster):
    bootstrap = bootstrap_of(cluster)
    topic = f"chaos-{uuid.uuid4().hex[:6]}"
    create_topic(bootstrap, topic, partitions=3, replication_factor=3, min_insync_replicas=2)
    meta = AdminClient({"bootstrap.servers": bootstrap}).list_topics(topic, timeout=10).topics[topic]
    victim = next(b for b in cluster if b.broker_id == meta.partitions[0].leader)

    workload = Workload(bootstrap, topic, rate=400).start()
    try:
        workload.wait_acknowledged(400, timeout=60)
        os.killpg(victim.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        wait_for(lambda: not procs.pid_alive(victim.pid), timeout=10, what="the killed broker gone")
        # Two of three replicas are enough for acks=all with min.insync.replicas=2.
        workload.wait_acknowledged(workload.acknowledged_count + 400, timeout=90)
        launch(victim, timeout=120)  # same node id, same data dir
        wait_for(lambda: full_isr(bootstrap, topic), timeout=90,
                 what=f"broker {victim.broker_id} back in the ISR of {topic}")
        recovered_s = time.monotonic() - killed_at
        workload.wait_acknowledged(workload.acknowledged_count + 400, timeout=60)
    finally:
        report = workload.stop(flush_timeout=60)
    summary = verify(bootstrap, report, timeout=120)
    print(f"\n{summary.line()}; broker {victim.broker_id} killed -9, back in the ISR after {recovered_s:.1f}s")
    assert summary.acknowledged >= 1200
    assert summary.lost == ()
    assert summary.duplicates == ()
    assert summary.unexpected == ()
    assert summary.read >= summary.acknowledged


@pytest.mark.kafka
def test_the_verifier_reports_deleted_duplicated_and_stray_records(cluster):
    bootstrap = bootstrap_of(cluster)
    topic = f"chaos-negative-{uuid.uuid4().hex[:6]}"
    create_topic(bootstrap, topic, partitions=2, replication_factor=3, min_insync_replicas=2)
    workload = Workload(bootstrap, topic, rate=None, max_records=600).start()
    try:
        workload.wait_acknowledged(600, timeout=60)
    finally:
        report = workload.stop()
    clean = verify(bootstrap, report)
    assert clean.ok and clean.lost == () and clean.read == 600, clean.line()

    # Delete the first 50 records of partition 0 and learn which numbers they were.
    reader = Consumer({"bootstrap.servers": bootstrap, "group.id": f"peek-{uuid.uuid4().hex[:6]}",
                       "enable.auto.commit": False})
    reader.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    doomed: list[int] = []
    try:
        def take() -> bool:
            for msg in reader.consume(num_messages=50 - len(doomed), timeout=0.5):
                assert msg.error() is None, msg.error()
                doomed.append(int(msg.key()))
            return len(doomed) >= 50
        wait_for(take, timeout=30, interval=0, what=f"the first 50 records of {topic}[0]")
    finally:
        reader.close()
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.delete_records([TopicPartition(topic, 0, 50)]).values():
        future.result(timeout=30)

    # One record sent twice by hand (no idempotence), one number nobody attempted.
    stray = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    twice = next(n for n in range(600) if n not in doomed)
    stray.produce(topic, key=str(twice).encode(), value=record_value(twice))
    stray.produce(topic, key=b"999999", value=record_value(999999))
    assert stray.flush(30) == 0

    summary = verify(bootstrap, report)
    print(f"\n{summary.line()}")
    assert summary.lost == tuple(sorted(doomed))
    assert summary.duplicates == (twice,)
    assert summary.unexpected == (999999,)
    assert not summary.ok
    assert len(read_numbers(bootstrap, topic)) == 600 - 50 + 2
