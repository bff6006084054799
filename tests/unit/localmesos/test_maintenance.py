"""Maintenance in the master's core, without processes: inverse offers only to frameworks holding
resources on a DRAINING machine, answers recorded with their filter, DOWN refusing registration,
DRAIN_AGENT turning DRAINED once no task is left; and the key-set helper of the differential
conformance test."""
from __future__ import annotations

import pytest

from localmesos.master import agents_core, maintenance
from tests.helpers.keysets import key_paths, shape_diff
from tests.helpers.localmesos_master import Harness, launch, task

IP = "127.0.0.2"
MACHINE = {"hostname": IP, "ip": IP}
UNAVAILABLE = {"start": {"nanoseconds": 10**18}}


def _schedule(h: Harness) -> None:
    h.run(maintenance.update_schedule, h.core,
          {"windows": [{"machine_ids": [MACHINE], "unavailability": UNAVAILABLE}]}, h.now)


def _running_framework(h: Harness, stream: str, aid: str, tid: str):
    fw = h.subscribe(stream=stream)
    h.allocate()
    offer = h.offers(stream)[-1]
    h.accept(fw, [offer["id"]["value"]], [launch(task(tid, aid, "cpus:0.5;mem:64"))])
    return fw


def test_inverse_offers_go_to_frameworks_holding_resources_and_answers_are_kept():
    h = Harness()
    aid = h.add_agent(ip=IP)
    busy = _running_framework(h, "s1", aid, "t1")
    idle = h.subscribe(stream="s2")
    h.run(h.core.suppress, idle, None)  # holds nothing on the agent, not even an offer
    _schedule(h)
    h.clear()
    h.allocate()
    [event] = h.events("INVERSE_OFFERS", "s1")
    assert not h.events("INVERSE_OFFERS", "s2")
    [inverse] = event["inverse_offers"]["inverse_offers"]
    assert inverse["agent_id"] == {"value": aid} and inverse["unavailability"] == UNAVAILABLE
    h.run(h.core.revive, idle, None)
    h.allocate()
    offers = h.offers("s1") + h.offers("s2")
    assert offers and all(o["unavailability"] == UNAVAILABLE for o in offers)
    h.allocate()
    assert len(h.events("INVERSE_OFFERS", "s1")) == 1  # one outstanding at a time
    h.run(maintenance.answer_inverse_offers, h.core, busy,
          {"inverse_offer_ids": [inverse["id"]]}, False, 2.0, h.now)
    [draining] = maintenance.status(h.core)["draining_machines"]
    assert draining["id"] == MACHINE
    assert [s["status"] for s in draining["statuses"]] == ["DECLINE"]
    h.allocate()
    assert len(h.events("INVERSE_OFFERS", "s1")) == 1  # filtered for 2 s
    h.now += 2.5
    h.allocate()
    assert len(h.events("INVERSE_OFFERS", "s1")) == 2


def test_down_machine_loses_its_tasks_and_cannot_register():
    h = Harness()
    aid = h.add_agent(ip=IP)
    _running_framework(h, "s1", aid, "t1")
    _schedule(h)
    h.clear()
    h.run(maintenance.machine_down, h.core, [(IP, IP)], h.now)
    [lost] = h.updates()
    assert (lost["state"], lost["source"], lost["reason"]) == (
        "TASK_LOST", "SOURCE_MASTER", "REASON_AGENT_REMOVED")
    assert lost["message"] == f"Agent {IP} removed: Operator initiated 'Machine DOWN'"
    assert h.events("FAILURE") and aid not in h.core.agents
    assert maintenance.status(h.core) == {"down_machines": [MACHINE]}
    with pytest.raises(agents_core.AgentError, match="DOWN"):
        h.add_agent(ip=IP, agent_id=aid)
    with pytest.raises(maintenance.MaintenanceError, match="deactivated"):
        h.run(maintenance.update_schedule, h.core, {}, h.now)
    h.run(maintenance.machine_up, h.core, [(IP, IP)])
    assert maintenance.status(h.core) == {} and maintenance.get_schedule(h.core) == {}
    h.add_agent(ip=IP, agent_id=aid)


def test_drained_once_no_task_is_left():
    h = Harness()
    aid = h.add_agent(ip=IP)
    _running_framework(h, "s1", aid, "t1")
    h.run(maintenance.drain_agent, h.core, {"agent_id": {"value": aid}}, h.now)
    assert h.core.draining[aid]["state"] == "DRAINING" and not h.core.agents[aid].active
    h.allocate()
    assert h.core.draining[aid]["state"] == "DRAINING"
    status = {"task_id": {"value": "t1"}, "state": "TASK_KILLED", "uuid": "AAAAAAAAAAAAAAAAAAAAAA==",
              "source": "SOURCE_EXECUTOR", "reason": "REASON_AGENT_DRAINING",
              "agent_id": {"value": aid}}
    fid = next(iter(h.core.frameworks))
    h.run(agents_core.status_update, h.core, {"framework_id": {"value": fid}, "status": status,
                                              "latest_state": "TASK_KILLED"}, h.now)
    h.allocate()
    assert h.core.draining[aid]["state"] == "DRAINED"
    with pytest.raises(maintenance.MaintenanceError, match="Unknown agent"):
        maintenance.drain_agent(h.core, {"agent_id": {"value": "nope"}}, h.now)


def test_key_paths_merge_list_items_and_wildcard_data_keyed_maps():
    doc = {"flags": {"a": "1"}, "tasks": [{"id": "x"}, {"id": "y", "labels": []}]}
    assert key_paths(doc) == {"flags", "flags.*", "tasks", "tasks[].id", "tasks[].labels"}
    assert shape_diff({"a": {"b": 1}, "c": 1}, {"a": {}}, allow_ours=("c",)) == (["a.b"], [])


def test_a_framework_holding_only_an_offer_of_the_agent_gets_an_inverse_offer():
    """Mesos' allocator asks every framework with resources offered or allocated on the agent."""
    h = Harness()
    aid = h.add_agent(ip=IP)
    h.subscribe(stream="s1")
    h.allocate()
    assert h.offers("s1")  # an offer of the agent, nothing launched
    _schedule(h)
    h.allocate()
    [event] = h.events("INVERSE_OFFERS", "s1")
    assert event["inverse_offers"]["inverse_offers"][0]["agent_id"] == {"value": aid}
