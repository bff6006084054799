"""The localmesos agent: one object with the agent's state, composed of its parts.

Each part is a module of its own and holds one concern (:mod:`.registration` with the master,
:mod:`.status_updates` reliable status updates, :mod:`.executors` executor processes,
:mod:`.tasks` the master's task calls, :mod:`.resources` reservations and persistent volumes,
:mod:`.checkpoint` checkpoint and recovery, :mod:`.views` /state); :class:`Agent` holds the state
they share. Master traffic uses the internal protocol of docs/localmesos-internal.md; executors talk
to the v1 executor API served by :mod:`localmesos.agent.server`. All mutable state is guarded by one
lock; slow work (HTTP to the master, process waits) happens outside it.
"""
from __future__ import annotations

import json
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

from localmesos.agent.checkpoint import CheckpointDir, Recovery
from localmesos.agent.executors import Executors
from localmesos.agent.fetcher import FetcherCache, parse_bytes
from localmesos.agent.model import ExecutorEntry, TaskEntry
from localmesos.agent.registration import Registration
from localmesos.agent.resources import AgentResources
from localmesos.agent.status_updates import StatusUpdates
from localmesos.agent.tasks import Tasks
from localmesos.agent.views import Views
from mesoslib.resources import Resources, parse_attributes_flag, parse_resources_flag

EXECUTOR_HEARTBEAT_S = 30 * 60.0


class Agent(Registration, StatusUpdates, Executors, Tasks, AgentResources, Recovery, Views):
    """A Mesos agent: its flags, its records and the state its parts share."""

    def __init__(self, flags: Any) -> None:
        self.flags = flags
        self.work_dir = Path(flags.work_dir).resolve()
        self.meta = CheckpointDir(self.work_dir / "meta")
        self.ip = flags.ip
        self.port = flags.port
        self.hostname = flags.hostname or flags.ip
        self.base_resources = parse_resources_flag(flags.resources)
        self.attributes = parse_attributes_flag(flags.attributes) if flags.attributes else []
        self.lock = threading.RLock()
        self.agent_id: str | None = self.meta.read("agent_id")
        self.master_id: str | None = None
        self.master_url: str | None = None
        self.registered = False
        self.last_ping = 0.0
        self.last_check = 0.0
        self.ping_gaps: deque = deque(maxlen=5)
        self.frameworks: dict[str, dict] = {}
        self.executors: dict[tuple[str, str], ExecutorEntry] = {}
        self.tasks: dict[tuple[str, str], TaskEntry] = {}
        self.completed_tasks: deque = deque(maxlen=200)
        self.completed_executors: deque = deque(maxlen=100)
        checkpointed = self.meta.read("resources")
        self.checkpointed = Resources.from_json(json.loads(checkpointed)) if checkpointed else Resources()
        self.stopped = threading.Event()
        self.started = time.time()
        self.counters = {"valid_status_updates": 0, "invalid_status_updates": 0}
        cache_dir = getattr(flags, "fetcher_cache_dir", None) or self.work_dir / "fetch"
        self.fetcher_cache = FetcherCache(Path(cache_dir),
                                          parse_bytes(str(getattr(flags, "fetcher_cache_size", "2GB"))))
        self.detector = None
        self.drain_config: dict | None = None  # set while the master drains this agent
        # Mesos' DEFAULT_EXECUTOR_HEARTBEAT_INTERVAL (src/slave/constants.hpp) unless the
        # localmesos-only --localmesos_executor_heartbeat_interval shortens it
        self.executor_heartbeat_interval = float(
            getattr(flags, "localmesos_executor_heartbeat_interval", EXECUTOR_HEARTBEAT_S))
