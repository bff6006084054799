"""Leader election among scheduler instances: a kazoo Lock under ``/<root>/<service>/leader``.

Every instance contends; the one holding the lock leads, the others wait in line and the next one
takes over as soon as the leader's ephemeral node disappears (its session ended: crash, kill,
network partition past the session timeout).

A leader whose ZooKeeper connection is SUSPENDED or LOST stops deciding at once: `is_leader`
clears. On LOST (the session expired: another instance may lead by now) the term is over:
`on_lost` fires from kazoo's event thread (it must only set flags or enqueue), the owner stops its
driver (with failover) and exits, and Marathon (or the operator) starts it again as a standby.

SUSPENDED (the TCP connection dropped; e.g. its ZooKeeper member died or the ensemble is electing a
leader) is not yet a loss: the session, and so this instance's ephemeral lock node, live on for
the session timeout, and while that node exists no other instance can hold the lock. With an
`on_suspended` that pauses the owner (returns True), the term is *suspended*: nothing is decided
until kazoo reconnects within the same session and the lock node is found still owned by it; then
`on_resumed` fires and the term goes on. A suspension longer than `max_suspended_s` (the session
timeout: the server may have expired the session by then) ends the term like LOST. Without
`on_suspended` (or when it returns False) SUSPENDED ends the term at once.

The lock node's path is the write *fence* for the state store (`StateStore.set_fence`): once it is
gone, no write from this instance can succeed.

States::

    CONTENDING ──lock acquired──► LEADING ──LOST/stop()/suspended too long──► ENDED
         │                          │  ▲                                        ▲
         │                 SUSPENDED│  │reconnected, lock node still ours       │
         │                          ▼  │                                        │
         │                        SUSPENDED ─────lock node gone / LOST──────────┤
         └──────────────stop()/session lost or suspended─────────────────────────┘
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
        on_suspended: Callable[[], bool] | None = None,
        on_resumed: Callable[[], None] | None = None,
        max_suspended_s: float = 10.0,
    ) -> None:
        self.client = client
        self.path = path
        self.identifier = identifier
        self._on_elected = on_elected
        self._on_lost = on_lost
        self._on_suspended = on_suspended
        self._on_resumed = on_resumed
        self.max_suspended_s = max_suspended_s
        self._lock = client.Lock(path, identifier)
        self._leading = threading.Event()
        self._ended = threading.Event()
        self._suspended = threading.Event()
        self._suspensions = 0  # which suspension a timer or a resume check belongs to
        self.resumed_count = 0
        self._thread: threading.Thread | None = None
        self.lost_reason: str | None = None
        self.lock_node: str | None = None

    # state ----------------------------------------------------------------------------------------
    @property
    def is_leader(self) -> bool:
        return self._leading.is_set() and not self._ended.is_set() and not self._suspended.is_set()

    @property
    def suspended(self) -> bool:
        """Leading, but not deciding until the ZooKeeper connection is back (see the module doc)."""
        return self._suspended.is_set() and not self._ended.is_set()

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
        """kazoo listener (its event thread: no ZooKeeper calls here): LOST ends the term or
        candidacy; SUSPENDED suspends a term whose owner can pause, and ends anything else;
        CONNECTED after a suspension checks (in a thread of its own) whether to resume."""
        if self._ended.is_set():
            return True
        if state == KazooState.SUSPENDED and self._leading.is_set() and self._on_suspended is not None:
            if not self._suspended.is_set():
                self._suspended.set()
                self._suspensions += 1
                log.warning("ZooKeeper connection suspended: leadership at %s paused (ends after %.0fs "
                            "without the same session back)", self.path, self.max_suspended_s)
                paused = False
                try:
                    paused = bool(self._on_suspended())
                except Exception:  # noqa: BLE001 - runs in kazoo's thread
                    log.exception("on_suspended callback failed")
                if not paused:
                    self._end("ZooKeeper session suspended")
                    self._lock.cancel()
                    return True
                timer = threading.Timer(self.max_suspended_s, self._suspended_too_long, args=(self._suspensions,))
                timer.daemon = True
                timer.start()
            return False
        if state in (KazooState.SUSPENDED, KazooState.LOST):
            self._end(f"ZooKeeper session {state.lower()}")
            self._lock.cancel()
            return True  # remove this listener: the election is over either way
        if state == KazooState.CONNECTED and self._suspended.is_set():
            threading.Thread(target=self._check_resume, args=(self._suspensions,), name="kmf-leader-resume",
                             daemon=True).start()
        return False

    def _check_resume(self, suspension: int) -> None:
        """Reconnected: the term goes on only if the lock node is still there, owned by this
        session (then no other instance can have led meanwhile)."""
        try:
            stat = self.client.exists(self.lock_node) if self.lock_node else None
            owner = self.client.client_id[0] if self.client.client_id else None
        except KazooException as exc:
            log.warning("checking the leader lock node after a reconnect failed: %r", exc)
            return  # the connection dropped again: a later CONNECTED checks again, or the timer ends it
        if self._ended.is_set() or suspension != self._suspensions or not self._suspended.is_set():
            return
        if stat is None or stat.ephemeralOwner != owner:
            self._end("the leader lock node is gone after the ZooKeeper connection came back")
            self._lock.cancel()
            return
        self._suspended.clear()
        self.resumed_count += 1
        log.warning("ZooKeeper connection back with the same session: leadership at %s resumed", self.path)
        if self._on_resumed is not None:
            try:
                self._on_resumed()
            except Exception:  # noqa: BLE001 - a callback bug must not leave the term half-resumed
                log.exception("on_resumed callback failed")
                self._end("resuming failed")

    def _suspended_too_long(self, suspension: int) -> None:
        if suspension == self._suspensions and self._suspended.is_set() and not self._ended.is_set():
            self._end(f"ZooKeeper connection suspended for more than {self.max_suspended_s:g}s")
            self._lock.cancel()

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
