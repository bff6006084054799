"""The leader's eye on a ZooKeeper → KRaft migration (scheduler.core.zk_migration): while one is
under way, every few seconds, it reads from Kafka's own znodes under the service's Kafka chroot
the cluster's id (``cluster/id``, what the controllers are formatted with) and whether the
controllers' metadata copy is done (``migration`` holds a KRaft offset ≥ 0 once it is), and hands
them to the core as a `MigrationObserved` event, which advances the phases."""
from __future__ import annotations

import json
import logging
import time
from typing import Any, Callable

from kazoo.client import KazooClient
from kazoo.exceptions import NoNodeError

from scheduler.core import events as ev
from scheduler.core import zk_migration
from scheduler.core.state import State
from scheduler.shell.periodic import Periodic

log = logging.getLogger(__name__)


def kafka_path(state: State) -> str:
    """Kafka's chroot as a path of the scheduler's own ZooKeeper client (taskinfo.zookeeper_chroot
    without the connect string)."""
    return f"{state.spec.zookeeper.root.rstrip('/')}/{state.spec.name}/kafka"


def read(zk: KazooClient, path: str) -> tuple[str | None, bool]:
    """(the cluster id, whether the metadata copy is done) from Kafka's znodes under `path`."""
    try:
        cluster_id = json.loads(zk.get(f"{path}/cluster/id")[0]).get("id")
    except (NoNodeError, ValueError, AttributeError):
        cluster_id = None
    try:
        copied = int(json.loads(zk.get(f"{path}/migration")[0]).get("kraft_metadata_offset", -1)) >= 0
    except (NoNodeError, ValueError, AttributeError, TypeError):
        copied = False
    return cluster_id, copied


class MigrationWatcher(Periodic):
    def __init__(self, zk: KazooClient, state: Callable[[], State], put: Callable[[Any], None],
                 interval: float = 3.0) -> None:
        super().__init__(interval, "kmf-migration-watch")
        self.zk, self.state, self.put = zk, state, put

    def poll(self) -> None:
        s = self.state()
        if zk_migration.active(s.properties):  # ZooKeeper away: KazooException, the next round asks again
            cluster_id, copied = read(self.zk, kafka_path(s))
            self.put(ev.MigrationObserved(time.time(), cluster_id, copied))
