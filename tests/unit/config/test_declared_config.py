"""Declared topics and users in the YAML: structure, defaults and every bad value named by its path."""
from __future__ import annotations

import pytest

import config
from config import ConfigError, load_text
from config.declared import authorizer_properties, read_password

BASE = """\
name: kafka
mesos:
  master: zk://127.0.0.1:2181/mesos
zookeeper:
  connect: 127.0.0.1:2181
"""
SASL = """\
kafka:
  sasl: {enabled: true, authorizer: true}
"""


def load(extra: str, env=None, check_files=False):
    return load_text(BASE + extra, "t.yaml", env=env or {}, check_files=check_files)


def problems(extra: str, **kw) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(extra, **kw)
    return [str(p) for p in info.value.problems]


def test_topics_and_users_load_with_defaults():
    spec = load(SASL + """\
topics:
  - name: orders
    partitions: 6
    configs: {retention.ms: "86400000", cleanup.policy: compact}
  - name: audit
users:
  - name: alice
    password_file: /run/secrets/alice
    acls:
      - {resource_type: topic, name: orders, operations: [write, describe]}
      - {resource_type: group, name: app-, pattern: prefixed, operations: [read], permission: deny}
      - {resource_type: cluster, operations: [idempotent_write]}
    quotas: {producer_byte_rate: 1048576, request_percentage: 50}
""")
    orders, audit = spec.topics
    assert (orders.partitions, orders.replication, orders.configs["cleanup.policy"]) == (6, None, "compact")
    assert (audit.partitions, audit.configs) == (1, {})
    alice = spec.users[0]
    assert [a.operations for a in alice.acls] == [("write", "describe"), ("read",), ("idempotent_write",)]
    assert alice.acls[1].pattern == "prefixed" and alice.acls[1].permission == "deny"
    assert alice.acls[2].resource_name == "kafka-cluster"
    assert alice.quotas.values() == {"producer_byte_rate": 1048576.0, "request_percentage": 50.0}
    # the stored target config reads back the same
    assert config.spec_from_json(config.spec_to_json(spec)) == spec


@pytest.mark.parametrize("extra, expected", [
    ("topics:\n  - {name: a}\n  - {name: b}\n  - {name: c, partitions: 0}\n",
     "t.yaml:11: topics[2].partitions: must be >= 1"),
    ("topics:\n  - {name: 'bad name'}\n", "topics[0].name: 'bad name' is not a valid topic name"),
    ("topics:\n  - {name: __consumer_offsets}\n", "topics[0].name: '__consumer_offsets': names starting with __"),
    ("topics:\n  - {name: a}\n  - {name: a}\n", "topics[1].name: 'a' is declared twice"),
    ("topics:\n  - {name: a, replication: 4}\n", "topics[0].replication: must be between 1 and the broker count 3"),
    ("topics:\n  - {name: a, partitions: many}\n", "topics[0].partitions: expected a whole number, got 'many'"),
    ("topics:\n  - {name: a, configs: {retention.ms: [1]}}\n", "topics[0].configs.retention.ms: expected a single value"),
])
def test_bad_topics_are_named_by_path(extra, expected):
    found = problems(SASL + extra)
    assert any(expected in p for p in found), found


@pytest.mark.parametrize("user, expected", [
    ("{name: bob, password: hunter22}", "users[0].password: secrets are never written in the YAML"),
    ("{name: bob}", "users[0].password_file: give exactly one of password_file and password_env"),
    ("{name: bob, password_file: /f, password_env: E}", "users[0].password_file: give exactly one"),
    ("{name: 'b b', password_env: E}", "users[0].name: 'b b' must be 1 to 128 letters"),
    ("{name: bob, password_env: E, acls: [{resource_type: topic, operations: [fly]}]}",
     "users[0].acls[0].operations[0]: 'fly' is not one of all, read, write"),
    ("{name: bob, password_env: E, acls: [{resource_type: table, name: t, operations: [read]}]}",
     "users[0].acls[0].resource_type: 'table' is not one of topic, group, cluster, transactional_id"),
    ("{name: bob, password_env: E, acls: [{resource_type: topic, operations: [read]}]}",
     "users[0].acls[0].name: a topic ACL needs a name"),
    ("{name: bob, password_env: E, acls: [{resource_type: topic, name: t, operations: []}]}",
     "users[0].acls[0].operations: must name at least one operation"),
    ("{name: bob, password_env: E, acls: [{resource_type: cluster, name: c, operations: [alter]}]}",
     "users[0].acls[0].name: the cluster resource is 'kafka-cluster'"),
    ("{name: bob, password_env: E, acls: [{resource_type: topic, name: t, operations: [read], permission: maybe}]}",
     "users[0].acls[0].permission: 'maybe' is not one of allow, deny"),
    ("{name: bob, password_env: E, quotas: {producer_byte_rate: 0}}",
     "users[0].quotas.producer_byte_rate: must be >= 1"),
    ("{name: bob, password_env: E, quotas: {request_percentage: -1}}",
     "users[0].quotas.request_percentage: must be more than 0"),
])
def test_bad_users_are_named_by_path(user, expected):
    found = problems(SASL + f"users:\n  - {user}\n")
    assert any(expected in p for p in found), found


def test_users_need_sasl_and_acls_need_the_authorizer():
    assert any("users: SCRAM users need kafka.sasl.enabled: true" in p
               for p in problems("users:\n  - {name: bob, password_env: E}\n"))
    no_authorizer = "kafka:\n  sasl: {enabled: true}\n"
    found = problems(no_authorizer + "users:\n  - {name: bob, password_env: E, acls: "
                                     "[{resource_type: topic, name: t, operations: [read]}]}\n")
    assert any("users[0].acls: ACLs need Kafka's authorizer: set kafka.sasl.authorizer: true" in p for p in found)
    assert any("kafka.sasl.authorizer: needs kafka.sasl.enabled: true" in p
               for p in problems("kafka:\n  sasl: {authorizer: true}\n"))


def test_the_authorizer_is_refused_in_zookeeper_mode_and_its_properties_are_kmfs():
    zk = "kafka:\n  mode: zookeeper\n  version: '3.9.2'\n  sasl: {enabled: true, authorizer: true}\n"
    assert any("kafka.sasl.authorizer: is supported in KRaft mode only" in p for p in problems(zk))
    over = ("kafka:\n  sasl: {enabled: true, authorizer: true}\n"
            "  overrides: {super.users: 'User:mallory'}\n")
    assert any("kafka.overrides.super.users: kmf sets this itself" in p for p in problems(over))
    props = authorizer_properties("kraft", True, True)
    assert props == {"authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
                     "super.users": "User:ANONYMOUS", "allow.everyone.if.no.acl.found": "false"}
    assert authorizer_properties("kraft", True, False) == {}


def test_passwords_are_checked_with_files_and_never_shown(tmp_path, monkeypatch):
    monkeypatch.setenv("BOB", "bob-passw0rd")  # the scheduler's own environment
    good = tmp_path / "alice"
    good.write_text("s3cret-pass\n")
    spec = load(SASL + f"users:\n  - {{name: alice, password_file: {good}}}\n  - {{name: bob, password_env: BOB}}\n",
                env={"BOB": "bob-passw0rd"}, check_files=True)
    assert read_password(spec.users[0]) == "s3cret-pass"
    assert read_password(spec.users[1], {"BOB": "bob-passw0rd"}) == "bob-passw0rd"
    short = tmp_path / "short"
    short.write_text("abc")
    found = problems(SASL + f"users:\n  - {{name: alice, password_file: {short}}}\n"
                            f"  - {{name: bob, password_file: {tmp_path / 'none'}}}\n", check_files=True)
    assert any("users[0].password_file: the password in password_file" in p and "8 to 1024" in p for p in found)
    assert any("users[1].password_file: cannot read password_file" in p for p in found)
    assert not any("abc" in p for p in found)


def test_an_update_changing_a_declared_topics_replication_is_refused():
    old = load(SASL + "topics:\n  - {name: a}\n")
    new = load(SASL + "topics:\n  - {name: a, replication: 2}\n")
    assert any("topics.a.replication: 3 → 2" in r for r in config.check_update(old, new))
    assert config.check_update(old, load(SASL + "topics:\n  - {name: a, partitions: 3}\n")) == []
    # more brokers raise the service's default replication: declared topics without one are not refused
    more = load(SASL.replace("kafka:\n", "kafka:\n  brokers: 5\n") + "topics:\n  - {name: a}\n")
    fewer = load(SASL.replace("kafka:\n", "kafka:\n  brokers: 2\n") + "topics:\n  - {name: a}\n")
    assert config.check_update(fewer, more) == []
    # leaving an explicit replication out is not a change either
    assert config.check_update(new, load(SASL + "topics:\n  - {name: a}\n")) == []
