"""Decision speed and memory of the pure core (targets: an offer round under 100 ms, memory under
200 MB with 10,000 task records; figures in docs/benchmarks.md).

* one offer round: 1,000 agents' offers against 1,000 pending tasks;
* single-offer decisions (p50/p99) with 1,000 tasks pending;
* status update in → relaunch decided (scheduler overhead, no backoff);
* memory of a State holding 10,000 task records.
"""
from __future__ import annotations

import statistics
import time
import tracemalloc
from typing import Any

import attrs

from config import load_text
from mesoslib.resources import parse_resources_flag
from scheduler.core import events as ev
from scheduler.core.decide import decide, initial_state
from scheduler.core.state import TaskRecord

SPEC = """\
name: bench
mesos: {master: 'zk://127.0.0.1:2181/mesos'}
zookeeper: {connect: '127.0.0.1:2181'}
kafka: {brokers: 1, cpus: 1, mem_mb: 1024, heap_mb: 256, disk_mb: 1000}
apps:
  - {name: app, count: %d, cpus: 0.1, mem_mb: 128, runtime: command, command: [sleep, '1']}
policies: {deploy_strategy: parallel}
"""


def _spec(count: int):
    return load_text(SPEC % count, "bench.yaml", env={})


def _offers(n: int, start: int = 0) -> tuple[dict, ...]:
    res = parse_resources_flag("cpus:8;mem:16384;disk:100000;ports:[31000-32000]").to_json("pre")
    return tuple({"id": {"value": f"O{start + i}"}, "agent_id": {"value": f"A{i}"}, "hostname": f"10.0.{i // 250}.{i % 250}",
                  "resources": res, "attributes": [{"name": "zone", "type": "TEXT", "text": {"value": f"z{i % 3}"}}]}
                 for i in range(n))


def _ready_broker_state(count: int):
    state = initial_state(_spec(count), "c", "fw", {}, {}, cluster_id="MkU3OEVBNTcwNTJENDM2Qk")
    state, _ = decide(state, ev.Subscribed("fw", 0.0))
    state, _ = decide(state, ev.Offers(_offers(1), 1.0))  # the broker gets its reservation and launch
    rec = state.tasks["broker-0"]
    state, _ = decide(state, ev.Status({"task_id": {"value": rec.task_id}, "state": "TASK_RUNNING",
                                        "source": "SOURCE_EXECUTOR",
                                        "labels": {"labels": [{"key": "kmf.ready", "value": "true"}]}}, 2.0))
    return state


def offer_round(agents: int = 1000, tasks: int = 1000, runs: int = 5) -> dict[str, Any]:
    base = _ready_broker_state(tasks)
    offers = _offers(agents, 10)
    times = []
    launched = 0
    for _ in range(runs):
        t0 = time.perf_counter()
        state, actions = decide(base, ev.Offers(offers, 3.0))
        times.append(time.perf_counter() - t0)
        launched = sum(1 for a in actions for op in getattr(a, "operations", ()) if op["type"] == "LAUNCH")
    return {"agents": agents, "pending": tasks, "launched": launched,
            "round_s_median": statistics.median(times), "round_s_min": min(times), "round_s_max": max(times),
            "per_offer_ms": statistics.median(times) / agents * 1000}


def single_offers(tasks: int = 1000, samples: int = 300) -> dict[str, Any]:
    state = _ready_broker_state(tasks)
    lat = []
    for i in range(samples):
        t0 = time.perf_counter()
        state, _ = decide(state, ev.Offers(_offers(1, 100 + i), 3.0 + i))
        lat.append(time.perf_counter() - t0)
    lat.sort()
    return {"pending_at_start": tasks, "samples": samples, "p50_ms": lat[len(lat) // 2] * 1000,
            "p99_ms": lat[int(len(lat) * 0.99) - 1] * 1000}


def relaunch_overhead(samples: int = 200) -> dict[str, Any]:
    state = _ready_broker_state(0)
    rec = state.tasks["broker-0"]
    lat = []
    for i in range(samples):
        rec = state.tasks["broker-0"]
        t0 = time.perf_counter()
        failed, _ = decide(state, ev.Status({"task_id": {"value": rec.task_id}, "state": "TASK_FAILED",
                                             "source": "SOURCE_EXECUTOR"}, 10.0 + i))
        # an offer of the broker's own agent arrives once the backoff is over
        failed = attrs.evolve(failed, tasks={**failed.tasks, "broker-0": attrs.evolve(
            failed.tasks["broker-0"], backoff_until=0.0)})
        offer = _offers(1, 5000 + i)[0]
        offer = {**offer, "resources": list(offer["resources"]) + list(rec.reservation.resources)}
        state, actions = decide(failed, ev.Offers((offer,), 10.0 + i))
        lat.append(time.perf_counter() - t0)
        assert any(op["type"] == "LAUNCH" for a in actions for op in getattr(a, "operations", ()))
    lat.sort()
    return {"samples": samples, "p50_ms": lat[len(lat) // 2] * 1000, "p99_ms": lat[int(len(lat) * 0.99) - 1] * 1000}


def memory(records: int = 10_000) -> dict[str, Any]:
    spec = _spec(records)
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    tasks = {f"app-{i}": TaskRecord(f"app-{i}", "stream", task_id=f"app-{i}__{i:032x}", agent_id=f"A{i % 1000}",
                                    hostname=f"10.0.{i // 250 % 250}.{i % 250}", state="TASK_RUNNING", ready=True,
                                    healthy=True, fingerprint=f"{i:016x}", launches=1, message="running")
             for i in range(records)}
    state = initial_state(spec, "c", "fw", tasks, {})
    after = tracemalloc.take_snapshot()
    size = sum(s.size_diff for s in after.compare_to(before, "filename"))
    tracemalloc.stop()
    return {"records": len(state.tasks), "state_mb": size / 1e6}
