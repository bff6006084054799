"""The consumer-group lag probe: a child process of the leading scheduler (see lag_watch).

Why a separate process: librdkafka (2.x, up to its current source) handles a failed OffsetFetch,
which the AdminClient's list_consumer_group_offsets sends, by signalling the client's consumer
group, and an AdminClient has none: on NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE or a broker
leaving the cluster (exactly what an agent loss causes) it dereferences a null pointer and the
process dies of SIGSEGV (seen as `rdk:main ... segfault` in the kernel log, in
rd_kafka_cgrp_op). In here such a crash costs one lag sample; in the scheduler it cost the
framework.

Protocol: one line on stdin asks for a sample (empty, or JSON {"describe": [groups]}: the groups
whose members' assignments to report, a stream app's); one JSON line on stdout answers it, with the
raw committed and end offsets, each group's state, the described groups' partition owners (client
ids) (the arithmetic is lag_watch.compute_lag's) or {"error": ...}. The probe exits when its stdin
closes, so it never outlives the scheduler.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any


def owners(admin: Any, groups: list[str], timeout: float) -> dict[str, list[list[Any]]]:
    """Per group of `groups` that Kafka describes: [topic, partition, the owning member's client id]."""
    out: dict[str, list[list[Any]]] = {}
    if not groups:
        return out
    for name, fut in admin.describe_consumer_groups(groups, request_timeout=timeout).items():
        try:
            described = fut.result(timeout=timeout + 1)
        except Exception:  # noqa: BLE001 - e.g. the coordinator moving: no owners this round
            continue
        out[name] = [[tp.topic, tp.partition, m.client_id] for m in described.members or []
                     for tp in (m.assignment.topic_partitions if m.assignment else [])]
    return out


def sample(admin: Any, timeout: float, max_groups: int, max_partitions: int,
           describe: list[str] | None = None) -> dict[str, Any]:
    """Committed offsets of (at most `max_groups`) groups and their partitions' end offsets; the
    partition owners of the `describe` groups that are among them."""
    from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
    from confluent_kafka.admin import OffsetSpec
    asked = time.time()
    listed = admin.list_consumer_groups(request_timeout=timeout).result(timeout=timeout + 1)
    names = sorted(g.group_id for g in listed.valid if g.group_id)
    # each group's state as the coordinator lists it (STABLE, PREPARING_REBALANCING, EMPTY, ...):
    # an app's rolling update waits for a stable group (scheduler.core.app_roll)
    states = {g.group_id: (g.state.name if g.state is not None else None) for g in listed.valid if g.group_id}
    skipped_groups = max(0, len(names) - max_groups)
    committed: dict[str, list[list[Any]]] = {}
    budget, skipped_partitions = max_partitions, 0
    for name in names[:max_groups]:
        futures = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(name)], request_timeout=timeout)
        try:
            res = futures[name].result(timeout=timeout + 1)
        except Exception:  # noqa: BLE001 - one group's failure is not the round's: it is left out
            continue
        parts: list[list[Any]] = []
        for tp in res.topic_partitions or []:
            if tp.error is not None:
                continue
            if budget <= 0:
                skipped_partitions += 1
                continue
            budget -= 1
            parts.append([tp.topic, tp.partition, tp.offset if tp.offset >= 0 else None])
        committed[name] = parts
    wanted = {(t, p) for parts in committed.values() for t, p, _ in parts}
    ends: list[list[Any]] = []
    if wanted:
        futures = admin.list_offsets({TopicPartition(t, p): OffsetSpec.latest() for t, p in wanted},
                                     request_timeout=timeout)
        for tp, fut in futures.items():
            try:
                ends.append([tp.topic, tp.partition, fut.result(timeout=timeout + 1).offset])
            except Exception:  # noqa: BLE001 - e.g. a deleted topic: its partitions stay unknown
                continue
    return {"sampled_at": asked, "committed": committed, "ends": ends,
            "states": {n: states.get(n) for n in names[:max_groups]},
            "owners": owners(admin, sorted(set(describe or ()) & set(committed)), timeout),
            "skipped_groups": skipped_groups, "skipped_partitions": skipped_partitions}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m scheduler.shell.lag_probe")
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--timeout", type=float, default=5.0)
    ap.add_argument("--max-groups", type=int, default=200)
    ap.add_argument("--max-partitions", type=int, default=5000)
    args = ap.parse_args(argv)
    from confluent_kafka.admin import AdminClient
    admin = AdminClient({"bootstrap.servers": args.bootstrap, "log_level": 0})
    for line in sys.stdin:
        try:
            ask = json.loads(line) if line.strip() else {}
            out = sample(admin, args.timeout, args.max_groups, args.max_partitions, list(ask.get("describe") or ()))
        except Exception as exc:  # noqa: BLE001 - brokers down: the parent asks again later
            out = {"error": f"{type(exc).__name__}: {exc}"}
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
