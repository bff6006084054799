"""localmesos master with real agents, driven through unmodified pymesos: offers, filters,
launches and resource accounting."""
from __future__ import annotations

import time

import pytest

from mesoslib.resources import Resources, parse_resources_flag
from tests.helpers.fixtures_localmesos import DEFAULT_RESOURCES
from tests.helpers.localmesos_tasks import command_task

pytestmark = pytest.mark.timeout(90)


def latest_offer(sched, agent_id, after=0):
    offers = [o for o in sched.of("offer")[after:] if o["agent_id"]["value"] == agent_id]
    return offers[-1] if offers else None


def one_per_agent(sched, count, timeout=5.0):
    offers = sched.wait("offer", count=count, timeout=timeout)
    by_agent = {}
    for offer in offers:
        by_agent.setdefault(offer["agent_id"]["value"], offer)
    return by_agent


def test_three_agents_offered_whole_with_role_star_and_attributes(lm_cluster, lm_driver):
    sched, _ = lm_driver(lm_cluster.master_uri)
    sched.wait("registered", timeout=20)
    by_agent = one_per_agent(sched, 3)
    slaves = {s["id"]: s for s in lm_cluster.get("/master/slaves")["slaves"]}
    assert set(by_agent) == set(slaves)
    zones = set()
    for aid, offer in by_agent.items():
        assert Resources.from_json(offer["resources"]) == parse_resources_flag(DEFAULT_RESOURCES)
        assert all(r["role"] == "*" for r in offer["resources"])
        assert "allocation_info" not in offer
        assert all("allocation_info" not in r for r in offer["resources"])
        assert offer["url"]["path"] == "/slave(1)"
        assert offer["url"]["address"]["port"] == slaves[aid]["port"]
        [zone] = [a for a in offer["attributes"] if a["name"] == "zone"]
        assert zone["type"] == "TEXT"
        zones.add(zone["text"]["value"])
    assert len(zones) == 3


def test_multi_role_offers_carry_allocation_info(lm_factory, lm_driver):
    lm = lm_factory(agents=2)
    sched, _ = lm_driver(lm.master_uri, framework={
        "roles": ["a", "b"], "capabilities": [{"type": "MULTI_ROLE"}]})
    for offer in sched.wait("offer", count=2, timeout=10):
        role = offer["allocation_info"]["role"]
        assert role in ("a", "b")
        assert all(r["allocation_info"] == {"role": role} for r in offer["resources"])


def test_decline_filter_then_revive(lm_factory, lm_driver):
    lm = lm_factory(agents=2)
    sched, driver = lm_driver(lm.master_uri)
    first = one_per_agent(sched, 2, timeout=10)
    (x, x_offer), (y, y_offer) = sorted(first.items())
    mark = len(sched.of("offer"))
    driver.declineOffer([x_offer["id"]], filters={"refuse_seconds": 30})
    driver.declineOffer([y_offer["id"]], filters={"refuse_seconds": 1})
    sched.wait("offer", lambda o: o["agent_id"]["value"] == y, timeout=6)
    time.sleep(1.5)
    assert latest_offer(sched, x, mark) is None  # X stays filtered while Y came back
    driver.reviveOffers()
    sched.wait("offer", lambda o: o["agent_id"]["value"] == x, timeout=4)


def test_decline_without_filter_uses_five_seconds(lm_factory, lm_driver):
    lm = lm_factory(agents=1)
    sched, driver = lm_driver(lm.master_uri)
    [offer] = sched.wait("offer", timeout=10)
    declined_at = time.monotonic()
    driver.declineOffer([offer["id"]])
    sched.wait("offer", count=2, timeout=10)
    # The default refuse filter is 5 s: the offer cannot come back in less than 4 s.
    assert time.monotonic() - declined_at >= 4.0


def test_suppress_then_revive(lm_factory, lm_driver):
    lm = lm_factory(agents=1)
    sched, driver = lm_driver(lm.master_uri)
    [offer] = sched.wait("offer", timeout=10)
    driver.suppressOffers()
    driver.declineOffer([offer["id"]], filters={"refuse_seconds": 0})
    time.sleep(3)
    assert len(sched.of("offer")) == 1
    driver.reviveOffers()
    sched.wait("offer", count=2, timeout=4)


def test_accept_of_declined_offer_is_lost_with_invalid_offers(lm_factory, lm_driver):
    lm = lm_factory(agents=1)
    sched, driver = lm_driver(lm.master_uri)
    [offer] = sched.wait("offer", timeout=10)
    driver.declineOffer([offer["id"]], filters={"refuse_seconds": 30})
    driver.launchTasks([offer["id"]], [command_task("t1", offer)])
    [update] = sched.wait("update", timeout=5)
    assert update["state"] == "TASK_LOST"
    assert update["reason"] == "REASON_INVALID_OFFERS"
    assert update["source"] == "SOURCE_MASTER"
    assert "uuid" not in update


def test_task_too_big_is_task_error_and_agent_reoffered(lm_factory, lm_driver):
    lm = lm_factory(agents=1)
    sched, driver = lm_driver(lm.master_uri)
    [offer] = sched.wait("offer", timeout=10)
    driver.launchTasks([offer["id"]], [command_task("big", offer, "cpus:5;mem:32")],
                       filters={"refuse_seconds": 0})
    [update] = sched.wait("update", timeout=5)
    assert (update["state"], update["reason"]) == ("TASK_ERROR", "REASON_TASK_INVALID")
    assert "uuid" not in update
    again = sched.wait("offer", count=2, timeout=5)[-1]
    assert Resources.from_json(again["resources"]) == parse_resources_flag(DEFAULT_RESOURCES)


def test_used_resources_leave_offers_until_task_ends(lm_factory, lm_driver):
    lm = lm_factory(agents=1)
    sched, driver = lm_driver(lm.master_uri)
    [offer] = sched.wait("offer", timeout=10)
    aid = offer["agent_id"]["value"]
    task = command_task("t1", offer, "cpus:1;mem:32;ports:[31000-31000]", cmd="sleep 3")
    driver.launchTasks([offer["id"]], [task], filters={"refuse_seconds": 0})
    sched.wait("update", lambda u: u["state"] == "TASK_RUNNING", timeout=15)
    second = sched.wait("offer", count=2, timeout=5)[1]
    res = Resources.from_json(second["resources"])
    assert res.scalar("cpus") == 3.0
    assert res.ranges_of("ports") == ((31001, 32000),)
    slave = lm.get("/master/slaves")["slaves"][0]
    assert slave["used_resources"]["cpus"] == 1.0
    driver.declineOffer([second["id"]], filters={"refuse_seconds": 0})
    sched.wait("update", lambda u: u["state"] == "TASK_FINISHED", timeout=15)
    # offers made meanwhile hold parts of the agent (as in Mesos, they are not merged): give them back
    time.sleep(0.5)
    held = [o["id"] for o in sched.of("offer")[2:]]
    if held:
        driver.declineOffer(held, filters={"refuse_seconds": 0})
    full = sched.wait(
        "offer", lambda o: Resources.from_json(o["resources"]).scalar("cpus") == 4.0
        and o["id"] != offer["id"], timeout=10)
    assert full[-1]["agent_id"]["value"] == aid
