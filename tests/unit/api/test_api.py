"""The API's request handling against a real decision loop state (no HTTP server needed):
routes match the OpenAPI file, bad input gets a clear 4xx and reaches nothing."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings, strategies as st

from scheduler.api.server import ROUTES
from tests.helpers.api_backend import Backend, api, call

OPENAPI = Path(__file__).resolve().parents[3] / "scheduler" / "api" / "openapi.yaml"


def test_routes_and_openapi_agree():
    doc = yaml.safe_load(OPENAPI.read_text())
    documented = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    served = set()
    for method, pattern, _, _ in ROUTES:
        path = re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", pattern.pattern)
        path = path.replace("{cmd}", "").rstrip("/")
        if "(" in pattern.pattern and "cmd" in pattern.pattern:
            for cmd in re.search(r"\(\?P<cmd>([^)]*)\)", pattern.pattern).group(1).split("|"):
                served.add((method, path + "/" + cmd if not path.endswith("}") else f"{path}/{cmd}"))
            continue
        served.add((method, path or "/"))
    served = {(m, p.replace("/{pod}/", "/{pod}/").replace("{name}", "{name}")) for m, p in served}
    assert served == documented, (served - documented, documented - served)


def test_reads():
    a = api()
    assert call(a, "GET", "/v1/plans/deploy")[0] == 200
    assert call(a, "GET", "/v1/pod/broker-0/info")[0] == 200
    assert b"bootstrap_servers" in call(a, "GET", "/v1/endpoints/broker")[1]


@pytest.mark.parametrize("method, path, body, status", [
    ("GET", "/v1/nope", b"", 404),
    ("DELETE", "/v1/plans", b"", 405),
    ("GET", "/v1/plans/nope", b"", 404),
    ("GET", "/v1/pod/nope/info", b"", 404),
    ("GET", "/v1/endpoints/zk", b"", 404),
    ("POST", "/v1/pod/nope/restart", b"", 404),
    ("POST", "/v1/plans/nope/interrupt", b"", 404),
    ("POST", "/v1/plans/deploy/force-complete", b"{}", 400),
    ("POST", "/v1/plans/deploy/force-complete", b'{"step": 3}', 400),
    ("POST", "/v1/scale", b"{", 400),
    ("POST", "/v1/scale", b"[1]", 400),
    ("POST", "/v1/scale", b'{"kind": "brokers"}', 400),
    ("POST", "/v1/scale", b'{"kind": "brokers", "count": true}', 400),
    ("POST", "/v1/scale", b'{"kind": "zk", "count": 1}', 400),
    ("POST", "/v1/scale", b'{"kind": "app", "count": 1}', 400),
    ("POST", "/v1/scale", b'{"kind": "app", "name": "nope", "count": 1}', 404),
    ("POST", "/v1/scale", b'{"kind": "brokers", "count": 0}', 400),
    ("PUT", "/v1/config", b"kafka: [", 400),
    ("PUT", "/v1/config", b'{"yaml": 3}', 400),
    ("POST", "/v1/topics", b'{"name": "bad name!"}', 400),
    ("POST", "/v1/topics", b'{"name": "t", "colour": 1}', 400),
    ("POST", "/v1/topics", b'{"name": "t", "partitions": 0}', 400),
    ("PUT", "/v1/topics/t/config", b'{"a": [1]}', 400),
])
def test_bad_requests_get_4xx_and_change_nothing(method, path, body, status):
    a = api()
    before = a.backend.sim.state
    code, data = call(a, method, path, body)
    assert code == status, data
    assert b'"error"' in data
    assert a.backend.sim.state.tasks == before.tasks and a.backend.sim.state.spec == before.spec


def test_token_is_required_for_mutations_only():
    a = api(token="t0ken")
    assert call(a, "GET", "/v1/plans/deploy")[0] == 200
    assert call(a, "POST", "/v1/pod/broker-0/restart")[0] == 401
    assert call(a, "POST", "/v1/pod/broker-0/restart", headers={"Authorization": "Bearer nope"})[0] == 401
    assert a.backend.submitted == []
    assert call(a, "POST", "/v1/pod/broker-0/restart", headers={"Authorization": "Bearer t0ken"})[0] == 200
    assert a.backend.submitted == [("restart_pod", {"pod": "broker-0", "force": False})]


@settings(max_examples=60, deadline=None)
@given(method=st.sampled_from(["GET", "POST", "PUT", "DELETE"]),
       path=st.sampled_from([r[1].pattern.replace("(?P<plan>[^/]+)", "deploy") for r in ROUTES
                             if "topics" not in r[1].pattern]) | st.text(max_size=30).filter(lambda t: "topics" not in t),
       body=st.binary(max_size=200))
def test_fuzzed_requests_never_500(method, path, body):
    a = api()
    code, _ = call(a, method, "/" + path.lstrip("/"), body)
    assert code < 500 or code == 503


def test_grafana_dashboard_uses_only_metrics_kmf_exports():
    import json
    from prometheus_client import generate_latest
    from scheduler.api.metrics import LagCollector, Metrics, StateCollector
    from scheduler.shell.lag_watch import compute_lag
    b = Backend()
    m = Metrics("svc")
    m.attach(StateCollector(b.state, b.role, b.zk_connected))
    sample = compute_lag({"g": {("t", 0): 3}}, {("t", 0): 5}, 0.0)
    m.attach(LagCollector(lambda: sample))
    m.offers.labels("accepted").inc()
    families = {line.split()[2] for line in generate_latest(m.registry).decode().splitlines()
                if line.startswith("# HELP")}
    exported = families | {f + suffix for f in families for suffix in ("_total", "_bucket", "_count", "_sum")}
    dash = json.loads((OPENAPI.parent / "grafana" / "kmf-dashboard.json").read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    used = {name for e in exprs for name in re.findall(r"kmf_[a-z_]+", e)}
    assert used and used <= exported | {n + "_bucket" for n in exported}, used - exported
    assert {"kmf_consumer_group_lag", "kmf_consumer_group_lag_sampled_seconds"} <= used
    # the broker panels name what docs/configuration.md#broker-metrics documents (the e2e of broker
    # metrics checks those names on a live scrape of the exporters)
    documented: set[str] = set()
    for row in (OPENAPI.parents[2] / "docs" / "configuration.md").read_text().splitlines():
        names = re.findall(r"`(kafka_[a-z_]+|\.\.\._[a-z_]+)", row)
        if names and names[0].startswith("kafka_"):  # "..._x" in a row: the first name's kafka_<a>_<b> + _x
            prefix = "_".join(names[0].split("_")[:3])
            documented |= {n if n.startswith("kafka_") else prefix + n[3:] for n in names}
    broker = {name for e in exprs for name in re.findall(r"\bkafka_[a-z_]+", e)}
    assert broker and broker <= documented, broker - documented
    # every selector filters on the dashboard's service variable
    assert [v["name"] for v in dash["templating"]["list"]] == ["service"]
    for e in exprs:
        for sel in re.findall(r"\b(?:kmf|kafka)_[a-z_]+(\{[^}]*\})?|\bup(\{[^}]*\})", e):
            assert 'service="$service"' in "".join(sel), e
