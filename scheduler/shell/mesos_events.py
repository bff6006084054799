"""What the Mesos driver reports, as frozen values: the shell's side of the callback boundary.

The pymesos adapter (`scheduler.shell.mesos`) turns each callback into one of these and enqueues
it; the loop translates them into the decision core's events. Payloads stay Mesos v1 JSON dicts
(as pymesos delivers them), plus the time the callback ran (`time.time()` seconds).
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import attrs


@attrs.frozen
class Subscribed:
    """SUBSCRIBED: first registration (`reregistered` False) or again after a reconnect."""

    framework_id: str
    master: str
    reregistered: bool
    at: float


@attrs.frozen
class Disconnected:
    """The event stream ended; calls are dropped by pymesos until the next Subscribed."""

    at: float


@attrs.frozen
class OffersReceived:
    offers: Sequence[Mapping[str, Any]]
    at: float


@attrs.frozen
class OfferRescinded:
    offer_id: str
    at: float


@attrs.frozen
class StatusUpdate:
    """A TaskStatus; acknowledge it (if it has a uuid) only after it has been persisted."""

    status: Mapping[str, Any]
    at: float


@attrs.frozen
class AgentLost:
    agent_id: str
    at: float


@attrs.frozen
class ExecutorLost:
    executor_id: str
    agent_id: str
    status: int | None
    at: float


@attrs.frozen
class FrameworkMessage:
    executor_id: str
    agent_id: str
    data: str  # base64, as received
    at: float


@attrs.frozen
class DriverStopped:
    """The driver is gone for good (ERROR from the master, failover, removal, refusal, abort).

    `forget_framework_id` is set when the master removed the framework; `reason` is shown to
    the operator and becomes the process's exit message.
    """

    reason: str
    forget_framework_id: bool
    at: float


@attrs.frozen
class InverseOffersReceived:
    """INVERSE_OFFERS: Mesos maintenance windows of agents the framework uses."""

    offers: Sequence[Mapping[str, Any]]
    at: float


@attrs.frozen
class InverseOfferRescinded:
    inverse_offer_id: str
    at: float


MesosEvent = (Subscribed | Disconnected | OffersReceived | OfferRescinded | StatusUpdate
              | AgentLost | ExecutorLost | FrameworkMessage | DriverStopped
              | InverseOffersReceived | InverseOfferRescinded)
