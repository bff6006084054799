"""Stream apps spread over agents by default and keep off brokers' agents when asked (seen in the
master's /master/state), and an app whose code exists only as a file served over HTTP by this test
reaches the agents through the Mesos fetcher and runs there (its output read from Kafka)."""
from __future__ import annotations

import functools
import http.server
import threading
import uuid
import zipfile
from pathlib import Path

import pytest

from tests.helpers.wait import wait_for

pytestmark = [pytest.mark.timeout(420), pytest.mark.kafka]


def running_tasks(env, name_prefix: str) -> dict[str, str]:
    """task name → agent id of the framework's running tasks named `<prefix>-<i>`, from the master."""
    state = env.lm.get("/master/state")
    return {t["name"]: t["slave_id"] for fw in state["frameworks"] for t in fw["tasks"]
            if t["name"].rsplit("-", 1)[0] == name_prefix and t["state"] == "TASK_RUNNING"}


def test_instances_spread_over_three_agents(kmf_env):
    env = kmf_env(agents=3)
    apps = [{"name": "spread", "count": 3, "cpus": 0.1, "mem_mb": 128, "runtime": "command",
             "command": ["sleep", "3600"]}]
    s = env.start_scheduler(brokers=1, apps=apps)
    s.wait_deployed(timeout=240)
    spread = wait_for(lambda: (lambda t: t if len(t) == 3 else None)(running_tasks(env, "spread")),
                      timeout=60, interval=1, what="three spread instances running")
    # each of the three on its own agent, though any one agent has room for all of them
    assert len(set(spread.values())) == 3, spread


def test_avoid_brokers_keeps_instances_off_the_brokers_agent(kmf_env):
    env = kmf_env(agents=3)
    apps = [{"name": "aside", "count": 2, "cpus": 0.1, "mem_mb": 128, "runtime": "command",
             "command": ["sleep", "3600"], "avoid_brokers": True}]
    s = env.start_scheduler(brokers=1, apps=apps)
    s.wait_deployed(timeout=240)
    aside = wait_for(lambda: (lambda t: t if len(t) == 2 else None)(running_tasks(env, "aside")),
                     timeout=60, interval=1, what="two instances running")
    brokers = running_tasks(env, "broker")
    assert brokers["broker-0"] not in aside.values(), (aside, brokers)
    assert len(set(aside.values())) == 2, aside


APP_MAIN = '''\
import os, sys, time
from confluent_kafka import Producer
topic, token = sys.argv[1], sys.argv[2]
p = Producer({"bootstrap.servers": os.environ["KAFKA_BOOTSTRAP_SERVERS"], "acks": "all"})
where = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
p.produce(topic, key=os.environ["KMF_CLIENT_ID"].encode(),
          value=f"{token} from {os.environ['KMF_APP']}-{os.environ['KMF_INSTANCE']} loaded from {where}".encode())
assert p.flush(30) == 0
print("kmf: ready", flush=True)
while True:
    time.sleep(60)
'''


class _Files(http.server.SimpleHTTPRequestHandler):
    requests: list[str] = []

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        type(self).requests.append(self.path)


def test_an_app_fetched_by_uri_runs_on_agents_that_never_had_its_code(kmf_env, tmp_path):
    token = uuid.uuid4().hex[:8]
    package = f"kmfapp_{token}"  # a name that exists nowhere but in the served wheel
    served = tmp_path / "served"
    served.mkdir()
    wheel = served / f"{package}-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr(f"{package}/__init__.py", "")
        z.writestr(f"{package}/__main__.py", APP_MAIN)
    handler = functools.partial(_Files, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    uri = f"http://127.0.0.1:{server.server_address[1]}/{wheel.name}"
    try:
        env = kmf_env(agents=2)
        app = {"name": "fetched", "count": 2, "cpus": 0.1, "mem_mb": 128, "runtime": "python",
               "uris": [uri], "command": ["-m", package, "fetched-out", token]}
        s = env.start_scheduler(brokers=1, apps=[app])
        wait_for(lambda: s.pod("broker-0").get("ready"), timeout=120, interval=1, what="broker ready")
        code, doc = s.request("POST", "/v1/topics", {"name": "fetched-out", "partitions": 1})
        assert code in (200, 409), doc
        s.wait_deployed(timeout=240)
        boot = s.get("/v1/endpoints/broker")["bootstrap_servers"]

        from confluent_kafka import Consumer
        c = Consumer({"bootstrap.servers": boot, "group.id": f"check-{token}", "auto.offset.reset": "earliest"})
        c.subscribe(["fetched-out"])
        seen: dict[str, str] = {}

        def both() -> bool:
            m = c.poll(0.5)
            if m is not None and m.error() is None:
                seen[m.key().decode()] = m.value().decode()
            return set(seen) == {"fetched-0", "fetched-1"}
        wait_for(both, timeout=120, interval=0, what="a record from each fetched instance")
        c.close()
        for pod, text in seen.items():
            assert text.startswith(f"{token} from {pod} loaded from "), text
            # imported from the wheel in its own sandbox, nowhere else
            assert "/executors/" in text and text.endswith(f"/{wheel.name}"), text
            assert Path(text.rsplit(" loaded from ", 1)[1]).is_file()
        # the master's view: each instance's executor names the artifact among its URIs
        state = env.lm.get("/master/state")
        executors = [e for fw in state["frameworks"] for e in fw["executors"] if e["name"].startswith("kmf executor for fetched-")]
        assert len(executors) == 2
        for e in executors:
            assert {"value": uri, "extract": True, "executable": False, "cache": False} in e["command"]["uris"]
        assert _Files.requests.count(f"/{wheel.name}") >= 1  # fetched from this test's server
    finally:
        server.shutdown()
