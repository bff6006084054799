"""Stream apps under kmf keep their identity: every instance joins its group as a static member
(group.instance.id `<service>-<app>-<i>`, client id its pod), so an instance killed and relaunched
by kmf gets its partitions back without a rebalance. Seen from Kafka: the group's members in
describe_consumer_groups, and the generations the coordinator wrote to __consumer_offsets."""
from __future__ import annotations

import collections
import os
import signal

import pytest
from confluent_kafka.admin import AdminClient

from kmfwire.taskdata import STREAM_STATE_DIR
from tests.helpers.fixtures_scheduler import java_pid_of, pid_in_sandbox
from tests.helpers.master_views import reservation_ids, volumes_in_use
from tests.helpers.streams_apps import (CountReader, group_generations, make_lines, produce_lines,
                                        start_wordcount_service, wordcount_app)
from tests.helpers.wait import wait_for

pytestmark = [pytest.mark.timeout(420), pytest.mark.kafka]

GROUP = "wc-static"


def members(admin: AdminClient, group: str) -> dict[str, tuple[str, str | None, list]]:
    """client id → (member id, group.instance.id, assigned partitions), once the group is Stable."""
    d = admin.describe_consumer_groups([group])[group].result(timeout=15)
    if str(d.state).rsplit(".", 1)[-1] != "STABLE":
        return {}
    return {m.client_id: (m.member_id, m.group_instance_id, sorted(
        (tp.topic, tp.partition) for tp in m.assignment.topic_partitions)) for m in d.members}


def relaunched_and_rejoined(s, admin: AdminClient, group: str, pod_name: str, pid: int | None,
                            before: dict) -> dict:
    """kill -9 `pid` (the instance's process): kmf relaunches `pod_name`, and its group is Stable
    again with both members holding partitions under new member ids. Returns the members."""
    pod = s.pod(pod_name)
    assert pid is not None, f"the process of {pod_name}"
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: (lambda p: p["task_id"] != pod["task_id"] and p.get("ready"))(s.pod(pod_name)),
             timeout=120, interval=0.5, what=f"{pod_name} relaunched and ready")
    old_ids = {v[0] for v in before.values()}
    return wait_for(lambda: (lambda m: m if len(m) == 2 and {v[0] for v in m.values()} != old_ids
                             and all(v[2] for v in m.values()) else None)(members(admin, group)),
                    timeout=120, interval=0.5, what="the relaunched instance back in the group")


def test_a_killed_instance_is_relaunched_and_rejoins_without_a_rebalance(kmf_env):
    env = kmf_env(agents=2)
    s, boot = start_wordcount_service(env, wordcount_app(GROUP), text_partitions=4)
    admin = AdminClient({"bootstrap.servers": boot})
    before = wait_for(lambda: (lambda m: m if len(m) == 2 and all(v[2] for v in m.values()) else None)(
        members(admin, GROUP)), timeout=120, interval=1, what=f"both instances holding partitions of {GROUP}")

    reader = CountReader(boot, "counts")
    lines = make_lines(300, seed=18)
    expected = collections.Counter(w for line in lines for w in line.split())
    produce_lines(boot, "text", lines[:150])
    wait_for(lambda: sum(reader.latest().values()) > 0, timeout=90, what="counting under way")
    generations = group_generations(boot, GROUP)
    assert generations, "no group metadata record for the group"

    # kill -9 instance 0's process: its executor reports the task failed, kmf relaunches it
    pid = pid_in_sandbox(s.pod("wordcount-0")["task_id"], lambda argv: b"streams.wordcount" in argv)
    after = relaunched_and_rejoined(s, admin, GROUP, "wordcount-0", pid, before)
    produce_lines(boot, "text", lines[150:])
    reader.wait_for_counts(dict(expected), [], timeout=120)
    reader.close()

    now = group_generations(boot, GROUP)
    print(f"generations recorded before the kill {generations}, after the relaunch {now}")
    # the rejoin was recorded (the new member id) without a new generation: no rebalance
    assert set(now[len(generations) - 1:]) == {generations[-1]}, (generations, now)
    assert len(now) > len(generations), (generations, now)
    # the identity kmf gave: group.instance.id <service>-<app>-<i>, client id the pod's name; the
    # relaunched instance holds the partitions it held before
    assert {k: v[1] for k, v in after.items()} == {f"wordcount-{i}": f"{env.name}-wordcount-{i}" for i in range(2)}
    assert {k: v[2] for k, v in after.items()} == {k: v[2] for k, v in before.items()}


def test_a_killed_kafka_streams_instance_rejoins_without_a_rebalance_on_its_state_volume(kmf_env):
    """The same for Kafka Streams' WordCountDemo: kmf's properties file gives it the identity
    (Kafka Streams suffixes group.instance.id with its thread's index). With `state_volume_mb`,
    each instance has a persistent volume (the master's view: its task's resources) holding
    Kafka Streams' state.dir: the relaunched instance is on the same volume, whose stores are the
    same files as before the kill (the files on the agent); scaling in releases the volume of the
    instance removed (the master's reservations)."""
    env = kmf_env(agents=2)
    app = {"name": "wcj", "count": 2, "cpus": 0.25, "mem_mb": 512, "runtime": "java",
           "command": ["org.apache.kafka.streams.examples.wordcount.WordCountDemo", "{properties}"],
           # ready only once RUNNING: an instance that started before its topics (ERROR) is restarted soon
           "stuck_limit_s": 60, "state_volume_mb": 64}
    s = env.start_scheduler(brokers=1, apps=[app])
    wait_for(lambda: s.pod("broker-0").get("ready"), timeout=120, interval=1, what="broker ready")
    for topic in ("streams-plaintext-input", "streams-wordcount-output"):
        code, doc = s.request("POST", "/v1/topics", {"name": topic, "partitions": 2})
        assert code in (200, 409), doc
    s.wait_deployed(timeout=240)
    boot = s.get("/v1/endpoints/broker")["bootstrap_servers"]
    admin = AdminClient({"bootstrap.servers": boot})
    group = f"{env.name}-wcj"
    before = wait_for(lambda: (lambda m: m if len(m) == 2 and all(v[2] for v in m.values()) else None)(
        members(admin, group)), timeout=180, interval=1, what=f"both instances holding partitions of {group}")
    produce_lines(boot, "streams-plaintext-input", make_lines(50, seed=19))
    generations = wait_for(lambda: group_generations(boot, group), timeout=30, what="the group's records")

    # the state volume: in the master's view of the task, on the agent's disk, and in the sandbox
    volume_id = s.pod("wcj-0")["reservation"]["persistence_id"]
    assert volumes_in_use(env.lm).get(volume_id) == s.pod("wcj-0")["agent_id"], "wcj-0's volume not in use"
    agent = env.lm.agents[env.agent_index(s.pod("wcj-0")["reservation"]["agent_id"])]
    volume = agent.work_dir / "volumes" / "roles" / "kafka-role" / volume_id
    stores = wait_for(lambda: sorted((volume / group).glob("*_*/rocksdb/*")) or None, timeout=60, interval=1,
                      what="Kafka Streams' stores on wcj-0's volume")
    inodes = {p: p.stat().st_ino for p in stores}
    pid = java_pid_of(s.pod("wcj-0")["task_id"])
    assert pid is not None
    assert os.path.realpath(os.path.join(os.readlink(f"/proc/{pid}/cwd"), STREAM_STATE_DIR)) == str(volume)

    after = relaunched_and_rejoined(s, admin, group, "wcj-0", pid, before)
    relaunched = s.pod("wcj-0")
    assert relaunched["reservation"]["persistence_id"] == volume_id
    assert volumes_in_use(env.lm).get(volume_id) == relaunched["agent_id"], "the volume is not in use again"
    pid = java_pid_of(relaunched["task_id"])
    assert pid is not None
    assert os.path.realpath(os.path.join(os.readlink(f"/proc/{pid}/cwd"), STREAM_STATE_DIR)) == str(volume)
    assert {p: p.stat().st_ino for p in stores if p.exists()} == inodes, "the stores were not kept"
    now = group_generations(boot, group)
    print(f"Kafka Streams generations before the kill {generations}, after the relaunch {now}")
    assert set(now[len(generations) - 1:]) == {generations[-1]}, (generations, now)
    ids = sorted(v[1] or "" for v in after.values())
    assert ids[0].startswith(f"{env.name}-wcj-0") and ids[1].startswith(f"{env.name}-wcj-1"), ids
    assert sorted(v[2] for v in after.values()) == sorted(v[2] for v in before.values())  # same partitions

    # scaled in: wcj-1 goes, and so do its volume and reservation at the master; wcj-0's stay
    gone = s.pod("wcj-1")["reservation"]["persistence_id"]
    assert gone in reservation_ids(env.lm)
    code, doc = s.request("POST", "/v1/scale", {"kind": "app", "name": "wcj", "count": 1})
    assert code == 200, doc
    wait_for(lambda: gone not in reservation_ids(env.lm), timeout=90, interval=1,
             what="wcj-1's reservation released at the master")
    assert volume_id in reservation_ids(env.lm)
