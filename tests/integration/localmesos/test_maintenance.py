"""Maintenance primitives against localmesos and Apache Mesos: the schedule and its validation
errors, machine modes in /master/maintenance/status, inverse offers and the answers kept in the
status, offers carrying the unavailability, machine DOWN removing the agent and its tasks, machine
UP, and the v1 operator calls for the same. Expected words are Apache Mesos 1.12's."""
from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.helpers.v1client import V1Scheduler, http_request, post_json
from tests.helpers.wait import wait_for

pytestmark = pytest.mark.timeout(180)


def _machine(lm: Any) -> dict[str, str]:
    ip = lm.agents[0].ip
    return {"hostname": ip, "ip": ip}


def _quoted(machine: dict[str, str]) -> str:
    return "'" + json.dumps(machine, separators=(",", ":")) + "'"


def _get(lm: Any, path: str) -> Any:
    status, _, body = http_request(lm.url + path)
    assert status == 200, body
    return json.loads(body)


def _post(lm: Any, path: str, doc: Any) -> tuple[int, str]:
    status, body = post_json(lm.url + path, doc)
    return status, body.decode(errors="replace")


def _window(machines: list[dict[str, str]], start_ns: int, **unavailability: Any) -> dict[str, Any]:
    return {"machine_ids": machines,
            "unavailability": {"start": {"nanoseconds": start_ns}, **unavailability}}


def test_schedule_validation_answers_as_mesos(cluster):
    lm = cluster(agents=1)
    m = _machine(lm)
    assert _get(lm, "/master/maintenance/schedule") == {}
    assert _get(lm, "/master/maintenance/status") == {}
    cases = [
        ({"windows": [_window([], 1)]}, "List of machines in the maintenance window is empty"),
        ({"windows": [_window([{}], 1)]}, "Both 'hostname' and 'ip' for a machine are empty"),
        ({"windows": [{"machine_ids": [m]}]}, "Missing required fields: windows[0].unavailability"),
        ({"windows": [_window([m, m], 1)]},
         f"Machine {_quoted(m)} appears more than once in the schedule"),
        ({"windows": [_window([m], 1, duration={"nanoseconds": -1})]},
         "Unavailability 'duration' is negative"),
        ({"windows": [_window([{"ip": "nope"}], 1)]}, "Failed to parse IPv4: nope"),
    ]
    for schedule, message in cases:
        assert _post(lm, "/master/maintenance/schedule", schedule) == (400, message)
    assert _post(lm, "/master/machine/down", [m]) == (
        400, f"Machine {_quoted(m)} is not in DRAINING mode and cannot be brought down")
    assert _post(lm, "/master/machine/up", [m]) == (
        400, f"Machine {_quoted(m)} is not in DOWN mode and cannot be brought up")
    assert _post(lm, "/master/machine/down", []) == (400, "List of machines is empty")
    assert _get(lm, "/master/maintenance/schedule") == {}


def _launch(sched: V1Scheduler, task_id: str) -> None:
    offer = sched.offer(timeout=60)
    res = [{"name": n, "type": "SCALAR", "scalar": {"value": v}, "allocation_info": {"role": "m"}}
           for n, v in (("cpus", 0.1), ("mem", 32))]
    task = {"name": task_id, "task_id": {"value": task_id}, "agent_id": offer["agent_id"],
            "resources": res, "command": {"value": "sleep 1000"}}
    sched.accept(offer["id"], [{"type": "LAUNCH", "launch": {"task_infos": [task]}}])
    sched.wait_state(task_id, "TASK_RUNNING", timeout=60)


def _inverse_id(event: dict[str, Any]) -> dict[str, str]:
    return event["inverse_offers"]["inverse_offers"][0]["id"]


def test_draining_sends_inverse_offers_and_down_removes_the_agent(cluster):
    lm = cluster(agents=1)
    m = _machine(lm)
    sched = V1Scheduler(lm.url, "maintenance", role="m").subscribe(timeout=60)
    try:
        _launch(sched, "t")
        start = int((time.time() + 3600) * 1e9)
        schedule = {"windows": [_window([m], start)]}
        assert _post(lm, "/master/maintenance/schedule", schedule) == (200, "")
        assert _get(lm, "/master/maintenance/schedule") == schedule
        assert _get(lm, "/master/maintenance/status") in (
            {"draining_machines": [{"id": m}]},  # before any answer
        )
        [event] = sched.wait("INVERSE_OFFERS", timeout=30)
        inverse = event["inverse_offers"]["inverse_offers"][0]
        assert inverse["framework_id"]["value"] == sched.framework_id
        assert inverse["unavailability"] == {"start": {"nanoseconds": start}}
        assert inverse["url"]["address"]["ip"] == m["ip"]
        offer = sched.offer(timeout=30, pred=lambda o: "unavailability" in o)
        assert offer["unavailability"] == {"start": {"nanoseconds": start}}

        sched.call("DECLINE_INVERSE_OFFERS", {"inverse_offer_ids": [_inverse_id(event)],
                                              "filters": {"refuse_seconds": 1}})

        def answers() -> list[str]:
            draining = _get(lm, "/master/maintenance/status").get("draining_machines", [])
            return [s["status"] for d in draining for s in d.get("statuses", [])]
        assert wait_for(lambda: answers() == ["DECLINE"], timeout=10, what="DECLINE in status")
        second = sched.wait("INVERSE_OFFERS", timeout=30, count=2)[1]  # after the 1 s filter
        sched.call("ACCEPT_INVERSE_OFFERS", {"inverse_offer_ids": [_inverse_id(second)]})
        assert wait_for(lambda: answers() == ["ACCEPT"], timeout=10, what="ACCEPT in status")
        [entry] = _get(lm, "/master/maintenance/status")["draining_machines"]
        assert entry["statuses"][0]["framework_id"] == {"value": sched.framework_id}
        assert set(entry["statuses"][0]["timestamp"]) == {"nanoseconds"}

        # the v1 operator API gives the same
        status, body = _post(lm, "/api/v1", {"type": "GET_MAINTENANCE_SCHEDULE"})
        assert status == 200 and json.loads(body) == {
            "type": "GET_MAINTENANCE_SCHEDULE", "get_maintenance_schedule": {"schedule": schedule}}
        status, body = _post(lm, "/api/v1", {"type": "GET_MAINTENANCE_STATUS"})
        assert json.loads(body)["get_maintenance_status"]["status"] == \
            _get(lm, "/master/maintenance/status")

        assert _post(lm, "/master/machine/down", [m]) == (200, "")
        lost = sched.wait_state("t", "TASK_LOST", timeout=30)
        assert (lost["source"], lost["reason"], lost["message"]) == (
            "SOURCE_MASTER", "REASON_AGENT_REMOVED",
            f"Agent {m['hostname']} removed: Operator initiated 'Machine DOWN'")
        sched.wait("FAILURE", lambda e: "agent_id" in e["failure"], timeout=30)
        assert _get(lm, "/master/slaves")["slaves"] == []
        assert _get(lm, "/master/maintenance/status") == {"down_machines": [m]}
        wait_for(lambda: lm.agents[0].proc.poll() is not None, timeout=30,
                 what="the agent of the DOWN machine to shut down")
        assert _post(lm, "/master/maintenance/schedule", {}) == (
            400, f"Machine {_quoted(m)} is deactivated and cannot be removed from the schedule")
        assert _post(lm, "/master/machine/up", [m]) == (200, "")
        assert _get(lm, "/master/maintenance/status") == {}
        assert _get(lm, "/master/maintenance/schedule") == {}
    finally:
        sched.close()


def test_operator_api_starts_and_stops_maintenance(cluster):
    lm = cluster(agents=1)
    m = _machine(lm)
    schedule = {"windows": [_window([m], int((time.time() + 60) * 1e9))]}
    assert _post(lm, "/api/v1", {"type": "UPDATE_MAINTENANCE_SCHEDULE",
                                 "update_maintenance_schedule": {"schedule": schedule}})[0] == 200
    assert _get(lm, "/master/maintenance/status") == {"draining_machines": [{"id": m}]}
    assert _post(lm, "/api/v1", {"type": "START_MAINTENANCE",
                                 "start_maintenance": {"machines": [m]}})[0] == 200
    assert _get(lm, "/master/maintenance/status") == {"down_machines": [m]}
    assert _post(lm, "/api/v1", {"type": "STOP_MAINTENANCE",
                                 "stop_maintenance": {"machines": [m]}})[0] == 200
    assert _get(lm, "/master/maintenance/status") == {}


def test_drain_agent_kills_its_tasks_then_it_is_drained(cluster):
    lm = cluster(agents=1)
    sched = V1Scheduler(lm.url, "drain", role="m").subscribe(timeout=60)
    try:
        _launch(sched, "t")
        agent_id = sched.updates("t")[-1]["agent_id"]
        assert _post(lm, "/api/v1", {"type": "DRAIN_AGENT", "drain_agent": {
            "agent_id": {"value": "no-such-agent"}}}) == (400, "Unknown agent")
        assert _post(lm, "/api/v1", {"type": "DRAIN_AGENT", "drain_agent": {
            "agent_id": agent_id, "max_grace_period": {"nanoseconds": 1_000_000_000}}}) == (200, "")
        [slave] = _get(lm, "/master/slaves")["slaves"]
        assert (slave["active"], slave["deactivated"]) == (False, True)
        assert slave["drain_info"]["state"] in ("DRAINING", "DRAINED")
        assert slave["drain_info"]["config"]["mark_gone"] is False
        assert "estimated_drain_start_time_seconds" in slave
        killed = sched.wait_state("t", "TASK_KILLED", timeout=30)
        assert (killed["source"], killed["reason"]) == ("SOURCE_EXECUTOR", "REASON_AGENT_DRAINING")
        wait_for(lambda: _get(lm, "/master/slaves")["slaves"][0]["drain_info"]["state"] == "DRAINED",
                 timeout=30, what="the agent DRAINED")
        assert _post(lm, "/api/v1", {"type": "REACTIVATE_AGENT", "reactivate_agent": {
            "agent_id": agent_id}}) == (200, "")
        [slave] = _get(lm, "/master/slaves")["slaves"]
        assert (slave["active"], slave["deactivated"]) == (True, False)
        assert "drain_info" not in slave
    finally:
        sched.close()


def test_schedule_and_machine_modes_survive_a_master_restart(lm_factory):
    """Mesos keeps them in its registry (localmesos: registry.json in the master's work_dir)."""
    lm = lm_factory(agents=1)
    m = _machine(lm)
    other = {"hostname": "elsewhere", "ip": "10.0.0.9"}
    schedule = {"windows": [_window([m], 1), _window([other], 2)]}
    assert _post(lm, "/master/maintenance/schedule", schedule) == (200, "")
    assert _post(lm, "/master/machine/down", [other]) == (200, "")
    lm.restart_master()
    assert _get(lm, "/master/maintenance/schedule") == schedule
    assert _get(lm, "/master/maintenance/status") == {
        "draining_machines": [{"id": m}], "down_machines": [other]}
