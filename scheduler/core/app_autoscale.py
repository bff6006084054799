"""Lag-based autoscaling of stream apps: how many instances an app's consumer-group lag asks for,
and when the count may change. Pure; `spec_commands.on_lag_sampled` applies the decisions.

An app with `autoscale` gets ceil(lag / target_lag) instances (seconds behind / target_lag_s with a
time target: scheduler.core.time_lag), from `min` to `max`, and never more
than the partitions of the busiest topic its group reads (Kafka gives each partition to one member:
an instance more would sit idle; the operator's `min` still wins). The lag is the leader's sample
(scheduler.shell.lag_watch, every policies.lag_sample_interval_s): the group's committed offsets against the high
watermarks, summed over the partitions that have a committed offset.

When the count may change:

- **out** at once when the lag asks for more, but not sooner than `interval_s` after the last change
  and only while every instance is ready: instances still starting (and the group rebalancing to
  them) have not had a chance to lower the lag yet, so scaling on would overshoot.
- **in** only once the lag has asked for fewer for `cooldown_s` without a break, and `cooldown_s`
  after the last change: a lag that dips between two bursts must not shed instances the next burst
  needs (the rebalance each change causes costs more than an idle instance).
- a count outside `min`..`max` (a config update, an operator's count before `--auto`) is brought
  inside at once.

An operator's `kmf scale app` pauses the app's autoscaling (``manual``) until `kmf scale app NAME
--auto`; a config update keeps the count the autoscaler reached. What is kept per app is the
property ``autoscale.<app>``: the pause and the last `KEPT` decisions, each with the lag that
caused it (the ``autoscale`` plan shows them, and a restarted scheduler honours the last change's
time). How long the lag has been low is not kept: a new leader starts the cooldown afresh, which
errs on the side of keeping instances.
"""
from __future__ import annotations

import json
import math
from typing import Any, Mapping

import attrs

from config import AppSpec, AutoscaleSpec, ServiceSpec
from scheduler.core import actions as act
from scheduler.core.state import Goal, PodKind, State

PREFIX = "autoscale."
KEPT = 10  # decisions kept per app
CAUGHT_UP = 1  # records behind that are no backlog (a transaction's commit marker)


def key(app: str) -> str:
    return PREFIX + app


@attrs.frozen
class GroupLag:
    """One consumer group in a lag sample."""

    lag: int  # records behind, over the partitions with a committed offset
    widest: int  # partitions of the busiest topic the group reads (with or without a commit); 0: none committed
    unknown: int = 0  # partitions the group has no committed offset for (not in `lag`)
    state: str | None = None  # as Kafka lists the group: STABLE, PREPARING_REBALANCING, EMPTY, ...
    # each partition with a committed offset: (topic, partition, committed, lag, owner's client id
    # or None), for commit_watch
    parts: tuple[tuple[str, int, int, int, str | None], ...] = ()
    seconds: float | None = None  # time lag (scheduler.core.time_lag; None: not known yet)

    @property
    def known(self) -> bool:
        """Whether the lag is known: the group has committed an offset."""
        return self.widest > 0


def group_lags(sample: Mapping[str, Any]) -> dict[str, GroupLag]:
    """The groups of a lag sample (`lag_watch.compute_lag`'s shape)."""
    out: dict[str, GroupLag] = {}
    for name, group in sample.get("groups", {}).items():
        topics = group.get("topics") or {}
        widths = [len(t.get("partitions", {})) + len(t.get("unknown", [])) for t in topics.values()]
        parts = tuple((topic, int(p), int(v["committed"]), int(v["lag"]), v.get("owner"))
                      for topic, t in sorted(topics.items()) for p, v in sorted(t.get("partitions", {}).items()))
        out[name] = GroupLag(lag=int(group.get("lag", 0)), widest=max(widths, default=0),
                             unknown=sum(len(t.get("unknown", [])) for t in topics.values()),
                             state=group.get("state"), parts=parts)
    return out


@attrs.frozen
class Decision:
    at: float
    before: int
    after: int
    lag: int | None  # None: not the lag's doing (a count brought inside min..max)
    reason: str
    seconds: float | None = None  # the time lag then, when known

    def to_json(self) -> dict[str, Any]:
        return attrs.asdict(self)


@attrs.frozen
class Memory:
    """What is kept of one app's autoscaling (the property ``autoscale.<app>``)."""

    manual: bool = False  # paused by an operator's count
    decisions: tuple[Decision, ...] = ()  # oldest first, at most KEPT

    @property
    def last_at(self) -> float | None:
        return self.decisions[-1].at if self.decisions else None

    def to_text(self) -> str:
        return json.dumps({"manual": self.manual, "decisions": [d.to_json() for d in self.decisions]},
                          sort_keys=True)

    @classmethod
    def from_text(cls, text: str | None) -> "Memory":
        """The stored memory; an unreadable one (written by a future kmf) is a fresh start."""
        if not text:
            return cls()
        try:
            doc = json.loads(text)
            return cls(manual=bool(doc.get("manual", False)),
                       decisions=tuple(Decision(**d) for d in doc.get("decisions", [])))
        except (ValueError, TypeError, AttributeError):
            return cls()

    def with_decision(self, d: Decision) -> "Memory":
        return attrs.evolve(self, decisions=(*self.decisions, d)[-KEPT:])


def memory(props: Mapping[str, str], app: str) -> Memory:
    return Memory.from_text(props.get(key(app)))


def stored(props: Mapping[str, str], app: str, mem: Memory) -> tuple[dict[str, str], act.Persist]:
    """`props` with `mem` kept for `app`, and the write that keeps it."""
    text = mem.to_text()
    return {**props, key(app): text}, act.Persist(puts=(("properties", key(app), text),))


def bounds(auto: AutoscaleSpec, lag: GroupLag | None) -> tuple[int, int]:
    """The fewest and the most instances the app may have now."""
    most = auto.max if lag is None else min(auto.max, lag.widest)
    return auto.min, max(auto.min, most)


def inside(auto: AutoscaleSpec, count: int) -> int:
    """`count` brought inside `min`..`max`."""
    return min(auto.max, max(auto.min, count))


def behind(auto: AutoscaleSpec, lag: GroupLag) -> float | None:
    """How far behind the group is in the unit of the app's target (records, or seconds with
    `target_lag_s`); None: not known yet."""
    return lag.seconds if auto.target_lag_s is not None else lag.lag


def per_instance(auto: AutoscaleSpec, lag: GroupLag) -> str:
    """How far behind the group is against the app's target, in words (the plan and the log show them)."""
    if auto.target_lag_s is not None:
        return (f"{lag.seconds:.1f} s behind ({lag.lag} records) at {auto.target_lag_s:g} s per instance"
                if lag.seconds is not None else f"{lag.lag} records behind, seconds not known yet")
    return f"{lag.lag} records behind at {auto.target_lag} per instance"


def wanted(auto: AutoscaleSpec, lag: GroupLag) -> int:
    """The instances `lag` asks for, within `bounds` (a lag not known yet asks for no change: the
    fewest)."""
    low, high = bounds(auto, lag)
    amount = behind(auto, lag) or 0
    target = auto.target_lag_s if auto.target_lag_s is not None else auto.target_lag
    return min(high, max(low, math.ceil(amount / target))) if target else low


@attrs.frozen
class Verdict:
    count: int | None  # the new count, or None: keep it
    note: str  # what was decided and why (the plan shows it)
    low_since: float | None  # since when the lag has asked for fewer instances (None: it does not)
    lag: int | None = None


def decide(auto: AutoscaleSpec, count: int, lag: GroupLag | None, mem: Memory, low_since: float | None,
           all_ready: bool, now: float) -> Verdict:
    """Whether the app's count changes now (see the module's rules)."""
    if mem.manual:
        return Verdict(None, f"paused at {count} by an operator's count (kmf scale app ... --auto resumes it)", None)
    if inside(auto, count) != count:
        return Verdict(inside(auto, count), f"{count} is outside min {auto.min} .. max {auto.max}", None)
    if lag is None or not lag.known:
        return Verdict(None, "no lag known yet (the group has committed no offset)", None)
    if behind(auto, lag) is None:
        return Verdict(None, f"{lag.lag} records behind; how many seconds is not known yet (it takes two "
                             "lag samples)", low_since, lag.lag)
    want = wanted(auto, lag)
    since_change = None if mem.last_at is None else now - mem.last_at
    per = per_instance(auto, lag)
    if want > count:
        if not all_ready:
            return Verdict(None, f"{per} asks for {want}: waiting for every instance to be ready", None, lag.lag)
        if since_change is not None and since_change < auto.interval_s:
            return Verdict(None, f"{per} asks for {want}: waiting {auto.interval_s - since_change:.0f} s more "
                                 f"(interval_s {auto.interval_s:g})", None, lag.lag)
        return Verdict(want, f"{per} asks for {want}", None, lag.lag)
    if want < count:
        low_since = now if low_since is None else low_since
        quiet = min(now - low_since, since_change if since_change is not None else math.inf)
        if quiet < auto.cooldown_s:
            return Verdict(None, f"{per} asks for {want}: cooling down, {auto.cooldown_s - quiet:.0f} s more "
                                 f"(cooldown_s {auto.cooldown_s:g})", low_since, lag.lag)
        return Verdict(want, f"{per} asks for {want} (for {now - low_since:.0f} s)", low_since, lag.lag)
    return Verdict(None, f"{per}: {count} is right", None, lag.lag)


def forget(state: State, spec: ServiceSpec) -> tuple[State, list[act.Action]]:
    """Drop what is kept of the autoscaling of apps `spec` no longer autoscales (or has no more):
    autoscaling given back later starts afresh, not paused by an old operator's count."""
    keep = {key(a.name) for a in spec.apps if a.autoscale is not None}
    gone = sorted(k for k in state.properties if k.startswith(PREFIX) and k not in keep)
    if not gone:
        return state, []
    props = {k: v for k, v in state.properties.items() if k not in gone}
    return attrs.evolve(state, properties=props), [act.Persist(deletes=tuple(("properties", k) for k in gone))]


def kept_counts(old: ServiceSpec, new: ServiceSpec, props: Mapping[str, str]) -> ServiceSpec:
    """`new` with the count each autoscaled app has reached kept (a config update's `count` is where
    an app starts, not where the autoscaler must go back to): an app autoscaled before and after
    keeps its count, brought inside the new `min`..`max` unless an operator's count pauses it."""
    before = {a.name: a for a in old.apps}

    def keep(app: AppSpec) -> AppSpec:
        was = before.get(app.name)
        if app.autoscale is None or was is None or was.autoscale is None:
            return app
        if memory(props, app.name).manual:
            return attrs.evolve(app, count=was.count)
        return attrs.evolve(app, count=inside(app.autoscale, was.count))

    apps = tuple(keep(a) for a in new.apps)
    return new if apps == new.apps else attrs.evolve(new, apps=apps)


def settled(state: State, app: AppSpec) -> bool:
    """Whether the app has exactly its count of instances, every one ready (no scaling under way)."""
    mine = [r for r in state.tasks.values() if r.kind == PodKind.STREAM and r.pod.rsplit("-", 1)[0] == app.name
            and r.goal != Goal.GONE]
    names = {f"{app.name}-{i}" for i in range(app.count)}
    return {r.pod for r in mine} == names and all(r.serving for r in mine)


def view(state: State) -> dict[str, Any] | None:
    """The ``autoscale`` plan: one phase per autoscaled app (its message: what its last evaluation
    said), its steps the decisions kept; a phase is IN_PROGRESS while the app's instances are not
    all there and ready, WAITING while an operator's count pauses it. None: no app is autoscaled."""
    phases = []
    for app in state.spec.apps:
        if app.autoscale is None:
            continue
        mem = memory(state.properties, app.name)
        a = app.autoscale
        steps = [{"name": f"{d.before} → {d.after}", "status": "COMPLETE", "at": d.at, "lag": d.lag,
                  "message": d.reason} for d in mem.decisions]
        status = "WAITING" if mem.manual else "COMPLETE" if settled(state, app) else "IN_PROGRESS"
        phases.append({"name": app.name, "status": status, "strategy": "parallel", "count": app.count,
                       "manual": mem.manual,
                       "settings": {"min": a.min, "max": a.max, "target_lag": a.target_lag,
                                    "target_lag_s": a.target_lag_s,
                                    "interval_s": a.interval_s, "cooldown_s": a.cooldown_s},
                       "message": state.autoscale_notes.get(app.name, "no lag sample yet"), "steps": steps})
    if not phases:
        return None
    statuses = {p["status"] for p in phases}
    status = "IN_PROGRESS" if "IN_PROGRESS" in statuses else "WAITING" if statuses == {"WAITING"} else "COMPLETE"
    return {"name": "autoscale", "status": status, "strategy": "parallel", "phases": phases, "errors": []}
