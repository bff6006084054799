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


def test_marathon_streams_app_finds_kmfs_brokers_at_start_and_runs_word_count():
    from executor.runtime.tools import WORDCOUNT_MAIN
    app = json.loads((ROOT / "marathon-streams-app.json").read_text())
    scheduler = json.loads((ROOT / "marathon.json").read_text())
    cmd = app["cmd"]
    # the launcher from the fetched kmf bundle reads the brokers, then execs Kafka Streams' own demo
    assert 'exec python3 -m kmf.bootstrap_env --api "$KMF_API"' in cmd and "KMF_API" in app["env"]
    assert " -- java " in cmd and cmd.endswith(f"{WORDCOUNT_MAIN} {{properties}}")
    fetched = {f["uri"].rsplit("/", 1)[1]: f for f in app["fetch"]}
    bundle = next(f["uri"] for f in scheduler["fetch"] if f["uri"].rsplit("/", 1)[1].startswith("kmf-"))
    assert bundle in {f["uri"] for f in app["fetch"]}
    assert f'PYTHONPATH="$MESOS_SANDBOX/{bundle.rsplit("/", 1)[1].removesuffix(".tar.gz")}"' in cmd
    # the Kafka runtime is extracted (kafka/<version>/libs) and the classpath names that version
    kafka = next(name for name in fetched if name.startswith("kafka-"))
    version = kafka.removeprefix("kafka-").removesuffix(".tar.gz")
    assert fetched[kafka]["extract"] is True
    assert f'-cp "$MESOS_SANDBOX/kafka/{version}/libs/*"' in cmd
