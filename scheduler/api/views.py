"""JSON views of a scheduler State for the HTTP API and the web page (pure)."""
from __future__ import annotations

from typing import Any

from config import spec_to_json
from scheduler.core.views import plans
from scheduler.core.launch_config import LAUNCH_ID, LAUNCH_REFUSED
from scheduler.core.maintenance_holds import hold_of
from scheduler.core.pods import desired_pods
from scheduler.core.state import State


def pod_names(state: State) -> list[str]:
    names = [p.name for p in desired_pods(state.spec)]
    return names + sorted(set(state.tasks) - set(names))


def pod_info(state: State, name: str, now: float | None = None) -> dict[str, Any] | None:
    pods = {p.name: p for p in desired_pods(state.spec)}
    rec = state.tasks.get(name)
    pod = pods.get(name)
    if rec is None and pod is None:
        return None
    known = pod if pod is not None else rec
    assert known is not None  # one of the two, checked above
    info: dict[str, Any] = {"name": name, "kind": known.kind,
                            "desired": pod is not None}
    if pod is not None and pod.kind == "broker":
        info["node_id"] = pod.node_id
        info["roles"] = list(pod.roles)
    if rec is None:
        info.update(state="PENDING", task=None)
    else:
        info.update({
            "task_id": rec.task_id, "state": rec.state or ("LAUNCHED" if rec.task_id else "PENDING"),
            "agent_id": rec.agent_id, "hostname": rec.hostname, "ready": rec.serving,
            "healthy": rec.healthy, "app_state": rec.app_state, "message": rec.message, "goal": rec.goal,
            "attempts": rec.attempts, "launches": rec.launches, "config_fingerprint": rec.fingerprint,
            "ports": list(rec.ports),
            "reservation": None if rec.reservation is None else {
                "agent_id": rec.reservation.agent_id, "hostname": rec.reservation.hostname,
                "persistence_id": rec.reservation.persistence_id,
                "broker_port": rec.reservation.broker_port,
                "controller_port": rec.reservation.controller_port},
        })
    why = state.last_placement.get(name)
    if why:
        info["not_placed_because"] = why
    hold = hold_of(state, name)
    if hold is not None:  # Mesos maintenance of its agent (None: no window concerns it)
        info["maintenance"] = {**hold.view(now if now is not None else hold.since),
                               "waiting": state.maintenance_waits.get(name)}
    return info


def broker_endpoint(state: State) -> dict[str, Any]:
    addresses, ids = [], []
    for pod in desired_pods(state.spec):
        rec = state.tasks.get(pod.name)
        if pod.kind == "broker" and "broker" in pod.roles and rec and rec.reservation \
                and rec.reservation.broker_port:
            addresses.append(f"{rec.reservation.hostname}:{rec.reservation.broker_port}")
            ids.append(pod.node_id)
    return {"address": addresses, "bootstrap_servers": ",".join(addresses), "broker_ids": ids,
            "dns": [f"broker-{i}.{state.spec.name}" for i in ids], "security_protocol": "PLAINTEXT"}


def health(state: State, role: str, zk_connected: bool, now: float,
           master: str | None = None, uninstalled: dict[str, Any] | None = None) -> dict[str, Any]:
    deploy = plans(state, now)["deploy"]
    launch = {"id": state.properties.get(LAUNCH_ID), "refused": state.properties.get(LAUNCH_REFUSED)}
    return {"service": state.spec.name, "role": role, "framework_id": state.framework_id,
            "mesos_connected": state.connected, "zookeeper_connected": zk_connected,
            # the Mesos UI is served by the leading master at its own address
            "mesos_master": master, "mesos_ui": f"http://{master}/" if master else None,
            "deploy_plan": "UNINSTALLED" if uninstalled else deploy["status"], "config_id": state.config_id,
            "launch_config": launch, "uninstalling": state.uninstalling and not uninstalled,
            "uninstalled": uninstalled,
            # an uninstalled service's scheduler is healthy: it does what it should (nothing)
            "healthy": zk_connected and (role in ("standby", "uninstalled") or state.connected)}


def config_target(state: State) -> dict[str, Any]:
    return {"id": state.config_id, "config": spec_to_json(state.spec)}
