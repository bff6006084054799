"""The agent's registration with the master: the (re-)registration call with everything it holds,
the master's pings, and the loop that registers again when the leading master changes, stops
pinging, or no longer knows the agent.

When to suspect the master is a pure decision (:func:`ping_deadline`, :func:`link_check`);
:class:`Registration` is the agent's part that calls the master.
"""
from __future__ import annotations

import logging
import time
from typing import Any, Literal, Sequence

from localmesos.agent.model import AgentState, id_of
from kmfio.httpjson import post_json
from kmfwire.task_states import is_terminal
from localmesos.version import VERSION
from mesoslib.resources import attributes_to_json

log = logging.getLogger("localmesos.agent")

DEFAULT_PING_INTERVAL_S = 15.0  # Mesos' agent_ping_timeout default, until pings are seen
QUIET_BEFORE_CHECK_S = 2.0  # no ping for this long: ask the master whether it still knows us
CHECK_EVERY_S = 1.0


def ping_deadline(gaps: Sequence[float]) -> float:
    """How long without a ping before the master counts as lost: twice the median gap between
    the last pings, plus a second.

    Pure."""
    ordered = sorted(gaps)
    interval = ordered[len(ordered) // 2] if ordered else DEFAULT_PING_INTERVAL_S
    return 2 * interval + 1.0


def link_check(registered: bool, quiet: float, since_check: float,
               gaps: Sequence[float]) -> Literal["ok", "stale", "check"]:
    """What a registered agent does after ``quiet`` seconds without a ping, ``since_check``
    seconds after it last asked the master: ``stale`` (register again), ``check`` (ask the
    master whether it knows us) or ``ok``. An unregistered agent is always ``ok`` here (it
    registers anyway).

    Pure."""
    if not registered:
        return "ok"
    if quiet > ping_deadline(gaps):
        return "stale"
    if quiet > QUIET_BEFORE_CHECK_S and since_check > CHECK_EVERY_S:
        return "check"
    return "ok"


class Registration(AgentState):
    """The agent's link to the master (a part of :class:`localmesos.agent.agent.Agent`)."""

    def call_master(self, name: str, body: dict, timeout: float = 5.0) -> tuple[int, dict]:
        url = self.master_url
        if url is None:
            raise OSError("no master known")
        return post_json(url, name, body, timeout)

    def registration_body(self) -> dict:
        with self.lock:
            info: dict[str, Any] = {"hostname": self.hostname, "port": self.port,
                                    "resources": self.total().to_json("endpoint"),
                                    "attributes": attributes_to_json(self.attributes)}
            if self.agent_id:
                info["id"] = {"value": self.agent_id}
            fids = {ex.framework_id for ex in self.executors.values()}
            return {
                "agent_info": info, "agent_url": f"http://{self.ip}:{self.port}", "version": VERSION,
                "frameworks": [self.frameworks[f] for f in fids if f in self.frameworks],
                "executors": [{"framework_id": {"value": ex.framework_id}, "executor_info": ex.info}
                              for ex in self.executors.values() if not ex.command_task],
                "tasks": [{"framework_id": {"value": fid}, "task": t.info, "state": t.state,
                           "executor_id": {"value": t.executor_id}}
                          for (fid, _), t in self.tasks.items() if not is_terminal(t.state)],
            }

    def register(self) -> bool:
        try:
            status, answer = self.call_master("register_agent", self.registration_body())
        except OSError as exc:
            log.debug("registration failed: %s", exc)
            return False
        if status != 200:
            log.warning("master refused registration (%s): %s", status, answer.get("error"))
            return False
        with self.lock:
            first = self.agent_id is None
            self.agent_id = id_of(answer.get("agent_id"))
            self.master_id = answer.get("master_id")
            self.meta.write("agent_id", self.agent_id or "")
            self.registered = True
            self.last_ping = time.monotonic()
            self.ping_gaps.clear()
            for t in self.tasks.values():
                t.next_send = 0.0  # pending heads go again at once (see .status_updates)
        log.info("%s with master %s as %s", "registered" if first else "re-registered",
                 self.master_url, self.agent_id)
        return True

    def on_ping(self, body: dict) -> dict:
        now = time.monotonic()
        with self.lock:
            if self.last_ping:
                self.ping_gaps.append(now - self.last_ping)
            self.last_ping = now
            if body.get("master_id") != self.master_id or id_of(body.get("agent_id")) != self.agent_id:
                self.registered = False
            return {"agent_id": {"value": self.agent_id}}

    def master_knows_us(self) -> bool:
        """No ping for a while: is the master still the one we registered with, and alive?"""
        try:
            code, answer = self.call_master("agent_check", {"agent_id": {"value": self.agent_id}}, timeout=2.0)
        except OSError:
            return True  # unreachable: the ping deadline decides
        return code == 200 and answer.get("known") is True and answer.get("master_id") == self.master_id

    def registrar(self) -> None:
        """Thread: keep the agent registered with the leading master."""
        while not self.stopped.is_set():
            url = self.detector.current() if self.detector else None
            with self.lock:
                if url != self.master_url:
                    self.master_url = url
                    self.registered = False
                now = time.monotonic()
                verdict = link_check(self.registered, now - self.last_ping, now - self.last_check,
                                     self.ping_gaps)
                if verdict == "check":
                    self.last_check = now
                if verdict == "stale":
                    log.warning("no ping from the master for %.1fs: registering again", now - self.last_ping)
                    self.registered = False
                need = not self.registered and self.master_url is not None
            if verdict == "check" and not self.master_knows_us():
                with self.lock:
                    self.registered = False
                need = True
            if need and not self.register():
                self.stopped.wait(0.5)
                continue
            self.stopped.wait(0.2)
