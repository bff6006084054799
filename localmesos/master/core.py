"""The master's state machine: frameworks, agents, offers, tasks (pure: no I/O, time passed in).

Every public method takes ``now`` where time matters and appends effects (``model.Send``,
``model.Close``, ``model.AgentCall``, ...) that the HTTP shell performs after :meth:`drain`. The
shell serialises calls with one lock. Operations of ACCEPT live in :mod:`.accept`, agent-side
events in :mod:`.agents_core`; both work on this object.
"""
from __future__ import annotations

import collections
import itertools
from typing import Any, Callable

from kmfwire.task_states import is_terminal
from mesoslib.resources import Resources

from . import allocator, maintenance
from .model import (
    Agent,
    AgentCall,
    Close,
    Filter,
    Framework,
    Offer,
    Send,
    StopPinging,
    Task,
    b64_bytes,
    id_of,
)
from .statuses import error_event, master_status, task_status, update_event
from .validation import framework_info_problem

DEFAULT_REFUSE = 5.0
MAX_REFUSE = 365 * 24 * 3600.0


def refuse_seconds(filters: Any) -> float:
    """``Filters.refuse_seconds`` as Mesos applies it: 5 s by default or when negative, at most 365
    days, 0 for none, and at least 1 s otherwise."""
    if not isinstance(filters, dict) or "refuse_seconds" not in filters:
        return DEFAULT_REFUSE
    try:
        value = float(filters["refuse_seconds"])
    except (TypeError, ValueError):
        return DEFAULT_REFUSE
    if value != value or value < 0:
        return DEFAULT_REFUSE
    if value == 0:
        return 0.0
    return min(max(value, 1.0), MAX_REFUSE)


class MasterCore:
    def __init__(
        self,
        master_id: str,
        master_info: dict[str, Any],
        *,
        heartbeat_interval: float = 15.0,
        max_agent_ping_timeouts: int = 5,
        agent_reregister_timeout: float = 600.0,
        offer_timeout: float | None = None,
        recovered_agents: dict[str, dict[str, Any]] | None = None,
        now: float = 0.0,
    ) -> None:
        self.master_id = master_id
        self.master_info = master_info
        self.heartbeat_interval = heartbeat_interval
        self.max_agent_ping_timeouts = max_agent_ping_timeouts
        self.agent_reregister_timeout = agent_reregister_timeout
        self.offer_timeout = offer_timeout
        self.start_time = now
        self.frameworks: dict[str, Framework] = {}
        self.completed_frameworks: collections.deque[Framework] = collections.deque(maxlen=50)
        self.removed_framework_ids: set[str] = set()
        self.agents: dict[str, Agent] = {}
        self.unreachable: dict[str, Agent] = {}
        self.gone: set[str] = set()
        self.recovered: dict[str, dict[str, Any]] = dict(recovered_agents or {})
        self.known_agents: dict[str, dict[str, Any]] = dict(recovered_agents or {})
        self.offers: dict[str, Offer] = {}
        self.filters: list[Filter] = []
        self.counters: collections.Counter[str] = collections.Counter()
        self._framework_seq = itertools.count()
        self._agent_seq = itertools.count()
        self._offer_seq = itertools.count()
        self._effects: list[Any] = []
        self.maintenance = maintenance.Maintenance()
        self.draining: dict[str, dict[str, Any]] = {}  # agent id -> DrainInfo state, config, start

    # ------------------------------------------------------------------ effects
    def drain(self) -> list[Any]:
        out, self._effects = self._effects, []
        return out

    def emit(self, effect: Any) -> None:
        self._effects.append(effect)

    def send(self, fw: Framework, event: dict[str, Any]) -> bool:
        if fw.connected and fw.stream_id:
            self.emit(Send(fw.stream_id, event))
            return True
        return False

    def send_update(self, fw: Framework, status: dict[str, Any]) -> bool:
        return self.send(fw, update_event(status))

    def agent_call(self, agent_id: str, name: str, body: dict[str, Any]) -> bool:
        agent = self.agents.get(agent_id)
        if agent is None:
            return False
        self.emit(AgentCall(agent_id, agent.url, name, body))
        return True

    # ------------------------------------------------------------------ ids
    def new_framework_id(self) -> str:
        return f"{self.master_id}-{next(self._framework_seq):04d}"

    def new_agent_id(self) -> str:
        return f"{self.master_id}-S{next(self._agent_seq)}"

    def new_offer_id(self) -> str:
        return f"{self.master_id}-O{next(self._offer_seq)}"

    # ------------------------------------------------------------------ SUBSCRIBE
    def subscribe(self, call: dict[str, Any], stream_id: str, principal: str | None,
                  now: float) -> None:
        """A SUBSCRIBE whose HTTP checks passed, on the freshly opened ``stream_id``."""
        sub = call["subscribe"]
        info = dict(sub["framework_info"])
        suppressed = list(sub.get("suppressed_roles") or [])
        if principal is not None and "principal" not in info:
            info["principal"] = principal
        problem = framework_info_problem(info, suppressed)
        fid = id_of(info.get("id"))
        if problem is None and fid in self.removed_framework_ids:
            problem = "Framework has been removed"
        fw = self.frameworks.get(fid) if fid else None
        if problem is None and fw is not None and not fw.recovered:
            if fw.principal != info.get("principal"):
                problem = "Changing framework's principal is not allowed."
        if problem is not None:
            self.emit(Send(stream_id, error_event(problem)))
            self.emit(Close(stream_id))
            return
        info.setdefault("failover_timeout", 0.0)
        info.setdefault("checkpoint", False)
        self.counters["messages_register_framework" if fw is None else
                      "messages_reregister_framework"] += 1
        if fw is None:
            if fid is None:
                fid = self.new_framework_id()
                info["id"] = {"value": fid}
                fw = Framework(fid, info, registered_time=now)
            else:  # unknown id, e.g. after a master restart: adopt it
                fw = Framework(fid, info, registered_time=now, reregistered_time=now)
            self.frameworks[fid] = fw
        else:
            if fw.connected and fw.stream_id:
                self.emit(Send(fw.stream_id, error_event("Framework failed over")))
                self.emit(Close(fw.stream_id))
            self.discard_offers(fw, rescind=False)
            if not fw.recovered:
                info["user"] = fw.info.get("user", info.get("user"))
                info["checkpoint"] = fw.info.get("checkpoint", False)
            info["id"] = {"value": fid}
            if set(fw.roles) != set(self._roles_of(info)):
                self.filters = [f for f in self.filters if f.framework_id != fid]
            fw.info = info
            fw.recovered = False
            fw.reregistered_time = now
        fw.suppressed = set(suppressed)
        fw.stream_id = stream_id
        fw.connected = True
        fw.active = True
        fw.disconnected_at = None
        self.emit(
            Send(
                stream_id,
                {
                    "type": "SUBSCRIBED",
                    "subscribed": {
                        "framework_id": {"value": fid},
                        "heartbeat_interval_seconds": float(self.heartbeat_interval),
                        "master_info": self.master_info,
                    },
                },
            )
        )

    @staticmethod
    def _roles_of(info: dict[str, Any]) -> list[str]:
        caps = {c.get("type") for c in info.get("capabilities", []) if isinstance(c, dict)}
        return list(info.get("roles", [])) if "MULTI_ROLE" in caps else [info.get("role", "*")]

    def stream_closed(self, stream_id: str, now: float) -> None:
        """The SUBSCRIBE connection ``stream_id`` ended (client went away or we closed it)."""
        for fw in self.frameworks.values():
            if fw.stream_id == stream_id:
                fw.stream_id = None
                fw.connected = False
                fw.active = False
                fw.disconnected_at = now
                self.discard_offers(fw, rescind=False)
                if fw.failover_timeout <= 0:
                    self.remove_framework(fw, now)
                return

    # ------------------------------------------------------------------ offers
    def discard_offers(self, fw: Framework, rescind: bool) -> None:
        for oid, offer in list(self.offers.items()):
            if offer.framework_id == fw.id:
                del self.offers[oid]
                if rescind:
                    self.send(fw, {"type": "RESCIND", "rescind": {"offer_id": {"value": oid}}})

    def cut_off_agent(self, agent_id: str, flush: bool = False) -> None:
        """The master stops dealing with an agent it lost: its offers rescinded, filters on it
        dropped, no more pings (calls still queued to it are sent first with ``flush``)."""
        self.rescind_agent_offers(agent_id)
        self.filters = [f for f in self.filters if f.agent_id != agent_id]
        self.emit(StopPinging(agent_id, flush=flush))

    def rescind_agent_offers(self, agent_id: str) -> None:
        self._rescind_offers(lambda offer: offer.agent_id == agent_id)

    def _rescind_offers(self, match: Callable[[Offer], bool]) -> None:
        """Withdraw the outstanding offers ``match`` picks, telling their frameworks."""
        for oid, offer in list(self.offers.items()):
            if match(offer):
                del self.offers[oid]
                fw = self.frameworks.get(offer.framework_id)
                if fw is not None:
                    self.send(fw, {"type": "RESCIND", "rescind": {"offer_id": {"value": oid}}})

    def allocate(self, now: float) -> None:
        self.filters = [f for f in self.filters if f.expires > now]
        decisions = allocator.allocate(self.agents, self.frameworks, self.offers, self.filters, now)
        per_framework: dict[str, list[dict[str, Any]]] = {}
        for fw, role, agent, resources in decisions:
            offer = Offer(self.new_offer_id(), fw.id, agent.id, role, resources, created=now)
            self.offers[offer.id] = offer
            per_framework.setdefault(fw.id, []).append(self.offer_json(offer, fw, agent))
        for fid, offers in per_framework.items():
            self.send(self.frameworks[fid], {"type": "OFFERS", "offers": {"offers": offers}})
        maintenance.send_inverse_offers(self, now)
        maintenance.check_drained(self, now)

    def offer_json(self, offer: Offer, fw: Framework, agent: Agent) -> dict[str, Any]:
        alloc = offer.role if fw.multi_role else None
        data: dict[str, Any] = {
            "id": {"value": offer.id},
            "framework_id": {"value": fw.id},
            "agent_id": {"value": agent.id},
            "hostname": agent.hostname,
            "url": {
                "scheme": "http",
                "address": {"hostname": agent.hostname, "ip": agent.ip, "port": agent.port},
                "path": "/slave(1)",
            },
            "resources": offer.resources.allocated_to(alloc).to_json(fw.resource_format),
            "attributes": agent.attributes,
        }
        if agent.info.get("domain"):
            data["domain"] = agent.info["domain"]
        executor_ids = sorted(eid for (aid, eid) in fw.executors if aid == agent.id)
        if executor_ids:
            data["executor_ids"] = [{"value": e} for e in executor_ids]
        if alloc is not None:
            data["allocation_info"] = {"role": alloc}
        unavailability = maintenance.offer_unavailability(self, agent)
        if unavailability is not None:
            data["unavailability"] = unavailability
        return data

    def take_offers(self, fw: Framework, offer_ids: list[str]) -> None:
        for oid in offer_ids:
            offer = self.offers.get(oid)
            if offer is not None and offer.framework_id == fw.id:
                del self.offers[oid]

    def add_filter(self, fw: Framework, role: str, agent_id: str, resources: Resources,
                   seconds: float, now: float) -> None:
        if seconds > 0 and resources:
            self.filters.append(Filter(fw.id, role, agent_id, resources, now + seconds))

    # ------------------------------------------------------------------ calls
    def decline(self, fw: Framework, body: dict[str, Any], now: float) -> None:
        self.counters["messages_decline_offers"] += 1
        seconds = refuse_seconds(body.get("filters"))
        for oid in (id_of(o) for o in body.get("offer_ids", [])):
            offer = self.offers.get(oid) if oid else None
            if oid is None or offer is None or offer.framework_id != fw.id:
                continue
            del self.offers[oid]
            self.add_filter(fw, offer.role, offer.agent_id, offer.resources, seconds, now)

    def revive(self, fw: Framework, body: dict[str, Any] | None) -> None:
        roles = list((body or {}).get("roles") or []) or fw.roles
        fw.suppressed -= set(roles)
        self.filters = [
            f for f in self.filters if not (f.framework_id == fw.id and f.role in roles)
        ]

    def suppress(self, fw: Framework, body: dict[str, Any] | None) -> None:
        roles = list((body or {}).get("roles") or []) or fw.roles
        fw.suppressed |= set(roles)

    def kill(self, fw: Framework, body: dict[str, Any], now: float) -> None:
        self.counters["messages_kill_task"] += 1
        tid = id_of(body.get("task_id")) or ""
        aid = id_of(body.get("agent_id"))
        task = fw.tasks.get(tid)
        if task is None:
            # As Mesos' Master::kill: a task not in the framework's tasks (an unreachable one is
            # not) is answered by an explicit reconciliation of it, e.g. TASK_UNREACHABLE again.
            self.counters["messages_reconcile_tasks"] += 1
            self.reconcile_unknown(fw, tid, aid, now)
            return
        if aid is not None and aid != task.agent_id:
            return
        call = {"framework_id": {"value": fw.id}, "task_id": {"value": tid}}
        if body.get("kill_policy") is not None:
            call["kill_policy"] = body["kill_policy"]
        self.agent_call(task.agent_id, "kill_task", call)

    def shutdown(self, fw: Framework, body: dict[str, Any]) -> None:
        aid = id_of(body.get("agent_id")) or ""
        self.agent_call(
            aid,
            "shutdown_executor",
            {"framework_id": {"value": fw.id}, "executor_id": body.get("executor_id")},
        )

    def message(self, fw: Framework, body: dict[str, Any]) -> None:
        aid = id_of(body.get("agent_id")) or ""
        self.agent_call(
            aid,
            "framework_message",
            {
                "framework_id": {"value": fw.id},
                "executor_id": body.get("executor_id"),
                "data": body.get("data", ""),
            },
        )

    def acknowledge(self, fw: Framework, body: dict[str, Any]) -> None:
        aid = id_of(body.get("agent_id")) or ""
        tid = id_of(body.get("task_id")) or ""
        uuid = body.get("uuid")
        task = fw.tasks.get(tid)
        delivered = self.agent_call(
            aid,
            "acknowledge",
            {"framework_id": {"value": fw.id}, "task_id": {"value": tid}, "uuid": uuid},
        )
        self.counters[
            "valid_status_update_acknowledgements" if delivered
            else "invalid_status_update_acknowledgements"
        ] += 1
        if (
            task is not None
            and task.forwarded_uuid is not None
            and b64_bytes(task.forwarded_uuid) == b64_bytes(uuid)
            and task.forwarded_state is not None
            and is_terminal(task.forwarded_state)
        ):
            self.complete_task(fw, task)

    def complete_task(self, fw: Framework, task: Task) -> None:
        fw.tasks.pop(task.id, None)
        fw.unreachable_tasks.pop(task.id, None)
        fw.completed_tasks.append(task)

    # ------------------------------------------------------------------ reconciliation
    def reconcile(self, fw: Framework, body: dict[str, Any], now: float) -> None:
        self.counters["messages_reconcile_tasks"] += 1
        entries = body.get("tasks") or []
        task: Task | None
        if not entries:
            for task in list(fw.tasks.values()):
                self.send_update(fw, self.latest_status(fw, task, now))
            return
        for entry in entries:
            tid = id_of(entry.get("task_id")) or ""
            aid = id_of(entry.get("agent_id"))
            task = fw.find_task(tid)
            if task is not None and (aid is None or aid == task.agent_id):
                self.send_update(fw, self.latest_status(fw, task, now))
            else:
                self.reconcile_unknown(fw, tid, aid, now)

    def latest_status(self, fw: Framework, task: Task, now: float) -> dict[str, Any]:
        state = task.forwarded_state or task.state
        if task.id in fw.unreachable_tasks:
            state = "TASK_UNREACHABLE"
        return task_status(
            fw, task, state, "REASON_RECONCILIATION", "Reconciliation: Latest task state", now
        )

    def reconcile_unknown(self, fw: Framework, tid: str, aid: str | None, now: float) -> None:
        """Explicit reconciliation of a task the master does not know, as Mesos answers it: no answer while
    its agent is recovered but not yet re-registered, else TASK_GONE, TASK_UNREACHABLE,
    TASK_GONE_BY_OPERATOR or TASK_UNKNOWN by what is known of the agent (TASK_LOST for frameworks
    that are not partition-aware)."""
        unreachable_time = None
        if aid is not None:
            if aid in self.recovered:
                return
            if aid in self.agents:
                state, message = "TASK_GONE", "Reconciliation: Task is unknown to the agent"
            elif aid in self.gone:
                state, message = "TASK_GONE_BY_OPERATOR", "Reconciliation: Task is gone"
            elif aid in self.unreachable:
                state, message = "TASK_UNREACHABLE", "Reconciliation: Task is unreachable"
                unreachable_time = self.unreachable[aid].unreachable_time
            else:
                state, message = "TASK_UNKNOWN", "Reconciliation: Task is unknown"
        else:
            if self.recovered:
                return
            state, message = "TASK_UNKNOWN", "Reconciliation: Task is unknown"
        self.send_update(
            fw,
            master_status(
                tid,
                fw.visible_state(state),
                "REASON_RECONCILIATION",
                message,
                now,
                agent_id=aid,
                unreachable_time=unreachable_time,
            ),
        )

    # ------------------------------------------------------------------ removal
    def teardown(self, fw: Framework, now: float) -> None:
        self.remove_framework(fw, now)

    def remove_framework(self, fw: Framework, now: float) -> None:
        if fw.stream_id:
            self.emit(Close(fw.stream_id))
            fw.stream_id = None
        self.discard_offers(fw, rescind=False)
        self.filters = [f for f in self.filters if f.framework_id != fw.id]
        agent_ids = {t.agent_id for t in fw.tasks.values()} | {a for a, _ in fw.executors}
        for aid in sorted(agent_ids):
            self.agent_call(aid, "shutdown_framework", {"framework_id": {"value": fw.id}})
        for task in list(fw.tasks.values()) + list(fw.unreachable_tasks.values()):
            if not is_terminal(task.state):
                task.state = "TASK_KILLED"
                task.record_status("TASK_KILLED", now)
                task.last_status = master_status(
                    task.id, "TASK_KILLED", "REASON_FRAMEWORK_REMOVED", "Framework removed", now,
                    agent_id=task.agent_id,
                )
            fw.completed_tasks.append(task)
        fw.tasks.clear()
        fw.unreachable_tasks.clear()
        fw.executors.clear()
        fw.connected = fw.active = False
        fw.unregistered_time = now
        self.frameworks.pop(fw.id, None)
        self.completed_frameworks.append(fw)
        self.removed_framework_ids.add(fw.id)

    def tick(self, now: float) -> None:
        """Timers: framework failover timeouts, agents that did not re-register in time."""
        for fw in list(self.frameworks.values()):
            if (
                not fw.connected
                and fw.disconnected_at is not None
                and now >= fw.disconnected_at + fw.failover_timeout
            ):
                self.remove_framework(fw, now)
        timeout = self.offer_timeout
        if timeout is not None:
            self._rescind_offers(lambda offer: now >= offer.created + timeout)
        if self.recovered and now >= self.start_time + self.agent_reregister_timeout:
            self.recovered.clear()
        self.filters = [f for f in self.filters if f.expires > now]
