"""Prometheus metrics of one scheduler, in a registry of its own.

Counters move with each decision (`observe`); gauges are read from the latest State when
Prometheus scrapes (`StateCollector`), so they are never stale. Every sample carries a `service`
label (the service's name: several kmf services can share one Prometheus), added on the way out
(`Metrics.registry` wraps the registry the metrics are made in), so no metric can miss it.
"""
from __future__ import annotations

import time
from typing import Any, Callable

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from scheduler.core import actions as act
from scheduler.core import cert_renewal
from scheduler.core.views import plans
from scheduler.core.state import State

PLAN_STATES = ("PENDING", "IN_PROGRESS", "WAITING", "ERROR", "COMPLETE")


class StateCollector:
    def __init__(self, state: Callable[[], State], role: Callable[[], str],
                 zk_connected: Callable[[], bool], ca_not_after: Callable[[], float | None] = lambda: None) -> None:
        self.state, self.role, self.zk_connected = state, role, zk_connected
        self.ca_not_after = ca_not_after  # the Kafka CA's expiry (epoch seconds), None: no TLS

    def collect(self):  # noqa: ANN201 - prometheus_client collector protocol
        s = self.state()
        leader = GaugeMetricFamily("kmf_leader", "1 when this instance is the leading scheduler")
        leader.add_metric([], 1.0 if self.role() == "leader" else 0.0)
        yield leader
        conn = GaugeMetricFamily("kmf_connected", "connections of the scheduler", labels=["to"])
        conn.add_metric(["mesos"], 1.0 if s.connected else 0.0)
        conn.add_metric(["zookeeper"], 1.0 if self.zk_connected() else 0.0)
        yield conn
        tasks = GaugeMetricFamily("kmf_task_state", "1 for each pod's current task state",
                                  labels=["pod", "kind", "state"])
        ready = GaugeMetricFamily("kmf_pod_ready", "1 when the pod's task is ready", labels=["pod", "kind"])
        healthy = GaugeMetricFamily("kmf_pod_healthy", "1 healthy, 0 unhealthy", labels=["pod", "kind"])
        attempts = GaugeMetricFamily("kmf_pod_failed_attempts", "failures since the last ready", labels=["pod"])
        for rec in s.tasks.values():
            tasks.add_metric([rec.pod, rec.kind, rec.state or ("LAUNCHED" if rec.task_id else "PENDING")], 1.0)
            ready.add_metric([rec.pod, rec.kind], 1.0 if rec.serving else 0.0)
            if rec.healthy is not None:
                healthy.add_metric([rec.pod, rec.kind], 1.0 if rec.healthy else 0.0)
            attempts.add_metric([rec.pod], float(rec.attempts))
        yield from (tasks, ready, healthy, attempts)
        plan = GaugeMetricFamily("kmf_plan_status", "1 for each plan's current status", labels=["plan", "status"])
        for name, view in plans(s, time.time()).items():
            for st in PLAN_STATES:
                plan.add_metric([name, st], 1.0 if view["status"] == st else 0.0)
        yield plan
        sup = GaugeMetricFamily("kmf_offers_suppressed", "1 while offers are suppressed")
        sup.add_metric([], 1.0 if s.suppressed else 0.0)
        yield sup
        now = time.time()
        expiry = GaugeMetricFamily("kmf_certificate_expiry_seconds",
                                   "seconds until a TLS certificate kmf issued expires (pod=ca: the CA's)",
                                   labels=["pod"])
        for rec in s.tasks.values():
            if (at := cert_renewal.expires_at(s, rec)) is not None:
                expiry.add_metric([rec.pod], at - now)
        if (ca := self.ca_not_after()) is not None:
            expiry.add_metric(["ca"], ca - now)
        yield expiry
        behind = GaugeMetricFamily("kmf_app_lag_seconds",
                                   "age of the oldest record a stream app's group has not consumed, on its worst "
                                   "partition, by the last lag sample (scheduler.core.time_lag)", labels=["app", "group"])
        for app in s.spec.apps:
            group = app.consumer_group(s.spec.name)
            info = s.app_groups.get(group)
            if info is not None and info.seconds is not None:
                behind.add_metric([app.name, group], info.seconds)
        yield behind


class LagCollector:
    """Consumer-group lag from the latest sample (None: no sample yet, e.g. on a standby). Per
    partition only while the sample has at most `max_partition_series` partitions."""

    def __init__(self, lag: Callable[[], dict | None], clock: Callable[[], float] = time.time,
                 max_partition_series: int = 500) -> None:
        self.lag, self.clock, self.max_partition_series = lag, clock, max_partition_series

    def collect(self):  # noqa: ANN201 - prometheus_client collector protocol
        sample = self.lag()
        total = GaugeMetricFamily("kmf_consumer_group_lag",
                                  "records not yet committed by the group (sum over its partitions with a "
                                  "committed offset)", labels=["group", "topic"])
        per = GaugeMetricFamily("kmf_consumer_group_lag_partition", "records not yet committed, per partition",
                                labels=["group", "topic", "partition"])
        unknown = GaugeMetricFamily("kmf_consumer_group_lag_unknown_partitions",
                                    "partitions the group has no committed offset (or end offset) for",
                                    labels=["group", "topic"])
        age = GaugeMetricFamily("kmf_consumer_group_lag_sampled_seconds",
                                "seconds since the latest lag sample was taken")
        groups = GaugeMetricFamily("kmf_consumer_group_lag_skipped", "left out of the latest round (caps)",
                                   labels=["what"])
        if sample is not None:
            parts = sum(len(t["partitions"]) for g in sample["groups"].values() for t in g["topics"].values())
            for gname, g in sample["groups"].items():
                for tname, t in g["topics"].items():
                    total.add_metric([gname, tname], float(t["lag"]))
                    unknown.add_metric([gname, tname], float(len(t["unknown"])))
                    if parts <= self.max_partition_series:
                        for pid, p in t["partitions"].items():
                            per.add_metric([gname, tname, str(pid)], float(p["lag"]))
            age.add_metric([], max(0.0, self.clock() - sample["sampled_at"]))
            groups.add_metric(["groups"], float(sample.get("skipped_groups", 0)))
            groups.add_metric(["partitions"], float(sample.get("skipped_partitions", 0)))
        yield from (total, per, unknown, age, groups)


class ServiceLabel:
    """Every sample of `inner` with a `service` label added."""

    def __init__(self, inner: CollectorRegistry, service: str) -> None:
        self.inner, self.service = inner, service

    def collect(self):  # noqa: ANN201 - prometheus_client collector protocol
        for metric in self.inner.collect():
            metric.samples = [s._replace(labels={"service": self.service, **s.labels}) for s in metric.samples]
            yield metric


class Metrics:
    def __init__(self, service: str = "") -> None:
        self.inner = CollectorRegistry()
        self.registry = CollectorRegistry()  # what /metrics serves: `inner` with the service label
        self.registry.register(ServiceLabel(self.inner, service))
        r = self.inner
        self.decisions = Histogram("kmf_decision_seconds", "time to decide and act on one event",
                                   ["event"], registry=r,
                                   buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5))
        self.offers = Counter("kmf_offers_total", "offers by outcome", ["outcome"], registry=r)
        self.launches = Counter("kmf_launches_total", "tasks launched", ["kind"], registry=r)
        self.operations = Counter("kmf_operations_total", "offer operations sent", ["type"], registry=r)
        self.kills = Counter("kmf_kills_total", "kill requests sent", registry=r)
        self.updates = Counter("kmf_status_updates_total", "status updates received", ["state"], registry=r)

    def attach(self, collector: Collector) -> None:
        self.inner.register(collector)

    def observe(self, seconds: float, event: Any, actions: tuple) -> None:
        self.decisions.labels(type(event).__name__).observe(seconds)
        status = getattr(event, "status", None)
        if status is not None and (isinstance(status, dict) or hasattr(status, "get")):
            self.updates.labels(status.get("state", "?")).inc()
        for a in actions:
            if isinstance(a, act.Accept):
                self.offers.labels("accepted").inc(len(a.offer_ids))
                for op in a.operations:
                    self.operations.labels(op["type"]).inc()
                    if op["type"] == "LAUNCH":
                        for t in op["launch"]["task_infos"]:
                            kind = next((l["value"] for l in t["labels"]["labels"] if l["key"] == "kmf.kind"), "?")
                            self.launches.labels(kind).inc()
            elif isinstance(a, act.Decline):
                self.offers.labels("declined").inc(len(a.offer_ids))
            elif isinstance(a, act.Kill):
                self.kills.inc()
