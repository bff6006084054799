"""Refusals: the core says what kind of no (a `Refusal`), the API alone turns it into an HTTP
code (`REFUSAL_HTTP`), and the answers clients get are the codes and messages they always were.
Also the placement explanation served at GET /v1/pod/<name>/placement."""
from __future__ import annotations

import json

import pytest
from prometheus_client import CollectorRegistry

from scheduler.api.server import REFUSAL_HTTP, Api
from scheduler.core import command_types as ct
from scheduler.core import events as ev
from scheduler.core.commands import HANDLERS, parse
from scheduler.core.events import CommandKind
from scheduler.core.refusals import Refusal
from tests.helpers.core_kit import BASE, deployed


class SimBackend:
    """A leader whose state is a simulated cluster driven through the pure core."""

    def __init__(self, text: str = BASE) -> None:
        self.sim = deployed(text)

    def role(self): return "leader"
    def leader_url(self): return None
    def state(self): return self.sim.state
    def zk_connected(self): return True
    def mesos_master(self): return None
    def configurations(self): return {}
    def declared_status(self): return {"state": "nothing declared"}
    def parse_config(self, text): raise AssertionError("not used here")

    def submit(self, kind, args):
        return self.sim.send.event(ev.Command("c", kind, args, self.sim.now)).reply


def call(api: Api, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
    status, _, data, _ = api.handle(method, path, {}, json.dumps(body).encode() if body is not None else b"")
    return status, json.loads(data)


def test_every_refusal_has_one_http_code_and_they_are_the_codes_clients_always_got():
    assert set(REFUSAL_HTTP) == set(Refusal)
    assert {r.name: REFUSAL_HTTP[r] for r in Refusal} == {
        "INVALID": 400, "NOT_FOUND": 404, "CONFLICT": 409, "INTERNAL": 500, "UNAVAILABLE": 503}


def test_every_command_kind_is_parsed_into_its_typed_command():
    assert set(HANDLERS) == set(CommandKind)
    assert parse(ev.Command("c", "restart_pod", {"pod": "broker-0", "force": True}, 0.0)) == ct.RestartPod("broker-0", True)
    # a flag is set only by a JSON true
    assert parse(ev.Command("c", "replace_pod", {"pod": "x", "confirm": "yes"}, 0.0)) == ct.ReplacePod("x", False, False)
    assert parse(ev.Command("c", "scale_app", {"app": "wc", "count": 3}, 0.0)) == ct.ScaleApp("wc", 3)
    assert parse(ev.Command("c", "plan_interrupt", {"plan": "deploy"}, 0.0)) == ct.PlanInterrupt("deploy")
    assert parse(ev.Command("c", "nope", {}, 0.0)) is None


@pytest.mark.parametrize("kind, args, refusal, message", [
    ("restart_pod", {"pod": "nope"}, Refusal.NOT_FOUND, "pod 'nope' does not exist"),
    ("plan_restart", {"plan": "deploy"}, Refusal.CONFLICT,
     "restarting a whole plan (deploy) is not supported; restart its steps (pods) one by one"),
    ("scale_app", {"app": "wc", "count": -1}, Refusal.INVALID, "count must be a whole number from 0 to"),
    ("scale_app", {"app": "nope", "count": -1}, Refusal.NOT_FOUND, "app 'nope' does not exist"),
    ("update_config", {"spec": None}, Refusal.INVALID, "no valid spec given"),
    ("teleport", {}, Refusal.INVALID, "unknown command 'teleport'"),
])
def test_the_core_refuses_with_a_refusal_not_a_transport_code(kind, args, refusal, message):
    backend = SimBackend()
    before = backend.sim.state
    reply = backend.submit(kind, args)
    assert not reply.ok and reply.result["refusal"] is refusal and reply.result["message"].startswith(message)
    assert backend.sim.state == before


@pytest.mark.parametrize("method, path, body, code, error", [
    ("POST", "/v1/pod/nope/restart", None, 404, "pod 'nope' does not exist"),
    ("POST", "/v1/plans/deploy/restart", None, 409,
     "restarting a whole plan (deploy) is not supported; restart its steps (pods) one by one"),
    ("POST", "/v1/plans/nope/interrupt", None, 404, "plan 'nope' does not exist (plans: deploy, recovery, update, rebalance)"),
    ("POST", "/v1/scale", {"kind": "app", "name": "wc", "count": -1}, 400,
     "count must be a whole number from 0 to 10000, got -1"),
    ("POST", "/v1/scale", {"kind": "brokers", "count": 2}, 409, None),
])
def test_the_api_answers_refusals_with_the_same_codes_and_bodies(method, path, body, code, error):
    status, doc = call(Api(SimBackend(), CollectorRegistry()), method, path, body)
    assert status == code and "status" not in doc
    if error is not None:
        assert doc == {"error": error}


def test_the_placement_of_a_pod_with_an_unsatisfiable_constraint_shows_the_reason():
    text = BASE.replace("command: ['-m', 'x']}", "command: ['-m', 'x'], placement: ['zone:IS:z9']}")
    api = Api(SimBackend(text), CollectorRegistry())
    status, doc = call(api, "GET", "/v1/pod/wc-0/placement")
    assert status == 200 and doc["placed"] is False
    assert doc["last"]["stage"] == "place" and doc["last"]["ok"] is False
    assert "zone:IS:z9: agent 10.0.0.1 has zone=z0" in doc["last"]["reason"]
    status, doc = call(api, "GET", "/v1/pod/broker-0/placement")
    assert status == 200 and doc["placed"] is True and doc["last"]["stage"] == "launch" and doc["last"]["ok"]
    status, doc = call(api, "GET", "/v1/pod/nope/placement")
    assert status == 404 and doc == {"error": "pod 'nope' does not exist", "where": "pod"}
