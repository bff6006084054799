"""A stream instance that keeps saying RUNNING but stopped committing while behind is ended and
relaunched with the recovery backoff (scheduler.core.commit_watch): judged from the lag samples'
committed offsets, lag and partition owners."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.core import events as ev
from scheduler.core.app_autoscale import GroupLag
from scheduler.core.commit_watch import Progress, observe, pod_of
from tests.helpers.core_kit import ONE_BROKER, Scenario, spec

APP = ONE_BROKER + """\
apps:
  - {name: wc, count: 2, cpus: 0.25, mem_mb: 128, command: ['-m', 'x', '--group', 'wcg'], stuck_limit_s: 30}
policies: {backoff_initial_s: 1, backoff_max_s: 8, permanent_failure_timeout_s: 300, deploy_strategy: parallel}
"""


def _deployed() -> Scenario:
    sim = Scenario(spec(APP), agents=2)
    sim.send.subscribed()
    sim.run_all_ready()
    assert all(sim.record(f"wc-{i}").ready for i in range(2))
    sim.now += 60  # both up longer than stuck_limit_s
    return sim


def _sample(sim: Scenario, offsets: dict, lag: int = 500, state: str = "STABLE",
            owners=("wc-0", "wc-1")):
    parts = tuple(("text", p, offsets[p], lag, owners[p]) for p in (0, 1))
    return sim.send.event(ev.LagSampled({"wcg": GroupLag(lag * 2, 2, 0, state, parts)}, sim.now, sampled_at=sim.now))


def test_an_instance_whose_partition_stays_put_while_behind_is_ended_after_the_limit():
    sim = _deployed()
    _sample(sim, {0: 100, 1: 100}).nothing_killed()
    for step in range(1, 4):  # wc-1 keeps committing, wc-0 does not
        sim.now += 10
        out = _sample(sim, {0: 100, 1: 100 + step * 50})
        if step < 3:
            out.nothing_killed()
    sim.expect.killed("wc-0")
    assert "not committing: text-0 stayed at offset 100 for 30s with 500 records behind" in sim.record("wc-0").message
    # its executor stops it: a failure, relaunched after the backoff (in place of a stuck instance)
    sim.send.status("wc-0", "TASK_KILLED")
    assert sim.record("wc-0").attempts == 1 and sim.record("wc-0").backoff_until > sim.now
    sim.now += 10
    _sample(sim, {0: 100, 1: 300}, owners=(None, "wc-1")).nothing_killed()  # no second kill


def test_a_caught_up_group_a_rebalancing_one_or_a_moving_offset_ends_nobody():
    for kwargs in ({"lag": 1}, {"lag": 0}, {"state": "PREPARING_REBALANCING"}):
        sim = _deployed()
        for _ in range(6):
            _sample(sim, {0: 100, 1: 100}, **kwargs).nothing_killed()
            sim.now += 10
    sim = _deployed()
    for step in range(6):
        _sample(sim, {0: 100 + step, 1: 100 + step}).nothing_killed()
        sim.now += 10


def test_a_kafka_streams_thread_client_id_names_its_pod():
    assert pod_of("wc-1-StreamThread-1-consumer", ["wc-0", "wc-1", "wc-10"]) == "wc-1"
    assert pod_of("wc-10", ["wc-1", "wc-10"]) == "wc-10"
    assert pod_of("other", ["wc-1"]) is None and pod_of(None, ["wc-1"]) is None


def test_an_instance_launched_lately_gets_the_whole_limit():
    sim = Scenario(spec(APP), agents=2)
    sim.send.subscribed()
    sim.run_all_ready()
    for step in range(3):  # text-0 has not moved for 40 s, but each wc-0 is up for less than 30 s
        _sample(sim, {0: 100, 1: 100 + step}).nothing_killed()
        sim.now += 20
        sim.send.status("wc-0", "TASK_KILLED")
        sim.run_all_ready(3)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 5), st.sampled_from(["a", "b", None])), max_size=20))
def test_the_clock_restarts_exactly_when_the_offset_or_owner_moves_or_the_partition_is_caught_up(samples):
    progress: dict = {}
    last = None
    for i, (committed, lag, owner) in enumerate(samples):
        now = float(i)
        progress = observe(progress, {"g": GroupLag(lag, 1, 0, "STABLE", (("t", 0, committed, lag, owner),))}, now)
        p = progress[("g", "t", 0)]
        moved = last is None or (committed, owner) != (last.committed, last.owner) or lag <= 1
        assert p.since == (now if moved else last.since)
        assert isinstance(p, Progress) and p.committed == committed
        last = p
