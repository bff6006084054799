"""Topic administration through confluent-kafka's AdminClient (list, describe, create, delete,
alter config), returning JSON-ready values and (status, body) pairs for the API. Dynamic broker
settings are set per broker by scheduler/shell/live_config.py with the same `admin_client`."""
from __future__ import annotations

from typing import Any, Mapping

import attrs

from kmfwire.errors import KmfError

TIMEOUT_S = 15.0
METADATA_TIMEOUT_S = 5.0


def admin_client(bootstrap: str) -> Any:
    """kmf's AdminClient for the brokers' PLAINTEXT listener (topics and users)."""
    from confluent_kafka.admin import AdminClient
    return AdminClient({"bootstrap.servers": bootstrap, "log_level": 0,
                        "socket.connection.setup.timeout.ms": 5000})


def is_setting_value(value: Any) -> bool:
    """A Kafka setting's value in JSON: a string or a whole number (true/false are not "true")."""
    return isinstance(value, (str, int)) and not isinstance(value, bool)


@attrs.frozen
class CreateRequest:
    name: str
    partitions: int = 1
    replication: int = -1  # -1: the brokers' default
    config: Mapping[str, str] = attrs.field(factory=dict)

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> "CreateRequest":
        name = doc.get("name")
        if not isinstance(name, str) or not name or len(name) > 249 \
                or not all(c.isalnum() or c in "._-" for c in name):
            raise ValueError(f"name: {name!r} is not a valid topic name (letters, digits, . _ -)")
        parts = doc.get("partitions", 1)
        rf = doc.get("replication", -1)
        for key, value in (("partitions", parts), ("replication", rf)):
            if not isinstance(value, int) or isinstance(value, bool) or (value < 1 and value != -1):
                raise ValueError(f"{key}: must be a positive whole number, got {value!r}")
        cfg = doc.get("config", {})
        if not isinstance(cfg, dict) or not all(isinstance(k, str) for k in cfg):
            raise ValueError("config: must be an object of topic settings")
        if not all(is_setting_value(v) for v in cfg.values()):
            raise ValueError("config: every topic setting must be a string or a whole number")
        unknown = set(doc) - {"name", "partitions", "replication", "config"}
        if unknown:
            raise ValueError(f"unknown fields: {', '.join(sorted(unknown))}")
        return cls(name, parts, rf, {k: str(v) for k, v in cfg.items()})


def _error(exc: Exception) -> tuple[int, dict]:
    err = exc.args[0] if exc.args else None
    name = err.name() if err is not None and hasattr(err, "name") else ""
    # Kafka's own sentence and its code, not the repr `KafkaError{code=...,val=...,str="..."}`
    said = err.str() if err is not None and hasattr(err, "str") else ""
    text = f"{said.rstrip()} ({name})" if said and name else (said or str(exc))
    status = {"TOPIC_ALREADY_EXISTS": 409, "UNKNOWN_TOPIC_OR_PART": 404, "INVALID_REPLICATION_FACTOR": 400,
              "INVALID_PARTITIONS": 400, "INVALID_CONFIG": 400, "POLICY_VIOLATION": 400}.get(name, 502)
    return status, {"error": text, "code": name}


class KafkaUnavailable(KmfError, RuntimeError):
    """The brokers did not answer a metadata request."""


def _metadata(bootstrap: str) -> Any:
    try:
        return admin_client(bootstrap).list_topics(timeout=METADATA_TIMEOUT_S)
    except Exception as exc:  # noqa: BLE001 - KafkaException: transport, timeout
        raise KafkaUnavailable(f"the brokers at {bootstrap} did not answer: {exc}") from None


def list_topics(bootstrap: str) -> list[str]:
    md = _metadata(bootstrap)
    return sorted(t for t in md.topics if not t.startswith("__"))


def describe(bootstrap: str, topic: str) -> dict[str, Any] | None:
    # all topics' metadata: asking for one by name makes brokers with auto.create.topics.enable
    # (Kafka's default) create it, so describing a missing topic would bring it into being
    md = _metadata(bootstrap)
    t = md.topics.get(topic)
    if t is None or t.error is not None:
        return None
    live = set(md.brokers)
    parts = []
    for pid, p in sorted(t.partitions.items()):
        parts.append({"partition": pid, "leader": p.leader, "replicas": list(p.replicas), "isr": list(p.isrs),
                      "under_replicated": len(p.isrs) < len(p.replicas),
                      "offline": p.leader < 0 or p.leader not in live})
    return {"name": topic, "partitions": parts,
            "under_replicated_partitions": sum(p["under_replicated"] for p in parts),
            "offline_partitions": sum(p["offline"] for p in parts)}


def create(bootstrap: str, req: CreateRequest) -> tuple[int, Any]:
    from confluent_kafka.admin import NewTopic
    admin = admin_client(bootstrap)  # kept referenced: a collected client cancels its futures
    fut = admin.create_topics(
        [NewTopic(req.name, req.partitions, req.replication, config=dict(req.config))],
        request_timeout=TIMEOUT_S)[req.name]
    try:
        fut.result(TIMEOUT_S)
    except Exception as exc:  # noqa: BLE001 - KafkaException carries the broker's error
        return _error(exc)
    return 200, {"message": f"topic {req.name} created", "name": req.name}


def delete(bootstrap: str, topic: str) -> tuple[int, Any]:
    admin = admin_client(bootstrap)
    fut = admin.delete_topics([topic], request_timeout=TIMEOUT_S)[topic]
    try:
        fut.result(TIMEOUT_S)
    except Exception as exc:  # noqa: BLE001
        return _error(exc)
    return 200, {"message": f"topic {topic} deleted"}


def alter_config(bootstrap: str, topic: str, settings: Mapping[str, str]) -> tuple[int, Any]:
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource
    entries = [ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET) for k, v in settings.items()]
    resource = ConfigResource("TOPIC", topic, incremental_configs=entries)
    admin = admin_client(bootstrap)
    fut = admin.incremental_alter_configs([resource])[resource]
    try:
        fut.result(TIMEOUT_S)
    except Exception as exc:  # noqa: BLE001
        return _error(exc)
    return 200, {"message": f"topic {topic}: {', '.join(settings)} set"}

