"""Brings Kafka to the declared topics and users (the spec's `topics:` and `users:`).

A thread of the leading scheduler: when the target config changes, after a (re)start, while
deletions are pending, after a failed pass and every `recheck_s`, it reads Kafka's view of the
declared names (AdminClient over the PLAINTEXT listener; quotas through Kafka's ConfigCommand),
asks the pure `scheduler.core.declared.plan_changes` what to change, and applies that. Every pass
is idempotent. What it did, refused and failed is in `status()` (``GET /v1/declared``) and the log.
Passwords are read from the user's file or environment variable only to send them to Kafka
(through `scheduler.api.security.create_user`, as ``POST /v1/users`` does); they are never logged
or kept.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

from config.declared import read_password
from scheduler.api import security
from scheduler.api.views import broker_endpoint
from scheduler.core.declared import (
    Acl,
    AddPartitions,
    AlterTopicConfigs,
    Change,
    CreateAcls,
    CreateTopic,
    DeleteAcls,
    DeleteCredential,
    DeleteTopic,
    KafkaView,
    SetQuotas,
    Topic,
    UpsertCredential,
    declared_of,
    deleting_of,
    plan_changes,
)
from scheduler.core.events import DeclaredDeleted
from scheduler.core.state import State
from scheduler.shell import quotas
from scheduler.shell.kafka_tools import KafkaTools

log = logging.getLogger(__name__)

TIMEOUT_S = 15.0
_RESOURCE = {"topic": "TOPIC", "group": "GROUP", "cluster": "BROKER", "transactional_id": "TRANSACTIONAL_ID"}


def _kafka_reason(exc: BaseException) -> str:
    err = exc.args[0] if exc.args else None
    if err is not None and hasattr(err, "str") and hasattr(err, "name"):
        return f"{err.str().rstrip()} ({err.name()})"
    return str(exc)


class DeclaredSync:
    def __init__(self, state: Callable[[], State], put: Callable[[Any], None],
                 tools: Callable[[State], KafkaTools], interval: float = 3.0, recheck_s: float = 300.0,
                 retry_s: float = 10.0, clock: Callable[[], float] = time.time) -> None:
        self.state = state
        self.put = put
        self.tools = tools
        self.interval = interval
        self.recheck_s = recheck_s
        self.retry_s = retry_s
        self.clock = clock
        self.stopped = threading.Event()
        self._admin: tuple[str, Any] | None = None
        self._synced: str | None = None  # the config id of the last pass without errors
        self._last = 0.0
        self._failed = False
        self._status: dict[str, Any] = {"state": "starting"}
        self.thread = threading.Thread(target=self._run, name="kmf-declared-sync", daemon=True)

    def start(self) -> "DeclaredSync":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopped.set()

    def status(self) -> dict[str, Any]:
        return dict(self._status)

    def _run(self) -> None:
        while not self.stopped.wait(self.interval):
            try:
                self.tick()
            except Exception as exc:  # noqa: BLE001 - brokers down, a tool failing: the next pass retries
                log.warning("declared topics and users: %s", exc)
                self._failed = True
                self._status = {**self._status, "state": "error", "errors": [str(exc)], "checked_at": self.clock()}

    # --- one pass ------------------------------------------------------------------------------

    def tick(self) -> bool:
        """One pass when one is due; True when it ran."""
        s = self.state()
        declared, deleting = declared_of(s.spec), deleting_of(s.properties)
        names = {"topics": sorted(declared.topics), "users": sorted(declared.users),
                 "deleting": {"topics": sorted(deleting.topics), "users": sorted(deleting.users)}}
        if not (declared.topics or declared.users or deleting):
            self._status = {"state": "nothing declared", "config_id": s.config_id, **names}
            self._synced = s.config_id
            return False
        now = self.clock()
        since = now - self._last
        # a failed pass is retried after retry_s, not every interval: each pass may start a JVM (quotas)
        due = (s.config_id != self._synced or since >= self.recheck_s
               or (bool(deleting) or self._failed) and since >= self.retry_s)
        if not due:
            # the names as they are now (a pending deletion done since the last pass is gone)
            self._status = {**self._status, **names}
            return False
        boot = broker_endpoint(s)["bootstrap_servers"]
        if not boot or not any(r.serving for r in s.tasks.values() if r.kind == "broker"):
            self._status = {"state": "waiting for the brokers", "config_id": s.config_id, **names}
            return False
        self._last = now
        admin = self._client(boot)
        errors: list[str] = []
        view = self._view(s, admin, boot, declared.topics.keys() | deleting.topics,
                          declared.users | deleting.users, errors)
        plan = plan_changes(declared, view, deleting, refresh_credentials=s.config_id != self._synced)
        applied, failed_names = [], set()
        for change in plan.changes:
            if isinstance(change, SetQuotas) and any(e.startswith("quotas:") for e in errors):
                continue  # the quotas were not read: nothing to compare with
            try:
                self._apply(s, admin, boot, change)
            except Exception as exc:  # noqa: BLE001 - KafkaException, KafkaToolsError, a password
                errors.append(f"{change}: {_kafka_reason(exc)}")
                failed_names |= _names(change)
                log.error("declared: %s failed: %s", change, _kafka_reason(exc))
                continue
            applied.append(str(change))
            log.info("declared: %s", change)
        for problem in plan.problems:
            log.warning("declared: %s", problem)
        done_topics = tuple(sorted(t for t in deleting.topics - declared.topics.keys() if t not in failed_names))
        done_users = tuple(sorted(u for u in deleting.users - declared.users if u not in failed_names))
        if not errors and (done_topics or done_users):
            self.put(DeclaredDeleted(done_topics, done_users, self.clock()))
        self._failed = bool(errors)
        if not errors:
            self._synced = s.config_id
        # "not applied": what kmf refuses to do (a replication factor, fewer partitions) stays as Kafka has it
        state = "error" if errors else "not applied" if plan.problems else "in sync"
        self._status = {"state": state, "config_id": s.config_id, "checked_at": now,
                        "applied": applied, "problems": list(plan.problems), "errors": errors, **names}
        return True

    def _client(self, boot: str) -> Any:
        # one client per bootstrap, kept: a client destroyed with a request pending can crash librdkafka
        if self._admin is None or self._admin[0] != boot:
            from confluent_kafka.admin import AdminClient
            self._admin = (boot, AdminClient({"bootstrap.servers": boot, "log_level": 0,
                                              "socket.connection.setup.timeout.ms": 5000}))
        return self._admin[1]

    def _view(self, s: State, admin: Any, boot: str, topic_names: Any, users: frozenset[str],
              errors: list[str]) -> KafkaView:
        from confluent_kafka.admin import (
            AclBindingFilter,
            AclOperation,
            AclPermissionType,
            ConfigResource,
            ConfigSource,
            ResourcePatternType,
            ResourceType,
        )
        md = admin.list_topics(timeout=TIMEOUT_S)
        topics = {}
        for name in sorted(topic_names):
            t = md.topics.get(name)
            if t is None or t.error is not None or not t.partitions:
                continue
            configs = {}
            res = ConfigResource(ResourceType.TOPIC, name)
            for key, entry in admin.describe_configs([res], request_timeout=TIMEOUT_S)[res].result().items():
                # confluent-kafka gives the source as a plain int here, not its ConfigSource enum
                source = getattr(entry.source, "value", entry.source)
                if source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value and entry.value is not None:
                    configs[key] = entry.value
            topics[name] = Topic(name, len(t.partitions), len(t.partitions[min(t.partitions)].replicas), configs)
        mechanism = s.spec.kafka.sasl.mechanism.replace("-", "_")
        have_users: set[str] = set()
        acls: set[Acl] = set()
        found: dict[str, dict[str, float]] = {}
        if users:
            described = admin.describe_user_scram_credentials(request_timeout=TIMEOUT_S).result()
            for user, desc in described.items():
                if any(str(i.mechanism).endswith(mechanism) for i in desc.scram_credential_infos):
                    have_users.add(user)
            if s.spec.kafka.sasl.authorizer:
                # None matches any name, principal and host (the stubs say str; librdkafka takes NULL)
                anything: Any = None
                everything = AclBindingFilter(ResourceType.ANY, anything, ResourcePatternType.ANY, anything,
                                              anything, AclOperation.ANY, AclPermissionType.ANY)
                for b in admin.describe_acls(everything, request_timeout=TIMEOUT_S).result():
                    kind, _, name = b.principal.partition(":")
                    if kind == "User" and name in users:
                        acls.add(_acl_of(name, b))
            try:
                found = {u: q for u, q in quotas.describe_user_quotas(self.tools(s), boot).items() if u in users}
            except Exception as exc:  # noqa: BLE001 - no Java, no tools: the rest is still applied
                errors.append(f"quotas: not read ({exc})")
        return KafkaView(topics, frozenset(have_users), frozenset(acls), found)

    def _apply(self, s: State, admin: Any, boot: str, change: Change) -> None:
        from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, NewPartitions, NewTopic
        if isinstance(change, CreateTopic):
            t = change.topic
            rf = -1 if t.replication is None else t.replication  # -1: the brokers' default (plan_changes sets it)
            admin.create_topics([NewTopic(t.name, t.partitions, rf, config=dict(t.configs))],
                                request_timeout=TIMEOUT_S)[t.name].result(TIMEOUT_S)
        elif isinstance(change, AddPartitions):
            admin.create_partitions([NewPartitions(change.topic, change.total)],
                                    request_timeout=TIMEOUT_S)[change.topic].result(TIMEOUT_S)
        elif isinstance(change, AlterTopicConfigs):
            entries = [ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET) for k, v in change.to_set.items()]
            entries += [ConfigEntry(k, None, incremental_operation=AlterConfigOpType.DELETE) for k in change.to_delete]
            res = ConfigResource("TOPIC", change.topic, incremental_configs=entries)
            admin.incremental_alter_configs([res])[res].result(TIMEOUT_S)
        elif isinstance(change, DeleteTopic):
            admin.delete_topics([change.topic], request_timeout=TIMEOUT_S)[change.topic].result(TIMEOUT_S)
        elif isinstance(change, UpsertCredential):
            user = next(u for u in s.spec.users if u.name == change.user)
            code, body = security.create_user(boot, s.spec.kafka.sasl.mechanism, user.name, read_password(user),
                                              admin=lambda _boot: admin)
            if code != 200:
                raise RuntimeError(body.get("error", body))
        elif isinstance(change, DeleteCredential):
            code, body = security.delete_user(boot, s.spec.kafka.sasl.mechanism, change.user, admin=lambda _boot: admin)
            if code not in (200, 404):
                raise RuntimeError(body.get("error", body))
        elif isinstance(change, CreateAcls):
            for fut in admin.create_acls([_binding(a) for a in change.acls], request_timeout=TIMEOUT_S).values():
                fut.result(TIMEOUT_S)
        elif isinstance(change, DeleteAcls):
            for fut in admin.delete_acls([_binding(a, exact=True) for a in change.acls],
                                         request_timeout=TIMEOUT_S).values():
                fut.result(TIMEOUT_S)
        elif isinstance(change, SetQuotas):
            quotas.alter_user_quotas(self.tools(s), boot, change.user, change.to_set, change.to_delete)
        else:  # pragma: no cover - every Change is handled above
            raise TypeError(change)


def _names(change: Change) -> set[str]:
    if isinstance(change, (CreateAcls, DeleteAcls)):
        return {a.user for a in change.acls}
    if isinstance(change, CreateTopic):
        return {change.topic.name}
    name = getattr(change, "topic", None) or getattr(change, "user", None)
    return {name} if isinstance(name, str) else set()


def _acl_of(user: str, b: Any) -> Acl:
    resource = {v: k for k, v in _RESOURCE.items()}.get(b.restype.name, b.restype.name.lower())
    return Acl(user, resource, b.name, b.resource_pattern_type.name.lower(), b.operation.name.lower(),
               b.permission_type.name.lower(), b.host)


def _binding(a: Acl, exact: bool = False) -> Any:
    from confluent_kafka.admin import (
        AclBinding,
        AclBindingFilter,
        AclOperation,
        AclPermissionType,
        ResourcePatternType,
        ResourceType,
    )
    cls = AclBindingFilter if exact else AclBinding
    return cls(ResourceType[_RESOURCE[a.resource_type]], a.name, ResourcePatternType[a.pattern.upper()],
               f"User:{a.user}", a.host, AclOperation[a.operation.upper()], AclPermissionType[a.permission.upper()])
