"""`kmf demo --mesos apache`: the whole demo on Apache Mesos, then a look at what Mesos says of it
(the framework's link to kmf's page) before everything is stopped by `kmf local down`. Part of
`make chaos` (about 90 s): in `make test`, test_kmf_on_apache.py runs kmf on Apache Mesos step by
step (brokers and an app on their volumes, the UI link, the principal, faults, uninstall) and
test_demo.py the same demo on localmesos."""
from __future__ import annotations

import io
import json
import re

import os

import pytest

from kmf import demo
from localmesos import procs
from localmesos.cli import down, get_json
from tests.helpers.wait import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.kafka, pytest.mark.timeout(480),
              pytest.mark.skipif(os.environ.get("KMF_CHAOS_FULL") != "1", reason="part of make chaos (KMF_CHAOS_FULL=1)")]


def test_the_whole_demo_runs_on_apache_mesos(tmp_path, apache_home):
    work_dir = tmp_path / "demo"
    out = io.StringIO()
    try:
        rc = demo.run_demo(demo.DemoOptions(work_dir=work_dir, engine="apache", mesos_home=apache_home,
                                            keep_running=True), out=out)
        text = out.getvalue()
        assert rc == 0, text
        assert "(Apache Mesos)" in text and "plan COMPLETE" in text and "time to recover" in text
        state = json.loads((work_dir / "cluster.json").read_text())
        master = get_json(state["master_url"] + "/master/state", timeout=10)
        assert master["version"].startswith("1.")  # Apache Mesos itself, not localmesos
        page = re.search(r"kmf web page:\s+(\S+)", text).group(1)
        (framework,) = [f for f in master["frameworks"] if f["name"] == "kafka"]
        # the Mesos UI links to kmf's page on the cluster's address, where it listens
        assert framework["webui_url"] == page and page.startswith(f"http://{state['host']}:")
        assert get_json(page.rstrip("/") + "/v1/health", timeout=10)["role"] == "leader"
        # reservations carry the demo config's principal
        for slave in get_json(state["master_url"] + "/master/slaves", timeout=10)["slaves"]:
            for res in slave.get("reserved_resources_full", {}).get("kafka-role", []):
                assert res["reservations"][-1]["principal"] == "kmf", res
    finally:
        if (work_dir / "cluster.json").exists():
            down(work_dir, out=io.StringIO())
    # SIGKILLed processes leave /proc a moment later
    wait_for(lambda: procs.pids_under(work_dir) == [], timeout=20, what="nothing left in the work dir")
