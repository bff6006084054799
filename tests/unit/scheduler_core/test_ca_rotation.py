"""kmf's own CA rotated with a trust overlap: trust both, new certificates, drop the old; each
broker restart gated, one at a time; the phase kept in properties so a restart continues it."""
from __future__ import annotations

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from config import ConfigError
from scheduler.core import actions as act
from scheduler.core import ca_rotation as car
from scheduler.core.views import plans
from tests.helpers.core_kit import deployed
from tests.helpers.core_kit.runner import BASE, spec

DAY = 86400.0
OVERLAP_S = 60.0
TLS = BASE.replace("placement: ['hostname:UNIQUE']}",
                   "placement: ['hostname:UNIQUE'], tls: {enabled: true, ca_days: 10, ca_renew_before_days: 2, "
                   f"ca_trust_overlap_days: {OVERLAP_S / DAY}}}}}")


def _kills(outcome) -> list[act.Kill]:
    return [k for k in outcome.kills if k.task_id.startswith("broker-")]


def _stored(sim, tasks=None, **props: str):
    """Change the scenario's state and its store alike (what ZooKeeper holds at a start)."""
    tasks = dict(sim.state.tasks if tasks is None else tasks)
    sim.state = attrs.evolve(sim.state, tasks=tasks, properties={**sim.state.properties, **props})
    sim.store.properties.update(props)
    sim.store.tasks.update({pod: rec.to_json() for pod, rec in tasks.items()})
    return sim


def _with_ca(sim, not_after: float):
    """The scenario's state as the shell leaves it at start: the CA's expiry in properties."""
    return _stored(sim, **{car.NOT_AFTER_KEY: repr(not_after)})


def _roll_one(sim, phase: str) -> str:
    """Let the gate pass, expect exactly one broker restarted for `phase`, bring it back."""
    sim.now += 1
    sim.send.kafka_healthy(controller_id=0)
    kills = _kills(sim.send.tick())
    assert len(kills) == 1 and f"phase {phase}" in kills[0].reason, kills
    # while it is away no other broker is restarted
    sim.send.kafka_healthy(controller_id=0)
    assert _kills(sim.send.tick()) == []
    sim.send.status(kills[0].task_id, "TASK_KILLED")
    sim.run_all_ready(rounds=2)
    return kills[0].task_id.split("__")[0]


def test_the_ca_is_not_rotated_before_its_margin_nor_an_operators_ca():
    sim = _with_ca(deployed(TLS), 1e12)
    sim.send.kafka_healthy(controller_id=0)
    assert not sim.send.tick().of(act.CaStep) and car.current(sim.state) is None
    own = BASE.replace("placement: ['hostname:UNIQUE']}", "placement: ['hostname:UNIQUE'], tls: {enabled: true, "
                       "ca_cert_file: /x/ca.pem, ca_key_file: /x/ca.key}}")
    theirs = _with_ca(deployed(own), sim.now + 60)  # about to expire, but not kmf's to rotate
    assert not theirs.send.tick().of(act.CaStep)
    out = theirs.send.command("rotate_ca")
    assert out.replies[0].ok is False and "operator's" in out.replies[0].result["message"]


def test_a_ca_within_its_margin_starts_a_rotation_whose_next_ca_is_stored_before_the_phase():
    sim = deployed(TLS)
    _with_ca(sim, sim.now + 1.5 * DAY)  # within the 2 days' margin
    out = sim.send.tick()
    steps = out.of(act.CaStep, act.Persist)
    first = [i for i, a in enumerate(steps) if isinstance(a, act.CaStep)]
    stored = [i for i, a in enumerate(steps) if isinstance(a, act.Persist)
              and any(k == car.KEY for _, k, _ in a.puts)]
    assert first and stored and first[0] < stored[0]  # the CA exists before any decision relies on it
    assert steps[first[0]] == act.CaStep("create", sim.now + 10 * DAY)
    rot = car.current(sim.state)
    assert rot is not None and rot.phase == car.Phase.TRUST_BOTH and "expires in 1.50 days" in rot.reason
    assert car.launch_material(sim.state) == ("current", ("current", "next"))


def test_a_rotation_rolls_trust_then_certificates_one_broker_at_a_time_then_promotes():
    sim = _with_ca(deployed(TLS), 1e12)
    assert car.launch_material(sim.state) == ("current", ("current",))
    out = sim.send.command("rotate_ca")
    assert out.replies[0].ok and out.of(act.CaStep) == [act.CaStep("create", sim.now + 10 * DAY)]
    assert sim.send.command("rotate_ca").replies[0].ok is False  # one at a time
    rolled = {_roll_one(sim, "trust-both") for _ in range(3)}
    assert rolled == {"broker-0", "broker-1", "broker-2"}
    # every broker trusts both; certificates of the new CA wait for the trust overlap
    sim.send.kafka_healthy(controller_id=0)
    assert _kills(sim.send.tick()) == [] and car.current(sim.state).phase == car.Phase.TRUST_BOTH
    assert "trust overlap" in plans(sim.state, sim.now)[car.PLAN]["message"]
    sim.now = car.current(sim.state).started + OVERLAP_S
    sim.send.tick()
    assert car.current(sim.state).phase == car.Phase.NEW_CERTS
    assert car.launch_material(sim.state) == ("next", ("current", "next"))
    next_not_after = car.current(sim.state).next_not_after
    rolled = {_roll_one(sim, "new-certs") for _ in range(2)}
    last = _roll_one(sim, "new-certs")  # the promotion follows at once (the last broker's relaunch)
    assert rolled | {last} == {"broker-0", "broker-1", "broker-2"}
    out = sim.send.tick() if car.current(sim.state) is not None else sim.expect
    assert car.KEY not in sim.store.properties and sim.store.properties[car.NOT_AFTER_KEY] == repr(next_not_after)
    assert car.current(sim.state) is None and car.ca_not_after(sim.state) == next_not_after
    assert car.launch_material(sim.state) == ("current", ("current",))
    shown = plans(sim.state, sim.now)[car.PLAN]
    assert shown["status"] == "COMPLETE" and [p["status"] for p in shown["phases"]] == ["COMPLETE"] * 3
    assert [p["name"] for p in shown["phases"]] == ["trust-both", "new-certs", "drop-old"]
    # the new CA is far from its margin: no rotation starts again
    assert not sim.send.tick(60).of(act.CaStep)


def test_a_partition_at_risk_holds_the_rotations_restarts():
    sim = _with_ca(deployed(TLS), 1e12)
    sim.send.command("rotate_ca")
    sim.send.kafka_healthy(controller_id=0, under_min_isr_if_down={0: 1, 1: 1, 2: 1})
    assert _kills(sim.send.tick()) == []
    steps = plans(sim.state, sim.now)[car.PLAN]["phases"][0]["steps"]
    assert all("would fall below min.insync.replicas" in st["message"] for st in steps)  # the operator sees why


def test_a_restarted_scheduler_continues_from_the_stored_phase():
    sim = _with_ca(deployed(TLS), 1e12)
    sim.send.command("rotate_ca")
    _roll_one(sim, "trust-both")
    # a new scheduler knows only what ZooKeeper holds: the properties and the task records
    sim.state = attrs.evolve(sim.state, properties=dict(sim.store.properties))
    assert car.current(sim.state).phase == car.Phase.TRUST_BOTH
    done_before = {p for p, r in sim.state.tasks.items()
                   if p.startswith("broker-") and car.done(r, car.current(sim.state).since)}
    assert len(done_before) == 1
    rolled = {_roll_one(sim, "trust-both") for _ in range(2)}
    assert rolled | done_before == {"broker-0", "broker-1", "broker-2"}


def test_a_rotation_is_refused_without_tls():
    sim = deployed(BASE)
    reply = sim.send.command("rotate_ca").replies[0]
    assert reply.ok is False and "not enabled" in reply.result["message"]


@settings(max_examples=60, deadline=None)
@given(phase=st.sampled_from([car.Phase.TRUST_BOTH, car.Phase.NEW_CERTS]),
       started=st.floats(0, 1e9), since_delta=st.floats(0, 1e6), not_after=st.floats(1e9, 2e9),
       began=st.lists(st.tuples(st.sampled_from(["trust-both", "new-certs"]), st.floats(0, 2e9)), max_size=3))
def test_a_stored_rotation_reads_back_as_itself(phase, started, since_delta, not_after, began):
    rot = car.Rotation(phase, started, started + since_delta, not_after, "why", tuple(began))
    assert car.Rotation.from_json(rot.to_json()) == rot


@settings(max_examples=40, deadline=None)
@given(launched=st.lists(st.one_of(st.none(), st.floats(-100, 100)), min_size=3, max_size=3),
       phase=st.sampled_from([car.Phase.TRUST_BOTH, car.Phase.NEW_CERTS]), healthy=st.booleans())
def test_never_more_than_one_broker_is_restarted_and_never_one_already_done(launched, phase, healthy):
    sim = _with_ca(deployed(TLS), 1e12)
    base = sim.now
    tasks = dict(sim.state.tasks)
    for i, at in enumerate(launched):
        rec = tasks[f"broker-{i}"]
        tasks[rec.pod] = attrs.evolve(rec, launched_at=None if at is None else base + at)
    rot = car.Rotation(phase, base - 1e6, base, base + DAY, "test")
    _stored(sim, tasks, **{car.KEY: rot.to_json()})
    sim.send.kafka_healthy(controller_id=0, **({} if healthy else {"under_replicated": 1,
                                                                    "under_replicated_names": ("t-0",)}))
    kills = _kills(sim.send.tick())
    assert len(kills) <= 1
    if not healthy:
        assert kills == []
    for k in kills:
        at = launched[int(k.task_id.split("__")[0].split("-")[1])]
        assert at is None or base + at < base  # only a broker not launched since the phase began


@pytest.mark.parametrize("tls, path", [
    ("{enabled: true, ca_days: 0}", "kafka.tls.ca_days"),
    ("{enabled: true, ca_days: 1, ca_renew_before_days: 1}", "kafka.tls.ca_renew_before_days"),
    ("{enabled: true, ca_days: 3, ca_trust_overlap_days: 1}", "kafka.tls.ca_trust_overlap_days"),
])
def test_bad_ca_settings_are_named(tls, path):
    with pytest.raises(ConfigError, match=path.replace(".", r"\.")):
        spec(BASE.replace("placement: ['hostname:UNIQUE']}", f"placement: ['hostname:UNIQUE'], tls: {tls}}}"))


def test_a_config_update_may_not_swap_an_operators_ca():
    from config.rules import check_update
    old = spec(BASE.replace("placement: ['hostname:UNIQUE']}", "placement: ['hostname:UNIQUE'], tls: {enabled: true, "
                            "ca_cert_file: /a/ca.pem, ca_key_file: /a/ca.key}}"))
    new = spec(BASE.replace("placement: ['hostname:UNIQUE']}", "placement: ['hostname:UNIQUE'], tls: {enabled: true, "
                            "ca_cert_file: /b/ca.pem, ca_key_file: /b/ca.key}}"))
    assert any("cannot change in a config update" in p for p in check_update(old, new))


def test_promotion_comes_before_the_rotation_is_recorded_done():
    sim = _with_ca(deployed(TLS), 1e12)
    since = min(r.launched_at for p, r in sim.state.tasks.items() if p.startswith("broker-"))
    rot = car.Rotation(car.Phase.NEW_CERTS, since - 100, since, since + DAY, "test")
    _stored(sim, **{car.KEY: rot.to_json()})
    out = sim.send.tick()
    steps = out.of(act.CaStep, act.Persist)
    assert steps[0] == act.CaStep("promote", since + DAY)
    assert ("properties", car.KEY) in steps[1].deletes
    assert ("properties", car.NOT_AFTER_KEY, repr(since + DAY)) in steps[1].puts
    assert car.current(sim.state) is None and car.ca_not_after(sim.state) == since + DAY


def test_no_phase_ends_while_the_last_broker_restarted_is_not_serving_yet():
    sim = _with_ca(deployed(TLS), 1e12)
    since = min(r.launched_at for p, r in sim.state.tasks.items() if p.startswith("broker-"))
    rot = car.Rotation(car.Phase.NEW_CERTS, since - 100, since, since + DAY, "test")
    starting = attrs.evolve(sim.state.tasks["broker-2"], ready=False)
    _stored(sim, {**sim.state.tasks, "broker-2": starting}, **{car.KEY: rot.to_json()})
    assert not sim.send.tick().of(act.CaStep) and car.current(sim.state) is not None
    steps = plans(sim.state, sim.now)[car.PLAN]["phases"][1]["steps"]
    assert [st["status"] for st in steps] == ["COMPLETE", "COMPLETE", "STARTED"]
    sim.send.status("broker-2", "TASK_RUNNING", ready=True)
    assert sim.send.tick().of(act.CaStep) == [act.CaStep("promote", since + DAY)]
