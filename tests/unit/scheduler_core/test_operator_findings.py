"""Smaller findings of running kmf on Apache Mesos (issue 13), each through the pure core or the
config alone: what `kmf pods` says of an unreachable task, where a replaced pod went, the principal
of the demo's reservations, and the address of kmf's page that the Mesos UI links to."""
from __future__ import annotations

from pathlib import Path

import config
from scheduler.api.views import pod_info
from scheduler.main import advertised_host
from tests.helpers.core_kit import Agent, Scenario, deployed

LOCAL_YAML = Path(__file__).resolve().parents[3] / "config" / "local.yaml"
DEMO_ENV = {"KMF_MASTER": "zk://127.0.9.1:2181/mesos", "KMF_ZK": "127.0.9.1:2181", "KMF_API_PORT": "0"}


def test_an_unreachable_task_is_not_shown_healthy():
    sim = deployed()
    rec = sim.record("broker-1")
    assert pod_info(sim.state, "broker-1")["healthy"] is True
    sim.send.update({"task_id": {"value": rec.task_id}, "state": "TASK_UNREACHABLE",
                     "agent_id": {"value": rec.agent_id}, "source": "SOURCE_MASTER",
                     "reason": "REASON_AGENT_REMOVED"})
    assert pod_info(sim.state, "broker-1")["healthy"] is None  # unknown, not yes
    # back with its agent (the master's word carries no health): still unknown until the executor says
    sim.send.update({"task_id": {"value": rec.task_id}, "state": "TASK_RUNNING",
                     "agent_id": {"value": rec.agent_id}, "source": "SOURCE_MASTER"})
    assert pod_info(sim.state, "broker-1")["healthy"] is None
    sim.send.status(rec.task_id, "TASK_RUNNING", ready=True)
    assert pod_info(sim.state, "broker-1")["healthy"] is True


def test_kmf_pods_says_unknown_for_a_task_of_unknown_health():
    from kmf.operator_cli import pod_row
    unreachable = {"name": "broker-1", "state": "TASK_UNREACHABLE", "task_id": "broker-1__x", "healthy": None}
    assert pod_row(unreachable)[3] == "unknown"
    assert pod_row({"name": "broker-1", "state": "PENDING", "task": None})[3] == "-"
    assert pod_row({**unreachable, "state": "TASK_RUNNING", "healthy": True})[3] == "yes"


def _replace(sim: Scenario, pod: str) -> tuple[str, str]:
    """Replace `pod` and let it be placed anew; (host before, its message once placed)."""
    before = sim.record(pod).hostname
    kill = sim.send.command("replace_pod", pod=pod, confirm=True, force=True).killed(pod).kills[0]
    sim.send.status(kill.task_id, "TASK_KILLED")
    sim.now += 1
    sim.send.offers()  # releases the old reservation
    sim.send.offers()  # places it anew
    return before, sim.record(pod).message


def test_a_broker_replaced_onto_its_own_agent_says_so():
    sim = deployed(agents=3)  # hostname:UNIQUE over three agents: its own is the only one left
    before, message = _replace(sim, "broker-1")
    assert sim.record("broker-1").hostname == before
    assert message == f"launched on {before} (the agent it was on before)"


def test_a_broker_replaced_onto_another_agent_names_both():
    sim = deployed(agents=3)
    sim.agents.append(Agent("A9", "10.0.0.99", sim.agents[0].free, "z0"))
    before = sim.record("broker-1").hostname
    for agent in sim.agents:  # its own agent is full now: it has to move
        if agent.hostname == before:
            agent.alive = False
    _, message = _replace(sim, "broker-1")
    assert message == f"launched on 10.0.0.99 (moved from {before})"


def test_an_app_instance_replaced_says_where_it_was_launched():
    sim = deployed(agents=3)
    before, message = _replace(sim, "wc-0")
    where = sim.record("wc-0").hostname
    assert message == (f"launched on {where} (the agent it was on before)" if where == before
                       else f"launched on {where} (moved from {before})")


def test_the_demo_config_reserves_with_a_principal():
    demo = config.load_file(LOCAL_YAML, env=DEMO_ENV)
    assert demo.mesos.principal
    sim = Scenario(demo, agents=3)
    sim.send.subscribed()
    sim.send.offers().reserved()
    reserves = sim.history().operations("RESERVE")
    assert reserves
    for op in reserves:
        for res in op["reserve"]["resources"]:
            assert res["reservation"]["principal"] == demo.mesos.principal


def test_the_demo_scheduler_listens_and_is_linked_on_its_host_address():
    """Marathon gives the scheduler HOST; the demo's config binds there, so the framework's
    webui_url (what the Mesos UI links to) is an address of the cluster, not 127.0.0.1."""
    demo = config.load_file(LOCAL_YAML, env={**DEMO_ENV, "HOST": "127.0.9.1"})
    assert demo.api.bind == "127.0.9.1"
    assert advertised_host(demo.api.bind) == "127.0.9.1"


def test_a_wildcard_bind_is_advertised_as_the_host_marathon_gives(monkeypatch):
    monkeypatch.delenv("LIBPROCESS_IP", raising=False)
    monkeypatch.setenv("HOST", "agent-7.example.internal")
    assert advertised_host("0.0.0.0") == "agent-7.example.internal"
    assert advertised_host("10.1.2.3") == "10.1.2.3"
