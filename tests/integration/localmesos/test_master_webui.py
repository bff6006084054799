"""The master's web UI in headless Chromium: agents, frameworks with their web UI link, tasks with
state, health, agent and sandbox links."""
from __future__ import annotations

import pytest

from tests.helpers.browser import dump_dom, screenshot
from tests.helpers.localmesos_tasks import command_task

pytestmark = pytest.mark.timeout(90)


def test_ui_shows_frameworks_with_webui_link(lm_master, lm_driver, tmp_path):
    sched, _ = lm_driver(lm_master.address, framework={
        "name": "ui-test", "webui_url": "http://127.0.0.1:9/kmf/"})
    fid = sched.wait("registered")[0]["value"]
    dom = dump_dom(lm_master.url + "/", tmp_path)
    assert f'data-framework="{fid}"' in dom
    assert 'href="http://127.0.0.1:9/kmf/"' in dom
    assert "ui-test" in dom
    assert f"master@{lm_master.ip}:{lm_master.port}" in dom


def test_ui_shows_agents_and_tasks_with_sandbox_links(lm_factory, lm_driver, tmp_path):
    lm = lm_factory(agents=2)
    sched, driver = lm_driver(lm.master_uri)
    offer = sched.wait("offer", timeout=10)[0]
    driver.launchTasks([offer["id"]], [command_task("ui-task", offer, cmd="echo hello; sleep 60")])
    sched.wait("update", lambda u: u["state"] == "TASK_RUNNING", timeout=20)
    dom = dump_dom(lm.url + "/", tmp_path)
    for slave in lm.get("/master/slaves")["slaves"]:
        assert f'data-agent="{slave["id"]}"' in dom
        assert f"zone={slave['attributes']['zone']}" in dom
    assert 'data-task="ui-task"' in dom
    assert "TASK_RUNNING" in dom
    assert 'class="stdout"' in dom and "files/download?path=" in dom
    shot = screenshot(lm.url + "/", tmp_path / "mesos-ui.png", tmp_path)
    assert shot["ink"] > 0.02 and shot["colours"] > 50, shot
