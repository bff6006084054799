"""Maintenance primitives as Mesos' master has them (src/master/maintenance.cpp, http.cpp): the
schedule, machine modes, inverse offers and their answers. Pure: changes the core's records and
emits effects; the HTTP shell turns :class:`MaintenanceError` into ``400`` with its message.

A machine is ``{"hostname", "ip"}``; an agent is on the machine with its hostname *and* IP (Mesos
compares both, so an operator names machines as agents report them). Modes::

    UP --(in a schedule window)--> DRAINING --(machine/down)--> DOWN --(machine/up)--> UP
     ^------(left out of a new schedule)-----'

While DRAINING, every framework with tasks, executors or offers on one of the machine's agents gets an
INVERSE_OFFERS event; its ACCEPT/DECLINE_INVERSE_OFFERS answer is kept in the status (declines and
accepts filter the next inverse offer for ``refuse_seconds``, 5 s by default), and regular offers
carry the machine's ``unavailability``. DOWN removes the machine's agents (their tasks TASK_LOST,
REASON_AGENT_REMOVED, SOURCE_MASTER; the agents are told to shut down) and refuses their
registration until the machine is UP again.
"""
from __future__ import annotations

import ipaddress
import json
from typing import TYPE_CHECKING, Any

import attrs

from kmfwire.errors import KmfError
from kmfwire.task_states import is_terminal

from .model import SaveRegistry
from .task_loss import TaskLoss, end_agent_tasks

if TYPE_CHECKING:
    from .core import MasterCore
    from .model import Agent, Framework

DEFAULT_INVERSE_REFUSE_S = 5.0
MachineKey = tuple[str, str]


class MaintenanceError(KmfError):
    """A request Mesos answers with 400 and this message."""


@attrs.define
class Machine:
    key: MachineKey
    mode: str = "UP"
    unavailability: dict[str, Any] | None = None


@attrs.define
class InverseOffer:
    id: str
    framework_id: str
    agent_id: str


@attrs.define
class Maintenance:
    windows: list[dict[str, Any]] = attrs.Factory(list)
    machines: dict[MachineKey, Machine] = attrs.Factory(dict)
    outstanding: dict[str, InverseOffer] = attrs.Factory(dict)
    # agent id -> framework id -> InverseOfferStatus JSON (the answers, shown per machine)
    statuses: dict[str, dict[str, dict[str, Any]]] = attrs.Factory(dict)
    # (framework id, agent id) -> time before which no new inverse offer is sent
    filters: dict[tuple[str, str], float] = attrs.Factory(dict)


# ---------------------------------------------------------------------- machine ids
def machine_json(key: MachineKey) -> dict[str, str]:
    hostname, ip = key
    return {**({"hostname": hostname} if hostname else {}), **({"ip": ip} if ip else {})}


def _quoted(key: MachineKey) -> str:
    return "'" + json.dumps(machine_json(key), separators=(",", ":")) + "'"


def _machine_key(doc: Any, where: str) -> MachineKey:
    if not isinstance(doc, dict):
        raise MaintenanceError(f"Expecting a JSON object for '{where}'")
    hostname, ip = str(doc.get("hostname") or ""), str(doc.get("ip") or "")
    if not hostname and not ip:
        raise MaintenanceError("Both 'hostname' and 'ip' for a machine are empty")
    if ip:
        try:
            ipaddress.IPv4Address(ip)
        except ValueError:
            raise MaintenanceError(f"Failed to parse IPv4: {ip}") from None
    return hostname, ip


def machine_keys(doc: Any) -> list[MachineKey]:
    """The body of /machine/down and /machine/up (a JSON array of MachineIDs), validated."""
    if not isinstance(doc, list):
        raise MaintenanceError("Expecting a JSON array of machines")
    if not doc:
        raise MaintenanceError("List of machines is empty")
    keys: list[MachineKey] = []
    for i, item in enumerate(doc):
        key = _machine_key(item, f"[{i}]")
        if key in keys:
            raise MaintenanceError(f"Machine {_quoted(key)} appears more than once in the schedule")
        keys.append(key)
    return keys


def agent_machine(core: MasterCore, agent: Agent) -> Machine | None:
    return core.maintenance.machines.get((agent.hostname, agent.ip))


def agents_on(core: MasterCore, key: MachineKey) -> list[Agent]:
    return [a for a in core.agents.values() if (a.hostname, a.ip) == key]


def to_registry(core: MasterCore) -> dict[str, Any]:
    """What survives a master restart: the schedule and the modes of scheduled machines."""
    m = core.maintenance
    return {"windows": m.windows,
            "machines": [{"id": machine_json(k), "mode": x.mode, "unavailability": x.unavailability}
                         for k, x in m.machines.items() if x.mode != "UP"]}


def from_registry(core: MasterCore, doc: dict[str, Any]) -> None:
    m = core.maintenance
    m.windows = list(doc.get("windows") or [])
    for item in doc.get("machines") or []:
        mid = item.get("id") or {}
        key = (str(mid.get("hostname") or ""), str(mid.get("ip") or ""))
        m.machines[key] = Machine(key, str(item.get("mode") or "UP"), item.get("unavailability"))


# ---------------------------------------------------------------------- schedule
def get_schedule(core: MasterCore) -> dict[str, Any]:
    windows = core.maintenance.windows
    return {"windows": windows} if windows else {}


def update_schedule(core: MasterCore, doc: Any, now: float) -> None:
    """POST /master/maintenance/schedule, UPDATE_MAINTENANCE_SCHEDULE."""
    if not isinstance(doc, dict):
        raise MaintenanceError("Expecting a JSON object for the schedule")
    windows = doc.get("windows") or []
    if not isinstance(windows, list):
        raise MaintenanceError("Expecting 'windows' to be an array")
    wanted: dict[MachineKey, dict[str, Any]] = {}
    clean: list[dict[str, Any]] = []
    for i, window in enumerate(windows):
        if not isinstance(window, dict):
            raise MaintenanceError(f"Expecting a JSON object for 'windows[{i}]'")
        unavailability = window.get("unavailability")
        if not isinstance(unavailability, dict) or "start" not in unavailability:
            field = "unavailability" if not isinstance(unavailability, dict) else "unavailability.start"
            raise MaintenanceError(f"Missing required fields: windows[{i}].{field}")
        ids = window.get("machine_ids") or []
        if not ids:
            raise MaintenanceError("List of machines in the maintenance window is empty")
        duration = (unavailability.get("duration") or {}).get("nanoseconds")
        if duration is not None and int(duration) < 0:
            raise MaintenanceError("Unavailability 'duration' is negative")
        keys = []
        for j, item in enumerate(ids):
            key = _machine_key(item, f"windows[{i}].machine_ids[{j}]")
            if key in wanted:
                raise MaintenanceError(
                    f"Machine {_quoted(key)} appears more than once in the schedule")
            wanted[key] = unavailability
            keys.append(key)
        clean.append({"machine_ids": [machine_json(k) for k in keys],
                      "unavailability": unavailability})
    m = core.maintenance
    machine: Machine | None
    for key, machine in m.machines.items():
        if machine.mode == "DOWN" and key not in wanted:
            raise MaintenanceError(
                f"Machine {_quoted(key)} is deactivated and cannot be removed from the schedule")
    for key, machine in list(m.machines.items()):
        if key not in wanted:
            machine.mode, machine.unavailability = "UP", None
            _unavailability_changed(core, key)
        elif machine.mode != "UP":
            machine.unavailability = wanted[key]
            _unavailability_changed(core, key)
    for key, unavailability in wanted.items():
        machine = m.machines.get(key)
        if machine is not None and machine.mode != "UP":
            continue
        m.machines[key] = Machine(key, "DRAINING", unavailability)
        _unavailability_changed(core, key)
    m.windows = clean
    core.emit(SaveRegistry())


def _unavailability_changed(core: MasterCore, key: MachineKey) -> None:
    """New offers must carry the new unavailability; stale inverse offers go."""
    for agent in agents_on(core, key):
        core.rescind_agent_offers(agent.id)
        for ioid, inverse in list(core.maintenance.outstanding.items()):
            if inverse.agent_id == agent.id:
                del core.maintenance.outstanding[ioid]
                fw = core.frameworks.get(inverse.framework_id)
                if fw is not None:
                    core.send(fw, {"type": "RESCIND_INVERSE_OFFER", "rescind_inverse_offer": {
                        "inverse_offer_id": {"value": ioid}}})
        machine = core.maintenance.machines.get(key)
        if machine is None or machine.mode == "UP":
            core.maintenance.statuses.pop(agent.id, None)


# ---------------------------------------------------------------------- status
def status(core: MasterCore) -> dict[str, Any]:
    """Mesos' ClusterStatus as JSON (empty lists are left out, as protobuf JSON does)."""
    draining, down = [], []
    for key, machine in core.maintenance.machines.items():
        if machine.mode == "DRAINING":
            entry: dict[str, Any] = {"id": machine_json(key)}
            answers = [s for a in agents_on(core, key)
                       for s in core.maintenance.statuses.get(a.id, {}).values()]
            if answers:
                entry["statuses"] = answers
            draining.append(entry)
        elif machine.mode == "DOWN":
            down.append(machine_json(key))
    out: dict[str, Any] = {}
    if draining:
        out["draining_machines"] = draining
    if down:
        out["down_machines"] = down
    return out


# ---------------------------------------------------------------------- down / up
def _known(core: MasterCore, key: MachineKey) -> Machine | None:
    """Mesos knows the machine of every registered agent (UP) besides the scheduled ones."""
    machine = core.maintenance.machines.get(key)
    if machine is None and agents_on(core, key):
        machine = Machine(key)
    return machine


def _require_mode(core: MasterCore, keys: list[MachineKey], mode: str, direction: str) -> None:
    """Every machine is known and in `mode` (checked for all before any is changed, as Mesos does)."""
    for key in keys:
        machine = _known(core, key)
        if machine is None:
            raise MaintenanceError(f"Machine {_quoted(key)} is not part of a maintenance schedule")
        if machine.mode != mode:
            raise MaintenanceError(
                f"Machine {_quoted(key)} is not in {mode} mode and cannot be brought {direction}")


def machine_down(core: MasterCore, keys: list[MachineKey], now: float) -> None:
    m = core.maintenance
    _require_mode(core, keys, "DRAINING", "down")
    for key in keys:
        for agent in agents_on(core, key):
            remove_agent(core, agent, "Operator initiated 'Machine DOWN'", now)
        m.machines[key].mode = "DOWN"
    core.emit(SaveRegistry())


def machine_up(core: MasterCore, keys: list[MachineKey]) -> None:
    m = core.maintenance
    _require_mode(core, keys, "DOWN", "up")
    for key in keys:
        m.machines[key].mode, m.machines[key].unavailability = "UP", None
    kept = []
    for window in m.windows:
        ids = [mid for mid in window["machine_ids"]
               if (mid.get("hostname", ""), mid.get("ip", "")) not in keys]
        if ids:
            kept.append({**window, "machine_ids": ids})
    m.windows = kept
    core.emit(SaveRegistry())


def is_down(core: MasterCore, hostname: str, ip: str) -> bool:
    machine = core.maintenance.machines.get((hostname, ip))
    return machine is not None and machine.mode == "DOWN"


def remove_agent(core: MasterCore, agent: Agent, cause: str, now: float) -> None:
    """Mesos' Master::removeSlave: tasks TASK_LOST (SOURCE_MASTER, REASON_AGENT_REMOVED),
    offers rescinded, frameworks told the agent is lost, the agent told to shut down."""
    core.agent_call(agent.id, "shutdown", {"message": cause})
    core.agents.pop(agent.id, None)
    core.known_agents.pop(agent.id, None)
    core.counters["slave_removals"] += 1
    core.cut_off_agent(agent.id, flush=True)
    end_agent_tasks(core, agent.id, TaskLoss.removed(agent.hostname, cause), now)
    for ioid, inverse in list(core.maintenance.outstanding.items()):
        if inverse.agent_id == agent.id:
            del core.maintenance.outstanding[ioid]
    core.maintenance.statuses.pop(agent.id, None)
    for fw in core.frameworks.values():
        core.send(fw, {"type": "FAILURE", "failure": {"agent_id": {"value": agent.id}}})


# ---------------------------------------------------------------------- inverse offers
def _holds_resources(core: MasterCore, fw: Framework, agent_id: str) -> bool:
    """Offered or allocated resources of `fw` on the agent (Mesos' allocator sends inverse offers
    only to frameworks with something to lose there: ``Slave::getOfferedOrAllocated``)."""
    return any(t.agent_id == agent_id and not is_terminal(t.state) for t in fw.tasks.values()) \
        or any(aid == agent_id for aid, _ in fw.executors) \
        or any(o.framework_id == fw.id and o.agent_id == agent_id for o in core.offers.values())


def send_inverse_offers(core: MasterCore, now: float) -> None:
    """Called each allocation round: one outstanding inverse offer per framework and agent of a
    DRAINING machine the framework holds resources on (none while a filter lasts)."""
    m = core.maintenance
    if not m.machines:
        return
    for ioid, inverse in list(m.outstanding.items()):
        if inverse.agent_id not in core.agents or inverse.framework_id not in core.frameworks:
            del m.outstanding[ioid]
    pending = {(i.framework_id, i.agent_id) for i in m.outstanding.values()}
    for agent in core.agents.values():
        machine = agent_machine(core, agent)
        if machine is None or machine.mode != "DRAINING" or machine.unavailability is None:
            continue
        for fw in core.frameworks.values():
            pair = (fw.id, agent.id)
            if pair in pending or m.filters.get(pair, 0.0) > now or not fw.connected:
                continue
            if not _holds_resources(core, fw, agent.id):
                continue
            ioid = core.new_offer_id()
            m.outstanding[ioid] = InverseOffer(ioid, fw.id, agent.id)
            core.send(fw, {"type": "INVERSE_OFFERS", "inverse_offers": {"inverse_offers": [{
                "id": {"value": ioid},
                "url": {"scheme": "http",
                        "address": {"hostname": agent.hostname, "ip": agent.ip, "port": agent.port},
                        "path": "/slave(1)"},
                "framework_id": {"value": fw.id},
                "agent_id": {"value": agent.id},
                "unavailability": machine.unavailability,
            }]}})


def answer_inverse_offers(core: MasterCore, fw: Framework, body: dict[str, Any], accept: bool,
                          refuse: float | None, now: float) -> None:
    """ACCEPT_INVERSE_OFFERS / DECLINE_INVERSE_OFFERS: the answer goes into the status."""
    m = core.maintenance
    for item in body.get("inverse_offer_ids") or []:
        ioid = item.get("value") if isinstance(item, dict) else None
        inverse = m.outstanding.get(ioid) if ioid else None
        if ioid is None or inverse is None or inverse.framework_id != fw.id:
            continue  # Mesos ignores unknown or someone else's inverse offers
        del m.outstanding[ioid]
        m.statuses.setdefault(inverse.agent_id, {})[fw.id] = {
            "status": "ACCEPT" if accept else "DECLINE",
            "framework_id": {"value": fw.id},
            "timestamp": {"nanoseconds": int(now * 1e9)},
        }
        seconds = DEFAULT_INVERSE_REFUSE_S if refuse is None else refuse
        m.filters[(fw.id, inverse.agent_id)] = now + seconds


def offer_unavailability(core: MasterCore, agent: Agent) -> dict[str, Any] | None:
    machine = agent_machine(core, agent)
    if machine is None or machine.mode == "UP":
        return None
    return machine.unavailability


# ---------------------------------------------------------------------- agent draining
def drain_agent(core: MasterCore, body: dict[str, Any], now: float) -> None:
    """Operator DRAIN_AGENT (Mesos' Master::Http::_drainAgent): the agent is deactivated (no
    offers) and told to kill its tasks, each within ``max_grace_period`` when given; once none is
    left it is DRAINED, or marked gone with ``mark_gone``."""
    aid = str(((body.get("agent_id") or {}).get("value")) or "")
    if aid not in core.agents and aid not in core.unreachable and aid not in core.recovered:
        raise MaintenanceError("Unknown agent")
    config: dict[str, Any] = {"mark_gone": bool(body.get("mark_gone", False))}
    if isinstance(body.get("max_grace_period"), dict):
        config["max_grace_period"] = body["max_grace_period"]
    core.draining[aid] = {"state": "DRAINING", "config": config, "started": now}
    agent = core.agents.get(aid)
    if agent is not None:
        agent.active = False
        core.rescind_agent_offers(aid)
        core.agent_call(aid, "drain", {"config": config})
    check_drained(core, now)


def reactivate_agent(core: MasterCore, body: dict[str, Any]) -> None:
    """Operator REACTIVATE_AGENT: offers again, the agent forgets its drain config."""
    aid = str(((body.get("agent_id") or {}).get("value")) or "")
    if aid not in core.agents:
        raise MaintenanceError("Agent is not registered" if aid not in core.unreachable
                               else "Agent is unreachable")
    core.draining.pop(aid, None)
    core.agents[aid].active = True
    core.agent_call(aid, "undrain", {})


def check_drained(core: MasterCore, now: float) -> None:
    """DRAINING agents with no live task left become DRAINED (or gone, with mark_gone)."""
    from . import agents_core  # agents_core imports this module

    for aid, info in list(core.draining.items()):
        if info["state"] != "DRAINING" or aid not in core.agents:
            continue
        if any(t.agent_id == aid and not is_terminal(t.state)
               for fw in core.frameworks.values() for t in fw.tasks.values()):
            continue
        if info["config"].get("mark_gone"):
            del core.draining[aid]
            agents_core.mark_gone(core, aid, now)
        else:
            info["state"] = "DRAINED"


def drain_json(core: MasterCore, agent_id: str) -> dict[str, Any]:
    """The /master/slaves fields of a draining agent (none for others)."""
    info = core.draining.get(agent_id)
    if info is None:
        return {}
    return {"drain_info": {"state": info["state"], "config": info["config"]},
            "estimated_drain_start_time_seconds": info["started"]}
