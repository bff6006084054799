"""A Kafka Streams instance restarted with about 1 GB of state: on a state volume vs without one.

Kafka's WordCountDemo counts words into a RocksDB store. The input is `STATE_MB` of distinct
1,000-character words (one per record), so the store, and its changelog topic, hold about that
much. The app runs under kmf on a local cluster, first with `state_volume_mb` (its state.dir on a
persistent volume), then, after a config update that swaps it for the same app without a volume,
again. Each is restarted with `kmf pod restart` once it has counted everything, and timed:

* ready_s: the restart asked → the instance ready again (Kafka Streams says RUNNING);
* serving_s: the restart asked → a word produced just after it is counted in the output topic,
  i.e. its store is restored and it processes again (with Kafka's state updater a Kafka Streams
  client may say RUNNING while a store is still being restored, so this is the figure that counts).

With the volume, the instance finds its stores and checkpoints and restores almost nothing;
without, it restores the whole changelog. The ratio is without / with.
"""
from __future__ import annotations

import io
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Callable

import yaml

from kmf import demo

STATE_MB = int(os.environ.get("KMF_BENCH_STATE_MB", "1024"))
WORD = 1000  # characters per word: one record of the input, one key of the store
INPUT, OUTPUT = "streams-plaintext-input", "streams-wordcount-output"
SERVICE = "bench-state"


def _config(app: str, volume_mb: int) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": SERVICE,
        "mesos": {"master": "${KMF_MASTER}", "role": "kafka-role", "principal": "kmf"},
        "zookeeper": {"connect": "${KMF_ZK}"},
        "kafka": {"brokers": 1, "cpus": 1, "mem_mb": 2048, "heap_mb": 1024, "disk_mb": 12000},
        "policies": {"lag_sample_interval_s": 2},
        "apps": [{"name": app, "count": 1, "cpus": 1, "mem_mb": 1024, "runtime": "java",
                  "command": ["org.apache.kafka.streams.examples.wordcount.WordCountDemo", "{properties}"],
                  "stuck_limit_s": 1800, **({"state_volume_mb": volume_mb} if volume_mb else {})}],
        "topics": [{"name": INPUT, "partitions": 1}, {"name": OUTPUT, "partitions": 1}],
    }
    return spec


def _wait(what: str, check: Callable[[], Any], timeout: float, interval: float = 1.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(interval)
    raise TimeoutError(f"{what}: not within {timeout:g}s")


def _produce(bootstrap: str, records: int) -> None:
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 50, "batch.size": 1 << 20,
                  "compression.type": "none", "acks": "all"})
    for i in range(records):
        # hex of random bytes: [0-9a-f] only, so WordCountDemo's split on \W+ keeps it one word
        word = os.urandom(WORD // 2).hex()
        while True:
            try:
                p.produce(INPUT, word.encode())
                break
            except BufferError:
                p.poll(0.1)
        if i % 10_000 == 0:
            p.poll(0)
    if p.flush(120) != 0:
        raise RuntimeError("records not acknowledged")


def _lag(api: str, app: str) -> int | None:
    _, doc = demo.http_json(api + "/v1/lag")
    if not isinstance(doc, dict):
        return None
    return ((doc.get("apps") or {}).get(app) or {}).get("lag")


def _pod(api: str, pod: str) -> dict[str, Any]:
    _, doc = demo.http_json(api + f"/v1/pod/{pod}/info")
    return doc if isinstance(doc, dict) else {}


def _output_end(bootstrap: str) -> int:
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-{uuid.uuid4().hex[:6]}"})
    try:
        return c.get_watermark_offsets(TopicPartition(OUTPUT, 0), timeout=10)[1]
    finally:
        c.close()


def _counted(bootstrap: str, start: int, word: str, timeout: float) -> float:
    """When `word` shows up as a key of the output topic, read from offset `start` (monotonic)."""
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-{uuid.uuid4().hex[:6]}",
                  "enable.auto.commit": False})
    c.assign([TopicPartition(OUTPUT, 0, start)])
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            for m in c.consume(500, 0.5):
                if not m.error() and m.key() == word.encode():
                    return time.monotonic()
        raise TimeoutError(f"{word} not counted within {timeout:g}s")
    finally:
        c.close()


def _state_mb(root: Path, group: str) -> float:
    """Size of Kafka Streams' state of `group` under the cluster's work dir: on a volume, or in a
    sandbox (a volume is also linked from its sandbox: each file is counted once)."""
    files = {os.path.realpath(f) for d in root.rglob(group) if d.is_dir() for f in d.rglob("*") if f.is_file()}
    return sum(os.path.getsize(f) for f in files) / 2**20


def _measure(api: str, bootstrap: str, pod: str) -> dict[str, float]:
    end = _output_end(bootstrap)
    before = _pod(api, pod).get("task_id")
    t0 = time.monotonic()
    code, doc = demo.http_json(api + f"/v1/pod/{pod}/restart", "POST", {})
    if code != 200:
        raise RuntimeError(f"restart of {pod}: {code} {doc}")
    probe = f"probe{uuid.uuid4().hex}"
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": bootstrap})
    p.produce(INPUT, probe.encode())
    p.flush(30)
    ready = _wait(f"{pod} ready again", lambda: (lambda d: time.monotonic() if d.get("task_id") != before
                                                  and d.get("ready") else None)(_pod(api, pod)),
                  timeout=1800, interval=0.25)
    served = _counted(bootstrap, end, probe, timeout=1800)
    return {"ready_s": ready - t0, "serving_s": served - t0}


def run() -> dict[str, Any]:
    from confluent_kafka.admin import AdminClient
    work = Path(tempfile.mkdtemp(prefix="kmf-bench-state-"))
    narrator = demo.Narrator(io.StringIO())
    records = STATE_MB * 2**20 // WORD
    out: dict[str, Any] = {"state_mb_asked": STATE_MB, "records": records}
    try:
        state = demo.start_local_cluster(work / "cluster", 2, narrator)
        path = work / "bench.yaml"
        path.write_text(yaml.safe_dump(_config("wc-vol", 4 * STATE_MB)))
        sched = demo.start_scheduler(state, work / "cluster", path, narrator)
        api = sched.api_url
        demo.wait_for_deploy(api, narrator, timeout=600)
        bootstrap = demo.bootstrap_servers(api)
        AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10)
        t0 = time.monotonic()
        _produce(bootstrap, records)
        out["produce_s"] = time.monotonic() - t0
        for app in ("wc-vol", "wc-tmp"):
            if app == "wc-tmp":
                path.write_text(yaml.safe_dump(_config(app, 0)))
                code, doc = demo.http_json(api + "/v1/config", "PUT", {"yaml": path.read_text(), "confirm": True},
                                           timeout=30)
                if code != 200:
                    raise RuntimeError(f"config update: {code} {doc}")
                _wait("wc-tmp deployed", lambda: _pod(api, "wc-tmp-0").get("ready"), timeout=600)
            t0 = time.monotonic()
            _wait(f"{app} caught up", lambda a=app: (lambda lag: lag is not None and lag < 100)(_lag(api, a)),
                  timeout=3600, interval=2)
            out[f"{app}_count_s"] = time.monotonic() - t0
            group = f"{SERVICE}-{app}"
            out[f"{app}_state_mb"] = _state_mb(work / "cluster", group)
            figures = _measure(api, bootstrap, f"{app}-0")
            out.update({f"{app}_{k}": v for k, v in figures.items()})
        out["serving_ratio"] = out["wc-tmp_serving_s"] / out["wc-vol_serving_s"]
        out["ready_ratio"] = out["wc-tmp_ready_s"] / out["wc-vol_ready_s"]
        return out
    finally:
        demo.teardown(work / "cluster", narrator)
        shutil.rmtree(work, ignore_errors=True)
