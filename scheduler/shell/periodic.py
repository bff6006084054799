"""A leader's background watcher: a daemon thread that runs one round (`poll`) every `interval`
seconds until stopped. A round that fails (brokers or ZooKeeper away) is logged and the next
round tries again: a watcher reports what it sees, it never stops the scheduler."""
from __future__ import annotations

import logging
import threading
from typing import Any, TypeVar

log = logging.getLogger(__name__)
W = TypeVar("W", bound="Periodic")


class Periodic:
    def __init__(self, interval: float, name: str) -> None:
        self.interval = interval
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self: W) -> W:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopped.set()

    def _run(self) -> None:
        while not self.stopped.wait(self.interval):
            try:
                self.poll()
            except Exception as exc:  # noqa: BLE001 - see the module doc
                log.debug("%s: %s", self.thread.name, exc)

    def poll(self) -> Any:
        raise NotImplementedError
