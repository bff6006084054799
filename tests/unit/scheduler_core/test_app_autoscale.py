"""Lag autoscaling of stream apps (scheduler/core/app_autoscale.py): the count follows the group's
lag within min..max and the input's partitions, scales out only with every instance ready and an
interval after the last change, in only after a cooldown of low lag; an operator's count pauses it
until --auto; a config update and a restarted scheduler keep what it reached."""
from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from config import AutoscaleSpec
from scheduler.core import app_autoscale as auto
from scheduler.core import events as ev
from scheduler.core.app_autoscale import Decision, GroupLag, Memory
from tests.helpers.core_kit import ONE_BROKER, Scenario, deployed, spec

AUTOSCALED = ONE_BROKER + """\
apps:
  - name: wc
    count: %d
    cpus: 0.25
    mem_mb: 128
    command: ['-m', 'streams.wordcount', '--group', 'wcg']
    autoscale: {min: 1, max: 4, target_lag: 100, interval_s: 20, cooldown_s: 60}
policies: {backoff_initial_s: 1, backoff_max_s: 8, permanent_failure_timeout_s: 30, deploy_strategy: parallel}
"""
SPEC = AutoscaleSpec(min=1, max=4, target_lag=100, interval_s=20, cooldown_s=60)


def _sim(count: int = 1) -> Scenario:
    return deployed(AUTOSCALED % count, agents=3)


def _lag(sim: Scenario, lag: int, widest: int = 6):
    return sim.send.event(ev.LagSampled({"wcg": GroupLag(lag, widest)}, sim.now))


def _count(sim: Scenario) -> int:
    return sim.state.spec.app("wc").count


def _running(sim: Scenario) -> list[str]:
    return sorted(r.pod for r in sim.state.tasks.values() if r.pod.startswith("wc-") and r.active)


def test_lag_scales_out_at_once_then_in_only_after_the_cooldown_and_every_decision_is_kept():
    sim = _sim()
    out = _lag(sim, 350)  # 3.5 instances' worth of lag
    assert _count(sim) == 4
    out.persisted("properties/autoscale.wc")
    mem = auto.memory(sim.state.properties, "wc")
    assert [(d.before, d.after, d.lag) for d in mem.decisions] == [(1, 4, 350)]
    assert "350 records behind at 100 per instance asks for 4" in mem.decisions[0].reason
    assert sim.plans()["autoscale"]["status"] == "IN_PROGRESS"
    sim.run_all_ready(3)
    assert _running(sim) == ["wc-0", "wc-1", "wc-2", "wc-3"]
    assert sim.plans()["autoscale"]["status"] == "COMPLETE"
    # the lag is gone: nothing is shed before it has stayed low for cooldown_s
    for _ in range(5):
        sim.now += 10
        _lag(sim, 0).nothing_killed()
    assert _count(sim) == 4
    assert "cooling down" in sim.plans()["autoscale"]["phases"][0]["message"]
    sim.now += 25  # low for 65 s
    out = _lag(sim, 0)
    assert _count(sim) == 1
    out.killed("wc-1", "wc-2", "wc-3")
    assert [(d.before, d.after) for d in auto.memory(sim.state.properties, "wc").decisions] == [(1, 4), (4, 1)]


def test_a_dip_in_the_lag_restarts_the_cooldown():
    sim = _sim(3)
    sim.now += 100
    _lag(sim, 0)
    sim.now += 50
    _lag(sim, 300)  # a new burst: the lag asks for the 3 it has
    sim.now += 30
    _lag(sim, 0)
    sim.now += 40  # 120 s since the first low sample, but only 40 since the last burst
    _lag(sim, 0).nothing_killed()
    assert _count(sim) == 3
    sim.now += 25
    _lag(sim, 0)
    assert _count(sim) == 1


def test_no_more_instances_than_the_busiest_topic_has_partitions():
    sim = _sim()
    _lag(sim, 100_000, widest=2)
    assert _count(sim) == 2


def test_no_scale_out_while_instances_start_or_within_the_interval():
    sim = _sim()
    _lag(sim, 250)
    assert _count(sim) == 3
    sim.now += 30
    _lag(sim, 400).nothing_launched()  # wc-1, wc-2 not ready yet
    assert _count(sim) == 3
    assert "waiting for every instance to be ready" in sim.plans()["autoscale"]["phases"][0]["message"]
    sim.run_all_ready(3)
    _lag(sim, 400)
    assert _count(sim) == 4


def test_an_operators_count_pauses_autoscaling_until_auto_resumes_it():
    sim = _sim()
    sim.send.command("scale_app", app="wc", count=2).replied(ok=True, contains="paused")
    sim.expect.persisted("properties/autoscale.wc")
    sim.run_all_ready(3)
    sim.now += 1000
    _lag(sim, 5000)
    assert _count(sim) == 2
    assert sim.plans()["autoscale"]["status"] == "WAITING"
    sim.send.command("scale_app", app="wc", count=None, auto=True).replied(ok=True, contains="resumed")
    _lag(sim, 5000)
    assert _count(sim) == 4
    assert not auto.memory(sim.state.properties, "wc").manual


def test_resuming_is_refused_for_an_app_without_autoscale_and_with_a_count():
    sim = deployed()
    sim.send.command("scale_app", app="wc", count=None, auto=True).replied(ok=False, contains="no autoscale")
    sim = _sim()
    sim.send.command("scale_app", app="wc", count=2, auto=True).replied(ok=False, contains="not both")
    sim.send.command("scale_app", app="wc", count=None, auto="yes").replied(ok=False, contains="auto must be true")


def test_a_config_update_keeps_the_count_the_autoscaler_reached_within_the_new_bounds():
    sim = _sim()
    _lag(sim, 400)
    sim.run_all_ready(3)
    same = spec(AUTOSCALED % 1)
    sim.send.command("update_config", spec=same).replied(ok=True).nothing_killed()
    assert _count(sim) == 4
    narrower = spec((AUTOSCALED % 1).replace("max: 4", "max: 2"))
    sim.send.command("update_config", spec=narrower).replied(ok=True)
    assert _count(sim) == 2
    sim.expect.killed("wc-2", "wc-3")


def test_a_restarted_scheduler_honours_the_last_change_and_the_pause():
    sim = _sim()
    _lag(sim, 400)
    sim.run_all_ready(3)
    sim.restart(dict(sim.store.tasks), dict(sim.store.properties))
    sim.send.subscribed()
    sim.now += 61  # the lag went down right away, but the cooldown counts from the change as well
    _lag(sim, 0)
    sim.now += 30
    _lag(sim, 0).nothing_killed()
    sim.now += 31
    _lag(sim, 0)
    assert _count(sim) == 1


def test_an_app_without_autoscale_and_an_unknown_lag_are_left_alone():
    sim = deployed()
    sim.send.event(ev.LagSampled({"wc": GroupLag(10**6, 12)}, sim.now)).nothing_launched()
    assert sim.state.spec.app("wc").count == 2 and "autoscale" not in sim.plans()
    sim = _sim(2)
    sim.send.event(ev.LagSampled({}, sim.now)).nothing_killed()
    assert _count(sim) == 2


def test_group_lags_reads_the_samplers_shape():
    sample = {"groups": {
        "g": {"lag": 30, "topics": {"in": {"lag": 30, "unknown": [2], "partitions": {
                  0: {"committed": 5, "end": 25, "lag": 20, "owner": "wc-0"}, 1: {"committed": 1, "end": 11, "lag": 10}}},
                                    "rep": {"lag": 0, "partitions": {0: {"committed": 7, "end": 7, "lag": 0}},
                                            "unknown": []}}, "state": "STABLE"},
        "idle": {"lag": 0, "topics": {}, "state": "EMPTY"}}}
    parts = (("in", 0, 5, 20, "wc-0"), ("in", 1, 1, 10, None), ("rep", 0, 7, 0, None))
    assert auto.group_lags(sample) == {"g": GroupLag(30, 3, 1, "STABLE", parts), "idle": GroupLag(0, 0, 0, "EMPTY")}
    assert not auto.group_lags(sample)["idle"].known


counts = st.integers(min_value=0, max_value=12)
specs = st.builds(lambda lo, extra, target: AutoscaleSpec(min=lo, max=lo + extra, target_lag=target,
                                                           interval_s=20, cooldown_s=60),
                  st.integers(1, 4), st.integers(0, 6), st.integers(1, 1000))


@settings(max_examples=300, deadline=None)
@given(specs, counts, st.none() | st.builds(GroupLag, st.integers(0, 10**6), st.integers(1, 16)),
       st.booleans(), st.none() | st.floats(0, 200), st.none() | st.floats(0, 200), st.booleans())
def test_decide_stays_in_bounds_and_keeps_its_waits(a, count, lag, manual, since_change, low_for, ready):
    now = 1000.0
    decisions = () if since_change is None else (Decision(now - since_change, 1, count, 0, "x"),)
    mem = Memory(manual=manual, decisions=decisions)
    low_since = None if low_for is None else now - low_for
    v = auto.decide(a, count, lag, mem, low_since, ready, now)
    if manual:
        assert v.count is None
        return
    if v.count is None:
        return
    assert a.min <= v.count <= a.max
    if not a.min <= count <= a.max:
        return  # brought inside at once
    assert lag is not None
    assert v.count <= max(a.min, lag.widest)
    if v.count > count:
        assert ready and (since_change is None or since_change >= a.interval_s)
        most = max(a.min, min(a.max, lag.widest))
        assert v.count == min(most, max(a.min, math.ceil(lag.lag / a.target_lag)))
    else:
        assert v.count < count
        assert low_for is not None and low_for >= a.cooldown_s
        assert since_change is None or since_change >= a.cooldown_s


def test_autoscaling_removed_by_a_config_update_is_forgotten_and_starts_afresh_when_given_back():
    sim = _sim()
    sim.send.command("scale_app", app="wc", count=2).replied(ok=True)
    plain = spec((AUTOSCALED % 2).replace("    autoscale: {min: 1, max: 4, target_lag: 100, interval_s: 20, cooldown_s: 60}\n", ""))
    assert plain.apps[0].autoscale is None
    sim.send.command("update_config", spec=plain).replied(ok=True)
    assert "autoscale.wc" not in sim.state.properties and "autoscale.wc" not in sim.store.properties
    sim.send.command("update_config", spec=spec(AUTOSCALED % 2)).replied(ok=True)
    sim.run_all_ready(3)
    _lag(sim, 400)
    assert _count(sim) == 4  # not paused by the operator's count of before


def test_steering_the_autoscale_plan_says_how_to_pause_instead():
    sim = _sim()
    for kind in ("plan_interrupt", "plan_continue"):
        sim.send.command(kind, plan="autoscale").replied(ok=False, contains="kmf scale app <name> --auto")
