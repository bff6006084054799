"""GET /v1/pod/NAME/logs: its refusals, before any agent is asked, and the pod info's sandbox when
Mesos cannot be asked (the test backend's master 127.0.0.9:5050 does not answer)."""
from __future__ import annotations

import json

import pytest

from scheduler.api.sandbox import executor_of
from tests.helpers.api_backend import api


def get(a, path, query=""):
    status, _, data, _ = a.handle("GET", path, {}, b"", query)
    return status, json.loads(data)


@pytest.mark.parametrize("query, status, where", [
    ("file=/etc/passwd", 400, "file"),
    ("file=../../x", 400, "file"),
    ("offset=x", 400, "offset"),
    ("offset=-2", 400, "offset"),
    ("offset=0&length=-1", 400, "offset"),
])
def test_bad_arguments_are_400_before_mesos_is_asked(query, status, where):
    code, doc = get(api(), "/v1/pod/broker-0/logs", query)
    assert (code, doc["where"]) == (status, where), doc


def test_unknown_pod_is_404():
    code, doc = get(api(), "/v1/pod/nope/logs", "offset=-1")
    assert code == 404 and doc["error"] == "pod 'nope' does not exist"


def test_master_or_agent_not_answering_is_502_and_info_says_the_sandbox_is_unknown():
    a = api()
    code, doc = get(a, "/v1/pod/broker-0/logs", "offset=-1")
    assert code == 502 and doc["where"] == "agent" and "127.0.0.9:5050" in doc["error"], doc
    code, info = get(a, "/v1/pod/broker-0/info")
    assert code == 200 and "127.0.0.9:5050" in info["sandbox"]["unknown"]


def test_executor_of_finds_the_executor_running_or_having_run_the_task():
    state = {"frameworks": [
        {"id": "other", "executors": [{"id": "e0", "directory": "/x", "tasks": [{"id": "t"}]}]},
        {"id": "fw", "executors": [{"id": "e1", "directory": "/a", "tasks": [{"id": "u"}]}],
         "completed_executors": [{"id": "e2", "directory": "/b", "completed_tasks": [{"id": "t"}]}]}]}
    assert executor_of(state, "fw", "t")["directory"] == "/b"
    assert executor_of(state, "fw", "u")["directory"] == "/a"
    assert executor_of(state, "fw", "nope") is None


def test_a_standby_names_the_leader_to_ask():
    a = api()
    a.backend.role = lambda: "standby"
    a.backend.leader_url = lambda: "http://10.0.0.7:8080/"
    a.backend.mesos_master = lambda: None
    code, doc = get(a, "/v1/pod/broker-0/logs", "offset=-1")
    assert code == 503 and "ask the leader at http://10.0.0.7:8080 (--api)" in doc["error"], doc
    code, info = get(a, "/v1/pod/broker-0/info")
    assert code == 200 and "standby" in info["sandbox"]["unknown"]
