"""The master's web UI in headless Chromium: agents, frameworks with their web UI link, tasks with
state, health, agent and sandbox links."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.integration.localmesos.test_master_offers import command_task

pytestmark = pytest.mark.timeout(90)

# tools/setup.sh installs Debian's chromium
CHROMIUM = shutil.which("chromium") or "chromium"


def dump_dom(url: str, tmp_path) -> str:
    """The page's DOM after its scripts ran (virtual time lets fetch/JSONP settle)."""
    result = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--disable-dev-shm-usage", "--no-first-run",
         f"--user-data-dir={tmp_path / 'chromium'}", "--virtual-time-budget=8000",
         "--dump-dom", url],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def screenshot(url: str, path, tmp_path, size: tuple[int, int] = (1280, 900)) -> dict:
    """Chromium's screenshot of the page after its scripts ran, and what is on it: the share of
    pixels that differ from the background and the number of distinct colours (a blank or error
    page has almost none of either)."""
    from PIL import Image

    result = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-dev-shm-usage", "--no-first-run", "--hide-scrollbars",
         f"--user-data-dir={tmp_path / 'chromium-shot'}", "--virtual-time-budget=8000",
         f"--window-size={size[0]},{size[1]}", f"--screenshot={path}", url],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0 and path.exists(), result.stderr[-2000:]
    image = Image.open(path).convert("RGB")
    total = image.size[0] * image.size[1]
    colours = image.getcolors(maxcolors=total)  # [(count, colour)]
    background = max(count for count, _ in colours)
    return {"size": image.size, "ink": 1 - background / total, "colours": len(colours)}


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
