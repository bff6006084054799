"""A Kafka minor-version upgrade (4.2.2 → 4.3.1) on a running service: rolled one broker at a time
(with 3 brokers: no partition below min.insync.replicas) and no acknowledged record lost, then
metadata.version finalised by kmf (read from Kafka's own FeatureCommand), then a downgrade refused.

`make test` runs it on one broker (about 1.5 min); `make chaos` (KMF_CHAOS_FULL=1) on three, where
the roll's ISR is what is checked (about 4 min)."""
from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from tests.helpers.chaos_invariants import broker_jvms
from tests.helpers.kafka_clients import NumberedProducer, consume
from tests.helpers.kafka_views import IsrSampler
from tests.helpers.operator_cli import kmf
from tests.helpers.wait import wait_for

pytestmark = [pytest.mark.timeout(600), pytest.mark.kafka]
FULL = os.environ.get("KMF_CHAOS_FULL") == "1"

ROOT = Path(__file__).resolve().parents[3]
OLD, NEW = "4.2.2", "4.3.1"
OLD_3 = "3.9.2"


def metadata_level(boot: str) -> str:
    """Kafka's own answer: the finalised metadata.version, from the FeatureCommand of the newest runtime."""
    libs = ROOT / ".cache" / "kafka" / NEW / "libs"
    out = subprocess.run(["java", "-Xmx128m", "-cp", f"{libs}/*", "org.apache.kafka.tools.FeatureCommand",
                          "--bootstrap-server", boot, "describe"], capture_output=True, text=True, timeout=60)
    for line in out.stdout.splitlines():
        if line.startswith("Feature: metadata.version"):
            return line.split("FinalizedVersionLevel:")[1].split()[0]
    raise AssertionError(f"no metadata.version in FeatureCommand's answer: {out.stdout} {out.stderr}")


def broker_versions(sandbox_root: Path) -> dict[int, set[str]]:
    """node id → the Kafka versions on the classpaths of its broker JVMs under `sandbox_root`."""
    found: dict[int, set[str]] = {}
    for node, pids in broker_jvms(sandbox_root).items():
        for pid in pids:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
            found.setdefault(node, set()).add(argv[argv.index("-cp") + 1].split("/kafka/")[1].split("/")[0])
    return found


@pytest.mark.parametrize("brokers, old", [
    (1, OLD),
    # a KRaft 3.9 cluster (the last line with ZooKeeper) straight to 4.x: Kafka documents the jump
    # from any 3.3.x; the 4.x brokers read the 3.9 logs and metadata.version goes 3.9 → 4.3
    (1, OLD_3),
    pytest.param(3, OLD, marks=pytest.mark.skipif(not FULL, reason="part of make chaos (KMF_CHAOS_FULL=1)"))])
def test_minor_upgrade_rolls_then_finalises_metadata_version_and_refuses_the_downgrade(kmf_env, tmp_path, brokers,
                                                                                        old):
    env = kmf_env(agents=brokers)
    config = env.config(brokers=brokers)
    config["kafka"]["version"] = old
    s = env.start_scheduler(config=config)
    s.wait_deployed()
    boot = s.get("/v1/endpoints/broker")["bootstrap_servers"]
    assert broker_versions(env.lm.base) == {n: {old} for n in range(brokers)}
    # kmf learns the level the cluster was formatted with, and leaves it
    formatted = ".".join(old.split(".")[:2]) + "-"  # 4.2- or 3.9-
    wait_for(lambda: metadata_level(boot).startswith(formatted), timeout=60, interval=5,
             what=f"metadata.version {formatted}")
    min_insync = min(2, brokers)
    code, doc = s.request("POST", "/v1/topics", {"name": "upg", "partitions": 6, "replication": brokers,
                                                  "config": {"min.insync.replicas": str(min_insync)}})
    assert code == 200, doc

    producer = NumberedProducer(boot, "upg").start()  # numbered records, acks=all, for the whole upgrade
    acked = producer.acked
    isr = IsrSampler(boot, "upg", replicas=brokers).__enter__()  # the smallest ISR Kafka reports throughout
    started = time.monotonic()
    try:
        new = yaml.safe_load(s.path.read_text())
        new["kafka"]["version"] = NEW
        path = tmp_path / "upgrade.yaml"
        path.write_text(yaml.safe_dump(new))
        out = kmf(s.url, "config", "update", str(path), "--json")
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["restart"] is True
        wait_for(lambda: s.plan("update")["status"] == "COMPLETE", timeout=400, interval=2,
                 what="the upgrade's roll COMPLETE")
        rolled = time.monotonic() - started
        wait_for(lambda: metadata_level(boot).startswith("4.3-"), timeout=120, interval=5,
                 what="metadata.version finalised at 4.3")
        finalised = time.monotonic() - started
    finally:
        producer.stop(90)
        isr.__exit__()
    min_isr = isr.smallest()
    assert broker_versions(env.lm.base) == {n: {NEW} for n in range(brokers)}
    assert brokers == 1 or min_isr >= min_insync, f"a partition fell to {min_isr} in-sync replicas during the upgrade"
    log = s.log(400_000)
    assert log.count("raising metadata.version") == 1, [ln for ln in log.splitlines() if "metadata.version" in ln]

    assert acked and acked <= consume(boot, "upg", len(acked)) | set(), "an acknowledged record is missing"

    # a downgrade to the release before the finalised one is refused, and nothing restarts
    tasks = {f"broker-{i}": s.pod(f"broker-{i}")["task_id"] for i in range(brokers)}
    new["kafka"]["version"] = old
    path.write_text(yaml.safe_dump(new))
    out = kmf(s.url, "config", "update", str(path))
    assert out.returncode == 1 and ("finalised at 4.3" in out.stderr or f"downgrading {NEW} → {old}" in out.stderr), \
        out.stdout + out.stderr
    assert s.get("/v1/config/target")["config"]["kafka"]["version"] == NEW
    time.sleep(3)
    assert {f"broker-{i}": s.pod(f"broker-{i}")["task_id"] for i in range(brokers)} == tasks
    print(f"upgrade e2e ({old} → {NEW}, {brokers} broker(s)): roll {rolled:.1f} s, finalised {finalised:.1f} s after the update, "
          f"{len(acked)} records acknowledged, smallest ISR {min_isr}")
