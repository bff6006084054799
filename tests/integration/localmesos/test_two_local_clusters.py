"""Two local clusters on one machine at once (issue 12, defect 9): two `kmf local up` processes
started together get disjoint agent addresses, as each master itself reports them, and both stay
up; the test fixtures' clusters take their addresses from the same allocator."""
from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from localmesos import procs
from localmesos.cli import down, get_json

pytestmark = pytest.mark.timeout(150)

REPO = Path(__file__).resolve().parents[3]


def agents_of(master_url: str) -> list[dict]:
    return get_json(master_url + "/master/slaves")["slaves"]


def first_port(agent: dict) -> int:
    """The lowest port the agent offers (its `ports` resource from /master/slaves)."""
    ports = agent["resources"]["ports"]  # "[31000-32000]"
    return int(ports.strip("[]").split(",")[0].split("-")[0])


def test_two_kmf_local_up_at_once_get_disjoint_agent_addresses_and_both_stay_up(tmp_path):
    dirs = [tmp_path / "one", tmp_path / "two"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    ups = [subprocess.Popen([sys.executable, "-m", "kmf", "local", "up", "--agents", "2", "--work-dir", str(d)],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
           for d in dirs]
    try:
        outputs = [p.communicate(timeout=90)[0] for p in ups]
        for p, out in zip(ups, outputs):
            assert p.returncode == 0, out
        states = [json.loads((d / "cluster.json").read_text()) for d in dirs]
        seen = [{a["hostname"] for a in agents_of(s["master_url"])} for s in states]
        assert all(len(hosts) == 2 for hosts in seen), seen
        assert not seen[0] & seen[1], f"both clusters have agents on {seen[0] & seen[1]}"
        assert states[0]["addresses"] != states[1]["addresses"]

        # What collided before: a broker of each cluster binding the first port its agent offers.
        # With shared agent addresses the second bind fails with "Address already in use".
        held = []
        try:
            for state in states:
                for agent in agents_of(state["master_url"]):
                    sock = socket.socket()
                    sock.bind((agent["hostname"], first_port(agent)))
                    sock.listen()
                    held.append(sock)
        finally:
            for sock in held:
                sock.close()

        time.sleep(3)  # several agent pings (1 s) later both clusters are still whole
        for state in states:
            assert all(procs.pid_alive(p["pid"]) for p in state["processes"]), state
            live = agents_of(state["master_url"])
            assert len(live) == 2 and all(a["active"] for a in live), live
    finally:
        for d in dirs:
            if (d / "cluster.json").exists():
                down(d, out=io.StringIO())


def test_the_fixture_clusters_claim_their_blocks_from_the_same_allocator(lm_factory, tmp_path):
    """A test run beside a demo: the fixture's agents live in a block claimed machine-wide, which
    `kmf local up` (and so `kmf demo`) is refused while the fixture's cluster runs."""
    from localmesos import addresses

    one, two = lm_factory(agents=2), lm_factory(agents=1)
    hosts = [{a["hostname"] for a in lm.get("/master/slaves")["slaves"]} for lm in (one, two)]
    assert hosts[0] == {one.block.agent_ip(0), one.block.agent_ip(1)} and not hosts[0] & hosts[1]
    for lm in (one, two):
        with pytest.raises(addresses.AddressError):
            addresses.claim("a second cluster", blocks=[lm.block.index])
    index = one.block.index
    one.stop()
    addresses.claim("after the fixture stopped", blocks=[index]).release()
