"""The ZooKeeper state store against a real ZooKeeper (fresh chroot per test)."""
from __future__ import annotations

import json
import time

import pytest
from kazoo.client import KazooClient

from scheduler.shell.errors import StoreConflict, StoreError
from scheduler.shell.store import (
    SCHEMA_VERSION,
    Delete,
    Put,
    SetFrameworkId,
    SetTargetConfig,
    StateStore,
    digest_acl,
)

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def store(zk_client) -> StateStore:
    s = StateStore(zk_client, "kafka", root="/kmf")
    s.initialize()
    return s


def task(name: str, state: str = "TASK_STAGING", **extra) -> dict:
    return {"name": name, "task_info": {"task_id": {"value": f"{name}__1"}},
            "status": {"state": state}, "goal": "RUNNING", **extra}


def test_layout_is_created_with_schema_version(store, zk_client):
    assert zk_client.get("/kmf/kafka/schema_version")[0] == str(SCHEMA_VERSION).encode()
    assert sorted(zk_client.get_children("/kmf/kafka")) == [
        "configs", "plans", "properties", "schema_version", "tasks"]


def test_round_trip_of_every_area_through_a_fresh_store(store, zk_client):
    store.commit([
        SetFrameworkId("fw-1"),
        Put("configs", "c1", {"brokers": {"count": 3}}),
        SetTargetConfig("c1"),
        Put("tasks", "broker-0", task("broker-0")),
        Put("properties", "cluster_id", "abc"),
        Put("properties", "next_broker_id", 3),
        Put("plans", "deploy", {"phases": []}),
    ])
    loaded = StateStore(zk_client, "kafka", root="/kmf").load()
    assert loaded.framework_id == "fw-1"
    assert loaded.target_config_id == "c1"
    assert loaded.target_config == {"brokers": {"count": 3}}
    assert loaded.tasks == {"broker-0": task("broker-0")}
    assert loaded.properties == {"cluster_id": "abc", "next_broker_id": 3}
    assert loaded.plans == {"deploy": {"phases": []}}


def test_every_applied_config_is_kept_by_id(store):
    store.apply_config("c1", {"v": 1})
    store.apply_config("c2", {"v": 2})
    loaded = store.load()
    assert loaded.configs == {"c1": {"v": 1}, "c2": {"v": 2}}
    assert loaded.target_config_id == "c2"


def test_updates_and_deletes_use_the_known_version(store):
    store.put("tasks", "broker-0", task("broker-0"))
    store.put("tasks", "broker-0", task("broker-0", "TASK_RUNNING"))
    assert store.read("tasks", "broker-0")["status"]["state"] == "TASK_RUNNING"
    store.delete("tasks", "broker-0")
    assert store.load().tasks == {}


def test_transaction_is_atomic_when_one_operation_fails(store, zk_client):
    store.put("tasks", "broker-0", task("broker-0"))
    zk_client.set("/kmf/kafka/tasks/broker-0", json.dumps(task("broker-0", "X")).encode())
    with pytest.raises(StoreConflict) as err:
        store.commit([Put("tasks", "broker-1", task("broker-1")),
                      Put("properties", "next_broker_id", 2),
                      Put("tasks", "broker-0", task("broker-0", "TASK_RUNNING"))])
    assert "/kmf/kafka/tasks/broker-0" in str(err.value)
    assert not zk_client.exists("/kmf/kafka/tasks/broker-1")
    assert not zk_client.exists("/kmf/kafka/properties/next_broker_id")


def test_second_writer_loses_instead_of_overwriting(store, zk_client):
    other = StateStore(zk_client, "kafka", root="/kmf")
    store.put("properties", "next_broker_id", 1)
    other.load()
    other.put("properties", "next_broker_id", 2)
    with pytest.raises(StoreConflict):
        store.put("properties", "next_broker_id", 5)
    assert store.read("properties", "next_broker_id") == 2


def test_create_of_a_node_someone_else_created_is_a_conflict(store, zk_client):
    other = StateStore(zk_client, "kafka", root="/kmf")
    other.put("tasks", "broker-0", task("broker-0"))
    with pytest.raises(StoreConflict):
        store.put("tasks", "broker-0", task("broker-0", "TASK_RUNNING"))


def test_write_ahead_launch_is_visible_to_another_session_on_return(store, zk_chroot):
    store.commit([Put("tasks", "broker-0", task("broker-0")), Put("tasks", "broker-1", task("broker-1"))])
    other = KazooClient(hosts=zk_chroot)
    other.start(timeout=15)
    try:
        assert sorted(other.get_children("/kmf/kafka/tasks")) == ["broker-0", "broker-1"]
        assert json.loads(other.get("/kmf/kafka/tasks/broker-1")[0]) == task("broker-1")
    finally:
        other.stop()
        other.close()


def test_fence_blocks_writes_once_the_lock_node_is_gone(store, zk_client):
    zk_client.create("/kmf/kafka/leader-node", b"", ephemeral=True)
    store.set_fence("/kmf/kafka/leader-node")
    store.put("properties", "a", 1)
    zk_client.delete("/kmf/kafka/leader-node")
    with pytest.raises(StoreConflict) as err:
        store.put("properties", "a", 2)
    assert "leader" in str(err.value)
    assert store.read("properties", "a") == 1


def test_forgetting_the_framework_id(store, zk_client):
    store.set_framework_id("fw-9")
    assert StateStore(zk_client, "kafka", root="/kmf").load().framework_id == "fw-9"
    StateStore(zk_client, "kafka", root="/kmf").set_framework_id(None)
    assert store.load().framework_id is None
    store.set_framework_id(None)  # forgetting twice is harmless
    assert store.load().framework_id is None


@pytest.mark.parametrize("data, expect", [
    (b"{not json", "corrupt JSON"),
    (b"\xff\xfe", "corrupt JSON"),
    (b"[1, 2]", "expected a JSON object"),
])
def test_corrupt_task_node_raises_naming_the_znode(store, zk_client, data, expect):
    zk_client.create("/kmf/kafka/tasks/broker-7", data)
    with pytest.raises(StoreError) as err:
        store.load()
    assert "/kmf/kafka/tasks/broker-7" in str(err.value)
    assert expect in str(err.value)


def test_unknown_schema_version_is_refused_not_reset(store, zk_client):
    store.put("tasks", "broker-0", task("broker-0"))
    zk_client.set("/kmf/kafka/schema_version", b"99")
    for action in (StateStore(zk_client, "kafka", root="/kmf").initialize, store.load):
        with pytest.raises(StoreError) as err:
            action()
        assert "/kmf/kafka/schema_version" in str(err.value) and "99" in str(err.value)
    assert zk_client.exists("/kmf/kafka/tasks/broker-0")


def test_state_without_schema_version_is_refused(zk_client):
    zk_client.ensure_path("/kmf/kafka/tasks/broker-0")
    with pytest.raises(StoreError) as err:
        StateStore(zk_client, "kafka", root="/kmf").initialize()
    assert "/kmf/kafka" in str(err.value) and "schema_version" in str(err.value)


def test_bad_framework_id_and_dangling_target_config(store, zk_client):
    zk_client.create("/kmf/kafka/framework_id", b'{"val": "x"}')
    with pytest.raises(StoreError, match="/kmf/kafka/framework_id"):
        store.load()
    zk_client.delete("/kmf/kafka/framework_id")
    zk_client.create("/kmf/kafka/target_config", b'{"id": "gone"}')
    with pytest.raises(StoreError, match="/kmf/kafka/target_config.*'gone'"):
        store.load()


def test_invalid_names_are_refused(store):
    for bad in ("", "a/b", ".."):
        with pytest.raises(StoreError, match="invalid"):
            store.put("tasks", bad, {})


def test_digest_acl_protects_the_tree(zookeeper, zk_chroot):
    owner = KazooClient(hosts=zk_chroot, auth_data=[("digest", "kmf:secret")])
    stranger = KazooClient(hosts=zk_chroot)
    owner.start(timeout=15)
    stranger.start(timeout=15)
    try:
        store = StateStore(owner, "kafka", root="/kmf", acl=digest_acl("kmf:secret"))
        store.initialize()
        store.put("properties", "cluster_id", "x")
        from kazoo.exceptions import NoAuthError
        with pytest.raises(NoAuthError):
            stranger.get("/kmf/kafka/properties/cluster_id")
        with pytest.raises(StoreError, match="user:password"):
            digest_acl("nocolon")
    finally:
        owner.delete("/kmf", recursive=True)
        owner.stop(); owner.close(); stranger.stop(); stranger.close()


def test_load_of_10000_tasks(store, zk_client):
    names = [f"task-{i:05d}" for i in range(10_000)]
    for start in range(0, len(names), 500):
        store.commit([Put("tasks", n, task(n)) for n in names[start:start + 500]])
    fresh = StateStore(zk_client, "kafka", root="/kmf")
    began = time.perf_counter()
    loaded = fresh.load()
    took = time.perf_counter() - began
    print(f"\nstore load: {len(loaded.tasks)} task nodes in {took:.3f} s")
    assert len(loaded.tasks) == 10_000
    assert loaded.tasks["task-04242"] == task("task-04242")
    for start in range(0, len(names), 1000):  # faster than the fixture's node-by-node delete
        fresh.commit([Delete("tasks", n) for n in names[start:start + 1000]])
