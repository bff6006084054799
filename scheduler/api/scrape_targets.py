"""``GET /v1/endpoints/metrics``: where Prometheus scrapes the brokers, in its file-SD format (pure).

Each broker and controller JVM runs Prometheus' JMX exporter on the port its reservation holds for
it (``metrics`` in the task's DiscoveryInfo). The view is a Prometheus ``file_sd_configs`` document
(a list of target groups, one per pod, so each gets its own labels), which an operator writes to
a file that Prometheus watches, e.g. with ``kmf endpoints metrics --json > kmf-<service>.json`` on
a timer. A pod is listed while its task is out there (launched and not ended): a relaunch keeps
its reservation, so its address does not change, and a pod being relaunched is not listed until
it is. The labels are stable per pod: ``service`` tells several kmf services in one Prometheus
apart, as the scheduler's own metrics do.
"""
from __future__ import annotations

from typing import Any

from scheduler.core.pods import desired_pods
from scheduler.core.state import State
from scheduler.core.taskinfo import metrics_port

JOB_BROKER = "kafka-broker"
JOB_CONTROLLER = "kafka-controller"  # a controller-only node (``controllers: separate``)


def metrics_targets(state: State) -> list[dict[str, Any]]:
    """One file-SD target group per broker or controller pod whose task runs with an exporter."""
    groups: list[dict[str, Any]] = []
    for pod in desired_pods(state.spec):
        rec = state.tasks.get(pod.name)
        if pod.kind != "broker" or rec is None or not rec.active or rec.reservation is None:
            continue
        port = metrics_port(pod, rec.reservation)
        if port is None:  # reserved before kmf reserved a metrics port: no exporter runs
            continue
        groups.append({"targets": [f"{rec.reservation.hostname}:{port}"],
                       "labels": {"service": state.spec.name, "pod": pod.name,
                                  "job": JOB_BROKER if "broker" in pod.roles else JOB_CONTROLLER,
                                  "node_id": str(pod.node_id), "roles": ",".join(pod.roles)}})
    return groups
