"""A restarted scheduler with 10,000 task records in ZooKeeper: load, rebuild, decide again."""
from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from kazoo.client import KazooClient

from benchmarks.decisions import _spec
from scheduler.core import events as ev
from scheduler.core.decide import decide, initial_state
from scheduler.core.state import TaskRecord
from scheduler.shell.store import Put, StateStore


def restart(records: int = 10_000) -> dict[str, Any]:
    from localmesos.zookeeper import ZooKeeperServer
    with tempfile.TemporaryDirectory() as tmp:
        server = ZooKeeperServer(Path(tmp))
        server.start()
        try:
            zk = KazooClient(hosts=server.connect_string)
            zk.start(timeout=15)
            store = StateStore(zk, "bench", "/kmf")
            store.initialize()
            spec = _spec(records)
            batch = []
            for i in range(records):
                rec = TaskRecord(f"app-{i}", "stream", task_id=f"app-{i}__{i:032x}", agent_id=f"A{i % 1000}",
                                 state="TASK_RUNNING", ready=True, launches=1)
                batch.append(Put("tasks", rec.pod, rec.to_json()))
                if len(batch) == 500:
                    store.commit(batch)
                    batch = []
            store.commit(batch)
            zk.stop()
            t0 = time.perf_counter()
            zk = KazooClient(hosts=server.connect_string)
            zk.start(timeout=15)
            stored = StateStore(zk, "bench", "/kmf").load()
            loaded = time.perf_counter()
            state = initial_state(spec, "c", "fw", stored.tasks, stored.properties)
            state, actions = decide(state, ev.Subscribed("fw", 1.0))
            decided = time.perf_counter()
            zk.stop()
            reconcile = sum(len(a.tasks) for a in actions if type(a).__name__ == "Reconcile")
            return {"records": len(stored.tasks), "load_s": loaded - t0, "to_deciding_s": decided - t0,
                    "reconcile_tasks": reconcile}
        finally:
            server.stop()
