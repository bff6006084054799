"""The Apache Mesos engine of the local cluster helpers: a master registered in ZooKeeper and three
agents with the zone/rack attributes kmf places by, each with its own runtime dir and fetcher cache."""
from __future__ import annotations

import pytest

from localmesos.cli import get_json

pytestmark = pytest.mark.timeout(180)


def test_master_and_agents_register(apache_factory):
    am = apache_factory(agents=3)
    state = am.state()
    assert state["version"].startswith("1."), state["version"]
    slaves = {s["hostname"]: s for s in state["slaves"]}
    assert sorted(slaves) == sorted(a.ip for a in am.agents)
    assert [slaves[a.ip]["attributes"]["rack"] for a in am.agents] == ["r0", "r1", "r2"]
    for agent in am.agents:  # the agent's own view of its flags
        flags = get_json(agent.url + "/flags")["flags"]
        assert flags["runtime_dir"] == str(agent.work_dir / "run")
        assert flags["fetcher_cache_dir"] == str(agent.work_dir / "fetch")
