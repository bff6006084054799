"""`kmf config update` with broker overrides on 3 brokers, judged by Kafka's own describe_configs on
every broker and the master's task ids: a changed live value is set on every broker without a
restart; a value Kafka refuses refuses the whole update (non-zero exit, Kafka's reason, no broker
changed, the stored target unchanged); a setting Kafka cannot change live (log.retention.hours),
and a removed live override, roll the brokers and are then what every broker shows."""
from __future__ import annotations

import json

import pytest
import yaml

from tests.helpers.kafka_views import broker_configs
from tests.helpers.kafka_views import broker_values as values
from tests.helpers.wait import wait_for
from tests.helpers.operator_cli import kmf

pytestmark = [pytest.mark.timeout(600), pytest.mark.kafka]

BROKERS = ("broker-0", "broker-1", "broker-2")


def master_task_ids(env) -> dict[str, str]:
    """Running broker task ids, as the Mesos master reports them."""
    out = {}
    for fw in env.lm.get("/master/state")["frameworks"]:
        for task in fw.get("tasks", []):
            if task["name"] in BROKERS and task["state"] == "TASK_RUNNING":
                out[task["name"]] = task["id"]
    return out


def test_live_settings_are_applied_on_every_broker_refused_whole_or_rolled(kmf_env, tmp_path):
    env = kmf_env(agents=3)
    config = env.config(brokers=3)
    config["kafka"]["overrides"]["log.retention.ms"] = "3600000"
    s = env.start_scheduler(config=config)
    s.wait_deployed()
    boot = s.get("/v1/endpoints/broker")["bootstrap_servers"]
    before = master_task_ids(env)
    assert sorted(before) == list(BROKERS), before
    assert values(boot, "log.retention.ms") == {0: "3600000", 1: "3600000", 2: "3600000"}

    # 1. a live value: every broker shows it, no broker restarted
    doc = yaml.safe_load(s.path.read_text())
    doc["kafka"]["overrides"]["log.retention.ms"] = "7200000"
    path = tmp_path / "live.yaml"
    path.write_text(yaml.safe_dump(doc))
    out = kmf(s.url, "config", "update", str(path), "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    reply = json.loads(out.stdout)
    assert reply["restart"] is False and "live_error" not in reply, reply
    assert reply["live_applied"] == {str(b): {"log.retention.ms": "7200000"} for b in range(3)}, reply
    assert values(boot, "log.retention.ms") == {0: "7200000", 1: "7200000", 2: "7200000"}
    assert master_task_ids(env) == before  # applied live: no restart
    target = s.get("/v1/config/target")
    assert target["config"]["kafka"]["overrides"]["log.retention.ms"] == "7200000"

    # 2. a value Kafka refuses (num.io.threads must be at least 1): the whole update is refused,
    # with Kafka's reason; the live value beside it is not left on any broker; the target is as before
    refused = json.loads(json.dumps(doc))
    refused["kafka"]["overrides"]["log.retention.ms"] = "1800000"
    refused["kafka"]["overrides"]["num.io.threads"] = "0"
    path = tmp_path / "refused.yaml"
    path.write_text(yaml.safe_dump(refused))
    out = kmf(s.url, "config", "update", str(path))
    assert out.returncode != 0, out.stdout + out.stderr
    assert "num.io.threads" in out.stderr and "at least 1" in out.stderr, out.stderr
    assert "broker 0" in out.stderr, out.stderr
    assert values(boot, "log.retention.ms") == {0: "7200000", 1: "7200000", 2: "7200000"}
    assert all(v != "0" for v in values(boot, "num.io.threads").values())
    assert s.get("/v1/config/target") == target
    assert master_task_ids(env) == before

    # 2b. a live value in an update the core refuses (a volume cannot shrink): Kafka is not touched
    unsafe = json.loads(json.dumps(doc))
    unsafe["kafka"]["overrides"]["log.retention.ms"] = "1800000"
    unsafe["kafka"]["disk_mb"] = 100
    path = tmp_path / "unsafe.yaml"
    path.write_text(yaml.safe_dump(unsafe))
    out = kmf(s.url, "config", "update", str(path))
    assert out.returncode != 0 and "cannot shrink" in out.stderr, out.stdout + out.stderr
    assert values(boot, "log.retention.ms") == {0: "7200000", 1: "7200000", 2: "7200000"}
    assert s.get("/v1/config/target") == target

    # 3. log.retention.hours is not dynamic in Kafka, and removing the live log.retention.ms
    # override cannot be done live either: the brokers roll, and then show both
    rolled = json.loads(json.dumps(doc))
    rolled["kafka"]["overrides"]["log.retention.hours"] = "100"
    del rolled["kafka"]["overrides"]["log.retention.ms"]
    path = tmp_path / "rolled.yaml"
    path.write_text(yaml.safe_dump(rolled))
    out = kmf(s.url, "config", "update", str(path), "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    reply = json.loads(out.stdout)
    assert reply["restart"] is True and reply["live"] == {"log.retention.ms": None}, reply

    def all_restarted():
        now = master_task_ids(env)
        done = len(now) == 3 and all(now[p] != before[p] for p in BROKERS)
        return now if done and s.plan("update").get("status") == "COMPLETE" else None
    after = wait_for(all_restarted, timeout=400, interval=2.0, what="every broker restarted by the roll")
    assert set(after.values()).isdisjoint(before.values())
    configs = wait_for(lambda: c if len(c := broker_configs(boot)) == 3 else None, timeout=60,
                       what="3 brokers in the metadata")
    assert {b: c["log.retention.hours"].value for b, c in configs.items()} == {0: "100", 1: "100", 2: "100"}
    # no dynamic value left: log.retention.ms is Kafka's default again (derived from the hours)
    assert {b: c["log.retention.ms"].value for b, c in configs.items()} == {0: None, 1: None, 2: None}
