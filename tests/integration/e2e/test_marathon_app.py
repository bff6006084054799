"""A Kafka Streams app run as its own Marathon app, not by kmf: config/marathon-streams-app.json
run by localmesos.marathon (fetching the kmf bundle and the Kafka runtime as Marathon would) finds
kmf's brokers at start through kmf.bootstrap_env and `GET /v1/endpoints/broker`, then counts words.
Seen from Kafka: the exact counts in the output topic and the app's group with its member. And
without kmf: the launcher exits 1 naming the URL, and Marathon starts the app again."""
from __future__ import annotations

import collections
import json
import os
import struct
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient

from kmfwire import artifacts
from localmesos import procs
from tests.helpers.streams_apps import make_lines, produce_lines
from tests.helpers.wait import wait_for

REPO = Path(__file__).resolve().parents[3]
APP = REPO / "config" / "marathon-streams-app.json"
INPUT, OUTPUT = "streams-plaintext-input", "streams-wordcount-output"  # WordCountDemo's topics


def local_fetches(app: dict, served: Path) -> dict[str, Path]:
    """The app's fetch URIs (an example repository) as the archives `make setup` built, by name."""
    out = {}
    for entry in app["fetch"]:
        name = entry["uri"].rsplit("/", 1)[-1]
        out[name] = served / (artifacts.bundle_file() if name.startswith("kmf-") else name)
    return out


def repo_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}


def launcher(args: list[str], out: Path) -> subprocess.Popen:
    """kmf.bootstrap_env in its own session (stopped by pid), stdout and stderr in out.out/out.err."""
    with open(out.with_suffix(".out"), "wb") as stdout, open(out.with_suffix(".err"), "wb") as stderr:
        return subprocess.Popen([sys.executable, "-m", "kmf.bootstrap_env", *args], stdout=stdout, stderr=stderr,
                                stdin=subprocess.DEVNULL, env=repo_env(), cwd=out.parent, start_new_session=True)


class Counts:
    """WordCountDemo's output (word → Long), every update kept."""

    def __init__(self, bootstrap: str) -> None:
        self.history: dict[str, list[int]] = collections.defaultdict(list)
        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"check-{uuid.uuid4().hex[:6]}",
                                  "auto.offset.reset": "earliest", "enable.auto.commit": False,
                                  "topic.metadata.refresh.interval.ms": 1000})
        self.consumer.subscribe([OUTPUT])

    def latest(self) -> dict[str, int]:
        for msg in self.consumer.consume(num_messages=1000, timeout=0.5):
            if msg.error() is None:
                self.history[msg.key().decode()].append(struct.unpack(">q", msg.value())[0])
        return {word: values[-1] for word, values in self.history.items()}


@pytest.mark.timeout(420)
@pytest.mark.kafka
def test_a_marathon_app_finds_kmfs_brokers_and_counts_exactly(kmf_env, tmp_path, fresh_artifacts):
    env = kmf_env(agents=1)
    config = env.config(brokers=1)
    api = f"http://127.0.0.1:{config['api']['port']}"
    # a launcher started before kmf waits for it, then for its first broker, saying why it waits
    early = launcher(["--api", api, "--timeout", "120", "--interval", "0.5"], tmp_path / "early")
    try:
        wait_for(lambda: "waiting for" in (tmp_path / "early.err").read_text(), timeout=30, what="the launcher waiting")
        s = env.start_scheduler(config)
        assert s.url == api
        wait_for(lambda: s.pod("broker-0").get("ready"), timeout=120, interval=1, what="broker ready")
        assert early.wait(timeout=60) == 0, (tmp_path / "early.err").read_text()
    finally:
        procs.stop_group(early.pid, grace=2)
    for topic in (INPUT, OUTPUT):
        code, doc = s.request("POST", "/v1/topics", {"name": topic, "partitions": 2})
        assert code in (200, 409), doc
    boot = s.get("/v1/endpoints/broker")["bootstrap_servers"]
    assert (tmp_path / "early.out").read_text() == boot + "\n"
    assert f"waiting for {api}/v1/endpoints/broker: HttpError: <urlopen error [Errno 111] Connection refused>" \
        in (tmp_path / "early.err").read_text()

    app = json.loads(APP.read_text())
    group = f"{env.name}-marathon-wc"  # the app's application.id, its consumer group
    work = tmp_path / "marathon"
    host = env.lm.agents[0].ip  # Marathon runs it on an agent
    argv = [sys.executable, "-m", "localmesos.marathon", "--app", str(APP), "--work_dir", str(work),
            "--host", host, "--env", f"KMF_API={s.url}", "--env", f"STREAMS_APPLICATION_ID={group}",
            *(a for name, path in local_fetches(app, fresh_artifacts).items() for a in ("--fetch", f"{name}={path}"))]
    started = time.monotonic()
    runner = procs.spawn(argv, log_path=tmp_path / "marathon-runner.log", cwd=REPO)
    sandbox = work / "sandboxes" / "run-1"
    try:
        def java_pid() -> int | None:
            assert runner.poll() is None, (tmp_path / "marathon-runner.log").read_text()[-3000:]
            for pid in procs.pids_under(sandbox):
                try:
                    argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                    # java itself: the launcher (python, same pid) names WordCountDemo too until it execs
                    if argv[0].endswith(b"java") and any(a.endswith(b".WordCountDemo") for a in argv):
                        return pid
                except OSError:
                    continue
            return None

        pid = wait_for(java_pid, timeout=120, interval=0.5, what=f"WordCountDemo started in {sandbox}")
        # the launcher exec'd Java with the endpoint's servers, in its env and in the properties file
        environ = dict(kv.split(b"=", 1) for kv in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0") if b"=" in kv)
        assert environ[b"KAFKA_BOOTSTRAP_SERVERS"].decode() == boot
        props = (sandbox / "streams.properties").read_text()
        assert "bootstrap.servers=" + boot.replace(":", "\\:") in props.splitlines()
        assert f"application.id={group}" in props.splitlines()
        stderr = (sandbox / "stderr").read_text(errors="replace")
        assert f"KAFKA_BOOTSTRAP_SERVERS={boot} (from {s.url}/v1/endpoints/broker)" in stderr

        counts = Counts(boot)
        lines = make_lines(400, seed=18)
        expected = collections.Counter(w for line in lines for w in line.split())
        produce_lines(boot, INPUT, lines[:200])
        wait_for(lambda: counts.latest(), timeout=120, interval=0, what=f"the first counts in {OUTPUT}")
        first = time.monotonic() - started
        produce_lines(boot, INPUT, lines[200:])

        def exact() -> bool:
            assert runner.poll() is None and Path(f"/proc/{pid}").exists(), (sandbox / "stderr").read_text()[-3000:]
            latest = counts.latest()
            too_high = {w: (c, expected[w]) for w, c in latest.items() if c > expected[w]}
            assert not too_high, f"counted more than produced (word: (counted, produced)): {too_high}"
            return latest == dict(expected)

        wait_for(exact, timeout=120, interval=0, what=f"the exact counts {dict(expected)} in {OUTPUT}")
        done = time.monotonic() - started
        # each word's updates rise (a reprocessed batch would repeat or overshoot)
        assert all(a < b for values in counts.history.values() for a, b in zip(values, values[1:])), counts.history
        counts.consumer.close()

        # the app's group, as Kafka's coordinator sees it: Stable, one member, WordCountDemo's client
        admin = AdminClient({"bootstrap.servers": boot})
        listed = admin.list_consumer_groups().result(timeout=15)
        assert group in {g.group_id for g in listed.valid}
        described = admin.describe_consumer_groups([group])[group].result(timeout=15)
        assert str(described.state).rsplit(".", 1)[-1] == "STABLE", described.state
        assert len(described.members) == 1 and described.members[0].client_id.startswith(group)
        assert {tp.topic for tp in described.members[0].assignment.topic_partitions} >= {INPUT}
        print(f"Marathon app: first counts {first:.1f} s after the runner started, "
              f"all {sum(expected.values())} words counted exactly after {done:.1f} s")
    finally:
        procs.stop_group(runner.pid, grace=10)
    wait_for(lambda: not procs.pids_under(work), timeout=30, what="no instance of the app left")


@pytest.mark.timeout(60)
def test_the_launcher_pointed_at_an_unreachable_kmf_exits_1_naming_the_url(tmp_path):
    host = "127.0.0.1"
    api = f"http://{host}:{procs.free_port(host)}"  # nobody listens there
    ran = tmp_path / "ran"
    started = time.monotonic()
    proc = launcher(["--api", api, "--timeout", "2", "--interval", "0.5", "--", "touch", str(ran)], tmp_path / "l")
    try:
        code = proc.wait(timeout=30)
    finally:
        procs.stop_group(proc.pid, grace=2)
    took = time.monotonic() - started
    err = (tmp_path / "l.err").read_text()
    assert code == 1, err
    assert f"no broker address from {api}/v1/endpoints/broker after 2 s" in err and "Connection refused" in err
    assert not ran.exists(), "the command ran without brokers"
    assert 2 <= took < 20, took


@pytest.mark.timeout(180)
@pytest.mark.kafka
def test_marathon_restarts_the_app_while_kmf_cannot_be_reached(tmp_path, fresh_artifacts):
    """The example app as Marathon runs it, kmf's API unreachable: each instance exits 1 naming the
    URL before starting Java, and Marathon starts another one (its --timeout cut to 2 s here)."""
    app = json.loads(APP.read_text())
    assert "--timeout 120 " in app["cmd"]
    (tmp_path / "app.json").write_text(json.dumps({**app, "cmd": app["cmd"].replace("--timeout 120 ", "--timeout 2 ")}))
    host = "127.0.0.1"
    api = f"http://{host}:{procs.free_port(host)}"  # nobody listens there
    work = tmp_path / "marathon"
    argv = [sys.executable, "-m", "localmesos.marathon", "--app", str(tmp_path / "app.json"), "--work_dir", str(work),
            "--host", host, "--env", f"KMF_API={api}",
            *(a for name, path in local_fetches(app, fresh_artifacts).items() for a in ("--fetch", f"{name}={path}"))]
    runner = procs.spawn(argv, log_path=tmp_path / "marathon-runner.log", cwd=REPO)
    try:
        wait_for(lambda: (work / "sandboxes" / "run-2").exists(), timeout=120, interval=0.5,
                 what="Marathon starting a second instance")
    finally:
        procs.stop_group(runner.pid, grace=10)
    wait_for(lambda: not procs.pids_under(work), timeout=30, what="no instance of the app left")
    log = (work / "marathon.log").read_text()
    assert "instance 1 exited with 1" in log, log
    run1 = work / "sandboxes" / "run-1"
    err = (run1 / "stderr").read_text(errors="replace")
    assert f"kmf.bootstrap_env: no broker address from {api}/v1/endpoints/broker after 2 s" in err, err[-2000:]
    assert not (run1 / "streams.properties").exists(), "the app started without brokers"
