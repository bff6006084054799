"""Maintenance holds: a broker kept off its agent for a Mesos maintenance window (pure values).

A hold is stored as the property ``maintenance.<pod>`` (JSON), so that a restarted scheduler keeps
it: the host and agent under maintenance, the window (start, end; no end: the machine is drained
for good) and whether the broker waits in place for the window's end or moves to another agent.
`scheduler.core.maintenance` decides when holds start, stop their broker and end.
"""
from __future__ import annotations

import json
from typing import Any, Mapping

import attrs

from scheduler.core.state import State

PREFIX = "maintenance."
# a broker that waits in place stops this long before its window starts (not days ahead of a window
# scheduled far out: until then it serves, and a crash of it is recovered as usual)
LEAD_S = 600.0


@attrs.frozen
class Hold:
    pod: str
    agent_id: str
    hostname: str
    start: float  # seconds since the epoch
    end: float | None  # None: no end announced (drained for good)
    move: bool  # True: the broker moves with its id to another agent; False: it waits in place
    since: float

    @property
    def key(self) -> str:
        return PREFIX + self.pod

    def to_json(self) -> str:
        return json.dumps({"agent_id": self.agent_id, "hostname": self.hostname, "start": self.start,
                           "end": self.end, "move": self.move, "since": self.since}, sort_keys=True)

    @classmethod
    def from_json(cls, pod: str, text: str) -> "Hold | None":
        try:
            doc = json.loads(text)
            end = doc.get("end")
            return cls(pod, str(doc["agent_id"]), str(doc["hostname"]), float(doc["start"]),
                       None if end is None else float(end), bool(doc["move"]), float(doc.get("since", 0.0)))
        except (ValueError, KeyError, TypeError, AttributeError):
            return None

    def over(self, now: float) -> bool:
        return self.end is not None and now >= self.end

    def due(self, now: float) -> bool:
        """Whether its broker is to be off its agent now (a move is never put off)."""
        return self.move or now >= self.start - LEAD_S

    def view(self, now: float) -> dict[str, Any]:
        """What the pods view shows."""
        mode = "move" if self.move else "stop in place"
        return {"hostname": self.hostname, "agent_id": self.agent_id, "mode": mode,
                "window_start": self.start, "window_end": self.end,
                "text": f"maintenance of {self.hostname} ({mode}): " + window_text(self.start, self.end, now)}


def window_text(start: float, end: float | None, now: float) -> str:
    begins = "began" if start <= now else "begins"
    text = f"window {begins} {abs(start - now):.0f}s {'ago' if start <= now else 'from now'}"
    return text + (f", ends in {max(0.0, end - now):.0f}s" if end is not None else ", no end (drained for good)")


def window_of(unavailability: Mapping[str, Any] | None) -> tuple[float, float | None] | None:
    """(start, end) seconds of a v1 Unavailability (start TimeInfo, optional duration DurationInfo,
    both in nanoseconds, as numbers or strings); None when there is none or it cannot be read."""
    if not isinstance(unavailability, Mapping):
        return None
    try:
        start = int((unavailability.get("start") or {})["nanoseconds"]) / 1e9
        duration = unavailability.get("duration")
        if not isinstance(duration, Mapping) or "nanoseconds" not in duration:
            return start, None
        return start, start + int(duration["nanoseconds"]) / 1e9
    except (KeyError, TypeError, ValueError):
        return None


def holds(state: State) -> dict[str, Hold]:
    """pod → its maintenance hold (unreadable properties are ignored)."""
    out: dict[str, Hold] = {}
    for key, value in state.properties.items():
        if key.startswith(PREFIX):
            hold = Hold.from_json(key[len(PREFIX):], value)
            if hold is not None:
                out[hold.pod] = hold
    return out


def hold_of(state: State, pod: str) -> Hold | None:
    value = state.properties.get(PREFIX + pod)
    return Hold.from_json(pod, value) if value is not None else None


def waits_in_place(state: State, pod: str, now: float) -> str | None:
    """Why `pod` must not be launched now: a stop-in-place hold that is due, while its reservation
    is on the held host (a pod the operator replaced meanwhile is placed anew at once)."""
    hold = hold_of(state, pod)
    rec = state.tasks.get(pod)
    if hold is None or hold.move or not hold.due(now) or rec is None or rec.reservation is None \
            or rec.reservation.hostname != hold.hostname:
        return None
    return f"stopped for the maintenance of {hold.hostname}: relaunched in place once it ends"
