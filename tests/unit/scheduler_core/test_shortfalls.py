"""An offer round skips the leading offers already too small for a stream instance's shape, and a
pod that fits nowhere still gets one reason per offer, in offer order, as if none were skipped."""
from __future__ import annotations

from scheduler.core.shortfalls import Shortfalls
from tests.helpers.core_kit import BASE, Scenario, spec

# each agent: a broker and two word-count instances, then nothing more fits
SMALL = "cpus:2.6;mem:8192;disk:20000;ports:[31000-31100]"


def test_the_leading_run_grows_only_over_offers_known_too_small():
    short = Shortfalls()
    short.passed((0.1, 128), 0, ("O0", 0.1, 128))  # not taken for another reason: no run
    assert short.skip == {}
    short.reason[("O0", 0.1, 128)] = "agent a: not enough cpus"
    short.reason[("O2", 0.1, 128)] = "agent c: not enough cpus"
    short.passed((0.1, 128), 0, ("O0", 0.1, 128))
    short.passed((0.1, 128), 2, ("O2", 0.1, 128))  # a gap at O1: the run stays at 1
    assert short.skip == {(0.1, 128): 1}


def test_a_pod_that_fits_nowhere_names_every_offer_in_order():
    text = BASE.replace("{name: wc, count: 2, cpus: 0.5", "{name: wc, count: 12, cpus: 0.5").replace(
        "policies: {", "policies: {deploy_strategy: parallel, ")
    assert "count: 12" in text and "parallel" in text
    sim = Scenario(spec(text), agents=3, resources=SMALL)
    sim.send.subscribed()
    sim.run_all_ready()
    unplaced = [o for o in sim.state.placement.values() if not o.ok and o.stage.value == "place"]
    assert len(unplaced) == 6, "six instances must be left without room, all in one round"
    hosts = [f"agent {v}" for v in ("10.0.0.1", "10.0.0.2", "10.0.0.3")]
    for outcome in unplaced:
        assert [d.split(":")[0] for d in outcome.details] == hosts, outcome.details
