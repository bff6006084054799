"""Config loading: defaults, interpolation, and bad input named by file, line and field."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings, strategies as st

import config
from config import ConfigError, load_text

ENV = {"KMF_MASTER": "zk://127.0.0.1:2181/mesos", "KMF_ZK": "127.0.0.1:2181"}
BASE = """\
name: kafka
mesos:
  master: zk://127.0.0.1:2181/mesos
zookeeper:
  connect: 127.0.0.1:2181
"""


def load(extra: str = "", base: str = BASE, env=None):
    return load_text(base + extra, "t.yaml", env=ENV if env is None else env)


def problems(extra: str, base: str = BASE, env=None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(extra, base, env)
    return [str(p) for p in info.value.problems]


def test_minimal_spec_gets_documented_defaults():
    spec = load()
    assert spec.kafka.brokers == 3 and spec.kafka.mode == "kraft" and spec.kafka.version == "4.3.1"
    assert spec.kafka.replication_factor == 3 and spec.kafka.min_isr == 2
    assert spec.mesos.failover_timeout_s == 604800 and spec.mesos.checkpoint is True
    assert spec.policies.deploy_strategy == "serial" and spec.apps == ()


def test_interpolation_with_defaults():
    spec = load("api:\n  port: ${PORT0:-8123}\n", base=BASE.replace("127.0.0.1:2181\n", "${KMF_ZK}\n", 1))
    assert spec.api.port == 8123 and spec.zookeeper.connect == "127.0.0.1:2181"
    assert load("api:\n  port: ${PORT0:-8123}\n", env={**ENV, "PORT0": "9000"}).api.port == 9000


def test_constraint_forms():
    spec = load("kafka:\n  placement: ['hostname:UNIQUE', [zone, GROUP_BY, '3'], 'rack:like:r[12]']\n")
    assert [str(c) for c in spec.kafka.placement] == ["hostname:UNIQUE", "zone:GROUP_BY:3", "rack:LIKE:r[12]"]


def test_examples_load():
    root = Path(__file__).resolve().parents[3] / "config"
    spec = config.load_file(root / "local.yaml", env=ENV)
    assert spec.kafka.brokers == 3 and spec.app("wordcount").count == 1
    assert config.spec_from_json(config.spec_to_json(spec)) == spec


@pytest.mark.parametrize("extra, expected", [
    ("kafka:\n  brokers: 0\n", "t.yaml:7: kafka.brokers: must be from 1 to 10000, got 0"),
    ("kafka:\n  brokers: 10001\n", "t.yaml:7: kafka.brokers: must be from 1 to 10000, got 10001"),
    ("kafka:\n  brokers: three\n", "t.yaml:7: kafka.brokers: expected a whole number, got 'three'"),
    ("kafka:\n  brokers: '3'\n", "t.yaml:7: kafka.brokers: expected a whole number"),
    ("kafka:\n  cpus: 0\n", "t.yaml:7: kafka.cpus: must be more than 0"),
    ("kafka:\n  cpus: nan\n", "t.yaml:7: kafka.cpus: expected a finite number"),
    ("kafka:\n  mem_mb: 100\n", "t.yaml:7: kafka.mem_mb: must be at least 128"),
    ("kafka:\n  heap_mb: 4096\n", "t.yaml:7: kafka.heap_mb: must be less than mem_mb"),
    ("kafka:\n  disk_mb: -1\n", "t.yaml:7: kafka.disk_mb: must be more than 0"),
    ("kafka:\n  mode: raft\n", "t.yaml:7: kafka.mode: 'raft' is not one of kraft, zookeeper"),
    ("kafka:\n  mode: zookeeper\n", "t.yaml:7: kafka.mode: Kafka 4.3.1 cannot run in zookeeper mode"),
    ("kafka:\n  version: '2.8.0'\n", "t.yaml:7: kafka.version: '2.8.0' is not a runtime kmf assembles"),
    ("kafka:\n  replication: 5\n", "t.yaml:7: kafka.replication: must be between 1 and the broker count 3"),
    ("kafka:\n  min_insync_replicas: 4\n", "t.yaml:7: kafka.min_insync_replicas: must be between 1"),
    ("kafka:\n  brokerz: 3\n", "t.yaml:7: kafka.brokerz: unknown key (did you mean 'brokers'?)"),
    ("kafka:\n  overrides:\n    listeners: PLAINTEXT://:9092\n",
     "t.yaml:8: kafka.overrides.listeners: kmf sets this property itself"),
    ("kafka:\n  overrides:\n    a: [1]\n", "t.yaml:8: kafka.overrides.a: expected a single value"),
    ("kafka:\n  placement: ['hostname:UNIQUELY']\n", "t.yaml:7: kafka.placement[0]: operator 'UNIQUELY'"),
    ("kafka:\n  placement: ['zone:MAX_PER:x']\n", "kafka.placement[0]: MAX_PER needs a positive whole number"),
    ("kafka:\n  placement: ['zone:LIKE:(']\n", "kafka.placement[0]: '(' is not a valid regular expression"),
    ("kafka:\n  placement: ['hostname:UNIQUE:x']\n", "kafka.placement[0]: UNIQUE takes no value"),
    ("apps:\n  - name: wordcount\n", "t.yaml:7: apps[0].command: is required"),
    ("apps:\n  - name: Word_Count\n    command: [x]\n", "t.yaml:7: apps[0].name: 'Word_Count' must be a DNS label"),
    ("apps:\n  - name: broker\n    command: [x]\n", "apps[0].name: 'broker' is reserved"),
    ("apps:\n  - {name: a, command: [x]}\n  - {name: a, command: [y]}\n", "t.yaml:8: apps[1].name: 'a' is used by another app"),
    ("apps:\n  - {name: a, command: [x], runtime: ruby}\n", "apps[0].runtime: 'ruby' is not one of python, java, command"),
    ("apps:\n  - {name: a, command: [x], count: -1}\n", "apps[0].count: must be from 0 to 10000, got -1"),
    ("apps:\n  - {name: a, command: [x], count: 99999}\n", "apps[0].count: must be from 0 to 10000, got 99999"),
    ("apps: {name: a}\n", "t.yaml:6: apps: expected a list, got a mapping"),
    ("policies:\n  backoff_factor: 0.5\n", "t.yaml:7: policies.backoff_factor: must be at least 1"),
    ("policies:\n  deploy_strategy: random\n", "policies.deploy_strategy: 'random' is not one of serial, parallel"),
    ("api:\n  port: 70000\n", "t.yaml:7: api.port: must be 0..65535"),
    ("api:\n  port: ${NOPE}\n", "t.yaml:7: api.port: environment variable NOPE is not set and has no default"),
    ("api:\n  token: hunter2\n", "t.yaml:7: api.token: secrets are never written in the YAML"),
    ("mesos:\n  secret: hunter2\n", "mesos: given twice"),
    ("kafka: 3\n", "t.yaml:6: kafka: expected a mapping, got '3'"),
])
def test_bad_input_names_line_and_field(extra, expected):
    found = problems(extra)
    assert any(expected in p for p in found), found


def test_structure_problems_are_all_reported_at_once():
    found = problems("kafka:\n  brokerz: 3\n  cpus: lots\npolicies:\n  nope: 1\n")
    assert len(found) == 3, found


def test_bad_master_zookeeper_and_name():
    base = "name: Kafka!\nmesos:\n  master: localhost\nzookeeper:\n  connect: nohost\n  root: kmf\n"
    found = "\n".join(problems("", base=base))
    for expected in ("t.yaml:1: name:", "t.yaml:3: mesos.master:", "t.yaml:5: zookeeper.connect:",
                     "t.yaml:6: zookeeper.root:"):
        assert expected in found


def test_missing_required_sections():
    assert problems("", base="name: kafka\n") == [
        "t.yaml:1: mesos: is required", "t.yaml:1: zookeeper: is required"]


@pytest.mark.parametrize("text, expected", [
    ("", "the document is empty"),
    ("a: [\n", "not valid YAML"),
    (b"\xff\xfe", "not UTF-8"),
    ("- 1\n- 2\n", "document: expected a mapping"),
    ("a: &a [1,1,1,1,1,1,1,1,1]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
     "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n", "too large or too deep"),
])
def test_documents_that_are_not_configs(text, expected):
    with pytest.raises(ConfigError, match=expected):
        load_text(text, "t.yaml", env=ENV)


def test_secret_files_checked_only_when_asked(tmp_path):
    extra = f"api:\n  token_file: {tmp_path}/missing\n"
    assert load(extra).api.token_file.endswith("missing")
    with pytest.raises(ConfigError, match="api.token_file: .* does not exist or is not readable"):
        load_text(BASE + extra, "t.yaml", env=ENV, check_files=True)


def test_config_id_ignores_key_order():
    a = load("kafka:\n  brokers: 3\n  cpus: 2\n")
    b = load_text("zookeeper: {connect: '127.0.0.1:2181'}\nkafka: {cpus: 2, brokers: 3}\n"
                  "mesos: {master: 'zk://127.0.0.1:2181/mesos'}\nname: kafka\n", "u.yaml", env=ENV)
    assert config.config_id(a) == config.config_id(b)
    assert config.config_id(a) != config.config_id(load("kafka:\n  cpus: 3\n"))


values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20)


@settings(max_examples=150, deadline=None)
@given(doc=st.dictionaries(st.sampled_from(["name", "mesos", "zookeeper", "kafka", "apps", "api",
                                            "policies", "x"]), values, max_size=6))
def test_fuzzed_documents_never_crash(doc):
    try:
        load_text(yaml.safe_dump(doc), "f.yaml", env=ENV)
    except ConfigError as exc:
        assert exc.problems and all(str(p).startswith("f.yaml") for p in exc.problems)


@settings(max_examples=150, deadline=None)
@given(raw=st.binary(max_size=200) | st.text(max_size=200))
def test_fuzzed_bytes_never_crash(raw):
    try:
        load_text(raw, "f.yaml", env=ENV)
    except ConfigError as exc:
        assert exc.problems


def test_json_round_trip_and_stored_garbage():
    spec = load("apps:\n  - {name: wc, command: ['-m', 'x'], env: {A: b}}\n")
    assert config.spec_from_json(json.loads(json.dumps(config.spec_to_json(spec)))) == spec
    with pytest.raises(ConfigError, match="cannot be read back"):
        config.spec_from_json({"name": "x"})


def test_rebalance_settings_and_retired_ids_are_checked():
    spec = load("kafka: {brokers: 4, retired: [3], rebalance: {throttle_mb_s: 0, max_moves: 5}}\n")
    assert spec.kafka.broker_ids == (0, 1, 2, 4) and spec.kafka.rebalance.max_moves == 5
    assert any("kafka.retired" in p and "KRaft controllers" in p
               for p in problems("kafka: {brokers: 4, retired: [1]}\n"))
    assert any("kafka.retired" in p and "distinct" in p for p in problems("kafka: {brokers: 4, retired: [5, 5]}\n"))
    assert any("kafka.rebalance.max_moves" in p for p in problems("kafka: {rebalance: {max_moves: 0}}\n"))
    assert any("kafka.rebalance.throttle_mb_s" in p for p in problems("kafka: {rebalance: {throttle_mb_s: -1}}\n"))
    assert load("kafka: {mode: zookeeper, version: 3.9.2, brokers: 3, retired: [0]}\n").kafka.broker_ids == (1, 2, 3)
    changed = config.check_update(spec, load("kafka: {brokers: 4}\n"))
    assert any("kafka.retired" in c and "kmf pod decommission" in c for c in changed), changed


def test_a_stored_config_as_kmf_prints_it_loads_back_to_the_same_spec():
    """`kmf config target` prints the stored JSON form (placement as {field, operator, value});
    an operator edits that file and gives it to `kmf config update`."""
    import yaml
    from config import spec_to_json
    text = BASE + "kafka:\n  placement: ['hostname:UNIQUE', 'zone:GROUP_BY:3']\napps:\n" \
                  "  - {name: a, command: ['-c', 'x'], placement: [[rack, LIKE, 'r-.*']]}\n"
    spec = load_text(text, "t.yaml", env={})
    assert load_text(yaml.safe_dump(spec_to_json(spec)), "target.yaml", env={}) == spec


def test_a_placement_mapping_with_unknown_keys_is_named():
    text = BASE + "kafka:\n  placement: [{field: hostname, op: UNIQUE}]\n"
    with pytest.raises(ConfigError, match=r"kafka\.placement\[0\]"):
        load_text(text, "t.yaml", env={})
