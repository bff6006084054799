"""End to end: nothing of kmf on the agent. The executor and Kafka reach each sandbox through
CommandInfo.uris and localmesos' fetcher, served by the scheduler; the executor runs under the plain
Debian /usr/bin/python3 (none of kmf's dependencies installed) from the extracted bundle. Proved
on the system's own view: /proc of the executor and the broker JVM, the sandbox's files, Kafka's
metadata; and a relaunch in place is fetched from the agent's cache (no new request reaches the
scheduler's artifact route)."""
from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

from kmfwire import artifacts as names
from tests.helpers.fixtures_scheduler import executor_pid_of, java_pid_of
from tests.helpers.wait import wait_for

pytestmark = [pytest.mark.timeout(420), pytest.mark.kafka, pytest.mark.slow]

CHECKOUT = Path(__file__).resolve().parents[3]
SYSTEM_PYTHON = "/usr/bin/python3"


def environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(e.decode(errors="replace").split("=", 1) for e in raw if b"=" in e)


def served_requests(log: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for name in re.findall(r"sent artifact (\S+) \(", log):
        out[name] = out.get(name, 0) + 1
    return out


def test_executor_runs_from_the_fetched_bundle_and_a_relaunch_hits_the_agents_cache(kmf_env):
    if subprocess.run([SYSTEM_PYTHON, "-c", "import confluent_kafka"], capture_output=True).returncode == 0:
        pytest.skip(f"{SYSTEM_PYTHON} has confluent_kafka installed: it would not prove the bundle is used")
    env = kmf_env(agents=1)
    config = env.config(brokers=1)
    config["executor"] = {"artifacts": "served", "python": SYSTEM_PYTHON}
    s = env.start_scheduler(config=config)
    s.wait_deployed()
    pod = s.pod("broker-0")
    task_id = pod["task_id"]

    # the executor: /usr/bin/python3 -m executor, its code and PYTHONPATH inside the sandbox
    pid = executor_pid_of(task_id)
    assert pid is not None
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:-1]
    assert argv == [SYSTEM_PYTHON.encode(), b"-m", b"executor"]
    sandbox = Path(os.readlink(f"/proc/{pid}/cwd"))
    bundle = sandbox / names.bundle_name()
    env_of = environ(pid)
    assert env_of["PYTHONPATH"] == str(bundle) and env_of["KMF_KAFKA_CACHE"] == str(sandbox / "kafka")
    assert not env_of["PYTHONPATH"].startswith(str(CHECKOUT / "kmf")) and "KMF_PYTHON" not in env_of
    # the binary wheels it loaded are the bundle's, not the checkout's .venv
    maps = Path(f"/proc/{pid}/maps").read_text()
    loaded = {line.split()[-1] for line in maps.splitlines() if line.split()[-1].endswith(".so")}
    assert any(p.startswith(str(bundle)) and "confluent_kafka" in p for p in loaded), loaded
    assert not any(p.startswith(str(CHECKOUT)) and not p.startswith(str(sandbox)) for p in loaded), loaded
    # the sandbox holds both archives, extracted
    assert (bundle / "executor" / "main.py").is_file() and (bundle / names.MARKER).is_file()
    assert (sandbox / "kafka" / "4.3.1" / "libs" / "kafka_2.13-4.3.1.jar").is_file()
    # the broker JVM runs Kafka from the sandbox
    jvm = java_pid_of(task_id)
    assert jvm is not None
    cmdline = Path(f"/proc/{jvm}/cmdline").read_bytes().decode(errors="replace")
    assert f"{sandbox}/kafka/4.3.1/libs/*" in cmdline
    # with the JMX exporter agent that came in the Kafka archive and the rules that came in the
    # bundle, on the broker's address and the port the scheduler lists (nothing of the checkout's)
    (target,) = [g["targets"][0] for g in s.get("/v1/endpoints/metrics")]
    agent = (f"-javaagent:{sandbox}/kafka/4.3.1/agents/jmx_prometheus_javaagent.jar={target}:"
             f"{bundle}/executor/runtime/jmx_exporter.yaml")
    assert agent in cmdline.split("\0"), cmdline
    # and Kafka knows the broker
    from confluent_kafka.admin import AdminClient
    boot = s.get("/v1/endpoints/broker")["bootstrap_servers"]
    meta = AdminClient({"bootstrap.servers": boot}).list_topics(timeout=20)
    assert set(meta.brokers) == {0}

    first = served_requests(s.log(1 << 20))
    assert first == {names.bundle_file(): 1, "kafka-4.3.1.tar.gz": 1}, first
    stderr = (sandbox / "stderr").read_text(errors="replace")
    assert "Successfully fetched all URIs into" in stderr

    # kill -9 the broker JVM: relaunched in place, in a new sandbox, from the agent's cache
    os.kill(jvm, signal.SIGKILL)
    after = wait_for(lambda: (lambda p: p if p["task_id"] != task_id and p["ready"] else None)(s.pod("broker-0")),
                     timeout=120, interval=1, what="broker-0 relaunched and ready")
    assert after["agent_id"] == pod["agent_id"]
    pid2 = executor_pid_of(after["task_id"])
    sandbox2 = Path(os.readlink(f"/proc/{pid2}/cwd"))
    assert sandbox2 != sandbox
    log2 = (sandbox2 / "stderr").read_text(errors="replace")
    for uri in (names.bundle_file(), "kafka-4.3.1.tar.gz"):
        assert re.search(rf"Cache action for '\S+/{re.escape(uri)}': RETRIEVE_FROM_CACHE", log2), log2[:3000]
        assert re.search(rf"Cache action for '\S+/{re.escape(uri)}': DOWNLOAD_AND_CACHE", stderr), stderr[:3000]
    assert served_requests(s.log(1 << 20)) == first  # no second download
    assert environ(pid2)["PYTHONPATH"] == str(sandbox2 / names.bundle_name())
    # figures for the record (printed, not asserted): fetch times, first (download) and cached
    print("\n".join(line for line in env.lm.agents[0].log().splitlines() if "fetched" in line))


@pytest.mark.timeout(60)
def test_scheduler_refuses_to_start_when_it_has_nothing_to_serve(tmp_path):
    import sys
    import yaml
    empty = tmp_path / "artifacts"
    empty.mkdir()
    path = tmp_path / "svc.yaml"
    path.write_text(yaml.safe_dump({"name": "k", "mesos": {"master": "zk://127.0.0.1:1/mesos"},
                                    "zookeeper": {"connect": "127.0.0.1:1"},
                                    "executor": {"artifacts_dir": str(empty)}}))
    done = subprocess.run([sys.executable, "-m", "scheduler", "--config", str(path)], capture_output=True,
                          text=True, timeout=50, env={k: v for k, v in os.environ.items() if k != names.ENV_DIR})
    assert done.returncode == 2, done.stderr
    assert f"{path}:" in done.stderr and "executor.artifacts: served, but the kmf bundle" in done.stderr
    assert str(empty) in done.stderr and "make setup" in done.stderr
