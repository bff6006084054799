"""The executor's decisions as pure functions: how a workload's end and its checks become statuses.

Nothing here touches processes, threads, clocks or the driver; `executor.main` feeds in what it
observed and sends what comes out. That keeps the rules testable without a Mesos agent.

A task's statuses, as the executor sends them::

    TASK_STARTING ─┬─> TASK_RUNNING (started; ready; health changes) ─┬─> TASK_FINISHED (exit 0)
                   │                                                  ├─> TASK_FAILED (exit ≠ 0, signal;
                   │                                                  │                a stuck stream app)
                   │                                                  └─> TASK_KILLING ─> TASK_KILLED
                   └─> TASK_FAILED (cannot start) or TASK_KILLED (killed before it started)

Exactly one terminal status per task; `StatusGate` is the rule that enforces it.
"""
from __future__ import annotations

import math
import signal

import attrs

from kmfwire.errors import KmfError
from kmfwire.task_states import TERMINAL, VOLUME_FULL, is_terminal

TERMINAL_STATES = TERMINAL  # Mesos' terminal states (one definition, in kmfwire.task_states)

HEALTH_REASON = "REASON_TASK_HEALTH_CHECK_STATUS_UPDATED"

# Mesos' duration suffixes (stout's Duration::parse), in seconds
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "secs": 1.0, "mins": 60.0,
                   "hrs": 3600.0, "days": 86400.0, "weeks": 604800.0}


@attrs.frozen
class Outcome:
    """A status to send: Mesos task state, human message, optional Mesos reason."""

    state: str
    message: str
    reason: str | None = None


def describe_exit(returncode: int) -> str:
    """`exited with code N` or `killed by SIGNAME` for a Popen-style return code (negative = signal)."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"killed by {name}"
    return f"exited with code {returncode}"


# Kafka fails a log dir on the first write that finds no space; a little may be back once the JVM is
# gone (files it held open), so "full" means almost nothing left, or the log saying so
VOLUME_FULL_BELOW_BYTES = 64 << 20


def volume_full_note(volume: str, free_bytes: int, total_bytes: int, log_tail: str = "") -> str | None:
    """Why a workload that ended may have: its data volume is (as good as) full. None when not.

    The message starts with `VOLUME_FULL`, which the scheduler reads (see
    `scheduler.core.recovery`): a broker failed this way is kept on its volume, never moved.
    """
    if free_bytes >= VOLUME_FULL_BELOW_BYTES and "No space left on device" not in log_tail:
        return None
    return (f"{VOLUME_FULL}: {volume} has {free_bytes // (1 << 20)} MiB free of "
            f"{total_bytes // (1 << 20)} MiB; free space there and kmf restarts it in place")


def exit_outcome(returncode: int | None, kill_requested: bool, stderr_tail: str = "",
                 volume_note: str | None = None) -> Outcome:
    """The terminal status for a workload that ended.

    :param returncode: Popen's return code (negative: the signal that ended it); None when a stop
        could not tell (only happens after a kill).
    :param kill_requested: the scheduler or a shutdown asked for the kill. Then the end is the
        kill's doing whatever the code says, so the task is TASK_KILLED, never FAILED.
    :param stderr_tail: the last lines of the workload's stderr, appended to a failure's message
        because that is usually where the cause is.
    :param volume_note: `volume_full_note`'s finding; it leads the message of a failure, with
        Mesos' reason for a container out of disk.
    """
    if kill_requested:
        return Outcome("TASK_KILLED", f"stopped ({describe_exit(returncode)})" if returncode is not None
                       else "stopped")
    if returncode == 0:
        return Outcome("TASK_FINISHED", "exited with code 0")
    if returncode is None:  # not reachable from the runner today; failing is the safe reading
        return Outcome("TASK_FAILED", "ended with an unknown status")
    tail = f"; stderr:\n{stderr_tail}" if stderr_tail else ""
    if volume_note is not None:
        return Outcome("TASK_FAILED", f"{volume_note}; {describe_exit(returncode)}{tail}",
                       "REASON_CONTAINER_LIMITATION_DISK")
    return Outcome("TASK_FAILED", describe_exit(returncode) + tail)


def stuck_outcome(why: str, returncode: int | None) -> Outcome:
    """The terminal status of a stream app the executor stopped because it was stuck (`why`, from
    `executor.app_state`): a failure, so the scheduler relaunches it after its backoff."""
    how = f"stopped ({describe_exit(returncode)})" if returncode is not None else "stopped"
    return Outcome("TASK_FAILED", f"{why}; {how}")


@attrs.frozen
class HealthCounter:
    """Consecutive failed health checks; unhealthy once `threshold` of them failed in a row.

    A single passing check resets the count (and makes the task healthy again), so a flapping
    check never accumulates across successes.
    """

    threshold: int
    failures: int = 0

    def observe(self, ok: bool) -> "HealthCounter":
        return attrs.evolve(self, failures=0 if ok else self.failures + 1)

    @property
    def healthy(self) -> bool:
        # a passing check always counts as healthy, even with a threshold below 1
        return self.failures == 0 or self.failures < self.threshold

    def change_message(self) -> str:
        """Why the health flag changed, for the TASK_RUNNING status that reports it."""
        return "healthy again" if self.healthy else f"{self.failures} health checks failed in a row"


class StatusGate:
    """Decides which of a task's statuses may still be sent: at most one terminal status, nothing
    after it, and TASK_KILLING only while the task is not terminal.

    Mesos treats the first terminal update as final; later ones are dropped or logged as errors by
    the agent, and a TASK_KILLING after TASK_FINISHED makes the scheduler briefly believe a finished
    task is being killed. Not thread-safe by itself: the caller holds a lock around `admit`.
    """

    def __init__(self) -> None:
        self.terminal: str | None = None

    def admit(self, state: str) -> bool:
        if self.terminal is not None:
            return False
        if is_terminal(state):
            self.terminal = state
        return True


class DurationError(KmfError, ValueError):
    """An environment variable that should hold a Mesos duration does not."""


def parse_duration(name: str, raw: str) -> float:
    """Seconds in a Mesos duration such as ``5secs`` or ``1.5mins`` from variable `name`.

    Refuses anything else (unknown unit, no number, NaN, infinite, negative) with an error naming
    the variable and the value, rather than guessing: a wrong grace period or recovery timeout
    silently changes how long a broker gets to shut down cleanly.
    """
    text = raw.strip()
    # longest suffix first: "5mins" also ends with "ns"
    for unit in sorted(_DURATION_UNITS, key=len, reverse=True):
        if text.endswith(unit):
            try:
                value = float(text[:-len(unit)])
            except ValueError:
                break
            if not math.isfinite(value) or value < 0:
                break
            return value * _DURATION_UNITS[unit]
    raise DurationError(f"{name}={raw!r} is not a Mesos duration (a non-negative number followed by one of "
                        f"{', '.join(_DURATION_UNITS)}, e.g. 5secs)")
