"""The decision core stays split: `decide` is a dispatch with a handler for every event type,
and no module of scheduler/core grows past ~300 lines (issue 14)."""
from __future__ import annotations

import typing
from pathlib import Path

from scheduler.core import events as ev
from scheduler.core.decide import HANDLERS

CORE = Path(__file__).resolve().parents[3] / "scheduler" / "core"
MAX_LINES = 310  # "about 300": a few lines of slack, not a second concern


def test_every_event_type_has_exactly_its_handler():
    assert set(HANDLERS) == set(typing.get_args(ev.Event))


def test_no_core_module_is_over_about_300_lines():
    sizes = {p.name: len(p.read_text().splitlines()) for p in CORE.glob("*.py")}
    assert {n: s for n, s in sizes.items() if s > MAX_LINES} == {}
    assert sizes["decide.py"] < 80  # the dispatch only
