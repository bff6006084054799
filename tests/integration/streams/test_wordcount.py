"""streams.wordcount against a real KRaft broker: partitions split between instances, exact counts,
kill -9 of an instance mid-stream (exactly once: no double counting), graceful SIGTERM and a
restart that restores its counts from the changelog."""
from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import threading

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from localmesos import procs
from tests.helpers.fixtures_kafka import start_kraft_broker
from tests.helpers.wait import wait_for
from tests.helpers.streams_apps import (
    REPO,
    App,
    CountReader,
    Topics,
    changelog_high,
    group_assignments,
    group_members,
    make_lines,
    produce_lines,
)

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(150)]

# The coordinator aborts a dead producer's transaction once it times out; check every second
# instead of every 10 s so a takeover after kill -9 is quick.
BROKER_OVERRIDES = {"transaction.abort.timed.out.transaction.cleanup.interval.ms": "1000"}


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    running = start_kraft_broker(tmp_path_factory.mktemp("wordcount-kafka"), BROKER_OVERRIDES)
    try:
        yield running
    finally:
        procs.stop_group(running.pid, grace=10.0)


def test_two_instances_split_partitions_and_count_exactly(broker, tmp_path):
    bootstrap = broker.bootstrap
    topics = Topics(bootstrap, partitions=4)
    apps = [App(bootstrap, topics, i, tmp_path) for i in range(2)]
    reader = CountReader(bootstrap, topics.output)
    try:
        for app in apps:
            app.wait_ready()

        def split() -> list:
            members = group_assignments(bootstrap, topics.group)
            return members if len(members) == 2 and all(members) else []

        members = wait_for(split, timeout=60, what=f"both instances holding partitions of {topics.group}")
        flat = [tp for member in members for tp in member]
        assert len(flat) == len(set(flat)) == 8  # 4 input + 4 repartition partitions, each once

        lines = make_lines(400, seed=1)
        expected = collections.Counter(w for line in lines for w in line.split())
        produce_lines(bootstrap, topics.input, lines)
        reader.wait_for_counts(dict(expected), apps)
        reader.assert_strictly_increasing()
    finally:
        reader.close()
        for app in apps:
            app.stop()
    for app in apps:
        assert "transaction aborted" not in app.log()


def test_kill_9_one_instance_mid_stream_counts_stay_exact(broker, tmp_path):
    bootstrap = broker.bootstrap
    topics = Topics(bootstrap, partitions=4)
    apps = [App(bootstrap, topics, i, tmp_path) for i in range(2)]
    reader = CountReader(bootstrap, topics.output)
    try:
        for app in apps:
            app.wait_ready()
        wait_for(lambda: len(group_assignments(bootstrap, topics.group)) == 2
                 and all(group_assignments(bootstrap, topics.group)),
                 timeout=60, what="both instances in the group")
        lines = make_lines(1200, seed=2)
        expected = collections.Counter(w for line in lines for w in line.split())
        first, rest = lines[:600], lines[600:]
        produce_lines(bootstrap, topics.input, first)
        # Mid-stream: the victim has committed counts of its own partitions and more is on the way.
        victim_id = f"{topics.group}.wordcount-0"
        victim_parts = [p for t, p in group_members(bootstrap, topics.group)[victim_id]
                        if t == f"{topics.group}-words-repartition"]
        assert victim_parts, "the victim holds no repartition partition"
        wait_for(lambda: all(changelog_high(bootstrap, f"{topics.group}-counts-changelog", p) > 0
                             for p in victim_parts),
                 timeout=60, what=f"the victim's counts of partitions {victim_parts} in the changelog")
        feeder = threading.Thread(target=produce_lines, args=(bootstrap, topics.input, rest, 50))
        feeder.start()
        os.killpg(apps[0].proc.pid, signal.SIGKILL)
        feeder.join(timeout=60)
        assert not feeder.is_alive()
        reader.wait_for_counts(dict(expected), apps[1:], timeout=100)
        reader.assert_strictly_increasing()
        assignment = group_assignments(bootstrap, topics.group)
        assert len(assignment) == 1 and len(assignment[0]) == 8, assignment
    finally:
        reader.close()
        for app in apps:
            app.stop()


def test_sigterm_is_graceful_and_a_restart_restores_counts(broker, tmp_path):
    bootstrap = broker.bootstrap
    topics = Topics(bootstrap, partitions=2)
    reader = CountReader(bootstrap, topics.output)
    app = App(bootstrap, topics, 0, tmp_path)
    try:
        app.wait_ready()
        lines = make_lines(200, seed=3)
        expected = collections.Counter(w for line in lines for w in line.split())
        produce_lines(bootstrap, topics.input, lines)
        reader.wait_for_counts(dict(expected), [app])

        app.proc.send_signal(signal.SIGTERM)
        assert app.proc.wait(timeout=30) == 0, app.log()[-3000:]
        assert "stopped after" in app.log()
        assert group_assignments(bootstrap, topics.group) == []  # it left the group

        more = make_lines(150, seed=4)
        expected.update(w for line in more for w in line.split())
        produce_lines(bootstrap, topics.input, more)
        again = App(bootstrap, topics, 0, tmp_path)  # same instance: same transactional id
        try:
            again.wait_ready()
            assert "restored" in again.log()
            reader.wait_for_counts(dict(expected), [again])
            reader.assert_strictly_increasing()
        finally:
            again.stop()
    finally:
        reader.close()
        app.stop()


def test_restore_includes_a_transaction_the_previous_owner_still_had_open(broker, tmp_path):
    """A previous owner expelled while committing (after a broker failure, say) can still commit
    its last transaction after the partition has moved: the new owner must restore the counts
    that transaction wrote, not the ones before it (KIP-447: it waits for the offsets to be
    stable, then reads the changelog to its end)."""
    bootstrap = broker.bootstrap
    topics = Topics(bootstrap, partitions=1)
    repartition, changelog = f"{topics.group}-words-repartition", f"{topics.group}-counts-changelog"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)
                                       for name in (repartition, changelog, topics.output)]).values():
        future.result(timeout=60)

    # The previous owner: a member of the group holding the partitions, with a transaction that
    # has written "kafka" → 5 and sent its offsets, not yet committed.
    member = Consumer({"bootstrap.servers": bootstrap, "group.id": topics.group,
                       "enable.auto.commit": False, "isolation.level": "read_committed"})
    member.subscribe([topics.input, repartition])
    wait_for(lambda: member.poll(0.2) is None and len(member.assignment()) == 2, timeout=60,
             what="the previous owner holding the partitions")
    zombie = Producer({"bootstrap.servers": bootstrap, "transactional.id": f"{topics.group}.previous",
                       "transaction.timeout.ms": 60_000})
    zombie.init_transactions(30)
    zombie.begin_transaction()
    zombie.produce(changelog, key=b"kafka", value=b"5", partition=0)
    zombie.produce(topics.output, key=b"kafka", value=b"5", partition=0)
    zombie.send_offsets_to_transaction([TopicPartition(topics.input, 0, 0), TopicPartition(repartition, 0, 0)],
                                       member.consumer_group_metadata(), 30)
    member.close()  # out of the group; its transaction lives on

    reader = CountReader(bootstrap, topics.output)
    app = App(bootstrap, topics, 0, tmp_path)
    try:
        wait_for(lambda: group_assignments(bootstrap, topics.group) == [
            sorted([(topics.input, 0), (repartition, 0)])], timeout=60, what="the app holding the partitions")
        zombie.commit_transaction(30)
        app.wait_ready()
        produce_lines(bootstrap, topics.input, ["kafka", "kafka mesos", "kafka"])
        reader.wait_for_counts({"kafka": 8, "mesos": 1}, [app])
        reader.assert_strictly_increasing()
    finally:
        reader.close()
        app.stop()


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "streams.wordcount", *args], cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
                          capture_output=True, text=True, timeout=60)


def test_unreachable_kafka_is_a_clear_error():
    host = procs.loopback_ip()
    port = procs.free_port(host)
    done = run_cli("--input", "text", "--output", "counts", "--bootstrap-servers", f"{host}:{port}",
                   "--connect-timeout", "2", "--instance", "0")
    assert done.returncode == 3, done.stderr
    assert f"cannot reach Kafka at '{host}:{port}'" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("args, message", [
    (["--input", "text", "--output", "counts"], "--bootstrap-servers: not given"),
    (["--input", "text", "--output", "text", "--bootstrap-servers", "h:1"], "--output: must differ"),
    (["--input", "te xt", "--output", "counts", "--bootstrap-servers", "h:1"], "--input: 'te xt'"),
    (["--input", "t", "--output", "c", "--bootstrap-servers", "h:1", "--transaction-timeout-ms", "5"],
     "--transaction-timeout-ms: 5"),
])
def test_bad_arguments_are_named(args, message):
    env = {k: v for k, v in os.environ.items() if k != "KAFKA_BOOTSTRAP_SERVERS"}
    done = subprocess.run([sys.executable, "-m", "streams.wordcount", *args], cwd=REPO,
                          env={**env, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert message in done.stderr
