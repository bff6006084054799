"""What to change in Kafka so that it holds the declared topics and users: a pure diff.

`plan_changes(declared, view, deleting, refresh)` compares the service's declared topics and
users (`Declared`, from the spec) with Kafka's current view of them (`KafkaView`, read by
scheduler/shell/declared_sync.py) and returns the changes as data, plus what it refuses to do
(a topic's replication factor, fewer partitions). Only names that are declared, or that were
declared and are being deleted (`deleting`), are ever looked at: a topic or user kmf was never
told about is not in any change. Applying the changes to the view gives the declared view
(tests/unit/scheduler_core/test_declared.py checks this with hypothesis).
"""
from __future__ import annotations

from typing import Mapping

import attrs

from config import ServiceSpec


@attrs.frozen(order=True)
class Acl:
    """One Kafka ACL binding of a user (Kafka keeps one per operation)."""

    user: str
    resource_type: str  # topic, group, cluster, transactional_id
    name: str
    pattern: str  # literal, prefixed
    operation: str  # read, write, ...
    permission: str  # allow, deny
    host: str = "*"

    def __str__(self) -> str:
        pattern = "" if self.pattern == "literal" else f" ({self.pattern})"
        return (f"{self.permission} User:{self.user} {self.operation} on {self.resource_type} "
                f"{self.name!r}{pattern} from {self.host}")


@attrs.frozen
class Topic:
    name: str
    partitions: int
    # Kafka's view: the topic's; declared: None when the YAML gives none (the service's default
    # when the topic is created, never compared afterwards: a broker scale-out that raises the
    # default does not make existing topics "wrong")
    replication: int | None
    configs: Mapping[str, str] = attrs.field(factory=dict)  # set on the topic itself (not defaults)


@attrs.frozen
class Declared:
    """The declared objects, defaults resolved; users' passwords stay where the spec says."""

    topics: Mapping[str, Topic] = attrs.field(factory=dict)
    users: frozenset[str] = frozenset()
    acls: frozenset[Acl] = frozenset()
    quotas: Mapping[str, Mapping[str, float]] = attrs.field(factory=dict)  # user → key → value
    default_replication: int = 1  # the service's (kafka.replication_factor), for new topics


@attrs.frozen
class KafkaView:
    """What Kafka holds of the names concerned: topics, users with a SCRAM credential of the
    service's mechanism, their ACLs and their quotas."""

    topics: Mapping[str, Topic] = attrs.field(factory=dict)
    users: frozenset[str] = frozenset()
    acls: frozenset[Acl] = frozenset()
    quotas: Mapping[str, Mapping[str, float]] = attrs.field(factory=dict)


@attrs.frozen
class Deleting:
    """Topics and users removed from the spec with the operator's confirmation, not yet gone."""

    topics: frozenset[str] = frozenset()
    users: frozenset[str] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.topics or self.users)


# --- changes -------------------------------------------------------------------------------------

@attrs.frozen
class CreateTopic:
    topic: Topic

    def __str__(self) -> str:
        return f"create topic {self.topic.name} ({self.topic.partitions} partitions, replication {self.topic.replication})"


@attrs.frozen
class AddPartitions:
    topic: str
    total: int

    def __str__(self) -> str:
        return f"topic {self.topic}: partitions → {self.total}"


@attrs.frozen
class AlterTopicConfigs:
    topic: str
    to_set: Mapping[str, str]
    to_delete: tuple[str, ...]

    def __str__(self) -> str:
        parts = [f"{k}={v}" for k, v in sorted(self.to_set.items())] + [f"{k} removed" for k in self.to_delete]
        return f"topic {self.topic}: {', '.join(parts)}"


@attrs.frozen
class DeleteTopic:
    topic: str

    def __str__(self) -> str:
        return f"delete topic {self.topic}"


@attrs.frozen
class UpsertCredential:
    user: str

    def __str__(self) -> str:
        return f"set the SCRAM credential of user {self.user}"


@attrs.frozen
class DeleteCredential:
    user: str

    def __str__(self) -> str:
        return f"delete the SCRAM credential of user {self.user}"


@attrs.frozen
class CreateAcls:
    acls: tuple[Acl, ...]

    def __str__(self) -> str:
        return "add ACLs: " + "; ".join(map(str, self.acls))


@attrs.frozen
class DeleteAcls:
    acls: tuple[Acl, ...]

    def __str__(self) -> str:
        return "remove ACLs: " + "; ".join(map(str, self.acls))


@attrs.frozen
class SetQuotas:
    user: str
    to_set: Mapping[str, float]
    to_delete: tuple[str, ...]

    def __str__(self) -> str:
        parts = [f"{k}={v:.15g}" for k, v in sorted(self.to_set.items())] + [f"{k} removed" for k in self.to_delete]
        return f"user {self.user} quotas: {', '.join(parts)}"


Change = (CreateTopic | AddPartitions | AlterTopicConfigs | DeleteTopic | UpsertCredential | DeleteCredential
          | CreateAcls | DeleteAcls | SetQuotas)


@attrs.frozen
class Plan:
    changes: tuple[Change, ...] = ()
    problems: tuple[str, ...] = ()  # what kmf will not do, for the operator to see


# --- the spec side -------------------------------------------------------------------------------

def declared_of(spec: ServiceSpec) -> Declared:
    """The spec's declared objects with the service's defaults filled in."""
    topics = {t.name: Topic(t.name, t.partitions, t.replication, dict(t.configs)) for t in spec.topics}
    acls = frozenset(Acl(u.name, a.resource_type, a.resource_name, a.pattern, op, a.permission, a.host)
                     for u in spec.users for a in u.acls for op in a.operations)
    return Declared(topics, frozenset(u.name for u in spec.users), acls,
                    {u.name: u.quotas.values() for u in spec.users}, spec.kafka.replication_factor)


def deleting_of(properties: Mapping[str, str]) -> Deleting:
    """The pending deletions the core keeps in the `DELETING` property (one name a line)."""
    topics, users = set(), set()
    for line in properties.get(DELETING, "").splitlines():
        kind, _, name = line.partition(" ")
        if kind == "topic" and name:
            topics.add(name)
        elif kind == "user" and name:
            users.add(name)
    return Deleting(frozenset(topics), frozenset(users))


def deleting_text(deleting: Deleting) -> str:
    return "\n".join([*(f"topic {t}" for t in sorted(deleting.topics)), *(f"user {u}" for u in sorted(deleting.users))])


DELETING = "declared.deleting"


# --- the diff ------------------------------------------------------------------------------------

def plan_changes(declared: Declared, view: KafkaView, deleting: Deleting = Deleting(),
                 refresh_credentials: bool = False) -> Plan:
    """Pure: the changes that make Kafka hold `declared`, and delete what `deleting` names.

    Order matters to Kafka and to the people reading it: topics first, then credentials, ACLs
    and quotas, deletions last. A declared name is never deleted, even if it is also in
    `deleting` (declared again after its removal). ``refresh_credentials`` sets every declared
    user's credential again (after a config update or a restart: a password file may have a new
    password, which Kafka cannot be asked about)."""
    changes: list[Change] = []
    problems: list[str] = []
    for name in sorted(declared.topics):
        want, have = declared.topics[name], view.topics.get(name)
        if have is None:
            changes.append(CreateTopic(attrs.evolve(want, replication=want.replication or declared.default_replication)))
            continue
        if want.replication is not None and have.replication != want.replication:
            problems.append(f"topic {name}: replication is {have.replication} in Kafka, {want.replication} declared; "
                            "kmf does not change it (move replicas with Kafka's reassignment, see kmf rebalance)")
        if want.partitions > have.partitions:
            changes.append(AddPartitions(name, want.partitions))
        elif want.partitions < have.partitions:
            problems.append(f"topic {name}: {have.partitions} partitions in Kafka, {want.partitions} declared; "
                            "Kafka cannot remove partitions")
        to_set = {k: v for k, v in want.configs.items() if have.configs.get(k) != v}
        to_delete = tuple(sorted(set(have.configs) - set(want.configs)))
        if to_set or to_delete:
            changes.append(AlterTopicConfigs(name, to_set, to_delete))
    for name in sorted(declared.users):
        if refresh_credentials or name not in view.users:
            changes.append(UpsertCredential(name))
    concerned = declared.users | deleting.users
    have_acls = {a for a in view.acls if a.user in concerned}
    want_acls = set(declared.acls)
    if want_acls - have_acls:
        changes.append(CreateAcls(tuple(sorted(want_acls - have_acls))))
    stale = {a for a in have_acls - want_acls if a.user in declared.users}
    if stale:
        changes.append(DeleteAcls(tuple(sorted(stale))))
    for name in sorted(declared.users):
        want_q, have_q = declared.quotas.get(name, {}), view.quotas.get(name, {})
        q_set = {k: v for k, v in want_q.items() if have_q.get(k) != v}
        q_delete = tuple(sorted(set(have_q) - set(want_q)))
        if q_set or q_delete:
            changes.append(SetQuotas(name, q_set, q_delete))
    for name in sorted(deleting.topics - set(declared.topics)):
        if name in view.topics:
            changes.append(DeleteTopic(name))
    gone_users = sorted(deleting.users - declared.users)
    gone_acls = tuple(sorted(a for a in have_acls if a.user in gone_users))
    if gone_acls:
        changes.append(DeleteAcls(gone_acls))
    for name in gone_users:
        if view.quotas.get(name):
            changes.append(SetQuotas(name, {}, tuple(sorted(view.quotas[name]))))
        if name in view.users:
            changes.append(DeleteCredential(name))
    return Plan(tuple(changes), tuple(problems))
