"""Operating a running kmf service: the HTTP API (with token), the CLI, metrics, the web page,
scaling an app, a config update with a live broker setting, refusals that change nothing."""
from __future__ import annotations

import json
import urllib.request

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers.operator_cli import SLEEPER, kmf
from tests.helpers.wait import wait_for

pytestmark = [pytest.mark.timeout(420), pytest.mark.kafka]


def test_api_cli_metrics_scale_and_update(kmf_env, tmp_path):
    env = kmf_env(agents=3)
    token = tmp_path / "token"
    token.write_text("s3cret-token\n")
    config = env.config(brokers=1, apps=[SLEEPER])
    config["api"]["token_file"] = str(token)
    config["kafka"]["overrides"]["log.retention.ms"] = "3600000"  # a new value is live; a new key rolls
    s = env.start_scheduler(config=config)
    s.wait_deployed()

    # reads need no token; mutations do, compared in constant time
    assert s.request("POST", "/v1/pod/broker-0/restart")[0] == 401
    assert s.request("POST", "/v1/pod/broker-0/restart", token="wrong")[0] == 401
    # bad input: a clear 4xx, nothing changes
    before = s.pod("broker-0")["task_id"]
    assert s.request("GET", "/v1/pod/nope/info")[0] == 404
    assert s.request("GET", "/v1/plans/nope")[0] == 404
    assert s.request("POST", "/v1/scale", "{not json", token="s3cret-token")[0] == 400
    code, doc = s.request("POST", "/v1/scale", {"kind": "app", "name": "sleeper", "count": "two"},
                          token="s3cret-token")
    assert code == 400 and doc["where"] == "count"
    code, doc = s.request("POST", "/v1/scale", {"kind": "brokers", "count": 0}, token="s3cret-token")
    assert code == 400
    code, doc = s.request("PUT", "/v1/config", "name: kafka\nkafka: {brokers: -1}\n", token="s3cret-token")
    assert code == 400 and doc["problems"]
    assert s.request("POST", "/v1/uninstall", token="wrong")[0] == 401
    assert s.pod("broker-0")["task_id"] == before

    # the CLI
    out = kmf(s.url, "pods")
    assert out.returncode == 0 and "broker-0" in out.stdout and "sleeper-0" in out.stdout
    out = kmf(s.url, "plan", "show", "deploy", "--json")
    assert out.returncode == 0 and json.loads(out.stdout)["status"] == "COMPLETE"
    out = kmf(s.url, "endpoints", "broker")
    assert out.returncode == 0 and ":" in out.stdout
    assert kmf(s.url, "pod", "restart", "broker-0").returncode == 1  # no token
    out = kmf(s.url, "scale", "app", "sleeper", "2", token_file=str(token))
    assert out.returncode == 0, out.stderr
    wait_for(lambda: s.pod("sleeper-1").get("ready"), timeout=60, what="second sleeper ready")

    # a live broker setting: applied without restarting the broker
    new = yaml.safe_load(s.path.read_text())
    new["apps"][0]["count"] = 2
    new["kafka"]["overrides"]["log.retention.ms"] = "7200000"
    path = tmp_path / "new.yaml"
    path.write_text(yaml.safe_dump(new))
    out = kmf(s.url, "config", "update", str(path), "--json", token_file=str(token))
    assert out.returncode == 0, out.stdout + out.stderr
    result = json.loads(out.stdout)
    assert result["live"] == {"log.retention.ms": "7200000"} and result["restart"] is False
    # an unsafe one is refused with the reason, and nothing changes
    new["kafka"]["disk_mb"] = 100
    path.write_text(yaml.safe_dump(new))
    out = kmf(s.url, "config", "update", str(path), token_file=str(token))
    assert out.returncode == 1 and "cannot shrink" in out.stderr
    assert s.get("/v1/config/target")["config"]["kafka"]["disk_mb"] == 500

    # metrics and the web page
    metrics = urllib.request.urlopen(s.url + "/metrics", timeout=10).read().decode()
    samples = {(x.name, tuple(sorted(x.labels.items()))): x.value
               for fam in text_string_to_metric_families(metrics) for x in fam.samples}
    service = s.config["name"]
    assert samples[("kmf_pod_ready", (("kind", "broker"), ("pod", "broker-0"), ("service", service)))] == 1.0
    assert samples[("kmf_plan_status", (("plan", "deploy"), ("service", service), ("status", "COMPLETE")))] == 1.0
    assert any(name == "kmf_offers_total" for name, _ in samples)
    assert all(dict(labels).get("service") == service for _, labels in samples), "a sample without the service label"
    page = urllib.request.urlopen(s.url + "/", timeout=10).read().decode()
    assert "<title>kmf scheduler</title>" in page
    # the Mesos side: the framework's web UI link and task labels
    fw = env.lm.get("/master/frameworks")["frameworks"][0]
    assert fw["webui_url"].rstrip("/") == s.url.replace("127.0.0.1", fw["webui_url"].split("//")[1].split(":")[0]).rstrip("/")
    assert fw["name"] == env.name and fw["capabilities"]


def test_web_page_shows_plans_pods_and_bootstrap_servers_in_a_browser(kmf_env, tmp_path):
    from tests.helpers.browser import dump_dom, screenshot
    env = kmf_env(agents=1)
    s = env.start_scheduler(brokers=1, apps=[SLEEPER])
    s.wait_deployed()
    dom = dump_dom(s.url + "/", tmp_path)
    boot = s.get("/v1/endpoints/broker")["bootstrap_servers"]
    assert boot in dom and "broker-0" in dom and "sleeper-0" in dom
    assert 'class="COMPLETE"' in dom and "leader" in dom
    # each pod links to its sandbox in the Mesos UI, and that page leads to the task's stdout
    import html
    import re
    pod = s.pod("broker-0")
    link = html.unescape(re.search(r'<a class="sandbox" href="([^"]+)">sandbox</a>', dom).group(1))
    health = s.get("/v1/health")
    assert link == (f"{health['mesos_ui']}#/agents/{pod['agent_id']}/frameworks/{health['framework_id']}"
                    f"/executors/{pod['task_id']}/browse"), link
    ui = dump_dom(link, tmp_path)
    stdout = html.unescape(re.search(r'<a href="([^"]+)" class="sandbox-stdout">', ui).group(1))
    assert pod["task_id"] in stdout
    assert urllib.request.urlopen(stdout, timeout=10).read()  # the executor's own output
    # what a person sees: a page with text and coloured states on it, not a blank or an error
    shot = screenshot(s.url + "/", tmp_path / "kmf-page.png", tmp_path)
    print(f"web page screenshot {tmp_path / 'kmf-page.png'}: {shot}")
    assert shot["ink"] > 0.02 and shot["colours"] > 50, shot
