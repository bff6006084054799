"""ZooKeeper → KRaft migration end to end under kmf (issue 19): a Kafka 3.9.2 ZooKeeper-mode
service gets `kmf config update` with kafka.mode kraft and dedicated controllers; kmf runs Kafka's
procedure as the plan `migration` (controllers in migration mode formatted with ZooKeeper's cluster
id, brokers rolled into migration mode, the metadata copy, brokers rolled to KRaft, controllers
finalised) while a numbered acks=all producer writes; then `kafka.version: 4.3.1` rolls it onto
Kafka 4 and metadata.version is finalised at 4.3.

Judged by Kafka and the files on disk: Kafka's /migration znode (the KRaft offset it copied up to),
the server.properties each running JVM was started with, the topic's id from AdminClient before and
after, FeatureCommand's metadata.version, and every acknowledged record read back. `make test` runs
it on one broker (and its one controller); `make chaos` on three brokers and three controllers, where
no partition may fall below min.insync.replicas."""
from __future__ import annotations

import json
import os
import re
import signal
import time
from pathlib import Path

import pytest
import yaml

from tests.helpers.chaos_invariants import broker_jvms
from tests.helpers.kafka_clients import NumberedProducer, consume
from tests.helpers.kafka_views import IsrSampler
from tests.helpers.master_views import live_tasks
from tests.helpers.operator_cli import kmf
from tests.helpers.wait import wait_for

pytestmark = [pytest.mark.timeout(900), pytest.mark.kafka]
FULL = os.environ.get("KMF_CHAOS_FULL") == "1"


def jvm_configs(work_dir: Path) -> dict[int, str]:
    """node id → the server.properties text each running Kafka JVM under `work_dir` was started with."""
    out = {}
    for node, pids in broker_jvms(work_dir).items():
        argv = Path(f"/proc/{pids[0]}/cmdline").read_bytes().decode(errors="replace").split("\0")
        path = next(a for a in reversed(argv) if a.endswith(".properties") and not a.startswith("-"))
        cwd = os.readlink(f"/proc/{pids[0]}/cwd")
        out[node] = Path(path if os.path.isabs(path) else os.path.join(cwd, path)).read_text()
    return out


def topic_id(boot: str, topic: str) -> str:
    from confluent_kafka import TopicCollection
    from confluent_kafka.admin import AdminClient
    admin = AdminClient({"bootstrap.servers": boot, "log_level": 0})
    return str(admin.describe_topics(TopicCollection([topic]))[topic].result(timeout=30).topic_id)


CHAOS = pytest.mark.skipif(not FULL, reason="part of make chaos (KMF_CHAOS_FULL=1)")


@pytest.mark.parametrize("brokers, faults", [
    (1, False), pytest.param(3, False, marks=CHAOS),
    # under fire: a controller's JVM killed -9 while the brokers roll into migration mode, a
    # broker's while they roll to KRaft; kmf relaunches each in place and the migration goes on
    pytest.param(3, True, marks=CHAOS)])
def test_a_zookeeper_mode_service_migrates_to_kraft_then_upgrades_to_kafka_4(kmf_env, tmp_path, zk_client, brokers,
                                                                             faults):
    from tests.integration.e2e.test_kafka_upgrade import metadata_level

    controllers = 1 if brokers < 3 else 3
    env = kmf_env(agents=brokers + controllers)  # hostname:UNIQUE over brokers and controllers
    config = env.config(brokers=brokers, version="3.9.2", mode="zookeeper")
    s = env.start_scheduler(config=config)
    s.wait_deployed()
    boot = s.get("/v1/endpoints/broker")["bootstrap_servers"]
    min_insync = min(2, brokers)
    code, doc = s.request("POST", "/v1/topics", {"name": "mig", "partitions": 3, "replication": brokers,
                                                  "config": {"min.insync.replicas": str(min_insync)}})
    assert code == 200, doc
    wait_for(lambda: topic_id(boot, "mig") not in ("", "None"), timeout=60, interval=1, what="topic mig")
    before_id = topic_id(boot, "mig")
    chroot = f"/{env.name}/kafka"
    zk_cluster_id = json.loads(zk_client.get(f"{chroot}/cluster/id")[0])["id"]

    # numbered records, acks=all, through the whole migration
    producer = NumberedProducer(boot, "mig", flush_s=120, **{"message.timeout.ms": 120_000}).start()
    acked = producer.acked
    isr = IsrSampler(boot, "mig", replicas=brokers).__enter__()  # the smallest ISR Kafka reports throughout
    started = time.monotonic()
    phases_seen: list[str] = []
    killed: list[tuple[str, int, int]] = []
    try:
        new = yaml.safe_load(s.path.read_text())
        new["kafka"].update({"mode": "kraft", "controllers": "separate"})
        path = tmp_path / "kraft.yaml"
        path.write_text(yaml.safe_dump(new))
        out = kmf(s.url, "config", "update", str(path), "--json")
        assert out.returncode == 0, out.stdout + out.stderr
        assert "migration started" in json.loads(out.stdout)["message"]
        # an operator's pause holds it before its next phase: no controller reaches the master
        out = kmf(s.url, "plan", "interrupt", "migration")
        assert out.returncode == 0, out.stdout + out.stderr
        time.sleep(8)
        assert s.plan("migration")["status"] == "WAITING"
        assert not [t for t in live_tasks(env.lm) if t.startswith("controller-")]
        out = kmf(s.url, "plan", "continue", "migration")
        assert out.returncode == 0, out.stdout + out.stderr

        def complete() -> bool:
            plan = s.plan("migration")
            now = next((ph["name"] for ph in plan["phases"] if ph["status"] == "IN_PROGRESS"), "done")
            if not phases_seen or phases_seen[-1] != now:
                phases_seen.append(now)
                victim = {"brokers-migrating": 1001, "brokers-kraft": 2}.get(now) if faults else None
                if victim is not None:  # the victim's JVM, found by its node id in its server.properties
                    pids = broker_jvms(env.lm.base).get(victim, [])
                    for pid in pids:
                        os.kill(pid, signal.SIGKILL)
                    killed.append((now, victim, len(pids)))
            return plan["status"] == "COMPLETE"
        wait_for(complete, timeout=420, interval=1, what="the migration plan COMPLETE")
        migrated_s = time.monotonic() - started
        time.sleep(3)  # records acknowledged after the last roll
    finally:
        producer.stop(150)
        isr.__exit__()
    min_isr = isr.smallest()
    assert phases_seen[0] in ("cluster-id", "controllers") and phases_seen[-1] == "done", phases_seen
    assert phases_seen == sorted(phases_seen, key=["cluster-id", "controllers", "brokers-migrating", "brokers-kraft",
                                                   "finalize", "done"].index), phases_seen

    # Kafka's own record of the copy, and what each JVM runs now
    migration = json.loads(zk_client.get(f"{chroot}/migration")[0])
    ids = [*range(brokers), *range(1000, 1000 + controllers)]
    assert migration["kraft_metadata_offset"] >= 0 and migration["kraft_controller_id"] in ids, migration
    configs = jvm_configs(env.lm.base)
    assert sorted(configs) == ids, sorted(configs)
    for node in range(brokers):
        assert re.search(r"^process\.roles=broker$", configs[node], re.M) and "zookeeper.connect" not in configs[node]
    for node in range(1000, 1000 + controllers):
        assert re.search(r"^process\.roles=controller$", configs[node], re.M)
        assert "zookeeper.metadata.migration.enable" not in configs[node]  # finalised
    # a kill during a roll may take a second replica down at once: with faults only loss is judged
    assert brokers == 1 or faults or min_isr >= min_insync, f"a partition fell to {min_isr} in-sync replicas"
    assert not faults or [(ph, n) for ph, n, pids in killed if pids] == [("brokers-migrating", 1001),
                                                                         ("brokers-kraft", 2)], killed
    assert s.get("/v1/config/target")["config"]["kafka"]["mode"] == "kraft"
    assert topic_id(boot, "mig") == before_id  # the same topic, not a new one
    assert acked, "nothing was acknowledged"
    seen = consume(boot, "mig", len(acked))
    assert acked <= seen, f"{len(acked - seen)} acknowledged records lost, e.g. {sorted(acked - seen)[:5]}"
    # the KRaft cluster is the ZooKeeper-mode one: the id kmf formatted the controller with
    assert s.get("/v1/state/properties").get("cluster_id") == zk_cluster_id

    # then onto Kafka 4: a plain version roll, and metadata.version finalised
    new["kafka"]["version"] = "4.3.1"
    path.write_text(yaml.safe_dump(new))
    out = kmf(s.url, "config", "update", str(path), "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    wait_for(lambda: s.plan("update")["status"] == "COMPLETE", timeout=300, interval=2, what="the roll onto 4.3.1")
    wait_for(lambda: metadata_level(boot).startswith("4.3-"), timeout=180, interval=5,
             what="metadata.version finalised at 4.3")
    assert topic_id(boot, "mig") == before_id
    assert acked <= consume(boot, "mig", len(acked))
    print(f"zk → kraft e2e ({brokers} broker(s), {controllers} controller(s), killed {killed}): smallest ISR {min_isr}; migrated in {migrated_s:.1f} s through {phases_seen}, {len(acked)} records acknowledged, "
          f"none lost; then on Kafka 4.3.1 at metadata.version {metadata_level(boot)}")
