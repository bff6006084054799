"""How the core answers an operator's command: a `Reply` that accepts it, or one that refuses it
with a `Refusal` saying what kind of no it is.

The core knows no transport: the API turns a `Refusal` into an HTTP code with its own table
(`scheduler.api.server.REFUSAL_HTTP`). A refusal goes into the reply's result under ``"status"``,
where replies have always carried it, and its numbers are the codes replies carried before the
enum existed, so a stored or compared reply is the same value as before; only the API's table
decides what a client receives.
"""
from __future__ import annotations

import enum
from typing import Any

from scheduler.core import actions as act
from scheduler.core import events as ev


class Refusal(enum.IntEnum):
    """Why a command was not carried out."""

    INVALID = 400  # the command itself is malformed: a bad count, no spec, an unknown kind
    NOT_FOUND = 404  # it names a pod, app, plan, phase or step that does not exist
    CONFLICT = 409  # well-formed, but not now or not without confirm/force (the message says)
    INTERNAL = 500  # the shell could not get an answer from the core
    UNAVAILABLE = 503  # the shell has no decision loop to ask (not the leader, stopping, timed out)


def accept(cmd: ev.Command, message: str, **extra: Any) -> act.Reply:
    """The command was carried out; `extra` are more fields of the answer."""
    return act.Reply(cmd.command_id, True, {"message": message, **extra})


def refuse(cmd: ev.Command, refusal: Refusal, message: str, **extra: Any) -> act.Reply:
    """The command was refused and nothing changed; `extra` are more fields of the answer."""
    return act.Reply(cmd.command_id, False, {"message": message, "status": refusal, **extra})
