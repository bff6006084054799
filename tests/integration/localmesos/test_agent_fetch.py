"""The agent's fetcher through a real master and agent and unmodified pymesos: a command task gets
its URIs in its sandbox; a custom executor whose URI cannot be fetched fails its task as Apache
Mesos 1.12 does, and its resources go back to the offers."""
from __future__ import annotations

import pytest

from mesoslib.resources import parse_resources_flag
from tests.helpers.wait import wait_for
from tests.helpers.localmesos_tasks import command_task

pytestmark = pytest.mark.timeout(120)


def test_command_task_gets_its_uris_in_the_sandbox(lm_factory, lm_driver, tmp_path):
    (tmp_path / "greeting.txt").write_text("hello from the fetcher\n")
    lm = lm_factory(agents=1)
    sched, driver = lm_driver(lm.master_uri)
    offer = sched.wait("offer", timeout=10)[-1]
    task = command_task("c1", offer, "cpus:0.5;mem:32", "grep -q 'hello from the fetcher' greeting.txt")
    task["command"]["uris"] = [{"value": f"file://{tmp_path / 'greeting.txt'}"}]
    driver.launchTasks([offer["id"]], [task], filters={"refuse_seconds": 0})
    done = sched.wait("update", lambda u: u["task_id"]["value"] == "c1"
                      and u["state"] in ("TASK_FINISHED", "TASK_FAILED"), timeout=30)[-1]
    assert done["state"] == "TASK_FINISHED", done


def test_unfetchable_executor_fails_its_task_and_frees_its_resources(lm_factory, lm_driver):
    lm = lm_factory(agents=1)
    sched, driver = lm_driver(lm.master_uri)
    offer = sched.wait("offer", timeout=10)[-1]
    task = command_task("t1", offer, "cpus:0.5;mem:32")
    del task["command"]
    task["executor"] = {"executor_id": {"value": "e1"}, "command": {
        "value": "true", "uris": [{"value": "http://127.0.0.1:1/kmf.tar.gz", "extract": True, "cache": True}]},
        "resources": parse_resources_flag("cpus:0.1;mem:32").to_json("pre")}
    driver.launchTasks([offer["id"]], [task], filters={"refuse_seconds": 0})
    [failed] = sched.wait("update", lambda u: u["task_id"]["value"] == "t1" and u["state"] == "TASK_FAILED",
                          timeout=30)
    assert failed["source"] == "SOURCE_AGENT" and failed["reason"] == "REASON_CONTAINER_LAUNCH_FAILED"
    assert failed["message"].startswith("Failed to launch container: Failed to fetch all URIs for container '")
    assert failed["message"].endswith("': exited with status 1")
    # the executor is gone from the master too: nothing of the agent stays allocated
    wait_for(lambda: not any(f["executors"] for f in lm.get("/master/state")["frameworks"]), timeout=15,
             what="the executor forgotten by the master")
