"""Deploy time and data path on this machine, using the demo's own stages.

* deploy: scheduler start → 3 KRaft brokers ready, and → the stream apps ready (config/local.yaml);
* data path: Kafka's ProducerPerformance (acks=all) and then ConsumerPerformance (reading the same
  records back) against a broker launched by kmf and against the same Kafka version started by hand
  with the same heap and settings, alternating, several runs; the ratio kmf/by-hand of the median
  records/s of each.
"""
from __future__ import annotations

import io
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from executor.runtime import tools
from executor.runtime.kafka_dist import Mode, read_versions, runtime_for_mode
from kmf import demo

ROOT = Path(__file__).resolve().parent.parent
RECORDS, SIZE = 200_000, 100


def _perf(bootstrap: str, topic: str) -> tuple[float, float]:
    """Records/s writing RECORDS records to `topic`, then reading them back."""
    rt = runtime_for_mode(Mode.KRAFT, read_versions())
    argv = tools.producer_perf_argv(rt, bootstrap, topic, RECORDS, SIZE, -1, "all")
    out = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    produced = tools.parse_producer_perf(out.stdout + out.stderr).records_per_sec
    argv = tools.consumer_perf_argv(rt, bootstrap, topic, RECORDS, group=f"bench-{topic}")
    out = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    return produced, tools.parse_consumer_perf(out.stdout + out.stderr).records_per_sec


def _figures(prefix: str, rates: list[float]) -> dict[str, float]:
    return {f"{prefix}_median": statistics.median(rates), f"{prefix}_spread": max(rates) - min(rates)}


def run(runs: int = 3) -> dict[str, Any]:
    from kmf.standalone_kafka import HEAP_MB, start_kraft_broker
    from kmf.standalone_kafka import SINGLE_NODE_OVERRIDES as OVERRIDES
    from localmesos import procs
    work = Path(tempfile.mkdtemp(prefix="kmf-bench-"))
    narrator = demo.Narrator(io.StringIO())
    config = yaml.safe_load((ROOT / "config" / "local.yaml").read_text())
    # the settings the hand-started broker gets (kmf.standalone_kafka): its heap, and no
    # initial rebalance delay, which ConsumerPerformance would otherwise count (3 s of 4 here)
    config["kafka"]["heap_mb"] = HEAP_MB
    config["kafka"].setdefault("overrides", {}).update(OVERRIDES)
    path = work / "bench.yaml"
    path.write_text(yaml.safe_dump(config))
    hand = None
    try:
        state = demo.start_local_cluster(work / "cluster", 3, narrator)
        t0 = time.monotonic()
        sched = demo.start_scheduler(state, work / "cluster", path, narrator)
        brokers_ready = apps_ready = None
        while time.monotonic() - t0 < 600:
            _, plan = demo.http_json(sched.api_url + "/v1/plans/deploy")
            steps = {s["name"]: s["status"] for ph in plan.get("phases", []) for s in ph["steps"]}
            if brokers_ready is None and steps and all(v == "COMPLETE" for k, v in steps.items() if k.startswith("broker")):
                brokers_ready = time.monotonic() - t0
            if plan.get("status") == "COMPLETE":
                apps_ready = time.monotonic() - t0
                break
            time.sleep(0.2)
        kmf_boot = demo.bootstrap_servers(sched.api_url).split(",")[0]
        hand = start_kraft_broker(work / "hand", overrides={"num.partitions": "1"})
        kmf_runs, hand_runs = [], []
        for i in range(runs):
            # the same topic shape on both: one partition, one replica
            demo.http_json(sched.api_url + "/v1/topics", "POST",
                           {"name": f"perf-kmf-{i}", "partitions": 1, "replication": 1})
            kmf_runs.append(_perf(kmf_boot, f"perf-kmf-{i}"))
            hand_runs.append(_perf(hand.bootstrap, f"perf-hand-{i}"))
        out: dict[str, Any] = {"scheduler_start_to_3_brokers_ready_s": brokers_ready,
                               "to_stream_apps_ready_s": apps_ready, "records": RECORDS, "record_bytes": SIZE,
                               "runs": runs}
        for side, index in (("produce", 0), ("consume", 1)):
            kmf_rates, hand_rates = [r[index] for r in kmf_runs], [r[index] for r in hand_runs]
            out |= _figures(f"{side}_kmf_rps", kmf_rates) | _figures(f"{side}_hand_rps", hand_rates)
            out[f"{side}_ratio_kmf_over_hand"] = statistics.median(kmf_rates) / statistics.median(hand_rates)
        return out
    finally:
        if hand is not None:
            procs.stop_group(hand.pid, grace=10)
        demo.teardown(work / "cluster", narrator)
        shutil.rmtree(work, ignore_errors=True)
