"""A stream app's state over time, from its output lines: readiness and the stuck rule (pure).

The executor feeds each line of the app's stdout with the time it read it (`AppState.feed`); the
lines that matter are Kafka Streams' client state transitions and kmf's ``KMF_APP_STATE`` line
(`kmfwire.app_state`). Each client id (one KafkaStreams instance; the protocol's one client of a
Python app) has a state and, out of RUNNING, the time it left RUNNING (or first said a state)::

    (no line yet) ──> CREATED ──> REBALANCING <──> RUNNING
                                       │              │
                                       └──> PENDING_ERROR ──> ERROR     (or PENDING_SHUTDOWN ──> NOT_RUNNING)

The app is RUNNING when every client is; otherwise it is in the state of the client that left
RUNNING (or never reached it) first. It is *stuck* when that client has been out of RUNNING for
its limit or longer, through any states (REBALANCING, then ERROR, ...): `stuck` then says for how
long and in which state it is, and the executor ends the task.

Readiness (`ready`): an app that printed a state line is ready exactly while it is RUNNING. Before
any, the old rules hold: a ``command`` app (and a Python app, which would print its first state
line at start) is ready on kmf's ready marker or after `READY_AFTER_S` up; a Java app on the marker
or after `JAVA_READY_AFTER_S` without a state line (a Java app that is not Kafka Streams). A
``command`` app's readiness follows those old rules even when it prints state lines.
"""
from __future__ import annotations

import attrs

from kmfwire.app_state import ERROR, NOT_RUNNING, PENDING_ERROR, RUNNING, parse_line

READY_AFTER_S = 3.0
JAVA_READY_AFTER_S = 30.0
FAILED_STATES = frozenset({PENDING_ERROR, ERROR, NOT_RUNNING})


@attrs.frozen
class ClientState:
    client: str
    state: str
    # when it left RUNNING (or announced its first state); None while RUNNING. A move between two
    # other states (REBALANCING to ERROR) keeps it: being stuck is being out of RUNNING
    off_since: float | None


@attrs.frozen
class AppState:
    """The states the app's clients announced, sorted by client id."""

    clients: tuple[ClientState, ...] = ()

    def feed(self, line: str, now: float) -> "AppState":
        """The state after `line`, read at `now` (lines that announce nothing change nothing; a
        client announcing the state it is in keeps its time)."""
        parsed = parse_line(line)
        if parsed is None:
            return self
        client, new = parsed
        known = {c.client: c for c in self.clients}
        old = known.get(client)
        if old is not None and old.state == new:
            return self
        off_since = None if new == RUNNING else (
            old.off_since if old is not None and old.off_since is not None else now)
        known[client] = ClientState(client, new, off_since)
        return AppState(tuple(known[k] for k in sorted(known)))

    def _off(self) -> ClientState | None:
        """The client that has been out of RUNNING longest; None when all are RUNNING (or none is known)."""
        off = [c for c in self.clients if c.off_since is not None]
        return min(off, key=lambda c: (c.off_since, c.client)) if off else None

    @property
    def state(self) -> str | None:
        """RUNNING when every client is; else the longest non-RUNNING state; None before any line."""
        if not self.clients:
            return None
        off = self._off()
        return RUNNING if off is None else off.state

    def stuck(self, limit_s: float, now: float) -> str | None:
        """Why the app must be restarted: out of RUNNING for `limit_s` or longer. None if not."""
        off = self._off()
        if off is None or off.off_since is None or now - off.off_since < limit_s:
            return None
        who = f"stream-client [{off.client}]" if off.client else "the app"
        return (f"{who} stuck out of RUNNING for {now - off.off_since:.0f}s, now in {off.state} "
                f"(stuck_limit_s {limit_s:g}); restarting it")


def ready(runtime: str, app: AppState, marker_seen: bool, up_for_s: float) -> bool:
    """Whether the app is ready now (see the module's docstring)."""
    if runtime != "command" and app.state is not None:
        return app.state == RUNNING
    return marker_seen or up_for_s >= (JAVA_READY_AFTER_S if runtime == "java" else READY_AFTER_S)


def healthy(app: AppState) -> bool:
    """False while the app is in a failed or stopped state (it is restarted once that lasts its
    stuck limit); a rebalance is healthy until then."""
    return app.state not in FAILED_STATES
