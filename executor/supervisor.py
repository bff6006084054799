"""One supervised process: its own session, output into the sandbox, a graceful kill.

The process gets its own session so that pymesos' ``killpg(0, SIGKILL)`` on SHUTDOWN (which hits
the executor's group) cannot cut a broker's graceful stop short; and it gets ``PR_SET_PDEATHSIG``
so that it can never outlive an executor that dies abruptly (no orphans on the agent). The death
signal fires when the *thread* that started it ends, so the thread that calls `start` must live as
long as the process (the task runner's thread does: it waits on the process).
"""
from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
from pathlib import Path
from typing import Mapping, Sequence

from executor.policy import describe_exit  # noqa: F401 - re-exported: callers import it from here
from kmfwire.waiting import wait_until

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


try:
    # loaded once here, not in the forked child: dlopen there can deadlock on a lock that another
    # thread of the executor (pymesos' I/O thread) held at fork time
    _LIBC: ctypes.CDLL | None = ctypes.CDLL("libc.so.6", use_errno=True)
except OSError:  # not Linux: the executor's own kill paths still apply
    _LIBC = None


def _die_with_parent() -> None:
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def tail(path: Path, lines: int = 10, max_bytes: int = 16384) -> str:
    """The last `lines` lines of a (possibly large) file, for failure messages."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - max_bytes))
            data = f.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(data.splitlines()[-lines:])


class Supervised:
    """A child process started in its own session; output goes to the given files."""

    def __init__(self, argv: Sequence[str], env: Mapping[str, str], cwd: Path,
                 stdout: Path, stderr: Path) -> None:
        self.argv = list(argv)
        self.env = dict(env)
        self.cwd = Path(cwd)
        self.stdout = Path(stdout)
        self.stderr = Path(stderr)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> "Supervised":
        with open(self.stdout, "ab") as out, open(self.stderr, "ab") as err:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                         env=self.env, cwd=str(self.cwd), start_new_session=True,
                                         preexec_fn=_die_with_parent)  # noqa: PLW1509 - one libc call
        log.info("started pid %s: %s", self.proc.pid, " ".join(self.argv))
        return self

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def poll(self) -> int | None:
        return self.proc.poll() if self.proc else None

    def wait(self, timeout: float | None = None) -> int | None:
        if self.proc is None:
            return None
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def _signal_group(self, sig: int) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def stop(self, grace_s: float) -> int | None:
        """SIGTERM the group, wait up to `grace_s`, then SIGKILL it; returns the exit status."""
        if self.proc is None or self.proc.poll() is not None:
            # the leader may be gone while others of its group still run
            self._signal_group(signal.SIGKILL)
            return self.poll()
        self._signal_group(signal.SIGTERM)
        proc = self.proc
        wait_until(lambda: proc.poll() is not None, max(0.0, grace_s), 0.05)
        if self.proc.poll() is None:
            log.warning("pid %s still running after %.1fs grace: SIGKILL", self.proc.pid, grace_s)
        self._signal_group(signal.SIGKILL)
        return self.proc.wait()
