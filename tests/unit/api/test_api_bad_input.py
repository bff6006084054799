"""Bad input against every route of scheduler/api/openapi.yaml, through the real HTTP server
(in process, port 0) in front of the pure core's simulated cluster.

- schemathesis generates requests from the OpenAPI file, valid and invalid (negative mode: wrong
  types, unknown plans and endpoints, missing required fields, bodies that break the schema),
  each with or without the API token. Every answer: no 5xx; an error is a JSON
  ``{"error": ...}``; invalid input is refused with a 4xx; a missing token on a mutation is a 401;
  and a refused request leaves the scheduler's state exactly as it was.
- raw HTTP the generator does not make: malformed JSON, bodies over the 256 KiB limit, lying or
  broken Content-Length, unknown methods, unknown pods — each a clear 4xx JSON error, nothing
  changed.

Kafka is not there: the topic routes run against a recording fake of scheduler.api.topics.
"""
from __future__ import annotations

import copy
import http.client
import json
import socket
from pathlib import Path

import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, settings, strategies as st
from prometheus_client import CollectorRegistry
from schemathesis.generation import GenerationMode

from scheduler.api import topics
from scheduler.api.server import MAX_BODY, Api, ApiServer
from tests.helpers.api_backend import Backend
from tests.helpers.core_kit import BASE

OPENAPI = Path(__file__).resolve().parents[3] / "scheduler" / "api" / "openapi.yaml"
TOKEN = "t0ken-for-tests"
DOC = yaml.safe_load(OPENAPI.read_text())
MUTATING = {(m.upper(), p) for p, ops in DOC["paths"].items() for m, op in ops.items() if op.get("security")}
ROUTES = sorted((m.upper(), p) for p, ops in DOC["paths"].items() for m in ops)

schema = schemathesis.openapi.from_path(OPENAPI)
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
                                max_examples=25, deterministic=True)


class FakeTopics:
    """scheduler.api.topics without Kafka: one topic, ``t``, exists."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def list_topics(self, bootstrap):
        return ["t"]

    def describe(self, bootstrap, topic):
        return {"name": topic, "partitions": []} if topic == "t" else None

    def create(self, bootstrap, req):
        self.calls.append(("create", req))
        return (409, {"error": f"topic {req.name!r} exists"}) if req.name == "t" else (200, {"message": "created"})

    def delete(self, bootstrap, topic):
        self.calls.append(("delete", topic))
        return (200, {"message": "deleted"}) if topic == "t" else (404, {"error": f"no topic {topic!r}"})

    def alter_config(self, bootstrap, topic, settings_):
        self.calls.append(("alter", topic, dict(settings_)))
        return (200, {"message": "set"}) if topic == "t" else (404, {"error": f"no topic {topic!r}"})


class Service:
    """A fresh backend per example, behind one real server."""

    def __init__(self) -> None:
        self.pristine = Backend()
        self.api = Api(copy.deepcopy(self.pristine), CollectorRegistry(), TOKEN)
        self.server = ApiServer(self.api, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self.server.port}"

    def reset(self) -> Backend:
        self.api.backend = copy.deepcopy(self.pristine)
        return self.api.backend

    def raw(self, data: bytes, timeout: float = 10.0) -> tuple[int, dict, bytes]:
        """Send `data` as it is; the status, headers and body of the answer."""
        with socket.create_connection(("127.0.0.1", self.server.port), timeout=timeout) as sock:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
            resp = http.client.HTTPResponse(sock)
            resp.begin()
            return resp.status, dict(resp.getheaders()), resp.read()


@pytest.fixture(scope="module")
def service():
    fake = FakeTopics()
    saved = {name: getattr(topics, name) for name in ("list_topics", "describe", "create", "delete", "alter_config")}
    for name in saved:
        setattr(topics, name, getattr(fake, name))
    svc = Service()
    yield svc
    svc.server.stop()
    for name, fn in saved.items():
        setattr(topics, name, fn)


def snapshot(backend: Backend):
    return backend.sim.state


def check_error_body(status: int, body: bytes, what: str) -> dict:
    try:
        doc = json.loads(body)
    except ValueError:
        raise AssertionError(f"{what}: {status} with a body that is not JSON: {body[:200]!r}") from None
    assert isinstance(doc, dict) and isinstance(doc.get("error"), str) and doc["error"], \
        f"{what}: {status} without a clear error: {doc!r}"
    return doc


@schema.given(with_token=st.booleans())
@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck))
def test_every_route_refuses_bad_input_with_a_4xx_and_changes_nothing(service, case, with_token):
    backend = service.reset()
    before = snapshot(backend)
    headers = {"Authorization": f"Bearer {TOKEN}"} if with_token else {}
    response = case.call(base_url=service.url, headers=headers)
    what = f"{case.method} {case.formatted_path} ({case.meta.generation.mode.value if case.meta else '?'})"
    status = response.status_code
    assert status < 500, f"{what}: {status} {response.text[:300]}"
    if status >= 400:
        check_error_body(status, response.content, what)
        assert snapshot(backend) == before, f"{what}: refused with {status} but the state changed"
    mutating = (case.method.upper(), case.path) in MUTATING
    if mutating and not with_token:
        assert status == 401, f"{what} without the token: {status}"
        assert backend.submitted == []
    if case.meta is not None and case.meta.generation.mode == GenerationMode.NEGATIVE and status < 400:
        # schemathesis made input that breaks the schema; the API may only accept it when the
        # broken part is one it does not read (the checks of schemathesis decide that)
        case.validate_response(response, checks=[schemathesis.checks.negative_data_rejection])


@pytest.mark.parametrize("method, path", ROUTES)
def test_oversized_bodies_get_413_json_and_change_nothing(service, method, path):
    backend = service.reset()
    before = snapshot(backend)
    target = path.replace("{plan}", "deploy").replace("{pod}", "broker-0").replace("{topic}", "t") \
        .replace("{name}", "broker").replace("{cid}", "c1")
    body = b"{" + b" " * (MAX_BODY + 1) + b"}"
    head = (f"{method} {target} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    status, headers, data = service.raw(head + body)
    assert status == 413
    check_error_body(status, data, f"{method} {path} oversized")
    assert snapshot(backend) == before and backend.submitted == []


@pytest.mark.parametrize("method, path", sorted(MUTATING))
@pytest.mark.parametrize("auth", [None, "Bearer wrong", "Basic dXNlcjpwYXNz", "Bearer", TOKEN])
def test_mutations_without_the_right_token_get_401_and_change_nothing(service, method, path, auth):
    backend = service.reset()
    before = snapshot(backend)
    target = path.replace("{plan}", "deploy").replace("{pod}", "broker-0").replace("{topic}", "t")
    body = b'{"step": "broker-0", "kind": "brokers", "count": 4, "name": "x"}'
    extra = f"Authorization: {auth}\r\n" if auth else ""
    status, _, data = service.raw((f"{method} {target} HTTP/1.1\r\nHost: x\r\n{extra}"
                                   f"Content-Length: {len(body)}\r\n\r\n").encode() + body)
    assert status == 401
    check_error_body(status, data, f"{method} {path} with {auth!r}")
    assert snapshot(backend) == before and backend.submitted == []


BAD = [
    ("POST", "/v1/scale", b'{"kind": "brokers", "count": 4'),           # malformed JSON
    ("POST", "/v1/scale", b'\xff\xfe{"kind"}'),                          # not UTF-8
    ("POST", "/v1/scale", b'{"kind": "brokers", "count": "4"}'),         # wrong type
    ("POST", "/v1/scale", b'{"kind": "brokers", "count": 4.0}'),
    ("POST", "/v1/scale", b'{"kind": "brokers", "count": 1e400}'),
    ("POST", "/v1/scale", b'{"kind": "brokers", "count": NaN}'),
    ("POST", "/v1/scale", b'{"kind": "brokers", "count": 99999999999999999999999}'),
    ("POST", "/v1/scale", b'{"kind": "app", "name": "nope", "count": 2}'),  # unknown app
    ("POST", "/v1/scale", b'{"kind": "app", "name": ["wc"], "count": 2}'),
    ("POST", "/v1/scale", b'{"kind": "brokers", "count": -3}'),
    ("POST", "/v1/scale", b'{"kind": "app", "name": "wc", "auto": false}'),  # auto only resumes
    ("POST", "/v1/scale", b'{"kind": "app", "name": "wc", "auto": true, "count": 2}'),
    ("POST", "/v1/scale", b'{"kind": "app", "name": "wc", "auto": true}'),  # wc has no autoscale
    ("POST", "/v1/scale", b'null'),
    ("POST", "/v1/scale", b'"brokers"'),
    ("POST", "/v1/scale", b'[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[' * 200),
    ("POST", "/v1/pod/nope/restart", b""),                               # unknown pod
    ("POST", "/v1/pod/nope/replace", b""),
    ("POST", "/v1/pod/..%2F..%2Fetc/restart", b""),
    ("GET", "/v1/pod/%00/info", b""),
    ("POST", "/v1/plans/nope/continue", b""),                           # unknown plan
    ("POST", "/v1/plans/deploy/restart", b'{"step": "nope"}'),
    ("POST", "/v1/plans/deploy/restart", b'{"step": ["broker-0"]}'),
    ("POST", "/v1/plans/deploy/force-complete", b'{"step": null}'),
    ("POST", "/v1/plans/deploy/interrupt", b'{"phase": {"a": 1}}'),
    ("POST", "/v1/plans/deploy/interrupt", b'[]'),
    ("PUT", "/v1/config", b'{"yaml": null}'),
    ("PUT", "/v1/config", b'{"yaml": "kafka: {brokers: -1}"}'),
    ("PUT", "/v1/config", b"name: [unclosed"),
    ("PUT", "/v1/config", b"\x00\x01\x02"),
    ("PUT", "/v1/config", b"- a\n- b\n"),
    ("PUT", "/v1/config", b"just text"),
    ("PUT", "/v1/config", b"&a [*a]"),
    ("PUT", "/v1/config", b"a: &a [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nb: [*a, *a, *a, *a, *a, *a, *a, *a]\n"),
    ("PUT", "/v1/config", BASE.replace("brokers: 3", "brokers: 100000000").encode()),  # stalls nobody
    ("PUT", "/v1/config", BASE.replace("count: 2", "count: 100000000").encode()),
    ("POST", "/v1/topics", b'{"name": ""}'),
    ("POST", "/v1/topics", b'{"name": "t2", "partitions": "3"}'),
    ("POST", "/v1/topics", b'{"name": "t2", "config": []}'),
    ("POST", "/v1/topics", b'{"name": "t2", "config": {"a": {"b": 1}}}'),
    ("POST", "/v1/topics", b'{"name": "t2", "replication": true}'),
    ("POST", "/v1/topics", b'{"name": "' + b"x" * 300 + b'"}'),
    ("PUT", "/v1/topics/t/config", b'{}'),
    ("PUT", "/v1/topics/t/config", b'{"retention.ms": null}'),
    ("PUT", "/v1/topics/t/config", b'{"retention.ms": true}'),
    ("DELETE", "/v1/topics/nope", b""),
    ("GET", "/v1/configurations/nope", b""),
    ("GET", "/v1/endpoints/nope", b""),
    ("PATCH", "/v1/scale", b'{"kind": "brokers", "count": 4}'),         # no such method
    ("OPTIONS", "/v1/plans", b""),
    ("POST", "/v1/plans", b"{}"),
    ("GET", "/v1/../../etc/passwd", b""),
]


@pytest.mark.parametrize("method, path, body", BAD)
def test_malformed_requests_get_a_clear_4xx_json_error(service, method, path, body):
    backend = service.reset()
    before = snapshot(backend)
    head = (f"{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    status, _, data = service.raw(head + body)
    assert 400 <= status < 500, (status, data[:300])
    check_error_body(status, data, f"{method} {path}")
    assert snapshot(backend) == before


@pytest.mark.parametrize("head", [
    b"POST /v1/scale HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
    b"POST /v1/scale HTTP/1.1\r\nHost: x\r\nContent-Length: ten\r\n\r\n",
    b"POST /v1/scale HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n",
    b"POST /v1/scale HTTP/1.1\r\nHost: x\r\nContent-Length: 40\r\n\r\n{\"kind\": ",  # body cut short
    b"POST /v1/scale HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"a\":\r\n0\r\n\r\n",
    b"GARBAGE\r\n\r\n",
    b"GET /v1/plans HTTP/1\r\n\r\n",
])
def test_broken_http_gets_a_4xx_json_error(service, head):
    backend = service.reset()
    before = snapshot(backend)
    status, _, data = service.raw(head)
    assert 400 <= status < 500, (status, data[:300])
    check_error_body(status, data, repr(head[:40]))
    assert snapshot(backend) == before and backend.submitted == []


def test_a_request_line_of_another_http_version_gets_505_json(service):
    status, _, data = service.raw(b"GET /v1/plans HTTP/2.0\r\nHost: x\r\n\r\n")
    assert status == 505
    check_error_body(status, data, "HTTP/2.0 request line")
