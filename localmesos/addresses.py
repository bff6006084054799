"""Loopback address blocks for local clusters, claimed so that two clusters never share one.

Every agent offers the same port range (``ports:[31000-32000]``) and brokers bind the agent's
address, so two local clusters whose agents share an address collide ("Address already in use",
brokers joining the other cluster's quorum). Each local cluster (``kmf local up``, ``kmf demo``,
the test fixtures) therefore takes one block ``127.0.<B>.0/24`` for itself: its master at
``127.0.<B>.1`` and agent *i* at ``127.0.<B>.<10+i>``.

How a block is claimed, and why this way
----------------------------------------
One lock file per block under a machine-wide folder (``/tmp/kmf-addresses/block-<B>.lock``,
``KMF_ADDRESS_DIR`` overrides), locked with ``flock(LOCK_EX | LOCK_NB)``:

* The try-lock *is* the claim: the kernel grants it to one process only, so there is no window
  between "is it free?" and "it is mine" (no check-then-act race), whatever number of processes
  claim at once.
* The lock belongs to the open file, and the cluster's own processes (master, agents) inherit that
  file (:attr:`AddressBlock.pass_fds`), so the block stays claimed exactly as long as any of them
  runs, even after the ``kmf local up`` that claimed it has exited, and is free again the moment
  the last one stops (``kmf local down``, a crash, kill -9). Nothing has to decide whether an
  owner is dead: there are no stale claims to detect and no pid reuse to be fooled by.
* The alternatives were worse: an O_EXCL pid file needs a liveness check and a race-free way to
  take over a dead owner's file, and cannot name a single owner pid for a cluster of several
  processes; a bound marker socket needs a holder process of its own and a port that nothing else
  may take.

The files stay in place (unlinking a lock file that another process is about to lock is racy);
each holds a line of JSON naming who claimed it, for messages and ``kmf local status`` only.
Blocks 127.0.0.x, 127.0.1.x (Debian's hostname address) and 127.0.2.x are never handed out: the
rest of the tests pick random 127.0.0.x addresses, and earlier kmf versions used 127.0.1.1 and
127.0.2.10+.
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import random
import time
from pathlib import Path
from typing import Iterable

from kmfwire.errors import KmfError

FIRST_BLOCK, LAST_BLOCK = 16, 254
MASTER_HOST = 1
FIRST_AGENT_HOST = 10
MAX_AGENTS = 254 - FIRST_AGENT_HOST + 1


class AddressError(KmfError, RuntimeError):
    """No block could be claimed, or a block was asked for more than it holds."""


def lock_dir() -> Path:
    return Path(os.environ.get("KMF_ADDRESS_DIR", "/tmp/kmf-addresses"))


class AddressBlock:
    """A claimed ``127.0.<index>.0/24``; the claim lasts while :attr:`fd` is open in any process."""

    def __init__(self, index: int, fd: int, path: Path) -> None:
        self.index, self.fd, self.path = index, fd, path

    @property
    def cidr(self) -> str:
        return f"127.0.{self.index}.0/24"

    def host(self, n: int) -> str:
        if not 1 <= n <= 254:
            raise AddressError(f"host number {n} is outside {self.cidr}")
        return f"127.0.{self.index}.{n}"

    @property
    def master_ip(self) -> str:
        return self.host(MASTER_HOST)

    def agent_ip(self, i: int) -> str:
        if not 0 <= i < MAX_AGENTS:
            raise AddressError(f"agent {i}: a block holds agents 0..{MAX_AGENTS - 1}")
        return self.host(FIRST_AGENT_HOST + i)

    @property
    def pass_fds(self) -> tuple[int, ...]:
        """Give these to every process of the cluster (``subprocess.Popen(pass_fds=...)``) so that
        the claim lives as long as the cluster does; empty once released here."""
        return () if self.fd < 0 else (self.fd,)

    def release(self) -> None:
        """Close this process's hold. Children given :attr:`pass_fds` keep the block claimed
        until they exit."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> "AddressBlock":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"AddressBlock({self.cidr}, {'held' if self.fd >= 0 else 'released'})"


def _try_lock(path: Path) -> int | None:
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    except PermissionError:  # another user's file we may not open: theirs, skip it
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return None
        raise
    return fd


def _prepare(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    try:  # shared by every user of the machine, like /tmp itself
        os.chmod(folder, 0o1777)
    except PermissionError:
        pass


def holder(index: int, folder: Path | None = None) -> dict | None:
    """What the lock file of block `index` says about its claimant (None if never claimed or
    unreadable). Informational: whether the block is claimed is the lock's business."""
    try:
        return json.loads(((folder or lock_dir()) / f"block-{index}.lock").read_text() or "null")
    except (OSError, ValueError):
        return None


def claim(owner: str, *, blocks: Iterable[int] | None = None, folder: Path | None = None,
          rng: random.Random | None = None) -> AddressBlock:
    """Claim a free block for one local cluster; `owner` (e.g. its work folder) is recorded for
    messages. Blocks are tried from a random starting point so that concurrent claimants rarely
    contend and a block just released is not at once reused. Raises :class:`AddressError`
    naming the holders when every block is taken."""
    folder = folder or lock_dir()
    _prepare(folder)
    candidates = list(range(FIRST_BLOCK, LAST_BLOCK + 1) if blocks is None else blocks)
    if candidates:
        start = (rng or random.Random()).randrange(len(candidates))
        candidates = candidates[start:] + candidates[:start]
    for index in candidates:
        if not FIRST_BLOCK <= index <= LAST_BLOCK:
            raise AddressError(f"block {index} is outside 127.0.{FIRST_BLOCK}-{LAST_BLOCK}.x")
        path = folder / f"block-{index}.lock"
        fd = _try_lock(path)
        if fd is None:
            continue
        try:
            os.fchmod(fd, 0o666)
        except PermissionError:
            pass
        record = json.dumps({"pid": os.getpid(), "owner": owner, "since": round(time.time(), 3)})
        os.ftruncate(fd, 0)
        os.pwrite(fd, (record + "\n").encode(), 0)
        return AddressBlock(index, fd, path)
    taken = ", ".join(f"127.0.{i}.0/24 by {(holder(i, folder) or {}).get('owner', '?')}"
                      for i in sorted(candidates)[:5])
    raise AddressError(f"every local cluster address block is taken (locks in {folder}): {taken}"
                       + (" ..." if len(candidates) > 5 else ""))
