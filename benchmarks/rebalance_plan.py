"""How long the replica planner takes on large clusters: the decision a `kmf rebalance` or a
scale-out makes on the decision thread (pure; random RF-3 layouts with three racks)."""
from __future__ import annotations

import random
import time
from typing import Any

from scheduler.core.replica_planner import propose


def plan_speed(partitions: int = 30_000, brokers: int = 100, new: int = 10, seed: int = 1) -> dict[str, Any]:
    rng = random.Random(seed)
    layout = {(f"t{p % 50}", p): tuple(rng.sample(range(brokers), 3)) for p in range(partitions)}
    racks = {b: f"r{b % 3}" for b in range(brokers + new)}
    started = time.perf_counter()
    proposal = propose(layout, range(brokers + new), racks)
    took = time.perf_counter() - started
    counts = proposal.counts(layout)
    return {"partitions": partitions, "brokers": brokers, "new_brokers": new, "plan_s": took,
            "partitions_moved": len(proposal.moves), "replicas_copied": proposal.replicas_moved,
            "replicas_per_broker_min": min(counts.values()), "replicas_per_broker_max": max(counts.values())}
