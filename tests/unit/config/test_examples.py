"""The example configs load, and the Marathon app definition runs the scheduler as intended."""
from __future__ import annotations

import json
from pathlib import Path

import config

ROOT = Path(__file__).resolve().parents[3] / "config"


def test_cluster_example_loads_with_defaults_from_env():
    spec = config.load_file(ROOT / "cluster.yaml", env={})
    assert spec.kafka.brokers == 5 and spec.mesos.master == "zk://master.mesos:2181/mesos"
    assert [str(c) for c in spec.kafka.placement] == ["hostname:UNIQUE", "zone:GROUP_BY:3"]
    assert spec.mesos.secret_file == "./framework-secret" and spec.api.port == 0


def test_marathon_app_runs_one_scheduler_with_a_health_check_on_its_api_port():
    app = json.loads((ROOT / "marathon.json").read_text())
    assert "python\" -m scheduler --config" in app["cmd"] and app["instances"] == 1
    check = app["healthChecks"][0]
    assert check["path"] == "/v1/health" and check["portIndex"] == 0
    # never two schedulers of one service racing during an upgrade
    assert app["upgradeStrategy"] == {"minimumHealthCapacity": 0, "maximumOverCapacity": 0}
    assert app["portDefinitions"][0]["port"] == 0
