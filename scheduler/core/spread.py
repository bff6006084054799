"""Spreading a stream app's instances over agents within one offer round (pure).

An app without placement rules puts each instance on the agent, among those whose offer can take
it, that holds the fewest of the app's pods (Marathon's ``hostname:GROUP_BY`` over the agents that
fit). The round asks `Spread.order` for the offers to try, level by level: agents holding none of
the group's pods, then one, and so on. Counts only grow and pools only shrink during a round, so an
offer passed at a level is never wanted at that level again: one cursor per (group, level) keeps a
round linear in offers + pods instead of scanning every offer for every pod.
"""
from __future__ import annotations

from collections import Counter
from typing import Iterator, Mapping, Sequence

from scheduler.core.offers import OfferView
from scheduler.core.placement import first_violation
from scheduler.core.pods import PodDef

Placed = Mapping[str, list[tuple[str, Mapping[str, str]]]]  # placement group → (hostname, attributes)


class Spread:
    """One round's spreading memory: pods per hostname per group, the scan cursors, and why each
    offer last refused a pod of a group (to explain a pod no offer took)."""

    def __init__(self) -> None:
        self.counts: dict[str, Counter[str]] = {}
        self.cursors: dict[tuple[str, int], int] = {}
        self.refusals: dict[tuple[str, int], str] = {}
        self.top: dict[str, int] = {}  # per group, the most pods one agent holds

    def _counts(self, group: str, placed: Placed) -> Counter[str]:
        if group not in self.counts:
            self.counts[group] = Counter(h for h, _ in placed.get(group, []))
            self.top[group] = max(self.counts[group].values(), default=0)
        return self.counts[group]

    def place(self, placed: dict[str, list[tuple[str, Mapping[str, str]]]], group: str, view: OfferView) -> None:
        """A pod of `group` goes on `view`'s agent this round: into `placed` and the counts."""
        placed.setdefault(group, []).append((view.hostname, view.attributes))
        if group in self.counts:
            self.counts[group][view.hostname] += 1
            self.top[group] = max(self.top[group], self.counts[group][view.hostname])

    def order(self, group: str, views: Sequence[OfferView], placed: Placed) -> Iterator[int]:
        """Offer indices for a pod of `group`: fewest pods of the group first, offer order within
        a level. The caller stops at the first it takes (and reports it with `placed`)."""
        counts = self._counts(group, placed)
        n, level = len(views), 0
        while level <= self.top[group]:
            key = (group, level)
            while (i := self.cursors.get(key, 0)) < n:
                self.cursors[key] = i + 1
                if counts[views[i].hostname] == level:
                    yield i
            level += 1

    def reasons(self, group: str, offers: int) -> list[str]:
        """Why each offer (in order) last refused a pod of `group`."""
        return [r for i in range(offers) if (r := self.refusals.get((group, i))) is not None]


def placement_refusal(pod: PodDef, view: OfferView, placed: Placed, known: Mapping[str, set[str]]) -> str | None:
    """Why `pod`'s placement rules keep it off `view`'s agent (its constraints; `avoid_brokers`:
    an agent holding a broker or controller), or None."""
    reason = first_violation(pod.placement, view.hostname, view.attributes, placed.get(pod.group, []), known)
    if reason is None and pod.avoid_brokers and any(h == view.hostname for h, _ in placed.get("kafka", [])):
        reason = f"agent {view.hostname} holds a broker (avoid_brokers)"
    return reason
