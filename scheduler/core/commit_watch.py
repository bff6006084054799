"""Stream instances that stopped committing while behind (pure): a hung poll loop that keeps
saying RUNNING.

An instance is healthy while it keeps committing: each lag sample gives every partition of an
app's group its committed offset, its lag and its owner (the member's client id, which kmf makes
the pod's name, Kafka Streams adding its thread's suffix). A partition's clock restarts whenever its
committed offset moves, its owner changes, or it is caught up (lag ≤ 1: a transactional topic
keeps one commit marker behind for good). A partition whose clock has run `stuck_limit_s` in a
stable group stalls its owner: the owner is ended as a failure (relaunched with the recovery
backoff), as an instance stuck out of RUNNING is. An instance launched less than `stuck_limit_s`
ago is left to start.
"""
from __future__ import annotations

from typing import Mapping

import attrs

from scheduler.core import actions as act
from scheduler.core.app_autoscale import CAUGHT_UP, GroupLag
from scheduler.core.records import put, with_records
from scheduler.core.state import State, TaskRecord

Key = tuple[str, str, int]  # group, topic, partition


@attrs.frozen
class Progress:
    committed: int
    owner: str | None
    since: float  # when the committed offset last moved (or the partition was caught up)


@attrs.frozen
class Stall:
    pod: str
    topic: str
    partition: int
    committed: int
    lag: int
    seconds: float
    limit: float  # the app's stuck_limit_s

    def why(self) -> str:
        return (f"not committing: {self.topic}-{self.partition} stayed at offset {self.committed} for "
                f"{self.seconds:.0f}s with {self.lag} records behind (stuck_limit_s {self.limit:g}); restarting it")


def observe(before: Mapping[Key, Progress], groups: Mapping[str, GroupLag], now: float) -> dict[Key, Progress]:
    """Each partition's progress after a sample of `groups` (partitions no longer sampled are dropped)."""
    out: dict[Key, Progress] = {}
    for group, lag in groups.items():
        for topic, partition, committed, behind, owner in lag.parts:
            key = (group, topic, partition)
            old = before.get(key)
            if old is None or old.committed != committed or old.owner != owner or behind <= CAUGHT_UP:
                out[key] = Progress(committed, owner, now)
            else:
                out[key] = old
    return out


def pod_of(owner: str | None, pods: list[str]) -> str | None:
    """The pod whose client id `owner` is: the pod's name, or it followed by a suffix ("-StreamThread-1-consumer")."""
    if owner is None:
        return None
    return next((p for p in pods if owner == p or owner.startswith(p + "-")), None)


def stalls(state: State, progress: Mapping[Key, Progress], groups: Mapping[str, GroupLag],
           now: float) -> list[Stall]:
    """The running instances that hold a partition stalled for their app's `stuck_limit_s`."""
    out: dict[str, Stall] = {}
    for app in state.spec.apps:
        group = app.consumer_group(state.spec.name)
        lag = groups.get(group)
        if lag is None or lag.state != "STABLE":
            continue
        pods = [f"{app.name}-{i}" for i in range(app.count)]
        for topic, partition, committed, behind, owner in lag.parts:
            seen = progress.get((group, topic, partition))
            pod = pod_of(owner, pods)
            if seen is None or pod is None or pod in out or behind <= CAUGHT_UP:
                continue
            rec = state.tasks.get(pod)
            if now - seen.since < app.stuck_limit_s or not _may_end(rec, now, app.stuck_limit_s):
                continue
            out[pod] = Stall(pod, topic, partition, committed, behind, now - seen.since, app.stuck_limit_s)
    return list(out.values())


def _may_end(rec: TaskRecord | None, now: float, limit: float) -> bool:
    """Running, ready, saying RUNNING (or no state at all: another state is the executor's stuck
    rule's), not being stopped by kmf, and up longer than the limit."""
    return (rec is not None and rec.active and rec.serving and rec.kill_reason is None
            and rec.app_state in (None, "RUNNING")
            and rec.task_id is not None and rec.launched_at is not None and now - rec.launched_at >= limit)


def on_sample(state: State, groups: Mapping[str, GroupLag], now: float) -> tuple[State, list[act.Action]]:
    """The partitions' progress after a lag sample, and each stalled instance ended (recorded
    first, with why): its executor stops it, and the terminal status counts as a failure."""
    progress = observe(state.commit_progress, groups, now)
    state = attrs.evolve(state, commit_progress=progress)
    found = stalls(state, progress, groups, now)
    if not found:
        return state, []
    ended = [attrs.evolve(state.tasks[s.pod], message=s.why()) for s in found]
    kills: list[act.Action] = [act.Kill(r.task_id, r.agent_id, r.message) for r in ended if r.task_id]
    # the clocks of what the ended instances held start again: their successors get the full limit
    pods = [s.pod for s in found]
    progress = {k: (attrs.evolve(p, since=now) if pod_of(p.owner, pods) else p) for k, p in progress.items()}
    return attrs.evolve(with_records(state, *ended), commit_progress=progress), [put(*ended), *kills]
