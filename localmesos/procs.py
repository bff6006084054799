"""Child processes and loopback ports for the local cluster and the tests.

Every process is started in its own session (so it and its children form one process group that
can be stopped together) and is remembered until stopped, so that `stop_all()` can reap whatever a
crashed caller left behind.
"""
from __future__ import annotations

import errno
import os
import random
import signal
import socket
import subprocess
from pathlib import Path
from typing import Mapping, Sequence

from kmfwire.waiting import wait_until

_started: dict[int, subprocess.Popen] = {}


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on `host` that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def loopback_ip(rng: random.Random | None = None) -> str:
    """A random 127.0.0.x address (x in 2..250); the whole 127/8 block is on `lo` on Linux."""
    rng = rng or random.Random()
    return f"127.0.0.{rng.randint(2, 250)}"


def spawn(
    argv: Sequence[str],
    *,
    log_path: Path,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    pass_fds: Sequence[int] = (),
) -> subprocess.Popen:
    """Start `argv` in a new session with stdout and stderr appended to `log_path`; `pass_fds`
    stay open in it (an address block's lock, see localmesos.addresses)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            list(argv),
            cwd=str(cwd) if cwd else None,
            env=dict(env) if env is not None else None,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            pass_fds=tuple(pass_fds),
        )
    _started[proc.pid] = proc
    return proc


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError as exc:
        return exc.errno == errno.EPERM
    # A zombie still answers kill(0); reap it if it is ours.
    proc = _started.get(pid)
    if proc is not None and proc.poll() is not None:
        return False
    return True


def kill_group(pid: int | None) -> None:
    """SIGKILL the process group ``pid`` leads (a process and whatever it started), if any."""
    if not pid:
        return
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def stop_group(pid: int, grace: float = 5.0) -> None:
    """SIGTERM the process group led by `pid`, SIGKILL it after `grace` seconds."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            break
        except PermissionError:
            os.kill(pid, sig)
        wait_until(lambda: not pid_alive(pid), wait, 0.05)
        if not pid_alive(pid):
            break
    kill_group(pid)  # the leader may be gone while members of its group live on
    proc = _started.pop(pid, None)
    if proc is not None:
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass


def stop_all(grace: float = 2.0) -> None:
    """Stop every process this interpreter started and has not stopped yet."""
    for pid in list(_started):
        stop_group(pid, grace)


def pids_under(folder: Path) -> list[int]:
    """Processes whose working directory is inside `folder` (executors run in their sandboxes)."""
    root = str(Path(folder).resolve())
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            cwd = os.readlink(f"/proc/{entry}/cwd")
        except OSError:
            continue
        if cwd == root or cwd.startswith(root + "/"):
            found.append(int(entry))
    return found


def kill_under(folder: Path) -> int:
    """SIGKILL every process working inside `folder`, with its group; returns how many."""
    pids = pids_under(folder)
    for pid in pids:
        for kill in (lambda p: os.killpg(p, signal.SIGKILL), lambda p: os.kill(p, signal.SIGKILL)):
            try:
                kill(pid)
            except (ProcessLookupError, PermissionError):
                pass
    return len(pids)
