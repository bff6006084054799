"""A scheduler restart undoes nothing (issue 12, defects 1 and 6).

kill -9 of the scheduler, restarted with the launch file it was started with (as Marathon does),
keeps every `config update` and `scale` made since: the stored target config in ZooKeeper is the
truth, checked on the master's own task ids (nothing relaunched) and the broker's own config. A
launch file that changed since the last start is an update request with the same checks as
`kmf config update`; an unsafe one is refused and changes nothing. An uninstalled service stays
uninstalled when its scheduler is started again.
"""
from __future__ import annotations

import signal
import time

import pytest
import yaml

from tests.helpers.master_views import broker_heap, live_tasks, master_tasks, reservation_ids
from tests.helpers.operator_cli import SLEEPER
from tests.helpers.wait import wait_for

pytestmark = [pytest.mark.timeout(600), pytest.mark.kafka]


def test_scheduler_restart_keeps_updates_and_a_changed_launch_file_is_an_update(kmf_env, tmp_path):
    env = kmf_env(agents=2)
    config = env.config(brokers=1, apps=[SLEEPER])
    s = env.start_scheduler(config=config)
    s.wait_deployed()

    # an operator changes the heap (a rolling restart) and scales the app, through the API
    new = yaml.safe_load(s.path.read_text())
    new["kafka"]["heap_mb"] = 300
    code, doc = s.request("PUT", "/v1/config", yaml.safe_dump(new))
    assert code == 200, doc
    wait_for(lambda: broker_heap(master_tasks(env.lm).get("broker-0", "")) == "300m", timeout=120,
             what="broker-0 relaunched with -Xmx300m")
    code, doc = s.request("POST", "/v1/scale", {"kind": "app", "name": "sleeper", "count": 2})
    assert code == 200, doc
    wait_for(lambda: len([n for n in master_tasks(env.lm) if n.startswith("sleeper-")]) == 2, timeout=60,
             what="two sleeper tasks at the master")
    s.wait_deployed()
    before = master_tasks(env.lm)

    # kill -9, then the same launch file again: nothing is reverted, nothing restarts
    s.kill(signal.SIGKILL)
    s = env.start_scheduler(config=config)
    wait_for(lambda: s.get("/v1/health")["mesos_connected"], timeout=60, what="scheduler subscribed again")
    time.sleep(15)  # long enough for a roll back to have started (the old code killed at once)
    target = s.get("/v1/config/target")["config"]
    assert target["kafka"]["heap_mb"] == 300 and target["apps"][0]["count"] == 2, target
    assert master_tasks(env.lm) == before, s.log()
    assert broker_heap(before["broker-0"]) == "300m"
    assert "stays in force" in s.log(20000)

    # a changed launch file is an update request: applied through the same checks, diff logged
    changed = dict(config, kafka={**config["kafka"], "heap_mb": 320})
    s.kill(signal.SIGKILL)
    s = env.start_scheduler(config=changed)
    wait_for(lambda: broker_heap(master_tasks(env.lm).get("broker-0", "")) == "320m", timeout=150,
             what="broker-0 rolled to the changed launch file's heap")
    assert "kafka.heap_mb: 300 → 320" in s.log(40000)
    assert s.get("/v1/config/target")["config"]["kafka"]["heap_mb"] == 320
    assert s.get("/v1/health")["launch_config"]["refused"] is None
    wait_for(lambda: s.plan("deploy").get("status") == "COMPLETE", timeout=120, what="deploy complete")

    # an unsafe launch file (a volume cannot shrink) is refused: logged, shown, nothing changes
    unsafe = dict(changed, kafka={**changed["kafka"], "disk_mb": 100})
    before = master_tasks(env.lm)
    s.kill(signal.SIGKILL)
    s = env.start_scheduler(config=unsafe)
    wait_for(lambda: s.get("/v1/health")["launch_config"]["refused"], timeout=90, what="launch file refused")
    assert "cannot shrink" in s.get("/v1/health")["launch_config"]["refused"]
    assert s.get("/v1/config/target")["config"]["kafka"]["disk_mb"] == 500
    time.sleep(5)
    assert master_tasks(env.lm) == before
    assert s.proc.poll() is None  # the scheduler keeps running the stored target


def test_uninstalled_service_stays_uninstalled_when_its_scheduler_restarts(kmf_env, zk_client):
    env = kmf_env(agents=2)
    config = env.config(brokers=1, apps=[SLEEPER])
    s = env.start_scheduler(config=config)
    s.wait_deployed()
    code, doc = s.request("POST", "/v1/uninstall")
    assert code == 200 and "stays uninstalled" in doc["message"], doc
    assert s.proc.wait(timeout=120) == 0, s.log()
    assert live_tasks(env.lm) == [] and reservation_ids(env.lm) == set()
    # only the tombstone is left of the service's state
    assert zk_client.get_children(f"/{env.name}") == ["uninstalled"]

    # the runner starts it again: it installs nothing and says why
    again = env.start_scheduler(config=config)
    health = again.get("/v1/health")
    assert health["role"] == "uninstalled" and "stays uninstalled" in health["uninstalled"]["message"], health
    time.sleep(8)
    frameworks = env.lm.get("/master/frameworks")["frameworks"]
    assert all(f["name"] != env.name for f in frameworks), frameworks
    assert live_tasks(env.lm) == [] and reservation_ids(env.lm) == set()
    code, doc = again.request("POST", "/v1/scale", {"kind": "app", "name": "sleeper", "count": 1})
    assert code == 410 and "uninstalled" in doc["error"], doc
    again.kill(signal.SIGTERM)
    assert again.proc.returncode == 0
