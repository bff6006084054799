"""The allocator: which unused agent resources go to which framework role (pure).

Rules, as Mesos' allocator applies them: one offer = unused resources of one agent for one role of one framework;
a connected, active, unsuppressed role gets unreserved resources plus those reserved for it or an
ancestor; never resources already offered, used, or hidden by a live refusal filter; no agent with
``gpus`` for frameworks without GPU_RESOURCES. Frameworks are served in order of their dominant
share (least first), so one framework does not starve another.
"""
from __future__ import annotations

from typing import Iterable

from mesoslib.resources import Resource, Resources

from .model import Agent, Filter, Framework, Offer


def used_by_agent(agent_id: str, frameworks: Iterable[Framework]) -> Resources:
    """Resources held by live tasks and executors on ``agent_id``."""
    items: list[Resource] = []
    for fw in frameworks:
        for task in fw.tasks.values():
            if task.agent_id == agent_id and task.uses_resources:
                items.extend(task.resources)
        for (aid, _), executor in fw.executors.items():
            if aid == agent_id:
                items.extend(executor.resources)
    return Resources(items)


def offered_on_agent(agent_id: str, offers: Iterable[Offer]) -> Resources:
    items: list[Resource] = []
    for offer in offers:
        if offer.agent_id == agent_id:
            items.extend(offer.resources)
    return Resources(items)


def available(agent: Agent, frameworks: Iterable[Framework], offers: Iterable[Offer]) -> Resources:
    """What of the agent is neither used nor offered (total − used − offered)."""
    return agent.total - used_by_agent(agent.id, frameworks) - offered_on_agent(agent.id, offers)


def offerable(free: Resources, fw: Framework, role: str) -> Resources:
    """The part of ``free`` that ``fw`` may be offered for ``role``."""
    part = free.allocatable_to(role)
    if not fw.refinement:
        part = part.filter(lambda r: len(r.reservations) <= 1)
    return part


def allocatable(resources: Resources) -> bool:
    """Mesos' default ``--min_allocatable_resources=cpus:0.01|mem:32``."""
    return resources.scalar("cpus") >= 0.01 or resources.scalar("mem") >= 32


def filtered(filters: Iterable[Filter], fw_id: str, role: str, agent_id: str,
             resources: Resources, now: float) -> bool:
    """True when a live refusal filter hides ``resources`` (a subset of what was refused)."""
    for flt in filters:
        if (
            flt.framework_id == fw_id
            and flt.role == role
            and flt.agent_id == agent_id
            and flt.expires > now
            and flt.resources.contains(resources)
        ):
            return True
    return False


def share(fw: Framework, agents: dict[str, Agent], offers: Iterable[Offer]) -> float:
    """Dominant share of cpus/mem held (used + offered) by ``fw``."""
    totals = Resources(r for a in agents.values() for r in a.total)
    held = [r for t in fw.tasks.values() if t.uses_resources for r in t.resources]
    held += [r for o in offers if o.framework_id == fw.id for r in o.resources]
    mine = Resources(held)
    shares = [
        mine.scalar(name) / totals.scalar(name)
        for name in ("cpus", "mem")
        if totals.scalar(name) > 0
    ]
    return max(shares, default=0.0)


def allocate(
    agents: dict[str, Agent],
    frameworks: dict[str, Framework],
    offers: dict[str, Offer],
    filters: list[Filter],
    now: float,
) -> list[tuple[Framework, str, Agent, Resources]]:
    """Offers to make now: ``(framework, role, agent, resources)`` tuples, none overlapping.

    Pure: reads the records, returns decisions; the caller turns them into Offer records.
    """
    candidates = [
        fw for fw in frameworks.values() if fw.connected and fw.active and not fw.recovered
    ]
    if not candidates:
        return []
    pending = list(offers.values())
    candidates.sort(key=lambda fw: (share(fw, agents, pending), fw.registered_time, fw.id))
    decisions: list[tuple[Framework, str, Agent, Resources]] = []
    fws = list(frameworks.values())
    for agent in sorted(agents.values(), key=lambda a: a.id):
        if not agent.active:
            continue
        free = available(agent, fws, pending)
        has_gpus = agent.total.scalar("gpus") > 0
        for fw in candidates:
            if has_gpus and "GPU_RESOURCES" not in fw.capabilities:
                continue
            for role in fw.roles:
                if role in fw.suppressed:
                    continue
                part = offerable(free, fw, role)
                if not allocatable(part) or filtered(filters, fw.id, role, agent.id, part, now):
                    continue
                decisions.append((fw, role, agent, part))
                free = free - part
                if not free:
                    break
            if not free:
                break
    return decisions
