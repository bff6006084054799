"""A stream app's rolling update restarts its next instance only when Kafka shows the app's
consumer group settled: in a lag sample taken after the restarted instance became ready, not
rebalancing, and (autoscaled) no more than count × target_lag behind (scheduler.core.rolling.
app_group_blocker)."""
from __future__ import annotations

from kmfwire.taskdata import TaskData
from scheduler.core import events as ev
from scheduler.core.app_autoscale import GroupLag
from tests.helpers.core_kit import ONE_BROKER, Scenario, deployed, spec

APP = ONE_BROKER + """\
apps:
  - name: wc
    count: 2
    cpus: 0.25
    mem_mb: 128
    command: ['-m', 'streams.wordcount', '--group', 'wcg']
    env: {VERSION: '%s'}
%s
policies: {backoff_initial_s: 1, backoff_max_s: 8, permanent_failure_timeout_s: 30, deploy_strategy: parallel}
"""
AUTO = "    autoscale: {min: 2, max: 2, target_lag: 100}"


def _sample(sim: Scenario, state: str = "STABLE", lag: int = 0):
    return sim.send.event(ev.LagSampled({"wcg": GroupLag(lag, 2, 0, state)}, sim.now, sampled_at=sim.now))


def _rolled_first(extra: str = "") -> Scenario:
    """Deployed at version 1, a sample of the group, then version 2: wc-0 restarted and ready again."""
    sim = deployed(APP % ("1", extra), agents=3)
    _sample(sim)
    sim.send.command("update_config", spec=spec(APP % ("2", extra))).replied(ok=True).killed("wc-0")
    sim.send.status("wc-0", "TASK_KILLED")
    sim.run_all_ready(2)
    assert sim.record("wc-0").ready and sim.record("wc-1").kill_reason is None
    return sim


def _update_message(sim: Scenario, pod: str) -> str:
    steps = {s["name"]: s for ph in sim.plans()["update"]["phases"] for s in ph["steps"]}
    return steps[pod]["message"]


def test_the_next_instance_waits_for_a_fresh_sample_and_a_group_that_is_not_rebalancing():
    sim = _rolled_first()
    assert "taken after every instance is ready" in _update_message(sim, "wc-1")
    sim.now += 1
    _sample(sim, "PREPARING_REBALANCING")
    sim.send.tick(1).nothing_killed()
    assert "is rebalancing (PREPARING_REBALANCING in Kafka)" in _update_message(sim, "wc-1")
    sim.now += 1
    _sample(sim, "STABLE")
    sim.send.tick(1).killed("wc-1")


def test_an_autoscaled_app_also_waits_for_its_lag_to_come_down():
    sim = _rolled_first(AUTO)
    sim.now += 1
    _sample(sim, "STABLE", lag=500)
    sim.send.tick(1).nothing_killed()
    assert "500 records behind, more than 2 × target_lag 100" in _update_message(sim, "wc-1")
    sim.now += 1
    _sample(sim, "STABLE", lag=150)
    sim.send.tick(1).killed("wc-1")


def test_an_app_autoscaled_on_seconds_waits_until_its_backlog_is_young_enough():
    sim = _rolled_first("    autoscale: {min: 2, max: 2, target_lag_s: 5}")

    def sample(committed: int, end: int):
        parts = (("text", 0, committed, end - committed, None),)
        return sim.send.event(ev.LagSampled({"wcg": GroupLag(end - committed, 1, 0, "STABLE", parts)}, sim.now,
                                            sampled_at=sim.now))
    sim.now += 1
    sample(0, 1000)  # behind, and the first point of the line: how old is not known
    sim.send.tick(1).nothing_killed()
    assert "a sample that tells how many seconds consumer group wcg is behind (1000 records)" in \
        _update_message(sim, "wc-1")
    sim.now += 20
    sample(0, 1000)  # nothing consumed for 21 s (a tick is 1 s): more than 2 × 5 s
    sim.send.tick(1).nothing_killed()
    assert "is 21.0 s behind, more than 2 × target_lag_s 5" in _update_message(sim, "wc-1")
    sim.now += 1
    sample(990, 1000)  # the record at 990 arrived at the first point, 21 s ago: still old
    sim.send.tick(1).nothing_killed()
    sim.now += 1
    sample(1000, 1000)  # caught up
    sim.send.tick(1).killed("wc-1")


def test_a_group_kafka_does_not_list_does_not_hold_the_roll():
    sim = deployed(APP % ("1", ""), agents=3)
    sim.send.command("update_config", spec=spec(APP % ("2", ""))).replied(ok=True).killed("wc-0")
    sim.send.status("wc-0", "TASK_KILLED")
    sim.run_all_ready(2)
    assert sim.record("wc-1").kill_reason is not None  # no sample at all: the roll went on


def test_a_rollback_is_the_old_file_again_rolled_the_same_way_mid_roll_too():
    """Version 2 rolled halfway (wc-0 on it, wc-1 not yet), then `config update` with version 1's
    file: wc-1 is already at version 1 and stays; wc-0 rolls back, gated like any app roll, and
    each instance ends on version 1's payload."""
    sim = _rolled_first()
    v1 = spec(APP % ("1", ""))
    sim.send.command("update_config", spec=v1).replied(ok=True)
    assert sim.record("wc-1").kill_reason is None
    sim.now += 1
    _sample(sim)
    sim.send.tick(1).killed("wc-0")
    sim.send.status("wc-0", "TASK_KILLED")
    sim.run_all_ready(2)
    sim.now += 1
    _sample(sim)
    sim.send.tick(1).nothing_killed()
    assert sim.plans()["update"]["status"] == "COMPLETE"
    for pod in ("wc-0", "wc-1"):
        data = TaskData.decode(sim.tasks[sim.record(pod).task_id]["info"]["data"])
        assert data.stream.env == {"VERSION": "1"}, pod
