"""Invariants sampled continuously while the chaos suite runs (a background thread each).

- :class:`NodeIdSampler` — never two brokers serving with the same node id at once. Every
  ``interval`` s it asks each broker address ever seen (kmf's ``/v1/endpoints/broker``, which it is
  given as a callable; a replaced broker's old address stays watched) *alone* for metadata with
  a fresh AdminClient bootstrapped on that one address: the broker that answers says which node id
  is advertised at its own address. Two different addresses answering as one node id within one
  round is a violation. It also counts, per node id, the broker JVMs
  alive on the machine (``node.id`` in the server.properties of each java process under the
  cluster's work dir): two is a violation too (the second may not have registered yet).
- :class:`IsrSampler` — no partition below ``min.insync.replicas`` caused by kmf itself. Every
  ``interval`` s the ISR size of each partition of the watched topics; a dip below min ISR is
  allowed only inside the window of a fault that can explain it (:meth:`IsrSampler.fault` …
  :meth:`IsrSampler.healed`: from the start of a fault that touches a broker until the service is
  healthy again, plus ``GRACE_S`` for the metadata to catch up); anywhere else it is a violation
  (a restart, roll or move of kmf's own, also during a fault of the scheduler, master or ZooKeeper).

Nothing here asserts: tests read ``violations`` and the figures.
"""
from __future__ import annotations

import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

GRACE_S = 2.0  # metadata lags the controller by up to a metadata refresh; see IsrSampler


@dataclass
class Violation:
    at: float  # time.monotonic()
    what: str


class _Sampler:
    interval = 1.0

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lock = threading.Lock()
        self.violations: list[Violation] = []
        self.rounds = 0
        self.error: BaseException | None = None

    def start(self):
        self._thread = threading.Thread(target=self._run, name=type(self).__name__, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.sample(started)
            except Exception as exc:  # noqa: BLE001 - a sample that fails is a sample lost
                self.error = exc
            self.rounds += 1
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - started)))

    def violate(self, at: float, what: str) -> None:
        with self.lock:
            if not self.violations or self.violations[-1].what != what:
                self.violations.append(Violation(at, what))

    def sample(self, now: float) -> None:  # pragma: no cover - subclasses
        raise NotImplementedError


_PENDING: list[AdminClient] = []


def _answer(address: str, timeout: float) -> int | None:
    """The node id the broker listening at `address` gives itself: a fresh client bootstrapped on
    that one address asks it for metadata, and the broker whose advertised address is `address`
    in that answer is the one that answered (librdkafka names a bootstrap broker -1 until it has
    matched it to an id: ``orig_broker_name`` says which connection answered)."""
    admin = AdminClient({"bootstrap.servers": address, "log_level": 0, "socket.timeout.ms": int(timeout * 1000),
                         "socket.connection.setup.timeout.ms": int(timeout * 1000),
                         "topic.metadata.refresh.interval.ms": -1})
    try:
        meta = admin.list_topics(timeout=timeout)
    except KafkaException:
        # librdkafka can crash when a client is destroyed with a request pending: keep it
        _PENDING.append(admin)
        del _PENDING[:-50]
        return None
    if not (meta.orig_broker_name or "").startswith(address + "/"):
        return None  # answered by another broker it learned of: says nothing about `address`
    ids = [b.id for b in meta.brokers.values() if f"{b.host}:{b.port}" == address]
    return ids[0] if len(ids) == 1 else None


def broker_jvms(work_dir: Path) -> dict[int, list[int]]:
    """node id → pids of the broker JVMs running under `work_dir` (the cluster's sandboxes)."""
    found: dict[int, list[int]] = {}
    prefix = str(work_dir)
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            argv = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
            cwd = os.readlink(f"/proc/{pid}/cwd")
            state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if not argv or not argv[0].endswith(b"java") or not cwd.startswith(prefix) or state == "Z":
            continue
        # kafka.Kafka's argument (a -D…log4j2.properties comes before it)
        props = next((a.decode() for a in reversed(argv) if a.endswith(b".properties") and not a.startswith(b"-")),
                     None)
        if props is None:
            continue
        path = props if os.path.isabs(props) else os.path.join(cwd, props)
        try:
            text = open(path).read()
        except OSError:
            continue
        m = re.search(r"^(?:node\.id|broker\.id)=(\d+)", text, re.M)
        if m:
            found.setdefault(int(m.group(1)), []).append(int(pid))
    return found


class NodeIdSampler(_Sampler):
    interval = 2.0

    def __init__(self, addresses: Callable[[], Iterable[str]], work_dir: Path, timeout: float = 3.0) -> None:
        super().__init__()
        self.addresses = addresses
        self.work_dir = work_dir
        self.timeout = timeout
        self.known: set[str] = set()
        self.max_jvms_per_id = 0

    def sample(self, now: float) -> None:
        try:
            self.known |= set(self.addresses())
        except Exception:  # noqa: BLE001 - the scheduler may be between lives; keep what we know
            pass
        by_id: dict[int, set[str]] = {}
        for address in sorted(self.known):
            node = _answer(address, self.timeout)
            if node is not None:
                by_id.setdefault(node, set()).add(address)
        for node, where in by_id.items():
            if len(where) > 1:
                self.violate(now, f"node id {node} answered at {sorted(where)} at once")
        jvms = broker_jvms(self.work_dir)
        self.max_jvms_per_id = max([self.max_jvms_per_id, *map(len, jvms.values())])
        for node, pids in jvms.items():
            if len(pids) > 1:
                self.violate(now, f"{len(pids)} broker JVMs alive with node id {node}: pids {pids}")

    @property
    def ok(self) -> bool:
        return not self.violations


@dataclass
class Window:
    fault: str
    start: float
    end: float | None = None
    explains: bool = True  # whether the fault can take replicas out of sync (it touches a broker)


class IsrSampler(_Sampler):
    def __init__(self, bootstrap: Callable[[], str], topics: tuple[str, ...], min_isr: int = 2) -> None:
        super().__init__()
        self.bootstrap, self.topics, self.min_isr = bootstrap, topics, min_isr
        self.windows: list[Window] = []
        self.min_seen: int | None = None
        self.dips: list[tuple[float, str, int]] = []  # (t, partition, isr size) below min ISR
        self.samples: list[tuple[float, str, int]] = []  # (t, partition, smallest isr size then)
        self._admin: AdminClient | None = None
        self._boot = ""

    def fault(self, name: str, at: float | None = None, explains: bool = True) -> None:
        """A fault starts; `explains`: it can take replicas out of sync (a fault of the scheduler,
        the master or ZooKeeper cannot: a dip during it is kmf's doing)."""
        with self.lock:
            self.windows.append(Window(name, time.monotonic() if at is None else at, explains=explains))

    def healed(self) -> None:
        with self.lock:
            self.windows[-1].end = time.monotonic()

    def explained(self, t: float) -> str | None:
        with self.lock:
            for w in self.windows:
                if w.explains and w.start <= t and (w.end is None or t <= w.end + GRACE_S):
                    return w.fault
        return None

    def min_in(self, start: float, end: float) -> int | None:
        """The smallest ISR size sampled in [start, end] (None: no sample then)."""
        with self.lock:
            seen = [isr for t, _, isr in self.samples if start <= t <= end]
        return min(seen) if seen else None

    def sample(self, now: float) -> None:
        try:
            boot = self.bootstrap()
        except Exception:  # noqa: BLE001
            boot = self._boot
        if boot and boot != self._boot:
            self._admin = AdminClient({"bootstrap.servers": boot, "log_level": 0})
            self._boot = boot
        if self._admin is None:
            return
        try:
            meta = self._admin.list_topics(timeout=3)
        except KafkaException:
            return
        t = time.monotonic()
        smallest: tuple[str, int] | None = None
        for topic in self.topics:
            tm = meta.topics.get(topic)
            if tm is None or tm.error is not None:
                continue
            for p in tm.partitions.values():
                size = len(p.isrs)
                if smallest is None or size < smallest[1]:
                    smallest = (f"{topic}-{p.id}", size)
                if size < self.min_isr:
                    with self.lock:
                        self.dips.append((t, f"{topic}-{p.id}", size))
                    if self.explained(t) is None:
                        self.violate(t, f"{topic}-{p.id} ISR {sorted(p.isrs)} below min.insync.replicas "
                                        f"{self.min_isr} outside any fault window")
        if smallest is not None:
            with self.lock:
                self.samples.append((t, smallest[0], smallest[1]))
                self.min_seen = smallest[1] if self.min_seen is None else min(self.min_seen, smallest[1])

    @property
    def ok(self) -> bool:
        return not self.violations
