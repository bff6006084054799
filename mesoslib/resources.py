"""Mesos resource values and their exact arithmetic (pure: no I/O, no clock).

Vocabulary, as in Mesos 1.x:

* scalars are fixed point with 3 decimals, kept here as integer thousandths (``millis``);
* ranges are inclusive ``(begin, end)`` pairs, always sorted and coalesced;
* sets are frozensets of strings;
* a :class:`Resource` has a name, a type, a value and an identity: its reservation stack
  (empty = unreserved ``*``; each :class:`Reservation` STATIC or DYNAMIC with role and principal),
  disk info (persistent volume id/principal, container path, mode), shared/revocable flags and
  an optional allocation role;
* a :class:`Resources` bag holds at most one value per identity, so adding and subtracting are
  exact; subtraction saturates (never negative) and :meth:`Resources.contains` tells whether it
  would have.

JSON conversion follows the v1 API in its three formats: ``"pre"`` (before reservation
refinement: ``role`` + ``reservation``), ``"post"`` (``reservations`` list) and ``"endpoint"``
(both, as the state endpoints show them). :func:`parse_resources_flag` and
:func:`parse_attributes_flag` read the agent's ``--resources`` / ``--attributes`` syntax.
"""
from __future__ import annotations

import json
import math
from collections.abc import Mapping as _Mapping
from operator import attrgetter
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import attrs

from kmfwire.errors import KmfError

SCALAR, RANGES, SET, TEXT = "SCALAR", "RANGES", "SET", "TEXT"
STATIC, DYNAMIC = "STATIC", "DYNAMIC"
FORMATS = ("pre", "post", "endpoint")
MAP_SCALARS = ("cpus", "gpus", "mem", "disk")

Range = tuple[int, int]


class ResourceError(KmfError, ValueError):
    """A resource, attribute or flag that cannot be understood; the message says what and where."""


def _is_map(value: Any) -> bool:
    """`isinstance(value, Mapping)`, quick for the dicts JSON gives."""
    return type(value) is dict or isinstance(value, _Mapping)


# --------------------------------------------------------------------------- scalars and ranges


_EXACT_INT = 2**43  # below it, float(n) * 1000 is exact: n * 1000 is the same number


def to_millis(value: float | int | str, where: str = "scalar") -> int:
    """A scalar value as integer thousandths (Mesos keeps 3 decimals)."""
    # the fast path takes plain ints only (a bool goes the general way, as it always did)
    if type(value) is int and -_EXACT_INT < value < _EXACT_INT:
        return value * 1000
    number: float
    if type(value) is float:
        number = value
    else:
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ResourceError(f"{where}: {value!r} is not a number") from None
    if not math.isfinite(number):
        raise ResourceError(f"{where}: {value!r} is not a finite number")
    return int(round(number * 1000))


def from_millis(millis: int) -> float:
    return millis / 1000.0


def coalesce(ranges: Iterable[Range]) -> tuple[Range, ...]:
    """Sorted, merged ranges: overlapping and adjacent ones become one (``[1-2],[3-4]`` → ``[1-4]``)."""
    out: list[list[int]] = []
    for begin, end in sorted((int(b), int(e)) for b, e in ranges):
        if begin > end:
            raise ResourceError(f"range [{begin}-{end}] has begin > end")
        if out and begin <= out[-1][1] + 1:
            out[-1][1] = max(out[-1][1], end)
        else:
            out.append([begin, end])
    return tuple((b, e) for b, e in out)


def ranges_subtract(ranges: Sequence[Range], minus: Sequence[Range]) -> tuple[Range, ...]:
    """What of ``ranges`` is not in ``minus`` (both coalesced)."""
    result: list[Range] = []
    for begin, end in ranges:
        pieces = [(begin, end)]
        for mb, me in minus:
            next_pieces = []
            for pb, pe in pieces:
                if me < pb or mb > pe:
                    next_pieces.append((pb, pe))
                    continue
                if mb > pb:
                    next_pieces.append((pb, mb - 1))
                if me < pe:
                    next_pieces.append((me + 1, pe))
            pieces = next_pieces
        result.extend(pieces)
    return coalesce(result)


def ranges_contain(ranges: Sequence[Range], sub: Sequence[Range]) -> bool:
    """True when every number of ``sub`` lies in ``ranges`` (both coalesced)."""
    return not ranges_subtract(sub, ranges)


def ranges_size(ranges: Sequence[Range]) -> int:
    return sum(end - begin + 1 for begin, end in ranges)


def format_ranges(ranges: Sequence[Range]) -> str:
    """The state-endpoint text form: ``[31000-31005, 31010-32000]``."""
    return "[" + ", ".join(f"{b}-{e}" for b, e in ranges) + "]"


def parse_ranges_text(text: str, where: str = "ranges") -> tuple[Range, ...]:
    """``[31000-32000, 40000-40010]`` (also single numbers ``[5]``) → coalesced ranges."""
    body = text.strip()
    if not (body.startswith("[") and body.endswith("]")):
        raise ResourceError(f"{where}: ranges {text!r} must look like [begin-end, ...]")
    body = body[1:-1].strip()
    if not body:
        return ()
    pairs = []
    for part in body.split(","):
        part = part.strip()
        begin, sep, end = part.partition("-")
        try:
            pairs.append((int(begin), int(end if sep else begin)))
        except ValueError:
            raise ResourceError(f"{where}: range {part!r} in {text!r} is not begin-end") from None
    try:
        return coalesce(pairs)
    except ResourceError as exc:
        raise ResourceError(f"{where}: {exc}") from None


# --------------------------------------------------------------------------- identity parts


@attrs.frozen
class Reservation:
    """One entry of a reservation stack (``Resource.ReservationInfo``)."""

    type: str  # STATIC or DYNAMIC
    role: str
    principal: str | None = None
    labels: tuple[tuple[str, str], ...] = ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type, "role": self.role}
        if self.principal is not None:
            out["principal"] = self.principal
        if self.labels:
            out["labels"] = labels_to_json(self.labels)
        return out


@attrs.frozen
class DiskInfo:
    """``Resource.DiskInfo``: a persistent volume (id, principal) mounted at ``container_path``."""

    persistence_id: str | None = None
    persistence_principal: str | None = None
    container_path: str | None = None
    mode: str | None = None  # RW or RO
    source: Any = None  # DiskInfo.Source JSON, kept opaque (frozen as a JSON string)

    @property
    def is_volume(self) -> bool:
        return self.persistence_id is not None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.persistence_id is not None:
            persistence: dict[str, Any] = {"id": self.persistence_id}
            if self.persistence_principal is not None:
                persistence["principal"] = self.persistence_principal
            out["persistence"] = persistence
        if self.container_path is not None or self.mode is not None:
            volume: dict[str, Any] = {}
            if self.mode is not None:
                volume["mode"] = self.mode
            if self.container_path is not None:
                volume["container_path"] = self.container_path
            out["volume"] = volume
        if self.source is not None:
            out["source"] = json.loads(self.source)
        return out


def labels_to_json(labels: Sequence[tuple[str, str]]) -> dict[str, Any]:
    return {"labels": [{"key": k, "value": v} for k, v in labels]}


def labels_from_json(data: Any, where: str) -> tuple[tuple[str, str], ...]:
    if not data:
        return ()
    if not _is_map(data) or not isinstance(data.get("labels", []), list):
        raise ResourceError(f"{where}: labels must be {{\"labels\": [...]}}, got {data!r}")
    out = []
    for i, label in enumerate(data.get("labels", [])):
        if not _is_map(label) or "key" not in label:
            raise ResourceError(f"{where}.labels[{i}]: a label needs a 'key'")
        out.append((str(label["key"]), str(label.get("value", ""))))
    return tuple(out)


# --------------------------------------------------------------------------- Resource


@attrs.frozen
class Resource:
    """One Mesos resource. ``value`` is millis (int) for SCALAR, coalesced ranges for RANGES,
    a frozenset for SET."""

    name: str
    type: str
    value: Any
    reservations: tuple[Reservation, ...] = ()
    disk: DiskInfo | None = None
    shared: bool = False
    revocable: bool = False
    allocation_role: str | None = None
    provider_id: str | None = None
    # the identity tuple and the canonical sort key, computed once: bag arithmetic asks for them
    # on every merge, subtraction and iteration
    _key: tuple[Any, ...] = attrs.field(init=False, eq=False, repr=False)
    _order: tuple[Any, ...] | None = attrs.field(init=False, eq=False, repr=False, default=None)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "_key", (self.name, self.type, self.reservations, self.disk, self.shared,
                                          self.revocable, self.allocation_role, self.provider_id))

    @property
    def order(self) -> tuple[Any, ...]:
        """The canonical sort key of a bag's items (made on first use: most resources are never sorted).

        It depends on the identity only, so it is kept per identity: the resources an offer round
        carves out of a pool share a few identities."""
        if self._order is None:
            order = _ORDERS.get(self._key)
            if order is None:
                order = (self.name, self.type, tuple((r.type, r.role, r.principal or "") for r in self.reservations),
                         self.disk.persistence_id or "" if self.disk else "", self.allocation_role or "",
                         str(self._key))
                if len(_ORDERS) >= _ORDERS_MAX:
                    _ORDERS.clear()
                _ORDERS[self._key] = order
            object.__setattr__(self, "_order", order)
            return order
        return self._order

    # identity -------------------------------------------------------------------------------
    @property
    def key(self) -> tuple[Any, ...]:
        return self._key

    @property
    def role(self) -> str:
        """The role the resource is reserved to (last reservation), ``*`` if unreserved."""
        return self.reservations[-1].role if self.reservations else "*"

    @property
    def is_reserved(self) -> bool:
        return bool(self.reservations)

    @property
    def is_dynamically_reserved(self) -> bool:
        return bool(self.reservations) and self.reservations[-1].type == DYNAMIC

    @property
    def is_volume(self) -> bool:
        return self.disk is not None and self.disk.is_volume

    @property
    def is_empty(self) -> bool:
        if self.type == SCALAR:
            millis: int = self.value
            return millis <= 0
        return not self.value

    @property
    def scalar(self) -> float:
        if self.type != SCALAR:
            raise ResourceError(f"resource {self.name} is {self.type}, not SCALAR")
        return from_millis(self.value)

    def with_value(self, value: Any) -> "Resource":
        """The same resource (identity, sort key) with another value; `attrs.evolve` without its
        cost, as bag arithmetic makes one per merge and subtraction."""
        new = _new_object(type(self))
        _set_name(new, self.name)
        _set_type(new, self.type)
        _set_value(new, value)
        _set_reservations(new, self.reservations)
        _set_disk(new, self.disk)
        _set_shared(new, self.shared)
        _set_revocable(new, self.revocable)
        _set_allocation_role(new, self.allocation_role)
        _set_provider_id(new, self.provider_id)
        _set_key(new, self._key)
        _set_order(new, self._order)
        return new

    def pop_reservation(self) -> "Resource":
        """The same resource one reservation level up (the parent role, or unreserved)."""
        return attrs.evolve(self, reservations=self.reservations[:-1])

    def push_reservation(self, reservation: Reservation) -> "Resource":
        return attrs.evolve(self, reservations=self.reservations + (reservation,))

    def without_allocation(self) -> "Resource":
        return attrs.evolve(self, allocation_role=None) if self.allocation_role else self

    def with_allocation(self, role: str | None) -> "Resource":
        return attrs.evolve(self, allocation_role=role)

    def without_volume(self) -> "Resource":
        """A volume as the plain (reserved) disk it was created from."""
        return attrs.evolve(self, disk=None) if self.disk is not None else self

    # arithmetic on one identity ----------------------------------------------------------------
    def plus(self, other: "Resource") -> "Resource":
        self._same(other)
        if self.type == SCALAR:
            return self.with_value(self.value + other.value)
        if self.type == RANGES:
            return self.with_value(coalesce(self.value + other.value))
        return self.with_value(self.value | other.value)

    def minus(self, other: "Resource") -> "Resource":
        """Saturating difference (scalars never below 0)."""
        self._same(other)
        if self.type == SCALAR:
            return self.with_value(max(0, self.value - other.value))
        if self.type == RANGES:
            return self.with_value(ranges_subtract(self.value, other.value))
        return self.with_value(self.value - other.value)

    def covers(self, other: "Resource") -> bool:
        self._same(other)
        if self.type == SCALAR:
            mine: int = self.value
            theirs: int = other.value
            if self.is_volume:
                return mine == theirs
            return mine >= theirs
        if self.type == RANGES:
            return ranges_contain(self.value, other.value)
        items: frozenset[str] = other.value
        have: frozenset[str] = self.value
        return items <= have

    def _same(self, other: "Resource") -> None:
        if self.key != other.key:
            raise ResourceError(f"resources {self} and {other} are of different kinds")

    # text ---------------------------------------------------------------------------------------
    def value_text(self) -> str:
        if self.type == SCALAR:
            return _scalar_text(self.value)
        if self.type == RANGES:
            return format_ranges(self.value)
        return "{" + ", ".join(sorted(self.value)) + "}"

    def __str__(self) -> str:
        role = f"({self.role})" if self.is_reserved else ""
        vol = f"[{self.disk.persistence_id}:{self.disk.container_path}]" if self.disk is not None and self.is_volume else ""
        return f"{self.name}{role}{vol}:{self.value_text()}"

    # JSON ---------------------------------------------------------------------------------------
    def to_json(self, fmt: str = "pre") -> dict[str, Any]:
        """v1 JSON in format ``pre`` (role/reservation), ``post`` (reservations) or ``endpoint``."""
        if fmt == "pre" and self.type == SCALAR and not self.reservations and self.disk is None \
                and not self.shared and not self.revocable and self.allocation_role is None \
                and self.provider_id is None:
            # the common case (a launch's unreserved cpus and mem), exactly as below
            return {"name": self.name, "type": SCALAR, "scalar": {"value": self.value / 1000.0}, "role": "*"}
        if fmt not in FORMATS:
            raise ResourceError(f"unknown resource format {fmt!r} (one of {', '.join(FORMATS)})")
        out: dict[str, Any] = {"name": self.name, "type": self.type}
        if self.type == SCALAR:
            out["scalar"] = {"value": from_millis(self.value)}
        elif self.type == RANGES:
            out["ranges"] = {"range": [{"begin": b, "end": e} for b, e in self.value]}
        else:
            out["set"] = {"item": sorted(self.value)}
        if fmt in ("pre", "endpoint"):
            if len(self.reservations) <= 1:
                out["role"] = self.role
                if self.reservations and self.reservations[-1].type == DYNAMIC:
                    res = self.reservations[-1]
                    info: dict[str, Any] = {}
                    if res.principal is not None:
                        info["principal"] = res.principal
                    if res.labels:
                        info["labels"] = labels_to_json(res.labels)
                    out["reservation"] = info
            elif fmt == "pre":
                raise ResourceError(
                    f"resource {self} has a refined reservation; it has no pre-refinement format"
                )
        if fmt in ("post", "endpoint") and self.reservations:
            out["reservations"] = [r.to_json() for r in self.reservations]
        if self.allocation_role is not None:
            out["allocation_info"] = {"role": self.allocation_role}
        if self.disk is not None:
            out["disk"] = self.disk.to_json()
        if self.shared:
            out["shared"] = {}
        if self.revocable:
            out["revocable"] = {}
        if self.provider_id is not None:
            out["provider_id"] = {"value": self.provider_id}
        return out

    @classmethod
    def from_json(cls, data: Any, where: str = "resource") -> "Resource":
        """Parse a v1 Resource dict (any of the formats); errors name ``where``."""
        if type(data) is dict and cls is Resource:
            try:
                quick = _quick_from_json(data)
            except Exception:  # noqa: BLE001 - anything odd: the careful path below says what
                quick = None
            if quick is not None:
                return quick
        if not _is_map(data):
            raise ResourceError(f"{where}: a resource must be a JSON object, got {data!r}")
        name = data.get("name")
        if not isinstance(name, str) or not name:
            raise ResourceError(f"{where}: 'name' is required")
        where = f"{where} ({name})"
        rtype = data.get("type")
        if rtype not in (SCALAR, RANGES, SET):
            raise ResourceError(f"{where}: 'type' must be SCALAR, RANGES or SET, got {rtype!r}")
        value: Any
        if rtype == SCALAR:
            scalar = data.get("scalar")
            if not _is_map(scalar) or "value" not in scalar:
                raise ResourceError(f"{where}: SCALAR needs 'scalar': {{'value': N}}")
            value = to_millis(scalar["value"], f"{where}.scalar.value")
            if value < 0:
                raise ResourceError(f"{where}: scalar value {scalar['value']} is negative")
        elif rtype == RANGES:
            ranges = data.get("ranges") or {}
            items = ranges.get("range", []) if _is_map(ranges) else None
            if not isinstance(items, list):
                raise ResourceError(f"{where}: RANGES needs 'ranges': {{'range': [...]}}")
            try:
                value = coalesce((int(r["begin"]), int(r["end"])) for r in items)
            except (KeyError, TypeError, ValueError):
                raise ResourceError(f"{where}: each range needs integer 'begin' and 'end'") from None
            except ResourceError as exc:
                raise ResourceError(f"{where}: {exc}") from None
        else:
            items = (data.get("set") or {}).get("item", [])
            if not isinstance(items, list):
                raise ResourceError(f"{where}: SET needs 'set': {{'item': [...]}}")
            value = frozenset(str(i) for i in items)
        reservations = _reservations_from_json(data, where)
        disk = None
        if data.get("disk"):
            disk = _disk_from_json(data["disk"], where)
        alloc = data.get("allocation_info")
        allocation_role = alloc.get("role") if _is_map(alloc) else None
        provider = data.get("provider_id")
        return cls(
            name=name,
            type=rtype,
            value=value,
            reservations=reservations,
            disk=disk,
            shared="shared" in data and data["shared"] is not None,
            revocable="revocable" in data and data["revocable"] is not None,
            allocation_role=allocation_role,
            provider_id=provider.get("value") if _is_map(provider) else None,
        )


_new_object = object.__new__
_setattr = object.__setattr__
# identity → sort key (Resource.order); cleared when full (the keys are few: names × reservations)
_ORDERS: dict[tuple[Any, ...], tuple[Any, ...]] = {}
_ORDERS_MAX = 4096
# the slots Resource.with_value and _plain_resource set: every field (a new field must be added there)
assert [f.name for f in attrs.fields(Resource)] == [
    "name", "type", "value", "reservations", "disk", "shared", "revocable", "allocation_role", "provider_id",
    "_key", "_order"], "Resource.with_value copies every field by name"
# the slots' own setters (the class is frozen: its __setattr__ refuses), quicker than object.__setattr__
(_set_name, _set_type, _set_value, _set_reservations, _set_disk, _set_shared, _set_revocable,
 _set_allocation_role, _set_provider_id, _set_key, _set_order) = (
    Resource.__dict__[f.name].__set__ for f in attrs.fields(Resource))


_QUICK_KEYS = frozenset({"name", "type", "scalar", "ranges", "role", "reservation", "reservations"})


def _quick_from_json(data: dict[str, Any]) -> Resource | None:
    """`Resource.from_json` for the usual offer items (a scalar or integer ranges, with a role or
    reservations and nothing else), without building the error context it only needs to report
    a problem; None (or any exception) sends the item to the careful path, which then parses it
    or raises as it always did."""
    if not _QUICK_KEYS.issuperset(data):
        return None
    name, rtype = data.get("name"), data.get("type")
    if type(name) is not str or not name:
        return None
    value: Any
    if rtype == SCALAR:
        amount = data["scalar"]["value"]
        if type(amount) is not float and type(amount) is not int:
            return None
        value = to_millis(amount)
        if value < 0:
            return None
    elif rtype == RANGES:
        spans = []
        for item in data["ranges"]["range"]:
            begin, end = item["begin"], item["end"]
            if type(begin) is not int or type(end) is not int:
                return None
            spans.append((begin, end))
        value = coalesce(spans)
    else:
        return None
    return _plain_resource(name, rtype, value, _reservations_from_json(data, "resource"))


def _plain_resource(name: str, rtype: str, value: Any, reservations: tuple[Reservation, ...]) -> Resource:
    """`Resource(name, rtype, value, reservations)` (no disk, flags, allocation or provider),
    built without the generated __init__: offers are made of these."""
    new = _new_object(Resource)
    _set_name(new, name)
    _set_type(new, rtype)
    _set_value(new, value)
    _set_reservations(new, reservations)
    _set_disk(new, None)
    _set_shared(new, False)
    _set_revocable(new, False)
    _set_allocation_role(new, None)
    _set_provider_id(new, None)
    _set_key(new, (name, rtype, reservations, None, False, False, None, None))
    _set_order(new, None)
    return new


def _scalar_text(millis: int) -> str:
    text = f"{millis / 1000:.3f}".rstrip("0").rstrip(".")
    return text or "0"


def _reservations_from_json(data: Mapping[str, Any], where: str) -> tuple[Reservation, ...]:
    stack = data.get("reservations")
    if stack:
        if not isinstance(stack, list):
            raise ResourceError(f"{where}: 'reservations' must be a list")
        out = []
        for i, entry in enumerate(stack):
            if not _is_map(entry) or not isinstance(entry.get("role"), str):
                raise ResourceError(f"{where}.reservations[{i}]: needs a 'role'")
            rtype = entry.get("type") or (DYNAMIC if "principal" in entry else STATIC)
            if rtype not in (STATIC, DYNAMIC):
                raise ResourceError(f"{where}.reservations[{i}]: type {rtype!r} unknown")
            out.append(
                Reservation(
                    type=rtype,
                    role=entry["role"],
                    principal=entry.get("principal"),
                    labels=labels_from_json(entry.get("labels"), f"{where}.reservations[{i}]"),
                )
            )
        return tuple(out)
    role = data.get("role")
    if role is None or role == "*":
        return ()
    if not isinstance(role, str):
        raise ResourceError(f"{where}: 'role' must be a string")
    info = data.get("reservation")
    if info is None:
        return (Reservation(STATIC, role),)
    if not _is_map(info):
        raise ResourceError(f"{where}: 'reservation' must be an object")
    return (
        Reservation(
            DYNAMIC,
            role,
            principal=info.get("principal"),
            labels=labels_from_json(info.get("labels"), f"{where}.reservation"),
        ),
    )


def _disk_from_json(disk: Any, where: str) -> DiskInfo:
    if not _is_map(disk):
        raise ResourceError(f"{where}: 'disk' must be an object")
    persistence = disk.get("persistence") or {}
    volume = disk.get("volume") or {}
    if persistence and not isinstance(persistence.get("id"), str):
        raise ResourceError(f"{where}: disk.persistence needs an 'id'")
    source = disk.get("source")
    return DiskInfo(
        persistence_id=persistence.get("id"),
        persistence_principal=persistence.get("principal"),
        container_path=volume.get("container_path"),
        mode=volume.get("mode"),
        source=json.dumps(source, sort_keys=True) if source is not None else None,
    )


def scalar(name: str, value: float, role: str = "*", principal: str | None = None) -> Resource:
    """Convenience: ``scalar("cpus", 1.5)``, ``scalar("mem", 512, "kafka", "kmf")`` (dynamic)."""
    return Resource(name, SCALAR, to_millis(value), _reservation_for(role, principal))


def ranges(name: str, spans: Iterable[Range], role: str = "*", principal: str | None = None) -> Resource:
    return Resource(name, RANGES, coalesce(spans), _reservation_for(role, principal))


def set_resource(name: str, items: Iterable[str], role: str = "*") -> Resource:
    return Resource(name, SET, frozenset(items), _reservation_for(role, None))


def _reservation_for(role: str, principal: str | None) -> tuple[Reservation, ...]:
    if role == "*":
        return ()
    return (Reservation(DYNAMIC if principal is not None else STATIC, role, principal),)


# --------------------------------------------------------------------------- Resources


class Resources:
    """An exact, immutable bag of resources: one value per identity, no empty entries."""

    # _ordered: the items in their canonical order, sorted on first iteration (bags are immutable
    # and iterated far more often than built, e.g. in every offer round); _last_sub: the last
    # subtraction (the other bag and the result: an offer round takes the same amount from the
    # same pool twice, to check what is left and then to keep it)
    __slots__ = ("_items", "_ordered", "_last_sub")

    def __init__(self, items: Iterable[Resource] = ()) -> None:
        merged: dict[tuple[Any, ...], Resource] = {}
        for res in items:
            if not isinstance(res, Resource):
                raise TypeError(f"Resources holds Resource values, got {res!r}")
            if res.is_empty:
                continue
            key = res.key
            have = merged.get(key)
            merged[key] = have.plus(res) if have is not None else res
        self._items: dict[tuple[Any, ...], Resource] = merged
        self._ordered: tuple[Resource, ...] | None = None
        self._last_sub: tuple[Any, Resources] | None = None

    @classmethod
    def _of(cls, items: dict[tuple[Any, ...], Resource]) -> "Resources":
        """A bag of `items` that are already merged by identity and non-empty (no checks)."""
        out = cls.__new__(cls)
        out._items = items
        out._ordered = None
        out._last_sub = None
        return out

    # container protocol -----------------------------------------------------------------------
    def __iter__(self) -> Iterator[Resource]:
        if self._ordered is None:
            self._ordered = tuple(sorted(self._items.values(), key=_ORDER))
        return iter(self._ordered)

    def __len__(self) -> int:
        return len(self._items)

    def __bool__(self) -> bool:
        return bool(self._items)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Resources) and self._items == other._items

    def __hash__(self) -> int:
        return hash(frozenset(self._items.values()))

    def __repr__(self) -> str:
        return f"Resources({self})"

    def __str__(self) -> str:
        return "; ".join(str(r) for r in self)

    # arithmetic -------------------------------------------------------------------------------
    def __add__(self, other: "Resources | Resource") -> "Resources":
        items = dict(self._items)
        for res in _members(other):
            if not isinstance(res, Resource):
                raise TypeError(f"Resources holds Resource values, got {res!r}")
            if res.is_empty:
                continue
            key = res._key
            have = items.get(key)
            if have is None:
                items[key] = res
            elif have.type == SCALAR:
                items[key] = have.with_value(have.value + res.value)
            else:
                items[key] = have.plus(res)
        return Resources._of(items)

    def __sub__(self, other: "Resources | Resource") -> "Resources":
        """Saturating: what is not in ``self`` is ignored (check :meth:`contains` first)."""
        last = self._last_sub
        if last is not None and last[0] is other and isinstance(other, (Resources, Resource)):
            return last[1]  # both immutable: the same difference
        out = self._minus(other)
        self._last_sub = (other, out)
        return out

    def _minus(self, other: "Resources | Resource") -> "Resources":
        items = dict(self._items)
        for res in _members(other):
            key = res._key
            have = items.get(key)
            if have is None:
                continue
            if have.type == SCALAR and (have.disk is None or have.disk.persistence_id is None):
                left = have.value - res.value  # the same identity: a plain scalar, exact in millis
                if left > 0:
                    items[key] = have.with_value(left)
                else:
                    del items[key]
                continue
            if have.is_volume and not have.covers(res):
                continue  # a volume goes as a whole or not at all
            rest = have.minus(res)
            if rest.is_empty:
                del items[key]
            else:
                items[key] = rest
        out = Resources._of(items)  # already merged and non-empty
        if self._ordered is not None:  # what is left keeps its order (it depends on identity only)
            out._ordered = tuple([items[r._key] for r in self._ordered if r._key in items])
        return out

    def contains(self, other: "Resources | Resource") -> bool:
        for res in [other] if isinstance(other, Resource) else other:
            have = self._items.get(res.key)
            if have is None or not have.covers(res):
                return False
        return True

    __contains__ = contains

    # filters -----------------------------------------------------------------------------------
    def filter(self, predicate: Callable[[Resource], bool]) -> "Resources":
        items = {k: r for k, r in self._items.items() if predicate(r)}
        if len(items) == len(self._items):
            return self  # immutable: all of it (and its order, if known)
        return Resources._of(items)

    def unreserved(self) -> "Resources":
        return self.filter(lambda r: not r.is_reserved)

    def reserved(self, role: str | None = None) -> "Resources":
        """Reserved resources; with ``role``, those whose reservation role is exactly it."""
        return self.filter(lambda r: r.is_reserved and (role is None or r.role == role))

    def reserved_by_role(self) -> dict[str, "Resources"]:
        out: dict[str, list[Resource]] = {}
        for res in self._items.values():
            if res.is_reserved:
                out.setdefault(res.role, []).append(res)
        return {role: Resources(items) for role, items in sorted(out.items())}

    def allocatable_to(self, role: str) -> "Resources":
        """Unreserved resources plus those reserved for ``role`` or one of its ancestors."""
        return self.filter(lambda r: not r.is_reserved or is_ancestor_or_self(r.role, role))

    def volumes(self) -> "Resources":
        return self.filter(lambda r: r.is_volume)

    def non_volumes(self) -> "Resources":
        return self.filter(lambda r: not r.is_volume)

    def dynamic(self) -> "Resources":
        """What an agent checkpoints: dynamically reserved resources and volumes."""
        return self.filter(lambda r: r.is_dynamically_reserved or r.is_volume)

    def named(self, name: str) -> "Resources":
        return self.filter(lambda r: r.name == name)

    def flatten(self, role: str = "*") -> "Resources":
        """Every resource as unreserved (``*``) or statically reserved for ``role``; no disk
        info, no allocation: for comparing amounts regardless of reservations."""
        reservations = _reservation_for(role, None)
        return Resources(
            attrs.evolve(r, reservations=reservations, disk=None, allocation_role=None)
            for r in self._items.values()
        )

    def reserve(self, role: str, principal: str | None = None,
                labels: Sequence[tuple[str, str]] = ()) -> "Resources":
        """The same resources with one more (dynamic) reservation for ``role`` on top: what a
        RESERVE operation lists."""
        res = Reservation(DYNAMIC, role, principal, tuple(labels))
        return Resources(r.push_reservation(res) for r in self._items.values())

    def unreserve(self) -> "Resources":
        """The same resources one reservation level up (what an UNRESERVE gives back)."""
        return Resources(r.pop_reservation() for r in self._items.values())

    def allocated_to(self, role: str | None) -> "Resources":
        return Resources(r.with_allocation(role) for r in self._items.values())

    def without_allocation(self) -> "Resources":
        if not any(r.allocation_role for r in self._items.values()):
            return self  # immutable: nothing to take off
        return Resources(r.without_allocation() for r in self._items.values())

    # amounts -----------------------------------------------------------------------------------
    def scalar(self, name: str) -> float:
        """The sum of every scalar called ``name`` (0.0 if none)."""
        return from_millis(
            sum(r.value for r in self._items.values() if r.name == name and r.type == SCALAR)
        )

    def ranges_of(self, name: str) -> tuple[Range, ...]:
        spans: list[Range] = []
        for r in self._items.values():
            if r.name == name and r.type == RANGES:
                spans.extend(r.value)
        return coalesce(spans)

    def names(self) -> set[str]:
        return {r.name for r in self._items.values()}

    # conversions --------------------------------------------------------------------------------
    def to_json(self, fmt: str = "pre") -> list[dict[str, Any]]:
        return [r.to_json(fmt) for r in self]

    @classmethod
    def from_json(cls, data: Any, where: str = "resources") -> "Resources":
        if data is None:
            return cls()
        if not isinstance(data, list):
            raise ResourceError(f"{where}: must be a JSON array of resources, got {data!r}")
        # as cls(Resource.from_json(item, f"{where}[{i}]") for ...), the usual items parsed quickly
        items: dict[tuple[Any, ...], Resource] = {}
        for i, item in enumerate(data):
            res = None
            if type(item) is dict:
                try:
                    res = _quick_from_json(item)
                except Exception:  # noqa: BLE001 - the careful path says what is wrong
                    res = None
            if res is None:
                res = Resource.from_json(item, f"{where}[{i}]")
            if res.is_empty:
                continue
            key = res._key
            have = items.get(key)
            items[key] = have.plus(res) if have is not None else res
        return cls._of(items)

    def to_map(self) -> dict[str, Any]:
        """The state endpoints' resource map: ``{"cpus":1.0,"gpus":0.0,"mem":…,"disk":…,
        "ports":"[31000-32000]"}`` (reservations and volumes folded in)."""
        out: dict[str, Any] = {name: 0.0 for name in MAP_SCALARS}
        by_name: dict[str, list[Resource]] = {}
        for res in self:
            by_name.setdefault(res.name, []).append(res)
        for name, items in by_name.items():
            kind = items[0].type
            if kind == SCALAR:
                out[name] = from_millis(sum(r.value for r in items if r.type == SCALAR))
            elif kind == RANGES:
                out[name] = format_ranges(coalesce(s for r in items if r.type == RANGES for s in r.value))
            else:
                merged: frozenset[str] = frozenset().union(*(r.value for r in items if r.type == SET))
                out[name] = "{" + ", ".join(sorted(merged)) + "}"
        return out


_ORDER = attrgetter("order")


def _members(other: "Resources | Resource | Iterable[Resource]") -> Iterable[Resource]:
    """What `+`/`-` take from `other`: one resource, a bag's items (unique identities: their order
    does not matter), or any iterable in its order."""
    if isinstance(other, Resource):
        return (other,)
    if isinstance(other, Resources):
        return other._items.values()
    return other


def is_ancestor_or_self(ancestor: str, role: str) -> bool:
    return role == ancestor or role.startswith(ancestor + "/")


def validate_role(role: str) -> str | None:
    """None if ``role`` is a valid Mesos role name, else the reason. Mesos' rule: ``*`` (unreserved), or
    no leading or trailing ``/``, no ``//``, no component ``.``, ``..``, ``*`` or starting with ``-``,
    and no whitespace; ``/`` builds hierarchies."""
    if role == "*":
        return None
    if not role:
        return "Empty role name is invalid"
    if role.startswith("/") or role.endswith("/"):
        return f"Role '{role}' cannot start or end with '/'"
    if "//" in role:
        return f"Role '{role}' cannot contain '//'"
    if any(ch.isspace() or ord(ch) < 32 or ch == "\x7f" for ch in role):
        return f"Role '{role}' cannot contain whitespace or control characters"
    for part in role.split("/"):
        if part in (".", "..", "*"):
            return f"Role '{role}' cannot contain '{part}' as a path component"
        if part.startswith("-"):
            return f"Role '{role}' cannot have a component starting with '-'"
    return None


# --------------------------------------------------------------------------- agent flags


def parse_resources_flag(text: str, where: str = "--resources") -> Resources:
    """The agent ``--resources`` flag: ``cpus:4;mem:4096;ports:[31000-32000];cpus(kafka):2``,
    ``disks:{a,b}`` for sets, or a JSON array of v1 Resource objects."""
    text = text.strip()
    if text.startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            data = None
        if isinstance(data, list):
            return Resources.from_json(data, where)
    items = []
    for i, part in enumerate(p.strip() for p in text.split(";")):
        if not part:
            continue
        name_role, sep, value = part.partition(":")
        name_role, value = name_role.strip(), value.strip()
        if not sep or not name_role or not value:
            raise ResourceError(f"{where}: item {i + 1} {part!r} must look like name:value")
        role = "*"
        name = name_role
        if "(" in name_role:
            if not name_role.endswith(")"):
                raise ResourceError(f"{where}: {name_role!r} must look like name(role)")
            name, _, role = name_role[:-1].partition("(")
            problem = validate_role(role)
            if problem:
                raise ResourceError(f"{where}: {problem}")
        reservation = _reservation_for(role, None)
        item_where = f"{where}: {name}"
        if value.startswith("["):
            items.append(Resource(name, RANGES, parse_ranges_text(value, item_where), reservation))
        elif value.startswith("{"):
            if not value.endswith("}"):
                raise ResourceError(f"{item_where}: set {value!r} must look like {{a,b}}")
            members = frozenset(v.strip() for v in value[1:-1].split(",") if v.strip())
            items.append(Resource(name, SET, members, reservation))
        else:
            millis = to_millis(value, item_where)
            if millis < 0:
                raise ResourceError(f"{item_where}: {value} is negative")
            items.append(Resource(name, SCALAR, millis, reservation))
    return Resources(items)


@attrs.frozen
class Attribute:
    """An agent attribute: TEXT (str), SCALAR (millis) or RANGES."""

    name: str
    type: str
    value: Any

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "type": self.type}
        if self.type == TEXT:
            out["text"] = {"value": self.value}
        elif self.type == SCALAR:
            out["scalar"] = {"value": from_millis(self.value)}
        elif self.type == RANGES:
            out["ranges"] = {"range": [{"begin": b, "end": e} for b, e in self.value]}
        else:
            out["set"] = {"item": sorted(self.value)}
        return out

    def map_value(self) -> Any:
        """As in the state endpoints' attribute maps: ``{"zone":"a","weight":2}``."""
        if self.type == TEXT:
            return self.value
        if self.type == SCALAR:
            number = from_millis(self.value)
            return int(number) if number == int(number) else number
        if self.type == RANGES:
            return format_ranges(self.value)
        return "{" + ", ".join(sorted(self.value)) + "}"

    @classmethod
    def from_json(cls, data: Any, where: str = "attribute") -> "Attribute":
        if not _is_map(data) or not isinstance(data.get("name"), str):
            raise ResourceError(f"{where}: an attribute needs a 'name'")
        name, kind = data["name"], data.get("type")
        where = f"{where} ({name})"
        try:
            if kind == TEXT:
                return cls(name, TEXT, str(data["text"]["value"]))
            if kind == SCALAR:
                return cls(name, SCALAR, to_millis(data["scalar"]["value"], where))
            if kind == RANGES:
                spans = [(int(r["begin"]), int(r["end"])) for r in data["ranges"].get("range", [])]
                return cls(name, RANGES, coalesce(spans))
            if kind == SET:
                return cls(name, SET, frozenset(str(i) for i in data["set"].get("item", [])))
        except (KeyError, TypeError, AttributeError, ValueError):
            raise ResourceError(f"{where}: {kind} value missing or malformed") from None
        raise ResourceError(f"{where}: type must be TEXT, SCALAR, RANGES or SET, got {kind!r}")


def parse_attributes_flag(text: str, where: str = "--attributes") -> list[Attribute]:
    """``zone:a;weight:2;ids:[1-3]`` → TEXT / SCALAR / RANGES attributes (a JSON array too)."""
    text = text.strip()
    if text.startswith("[") and text.endswith("]") and text.count(";") == 0:
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            data = None
        if isinstance(data, list):
            return [Attribute.from_json(item, f"{where}[{i}]") for i, item in enumerate(data)]
    out = []
    for i, part in enumerate(p.strip() for p in text.split(";")):
        if not part:
            continue
        name, sep, value = part.partition(":")
        name, value = name.strip(), value.strip()
        if not sep or not name:
            raise ResourceError(f"{where}: item {i + 1} {part!r} must look like name:value")
        if value.startswith("["):
            out.append(Attribute(name, RANGES, parse_ranges_text(value, f"{where}: {name}")))
            continue
        try:
            float(value)
            numeric = value.lower() not in ("nan", "inf", "-inf", "infinity", "-infinity")
        except ValueError:
            numeric = False
        if numeric:
            out.append(Attribute(name, SCALAR, to_millis(value, f"{where}: {name}")))
        else:
            out.append(Attribute(name, TEXT, value))
    return out


def attributes_to_json(attributes: Iterable[Attribute]) -> list[dict[str, Any]]:
    return [a.to_json() for a in attributes]


def attributes_from_json(data: Any, where: str = "attributes") -> list[Attribute]:
    if data is None:
        return []
    if not isinstance(data, list):
        raise ResourceError(f"{where}: must be a JSON array")
    return [Attribute.from_json(item, f"{where}[{i}]") for i, item in enumerate(data)]


def attributes_to_map(attributes: Iterable[Attribute]) -> dict[str, Any]:
    return {a.name: a.map_value() for a in attributes}


def attributes_of(offer: Mapping[str, Any]) -> dict[str, str]:
    """name → value as text of an offer's (or an agent info's) attributes, in Mesos' own text form
    (what its state endpoints and ``--attributes`` use): ``a``, ``2``, ``2.5``, ``[1-3, 5-7]``,
    ``{a, b}``. Placement constraints compare these. ResourceError for a malformed attribute."""
    return {name: str(value) for name, value in
            attributes_to_map(attributes_from_json(offer.get("attributes") or [], "offer.attributes")).items()}
