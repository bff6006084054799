"""The master's HTTP shell: v1 scheduler API, internal agent API, state endpoints, web UI.

Threads: one per connection (ThreadingHTTPServer, HTTP/1.1 keep-alive, idle connections are
never closed by us), one allocator/timer loop, and per agent one call sender and one pinger. All
decisions happen in :class:`~.core.MasterCore` under ``self.lock``; effects are performed right
after, without blocking (queue puts).
"""
from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from . import agents_core, maintenance, views
from .core import MasterCore
from .handler import CLOSE, MasterHandler, MasterHTTPServer, record
from .links import AgentLink
from .model import AgentCall, Close, SaveRegistry, Send, StopPinging

if TYPE_CHECKING:
    from .detector import Contender  # imported when ZooKeeper is used (kazoo)

log = logging.getLogger(__name__)


def packed_ip(ip: str) -> int:
    a, b, c, d = (int(x) for x in ip.split("."))
    return a + (b << 8) + (c << 16) + (d << 24)


def master_info(master_id: str, ip: str, port: int, hostname: str) -> dict[str, Any]:
    return {
        "id": master_id,
        "ip": packed_ip(ip),
        "port": port,
        "pid": f"master@{ip}:{port}",
        "hostname": hostname,
        "version": views.VERSION,
        "address": {"hostname": hostname, "ip": ip, "port": port},
        "capabilities": [{"type": "AGENT_UPDATE"}, {"type": "AGENT_DRAINING"}, {"type": "QUOTA_V2"}],
    }


class MasterServer:
    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.ip = config["ip"]
        self.hostname = config.get("hostname") or self.ip
        self.work_dir = Path(config["work_dir"])
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.lock = threading.RLock()
        self.master_id = str(uuid.uuid4())
        self.httpd = MasterHTTPServer((self.ip, int(config["port"])), MasterHandler)
        self.httpd.master = self
        self.port = self.httpd.server_address[1]
        self.info = master_info(self.master_id, self.ip, self.port, self.hostname)
        now = time.time()
        registry = self._load_registry()
        self.core = MasterCore(
            self.master_id,
            self.info,
            heartbeat_interval=float(config.get("heartbeat_interval", 15.0)),
            max_agent_ping_timeouts=int(config.get("max_agent_ping_timeouts", 5)),
            agent_reregister_timeout=float(config.get("agent_reregister_timeout", 600.0)),
            offer_timeout=config.get("offer_timeout"),
            recovered_agents=dict(registry.get("agents", {})),
            now=now,
        )
        # Mesos keeps the maintenance schedule and machine modes in its registry, so do we
        maintenance.from_registry(self.core, registry.get("maintenance") or {})
        self.ping_interval = float(config.get("agent_ping_timeout", 15.0))
        self.credentials: dict[str, str] | None = config.get("credentials")
        self.streams: dict[str, queue.Queue] = {}
        self.links: dict[str, AgentLink] = {}
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.elected = not config.get("zk")
        self.elected_time: float | None = now if self.elected else None
        self.leader: dict[str, Any] | None = self.info if self.elected else None
        self.contender: Contender | None = None
        self.flags = {k: str(v) for k, v in config.get("flags", {}).items()}
        # Fault injection for tests (POST /internal/faults): drop or delay agents' status updates.
        self.faults = {"drop_status_updates": 0, "delay_status_updates_secs": 0.0}

    # ------------------------------------------------------------------ registry
    @property
    def registry_path(self) -> Path:
        return self.work_dir / "registry.json"

    def _load_registry(self) -> dict[str, Any]:
        try:
            data = json.loads(self.registry_path.read_text())
        except FileNotFoundError:
            return {}
        except ValueError as exc:
            raise SystemExit(f"master: registry {self.registry_path} is not JSON: {exc}") from None
        return dict(data)

    def _save_registry(self) -> None:
        tmp = self.registry_path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"agents": self.core.known_agents,
                                   "maintenance": maintenance.to_registry(self.core)}, indent=1))
        os.replace(tmp, self.registry_path)

    # ------------------------------------------------------------------ core access
    def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run a core function under the lock and perform its effects."""
        with self.lock:
            result = fn(*args)
            self._perform(self.core.drain())
        return result

    def _perform(self, effects: list[Any]) -> None:
        for effect in effects:
            if isinstance(effect, Send):
                q = self.streams.get(effect.stream_id)
                if q is not None:
                    q.put(record(effect.event))
            elif isinstance(effect, Close):
                q = self.streams.get(effect.stream_id)
                if q is not None:
                    q.put(CLOSE)
            elif isinstance(effect, AgentCall):
                link = self.links.get(effect.agent_id)
                if link is not None:
                    link.call(effect.name, effect.body)
            elif isinstance(effect, SaveRegistry):
                self._save_registry()
            elif isinstance(effect, StopPinging):
                link = self.links.pop(effect.agent_id, None)
                if link is not None:
                    link.stop(flush=effect.flush)
        if effects:
            self.wake.set()

    def on_ping(self, agent_id: str, ok: bool, refused: bool = False) -> None:
        self.run(agents_core.ping_result, self.core, agent_id, ok, time.time(), refused)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        if self.config.get("zk"):
            from .detector import Contender

            self.contender = Contender(
                self.config["zk"], self.info, self._on_leader, self._on_lost,
                session_timeout=float(self.config.get("zk_session_timeout", 10.0)),
            )
            self.contender.start()
        threading.Thread(target=self._allocator_loop, name="allocator", daemon=True).start()
        log.info("master %s listening on http://%s:%s", self.master_id, self.ip, self.port)

    def serve_forever(self) -> None:
        self.httpd.serve_forever(poll_interval=0.2)

    def shutdown(self) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        if self.contender is not None:
            self.contender.stop()
        for link in list(self.links.values()):
            link.stop()

    def _on_leader(self, info: dict[str, Any] | None, elected: bool) -> None:
        with self.lock:
            if elected and not self.elected:
                self.elected_time = time.time()
                log.info("elected leading master")
            self.elected = elected
            self.leader = info
        self.wake.set()

    def _on_lost(self) -> None:
        log.error("lost ZooKeeper membership; aborting as Mesos does")
        os._exit(1)

    def _allocator_loop(self) -> None:
        while not self.stopping.is_set():
            self.wake.wait(1.0)
            self.wake.clear()
            time.sleep(0.05)  # batch the events that woke us
            if not self.elected:
                continue
            now = time.time()
            try:
                self.run(self.core.tick, now)
                self.run(self.core.allocate, now)
            except Exception:  # noqa: BLE001 - keep allocating; the log tells what broke
                log.exception("allocation failed")

    # ------------------------------------------------------------------ agents
    def register_agent(self, body: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            aid = agents_core.register_agent(self.core, body, time.time())
            agent = self.core.agents[aid]
            old = self.links.get(aid)
            if old is None or old.url != agent.url:
                if old is not None:
                    old.stop()
                self.links[aid] = AgentLink(aid, agent.url, self.master_id, self.ping_interval,
                                            self.on_ping)
            self._perform(self.core.drain())
        return {"agent_id": {"value": aid}, "master_id": self.master_id}


