"""The one check every change of the broker count goes through.

`kmf scale brokers`, `kmf config update` with another `kafka.brokers` and a scheduler restarted
with such a launch file all reach `refusal()`, so there is one rule, not one per entry point:

* the KRaft controller quorum never changes with the count: kmf writes a static
  ``controller.quorum.voters`` when a service is installed, and a voter set rewritten in place
  (3 voters to 1 when going from 3 brokers to 2, or 1 to 3 when going up from 1) leaves the
  controllers' metadata logs disagreeing about who votes;
* a scale-in removes the highest-numbered brokers and deletes their volumes, so it needs the
  operator's confirmation, and is refused while Kafka says those brokers still hold partition
  replicas (or while Kafka's view is not known yet).
"""
from __future__ import annotations

from typing import Any, Sequence

import attrs

from scheduler.core import events as ev
from config.models import quorum_size
from scheduler.core.refusals import Refusal


@attrs.frozen
class CountRefusal:
    """Why the count may not change now; always a `Refusal.CONFLICT` (the request is well-formed)."""

    message: str
    confirm_required: bool = False
    refusal: Refusal = Refusal.CONFLICT

    def fields(self) -> dict[str, Any]:
        """Extra fields of the reply besides the message and the refusal."""
        return {"confirm_required": True} if self.confirm_required else {}


def refusal(mode: str, ids: Sequence[int], count: int, health: ev.KafkaHealth | None,
            confirm: bool, drain: bool = False) -> CountRefusal | None:
    """Why the broker count may not go from the brokers with node ids `ids` to `count` now; None
    when it may. A scale-in removes the last ids. With `drain` the replicas are moved off first, so
    neither data nor a confirmation is at stake."""
    current = len(ids)
    if count == current:
        return None
    if mode == "kraft" and quorum_size(count) != quorum_size(current):
        keep = "at least 3" if quorum_size(current) == 3 else "fewer than 3"
        return CountRefusal(f"kafka.brokers {current} → {count} would change the KRaft controller quorum "
                            f"from {quorum_size(current)} voter(s) to {quorum_size(count)}; the voters are fixed "
                            f"when the service is installed, so keep {keep} brokers")
    if count > current:
        return None
    leaving = list(ids[count:])
    doomed = [f"broker-{b}" for b in leaving]
    if drain:
        return None
    if not confirm:
        return CountRefusal(f"scaling in from {current} to {count} brokers kills {', '.join(doomed)} and "
                            "deletes their data; confirm to go ahead (kmf: --yes)", confirm_required=True)
    if health is None:
        return CountRefusal("Kafka's replica placement is not known yet; try again shortly")
    holding = {b: n for b in leaving if (n := health.replicas_by_broker.get(b, 0)) > 0}
    if holding:
        detail = ", ".join(f"broker-{b} holds {n} partition replicas" for b, n in sorted(holding.items()))
        return CountRefusal(f"{detail}; move them to the remaining brokers first: scale with --drain (kmf scale brokers {count} --drain)")
    return None
