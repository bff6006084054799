"""The ExecutorInfo of a task when nothing of kmf is on the agents: the kmf bundle and the Kafka
archive in CommandInfo.uris (extract, cache), a shell command that points PYTHONPATH and
KMF_KAFKA_CACHE into $MESOS_SANDBOX, and a fingerprint that follows the archives' content, not
the scheduler's address."""
from __future__ import annotations

import attrs
import pytest

from mesoslib.resources import Resources
from scheduler.core.artifacts import Artifact, Served
from scheduler.core.decide import initial_state
from scheduler.core.pods import desired_pods
from scheduler.core.taskinfo import executor_info, fingerprint
from tests.helpers.core_kit import BASE, Scenario, spec

pytestmark = pytest.mark.timeout(60)

APPS = """\
apps:
  - {name: wc, count: 1, cpus: 0.5, mem_mb: 256, command: ['-m', 'streams.wordcount']}
  - {name: wcj, count: 1, cpus: 0.5, mem_mb: 256, runtime: java, command: ['Demo', '{properties}']}
"""
BUNDLE = "kmf-0.1.0-py3.11-linux-x86_64"


def served(base: str = "http://10.0.0.5:8080", bundle_sha: str = "a" * 64, kafka_sha: str = "b" * 64) -> Served:
    return Served(Artifact(f"{base}/v1/artifacts/{bundle_sha}/{BUNDLE}.tar.gz", BUNDLE, bundle_sha),
                  {"4.3.1": Artifact(f"{base}/v1/artifacts/{kafka_sha}/kafka-4.3.1.tar.gz", "kafka", kafka_sha)})


def pods(s):
    return {p.name: p for p in desired_pods(s)}


def test_served_broker_fetches_the_bundle_and_kafka_and_runs_from_the_sandbox():
    s = spec()
    info = executor_info(s, pods(s)["broker-0"], "e", Resources(), served())
    cmd = info["command"]
    assert [u["value"] for u in cmd["uris"]] == [
        f"http://10.0.0.5:8080/v1/artifacts/{'a' * 64}/{BUNDLE}.tar.gz",
        f"http://10.0.0.5:8080/v1/artifacts/{'b' * 64}/kafka-4.3.1.tar.gz"]
    assert all(u["extract"] and u["cache"] and not u["executable"] for u in cmd["uris"])
    assert cmd["shell"] is True
    assert cmd["value"] == (f'export PYTHONPATH="$MESOS_SANDBOX/{BUNDLE}" KMF_KAFKA_CACHE="$MESOS_SANDBOX/kafka" '
                            "&& exec python3 -m executor")
    names = {v["name"] for v in cmd["environment"]["variables"]}
    assert names == {"KMF_POD"}  # no path of the scheduler's machine reaches the agent


def test_python_app_gets_only_the_bundle_java_app_gets_kafka_too():
    s = spec(BASE.split("apps:")[0] + APPS)
    py = executor_info(s, pods(s)["wc-0"], "e", Resources(), served())["command"]
    java = executor_info(s, pods(s)["wcj-0"], "e", Resources(), served())["command"]
    assert [u["value"].rsplit("/", 1)[1] for u in py["uris"]] == [f"{BUNDLE}.tar.gz"]
    assert "KMF_KAFKA_CACHE" not in py["value"] and "PYTHONPATH" in py["value"]
    assert [u["value"].rsplit("/", 1)[1] for u in java["uris"]] == [f"{BUNDLE}.tar.gz", "kafka-4.3.1.tar.gz"]


def test_urls_mode_takes_the_users_repository():
    s = spec(BASE + """executor:
  artifacts: urls
  python: /usr/bin/python3.11
  bundle_uri: https://repo.example/kmf/kmf-0.2.0-py3.11-linux-x86_64.tar.gz
  kafka_uris: {4.3.1: 'https://repo.example/kafka/kafka-4.3.1.tar.gz'}
""")
    cmd = executor_info(s, pods(s)["broker-1"], "e", Resources(), served())["command"]
    assert [u["value"] for u in cmd["uris"]] == ["https://repo.example/kmf/kmf-0.2.0-py3.11-linux-x86_64.tar.gz",
                                                 "https://repo.example/kafka/kafka-4.3.1.tar.gz"]
    assert '"$MESOS_SANDBOX/kmf-0.2.0-py3.11-linux-x86_64"' in cmd["value"]
    assert cmd["value"].endswith("exec /usr/bin/python3.11 -m executor")


def test_preinstalled_is_the_old_command_with_paths():
    s = spec(BASE + "executor: {artifacts: preinstalled, python: /opt/py/bin/python, pythonpath: /opt/kmf, "
                    "kafka_cache: /opt/kafka}\n")
    cmd = executor_info(s, pods(s)["broker-0"], "e", Resources(), served())["command"]
    assert "uris" not in cmd and cmd["shell"] is False
    assert cmd["arguments"] == ["/opt/py/bin/python", "-m", "executor"]
    assert {v["name"]: v["value"] for v in cmd["environment"]["variables"]} == {
        "KMF_POD": "broker-0", "PYTHONPATH": "/opt/kmf", "KMF_KAFKA_CACHE": "/opt/kafka",
        "KMF_PYTHON": "/opt/py/bin/python"}


def test_launches_of_the_core_carry_the_uris_of_its_state():
    sim = Scenario(spec())
    sim.state = attrs.evolve(sim.state, served=served())
    sim.send.subscribed()
    sim.run_all_ready()
    launched = [t["info"] for t in sim.tasks.values()]
    assert {t["name"] for t in launched} >= {"broker-0", "broker-1", "broker-2", "wc-0", "wc-1"}
    for t in launched:
        uris = [u["value"].rsplit("/", 1)[1] for u in t["executor"]["command"]["uris"]]
        assert uris == ([f"{BUNDLE}.tar.gz", "kafka-4.3.1.tar.gz"] if t["name"].startswith("broker")
                        else [f"{BUNDLE}.tar.gz"]), t["name"]
    # the recorded fingerprint is the one the update plan compares against: no roll by itself
    from scheduler.core.decide import desired_fingerprints
    wanted = desired_fingerprints(sim.state, desired_pods(sim.state.spec))
    assert all(sim.state.tasks[p].fingerprint == f for p, f in wanted.items() if f is not None)


def test_fingerprint_follows_the_content_not_the_address():
    s = spec()
    state = initial_state(s, "c", None, {}, {})
    from scheduler.core.artifacts import identity
    from scheduler.core.taskinfo import task_data
    pod = pods(s)["wc-0"]
    data = task_data(s, pod, None, state.properties, (), "b:1")
    here = fingerprint(pod, data, identity(s, pod, served("http://10.0.0.5:8080")))
    other_host = fingerprint(pod, data, identity(s, pod, served("http://10.0.0.6:31005")))
    new_bundle = fingerprint(pod, data, identity(s, pod, served(bundle_sha="c" * 64)))
    assert here == other_host != new_bundle
    # nothing fetched (preinstalled): the fingerprint kmf computed before it fetched anything
    assert fingerprint(pod, data, "") == fingerprint(pod, data)
    pre = spec(BASE + "executor: {artifacts: preinstalled}\n")
    assert fingerprint(pod, data, identity(pre, pod, served())) == fingerprint(pod, data)


def test_each_path_points_at_its_own_archive_whatever_is_missing():
    s = spec()
    only_kafka = Served(None, served().kafka)
    cmd = executor_info(s, pods(s)["broker-0"], "e", Resources(), only_kafka)["command"]
    assert cmd["value"] == 'export KMF_KAFKA_CACHE="$MESOS_SANDBOX/kafka" && exec python3 -m executor'
    assert [u["value"].rsplit("/", 1)[1] for u in cmd["uris"]] == ["kafka-4.3.1.tar.gz"]
    nothing = executor_info(s, pods(s)["broker-0"], "e", Resources(), None)["command"]
    assert nothing["value"] == "exec python3 -m executor" and nothing["uris"] == []
