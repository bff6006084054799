"""Operator commands: the wire `events.Command` (kind + args) parsed into a typed command and
handled, through one table. A refusal is a `Refusal`, never a transport's status code.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

from scheduler.core import ca_rotation
from scheduler.core import command_types as ct
from scheduler.core import events as ev
from scheduler.core import plan_commands, pod_commands, rebalance_commands, spec_commands
from scheduler.core.events import CommandKind
from scheduler.core.records import Result
from scheduler.core.refusals import Refusal, refuse
from scheduler.core.state import State

Parse = Callable[[Mapping[str, Any]], Any]
Handle = Callable[[State, Any, ev.Command], Result]

HANDLERS: dict[CommandKind, tuple[Parse, Handle]] = {
    CommandKind.RESTART_POD: (ct.restart_pod, pod_commands.restart_or_replace),
    CommandKind.REPLACE_POD: (ct.replace_pod, pod_commands.restart_or_replace),
    CommandKind.PLAN_INTERRUPT: (ct.plan_interrupt, plan_commands.interrupt_or_continue),
    CommandKind.PLAN_CONTINUE: (ct.plan_continue, plan_commands.interrupt_or_continue),
    CommandKind.PLAN_FORCE_COMPLETE: (ct.plan_force_complete, plan_commands.force_complete),
    CommandKind.PLAN_RESTART: (ct.plan_restart, plan_commands.restart_step),
    CommandKind.SCALE_BROKERS: (ct.scale_brokers, rebalance_commands.scale_brokers),
    CommandKind.SCALE_APP: (ct.scale_app, spec_commands.scale_app),
    CommandKind.UPDATE_CONFIG: (ct.update_config, rebalance_commands.update_config),
    CommandKind.UNINSTALL: (ct.uninstall, spec_commands.uninstall),
    CommandKind.REBALANCE: (ct.rebalance, rebalance_commands.rebalance),
    CommandKind.DECOMMISSION_POD: (ct.decommission_pod, rebalance_commands.decommission),
    CommandKind.ROTATE_CA: (ct.rotate_ca, ca_rotation.rotate_command),
}


def _entry(kind: Any) -> tuple[Parse, Handle] | None:
    """The table's entry for a wire kind (anything a client sent), or None when it is none."""
    try:
        return HANDLERS[CommandKind(kind)]
    except ValueError:
        return None


def parse(cmd: ev.Command) -> ct.TypedCommand | None:
    """The typed command `cmd` carries, or None when its kind is not a command."""
    entry = _entry(cmd.kind)
    return entry[0](cmd.args) if entry is not None else None


def on_command(state: State, cmd: ev.Command) -> Result:
    """Parse and handle one command; every command is answered by exactly one `Reply`."""
    entry = _entry(cmd.kind)
    if entry is None:
        return state, (refuse(cmd, Refusal.INVALID, f"unknown command {cmd.kind!r}"),)
    parse_args, handle = entry
    return handle(state, parse_args(cmd.args), cmd)
