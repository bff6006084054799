"""Where each partition's replicas should go: the balanced assignment `kmf rebalance`, a drain and
a scale-out move towards. Pure; the moves themselves are Kafka's (its reassignment tool).

Three passes, each moving as little as it can, in a fixed order so that the same cluster always
gives the same plan:

1. **evacuate**: every replica on a broker being removed (or no longer in the cluster) goes to
   the least-loaded target broker not already holding the partition, preferring a rack the
   partition is not on yet;
2. **balance**: while one broker holds two or more replicas more than another, one replica moves
   from the fullest to the emptiest broker, never onto a rack the partition already uses unless it
   leaves that rack too (rack spread is never made worse);
3. **leaders**: the preferred leader (first replica) of a partition is swapped with another of its
   replicas while one broker leads two or more partitions more than another; a reorder moves no
   data.

Balance is in replica and leader counts, not bytes: partitions of one topic are alike, and counts
are what an operator checks first. A partition the plan leaves alone is not in the result.
"""
from __future__ import annotations

from collections import Counter
from typing import Collection, Mapping, Sequence

import attrs

from kmfwire.errors import KmfError

TopicPartition = tuple[str, int]
Assignment = Mapping[TopicPartition, tuple[int, ...]]


class PlanError(KmfError):
    """The assignment asked for cannot exist (more replicas than brokers left, no broker left)."""


@attrs.frozen
class Proposal:
    """The partitions to change: each one's replicas now and where they go."""

    moves: Mapping[TopicPartition, tuple[tuple[int, ...], tuple[int, ...]]]
    brokers: tuple[int, ...]  # the brokers the plan balances over

    @property
    def replicas_moved(self) -> int:
        """Replicas copied to a broker that did not have them (reorders copy nothing)."""
        return sum(len(set(new) - set(old)) for old, new in self.moves.values())

    def counts(self, assignment: Assignment) -> dict[int, int]:
        """Replicas per target broker once the plan is done."""
        after = dict(assignment)
        after.update({tp: new for tp, (_, new) in self.moves.items()})
        return replica_counts(after, self.brokers)


def replica_counts(assignment: Assignment, brokers: Collection[int]) -> dict[int, int]:
    counts = {b: 0 for b in brokers}
    for replicas in assignment.values():
        for b in replicas:
            if b in counts:
                counts[b] += 1
    return counts


def leader_counts(assignment: Assignment, brokers: Collection[int]) -> dict[int, int]:
    counts = {b: 0 for b in brokers}
    for replicas in assignment.values():
        if replicas and replicas[0] in counts:
            counts[replicas[0]] += 1
    return counts


def _racks_of(replicas: Sequence[int], racks: Mapping[int, str | None]) -> Counter[str]:
    return Counter(r for b in replicas if (r := racks.get(b)) is not None)


def _spread(replicas: Sequence[int], racks: Mapping[int, str | None]) -> int:
    """How many racks the replicas are on (brokers without a rack count one each)."""
    return len(_racks_of(replicas, racks)) + sum(1 for b in replicas if racks.get(b) is None)


def propose(assignment: Assignment, brokers: Collection[int], racks: Mapping[int, str | None] | None = None,
            remove: Collection[int] = ()) -> Proposal:
    """The moves that balance `assignment` over `brokers` minus `remove`."""
    racks = racks or {}
    targets = tuple(sorted(set(brokers) - set(remove)))
    if not targets:
        raise PlanError("no broker would be left to hold the partitions")
    widest = max((len(r) for r in assignment.values()), default=0)
    if widest > len(targets):
        worst = sorted(tp for tp, r in assignment.items() if len(r) == widest)[0]
        raise PlanError(f"partition {worst[0]}-{worst[1]} has {widest} replicas but only {len(targets)} "
                        f"broker(s) would be left ({', '.join(map(str, targets))})")
    current = {tp: tuple(r) for tp, r in sorted(assignment.items())}
    plan = dict(current)
    counts = replica_counts(plan, targets)
    _evacuate(plan, counts, targets, racks)
    _balance(plan, counts, racks)
    _lead(plan, targets)
    moves = {tp: (current[tp], new) for tp, new in plan.items() if new != current[tp]}
    return Proposal(moves, targets)


def _evacuate(plan: dict[TopicPartition, tuple[int, ...]], counts: dict[int, int], targets: tuple[int, ...],
              racks: Mapping[int, str | None]) -> None:
    for tp, replicas in plan.items():
        if all(b in counts for b in replicas):
            continue
        new = list(replicas)
        for i, b in enumerate(replicas):
            if b in counts:
                continue
            used = _racks_of([x for x in new if x != b], racks)
            choices = [t for t in targets if t not in new]
            best = min(choices, key=lambda t: (racks.get(t) in used, counts[t], t))
            new[i] = best
            counts[best] += 1
        plan[tp] = tuple(new)


def _balance(plan: dict[TopicPartition, tuple[int, ...]], counts: dict[int, int],
             racks: Mapping[int, str | None]) -> None:
    # each round moves one replica from a broker above the floor to one below the ceiling; a
    # replica moves at most once, so the rounds end
    moved: set[tuple[TopicPartition, int]] = set()
    while True:
        low, high = min(counts.values()), max(counts.values())
        if high - low <= 1:
            return
        if not _move_one(plan, counts, racks, moved):
            return  # what is left is held in place by rack spread


def _move_one(plan: dict[TopicPartition, tuple[int, ...]], counts: dict[int, int],
              racks: Mapping[int, str | None], moved: set[tuple[TopicPartition, int]]) -> bool:
    low = min(counts.values())
    high = max(counts.values())
    donors = sorted((b for b, n in counts.items() if n == high), key=lambda b: b)
    takers = sorted((b for b, n in counts.items() if n == low), key=lambda b: b)
    for donor in donors:
        for tp, replicas in plan.items():
            if donor not in replicas or (tp, donor) in moved:
                continue
            for taker in takers:
                if taker in replicas:
                    continue
                new = tuple(taker if b == donor else b for b in replicas)
                if _spread(new, racks) < _spread(replicas, racks):
                    continue
                plan[tp] = new
                counts[donor] -= 1
                counts[taker] += 1
                moved.add((tp, taker))
                return True
    return False


def _lead(plan: dict[TopicPartition, tuple[int, ...]], targets: tuple[int, ...]) -> None:
    leads = leader_counts(plan, targets)
    while True:
        high = max(leads.values())
        low = min(leads.values())
        if high - low <= 1:
            return
        swapped = False
        for tp, replicas in plan.items():
            first = replicas[0]
            if leads[first] != high:
                continue
            better = [b for b in replicas[1:] if leads[b] <= high - 2]
            if better:
                nxt = min(better, key=lambda b: (leads[b], b))
                rest = [b for b in replicas if b != nxt]
                plan[tp] = (nxt, *rest)
                leads[first] -= 1
                leads[nxt] += 1
                swapped = True
                break
        if not swapped:
            return
