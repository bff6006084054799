"""Leader election among scheduler instances: a kazoo Lock under ``/<root>/<service>/leader``.

Every instance contends; the one holding the lock leads, the others wait in line and the next one
takes over as soon as the leader's ephemeral node disappears (its session ended: crash, kill,
network partition past the session timeout).

A leader whose ZooKeeper connection is SUSPENDED or LOST stops deciding at once: `is_leader`
clears and `on_lost` fires from kazoo's event thread (it must only set flags or enqueue). A term
is never resumed — state may have moved on under a new leader — so the owner of the election
stops its driver (with failover) and exits; Marathon (or the operator) starts it again and it
contends as a standby. The lock node's path is the write *fence* for the state store
(`StateStore.set_fence`): once it is gone, no write from this instance can succeed.

States::

    CONTENDING ──lock acquired──► LEADING ──SUSPENDED/LOST/stop()──► ENDED
         └──────────────stop()/session lost──────────────────────────┘
"""
from __future__ import annotations

import logging
import threading
from typing import Callable

from kazoo.client import KazooClient, KazooState
from kazoo.exceptions import KazooException

from kmfwire.waiting import wait_until

log = logging.getLogger(__name__)


class LeaderElection:
    """Contend for leadership of one service; `start()` returns at once, `wait_elected` blocks."""

    def __init__(
        self,
        client: KazooClient,
        path: str,
        identifier: str,
        on_elected: Callable[[], None] | None = None,
        on_lost: Callable[[str], None] | None = None,
    ) -> None:
        self.client = client
        self.path = path
        self.identifier = identifier
        self._on_elected = on_elected
        self._on_lost = on_lost
        self._lock = client.Lock(path, identifier)
        self._leading = threading.Event()
        self._ended = threading.Event()
        self._thread: threading.Thread | None = None
        self.lost_reason: str | None = None
        self.lock_node: str | None = None

    # state ----------------------------------------------------------------------------------------
    @property
    def is_leader(self) -> bool:
        return self._leading.is_set() and not self._ended.is_set()

    @property
    def ended(self) -> bool:
        """True once this instance's term (or candidacy) is over for good."""
        return self._ended.is_set()

    def wait_elected(self, timeout: float | None = None) -> bool:
        """Block until elected (True) or until the candidacy ended or `timeout` passed (False)."""
        wait_until(lambda: self.is_leader or self._ended.is_set(), timeout, 0.05, sleep=self._ended.wait)
        return self.is_leader

    def wait_ended(self, timeout: float | None = None) -> bool:
        return self._ended.wait(timeout)

    def contenders(self) -> list[str]:
        """Identifiers of every instance in line, the leader first."""
        try:
            return list(self._lock.contenders())
        except KazooException as exc:
            log.warning("cannot list leader contenders under %s: %r", self.path, exc)
            return []

    # life cycle -----------------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("leader election already started")
        self.client.add_listener(self._connection_changed)
        self._thread = threading.Thread(target=self._contend, name="kmf-leader", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Leave the election (releases the lock if held); idempotent."""
        self._end("stopped")
        self._lock.cancel()
        try:
            if self.client.connected:
                self._lock.release()
        except KazooException as exc:
            log.warning("could not release the leader lock %s: %r", self.path, exc)
        self.client.remove_listener(self._connection_changed)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)

    def _contend(self) -> None:
        log.info("contending for leadership at %s as %s", self.path, self.identifier)
        try:
            acquired = self._lock.acquire(blocking=True)
        except Exception as exc:  # noqa: BLE001 - a dead candidacy must be reported, not raised
            if not self._ended.is_set():
                log.error("leader election at %s failed: %r", self.path, exc)
                self._end(f"election failed: {exc!r}")
            return
        if not acquired or self._ended.is_set():
            return
        self.lock_node = f"{self._lock.path}/{self._lock.node}"
        if self.client.state != KazooState.CONNECTED:
            self._end("connection not healthy right after the lock was acquired")
            return
        self._leading.set()
        log.info("elected leader at %s (lock node %s)", self.path, self.lock_node)
        if self._on_elected is not None:
            try:
                self._on_elected()
            except Exception:  # noqa: BLE001 - a callback bug must not kill the election thread
                log.exception("on_elected callback failed")

    def _connection_changed(self, state: str) -> bool:
        """kazoo listener (its event thread): SUSPENDED or LOST ends the term/candidacy at once."""
        if state in (KazooState.SUSPENDED, KazooState.LOST):
            self._end(f"ZooKeeper session {state.lower()}")
            self._lock.cancel()
            return True  # remove this listener: the election is over either way
        return False

    def _end(self, reason: str) -> None:
        if self._ended.is_set():
            return
        was_leader = self._leading.is_set()
        self.lost_reason = reason
        self._ended.set()
        self._leading.clear()
        if was_leader:
            log.warning("leadership at %s ended: %s", self.path, reason)
            if self._on_lost is not None:
                try:
                    self._on_lost(reason)
                except Exception:  # noqa: BLE001 - runs in kazoo's thread
                    log.exception("on_lost callback failed")
