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
3. **leaders**: while one broker leads two or more partitions more than another, leadership is
   handed along the shortest chain of shared partitions from a broker leading the most to one
   leading the fewest (the preferred leader, the first replica, swapped with another replica at
   each step); a reorder moves no data.

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
    while max(leads.values()) - min(leads.values()) > 1:
        path = _leadership_path(plan, leads)
        if path is None:
            return  # as even as the partitions' replica sets allow
        for tp, nxt, _ in path:
            plan[tp] = (nxt, *[b for b in plan[tp] if b != nxt])
        leads[path[0][2]] -= 1  # the chain's start leads one fewer, its end one more
        leads[path[-1][1]] += 1


def _leadership_path(plan: dict[TopicPartition, tuple[int, ...]],
                     leads: dict[int, int]) -> list[tuple[TopicPartition, int, int]] | None:
    """The shortest chain of leadership hand-overs from a broker leading the most partitions to
    one leading two or more fewer: broker a leads a partition b also holds, b leads one c holds, ...
    Handing each over along the chain moves one leadership from its start to its end and leaves
    every broker in between as it was. A direct swap alone gets stuck when the brokers that lead
    the most share no partition with those that lead the fewest. Each step is (partition, new
    leader, old leader); None when no such chain exists (breadth-first over brokers, in sorted
    order, so the same cluster gives the same plan)."""
    high = max(leads.values())
    led: dict[int, list[TopicPartition]] = {}
    for tp in sorted(plan):
        led.setdefault(plan[tp][0], []).append(tp)
    starts = sorted(b for b, n in leads.items() if n == high)
    came_from: dict[int, tuple[TopicPartition, int] | None] = {b: None for b in starts}
    queue = list(starts)
    for broker in queue:  # grows while it is walked: breadth-first
        for tp in led.get(broker, []):
            for other in plan[tp][1:]:
                if other in came_from or other not in leads:
                    continue
                came_from[other] = (tp, broker)
                if leads[other] <= high - 2:
                    path = []
                    node = other
                    while (step := came_from[node]) is not None:
                        path.append((step[0], node, step[1]))
                        node = step[1]
                    return path[::-1]
                queue.append(other)
    return None
