"""Offers an offer round found too small for a stream instance's shape (cpus, mem).

Pools only shrink while a round launches stream instances, so an offer too small for a shape stays
too small for the rest of the round. Remembering the reason per offer keeps a round linear in
offers + pods; and because a round fills the offers in order, the offers too small for a shape
form a leading run that a pod without placement rules skips at once: its reason for each of them
would be the remembered text (no rule can come first), so `skipped` gives the same texts back
when such a pod is not placed at all.
"""
from __future__ import annotations

from typing import Sequence

from scheduler.core.offers import OfferView

Shape = tuple[float, int]


class Shortfalls:
    """The round's memory of offers too small, per (offer id, cpus, mem), and per shape the
    length of the leading run of offers known too small."""

    def __init__(self) -> None:
        self.reason: dict[tuple[str, float, int], str] = {}
        self.skip: dict[Shape, int] = {}

    def passed(self, shape: Shape, index: int, key: tuple[str, float, int]) -> None:
        """Offer `index` was not taken; if it is too small for `shape` and ends the known run, the
        run grows by one."""
        if key in self.reason and self.skip.get(shape, 0) == index:
            self.skip[shape] = index + 1

    def skipped(self, views: Sequence[OfferView], shape: Shape) -> list[str]:
        """The reasons of the offers a pod skipped (each is in the leading run for its shape)."""
        return [self.reason[(v.id, *shape)] for v in views]
