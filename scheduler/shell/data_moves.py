"""Performs the core's partition moves (`Reassign`, `EndReassign`) off the decision thread.

Kafka's reassignment tool is a JVM that takes seconds to start, so the moves go through one
worker thread, in the order the core decided them. A move that fails comes back as the event
`ReassignFailed` with the tool's words; progress is not reported here: the core reads it from
Kafka's metadata (`kafka_watch`). At the end the tool's `--verify` removes the throttles it set,
and the preferred leaders are elected so that leadership spreads as the plan put it.
"""
from __future__ import annotations

import logging
import os
import queue
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Mapping

from scheduler.core import actions as act
from scheduler.core import events as ev
from scheduler.core import kafka_features
from scheduler.core.pods import desired_pods
from scheduler.core.state import State
from scheduler.core.taskinfo import bootstrap_servers
from scheduler.shell.artifacts import ArtifactFile
from scheduler.shell.kafka_tools import COMPLETE, JAVA_MISSING, KafkaTools, KafkaToolsError, Move

log = logging.getLogger(__name__)

# AdminClients whose request timed out: librdkafka may crash the process when a client is destroyed
# with a request still pending, so such a client is kept for the life of the process (rare: one
# per timed-out election)
_PENDING_CLIENTS: list[Any] = []


def tools_dir() -> Path:
    """Where the Kafka archive is unpacked for the tools: per user, shared by schedulers."""
    return Path(tempfile.gettempdir()) / f"kmf-kafka-tools-{os.getuid()}"


def _version_key(name: str) -> tuple[int, ...]:
    digits = name.removeprefix("kafka-").removesuffix(".tar.gz")
    return tuple(int(x) for x in digits.split(".") if x.isdigit())


def tools_for(files: Mapping[str, ArtifactFile], version: str, work_dir: Path | None = None) -> KafkaTools:
    """The tools of the Kafka archive this scheduler serves for `version`, or of the newest one it
    serves when that one has none (kmf's 3.9 runtime has no kafka-tools jar; the 4.x tools speak
    the same admin API to 3.9 brokers)."""
    archives = sorted((f for f in files.values() if f.name.startswith("kafka-") and f.name.endswith(".tar.gz")),
                      key=lambda f: (f.name != f"kafka-{version}.tar.gz", [-x for x in _version_key(f.name)]))
    errors = []
    for item in archives:
        try:
            return KafkaTools(item.path, work_dir or tools_dir())
        except KafkaToolsError as exc:
            errors.append(str(exc))
            if JAVA_MISSING in str(exc):
                raise
    raise KafkaToolsError("moving partitions needs Kafka's tools from a Kafka 4.x archive this scheduler serves "
                          "(executor.artifacts: served, the archive in the artifacts folder)"
                          + (f": {'; '.join(errors)}" if errors else ": it serves none"))


Job = act.Reassign | act.EndReassign | act.FinalizeFeatures | act.UnregisterBrokers


class DataMover:
    def __init__(self, tools: Callable[[State], KafkaTools], state: Callable[[], State],
                 put: Callable[[Any], None], clock: Callable[[], float] = time.time) -> None:
        self.tools = tools
        self.state = state
        self.put = put
        self.clock = clock
        self.jobs: "queue.Queue[Job | None]" = queue.Queue()
        self.thread = threading.Thread(target=self._run, name="kmf-data-moves", daemon=True)

    def start(self) -> "DataMover":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.jobs.put(None)

    def submit(self, action: Job) -> None:
        self.jobs.put(action)

    def _run(self) -> None:
        while (job := self.jobs.get()) is not None:
            try:
                self.perform(job)
            except Exception as exc:  # noqa: BLE001 - reported to the core, which stops the plan
                log.warning("%s: %s", "metadata.version" if isinstance(job, act.FinalizeFeatures)
                            else "unregistering removed brokers" if isinstance(job, act.UnregisterBrokers)
                            else "partition moves", exc)
                if isinstance(job, act.Reassign):
                    self.put(ev.ReassignFailed(str(exc), self.clock()))
                elif isinstance(job, act.FinalizeFeatures):
                    self.put(ev.KafkaFeatures(None, str(exc), self.clock()))
                elif isinstance(job, act.UnregisterBrokers):
                    self.put(ev.BrokersUnregistered(job.ids, str(exc), self.clock()))

    def perform(self, job: Job) -> None:
        state = self.state()
        boot = bootstrap_servers(state.tasks, desired_pods(state.spec))
        if not boot:
            raise KafkaToolsError("no broker address is known to reach Kafka")
        if isinstance(job, act.FinalizeFeatures):
            self._finalize(self.tools(state), boot, job.release)
            return
        if isinstance(job, act.UnregisterBrokers):
            tools = self.tools(state)
            for node_id in job.ids:
                done = tools.unregister_broker(boot, node_id)
                log.info("broker %s %s", node_id, "unregistered from the KRaft cluster (removed from the service)"
                         if done else "was not registered in the KRaft cluster any more")
            self.put(ev.BrokersUnregistered(job.ids, "", self.clock()))
            return
        moves = [Move(t, p, r) for t, p, r in job.moves]
        tools = self.tools(state)
        if isinstance(job, act.Reassign):
            log.info("moving %d partition(s) (throttle %s): %s", len(moves),
                     f"{job.throttle} B/s" if job.throttle else "none",
                     ", ".join(f"{m.topic}-{m.partition}→{list(m.replicas)}" for m in moves[:10]))
            self._report_sizes(tools, boot, state, moves)
            tools.execute(boot, moves, job.throttle or None)
            return
        states = tools.verify(boot, moves)  # removes the throttles once every move is complete
        pending = {tp: s for tp, s in states.items() if s != COMPLETE}
        if pending:
            log.warning("after the rebalance Kafka's tool still reports %d partition(s) not complete: %s",
                        len(pending), ", ".join(f"{t}-{p}: {s}" for (t, p), s in list(pending.items())[:5]))
        self._elect_preferred(boot, moves)

    def _finalize(self, tools: KafkaTools, boot: str, release: str) -> None:
        """Raise metadata.version to `release` unless Kafka has it (or a newer one) already; report
        the level Kafka then has."""
        level = tools.finalized_features(boot)["metadata.version"]
        finalised = kafka_features.release_of_level(level)  # None: Kafka never finalised one ("0", "-")
        if finalised is None or kafka_features.release(finalised) < kafka_features.release(release):
            log.info("every Kafka pod runs the target version: raising metadata.version %s to release %s",
                     level, release)
            tools.upgrade_release(boot, release)
            level = tools.finalized_features(boot)["metadata.version"]
            log.info("metadata.version is now %s", level)
        self.put(ev.KafkaFeatures(level, "", self.clock()))

    def _report_sizes(self, tools: KafkaTools, boot: str, state: State, moves: list[Move]) -> None:
        """The batch's partition sizes, for the bytes the plan shows; a failure only loses those."""
        brokers = sorted(state.kafka.brokers_in_metadata) if state.kafka is not None else []
        if not brokers:
            return
        try:
            sizes = tools.log_dir_sizes(boot, brokers)
        except (KafkaToolsError, ValueError) as exc:
            log.warning("partition sizes not known (%s); the plan shows no bytes for this batch", exc)
            return
        wanted = {m.key for m in moves}
        self.put(ev.PartitionSizes({tp: n for tp, n in sizes.items() if tp in wanted}, self.clock()))

    @staticmethod
    def _elect_preferred(boot: str, moves: list[Move]) -> None:
        from confluent_kafka import ElectionType, TopicPartition
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({"bootstrap.servers": boot, "log_level": 0})
        future = admin.elect_leaders(ElectionType.PREFERRED, [TopicPartition(m.topic, m.partition) for m in moves])
        try:
            result = future.result(timeout=30)
        except Exception as exc:  # noqa: BLE001 - leaders balance on their own later (auto.leader.rebalance)
            log.warning("electing the preferred leaders failed: %s", exc)
            if not future.done():
                _PENDING_CLIENTS.append((admin, future))
            return
        failed = {f"{tp.topic}-{tp.partition}": str(err) for tp, err in (result or {}).items()
                  if err is not None and "ELECTION_NOT_NEEDED" not in str(err)}
        if failed:
            log.warning("preferred leader election: %s", failed)
