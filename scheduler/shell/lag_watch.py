"""Consumer-group lag: committed offsets (AdminClient) against the partitions' high watermarks.

Only the leader samples (started next to the KafkaWatcher), every `interval` seconds, on its own
thread; the latest sample is kept here (not in the core State: lag decides nothing) and read by
/metrics and GET /v1/lag.

A partition the group has no committed offset for (Kafka answers OFFSET_INVALID) is *unknown*,
not counted from the earliest offset: where the group would start depends on its
auto.offset.reset, which the scheduler does not know. Unknown partitions are listed in the sample
and left out of the sums. Bounded work: at most MAX_GROUPS groups (by name) and MAX_PARTITIONS
committed partitions per round; what is left out is counted in `skipped_groups` /
`skipped_partitions`. Groups with no committed offset at all are reported with no topic.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, Mapping

from scheduler.core.pods import desired_pods
from scheduler.core.state import State
from scheduler.core.taskinfo import bootstrap_servers

log = logging.getLogger(__name__)

MAX_GROUPS = 200
MAX_PARTITIONS = 5000
TP = tuple[str, int]


def compute_lag(committed: Mapping[str, Mapping[TP, int | None]], ends: Mapping[TP, int],
                sampled_at: float, round_s: float = 0.0, skipped_groups: int = 0,
                skipped_partitions: int = 0) -> dict[str, Any]:
    """Pure: per group, per topic, lag = high watermark - committed offset (never below 0), summed
    over the partitions with both known; partitions with no committed offset or no known high
    watermark are `unknown` and not summed."""
    groups: dict[str, Any] = {}
    for group in sorted(committed):
        topics: dict[str, Any] = {}
        total = 0
        for (topic, part), off in sorted(committed[group].items()):
            t = topics.setdefault(topic, {"lag": 0, "partitions": {}, "unknown": []})
            end = ends.get((topic, part))
            if off is None or off < 0 or end is None or end < 0:
                t["unknown"].append(part)
                continue
            lag = max(0, end - off)
            t["partitions"][part] = {"committed": off, "end": end, "lag": lag}
            t["lag"] += lag
            total += lag
        groups[group] = {"lag": total, "topics": topics}
    return {"sampled_at": sampled_at, "round_s": round_s, "groups": groups,
            "skipped_groups": skipped_groups, "skipped_partitions": skipped_partitions}


def _result(future: Any, timeout: float) -> Any:
    return future.result(timeout=timeout)


class LagWatcher:
    def __init__(self, state: Callable[[], State], interval: float = 10.0, timeout: float = 5.0,
                 max_groups: int = MAX_GROUPS, max_partitions: int = MAX_PARTITIONS) -> None:
        self.state = state
        self.interval = interval
        self.timeout = timeout
        self.max_groups, self.max_partitions = max_groups, max_partitions
        self.latest: dict[str, Any] | None = None  # replaced whole: readers need no lock
        self.stopped = threading.Event()
        self._admin: tuple[str, Any] | None = None
        self.thread = threading.Thread(target=self._run, name="kmf-lag-watch", daemon=True)

    def start(self) -> "LagWatcher":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopped.set()

    def _run(self) -> None:
        while not self.stopped.wait(self.interval):
            try:
                self.poll()
            except Exception as exc:  # noqa: BLE001 - brokers down: try again next time
                log.debug("consumer-group lag: %s", exc)

    def poll(self) -> dict[str, Any] | None:
        s = self.state()
        boot = bootstrap_servers(s.tasks, desired_pods(s.spec))
        if not boot or not any(r.serving for r in s.tasks.values() if r.kind == "broker"):
            return None
        if self._admin is None or self._admin[0] != boot:
            from confluent_kafka.admin import AdminClient
            self._admin = (boot, AdminClient({"bootstrap.servers": boot, "log_level": 0}))
        admin = self._admin[1]
        started = time.time()
        sample = self.sample(admin)
        sample["round_s"] = round(time.time() - started, 3)
        self.latest = sample
        return sample

    def sample(self, admin: Any) -> dict[str, Any]:
        from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
        from confluent_kafka.admin import OffsetSpec
        asked = time.time()
        listed = _result(admin.list_consumer_groups(request_timeout=self.timeout), self.timeout + 1)
        names = sorted(g.group_id for g in listed.valid if g.group_id)
        skipped_groups = max(0, len(names) - self.max_groups)
        names = names[:self.max_groups]
        committed: dict[str, dict[TP, int | None]] = {}
        budget = self.max_partitions
        skipped_partitions = 0
        for name in names:
            futures = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(name)],
                                                        request_timeout=self.timeout)
            try:
                res = _result(futures[name], self.timeout + 1)
            except Exception as exc:  # noqa: BLE001 - one group's failure is not the round's
                log.debug("offsets of group %s: %s", name, exc)
                continue
            parts: dict[TP, int | None] = {}
            for tp in res.topic_partitions or []:
                if tp.error is not None:
                    continue
                if budget <= 0:
                    skipped_partitions += 1
                    continue
                budget -= 1
                parts[(tp.topic, tp.partition)] = tp.offset if tp.offset >= 0 else None
            committed[name] = parts
        wanted = {tp for parts in committed.values() for tp in parts}
        ends: dict[TP, int] = {}
        if wanted:
            futures = admin.list_offsets({TopicPartition(t, p): OffsetSpec.latest() for t, p in wanted},
                                         request_timeout=self.timeout)
            for tp, fut in futures.items():
                try:
                    ends[(tp.topic, tp.partition)] = _result(fut, self.timeout + 1).offset
                except Exception as exc:  # noqa: BLE001 - e.g. a deleted topic: its partitions are unknown
                    log.debug("end offset of %s-%s: %s", tp.topic, tp.partition, exc)
        return compute_lag(committed, ends, asked, skipped_groups=skipped_groups,
                           skipped_partitions=skipped_partitions)
