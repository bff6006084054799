"""`kmf local up|status|down --mesos apache`: ZooKeeper, an Apache Mesos master registered in it and
agents with zone/rack attributes on the cluster's own address block; down stops everything by
process group, executors left in the agents' sandboxes included; no install is a clear exit 1."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import pytest

from localmesos import procs
from localmesos.cli import down, get_json, status, up
from tests.helpers.wait import wait_for

pytestmark = pytest.mark.timeout(180)


def test_no_apache_install_is_exit_1_naming_where_kmf_looked(tmp_path):
    missing = tmp_path / "no-mesos-here"
    run = subprocess.run([sys.executable, "-m", "kmf", "local", "up", "--mesos", "apache", "--mesos-home",
                          str(missing), "--work-dir", str(tmp_path / "w")], capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 1, run
    assert f"no Apache Mesos at {missing}" in run.stderr and "sbin/mesos-master" in run.stderr
    assert not (tmp_path / "w" / "cluster.json").exists()  # nothing was started


def test_apache_local_up_status_down_stops_executors_too(tmp_path, apache_home):
    workdir = tmp_path / "local"
    out = io.StringIO()
    execute = None
    try:
        state = up(2, workdir, out=out, engine="apache", mesos_home=apache_home)
        assert "Apache Mesos" in out.getvalue() and state["engine"] == "apache"
        master = get_json(state["master_url"] + "/master/state")
        assert master["version"].startswith("1.") and master["leader"].endswith(state["master_url"].split("//")[1])
        slaves = sorted(master["slaves"], key=lambda s: s["hostname"])
        assert [s["attributes"] for s in slaves] == [{"zone": "a", "rack": "r0"}, {"zone": "b", "rack": "r1"}]
        block = state["addresses"].rsplit(".", 1)[0]  # 127.0.B.0/24 → 127.0.B
        assert [s["hostname"] for s in slaves] == [f"{block}.10", f"{block}.11"]
        report = io.StringIO()
        assert status(workdir, out=report) == 0 and "Apache Mesos master" in report.getvalue()
        # a task whose executor runs in an agent's sandbox, its framework gone: down must stop it
        execute = procs.spawn([str(apache_home / "bin" / "mesos-execute"), f"--master={state['zk_url']}",
                               "--name=left-behind", "--command=sleep 600", "--resources=cpus:0.1;mem:32"],
                              log_path=tmp_path / "execute.log")
        wait_for(lambda: procs.pids_under(workdir / "agent-0") or procs.pids_under(workdir / "agent-1"),
                 timeout=60, what="the task's executor in a sandbox")
        procs.stop_group(execute.pid, grace=0.1)
    finally:
        if execute is not None:
            procs.stop_group(execute.pid, grace=0.1)
        recorded = json.loads((workdir / "cluster.json").read_text())["processes"]
        down(workdir, out=io.StringIO())
    assert not any(procs.pid_alive(p["pid"]) for p in recorded)
    for entry in recorded:
        with pytest.raises(ProcessLookupError):
            os.killpg(entry["pid"], 0)
    # SIGKILLed processes leave /proc a moment later
    wait_for(lambda: procs.pids_under(workdir) == [], timeout=20, what="nothing left in the work dir")
    assert status(workdir, out=io.StringIO()) == 1
