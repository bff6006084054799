"""The scenario runner: a core state, a simulated cluster, `send` verbs that make events and run
them through `decide`, and the outcome of every step to expect things of. Every step is checked
for the write-ahead rule (write_ahead.py) before its actions reach the cluster."""
from __future__ import annotations

from typing import Any, Mapping

from config import load_text
from scheduler.core import actions as act
from scheduler.core import events as ev
from scheduler.core.decide import decide, initial_state, plans
from tests.helpers.core_kit import write_ahead
from tests.helpers.core_kit.cluster import DEFAULT_RESOURCES, Cluster
from tests.helpers.core_kit.describe import describe
from tests.helpers.core_kit.outcome import Outcome

# a service of one broker, for scenarios about its apps (which follow, from "apps:")
ONE_BROKER = """\
name: kafka
mesos: {master: 'zk://127.0.0.1:2181/mesos'}
zookeeper: {connect: '127.0.0.1:2181'}
kafka: {brokers: 1, cpus: 1, mem_mb: 1024, heap_mb: 256, disk_mb: 1000}
"""
BASE = """\
name: kafka
mesos: {master: 'zk://127.0.0.1:2181/mesos'}
zookeeper: {connect: '127.0.0.1:2181'}
kafka: {brokers: 3, cpus: 1, mem_mb: 1024, heap_mb: 256, disk_mb: 1000, placement: ['hostname:UNIQUE']}
apps:
  - {name: wc, count: 2, cpus: 0.5, mem_mb: 256, command: ['-m', 'x']}
policies: {backoff_initial_s: 1, backoff_max_s: 8, permanent_failure_timeout_s: 30}
"""
CLUSTER_ID = "MkU3OEVBNTcwNTJENDM2Qk"


def spec(text: str = BASE):
    return load_text(text, "test.yaml", env={})


class Send:
    """The events a scenario sends, stamped with the scenario's clock; each returns the step's
    `Outcome` (also `scenario.expect` until the next step)."""

    def __init__(self, scenario: "Scenario") -> None:
        self._s = scenario

    def event(self, event: Any) -> Outcome:
        """Any event as it is (its own `now`)."""
        return self._s.step(event)

    def subscribed(self, framework_id: str = "fw") -> Outcome:
        return self._s.step(ev.Subscribed(framework_id, self._s.now))

    def disconnected(self) -> Outcome:
        return self._s.step(ev.Disconnected(self._s.now))

    def offers(self, *docs: Mapping[str, Any], prefix: str = "O", every_agent: bool = False) -> Outcome:
        """An offer round: these offer documents, or else one offer of what is free on each live
        agent of the cluster (on every agent with `every_agent`), ids `prefix` + a counter."""
        offered = list(docs) or self._s.cluster.offer_docs(prefix, every_agent)
        return self._s.step(ev.Offers(tuple(offered), self._s.now))

    def offer(self, doc_or_agent: Mapping[str, Any] | str) -> Outcome:
        """One offer: a document, or what is free on the agent of this id."""
        if isinstance(doc_or_agent, str):
            return self.offers(*self._s.cluster.offer_docs(only=doc_or_agent))
        return self.offers(doc_or_agent)

    def rescinded(self, offer_id: str) -> Outcome:
        return self._s.step(ev.OfferRescinded(offer_id, self._s.now))

    def status(self, pod_or_task: str, state: str, ready: bool = False, **extra: Any) -> Outcome:
        """An executor's update (with a uuid) of a task, named by its id or by its pod (the pod's
        current task); `ready` adds the kmf.ready label and healthy. A task that ends gives its
        resources back to its agent."""
        task_id = pod_or_task if "__" in pod_or_task else self._s.record(pod_or_task).task_id
        doc = self._s.cluster.status_doc(task_id, state, ready, **extra)
        return self._s.step(ev.Status(doc, self._s.now))

    def update(self, doc: Mapping[str, Any]) -> Outcome:
        """A status update exactly as given (a master's answer, a reconciliation, a bad one)."""
        return self._s.step(ev.Status(doc, self._s.now))

    def tick(self, advance: float = 0.0) -> Outcome:
        """Move the clock by `advance` seconds, then a Tick."""
        self._s.now += advance
        return self._s.step(ev.Tick(self._s.now))

    def command(self, kind: str, command_id: str = "c", **args: Any) -> Outcome:
        return self._s.step(ev.Command(command_id, kind, args, self._s.now))

    def agent_lost(self, agent_id: str) -> Outcome:
        return self._s.step(ev.AgentLost(agent_id, self._s.now))

    def kafka_health(self, brokers: Any = None, under_min_isr_if_down: Mapping[int, int] | None = None,
                     **fields: Any) -> Outcome:
        """A Kafka metadata sample asked now: these brokers (all of the spec's by default)."""
        nodes = frozenset(range(self._s.state.spec.kafka.brokers) if brokers is None else brokers)
        return self._s.step(ev.KafkaHealth(self._s.now, nodes, dict(under_min_isr_if_down or {}), **fields))

    def kafka_healthy(self, **fields: Any) -> Outcome:
        """A sample asked now: every broker registered, every replica in sync (unless `fields`)."""
        return self.kafka_health(**fields)


class Scenario:
    """A scheduler core and a cluster: ``send`` makes events, ``expect`` is the last step's
    outcome. ``state``, ``now`` (the clock; tests move it) and ``actions`` (every action so far)
    are plain attributes; ``store`` is what the Persists wrote (write_ahead.StoreModel)."""

    def __init__(self, spec_: Any, agents: int = 3, resources: str = DEFAULT_RESOURCES,
                 check_write_ahead: bool = True) -> None:
        self.cluster = Cluster(agents, resources)
        self.state = initial_state(spec_, "c1", None, {}, {}, cluster_id=CLUSTER_ID)
        self.store = write_ahead.StoreModel()
        self.check_write_ahead = check_write_ahead
        self.now = 1000.0
        self.actions: list[Any] = []
        self.steps = 0
        self.send = Send(self)
        self.expect: Outcome = Outcome((), None, self.state, self.now)

    # what the cluster holds
    @property
    def agents(self):
        return self.cluster.agents

    @property
    def tasks(self) -> dict[str, dict[str, Any]]:
        """Launched tasks still running on the cluster: task id → TaskInfo, agent, resources used."""
        return self.cluster.tasks

    @property
    def offers(self):
        return self.cluster.offers

    def record(self, pod: str):
        return self.state.tasks[pod]

    def plans(self) -> dict[str, Any]:
        """Every plan as the API shows it now (``sim.expect.plans()``: as the last step left them)."""
        return plans(self.state, self.now)

    def step(self, event: Any) -> Outcome:
        """One decision: `decide`, the write-ahead checks, then the actions applied to the cluster."""
        before = self.state
        self.state, actions = decide(before, event)
        out = Outcome(actions, event, self.state, getattr(event, "now", self.now))
        if self.check_write_ahead:
            write_ahead.check(out, self.store, before.properties, lambda a: describe(a, event))
            write_ahead.check_recorded(self.state, self.store, describe(out, event))
        else:
            for a in out.persists:
                self.store.apply(a)
        self.actions.extend(out)
        self.steps += 1
        for a in out:
            if isinstance(a, act.Accept):
                self.cluster.accept(a.offer_ids, a.operations)
            elif isinstance(a, act.Decline):
                self.cluster.decline(a.offer_ids)
        self.expect = out
        return out

    def decide_only(self, event: Any) -> Outcome:
        """What `decide` would do now, without taking it: state, store and cluster stay as they are
        (a scheduler that dies before performing anything)."""
        state, actions = decide(self.state, event)
        out = Outcome(actions, event, state, getattr(event, "now", self.now))
        if self.check_write_ahead:  # on a copy of the store: the rule holds for every decision
            write_ahead.check(out, self.store.copy(), self.state.properties, lambda a: describe(a, event))
        return out

    def restart(self, tasks: Mapping[str, Any], properties: Mapping[str, str], framework_id: str | None = "fw",
                **kwargs: Any) -> None:
        """A new scheduler process that loaded these records and properties from ZooKeeper; the
        store is what it loaded."""
        self.state = initial_state(self.state.spec, "c1", framework_id, tasks, properties, **kwargs)
        self.store = write_ahead.StoreModel(self.state.tasks, {k: v for k, v in self.state.properties.items()
                                                                if not k.startswith("unsaved.")})

    def history(self, since: int = 0) -> Outcome:
        """Every action from the `since`-th on, as one outcome (state: the current one)."""
        return Outcome(self.actions[since:], "several steps", self.state, self.now)

    def run_all_ready(self, rounds: int = 10) -> None:
        """Offer rounds; every launched task reports running and ready at once; the clock moves
        1 s and ticks after each round."""
        for _ in range(rounds):
            self.send.offers()
            for tid in list(self.tasks):
                r = self.state.by_task_id(tid)
                if r is not None and not r.ready:
                    self.send.status(tid, "TASK_RUNNING", ready=True)
            self.send.tick(1)


def subscribed(text: str = BASE, agents: int = 3, **kwargs: Any) -> Scenario:
    """A scenario of this config whose framework has subscribed (nothing launched yet)."""
    sim = Scenario(spec(text), agents=agents, **kwargs)
    sim.send.subscribed()
    return sim


def deployed(text: str = BASE, agents: int = 3) -> Scenario:
    """A simulated service whose deploy is done: every pod ready, Kafka healthy."""
    sim = subscribed(text, agents)
    sim.run_all_ready()
    sim.send.kafka_healthy()
    return sim
