"""The localmesos agent through unmodified pymesos drivers: command-task health checks, a custom
executor built on MesosExecutorDriver (framework messages both ways, kill, the Mesos environment),
persistent volumes in sandboxes, and the files endpoints."""
from __future__ import annotations

import base64
import json
import sys
import textwrap
import urllib.error
import urllib.parse
import urllib.request

import pytest

from localmesos import procs
from mesoslib.resources import parse_resources_flag
from tests.helpers.localmesos_tasks import command_task

pytestmark = pytest.mark.timeout(120)

EXECUTOR = textwrap.dedent("""
    import os, sys, time, json, threading
    from pymesos import Executor, MesosExecutorDriver, encode_data, decode_data
    class E(Executor):
        def launchTask(self, driver, task):
            env = {k: os.environ.get(k) for k in ("MESOS_FRAMEWORK_ID", "MESOS_EXECUTOR_ID", "MESOS_SANDBOX",
                   "MESOS_CHECKPOINT", "MESOS_AGENT_ENDPOINT", "MESOS_SLAVE_ID", "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD")}
            self.task_id = task["task_id"]["value"]
            driver.sendStatusUpdate({"task_id": task["task_id"], "state": "TASK_RUNNING",
                                     "message": json.dumps(env), "timestamp": time.time()})
        def frameworkMessage(self, driver, message):
            driver.sendFrameworkMessage(encode_data(b"echo:" + decode_data(message)))
        def killTask(self, driver, task_id):
            driver.sendStatusUpdate({"task_id": task_id, "state": "TASK_KILLED", "timestamp": time.time()})
    d = MesosExecutorDriver(E(), use_addict=True)
    d.run()
""")


def custom_task(tid, offer, script_path):
    return {
        "name": tid, "task_id": {"value": tid}, "agent_id": offer["agent_id"],
        "resources": parse_resources_flag("cpus:0.5;mem:64").to_json("pre"),
        "executor": {"executor_id": {"value": f"ex-{tid}"}, "name": "test executor",
                     "command": {"shell": False, "value": sys.executable, "arguments": [sys.executable, str(script_path)]},
                     "resources": parse_resources_flag("cpus:0.1;mem:32").to_json("pre")},
    }


def test_custom_executor_on_pymesos_executor_driver(lm_factory, lm_driver, tmp_path):
    lm = lm_factory(agents=1)
    sched, driver = lm_driver(lm.master_uri)
    offer = sched.wait("offer", timeout=10)[0]
    script = tmp_path / "executor.py"
    script.write_text(EXECUTOR)
    driver.launchTasks([offer["id"]], [custom_task("c1", offer, script)])
    running = sched.wait("update", lambda u: u["state"] == "TASK_RUNNING", timeout=30)[-1]
    env = json.loads(running["message"])
    assert env["MESOS_EXECUTOR_ID"] == "ex-c1" and env["MESOS_CHECKPOINT"] == "0"
    assert env["MESOS_AGENT_ENDPOINT"] == f"{lm.agents[0].ip}:{lm.agents[0].port}"
    assert env["MESOS_SANDBOX"].endswith("/executors/ex-c1/runs/" + env["MESOS_SANDBOX"].rsplit("/", 1)[1])
    assert running["source"] == "SOURCE_EXECUTOR" and running["agent_id"] == offer["agent_id"]
    driver.sendFrameworkMessage({"value": "ex-c1"}, offer["agent_id"], base64.b64encode(b"hi").decode())
    msg = sched.wait("message", timeout=10)[-1]
    assert base64.b64decode(msg["data"]) == b"echo:hi"
    driver.killTask({"value": "c1"})
    sched.wait("update", lambda u: u["state"] == "TASK_KILLED", timeout=15)


def test_command_task_tcp_health_check_reaches_the_scheduler(lm_factory, lm_driver):
    lm = lm_factory(agents=1)
    sched, driver = lm_driver(lm.master_uri)
    offer = sched.wait("offer", timeout=10)[0]
    port = procs.free_port("127.0.0.1")
    task = command_task("h1", offer, cmd=f"{sys.executable} -m http.server {port} --bind 127.0.0.1")
    task["health_check"] = {"type": "TCP", "tcp": {"port": port}, "delay_seconds": 0.5,
                            "interval_seconds": 0.5, "timeout_seconds": 2, "consecutive_failures": 2,
                            "grace_period_seconds": 10}
    bad = command_task("h2", offer, "cpus:0.5;mem:32", cmd="sleep 60")
    bad["health_check"] = {"type": "HTTP", "http": {"port": procs.free_port("127.0.0.1"), "path": "/"},
                           "delay_seconds": 0.2, "interval_seconds": 0.3, "consecutive_failures": 2,
                           "grace_period_seconds": 0}
    driver.launchTasks([offer["id"]], [task, bad])
    up = sched.wait("update", lambda u: u["task_id"]["value"] == "h1" and u.get("healthy") is True, timeout=30)[-1]
    assert up["reason"] == "REASON_TASK_HEALTH_CHECK_STATUS_UPDATED" and up["state"] == "TASK_RUNNING"
    down = sched.wait("update", lambda u: u["task_id"]["value"] == "h2" and u.get("healthy") is False, timeout=30)
    assert down[-1]["state"] == "TASK_RUNNING"


def test_volume_in_sandbox_and_files_endpoints(lm_factory, lm_driver):
    lm = lm_factory(agents=1)
    sched, driver = lm_driver(lm.master_uri, framework={"role": "kafka"})
    offer = sched.wait("offer", timeout=10)[0]
    reserved = [{"name": "disk", "type": "SCALAR", "scalar": {"value": 100}, "role": "kafka",
                 "reservation": {}}]
    volume = [{**reserved[0], "disk": {"persistence": {"id": "vol-1"}, "volume": {"container_path": "data", "mode": "RW"}}}]
    task = command_task("v1", offer, "cpus:0.5;mem:32", cmd="echo kept > data/file && echo hello && sleep 60")
    task["resources"] += volume
    driver.acceptOffers([offer["id"]], [{"type": "RESERVE", "reserve": {"resources": reserved}},
                                        {"type": "CREATE", "create": {"volumes": volume}},
                                        {"type": "LAUNCH", "launch": {"task_infos": [task]}}])
    sched.wait("update", lambda u: u["state"] == "TASK_RUNNING", timeout=20)
    agent = lm.agents[0]
    state = json.loads(urllib.request.urlopen(f"{agent.url}/state", timeout=5).read())
    sandbox = state["frameworks"][0]["executors"][0]["directory"]
    base = f"{agent.url}/files"

    def read(name):
        q = urllib.parse.urlencode({"path": f"{sandbox}/{name}", "offset": 0, "length": 100})
        return json.loads(urllib.request.urlopen(f"{base}/read?{q}", timeout=5).read())["data"]
    from tests.helpers.wait import wait_for
    wait_for(lambda: "hello" in read("stdout"), timeout=10, what="stdout in the sandbox")
    assert read("data/file") == "kept\n"
    listing = json.loads(urllib.request.urlopen(f"{base}/browse?path={urllib.parse.quote(sandbox)}", timeout=5).read())
    assert {"stdout", "stderr", "data"} <= {e["path"].rsplit("/", 1)[1] for e in listing}
    # outside the agent's work_dir: not found
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(f"{base}/read?path=/etc/passwd&offset=0", timeout=5)
    assert err.value.code == 404
    assert (agent.work_dir / "volumes" / "roles" / "kafka" / "vol-1" / "file").read_text() == "kept\n"
