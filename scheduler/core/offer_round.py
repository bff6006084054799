"""One offer round's shared scratch (`OfferRound`) and where each placement group's pods already are.

The passes of `matching` read and change a round; nothing of it is kept after the round but what
`matching._answer` turns into records and answers.
"""
from __future__ import annotations

from typing import Any, Mapping

import attrs

from scheduler.core.offers import OfferView, Resources
from scheduler.core.outcomes import Outcome, Stage
from scheduler.core.pods import PodDef
from scheduler.core.records import record_of
from scheduler.core.spread import Spread
from scheduler.core.state import State, TaskRecord

Placed = dict[str, list[tuple[str, Mapping[str, str]]]]  # placement group → (hostname, attributes)


@attrs.define
class OfferRound:
    """What the passes of one round share and change (the round's own scratch, never kept)."""
    state: State
    now: float
    views: list[OfferView]
    declines: list[str]
    pools: dict[str, Resources]
    ops: dict[str, list[dict[str, Any]]]
    waiting: dict[str, str]
    releasing: dict[str, str]
    placed: Placed
    known: dict[str, set[str]]  # attribute → values offered this round (GROUP_BY spreads over them)
    changed: dict[str, TaskRecord] = attrs.field(factory=dict)
    moved: dict[str, str] = attrs.field(factory=dict)  # pod → where its new reservation is against its old agent
    outcomes: dict[str, Outcome] = attrs.field(factory=dict)
    spread: Spread = attrs.field(factory=Spread)

    def current(self, pod: PodDef) -> TaskRecord:
        return self.changed.get(pod.name) or record_of(self.state, pod)

    def outcome(self, pod: str, stage: Stage, ok: bool, reason: str, details: list[str] | None = None) -> None:
        self.outcomes[pod] = Outcome(pod, stage, ok, reason, self.now, tuple(details or ()))

    def waits(self, pod: str, stage: Stage, why: str, details: list[str] | None = None) -> None:
        """`pod` was not placed or launched this round: why, for the plans and the API alike."""
        self.waiting[pod] = why
        self.outcome(pod, stage, False, why, details)

    def not_placed(self, pod: PodDef, stage: Stage, reasons: list[str]) -> None:
        self.waits(pod.name, stage, "; ".join(reasons) if reasons else "no offers", reasons)


def placed_by_group(state: State, pods: list[PodDef]) -> Placed:
    """Where each placement group's pods are (their reservation's agent, or where they run)."""
    by_group: Placed = {}
    for pod in pods:
        rec = state.tasks.get(pod.name)
        if rec is None:
            continue
        if rec.reservation is not None:
            by_group.setdefault(pod.group, []).append((rec.reservation.hostname, rec.reservation.attributes))
        elif rec.active and rec.hostname:
            by_group.setdefault(pod.group, []).append((rec.hostname, {}))
    return by_group


