"""streams.wordcount on a 3-broker KRaft cluster while a broker is killed -9 and restarted (what the
demo does to a kmf cluster): the instances ride it out and the counts stay exact."""
from __future__ import annotations

import collections
import os
import signal
import threading

import pytest
from confluent_kafka.admin import AdminClient

from localmesos import procs
from tests.helpers.chaos_workload import start_kraft_cluster, stop_cluster
from tests.helpers.fixtures_kafka import launch
from tests.helpers.wait import wait_for
from tests.helpers.streams_apps import App, CountReader, Topics, group_assignments, make_lines, produce_lines

pytestmark = [
    pytest.mark.kafka, pytest.mark.timeout(200),
    # a broker kill under a loaded 2-core CI machine can take longer than the test allows: it runs
    # with the chaos suite (make chaos), where every fault has the machine to itself
    pytest.mark.skipif(os.environ.get("KMF_CHAOS_FULL") != "1", reason="part of make chaos (KMF_CHAOS_FULL=1)"),
]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    brokers = start_kraft_cluster(
        tmp_path_factory.mktemp("wordcount-cluster"),
        overrides={"transaction.abort.timed.out.transaction.cleanup.interval.ms": "1000"})
    try:
        yield brokers
    finally:
        stop_cluster(brokers)


def test_counts_stay_exact_when_a_broker_is_killed_and_restarted(cluster, tmp_path):
    bootstrap = ",".join(b.bootstrap for b in cluster)
    topics = Topics(bootstrap, partitions=3, replication=3)
    apps = [App(bootstrap, topics, i, tmp_path) for i in range(2)]
    reader = CountReader(bootstrap, topics.output)
    try:
        for app in apps:
            app.wait_ready()
        wait_for(lambda: len(group_assignments(bootstrap, topics.group)) == 2, timeout=60,
                 what="both instances in the group")
        lines = make_lines(900, seed=7)
        expected = collections.Counter(w for line in lines for w in line.split())
        produce_lines(bootstrap, topics.input, lines[:300])
        wait_for(lambda: sum(reader.latest().values()) > 0, timeout=60, what="counting under way")

        # The group's coordinator goes down hard while lines keep coming (it leads partitions of
        # the topics too): every instance's send_offsets_to_transaction (KIP-447) must then find
        # the new coordinator mid-transaction, where librdkafka can hang past its timeout.
        admin = AdminClient({"bootstrap.servers": bootstrap})  # kept: its futures need it alive
        group = admin.describe_consumer_groups([topics.group])[topics.group].result(timeout=30)
        victim = next(b for b in cluster if b.broker_id == group.coordinator.id)
        feeder = threading.Thread(target=produce_lines, args=(bootstrap, topics.input, lines[300:], 50))
        feeder.start()
        os.killpg(victim.pid, signal.SIGKILL)
        wait_for(lambda: not procs.pid_alive(victim.pid), timeout=10, what="the killed broker gone")
        feeder.join(timeout=120)
        assert not feeder.is_alive(), "producing the rest of the lines took over 120 s"
        launch(victim, timeout=120)
        reader.wait_for_counts(dict(expected), apps, timeout=120)
        reader.assert_strictly_increasing()
        for app in apps:
            assert app.proc.poll() is None, f"an instance died with the broker:\n{app.log()[-3000:]}"
    finally:
        reader.close()
        for app in apps:
            app.stop()
