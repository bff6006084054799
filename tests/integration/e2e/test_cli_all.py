"""Every remaining API endpoint and CLI command against a running service: topics, configurations,
properties, pod replace, plan restart and force-complete, config target, endpoints, uninstall."""
from __future__ import annotations

import json

import pytest

from tests.helpers.wait import wait_for
from tests.helpers.operator_cli import SLEEPER, kmf

pytestmark = [pytest.mark.timeout(300), pytest.mark.kafka]


def test_remaining_endpoints_and_commands(kmf_env):
    env = kmf_env(agents=2)
    s = env.start_scheduler(brokers=1, apps=[SLEEPER])
    s.wait_deployed()
    api = s.url

    # topics through the CLI
    assert kmf(api, "topic", "create", "cli-topic", "--partitions", "2", "--replication", "1",
               "--config", "retention.ms=60000").returncode == 0
    assert "cli-topic" in kmf(api, "topic", "list").stdout.split()
    desc = json.loads(kmf(api, "topic", "describe", "cli-topic", "--json").stdout)
    assert len(desc["partitions"]) == 2 and desc["offline_partitions"] == 0
    code, doc = s.request("PUT", "/v1/topics/cli-topic/config", {"retention.ms": "120000"})
    assert code == 200, doc
    assert kmf(api, "topic", "create", "cli-topic").returncode == 1  # exists: refused
    assert kmf(api, "topic", "delete", "cli-topic").returncode == 0
    assert kmf(api, "topic", "describe", "nope-topic").returncode == 1

    # configurations and properties
    ids = s.get("/v1/configurations")
    target = s.get("/v1/config/target")
    assert target["id"] in ids and s.get(f"/v1/configurations/{target['id']}")["name"] == env.name
    assert len(s.get("/v1/state/properties")["cluster_id"]) == 22
    out = kmf(api, "config", "target")
    assert out.returncode == 0 and f"# config {target['id']}" in out.stdout
    assert kmf(api, "endpoints").stdout.split() == ["broker", "metrics"]

    # replace a stream instance: it runs on the other agent now (a fresh start, same pod)
    before = s.pod("sleeper-0")
    assert kmf(api, "pod", "replace", "sleeper-0").returncode == 0
    wait_for(lambda: s.pod("sleeper-0")["task_id"] != before["task_id"] and s.pod("sleeper-0")["ready"],
             timeout=60, what="sleeper-0 replaced")
    # restart one step of the deploy plan (a pod restart in place), force-complete a step
    before = s.pod("broker-0")["task_id"]
    assert kmf(api, "plan", "restart", "deploy", "--step", "broker-0").returncode == 0
    wait_for(lambda: s.pod("broker-0")["task_id"] != before and s.pod("broker-0")["ready"], timeout=90,
             what="broker-0 restarted")
    assert kmf(api, "plan", "force-complete", "deploy", "--step", "sleeper-0").returncode == 0
    assert kmf(api, "plan", "restart", "deploy").returncode == 1  # whole plans are not restarted
    assert kmf(api, "plan", "show").returncode == 0

    # uninstall from the CLI
    assert kmf(api, "uninstall", "--yes").returncode == 0
    assert s.proc.wait(timeout=120) == 0
