"""Kafka Streams standby replicas land on other agents than their active task: kmf tags each
instance with its agent (rack-aware assignment, KIP-708). Four WordCountDemo instances, three on
one agent and one on the other (`hostname:MAX_PER:3`), with `properties: {num.standby.replicas:
1}`; six stateful tasks (the count store's), each with an active and a standby copy. Seen from
Kafka Streams itself: the assignment each instance logs when it is handed its tasks. Without the
tags, Kafka Streams balances standbys by load, so most standbys of the tasks active on the crowded
agent go to its other instances there."""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.helpers.fixtures_scheduler import java_pid_of
from tests.helpers.wait import wait_for

pytestmark = [pytest.mark.timeout(420), pytest.mark.kafka]

PARTITIONS = 6
APP = {"name": "sb", "count": 4, "cpus": 0.25, "mem_mb": 512, "runtime": "java",
       "command": ["org.apache.kafka.streams.examples.wordcount.WordCountDemo", "{properties}"],
       "stuck_limit_s": 120, "properties": {"num.standby.replicas": "1"}, "placement": ["hostname:MAX_PER:3"]}
_TASKS = re.compile(r"New (active|standby) tasks: \[([^\]]*)\]")


def assignment(stdout: Path) -> tuple[set[str], set[str]] | None:
    """(active, standby) task ids the instance was handed last, as Kafka Streams logged it."""
    try:
        text = stdout.read_text(errors="replace")
    except OSError:
        return None
    at = text.rfind("Handle new assignment with")
    if at < 0:
        return None
    found = dict((kind, {t.strip() for t in ids.split(",") if t.strip()}) for kind, ids in _TASKS.findall(text[at:at + 2000])[:2])
    if set(found) != {"active", "standby"}:
        return None
    return found["active"], found["standby"]


def test_standby_replicas_are_placed_on_another_agent_than_their_active_task(kmf_env):
    env = kmf_env(agents=2)
    s = env.start_scheduler(brokers=1, apps=[APP])
    wait_for(lambda: s.pod("broker-0").get("ready"), timeout=120, interval=1, what="broker ready")
    for topic, parts in (("streams-plaintext-input", PARTITIONS), ("streams-wordcount-output", 1)):
        code, doc = s.request("POST", "/v1/topics", {"name": topic, "partitions": parts})
        assert code in (200, 409), doc
    s.wait_deployed(timeout=300)
    pods = {f"sb-{i}": s.pod(f"sb-{i}") for i in range(4)}
    agents = {name: p["agent_id"] for name, p in pods.items()}
    assert sorted(list(agents.values()).count(a) for a in set(agents.values())) == [1, 3], agents

    def sandbox(name: str) -> Path:
        pid = java_pid_of(pods[name]["task_id"])
        assert pid is not None, f"{name}'s JVM"
        return Path(os.readlink(f"/proc/{pid}/cwd"))

    stdouts = {name: sandbox(name) / "stdout" for name in pods}
    stateful = {f"1_{p}" for p in range(PARTITIONS)}

    def settled() -> dict[str, tuple[set[str], set[str]]] | None:
        got = {name: assignment(path) for name, path in stdouts.items()}
        if any(v is None for v in got.values()):
            return None
        done = {name: v for name, v in got.items() if v is not None}
        actives = [t for a, _ in done.values() for t in a if t in stateful]
        standbys = [t for _, sb in done.values() for t in sb]
        # every stateful task active once and standing by once: the assignment after the last join
        if sorted(actives) != sorted(stateful) or sorted(standbys) != sorted(stateful):
            return None
        return done

    final = wait_for(settled, timeout=180, interval=2, what="every instance's assignment logged, "
                     "each stateful task active once and standby once")
    where_active = {t: agents[name] for name, (act, _) in final.items() for t in act if t in stateful}
    where_standby = {t: agents[name] for name, (_, sb) in final.items() for t in sb}
    print(f"assignment: {final}")
    same = sorted(t for t in stateful if where_active[t] == where_standby[t])
    assert not same, f"standby on the active task's agent: {same} ({final}, agents {agents})"
