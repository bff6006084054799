"""ZooKeeper contention and leader detection as Mesos masters do it.

Each master creates an EPHEMERAL+SEQUENTIAL ``json.info_`` child under the path holding its
MasterInfo JSON; the smallest sequence leads. A master whose node vanishes (session lost) must
abort: the caller's ``on_lost`` does that.
"""
from __future__ import annotations

import json
import logging
import threading
from typing import Any, Callable

from kazoo.client import KazooClient, KazooState
from kazoo.exceptions import NoNodeError

from kmfwire.errors import KmfError

log = logging.getLogger(__name__)
PREFIX = "json.info_"


class DetectorError(KmfError, ValueError):
    pass


def parse_zk_url(url: str) -> tuple[str, str]:
    """``zk://h1:2181,h2:2181/mesos`` → (``h1:2181,h2:2181``, ``/mesos``)."""
    for scheme in ("zk://", "zoo://"):
        if url.startswith(scheme):
            rest = url[len(scheme):]
            break
    else:
        raise DetectorError(f"--zk: {url!r} must start with zk://")
    if "@" in rest.split("/", 1)[0]:
        rest = rest.split("@", 1)[1]  # user:pass@ is accepted and ignored
    hosts, _, path = rest.partition("/")
    if not hosts:
        raise DetectorError(f"--zk: {url!r} names no ZooKeeper host")
    return hosts, "/" + (path.rstrip("/") or "mesos")


class Contender:
    def __init__(
        self,
        url: str,
        master_info: dict[str, Any],
        on_leader: Callable[[dict[str, Any] | None, bool], None],
        on_lost: Callable[[], None],
        session_timeout: float = 10.0,
    ) -> None:
        self.hosts, self.path = parse_zk_url(url)
        self.master_info = master_info
        self.on_leader = on_leader
        self.on_lost = on_lost
        self.session_timeout = session_timeout
        self.client = KazooClient(hosts=self.hosts, timeout=session_timeout)
        self.node: str | None = None
        self._lock = threading.Lock()
        self._stopped = False

    def start(self, timeout: float = 15.0) -> None:
        self.client.start(timeout=timeout)
        self.client.add_listener(self._state)
        self.client.ensure_path(self.path)
        data = json.dumps(self.master_info, separators=(",", ":")).encode()
        created = self.client.create(f"{self.path}/{PREFIX}", data, ephemeral=True, sequence=True)
        self.node = created.rsplit("/", 1)[1]
        log.info("contending in ZooKeeper as %s/%s", self.path, self.node)
        self.client.ChildrenWatch(self.path, self._children)

    def stop(self) -> None:
        self._stopped = True
        try:
            self.client.stop()
            self.client.close()
        except Exception:  # noqa: BLE001 - best effort at shutdown
            pass

    def _state(self, state: str) -> None:
        if state == KazooState.LOST and not self._stopped:
            log.error("ZooKeeper session lost: this master's json.info_ node is gone")
            threading.Thread(target=self.on_lost, daemon=True).start()

    def _children(self, children: list[str]) -> bool | None:
        if self._stopped:
            return False
        threading.Thread(target=self._elect, args=(list(children),), daemon=True).start()
        return None

    def _elect(self, children: list[str]) -> None:
        with self._lock:
            nodes = sorted((c for c in children if c.startswith(PREFIX)), key=lambda c: c[len(PREFIX):])
            if self.node not in nodes:
                if not self._stopped:
                    log.error("our node %s vanished from %s", self.node, self.path)
                    self.on_lost()
                return
            leader = nodes[0]
            if leader == self.node:
                self.on_leader(self.master_info, True)
                return
            try:
                data, _ = self.client.get(f"{self.path}/{leader}")
                info = json.loads(data.decode())
            except (NoNodeError, ValueError):
                info = None
            self.on_leader(info, False)
