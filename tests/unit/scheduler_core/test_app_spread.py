"""Stream instances spread over agents by default (the fewest of the app's instances first, among
the agents that can take one), keep off brokers' agents with `avoid_brokers`, and pack by first fit
when the app gives placement rules of its own."""
from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers.core_kit import Scenario, spec

ONE_BROKER = """\
name: kafka
mesos: {master: 'zk://127.0.0.1:2181/mesos'}
zookeeper: {connect: '127.0.0.1:2181'}
kafka: {brokers: 1, cpus: 1, mem_mb: 1024, heap_mb: 256, disk_mb: 1000}
apps:
  - {name: wc, count: %d, cpus: 0.5, mem_mb: 256, command: ['-m', 'x']%s}
policies: {backoff_initial_s: 1, backoff_max_s: 8, permanent_failure_timeout_s: 30, deploy_strategy: parallel}
"""


def _deploy(count: int, extra: str = "", agents: int = 3, resources: str | None = None) -> Scenario:
    kwargs = {"resources": resources} if resources else {}
    sim = Scenario(spec(ONE_BROKER % (count, extra)), agents=agents, **kwargs)
    sim.send.subscribed()
    sim.run_all_ready()
    return sim


def _agents_of(sim: Scenario, count: int) -> list[str]:
    return [sim.record(f"wc-{i}").agent_id for i in range(count)]


def test_three_instances_land_on_three_agents_though_one_agent_fits_them_all():
    sim = _deploy(3)
    assert len(set(_agents_of(sim, 3))) == 3


def test_placement_rules_of_the_app_replace_the_spread():
    sim = _deploy(3, ", placement: ['zone:LIKE:z.*']")
    assert len(set(_agents_of(sim, 3))) == 1  # first fit: the first agent takes all three


def test_avoid_brokers_keeps_every_instance_off_the_brokers_agent():
    sim = _deploy(4, ", avoid_brokers: true")
    broker_agent = sim.record("broker-0").agent_id
    where = _agents_of(sim, 4)
    assert broker_agent not in where and len(set(where)) == 2, where


def test_a_full_agent_does_not_hold_instances_back():
    # each agent: room for the broker and one instance, or for three instances
    sim = _deploy(4, agents=2, resources="cpus:1.8;mem:4096;disk:20000;ports:[31000-31100]")
    where = Counter(_agents_of(sim, 4))
    assert sorted(where.values()) == [1, 3], where


@settings(max_examples=15, deadline=None)
@given(agents=st.integers(1, 5), count=st.integers(0, 12))
def test_instances_are_even_over_agents_with_room(agents, count):
    # every agent has room for four instances beside the broker: evenness is always possible
    count = min(count, 4 * agents)
    sim = _deploy(count, agents=agents)
    where = Counter(_agents_of(sim, count))
    per_agent = [where.get(a.id, 0) for a in sim.agents]
    assert sum(per_agent) == count
    assert max(per_agent) - min(per_agent) <= 1, per_agent
