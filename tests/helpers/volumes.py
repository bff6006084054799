"""Agents' persistent volumes on a small tmpfs of their own, and a filler that takes all its space
(the disk-full fault: tests/integration/e2e/test_disk_full.py, tests/chaos/test_faults.py).

Mounted at an agent's `volumes/` directory before kmf reserves anything, so a volume's path is the
one Mesos would use and filling one agent's filesystem fills only that agent's volumes."""
from __future__ import annotations

import errno
import subprocess
from pathlib import Path


class TmpfsMounts:
    """tmpfs mounts made for a test; :meth:`unmount_all` (lazily: a JVM may still hold files
    there while the environment stops) at its end."""

    def __init__(self, size_mb: int) -> None:
        self.size_mb = size_mb
        self.mounted: list[Path] = []

    def mount(self, agent_work_dir: Path) -> Path:
        """A tmpfs at `agent_work_dir`/volumes; RuntimeError saying why when it cannot be made."""
        where = agent_work_dir / "volumes"
        where.mkdir(parents=True, exist_ok=True)
        out = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={self.size_mb}m", "kmf-test-volumes", str(where)],
                             capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError(f"cannot mount a tmpfs for the agents' volumes here: {out.stderr.strip()}")
        self.mounted.append(where)
        return where

    def unmount_all(self) -> None:
        for where in self.mounted:
            subprocess.run(["umount", "-l", str(where)], capture_output=True)
        self.mounted.clear()


def fill(where: Path) -> Path:
    """A file taking every byte left on `where`'s filesystem."""
    filler = where / "filler"
    chunk = b"\0" * (1 << 20)
    with open(filler, "wb", buffering=0) as f:
        for size in (len(chunk), 4096, 1):
            try:
                while True:
                    f.write(chunk[:size])
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
    return filler
