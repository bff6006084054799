"""Consumer-group lag: the pure computation, its metrics, the service label on every metric, /v1/lag."""
from __future__ import annotations

import json

from hypothesis import given, strategies as st
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from scheduler.api.metrics import LagCollector, Metrics, StateCollector
from scheduler.api.server import Api
from scheduler.shell.lag_watch import compute_lag
from tests.helpers.api_backend import Backend


def test_lag_is_end_minus_committed_summed_per_topic_and_group():
    s = compute_lag({"g": {("a", 0): 3, ("a", 1): 10, ("b", 0): None}, "empty": {}},
                    {("a", 0): 5, ("a", 1): 12, ("b", 0): 7}, 100.0, states={"g": "STABLE", "empty": "EMPTY"})
    g = s["groups"]["g"]
    assert g["lag"] == 4 and g["topics"]["a"]["lag"] == 4
    assert g["topics"]["a"]["partitions"][1] == {"committed": 10, "end": 12, "lag": 2}
    assert g["topics"]["b"] == {"lag": 0, "partitions": {}, "unknown": [0]}  # no committed offset: unknown
    assert s["groups"]["empty"] == {"lag": 0, "topics": {}, "state": "EMPTY"}
    assert g["state"] == "STABLE"
    assert s["sampled_at"] == 100.0


def test_unknown_end_offset_is_unknown_not_zero():
    s = compute_lag({"g": {("a", 0): 3}}, {}, 0.0)
    assert s["groups"]["g"]["topics"]["a"]["unknown"] == [0]


tps = st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(0, 5))


@given(st.dictionaries(tps, st.tuples(st.one_of(st.none(), st.integers(0, 10**9)), st.integers(0, 10**9))))
def test_lag_totals_are_sums_of_nonnegative_partition_lags(parts):
    committed = {"g": {tp: c for tp, (c, _) in parts.items()}}
    ends = {tp: e for tp, (_, e) in parts.items()}
    g = compute_lag(committed, ends, 0.0)["groups"]["g"]
    assert g["lag"] == sum(t["lag"] for t in g["topics"].values())
    for topic, t in g["topics"].items():
        assert t["lag"] == sum(p["lag"] for p in t["partitions"].values())
        assert all(p["lag"] >= 0 for p in t["partitions"].values())
        assert len(t["partitions"]) + len(t["unknown"]) == sum(1 for tp in parts if tp[0] == topic)
    assert g["lag"] == sum(max(0, e - c) for c, e in parts.values() if c is not None)


def _exported(m: Metrics) -> list:
    return list(text_string_to_metric_families(generate_latest(m.registry).decode()))


def test_every_metric_sample_has_the_service_label():
    b = Backend()
    m = Metrics("kafka-one")
    m.attach(StateCollector(b.state, b.role, b.zk_connected))
    m.attach(LagCollector(lambda: compute_lag({"g": {("t", 0): 1}}, {("t", 0): 4}, 0.0), clock=lambda: 7.0))
    m.offers.labels("accepted").inc()
    m.kills.inc()
    m.decisions.labels("Tick").observe(0.01)
    fams = _exported(m)
    samples = [s for f in fams for s in f.samples]
    assert len({f.name for f in fams}) >= 10 and samples
    assert all(s.labels.get("service") == "kafka-one" for s in samples), \
        [s for s in samples if s.labels.get("service") != "kafka-one"][:3]
    by = {(s.name, tuple(sorted(s.labels.items()))): s.value for s in samples}
    assert by[("kmf_consumer_group_lag", (("group", "g"), ("service", "kafka-one"), ("topic", "t")))] == 3.0
    assert by[("kmf_consumer_group_lag_partition",
               (("group", "g"), ("partition", "0"), ("service", "kafka-one"), ("topic", "t")))] == 3.0
    assert by[("kmf_consumer_group_lag_sampled_seconds", (("service", "kafka-one"),))] == 7.0


def test_per_partition_series_are_capped():
    m = Metrics("s")
    many = {"g": {("t", p): 0 for p in range(5)}}
    m.attach(LagCollector(lambda: compute_lag(many, {("t", p): 2 for p in range(5)}, 0.0), max_partition_series=4))
    names = {s.name for f in _exported(m) for s in f.samples}
    assert "kmf_consumer_group_lag" in names and "kmf_consumer_group_lag_partition" not in names


def test_no_sample_exports_no_lag_series():
    m = Metrics("s")
    m.attach(LagCollector(lambda: None))
    assert not [s for f in _exported(m) for s in f.samples if s.name.startswith("kmf_consumer_group_lag")]


def test_lag_route_gives_the_sample_and_each_app_group():
    sample = compute_lag({"wordcount": {("text", 0): 2}}, {("text", 0): 9}, 50.0)
    b = Backend()
    api = Api(b, Metrics("s").registry, lag=lambda: sample, clock=lambda: 60.0)
    status, _, body, _ = api.handle("GET", "/v1/lag", {}, b"")
    doc = json.loads(body)
    assert status == 200 and doc["groups"]["wordcount"]["lag"] == 7 and doc["age_s"] == 10.0
    assert doc["groups"]["wordcount"]["topics"]["text"]["partitions"]["0"]["lag"] == 7
    for app in b.state().spec.apps:
        assert doc["apps"][app.name]["group"] == app.consumer_group(b.state().spec.name)
    none = json.loads(Api(b, Metrics("s").registry).handle("GET", "/v1/lag", {}, b"")[2])
    assert none["sampled_at"] is None and none["groups"] == {}


def test_an_apps_group_is_its_field_else_what_kmf_makes_its_application_id_else_its_name():
    from config.models import AppSpec
    assert AppSpec("wc", ("-m", "streams.wordcount"), group="g").consumer_group("svc") == "g"
    assert AppSpec("wc", ("-m", "streams.wordcount", "--group", "x")).consumer_group("svc") == "x"
    assert AppSpec("wc", ("-m", "streams.wordcount")).consumer_group("svc") == "wc"
    java = AppSpec("wcj", ("org.apache.kafka.streams.examples.wordcount.WordCountDemo", "{properties}"),
                   runtime="java")
    assert java.consumer_group("svc") == "svc-wcj"


def test_a_probe_that_crashes_costs_a_sample_not_the_scheduler(tmp_path):
    """librdkafka can kill the process that asks for group offsets (see lag_probe): the watcher
    survives a probe dying of SIGSEGV, starts a new one and samples with it."""
    import sys
    from scheduler.shell.lag_watch import LagWatcher
    from tests.helpers.api_backend import Backend
    marker = tmp_path / "crashed-once"
    script = tmp_path / "probe.py"
    script.write_text(
        "import json, os, signal, sys, pathlib\n"
        f"m = pathlib.Path({str(marker)!r})\n"
        "for _ in sys.stdin:\n"
        "    if not m.exists():\n"
        "        m.write_text('x'); os.kill(os.getpid(), signal.SIGSEGV)\n"
        "    print(json.dumps({'sampled_at': 5.0, 'committed': {'g': [['t', 0, 2]]}, 'ends': [['t', 0, 9]],"
        " 'skipped_groups': 0, 'skipped_partitions': 0}), flush=True)\n")
    b = Backend()
    w = LagWatcher(b.state, probe_cmd=lambda boot: [sys.executable, str(script)])
    try:
        assert w.poll() is None and w.probe_deaths == 1  # the first probe died: no sample, no exception
        sample = w.poll()
        assert sample is not None and sample["groups"]["g"]["lag"] == 7 and w.latest is sample
        assert w.probe_deaths == 1
    finally:
        w.stop()
    assert w._probe is None


def test_the_owner_of_each_partition_comes_with_the_sample():
    sample = compute_lag({"g": {("t", 0): 3, ("t", 1): 4}}, {("t", 0): 5, ("t", 1): 4}, 0.0,
                         owners={"g": {("t", 0): "wc-0-StreamThread-1-consumer"}})
    parts = sample["groups"]["g"]["topics"]["t"]["partitions"]
    assert parts[0] == {"committed": 3, "end": 5, "lag": 2, "owner": "wc-0-StreamThread-1-consumer"}
    assert "owner" not in parts[1]
    from scheduler.core.app_autoscale import group_lags
    assert group_lags(sample)["g"].parts == (("t", 0, 3, 2, "wc-0-StreamThread-1-consumer"), ("t", 1, 4, 0, None))
