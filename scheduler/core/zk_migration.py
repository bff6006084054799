"""ZooKeeper → KRaft migration of a Kafka 3.9 service: the phases, and how each pod's task is
rendered in each (pure). Kafka's documented procedure (docs/kraft-migration-research.md), driven
by one stored property, ``migration.phase``:

1. ``cluster-id``: accepted; the shell reads the ZooKeeper cluster's id (``<chroot>/cluster/id``):
   the controllers must be formatted with it. The running spec is still the ZooKeeper-mode one.
2. ``controllers``: the target spec (KRaft, dedicated controllers) adopted; its controller pods
   launch in migration mode (``zookeeper.metadata.migration.enable``, the brokers' ZooKeeper);
   the brokers keep their ZooKeeper-mode task, so nothing of theirs rolls.
3. ``brokers-migrating``: every controller serves: each broker rolls into migration mode (it
   learns the quorum). Once the last one registered, the active controller copies the metadata
   from ZooKeeper; Kafka's ``/migration`` znode then holds the KRaft offset it copied up to.
4. ``brokers-kraft``: the copy is done (seen in ``/migration``): each broker rolls to a KRaft
   broker on its data as it is (node id = broker id).
5. ``finalize``: every broker is a KRaft broker: the controllers roll without migration mode, and
   the first one so activated finalises (no more writes to ZooKeeper; no way back after it).
6. ``done``: every controller rolled. Kafka's data under its ZooKeeper chroot is left as it is.

Each roll is the ordinary rolling update (one pod at a time through the stop gate): a phase only
changes what the pods' tasks would be launched with, so their fingerprints change and the roll
follows. The advancing (zk_migration_plan) waits for every pod of the phase to run its new
rendering and serve."""
from __future__ import annotations

from typing import Mapping

from scheduler.core.pods import PodDef

PHASE = "migration.phase"
TARGET = "migration.target"  # the KRaft spec (its stored JSON), adopted once the cluster id is known
PHASES = ("cluster-id", "controllers", "brokers-migrating", "brokers-kraft", "finalize", "done")
DONE = "done"


def phase(props: Mapping[str, str]) -> str | None:
    """The migration's phase (None: no migration ever started)."""
    return props.get(PHASE)


def active(props: Mapping[str, str]) -> bool:
    """Whether a migration is under way (started and not done)."""
    ph = phase(props)
    return ph is not None and ph != DONE


def rendering(props: Mapping[str, str], pod: PodDef, mode: str) -> tuple[str, str | None]:
    """(the mode `pod`'s task runs in, its `BrokerTask.migration` marker) now; `mode` is the
    spec's (what every pod runs outside a migration)."""
    ph = phase(props)
    if ph is None or ph == DONE:
        return mode, None
    if pod.is_controller:
        return "kraft", ("controller" if ph in ("cluster-id", "controllers", "brokers-migrating", "brokers-kraft")
                         else None)
    if ph in ("cluster-id", "controllers"):
        return "zookeeper", None
    if ph == "brokers-migrating":
        return "zookeeper", "zk-broker"
    return "kraft", None


def next_phase(ph: str) -> str:
    return PHASES[PHASES.index(ph) + 1]
