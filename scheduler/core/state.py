"""The scheduler's state: task records by pod, service properties, and what is in flight.

Records are stored in ZooKeeper as the JSON of `TaskRecord.to_json` (kind ``tasks``, key = pod).
`State` is immutable; `decide` returns a new one per event (dict copies are cheap at 10,000 pods).
"""
from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any, Mapping

import attrs

from config import ServiceSpec
from kmfwire.task_states import ENDED
from scheduler.core.events import KafkaHealth
from scheduler.core.outcomes import Outcome

if TYPE_CHECKING:
    from scheduler.core.artifacts import Served  # which imports this module

TERMINAL = ENDED  # the ended task states, under the name the core uses (statuses, recovery)


class Goal(enum.StrEnum):
    """What the scheduler wants of a pod's task (str-valued: stored records keep their JSON)."""

    RUNNING = "RUNNING"
    GONE = "GONE"  # killed and then forgotten: uninstall, or a pod the config no longer has


class KillReason(enum.StrEnum):
    """Why the scheduler killed a task: it decides what its terminal status leads to."""

    RESTART = "restart"  # `pod restart`: relaunch in place at once
    UPDATE = "update"  # rolling update: relaunch in place at once, with the new config
    REPLACE = "replace"  # `pod replace`: place anew, the old reservation released
    SCALE = "scale"  # the pod left the config: the record goes (goal GONE)
    UNINSTALL = "uninstall"  # the service goes (goal GONE)
    MAINTENANCE = "maintenance"  # Mesos maintenance of its agent: relaunched once the window ends


class PodKind(enum.StrEnum):
    BROKER = "broker"
    STREAM = "stream"


@attrs.frozen
class Reservation:
    """Resources a broker owns on one agent: kept across relaunches in place."""

    agent_id: str
    hostname: str
    persistence_id: str
    resources: tuple[Mapping[str, Any], ...]  # v1 JSON ("pre" format), volume included
    broker_port: int | None = None
    controller_port: int | None = None
    attributes: Mapping[str, str] = attrs.field(factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"agent_id": self.agent_id, "hostname": self.hostname,
                "persistence_id": self.persistence_id, "resources": list(self.resources),
                "broker_port": self.broker_port, "controller_port": self.controller_port,
                "attributes": dict(self.attributes)}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> "Reservation":
        return cls(doc["agent_id"], doc["hostname"], doc["persistence_id"], tuple(doc["resources"]),
                   doc.get("broker_port"), doc.get("controller_port"), dict(doc.get("attributes") or {}))


@attrs.frozen
class TaskRecord:
    """One pod's task as the scheduler knows it; the record outlives its tasks (a relaunch keeps
    the pod's identity, reservation and counters).

    Its life (`reservation`, `task_id`, `state`) and the decisions that move it::

                 offer fits (broker)                  offer of the reservation
      (none) ----------------------> RESERVED ---------------------------------+
         |       offer fits (stream)                                           v
         +-------------------------------------------------------------> LAUNCHED
                                                                  (task_id set, state None)
                                                                               | status
                                                                               v
               kill_reason set (restart, update, replace,    ACTIVE: STAGING, STARTING,
               scale, uninstall) and a KILL sent ----------> RUNNING (ready or not),
                                                             KILLING, UNREACHABLE
                                                                               | terminal status
                                                                               v
                                                             ENDED (TERMINAL states)
        kill_reason restart / update ----> LAUNCHED again at once (in place for a broker)
        a failure (no kill_reason) ------> LAUNCHED again after `backoff_until`
        replace, TASK_GONE, or failed for permanent_failure_timeout_s
                                     ----> reservation released; placed anew (any agent)
        goal GONE (scale, uninstall) ----> the record is deleted, its reservation released

    TASK_UNREACHABLE stays active and starts `failed_since` (as a lost agent does): it counts
    as a failure only for the permanent-failure timeout. TASK_LOST and TASK_UNKNOWN end a task
    that may still come back with its agent: a live status of it then makes it ACTIVE again.
    """

    pod: str
    kind: PodKind
    goal: Goal = Goal.RUNNING
    task_id: str | None = None
    agent_id: str | None = None
    hostname: str | None = None
    state: str | None = None
    message: str = ""
    ready: bool = False
    healthy: bool | None = None
    # a stream app's state as its executor last said (Kafka Streams' names, e.g. RUNNING,
    # REBALANCING, ERROR; kmfwire.app_state); None for brokers, unknown, or an ended task
    app_state: str | None = None
    reservation: Reservation | None = None
    fingerprint: str | None = None
    launches: int = 0
    attempts: int = 0
    backoff_until: float = 0.0
    failed_since: float | None = None
    # when its executor first said its data volume was full (kmfwire.task_states.VOLUME_FULL),
    # until it is ready again: a failure after that (a JVM that dies of the full volume in another
    # way, or once the space is back) must not move it off the volume that holds its data
    volume_full_since: float | None = None
    kill_reason: KillReason | None = None
    launched_at: float | None = None
    ready_at: float | None = None  # when its executor last said it became ready
    ports: tuple[int, ...] = ()
    reservation_misses: int = 0  # offers of its agent that did not hold the reservation

    @property
    def serving(self) -> bool:
        """Ready as its executor last said, and running as Mesos last said (not unreachable)."""
        return self.ready and self.state == "TASK_RUNNING"

    @property
    def active(self) -> bool:
        """A task is out there (or may be: launched and not yet heard of)."""
        return self.task_id is not None and self.state not in TERMINAL

    def to_json(self) -> dict[str, Any]:
        doc = attrs.asdict(self, recurse=False)
        doc["reservation"] = self.reservation.to_json() if self.reservation else None
        doc["ports"] = list(self.ports)
        for name in ("app_state", "volume_full_since"):
            if doc[name] is None:
                del doc[name]  # the stored form of before the field
        return doc

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> "TaskRecord":
        fields = {f.name for f in attrs.fields(cls)}
        unknown = set(doc) - fields
        if unknown or "pod" not in doc or "kind" not in doc:
            raise ValueError(f"task record: unknown fields {sorted(unknown)}" if unknown
                             else "task record: pod and kind are required")
        values = dict(doc)
        if values.get("reservation"):
            values["reservation"] = Reservation.from_json(values["reservation"])
        values["ports"] = tuple(values.get("ports") or ())
        # the stored strings become the enums, whose values they are (a value no enum has fails)
        values["kind"] = PodKind(values["kind"])
        values["goal"] = Goal(values.get("goal", Goal.RUNNING))
        if values.get("kill_reason") is not None:
            values["kill_reason"] = KillReason(values["kill_reason"])
        return cls(**values)


@attrs.frozen
class State:
    spec: ServiceSpec
    config_id: str
    framework_id: str | None = None
    tasks: Mapping[str, TaskRecord] = attrs.field(factory=dict)
    properties: Mapping[str, str] = attrs.field(factory=dict)
    suppressed: bool = False
    connected: bool = False
    # pod → why the last offer round did not place it (GET /v1/pod/{name}/info)
    last_placement: Mapping[str, str] = attrs.field(factory=dict)
    kafka: KafkaHealth | None = None  # the last Kafka health the shell reported
    # persistence id → agent id of reservations to release (replaced or removed pods)
    releasing: Mapping[str, str] = attrs.field(factory=dict)
    uninstalling: bool = False
    # explicit reconciliation: task ids not answered yet, when to ask again, and the interval
    reconcile_pending: frozenset[str] = frozenset()
    reconcile_next: float = 0.0
    reconcile_interval: float = 4.0
    last_implicit: float = 0.0
    last_roll_kill: float = 0.0  # Kafka health older than the last rolling restart is stale
    served: Served | None = None  # what this scheduler serves (fixed at start)
    # pinned Kafka version → the modes it supports, as the shell read them at start (None: not
    # known, the rule is skipped); the core reads no file
    kafka_versions: Mapping[str, tuple[str, ...]] | None = None
    # pod → the outcome of the last offer round that considered it (GET /v1/pod/{name}/placement);
    # an explanation for operators, not persisted and never read by a decision
    placement: Mapping[str, Outcome] = attrs.field(factory=dict)
    # Mesos maintenance: inverse offer id → agent id of the inverse offers not answered yet (they
    # are accepted once no broker runs on the agent); the holds themselves are properties
    # ``maintenance.<pod>`` (scheduler.core.maintenance)
    inverse_offers: Mapping[str, str] = attrs.field(factory=dict)
    maintenance_waits: Mapping[str, str] = attrs.field(factory=dict)  # held pod → why it has not stopped yet
    # metadata.version finalisation (scheduler.core.kafka_features): when the shell was last asked
    # (None: no step pending) and why the last step failed
    features_asked_at: float | None = None
    features_error: str | None = None
    # removed brokers' KRaft registrations (scheduler.core.broker_registrations): when the shell was
    # last asked to unregister them (None: nothing asked) and why the last ask failed
    unregister_asked_at: float | None = None
    unregister_error: str | None = None
    # lag autoscaling (scheduler.core.app_autoscale), not persisted: app → since when its lag has
    # asked for fewer instances, and what its last evaluation said (the autoscale plan shows it)
    autoscale_low_since: Mapping[str, float] = attrs.field(factory=dict)
    autoscale_notes: Mapping[str, str] = attrs.field(factory=dict)
    # the stream apps' consumer groups in the last lag sample (group → app_autoscale.GroupLag) and
    # when it was taken: what an app's rolling update waits on (rolling.app_group_blocker)
    app_groups: Mapping[str, Any] = attrs.field(factory=dict)
    app_groups_at: float | None = None
    # (group, topic, partition) → commit_watch.Progress, not persisted: how long each partition of
    # a stream app's group has gone without its committed offset moving
    commit_progress: Mapping[tuple[str, str, int], Any] = attrs.field(factory=dict)
    # what the ZooKeeper → KRaft migration's phase waits for (zk_migration_plan), not persisted
    migration_note: str | None = None
    # each sampled partition's (time, end offset) points (scheduler.core.time_lag), not kept in ZooKeeper
    end_offsets_seen: Mapping[tuple[str, int], tuple[tuple[float, int], ...]] = attrs.field(factory=dict)

    def by_task_id(self, task_id: str) -> TaskRecord | None:
        pod = task_id.split("__", 1)[0]
        rec = self.tasks.get(pod)
        return rec if rec is not None and rec.task_id == task_id else None
