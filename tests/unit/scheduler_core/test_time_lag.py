"""Time lag (scheduler/core/time_lag.py): how many seconds a group is behind, read off the lag
samples' end offsets; and an app autoscaled on `target_lag_s` following it."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.api.metrics import StateCollector
from scheduler.core import app_autoscale as auto
from scheduler.core import events as ev
from scheduler.core import time_lag
from scheduler.core.app_autoscale import GroupLag
from tests.helpers.core_kit import ONE_BROKER, Scenario, deployed

TIMED = ONE_BROKER + """\
apps:
  - name: wc
    count: 1
    cpus: 0.25
    mem_mb: 128
    command: ['-m', 'streams.wordcount', '--group', 'wcg']
    autoscale: {min: 1, max: 4, target_lag_s: 10, interval_s: 20, cooldown_s: 60}
policies: {backoff_initial_s: 1, backoff_max_s: 8, permanent_failure_timeout_s: 30, deploy_strategy: parallel}
"""


def _group(committed: int, end: int, partition: int = 0) -> GroupLag:
    return GroupLag(end - committed, 1, parts=(("in", partition, committed, end - committed, None),))


def test_the_record_at_the_committed_offset_arrived_where_the_line_passed_it():
    line = ((100.0, 0), (110.0, 1000), (120.0, 3000))
    # offset 500 arrived halfway between the first two samples (the end reached 501 at 105.01 s)
    assert abs(time_lag.seconds_behind(line, 500, 130.0) - (130.0 - 105.01)) < 1e-9
    assert time_lag.seconds_behind(line, 2999, 130.0) == 0.0  # one behind: a commit marker
    assert time_lag.seconds_behind(line, 3000, 130.0) == 0.0
    # older than the line: extended back at its average rate (150 records/s)
    assert abs(time_lag.seconds_behind(((100.0, 1500), (110.0, 3000)), 0, 110.0) - 20.0) < 0.01
    # a partition that stopped growing: at least as old as its oldest point
    assert time_lag.seconds_behind(((100.0, 50), (160.0, 50)), 0, 160.0) == 60.0
    # one point cannot tell
    assert time_lag.seconds_behind(((100.0, 50),), 0, 100.0) is None


def test_a_group_is_as_far_behind_as_its_worst_partition_and_unknown_until_two_samples():
    lines: dict = {}
    g = GroupLag(0, 2, parts=(("in", 0, 0, 0, None), ("in", 1, 0, 0, None)))
    lines = time_lag.observe(lines, {"g": g}, 100.0)
    assert time_lag.group_seconds(lines, g, 100.0) == 0.0  # nothing behind: known at once
    g = GroupLag(600, 2, parts=(("in", 0, 0, 100, None), ("in", 1, 0, 500, None)))
    lines = time_lag.observe(lines, {"g": g}, 110.0)
    # partition 1's first record arrived at 100.02 s, partition 0's at 100.1 s
    assert abs(time_lag.group_seconds(lines, g, 110.0) - 9.98) < 1e-9
    fresh = time_lag.observe({}, {"g": g}, 110.0)
    assert time_lag.group_seconds(fresh, g, 110.0) is None  # a new leader's first sample


def test_a_topic_made_again_starts_its_line_afresh_and_lines_are_bounded():
    lines = time_lag.observe({}, {"g": _group(0, 5000)}, 1.0)
    lines = time_lag.observe(lines, {"g": _group(0, 10)}, 2.0)
    assert lines[("in", 0)] == ((2.0, 10),)
    for i in range(time_lag.HISTORY + 30):
        lines = time_lag.observe(lines, {"g": _group(0, 10 + i)}, 3.0 + i)
    assert len(lines[("in", 0)]) == time_lag.HISTORY
    assert time_lag.observe(lines, {}, 500.0) == {}  # no group reads it any more


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(0.1, 30), st.integers(0, 5000)), min_size=2, max_size=30),
       st.floats(0, 1), st.floats(0, 60))
def test_seconds_behind_is_never_negative_and_grows_with_an_older_offset(steps, where, later):
    t, end, line = 1000.0, 0, []
    for dt, grow in steps:
        t, end = t + dt, end + grow
        line.append((t, end))
    now = t + later
    committed = int(end * where)
    s = time_lag.seconds_behind(line, committed, now)
    assert s is not None and s >= 0
    older = time_lag.seconds_behind(line, max(0, committed - 100), now)
    assert older is not None and older >= s - 1e-9
    if end - committed > auto.CAUGHT_UP:
        assert s >= later - 1e-9  # waiting records are at least as old as the last sample


def _sample(sim: Scenario, committed: int, end: int) -> None:
    sim.send.event(ev.LagSampled({"wcg": GroupLag(end - committed, 3, parts=(
        ("in", 0, committed, end - committed, None),))}, sim.now))


def test_an_app_with_a_seconds_target_scales_on_how_old_its_backlog_is_not_how_large():
    sim = deployed(TIMED, agents=3)
    _sample(sim, 0, 0)
    sim.now += 10
    _sample(sim, 0, 100_000)  # a huge backlog, but only 10 s old: 1 instance at 10 s each
    assert sim.state.spec.app("wc").count == 1
    assert "10.0 s behind (100000 records) at 10 s per instance" in sim.plans()["autoscale"]["phases"][0]["message"]
    sim.now += 15
    _sample(sim, 0, 100_050)  # nothing consumed: now 25 s old, which asks for 3
    assert sim.state.spec.app("wc").count == 3
    (d,) = auto.memory(sim.state.properties, "wc").decisions
    assert (d.before, d.after, d.lag) == (1, 3, 100_050) and abs(d.seconds - 25.0) < 0.01
    assert sim.plans()["autoscale"]["phases"][0]["settings"]["target_lag_s"] == 10
    # and Prometheus sees the same time lag
    fams = StateCollector(lambda: sim.state, lambda: "leader", lambda: True).collect()
    (fam,) = [f for f in fams if f.name == "kmf_app_lag_seconds"]
    assert [(x.labels, round(x.value, 2)) for x in fam.samples] == [({"app": "wc", "group": "wcg"}, 25.0)]


def test_a_seconds_target_waits_for_a_time_lag_it_can_read():
    sim = deployed(TIMED, agents=3)
    _sample(sim, 0, 100_000)  # the first sample: how old is not known
    assert sim.state.spec.app("wc").count == 1
    assert "how many seconds is not known yet" in sim.plans()["autoscale"]["phases"][0]["message"]
