"""The scheduler killed between recording a launch and sending it (several points), then a new
one finishes the deploy with no duplicate task and no stray reservation; uninstall leaves nothing,
also when its scheduler is killed in its middle."""
from __future__ import annotations

import os
import signal

import pytest

from tests.helpers.master_views import live_tasks, reservation_ids
from tests.helpers.wait import wait_for

pytestmark = [pytest.mark.timeout(420), pytest.mark.kafka]

STREAM = {"name": "sleeper", "count": 2, "cpus": 0.1, "mem_mb": 128, "runtime": "command",
          "command": ["sh", "-c", "echo 'kmf: ready'; exec sleep 3600"]}


@pytest.mark.parametrize("point", [1, 3])
def test_scheduler_killed_before_a_launch_then_deploy_finishes_cleanly(kmf_env, point):
    env = kmf_env(agents=3)
    config = env.config(brokers=3, apps=[STREAM])
    crashing = env.start_scheduler(config=config, env={"KMF_FAULT": f"exit_before_launch:{point}"})
    assert crashing.proc.wait(timeout=120) == 137
    s = env.start_scheduler(config=config)
    s.wait_deployed()
    names = live_tasks(env.lm)
    assert sorted(names) == sorted(set(names)) == ["broker-0", "broker-1", "broker-2", "sleeper-0", "sleeper-1"]
    owned = {s.pod(f"broker-{i}")["reservation"]["persistence_id"] for i in range(3)}
    wait_for(lambda: reservation_ids(env.lm) == owned, timeout=60, what="only owned reservations on agents")


def test_uninstall_kills_everything_releases_reservations_and_removes_state(kmf_env, zk_client):
    env = kmf_env(agents=3)
    s = env.start_scheduler(brokers=1, apps=[STREAM])
    s.wait_deployed()
    assert reservation_ids(env.lm)
    code, doc = s.request("POST", "/v1/uninstall")
    assert code == 200, doc
    assert s.proc.wait(timeout=120) == 0, s.log()
    assert live_tasks(env.lm) == []
    assert reservation_ids(env.lm) == set()
    frameworks = env.lm.get("/master/frameworks")
    assert all(f["name"] != env.name for f in frameworks["frameworks"])
    # zk_client is chrooted at env.zk_root; only the tombstone stays (test_restart_keeps_changes)
    assert zk_client.get_children(f"/{env.name}") == ["uninstalled"]


def test_uninstall_finishes_when_its_scheduler_is_killed_in_the_middle(kmf_env, zk_client):
    """kill -9 the scheduler right after it accepted the uninstall, while tasks still run; the
    scheduler started again (as Marathon would) finishes it from what ZooKeeper holds: every task
    gone at the master, every reservation released, the framework torn down, only the tombstone
    left, and it exits 0."""
    env = kmf_env(agents=3)
    s = env.start_scheduler(brokers=3, apps=[STREAM])
    s.wait_deployed()
    code, doc = s.request("POST", "/v1/uninstall")
    assert code == 200, doc
    s.kill(signal.SIGKILL)
    left, held = live_tasks(env.lm), reservation_ids(env.lm)
    print(f"killed the scheduler mid-uninstall; still at the master: tasks {sorted(left)}, "
          f"{len(held)} reservations")
    assert left or held, "the uninstall had finished before the kill: nothing tested"
    again = env.start_scheduler(config=s.config)
    assert again.proc.wait(timeout=180) == 0, again.log()
    assert live_tasks(env.lm) == []
    assert reservation_ids(env.lm) == set()
    assert all(f["name"] != env.name for f in env.lm.get("/master/frameworks")["frameworks"])
    assert zk_client.get_children(f"/{env.name}") == ["uninstalled"]


# make test kills at one seeded moment, make chaos (KMF_CHAOS_FULL=1) at both
@pytest.mark.parametrize("seed", [pytest.param(11, marks=pytest.mark.skipif(
    os.environ.get("KMF_CHAOS_FULL") != "1", reason="part of make chaos (KMF_CHAOS_FULL=1)")), 29])
def test_scheduler_killed_at_a_random_moment_of_the_deploy_then_deploy_finishes_cleanly(kmf_env, seed):
    """kill -9 at a seeded instant between subscribing and the end of the deploy (wherever the
    loop happens to be: persisting, accepting, reconciling), then a new scheduler finishes it."""
    import random
    import signal
    import time

    rng = random.Random(seed)
    env = kmf_env(agents=3)
    config = env.config(brokers=3, apps=[STREAM])
    first = env.start_scheduler(config=config)
    delay = rng.uniform(0.5, 12.0)
    print(f"seed {seed}: kill -9 after {delay:.2f}s")
    time.sleep(delay)
    first.kill(signal.SIGKILL)
    s = env.start_scheduler(config=config)
    s.wait_deployed()
    names = live_tasks(env.lm)
    assert sorted(names) == sorted(set(names)) == ["broker-0", "broker-1", "broker-2", "sleeper-0", "sleeper-1"]
    assert [s.pod(f"broker-{i}")["node_id"] for i in range(3)] == [0, 1, 2]
    owned = {s.pod(f"broker-{i}")["reservation"]["persistence_id"] for i in range(3)}
    wait_for(lambda: reservation_ids(env.lm) == owned, timeout=60, what="only owned reservations on agents")
