"""Declared Kafka objects: the `topics:` and `users:` of a service spec, their rules and the
broker properties of the ACL authorizer.

kmf reconciles Kafka with these (scheduler/core/declared.py decides, scheduler/shell/declared_sync.py
applies). Passwords are never in the YAML: a user names a file or an environment variable of the
scheduler's, read only when the credential is sent to Kafka.
"""
from __future__ import annotations

import os
import re
from typing import Literal, Mapping

import attrs

RESOURCE_TYPES = ("topic", "group", "cluster", "transactional_id")
OPERATIONS = ("all", "read", "write", "create", "delete", "alter", "describe", "cluster_action",
              "describe_configs", "alter_configs", "idempotent_write")
CLUSTER_NAME = "kafka-cluster"  # the one cluster resource's name, as Kafka spells it
STANDARD_AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
# Who may do anything with the authorizer on. Brokers and controllers talk to each other, and the
# scheduler administers Kafka, over the PLAINTEXT (or SSL without client certificates) listeners,
# where Kafka's principal is ANONYMOUS; ACLs bind the clients of the SASL listener.
SUPER_USERS = "User:ANONYMOUS"
AUTHORIZER_PROPERTIES = ("authorizer.class.name", "super.users", "allow.everyone.if.no.acl.found")
TOPIC_NAME = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
USER_NAME = re.compile(r"^[A-Za-z0-9._@-]{1,128}$")  # as scheduler/api/security.py takes them
MIN_PASSWORD, MAX_PASSWORD = 8, 1024
MAX_PARTITIONS = 100_000

Issue = tuple[str, str]


@attrs.frozen
class TopicSpec:
    name: str
    partitions: int = 1
    replication: int | None = None  # None: the service's (kafka.replication_factor)
    configs: dict[str, str] = attrs.field(factory=dict)


@attrs.frozen
class AclSpec:
    """Operations a user may (or may not) do on one resource; ``name`` is a topic, group or
    transactional id, or the start of several (``pattern: prefixed``); "*" is every one."""

    resource_type: Literal["topic", "group", "cluster", "transactional_id"]
    operations: tuple[Literal["all", "read", "write", "create", "delete", "alter", "describe", "cluster_action",
                              "describe_configs", "alter_configs", "idempotent_write"], ...]
    name: str = ""  # required but for `cluster`, whose one resource is kafka-cluster
    pattern: Literal["literal", "prefixed"] = "literal"
    permission: Literal["allow", "deny"] = "allow"
    host: str = "*"

    @property
    def resource_name(self) -> str:
        return CLUSTER_NAME if self.resource_type == "cluster" and not self.name else self.name


@attrs.frozen
class QuotaSpec:
    """Kafka's client quotas of a user (unset: no quota of that kind)."""

    producer_byte_rate: int | None = None
    consumer_byte_rate: int | None = None
    request_percentage: float | None = None

    def values(self) -> dict[str, float]:
        return {k: float(v) for k, v in attrs.asdict(self).items() if v is not None}


@attrs.frozen
class UserSpec:
    name: str
    # one of the two: a file on the scheduler's host, or an environment variable of the scheduler
    password_file: str | None = None
    password_env: str | None = None
    acls: tuple[AclSpec, ...] = ()
    quotas: QuotaSpec = QuotaSpec()


def authorizer_properties(mode: str, sasl_enabled: bool, authorizer: bool) -> dict[str, str]:
    """The broker (and controller) properties of Kafka's ACL authorizer, empty when it is off.
    Without an ACL Kafka refuses a principal (``allow.everyone.if.no.acl.found=false``)."""
    if not (authorizer and sasl_enabled and mode == "kraft"):
        return {}
    return {"authorizer.class.name": STANDARD_AUTHORIZER, "super.users": SUPER_USERS,
            "allow.everyone.if.no.acl.found": "false"}


def read_password(user: UserSpec, env: Mapping[str, str] | None = None) -> str:
    """The user's password from its file (one trailing newline dropped) or environment variable;
    ValueError names the user and where it looked, never the value."""
    where: Mapping[str, str] = os.environ if env is None else env
    if user.password_file:
        try:
            with open(user.password_file, encoding="utf-8") as f:
                text = f.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"user {user.name!r}: cannot read password_file {user.password_file!r}: {exc}") from None
        source = f"password_file {user.password_file!r}"
    elif user.password_env:
        text = where.get(user.password_env, "")
        source = f"password_env {user.password_env}"
    else:
        raise ValueError(f"user {user.name!r} has no password_file or password_env")
    password = text[:-1] if text.endswith("\n") else text
    password = password[:-1] if password.endswith("\r") else password
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise ValueError(f"user {user.name!r}: the password in {source} must be {MIN_PASSWORD} to "
                         f"{MAX_PASSWORD} characters")
    return password


def validate_declared(topics: tuple[TopicSpec, ...], users: tuple[UserSpec, ...], *, brokers: int, mode: str,
                      sasl_enabled: bool, authorizer: bool, overrides: dict[str, str],
                      check_files: bool = False) -> list[Issue]:
    """Every broken rule of the declared topics and users (and the authorizer option)."""
    out: list[Issue] = []
    if authorizer and not sasl_enabled:
        out.append(("kafka.sasl.authorizer", "needs kafka.sasl.enabled: true (ACLs name SASL users)"))
    if authorizer and mode != "kraft":
        out.append(("kafka.sasl.authorizer", "is supported in KRaft mode only (Kafka's StandardAuthorizer); "
                                             "ZooKeeper mode's AclAuthorizer is not configured by kmf"))
    if authorizer:
        for key in AUTHORIZER_PROPERTIES:
            if key in overrides:
                out.append((f"kafka.overrides.{key}", "kmf sets this itself when kafka.sasl.authorizer is on"))
    seen: set[str] = set()
    for i, t in enumerate(topics):
        out += _topic(f"topics[{i}]", t, brokers)
        if t.name in seen:
            out.append((f"topics[{i}].name", f"{t.name!r} is declared twice"))
        seen.add(t.name)
    if users and not sasl_enabled:
        out.append(("users", "SCRAM users need kafka.sasl.enabled: true"))
    seen = set()
    for i, u in enumerate(users):
        out += _user(f"users[{i}]", u, authorizer, check_files)
        if u.name in seen:
            out.append((f"users[{i}].name", f"{u.name!r} is declared twice"))
        seen.add(u.name)
    return out


def _topic(path: str, t: TopicSpec, brokers: int) -> list[Issue]:
    out: list[Issue] = []
    if not TOPIC_NAME.match(t.name) or t.name in (".", ".."):
        out.append((f"{path}.name", f"{t.name!r} is not a valid topic name (1 to 249 letters, digits, . _ -)"))
    elif t.name.startswith("__"):
        out.append((f"{path}.name", f"{t.name!r}: names starting with __ are Kafka's internal topics"))
    if not 1 <= t.partitions <= MAX_PARTITIONS:
        out.append((f"{path}.partitions", f"must be >= 1 and <= {MAX_PARTITIONS}, got {t.partitions}"))
    if t.replication is not None and not 1 <= t.replication <= brokers:
        out.append((f"{path}.replication", f"must be between 1 and the broker count {brokers}, got {t.replication}"))
    for key in t.configs:
        if not key or any(c.isspace() for c in key):
            out.append((f"{path}.configs", f"{key!r} is not a topic setting name"))
    return out


def _user(path: str, u: UserSpec, authorizer: bool, check_files: bool) -> list[Issue]:
    out: list[Issue] = []
    if not USER_NAME.match(u.name):
        out.append((f"{path}.name", f"{u.name!r} must be 1 to 128 letters, digits or . _ @ -"))
    if bool(u.password_file) == bool(u.password_env):
        out.append((f"{path}.password_file", "give exactly one of password_file and password_env "
                                             "(the password itself is never written in the YAML)"))
    elif check_files:
        try:
            read_password(u)
        except ValueError as exc:
            out.append((f"{path}.password_file" if u.password_file else f"{path}.password_env",
                        str(exc).split(": ", 1)[1]))
    if u.acls and not authorizer:
        out.append((f"{path}.acls", "ACLs need Kafka's authorizer: set kafka.sasl.authorizer: true"))
    for j, acl in enumerate(u.acls):
        where = f"{path}.acls[{j}]"
        if not acl.operations:
            out.append((f"{where}.operations", "must name at least one operation"))
        if acl.resource_type == "cluster":
            if acl.name not in ("", CLUSTER_NAME):
                out.append((f"{where}.name", f"the cluster resource is {CLUSTER_NAME!r} (or leave name out), "
                                             f"got {acl.name!r}"))
            if acl.pattern != "literal":
                out.append((f"{where}.pattern", "the cluster resource takes pattern: literal"))
        elif not acl.name:
            out.append((f"{where}.name", f"a {acl.resource_type} ACL needs a name (\"*\" for every one)"))
        elif acl.name == "*" and acl.pattern == "prefixed":
            out.append((f"{where}.pattern", "\"*\" is already every name: use pattern: literal"))
        if not acl.host:
            out.append((f"{where}.host", "must be an address or \"*\""))
    q = u.quotas
    for field in ("producer_byte_rate", "consumer_byte_rate"):
        value = getattr(q, field)
        if value is not None and value < 1:
            out.append((f"{path}.quotas.{field}", f"must be >= 1 (bytes per second), got {value}"))
    if q.request_percentage is not None and not q.request_percentage > 0:
        out.append((f"{path}.quotas.request_percentage", f"must be more than 0, got {q.request_percentage}"))
    return out


def removed(old_topics: tuple[TopicSpec, ...], old_users: tuple[UserSpec, ...],
            new_topics: tuple[TopicSpec, ...], new_users: tuple[UserSpec, ...]) -> tuple[list[str], list[str]]:
    """Topics and users declared in the old spec and not in the new one: what an update deletes."""
    topics = sorted({t.name for t in old_topics} - {t.name for t in new_topics})
    users = sorted({u.name for u in old_users} - {u.name for u in new_users})
    return topics, users


def replication_changes(old_topics: tuple[TopicSpec, ...], new_topics: tuple[TopicSpec, ...],
                        old_default: int) -> list[str]:
    """Declared topics whose replication factor an update would change: refused, that is moving
    replicas (`kmf rebalance`), not something kmf does to a topic behind the operator's back.
    Only a replication the new file gives is compared (with the old file's, or the default the
    topic was created with): one left out is not enforced, so a new service default (more
    brokers) changes no existing topic."""
    before = {t.name: t.replication or old_default for t in old_topics}
    out = []
    for t in new_topics:
        rf = t.replication
        if rf is not None and t.name in before and before[t.name] != rf:
            out.append(f"topics.{t.name}.replication: {before[t.name]} → {rf}: changing the replication factor of "
                       "an existing topic is not done by a config update (Kafka's reassignment, see kmf rebalance)")
    return out
