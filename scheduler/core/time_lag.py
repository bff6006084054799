"""How many seconds a consumer group is behind, from the record lag samples alone (pure).

A group's record lag says how much is left, not how old it is: 10,000 records are a second's work
on one topic and an hour's on another. Its *time lag* is the age of the oldest record it has not
consumed yet. Kafka does not say when the record at an offset arrived without reading it, but the
lag samples already say where each partition's high watermark was at each sample. Each partition
keeps the last HISTORY of those (time, end offset) points; the record at offset `c` arrived when
the end offset went past `c`, read off that line between the two samples around it. A committed
offset older than every point kept is placed on the line extended back at the partition's average
rate over the points kept (with no growth to go by: at least as old as the oldest point).

A partition caught up (≤ CAUGHT_UP records behind: a transactional topic keeps its last commit
marker unconsumed for good) is 0 seconds behind. The group's time lag is its worst partition's;
it is unknown (None) while a partition that is behind has fewer than two points (a new leader's
first sample) or none of its points tell. An end offset that went back (the topic was deleted and
made again) starts the partition's line afresh.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import attrs

from scheduler.core.app_autoscale import CAUGHT_UP, GroupLag

HISTORY = 120  # points kept per partition: 20 minutes at the default 10 s sampling
Point = tuple[float, int]  # (when sampled, end offset)
TP = tuple[str, int]


def observe(before: Mapping[TP, tuple[Point, ...]], groups: Mapping[str, GroupLag],
            at: float) -> dict[TP, tuple[Point, ...]]:
    """Each sampled partition's line with this sample's end offset added (partitions no group
    reads any more are dropped)."""
    out: dict[TP, tuple[Point, ...]] = {}
    for lag in groups.values():
        for topic, partition, committed, behind, _owner in lag.parts:
            tp = (topic, partition)
            if tp in out:
                continue
            end = committed + behind
            line = before.get(tp, ())
            if line and end < line[-1][1]:
                line = ()
            if line and line[-1][0] >= at:  # the same sample twice: keep one point
                line = line[:-1]
            out[tp] = (*line, (at, end))[-HISTORY:]
    return out


def seconds_behind(line: Sequence[Point], committed: int, now: float) -> float | None:
    """How long ago the record at `committed` arrived, by the partition's `line` (oldest first);
    0 when nothing past it is there; None when the line cannot tell."""
    if not line:
        return None
    last_t, last_end = line[-1]
    if last_end - committed <= CAUGHT_UP:
        return 0.0
    target = committed + 1  # the end offset once the record at `committed` was there
    for (t0, e0), (t1, e1) in zip(line, line[1:]):
        if e0 < target <= e1:
            return max(0.0, now - (t0 + (t1 - t0) * (target - e0) / (e1 - e0)))
    first_t, first_end = line[0]
    if len(line) < 2 or first_end < target:
        return None
    if last_end > first_end and last_t > first_t:
        rate = (last_end - first_end) / (last_t - first_t)
        return max(0.0, now - (first_t - (first_end - target) / rate))
    return max(0.0, now - first_t)


def group_seconds(lines: Mapping[TP, Sequence[Point]], lag: GroupLag, now: float) -> float | None:
    """The group's time lag: its worst partition's (None: a partition behind cannot tell yet)."""
    worst = 0.0
    for topic, partition, committed, _behind, _owner in lag.parts:
        s = seconds_behind(lines.get((topic, partition), ()), committed, now)
        if s is None:
            return None
        worst = max(worst, s)
    return worst


def with_seconds(lines: Mapping[TP, Sequence[Point]], groups: Mapping[str, GroupLag],
                 now: float) -> dict[str, GroupLag]:
    """`groups` with each one's time lag filled in."""
    return {g: attrs.evolve(lag, seconds=group_seconds(lines, lag, now)) for g, lag in groups.items()}
