"""The demo's read of the word counts against a real Kafka topic (issue 12, defect 9): doubled
counts in the topic fail the demo instead of passing as "at least the expected ones", and exact
counts pass once every partition, empty ones too, has been read to its end."""
from __future__ import annotations

import time

import pytest
from confluent_kafka import Producer

from kmf import demo
from streams.counting import encode_count

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(120)]


def write_counts(bootstrap: str, topic: str, records: list[tuple[str, int]]) -> None:
    """Records as the word-count app writes them (word → running count), keyed by word."""
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "log_level": 0})
    for word, count in records:
        producer.produce(topic, key=word.encode(), value=encode_count(count))
    assert producer.flush(30) == 0


def test_read_counts_fails_on_doubled_counts_and_passes_on_exact_ones(kafka_kraft):
    bootstrap = kafka_kraft.bootstrap
    demo.create_topics(bootstrap, {"doubled": {}, "exact": {}}, partitions=3)
    expected = {"kafka": 2, "mesos": 2}
    # every sentence counted twice, as a word count that is not exactly-once does after a restart
    write_counts(bootstrap, "doubled", [("kafka", 1), ("mesos", 1), ("kafka", 2), ("mesos", 2),
                                        ("kafka", 3), ("mesos", 3), ("kafka", 4), ("mesos", 4)])
    started = time.monotonic()
    with pytest.raises(demo.DemoError, match=r"wrong.*'kafka': \(4, 2\).*'mesos': \(4, 2\)"):
        demo.read_counts(bootstrap, "doubled", expected, timeout=30)
    assert time.monotonic() - started < 25  # refused as soon as seen, not after the timeout

    # two keys over three partitions: at least one partition is empty and must still count as read
    write_counts(bootstrap, "exact", [("kafka", 1), ("mesos", 1), ("kafka", 2), ("mesos", 2)])
    assert demo.read_counts(bootstrap, "exact", expected, timeout=30) == expected
