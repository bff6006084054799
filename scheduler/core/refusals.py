"""How the core answers an operator's command: a `Reply` that accepts it, or one that refuses it
with a `Refusal` saying what kind of no it is.

The core knows no transport: a refusal goes into the reply's result under ``"refusal"`` and the
API alone turns it into an HTTP code with its own table (`scheduler.api.server.REFUSAL_HTTP`).
"""
from __future__ import annotations

import enum
from typing import Any

from scheduler.core import actions as act
from scheduler.core import events as ev


class Refusal(enum.StrEnum):
    """Why a command was not carried out."""

    INVALID = "invalid"  # the command itself is malformed: a bad count, no spec, an unknown kind
    NOT_FOUND = "not_found"  # it names a pod, app, plan, phase or step that does not exist
    CONFLICT = "conflict"  # well-formed, but not now or not without confirm/force (the message says)
    INTERNAL = "internal"  # the shell could not get an answer from the core
    UNAVAILABLE = "unavailable"  # the shell has no decision loop to ask (not the leader, stopping, timed out)


def accept(cmd: ev.Command, message: str, **extra: Any) -> act.Reply:
    """The command was carried out; `extra` are more fields of the answer."""
    return act.Reply(cmd.command_id, True, {"message": message, **extra})


def refuse(cmd: ev.Command, refusal: Refusal, message: str, **extra: Any) -> act.Reply:
    """The command was refused and nothing changed; `extra` are more fields of the answer."""
    return act.Reply(cmd.command_id, False, {"message": message, "refusal": refusal, **extra})
