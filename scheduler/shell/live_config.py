"""Dynamic broker settings, applied live on every broker and read back (AdminClient I/O only).

confluent-kafka cannot address Kafka's cluster-default BROKER resource (``ConfigResource("BROKER",
"")`` is refused) and describes one BROKER resource per call, so a cluster-wide setting is set on
each broker id in turn: Kafka accepts every cluster-wide dynamic key per broker. Each broker gets
one incremental_alter_configs with all keys (SET, or DELETE for a removed override), then
describe_configs must show the new value on every broker. When Kafka refuses a value, or a broker
does not show it, what was applied is set back to each broker's previous dynamic value (or deleted
when it had none), so nothing stays half-applied, and `LiveConfigError` names the broker, the key
and Kafka's reason.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping

import attrs

from kmfwire.errors import KmfError
from kmfwire.waiting import wait_until
from scheduler.api.topics import METADATA_TIMEOUT_S, TIMEOUT_S, admin_client

# In KRaft the controller commits the change and each broker applies it when it replays the
# record, so a describe right after the alter may still show the old value for a moment.
VERIFY_TIMEOUT_S = 10.0


class LiveConfigError(KmfError, RuntimeError):
    """Kafka refused a live setting, or a broker does not show it (everything was undone)."""

    def __init__(self, broker: int | None, key: str | None, reason: str, undo_problems: Iterable[str] = ()) -> None:
        self.broker, self.key, self.reason = broker, key, reason
        self.undo_problems = list(undo_problems)
        where = ", ".join(p for p in (f"broker {broker}" if broker is not None else "", key or "") if p)
        text = f"{where}: {reason}" if where else reason
        if self.undo_problems:
            text += ("; undoing what was applied also failed, the brokers may disagree with the target: "
                     + "; ".join(self.undo_problems))
        super().__init__(text)


@attrs.define
class Applied:
    """What `apply` set and verified, per broker id, and how to set each broker back."""

    bootstrap: str
    brokers: dict[int, dict[str, str | None]]  # broker id → key → value now live (None: deleted)
    previous: dict[int, dict[str, str | None]]  # broker id → key → its dynamic value before (None: none)

    def undo(self) -> list[str]:
        """Set every broker back to its previous dynamic values; the problems met (empty: done)."""
        return _restore(self.bootstrap, {b: self.previous[b] for b in self.brokers})

    def to_json(self) -> dict[str, dict[str, str | None]]:
        return {str(b): dict(kv) for b, kv in sorted(self.brokers.items())}


def _kafka_reason(exc: BaseException) -> str:
    err = exc.args[0] if exc.args else None
    if err is not None and hasattr(err, "str") and hasattr(err, "name"):
        return f"{err.str()} ({err.name()})"
    return str(exc) or type(exc).__name__


def _resource(broker: int, settings: Mapping[str, str | None] | None = None) -> Any:
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType
    entries = None
    if settings is not None:
        entries = [ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET) if v is not None
                   else ConfigEntry(k, None, incremental_operation=AlterConfigOpType.DELETE)
                   for k, v in settings.items()]
    return ConfigResource(ResourceType.BROKER, str(broker), incremental_configs=entries)


def describe(admin: Any, broker: int) -> dict[str, Any]:
    """Broker `broker`'s configs as Kafka reports them (name → ConfigEntry)."""
    resource = _resource(broker)
    return admin.describe_configs([resource], request_timeout=TIMEOUT_S)[resource].result(TIMEOUT_S)


def _alter(admin: Any, broker: int, settings: Mapping[str, str | None], validate_only: bool = False) -> None:
    resource = _resource(broker, settings)
    admin.incremental_alter_configs([resource], request_timeout=TIMEOUT_S,
                                    validate_only=validate_only)[resource].result(TIMEOUT_S)


def _dynamic_value(entry: Any) -> str | None:
    """The broker's own dynamic value of a config (None when it has none)."""
    from confluent_kafka.admin import ConfigSource
    source = getattr(entry.source, "value", entry.source)  # the enum, or its number
    return entry.value if source == ConfigSource.DYNAMIC_BROKER_CONFIG.value else None


def _shows(entry: Any, value: str | None) -> bool:
    return _dynamic_value(entry) is None if value is None else entry.value == value


def _refused_key(admin: Any, broker: int, settings: Mapping[str, str | None], reason: str) -> str:
    """Which key Kafka refused: the one its reason names, else the first one refused alone."""
    named = [k for k in settings if k in reason]
    if len(named) == 1:
        return named[0]
    for key in named or list(settings):
        try:
            _alter(admin, broker, {key: settings[key]}, validate_only=True)
        except Exception:  # noqa: BLE001 - KafkaException: this one is refused
            return key
    return ", ".join(settings)


def _mismatch(admin: Any, broker: int, settings: Mapping[str, str | None],
              timeout_s: float) -> tuple[str, str | None, str | None] | None:
    """Poll until broker `broker` shows `settings`; else (key, wanted, what it shows)."""
    seen: dict[str, Any] = {}

    def shows_all() -> bool:
        seen["configs"] = configs = describe(admin, broker)
        seen["wrong"] = wrong = sorted(k for k, v in settings.items() if k not in configs or not _shows(configs[k], v))
        return not wrong

    if wait_until(shows_all, timeout_s, 0.2):
        return None
    configs, key = seen["configs"], seen["wrong"][0]
    return key, settings[key], configs[key].value if key in configs else "<absent>"


def _restore(bootstrap: str, previous: Mapping[int, Mapping[str, str | None]],
             timeout_s: float = VERIFY_TIMEOUT_S) -> list[str]:
    """Set each broker's keys back to `previous` and read them back; the problems met."""
    admin = admin_client(bootstrap)
    problems = []
    for broker, values in sorted(previous.items()):
        try:
            _alter(admin, broker, values)
            off = _mismatch(admin, broker, values, timeout_s)
        except Exception as exc:  # noqa: BLE001 - KafkaException: reported, the rest still restored
            problems.append(f"broker {broker}: {_kafka_reason(exc)}")
            continue
        if off is not None:
            problems.append(f"broker {broker}: {off[0]} shows {off[2]!r}, not its previous {off[1]!r}")
    return problems


def broker_ids(bootstrap: str) -> set[int]:
    """The brokers in the cluster's metadata (the ones running and registered)."""
    try:
        md = admin_client(bootstrap).list_topics(timeout=METADATA_TIMEOUT_S)
    except Exception as exc:  # noqa: BLE001 - KafkaException: transport, timeout
        raise LiveConfigError(None, None, f"the brokers at {bootstrap} did not answer: {_kafka_reason(exc)}") from None
    return set(md.brokers)


def apply(bootstrap: str, settings: Mapping[str, str | None], expected: Iterable[int] = (),
          verify_timeout_s: float = VERIFY_TIMEOUT_S) -> Applied:
    """Set `settings` (None: delete the broker's dynamic value) on every broker in the cluster's
    metadata and verify them; raise `LiveConfigError` with everything undone when that fails.

    A broker of `expected` missing from the metadata is refused before anything changes: it could
    not be set, and a dynamic value it kept from before would hide the new static one when it
    comes back."""
    ids = broker_ids(bootstrap)
    missing = sorted(set(expected) - ids)
    if missing:
        others = f" (nor are brokers {', '.join(map(str, missing[1:]))})" if missing[1:] else ""
        raise LiveConfigError(missing[0], None, f"not in the cluster metadata{others}: not running? A live "
                                                "setting cannot reach it; retry when every broker is up")
    admin = admin_client(bootstrap)  # kept referenced: a collected client cancels its futures
    previous: dict[int, dict[str, str | None]] = {}
    for broker in sorted(ids):
        try:
            configs = describe(admin, broker)
        except Exception as exc:  # noqa: BLE001 - KafkaException
            raise LiveConfigError(broker, None, f"describe_configs failed: {_kafka_reason(exc)}") from None
        previous[broker] = {k: _dynamic_value(configs[k]) if k in configs else None for k in settings}
    done: dict[int, dict[str, str | None]] = {}

    def fail(broker: int, key: str | None, reason: str) -> LiveConfigError:
        undone = _restore(bootstrap, {b: previous[b] for b in (*done, broker)})
        return LiveConfigError(broker, key, reason, undone)

    for broker in sorted(ids):
        try:
            _alter(admin, broker, settings)
        except Exception as exc:  # noqa: BLE001 - KafkaException carries the broker's reason
            reason = _kafka_reason(exc)
            raise fail(broker, _refused_key(admin, broker, settings, reason), reason) from None
        done[broker] = dict(settings)
    for broker in sorted(ids):
        try:
            off = _mismatch(admin, broker, settings, verify_timeout_s)
        except Exception as exc:  # noqa: BLE001 - KafkaException
            raise fail(broker, None, f"describe_configs failed: {_kafka_reason(exc)}") from None
        if off is not None:
            key, want, seen = off
            raise fail(broker, key, f"the broker accepted {key}={want} but shows {seen!r} after "
                                    f"{verify_timeout_s:.0f} s (its log may say why)" if want is not None
                       else f"the broker still has a dynamic {key}={seen!r} after deleting it") from None
    return Applied(bootstrap, done, previous)
