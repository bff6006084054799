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
    assert spec.mesos.secret_env == "KMF_FRAMEWORK_SECRET" and spec.mesos.secret_file is None
    assert spec.api.port == 0 and spec.executor.artifacts == "served"
    assert [(t.name, t.partitions) for t in spec.topics] == [("streams-plaintext-input", 6),
                                                             ("streams-wordcount-output", 6)]


def test_marathon_app_runs_one_scheduler_with_a_health_check_on_its_api_port():
    app = json.loads((ROOT / "marathon.json").read_text())
    # nothing of kmf on the agent: the bundle is fetched and run by the agent's python3
    assert "exec python3 -m scheduler --config" in app["cmd"] and app["instances"] == 1
    assert 'PYTHONPATH="$MESOS_SANDBOX/kmf-' in app["cmd"] and "/opt/kmf" not in json.dumps(app)
    fetched = {f["uri"].rsplit("/", 1)[1]: f for f in app["fetch"]}
    bundle = next(f for name, f in fetched.items() if name.startswith("kmf-"))
    # extracted, and not through the cache: a cached archive is not kept in the sandbox, and the
    # scheduler serves the bundle from its sandbox to the executors
    assert bundle["extract"] is True and bundle["cache"] is False
    assert fetched["kafka-4.3.1.tar.gz"]["extract"] is False
    assert app["env"]["KMF_FRAMEWORK_SECRET"] == {"secret": "framework-secret"}
    assert "framework-secret" in app["secrets"]
    check = app["healthChecks"][0]
    assert check["path"] == "/v1/health" and check["portIndex"] == 0
    # never two schedulers of one service racing during an upgrade
    assert app["upgradeStrategy"] == {"minimumHealthCapacity": 0, "maximumOverCapacity": 0}
    assert app["portDefinitions"][0]["port"] == 0
