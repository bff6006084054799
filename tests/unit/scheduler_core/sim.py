"""A tiny in-memory cluster for driving the pure core: agents with resources that apply ACCEPT
operations exactly (mesoslib.resources) and offer what is left. Test scaffolding, not a master."""
from __future__ import annotations

import itertools
from typing import Any

import attrs

from config import load_text
from mesoslib.resources import Resources, parse_resources_flag
from scheduler.core import actions as act
from scheduler.core import events as ev
from scheduler.core.decide import decide, initial_state

BASE = """\
name: kafka
mesos: {master: 'zk://127.0.0.1:2181/mesos'}
zookeeper: {connect: '127.0.0.1:2181'}
kafka: {brokers: 3, cpus: 1, mem_mb: 1024, heap_mb: 256, disk_mb: 1000, placement: ['hostname:UNIQUE']}
apps:
  - {name: wc, count: 2, cpus: 0.5, mem_mb: 256, command: ['-m', 'x']}
policies: {backoff_initial_s: 1, backoff_max_s: 8, permanent_failure_timeout_s: 30}
"""


def spec(text: str = BASE):
    return load_text(text, "test.yaml", env={})


@attrs.define
class Agent:
    id: str
    hostname: str
    free: Resources
    zone: str
    alive: bool = True


class Sim:
    def __init__(self, spec_, agents: int = 3, resources: str = "cpus:4;mem:8192;disk:20000;ports:[31000-31100]"):
        self.agents = [Agent(f"A{i}", f"10.0.0.{i + 1}", parse_resources_flag(resources), f"z{i % 3}")
                       for i in range(agents)]
        self.state = initial_state(spec_, "c1", None, {}, {}, cluster_id="MkU3OEVBNTcwNTJENDM2Qk")
        self.now = 1000.0
        self.offer_ids = itertools.count()
        self.offers: dict[str, Agent] = {}
        self.actions: list[Any] = []
        self.tasks: dict[str, dict] = {}  # task id → TaskInfo of launched tasks
        self.killed: list[str] = []
        self.persisted: list[act.Persist] = []

    def step(self, event) -> tuple:
        self.state, out = decide(self.state, event)
        self.actions.extend(out)
        for a in out:
            if isinstance(a, act.Persist):
                self.persisted.append(a)
            elif isinstance(a, act.Accept):
                self.apply(a)
            elif isinstance(a, act.Decline):
                for oid in a.offer_ids:
                    self.offers.pop(oid, None)
            elif isinstance(a, act.Kill):
                self.killed.append(a.task_id)
        return out

    def offer_round(self) -> tuple:
        docs = []
        for agent in self.agents:
            if not agent.alive or not agent.free:
                continue
            oid = f"O{next(self.offer_ids)}"
            self.offers[oid] = agent
            docs.append({"id": {"value": oid}, "agent_id": {"value": agent.id}, "hostname": agent.hostname,
                         "resources": agent.free.to_json("pre"),
                         "attributes": [{"name": "zone", "type": "TEXT", "text": {"value": agent.zone}}]})
        return self.step(ev.Offers(tuple(docs), self.now))

    def apply(self, accept: act.Accept) -> None:
        agent = self.offers.pop(accept.offer_ids[0])
        pool = agent.free
        for op in accept.operations:
            kind = op["type"]
            if kind == "RESERVE":
                res = Resources.from_json(op["reserve"]["resources"])
                assert pool.contains(res.unreserve()), f"reserving more than offered: {res}"
                pool = pool - res.unreserve() + res
            elif kind == "UNRESERVE":
                res = Resources.from_json(op["unreserve"]["resources"])
                assert pool.contains(res)
                pool = pool - res + res.unreserve()
            elif kind == "CREATE":
                vol = Resources.from_json(op["create"]["volumes"])
                plain = Resources(v.without_volume() for v in vol)
                assert pool.contains(plain)
                pool = pool - plain + vol
            elif kind == "DESTROY":
                vol = Resources.from_json(op["destroy"]["volumes"])
                assert pool.contains(vol)
                pool = pool - vol + Resources(v.without_volume() for v in vol)
            elif kind == "LAUNCH":
                for task in op["launch"]["task_infos"]:
                    need = Resources.from_json(task["resources"]) + Resources.from_json(task["executor"]["resources"])
                    assert pool.contains(need), f"launching more than offered: {need} from {pool}"
                    pool = pool - need
                    self.tasks[task["task_id"]["value"]] = {"info": task, "agent": agent, "uses": need}
        agent.free = pool

    def status(self, task_id: str, state: str, ready: bool = False, **extra) -> tuple:
        doc = {"task_id": {"value": task_id}, "state": state, "uuid": "dXVpZA==", "source": "SOURCE_EXECUTOR",
               "agent_id": {"value": self.tasks[task_id]["agent"].id} if task_id in self.tasks else None}
        if ready:
            doc["labels"] = {"labels": [{"key": "kmf.ready", "value": "true"}]}
            doc["healthy"] = True
        doc.update(extra)
        if state in ("TASK_FINISHED", "TASK_FAILED", "TASK_KILLED", "TASK_LOST", "TASK_ERROR", "TASK_GONE") \
                and task_id in self.tasks:
            t = self.tasks.pop(task_id)
            t["agent"].free = t["agent"].free + t["uses"]
        return self.step(ev.Status(doc, self.now))

    def run_all_ready(self, rounds: int = 10) -> None:
        """Offer rounds; every launched task reports running and ready at once."""
        for _ in range(rounds):
            self.offer_round()
            for tid, rec in list(self.tasks.items()):
                r = self.state.by_task_id(tid)
                if r is not None and not r.ready:
                    self.status(tid, "TASK_RUNNING", ready=True)
            self.now += 1
            self.step(ev.Tick(self.now))

    def kafka_healthy(self, **extra) -> tuple:
        """A Kafka metadata sample asked now: every broker registered, every replica in sync."""
        from scheduler.core.pods import desired_pods
        nodes = frozenset(p.node_id for p in desired_pods(self.state.spec) if "broker" in p.roles)
        return self.step(ev.KafkaHealth(self.now, nodes, **{"under_min_isr_if_down": {}, **extra}))

    def record(self, pod: str):
        return self.state.tasks[pod]


def deployed(text: str = BASE, agents: int = 3) -> Sim:
    """A simulated service whose deploy is done: every pod ready, Kafka healthy."""
    sim = Sim(spec(text), agents=agents)
    sim.step(ev.Subscribed("fw", sim.now))
    sim.run_all_ready()
    sim.kafka_healthy()
    return sim
