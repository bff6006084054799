"""`kmf local up|status|down`: ZooKeeper, master and agents started, registered, and stopped by
pid with nothing left behind."""
from __future__ import annotations

import io
import json
import os

import pytest

from localmesos import procs
from localmesos.cli import down, get_json, status, up

pytestmark = pytest.mark.timeout(120)


def test_local_up_status_down(tmp_path):
    workdir = tmp_path / "local"
    out = io.StringIO()
    try:
        state = up(3, workdir, out=out)
        printed = out.getvalue()
        assert state["master_url"] in printed and state["zk_url"] in printed
        assert printed.count("http://") == 2 and "zk://" in printed
        slaves = get_json(state["master_url"] + "/master/slaves")["slaves"]
        assert len(slaves) == 3
        assert len({s["attributes"]["zone"] for s in slaves}) == 3
        assert len({s["hostname"] for s in slaves}) == 3
        assert status(workdir, out=io.StringIO()) == 0
    finally:
        recorded = json.loads((workdir / "cluster.json").read_text())["processes"]
        down(workdir, out=io.StringIO())
    assert not any(procs.pid_alive(p["pid"]) for p in recorded)
    for entry in recorded:  # no member of any started process group is left either
        with pytest.raises(ProcessLookupError):
            os.killpg(entry["pid"], 0)
    assert not (workdir / "cluster.json").exists()
    assert status(workdir, out=io.StringIO()) == 1
