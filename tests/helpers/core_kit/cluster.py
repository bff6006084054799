"""A tiny in-memory cluster for driving the pure core: agents with resources that apply ACCEPT
operations exactly (mesoslib.resources) and offer what is left. Test scaffolding, not a master."""
from __future__ import annotations

import itertools
from typing import Any, Mapping

import attrs

from mesoslib.resources import Resources, parse_resources_flag

DEFAULT_RESOURCES = "cpus:4;mem:8192;disk:20000;ports:[31000-31100]"
ENDED = frozenset({"TASK_FINISHED", "TASK_FAILED", "TASK_KILLED", "TASK_LOST", "TASK_ERROR", "TASK_GONE"})


@attrs.define
class Agent:
    id: str
    hostname: str
    free: Resources
    zone: str
    alive: bool = True


class Cluster:
    """Agents, the offers outstanding, and the tasks launched on them (task id → TaskInfo, agent,
    resources used). `accept` asserts that nothing is used beyond what was offered."""

    def __init__(self, agents: int = 3, resources: str = DEFAULT_RESOURCES) -> None:
        self.agents = [Agent(f"A{i}", f"10.0.0.{i + 1}", parse_resources_flag(resources), f"z{i % 3}")
                       for i in range(agents)]
        self.offer_ids = itertools.count()
        self.offers: dict[str, Agent] = {}
        self.tasks: dict[str, dict[str, Any]] = {}

    def agent(self, agent_id: str) -> Agent:
        return next(a for a in self.agents if a.id == agent_id)

    def offer_docs(self, prefix: str = "O", every_agent: bool = False,
                   only: str | None = None) -> list[dict[str, Any]]:
        """One offer of what is free on each live agent (or on every agent, even a dead or full
        one, when `every_agent`; or on the agent of id `only`), remembered until answered."""
        docs = []
        for agent in self.agents:
            if only is not None and agent.id != only:
                continue
            if only is None and not every_agent and (not agent.alive or not agent.free):
                continue
            oid = f"{prefix}{next(self.offer_ids)}"
            self.offers[oid] = agent
            docs.append({"id": {"value": oid}, "agent_id": {"value": agent.id}, "hostname": agent.hostname,
                         "resources": agent.free.to_json("pre"),
                         "attributes": [{"name": "zone", "type": "TEXT", "text": {"value": agent.zone}}]})
        return docs

    def decline(self, offer_ids: tuple[str, ...]) -> None:
        for oid in offer_ids:
            self.offers.pop(oid, None)

    def accept(self, offer_ids: tuple[str, ...], operations: tuple[Mapping[str, Any], ...]) -> None:
        agent = self.offers.pop(offer_ids[0])  # an ACCEPT of an offer never made fails here
        pool = agent.free
        for op in operations:
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

    def status_doc(self, task_id: str, state: str, ready: bool = False, **extra: Any) -> dict[str, Any]:
        """An executor's status update of a task; a task that ended gives its resources back."""
        doc: dict[str, Any] = {"task_id": {"value": task_id}, "state": state, "uuid": "dXVpZA==",
                               "source": "SOURCE_EXECUTOR",
                               "agent_id": {"value": self.tasks[task_id]["agent"].id} if task_id in self.tasks
                               else None}
        if ready:
            doc["labels"] = {"labels": [{"key": "kmf.ready", "value": "true"}]}
            doc["healthy"] = True
        doc.update(extra)
        if state in ENDED and task_id in self.tasks:
            t = self.tasks.pop(task_id)
            t["agent"].free = t["agent"].free + t["uses"]
        return doc

    def reservation_ids(self) -> set[str]:
        """Reservation ids (kmf.reservation labels) on the agents: free or used by a task."""
        found = {dict(r.reservations[-1].labels).get("kmf.reservation") for a in self.agents
                 for r in list(a.free) if r.is_reserved}
        found |= {dict(r.reservations[-1].labels).get("kmf.reservation") for t in self.tasks.values()
                  for r in t["uses"] if r.is_reserved}
        return found
