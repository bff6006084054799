"""The core's first state: built from what the shell loaded from ZooKeeper (pure)."""
from __future__ import annotations

from typing import Any, Mapping

from config import ServiceSpec
from scheduler.core.artifacts import Served
from scheduler.core.state import State, TaskRecord


def initial_state(spec: ServiceSpec, config_id: str, framework_id: str | None,
                  tasks: Mapping[str, Any], properties: Mapping[str, str],
                  cluster_id: str | None = None, served: Served | None = None,
                  kafka_versions: Mapping[str, tuple[str, ...]] | None = None) -> State:
    """The state after loading ZooKeeper. `cluster_id` is a fresh KRaft cluster id to use if the
    store has none yet (it is persisted by the first decision, before any launch).
    `kafka_versions` (pinned Kafka version → the modes it supports) is what the shell read from
    the versions file; the core checks commands against it and reads no file itself."""
    records = {name: rec if isinstance(rec, TaskRecord) else TaskRecord.from_json(rec)
               for name, rec in tasks.items()}
    props = dict(properties)
    if spec.kafka.mode == "kraft" and "cluster_id" not in props and cluster_id:
        props["cluster_id"] = cluster_id
        props["unsaved.cluster_id"] = "true"
    return State(spec=spec, config_id=config_id, framework_id=framework_id, tasks=records,
                 properties=props, uninstalling=props.get("uninstall") == "true", served=served,
                 kafka_versions=kafka_versions)
