"""Key sets of JSON documents, for comparing the shape of two engines' endpoints (pure).

``key_paths(doc)`` flattens a document into the set of paths a client can read:
``frameworks[].executors[].tasks[].state``. List elements are merged (``[]``), and the keys of
maps whose keys are data rather than field names (flags, attributes, roles, metrics...) become
``*`` so only their values' shapes count. ``shape_diff(a, b, allowed)`` gives the paths found
on one side only, minus an allow-list of prefixes.
"""
from __future__ import annotations

from typing import Any, Iterable

# Objects whose keys are names chosen by users or by the engine, not field names.
DATA_KEYED = ("flags", "attributes", "reserved_resources", "reserved_resources_full",
              "reserved_resources_allocated", "labels_map")


def key_paths(doc: Any, prefix: str = "", data_keyed: Iterable[str] = DATA_KEYED) -> set[str]:
    data_keyed = tuple(data_keyed)
    out: set[str] = set()
    if isinstance(doc, dict):
        last = prefix.rsplit(".", 1)[-1].removesuffix("[]")
        for key, value in doc.items():
            name = "*" if last in data_keyed else key
            path = f"{prefix}.{name}" if prefix else name
            out.add(path)
            out |= key_paths(value, path, data_keyed)
    elif isinstance(doc, list):
        for item in doc:
            out |= key_paths(item, prefix + "[]", data_keyed)
    return out


def allowed(path: str, allow: Iterable[str]) -> bool:
    """Whether ``path`` is ``allow``-listed: equal to an entry or below it."""
    return any(path == a or path.startswith(a + ".") or path.startswith(a + "[]") for a in allow)


def shape_diff(ours: Any, theirs: Any, allow_ours: Iterable[str] = (),
               allow_theirs: Iterable[str] = ()) -> tuple[list[str], list[str]]:
    """(paths only in ``ours``, paths only in ``theirs``), each without its allow-listed ones."""
    a, b = key_paths(ours), key_paths(theirs)
    only_ours = sorted(p for p in a - b if not allowed(p, allow_ours))
    only_theirs = sorted(p for p in b - a if not allowed(p, allow_theirs))
    return only_ours, only_theirs
