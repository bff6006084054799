"""Declared topics and users end to end: a KRaft broker with SASL/SCRAM and Kafka's
StandardAuthorizer; a topic and two users (one with a write ACL and quotas, one with no ACL)
added to the YAML and applied with `kmf config update`, checked in Kafka's own view (AdminClient
as the super user, Kafka's ConfigCommand for the quotas); the user with the ACL writes, the one
without is refused; the topic removed from the YAML is deleted only with --yes-delete; no
password anywhere kmf writes or shows things."""
from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from scheduler.shell.kafka_tools import KafkaTools
from tests.helpers.fixtures_scheduler import SchedulerProc
from tests.helpers.fixtures_zookeeper import node_texts, zk_session
from tests.helpers.wait import wait_for

pytestmark = [pytest.mark.timeout(420), pytest.mark.kafka]

ALICE_PW, BOB_PW = "alice-Pa55word-9e1", "bob-Pa55word-4c7"
MB = 1048576


def kmf(s: SchedulerProc, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kmf", *argv, "--api", s.url],
                          capture_output=True, text=True, timeout=120, env=os.environ.copy())


def update(s: SchedulerProc, cfg: dict, path: Path, *flags: str) -> subprocess.CompletedProcess:
    path.write_text(yaml.safe_dump(cfg))
    return kmf(s, "config", "update", str(path), *flags)


def admin(boot: str):
    from confluent_kafka.admin import AdminClient
    return AdminClient({"bootstrap.servers": boot, "log_level": 0})


def produce(conf: dict, topic: str, n: int = 10) -> list:
    """Delivery errors of `n` records (None for each one Kafka took)."""
    from confluent_kafka import Producer
    reports: list = []
    p = Producer({**conf, "acks": "all", "message.timeout.ms": 15000, "log_level": 0})
    for i in range(n):
        p.produce(topic, str(i).encode(), on_delivery=lambda err, _msg: reports.append(err))
    p.flush(30)
    return reports


def test_declared_topic_and_users_reach_kafka_and_leave_only_when_confirmed(kmf_env, tmp_path, fresh_artifacts):
    from confluent_kafka.admin import (
        AclBindingFilter,
        AclOperation,
        AclPermissionType,
        ConfigResource,
        ConfigSource,
        ResourcePatternType,
        ResourceType,
    )
    env = kmf_env(agents=1)
    (tmp_path / "alice-pw").write_text(ALICE_PW + "\n")
    cfg = env.config(brokers=1, sasl={"enabled": True, "authorizer": True})
    s = SchedulerProc(env.base, cfg, len(env.schedulers), env={"BOB_PW": BOB_PW})
    env.schedulers.append(s)
    s.start()
    s.wait_deployed()
    assert s.get("/v1/declared")["state"] == "nothing declared"

    declared = copy.deepcopy(cfg)
    declared["topics"] = [{"name": "orders", "partitions": 3, "configs": {"retention.ms": "3600000"}}]
    declared["users"] = [
        {"name": "alice", "password_file": str(tmp_path / "alice-pw"),
         "acls": [{"resource_type": "topic", "name": "orders", "operations": ["write", "describe"]}],
         "quotas": {"producer_byte_rate": MB, "consumer_byte_rate": 2 * MB}},
        {"name": "bob", "password_env": "BOB_PW"},
    ]
    run = update(s, declared, tmp_path / "declared.yaml")
    assert run.returncode == 0, run.stderr
    run = kmf(s, "config", "declared", "--wait", "--wait-timeout", "120")
    assert run.returncode == 0, run.stdout + run.stderr
    print(run.stdout)

    # Kafka's view, as the super user (the PLAINTEXT listener's principal)
    ep = s.get("/v1/endpoints/broker")
    boot, sasl_boot = ep["bootstrap_servers"], ep["sasl"]["bootstrap_servers"]
    a = admin(boot)
    md = a.list_topics(timeout=10)
    assert len(md.topics["orders"].partitions) == 3
    res = ConfigResource(ResourceType.TOPIC, "orders")
    entry = a.describe_configs([res])[res].result(15)["retention.ms"]
    assert (entry.value, entry.source) == ("3600000", ConfigSource.DYNAMIC_TOPIC_CONFIG.value)
    creds = a.describe_user_scram_credentials().result(15)
    assert {"alice", "bob"} <= set(creds)
    anything = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None,
                                AclOperation.ANY, AclPermissionType.ANY)
    acls = {(b.principal, b.restype, b.name, b.resource_pattern_type, b.operation, b.permission_type)
            for b in a.describe_acls(anything).result(15)}
    assert acls == {("User:alice", ResourceType.TOPIC, "orders", ResourcePatternType.LITERAL, op,
                     AclPermissionType.ALLOW) for op in (AclOperation.WRITE, AclOperation.DESCRIBE)}
    # confluent-kafka 2.16 has no describe_client_quotas: Kafka's own ConfigCommand says it
    tools = KafkaTools(fresh_artifacts / "kafka-4.3.1.tar.gz", tmp_path / "tools")
    said = tools.run_tool("describe quotas", "kafka.admin.ConfigCommand", boot,
                          ["--describe", "--entity-type", "users", "--entity-name", "alice"])
    assert "producer_byte_rate=1048576.0" in said and "consumer_byte_rate=2097152.0" in said, said

    # alice writes (her ACL); bob, authenticated but without an ACL, is refused by Kafka
    sasl = {"bootstrap.servers": sasl_boot, "security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "SCRAM-SHA-512"}
    assert produce({**sasl, "sasl.username": "alice", "sasl.password": ALICE_PW}, "orders") == [None] * 10
    refused = produce({**sasl, "sasl.username": "bob", "sasl.password": BOB_PW}, "orders", 1)
    assert [e.name() for e in refused] == ["TOPIC_AUTHORIZATION_FAILED"], refused

    # a restarted scheduler finds Kafka as declared: it only sets the credentials again
    s.kill()
    s.start()
    run = kmf(s, "config", "declared", "--wait", "--wait-timeout", "120", "--json")
    assert run.returncode == 0, run.stdout + run.stderr
    assert sorted(json.loads(run.stdout)["applied"]) == [
        "set the SCRAM credential of user alice", "set the SCRAM credential of user bob"], run.stdout

    # changed in the YAML: one more partition, one topic setting for another, alice's describe ACL
    # gone (write implies describe) and her consumer quota with it
    changed = copy.deepcopy(declared)
    changed["topics"][0].update(partitions=4, configs={"max.message.bytes": "2000000"})
    changed["users"][0]["acls"][0]["operations"] = ["write"]
    changed["users"][0]["quotas"] = {"producer_byte_rate": MB}
    run = update(s, changed, tmp_path / "changed.yaml")
    assert run.returncode == 0, run.stderr
    run = kmf(s, "config", "declared", "--wait", "--wait-timeout", "120")
    assert run.returncode == 0, run.stdout + run.stderr
    assert len(a.list_topics(timeout=10).topics["orders"].partitions) == 4
    own = {k: e.value for k, e in a.describe_configs([res])[res].result(15).items()
           if e.source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value}
    assert own == {"max.message.bytes": "2000000"}
    assert {b.operation for b in a.describe_acls(anything).result(15)} == {AclOperation.WRITE}
    said = tools.run_tool("describe quotas", "kafka.admin.ConfigCommand", boot,
                          ["--describe", "--entity-type", "users", "--entity-name", "alice"])
    assert "producer_byte_rate=1048576.0" in said and "consumer_byte_rate" not in said, said
    assert produce({**sasl, "sasl.username": "alice", "sasl.password": ALICE_PW}, "orders", 1) == [None]

    # the topic and bob removed from the YAML: refused without the flag, nothing changed
    kept = copy.deepcopy(changed)
    kept["topics"], kept["users"] = [], kept["users"][:1]
    run = update(s, kept, tmp_path / "without-orders.yaml")
    assert run.returncode == 1, run.stdout + run.stderr
    assert "topic orders, user bob" in run.stderr and "--yes-delete" in run.stderr, run.stderr
    assert [t["name"] for t in s.get("/v1/config/target")["config"]["topics"]] == ["orders"]
    time.sleep(4)  # a reconciler pass would have run by now
    assert "orders" in a.list_topics(timeout=10).topics
    assert {"alice", "bob"} <= set(a.describe_user_scram_credentials().result(15))
    # with it, they go; alice stays
    run = update(s, kept, tmp_path / "without-orders.yaml", "--yes-delete")
    assert run.returncode == 0, run.stderr
    assert "deleting topic orders, user bob" in run.stdout, run.stdout
    wait_for(lambda: "orders" not in a.list_topics(timeout=10).topics, timeout=60, what="orders deleted")
    wait_for(lambda: s.get("/v1/declared")["deleting"] == {"topics": [], "users": []}, timeout=30,
             what="no deletion pending")
    # a broker learns of the deletion from the controller's metadata a moment later
    wait_for(lambda: "bob" not in a.describe_user_scram_credentials().result(15), timeout=30,
             what="bob's credential gone")
    assert "alice" in a.describe_user_scram_credentials().result(15)

    # no password where kmf writes or shows things
    texts = {"API": json.dumps([s.get(p) for p in ("/v1/config/target", "/v1/declared", "/v1/state/properties")]),
             "scheduler log": s.log(10**7),
             "sandbox logs": "\n".join(p.read_text(errors="replace") for p in env.lm.base.glob("**/*")
                                       if p.is_file() and p.name in ("stdout", "stderr"))}
    with zk_session(env.zk_connect) as zk:
        texts["zookeeper"] = "\n".join(node_texts(zk, f"{env.zk_root}/{env.name}"))
    for where, text in texts.items():
        for secret in (ALICE_PW, BOB_PW):
            assert secret not in text, f"a password leaked into the {where}"
