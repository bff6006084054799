"""docs/configuration.md documents every field of the models, by its YAML path."""
from __future__ import annotations

from pathlib import Path

import attrs

from config.models import ServiceSpec

DOC = Path(__file__).resolve().parents[3] / "docs" / "configuration.md"


def paths(cls, prefix=""):
    import typing
    hints = typing.get_type_hints(cls)
    for f in attrs.fields(cls):
        typ = hints[f.name]
        args = typing.get_args(typ)
        inner = args[0] if args else None
        if attrs.has(typ):
            yield from paths(typ, f"{prefix}{f.name}.")
        elif inner is not None and attrs.has(inner) and f.name == "apps":
            yield from paths(inner, f"{prefix}{f.name}[].")
        else:
            yield f"{prefix}{f.name}"


def test_every_field_is_documented():
    text = DOC.read_text()
    missing = [p for p in paths(ServiceSpec) if f"`{p}`" not in text]
    assert not missing, f"undocumented fields: {missing}"
