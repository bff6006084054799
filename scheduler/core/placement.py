"""Marathon placement constraints over an agent's hostname and attributes.

`violation(constraint, agent, placed, known_values)` returns None when a pod may go on `agent`,
else the reason in words (shown by ``GET /v1/pod/{name}/info``). ``placed`` holds the field
values of the group's pods already placed (including those placed earlier in the same round).
"""
from __future__ import annotations

import re
from collections import Counter
from typing import Iterable, Mapping

from config import Constraint


def field_value(field: str, hostname: str, attributes: Mapping[str, str]) -> str | None:
    return hostname if field == "hostname" else attributes.get(field)


def violation(c: Constraint, hostname: str, attributes: Mapping[str, str],
              placed: Iterable[tuple[str, Mapping[str, str]]],
              known_values: Iterable[str] = ()) -> str | None:
    value = field_value(c.field, hostname, attributes)
    where = f"{c}: agent {hostname}"
    if value is None:
        return f"{where} has no attribute {c.field!r}"
    others = Counter(field_value(c.field, h, a) for h, a in placed)
    if c.operator == "UNIQUE":
        return f"{where} already runs a pod with {c.field}={value}" if others[value] else None
    if c.operator in ("CLUSTER", "IS"):
        return None if c.value is None or value == c.value else f"{where} has {c.field}={value}"
    if c.operator == "LIKE":
        return None if re.fullmatch(c.value or "", value) else f"{where} has {c.field}={value}"
    if c.operator == "UNLIKE":
        return f"{where} has {c.field}={value}" if re.fullmatch(c.value or "", value) else None
    if c.operator == "MAX_PER":
        limit = int(c.value or 1)
        return f"{where}: {c.field}={value} already has {others[value]}" if others[value] >= limit else None
    if c.operator == "GROUP_BY":
        values = set(v for v in known_values if v is not None) | {value} | {v for v in others if v}
        lowest = min(others[v] for v in values)
        if others[value] > lowest:
            return f"{where}: {c.field}={value} has {others[value]} pods, another value has {lowest}"
        return None
    return f"{where}: unknown operator {c.operator}"


def first_violation(constraints: Iterable[Constraint], hostname: str, attributes: Mapping[str, str],
                    placed: list[tuple[str, Mapping[str, str]]], known: Mapping[str, set[str]]) -> str | None:
    for c in constraints:
        reason = violation(c, hostname, attributes, placed, known.get(c.field, ()))
        if reason is not None:
            return reason
    return None
