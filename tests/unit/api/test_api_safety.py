"""The API contract of issue 12 (defects 4 and 8): POST /v1/pod/{pod}/restart {"force"},
POST /v1/pod/{pod}/replace {"confirm", "force"}, plan steering by phase/step, and the
"unplaceable" field of plan steps, against the pure core's simulated cluster."""
from __future__ import annotations

import json

import pytest

from tests.helpers.api_backend import api, call


def post(a, path, body=None):
    code, data = call(a, "POST", path, b"" if body is None else json.dumps(body).encode())
    return code, json.loads(data)


@pytest.mark.parametrize("path, body, field", [
    ("/v1/pod/broker-0/restart", {"force": "yes"}, "force"),
    ("/v1/pod/broker-0/restart", {"force": 1}, "force"),
    ("/v1/pod/broker-0/restart", {"confirm": True}, "confirm"),
    ("/v1/pod/broker-0/replace", {"confirm": "true"}, "confirm"),
    ("/v1/pod/broker-0/replace", {"confirm": True, "force": None}, "force"),
    ("/v1/pod/broker-0/replace", [True], "body"),
    ("/v1/plans/update/continue", {"step": "broker-0", "steps": 1}, "steps"),
])
def test_bad_flags_get_400_naming_the_field_and_reach_nothing(path, body, field):
    a = api()
    before = a.backend.sim.state
    code, doc = post(a, path, body)
    assert code == 400 and doc["where"] == field and (field == "body" or field in doc["error"]), doc
    assert a.backend.submitted == [] and a.backend.sim.state == before


def test_restart_twice_refused_with_the_reason_until_forced():
    a = api()
    code, doc = post(a, "/v1/pod/broker-0/restart")
    assert code == 200, doc
    code, doc = post(a, "/v1/pod/broker-1/restart", {"force": False})
    assert code == 409 and doc["force_required"] is True and "broker-0" in doc["error"], doc
    code, doc = post(a, "/v1/pod/broker-1/restart", {"force": True})
    assert code == 200 and "forced" in doc["message"], doc


def test_replace_asks_for_confirmation_and_says_where_it_goes():
    a = api()
    host = a.backend.sim.record("broker-1").reservation.hostname
    code, doc = post(a, "/v1/pod/broker-1/replace")
    assert code == 409 and doc["confirm_required"] is True and host in doc["error"], doc
    code, doc = post(a, "/v1/pod/broker-1/replace", {"confirm": True})
    assert code == 200 and "possibly on the same agent" in doc["message"], doc


def test_unknown_steps_and_phases_get_404_listing_what_exists():
    a = api()
    code, doc = post(a, "/v1/plans/update/continue", {"step": "nosuch"})
    assert code == 404 and "broker-0" in doc["error"] and "nosuch" in doc["error"], doc
    code, doc = post(a, "/v1/plans/deploy/interrupt", {"phase": "nosuch"})
    assert code == 404 and "quorum" in doc["error"], doc
    code, doc = post(a, "/v1/plans/update/interrupt", {"step": "broker-0"})
    assert code == 200, doc
    assert a.backend.sim.state.properties.get("plan.update.step.broker-0.interrupted") == "true"
    assert "plan.update.interrupted" not in a.backend.sim.state.properties


def test_every_plan_step_has_the_unplaceable_field():
    a = api()
    for plan in ("deploy", "update", "recovery"):
        code, data = call(a, "GET", f"/v1/plans/{plan}")
        doc = json.loads(data)
        assert all("unplaceable" in s for ph in doc["phases"] for s in ph["steps"]), doc
