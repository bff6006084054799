"""Offers as values, and the resource operations kmf builds from them (exact arithmetic).

Every reserved resource carries labels ``kmf.service``, ``kmf.pod`` and ``kmf.reservation`` (the
persistence id of the broker's volume), so that a reservation is found again in any later offer,
and one that no record owns any more is recognised and released.
"""
from __future__ import annotations

from typing import Any, Mapping

import attrs

from mesoslib.resources import (
    DYNAMIC,
    RANGES,
    SCALAR,
    DiskInfo,
    Resource,
    ResourceError,
    Resources,
    attributes_of,
    coalesce,
    ranges,
    ranges_contain,
    scalar,
    to_millis,
)

LABEL_SERVICE, LABEL_POD, LABEL_RESERVATION = "kmf.service", "kmf.pod", "kmf.reservation"


@attrs.frozen
class OfferView:
    id: str
    agent_id: str
    hostname: str
    attributes: Mapping[str, str]
    pool: Resources
    # Mesos maintenance: the end (seconds; inf: none announced) of the window the offer's agent
    # has ahead or is in; None without one
    maintenance_end: float | None = None


def _maintenance_end(doc: Mapping[str, Any]) -> float | None:
    una = doc.get("unavailability")
    if not una:
        return None
    try:
        start = int(una["start"]["nanoseconds"]) / 1e9
        duration = (una.get("duration") or {}).get("nanoseconds")
        return float("inf") if duration is None else start + int(duration) / 1e9
    except (KeyError, TypeError, ValueError, AttributeError):
        return float("inf")


def parse_offer(doc: Mapping[str, Any]) -> OfferView:
    """Raises ResourceError/KeyError for an offer that cannot be understood (it gets declined)."""
    return OfferView(
        id=doc["id"]["value"], agent_id=doc["agent_id"]["value"], hostname=doc.get("hostname") or "",
        attributes=attributes_of(doc),
        pool=Resources.from_json(list(doc.get("resources") or []), "offer.resources").without_allocation(),
        maintenance_end=_maintenance_end(doc),
    )


def _labels(res: Resource) -> dict[str, str]:
    return dict(res.reservations[-1].labels) if res.reservations else {}


def reservation_ids(pool: Resources, service: str) -> dict[str, str]:
    """persistence id → pod of every kmf reservation of `service` in `pool`."""
    out: dict[str, str] = {}
    # only labelled reservations can be kmf's: the rest of the pool is not even put in order
    for res in pool.filter(lambda r: bool(r.reservations) and bool(r.reservations[-1].labels)):
        labels = _labels(res)
        if labels.get(LABEL_SERVICE) == service and LABEL_RESERVATION in labels:
            out[labels[LABEL_RESERVATION]] = labels.get(LABEL_POD, "")
    return out


def reserved_for(pool: Resources, service: str, reservation_id: str) -> Resources:
    """The resources of one reservation (the volume included) found in `pool`."""
    def mine(res: Resource) -> bool:
        if not res.reservations:
            return False
        labels = _labels(res)
        return labels.get(LABEL_SERVICE) == service and labels.get(LABEL_RESERVATION) == reservation_id
    return pool.filter(mine)


def rejoined(views: list[OfferView], pools: Mapping[str, Resources], service: str, hostname: str,
             reservation_id: str) -> OfferView | None:
    """The offer of `hostname` that holds the reservation, whatever its agent id: an agent whose
    machine went DOWN and UP (Mesos maintenance) comes back under a new id with its checkpointed
    reservations and volumes."""
    return next((v for v in views if v.hostname == hostname
                 and reserved_for(pools[v.id], service, reservation_id)), None)


def _unreserved_or_role(pool: Resources, role: str) -> Resources:
    return pool.filter(lambda r: not r.is_reserved or (r.role == role and not r.is_dynamically_reserved))


def choose_ports(pool: Resources, count: int) -> list[int] | None:
    """The first `count` free ports of `pool` (none for a task that asks for none), or None when
    the pool has fewer."""
    if count <= 0:
        return []
    free: list[int] = []
    for begin, end in pool.ranges_of("ports"):
        for port in range(begin, end + 1):
            free.append(port)
            if len(free) == count:
                return free
    return None


def shortfall(pool: Resources, cpus: float, mem: float, disk: float, ports: int) -> str | None:
    """Why `pool` cannot give these amounts (in words), or None."""
    for name, need in (("cpus", cpus), ("mem", mem), ("disk", disk)):
        have = pool.scalar(name)
        if need > 0 and to_millis(have) < to_millis(need):
            return f"needs {need:g} {name}, has {have:g}"
    if ports and choose_ports(pool, ports) is None:
        return f"needs {ports} ports, has {sum(e - b + 1 for b, e in pool.ranges_of('ports'))}"
    return None


def take_unreserved(pool: Resources, role: str, cpus: float, mem: float, disk: float,
                    ports: int) -> tuple[Resources, list[int]] | str:
    """Unreserved amounts carved out of `pool`, with the chosen ports; or why not.

    What is free is the unreserved resources and those statically reserved for `role`; each
    amount is taken from one resource of the same name that covers it, unreserved ones first (in
    the bag's order otherwise). Integer millis throughout: this runs twice per launch."""
    free: list[Resource] = []
    cpus_m = mem_m = disk_m = 0
    spans: list[tuple[int, int]] = []
    for r in pool:
        stack = r.reservations
        if stack and (stack[-1].role != role or stack[-1].type == DYNAMIC):
            continue
        free.append(r)
        if r.type == SCALAR:
            if r.name == "cpus":
                cpus_m += r.value
            elif r.name == "mem":
                mem_m += r.value
            elif r.name == "disk":
                disk_m += r.value
        elif r.type == RANGES and r.name == "ports":
            spans.extend(r.value)
    for name, need, have in (("cpus", cpus, cpus_m), ("mem", mem, mem_m), ("disk", disk, disk_m)):
        # as `shortfall`: the pool's amount in words, compared in millis
        if need > 0 and have < _millis(need):
            return f"needs {need:g} {name}, has {have / 1000.0:g}"
    chosen: list[int] = []
    if ports > 0:
        for begin, end in coalesce(spans):
            for port in range(begin, min(end, begin + ports - len(chosen) - 1) + 1):
                chosen.append(port)
            if len(chosen) == ports:
                break
        else:
            return f"needs {ports} ports, has {sum(e - b + 1 for b, e in coalesce(spans))}"
    wanted: list[tuple[str, float, int]] = [("cpus", cpus, _millis(cpus)), ("mem", mem, _millis(mem))]
    if disk > 0:
        wanted.append(("disk", disk, _millis(disk)))
    taken: dict[tuple[Any, ...], Resource] = {}
    for name, need, need_millis in wanted:
        got = _take_scalar(free, name, need_millis)
        if got is None:
            return f"needs {scalar(name, need)}, not available in one piece"
        if need_millis > 0:
            taken[got._key] = got
    if chosen:
        want = ranges("ports", [(p, p) for p in chosen])
        for res in sorted((r for r in free if r.name == "ports"), key=lambda r: r.is_reserved):
            if _plain(res) and res.type == RANGES and ranges_contain(res.value, want.value):
                got = attrs.evolve(want, reservations=res.reservations)
                taken[got._key] = got
                break
        else:
            return f"needs {want}, not available in one piece"
    return Resources._of(taken), chosen


_MILLIS: dict[Any, int] = {}  # amount → millis: the few amounts pods ask for, again and again


def _millis(value: float) -> int:
    """`to_millis(value)`, remembered (equal numbers, such as 1, 1.0 and True, have equal millis)."""
    try:
        return _MILLIS[value]
    except (KeyError, TypeError):
        pass
    millis = to_millis(value)
    if len(_MILLIS) < 4096:
        try:
            _MILLIS[value] = millis
        except TypeError:
            pass
    return millis


def _plain(res: Resource) -> bool:
    """No disk info, flags, allocation or provider: what an amount asked by name and value is."""
    return res.disk is None and not res.shared and not res.revocable and res.allocation_role is None \
        and res.provider_id is None


def _take_scalar(free: list[Resource], name: str, need_millis: int) -> Resource | None:
    """`need_millis` of `name` from the first resource of `free` that covers it, unreserved ones
    first, with that resource's reservations; None if none does."""
    best: Resource | None = None
    for res in free:  # the first that fits, unreserved before reserved (a stable sort by is_reserved)
        if res.name == name and res.type == SCALAR and res.value >= need_millis and _plain(res):
            if not res.reservations:
                best = res
                break
            if best is None:
                best = res
    if best is None:
        return None
    # the amount taken is the same value for every task of a shape: made once per identity
    key = (best._key, need_millis)
    taken = _TAKEN.get(key)
    if taken is None:
        if len(_TAKEN) >= 1024:
            _TAKEN.clear()
        taken = _TAKEN[key] = best.with_value(need_millis)
    return taken


_TAKEN: dict[tuple[tuple[Any, ...], int], Resource] = {}  # (identity, millis) → that resource (immutable: shared)


def reserve_operations(taken: Resources, role: str, principal: str | None, service: str, pod: str,
                       reservation_id: str, container_path: str) -> tuple[list[dict[str, Any]], Resources]:
    """RESERVE of `taken` (+ CREATE of its disk as a volume mounted at `container_path` in the
    sandbox): the operations and the reserved resources as later offers will show them."""
    labels = ((LABEL_SERVICE, service), (LABEL_POD, pod), (LABEL_RESERVATION, reservation_id))
    reserved = taken.reserve(role, principal, labels)
    ops: list[dict[str, Any]] = [{"type": "RESERVE", "reserve": {"resources": reserved.to_json("pre")}}]
    disks = reserved.named("disk")
    if disks:
        disk = next(iter(disks))
        volume = attrs.evolve(disk, disk=DiskInfo(persistence_id=reservation_id,
                                                  persistence_principal=principal,
                                                  container_path=container_path, mode="RW"))
        ops.append({"type": "CREATE", "create": {"volumes": [volume.to_json("pre")]}})
        reserved = reserved - disk + volume
    return ops, reserved


def release_operations(resources: Resources) -> list[dict[str, Any]]:
    """DESTROY every volume, then UNRESERVE everything (one ACCEPT, applied in order)."""
    ops: list[dict[str, Any]] = []
    volumes = resources.volumes()
    if volumes:
        ops.append({"type": "DESTROY", "destroy": {"volumes": volumes.to_json("pre")}})
    plain = resources.non_volumes() + Resources(v.without_volume() for v in volumes)
    dynamic = plain.dynamic()
    if dynamic:
        ops.append({"type": "UNRESERVE", "unreserve": {"resources": dynamic.to_json("pre")}})
    return ops


def split_reserved(reserved: Resources, cpus: float, mem: float) -> tuple[Resources, Resources] | str:
    """Split a reservation into the task's share (cpus, mem, all ports, the volume) and the
    executor's (the rest of cpus and mem)."""
    task, executor = Resources(), Resources()
    for name, need in (("cpus", cpus), ("mem", mem)):
        items = [r for r in reserved if r.name == name and not r.is_volume]
        if not items:
            return f"reservation has no {name}"
        res = items[0]
        total = res.value
        want = to_millis(need)
        if total < want:
            return f"reservation has {res.scalar:g} {name}, the task needs {need:g}"
        task = task + res.with_value(want)
        if total - want > 0:
            executor = executor + res.with_value(total - want)
    for res in reserved:
        if res.name not in ("cpus", "mem"):
            task = task + res
    return task, executor


__all__ = ["DYNAMIC", "OfferView", "ResourceError", "Resources", "choose_ports",
           "parse_offer", "rejoined", "release_operations", "reservation_ids", "reserve_operations", "reserved_for",
           "shortfall", "split_reserved", "take_unreserved"]
