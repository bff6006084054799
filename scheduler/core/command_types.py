"""Typed operator commands, parsed from the wire shape the shell builds (`events.Command`:
a kind and a dict of arguments).

Parsing only gives the arguments their place and reads the flags (a flag is set only by a JSON
``true``); it refuses nothing. Each handler checks its command in its own order, so that the
first problem an operator is told about stays the one it always was (e.g. an unknown app before a
bad count).
"""
from __future__ import annotations

from typing import Any, Mapping

import attrs


@attrs.frozen
class RestartPod:
    pod: Any  # a pod name, or whatever the client sent (refused as not found)
    force: bool = False


@attrs.frozen
class ReplacePod:
    pod: Any
    force: bool = False
    confirm: bool = False  # replacing a broker destroys its volume


@attrs.frozen
class PlanInterrupt:
    plan: Any
    phase: Any = None
    step: Any = None


@attrs.frozen
class PlanContinue:
    plan: Any
    phase: Any = None
    step: Any = None


@attrs.frozen
class PlanForceComplete:
    plan: Any
    step: Any = None


@attrs.frozen
class PlanRestart:
    plan: Any
    step: Any = None


@attrs.frozen
class ScaleBrokers:
    count: Any
    confirm: bool = False
    drain: bool = False  # a scale-in that first moves every replica off the brokers it removes


@attrs.frozen
class DecommissionPod:
    pod: Any


@attrs.frozen
class Rebalance:
    dry_run: bool = False  # only show the moves


@attrs.frozen
class ScaleApp:
    app: Any
    count: Any
    auto: Any = False  # resume the app's autoscaling (then no count)


@attrs.frozen
class UpdateConfig:
    spec: Any  # a config.ServiceSpec the shell parsed, or anything else (refused)
    confirm: bool = False
    launch_id: Any = None  # set when the request is a changed launch file
    # the operator confirms that declared topics/users removed from the spec are deleted from Kafka
    confirm_delete: bool = False


@attrs.frozen
class Uninstall:
    pass


@attrs.frozen
class RotateCa:
    """`kmf tls rotate-ca`: no arguments."""


TypedCommand = (RestartPod | ReplacePod | PlanInterrupt | PlanContinue | PlanForceComplete | PlanRestart
                | ScaleBrokers | ScaleApp | UpdateConfig | Uninstall | Rebalance | RotateCa
                | DecommissionPod)


def _flag(args: Mapping[str, Any], name: str) -> bool:
    return args.get(name) is True


def restart_pod(args: Mapping[str, Any]) -> RestartPod:
    return RestartPod(args.get("pod"), _flag(args, "force"))


def replace_pod(args: Mapping[str, Any]) -> ReplacePod:
    return ReplacePod(args.get("pod"), _flag(args, "force"), _flag(args, "confirm"))


def plan_interrupt(args: Mapping[str, Any]) -> PlanInterrupt:
    return PlanInterrupt(args.get("plan"), args.get("phase"), args.get("step"))


def plan_continue(args: Mapping[str, Any]) -> PlanContinue:
    return PlanContinue(args.get("plan"), args.get("phase"), args.get("step"))


def plan_force_complete(args: Mapping[str, Any]) -> PlanForceComplete:
    return PlanForceComplete(args.get("plan"), args.get("step"))


def plan_restart(args: Mapping[str, Any]) -> PlanRestart:
    return PlanRestart(args.get("plan"), args.get("step"))


def scale_brokers(args: Mapping[str, Any]) -> ScaleBrokers:
    return ScaleBrokers(args.get("count"), _flag(args, "confirm"), _flag(args, "drain"))


def decommission_pod(args: Mapping[str, Any]) -> DecommissionPod:
    return DecommissionPod(args.get("pod"))


def rebalance(args: Mapping[str, Any]) -> Rebalance:
    return Rebalance(_flag(args, "dry_run"))


def scale_app(args: Mapping[str, Any]) -> ScaleApp:
    return ScaleApp(args.get("app"), args.get("count"), args.get("auto", False))


def update_config(args: Mapping[str, Any]) -> UpdateConfig:
    return UpdateConfig(args.get("spec"), _flag(args, "confirm"), args.get("launch_id"), _flag(args, "confirm_delete"))


def uninstall(args: Mapping[str, Any]) -> Uninstall:
    return Uninstall()


def rotate_ca(args: Mapping[str, Any]) -> RotateCa:
    return RotateCa()
