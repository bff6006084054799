"""What an offer round did for each pod: the placement explanation the API serves."""
from __future__ import annotations

import enum
from typing import Any

import attrs


class Stage(enum.StrEnum):
    """Where in an offer round a pod got to."""

    WAIT = "wait"  # not to be placed now: a plan, a backoff or a quorum holds it back
    RESERVE = "reserve"  # a broker's reservation of resources and a volume on one agent
    PLACE = "place"  # finding an agent for a stream instance
    LAUNCH = "launch"  # the task started on its reservation (broker) or on the agent found


@attrs.frozen
class Outcome:
    """What one offer round did for one pod; `reason` says why not when `ok` is false."""

    pod: str
    stage: Stage
    ok: bool
    reason: str
    at: float  # the round's time
    details: tuple[str, ...] = ()  # one reason per agent offered, when none fitted

    def to_json(self) -> dict[str, Any]:
        return {"pod": self.pod, "stage": self.stage.value, "ok": self.ok, "reason": self.reason,
                "at": self.at, "agents": list(self.details)}
