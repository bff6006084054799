"""The master's side of the internal master→agent protocol (docs/localmesos-internal.md): one
ordered call queue per agent and one pinger per agent."""
from __future__ import annotations

import logging
import queue
import threading
from typing import Any, Callable

from kmfio.httpjson import post_json

log = logging.getLogger(__name__)

__all__ = ["AgentLink", "post_json"]  # post_json: the one in kmfio.httpjson


class AgentLink:
    """Calls to one agent, in order, on a thread of their own; and its pinger."""

    def __init__(
        self,
        agent_id: str,
        url: str,
        master_id: str,
        ping_interval: float,
        on_ping: Callable[[str, bool, bool], None],
        call_timeout: float = 10.0,
    ) -> None:
        self.agent_id = agent_id
        self.url = url
        self.master_id = master_id
        self.ping_interval = ping_interval
        self.on_ping = on_ping
        self.call_timeout = call_timeout
        self.calls: queue.Queue = queue.Queue()
        self.stopped = threading.Event()
        self._threads = [
            threading.Thread(target=self._send_loop, name=f"agent-calls-{agent_id}", daemon=True),
            threading.Thread(target=self._ping_loop, name=f"agent-ping-{agent_id}", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def call(self, name: str, body: dict[str, Any]) -> None:
        self.calls.put((name, body))

    def stop(self, flush: bool = False) -> None:
        """Stop pinging; calls still queued are dropped, or sent first with ``flush``."""
        self.flush = flush
        self.stopped.set()
        self.calls.put(None)

    def _send_loop(self) -> None:
        while True:
            item = self.calls.get()
            if item is None or (self.stopped.is_set() and not getattr(self, "flush", False)):
                return
            name, body = item
            try:
                status, answer = post_json(self.url, name, body, self.call_timeout)
                if status != 200:
                    log.warning("agent=%s %s answered %s: %s", self.agent_id, name, status, answer)
            except OSError as exc:
                log.warning("agent=%s %s failed: %s", self.agent_id, name, exc)

    def _ping_loop(self) -> None:
        body = {"master_id": self.master_id, "agent_id": {"value": self.agent_id}}
        while not self.stopped.wait(self.ping_interval):
            refused = False
            try:
                status, answer = post_json(self.url, "ping", body, self.ping_interval)
                ok = status == 200
            except ConnectionRefusedError:
                ok, refused = False, True  # nobody listens: the agent's link is broken
            except OSError:
                ok = False
            if self.stopped.is_set():
                return
            self.on_ping(self.agent_id, ok, refused)
