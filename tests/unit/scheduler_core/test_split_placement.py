"""Offer rounds explain themselves: every pod a round considered has an outcome (stage, ok,
reason) in the state, and the outcome of a pod no agent can take names why."""
from __future__ import annotations

from scheduler.core import events as ev
from scheduler.core.decide import decide
from scheduler.core.outcomes import Stage
from scheduler.core.views import placement
from tests.helpers.core_kit import BASE, Scenario, deployed, spec

NOWHERE = BASE.replace("command: ['-m', 'x']}", "command: ['-m', 'x'], placement: ['zone:IS:z9']}")


def test_an_unsatisfiable_constraint_is_the_reason_a_pod_is_not_placed():
    sim = deployed(NOWHERE)
    out = sim.state.placement["wc-0"]
    assert (out.stage, out.ok) == (Stage.PLACE, False)
    assert "zone:IS:z9: agent 10.0.0.1 has zone=z0" in out.reason
    assert len(out.details) == 3  # one reason per agent offered
    view = placement(sim.state, "wc-0")
    assert view["placed"] is False and view["last"]["stage"] == "place" and "zone:IS:z9" in view["last"]["reason"]


def test_launched_pods_say_where_and_brokers_were_reserved_first():
    sim = deployed()
    for name in ("broker-0", "wc-1"):
        out = sim.state.placement[name]
        assert (out.stage, out.ok) == (Stage.LAUNCH, True) and out.reason.startswith("launched on 10.0.0.")
    assert placement(sim.state, "broker-0")["placed"] is True


def test_too_small_agents_name_the_missing_resource_at_the_reserve_stage():
    sim = Scenario(spec(BASE), agents=3, resources="cpus:0.5;mem:8192;disk:20000;ports:[31000-31100]")
    sim.send.subscribed()
    sim.send.offers()
    out = sim.state.placement["broker-0"]
    assert (out.stage, out.ok) == (Stage.RESERVE, False) and "cpus" in out.reason


def test_a_pod_no_round_has_considered_has_no_outcome_and_an_unknown_pod_has_no_view():
    sim = Scenario(spec(BASE))
    assert placement(sim.state, "broker-0") == {"name": "broker-0", "placed": False, "hostname": None, "last": None}
    assert placement(sim.state, "nope") is None


def test_outcomes_are_not_persisted_and_do_not_change_the_decisions():
    """The outcomes live in the state only: no Persist carries them, and the same round from a
    state without them decides the same actions."""
    import attrs

    sim = deployed(NOWHERE)
    docs = ({"id": {"value": "X"}, "agent_id": {"value": "A0"}, "hostname": "10.0.0.1", "resources": [],
             "attributes": []},)
    _, with_outcomes = decide(sim.state, ev.Offers(docs, sim.now))
    _, without = decide(attrs.evolve(sim.state, placement={}), ev.Offers(docs, sim.now))
    assert with_outcomes == without
    assert all("placement" not in repr(p) for p in sim.history().persists)
