"""Errors of the scheduler's I/O shell; each names what failed and where (znode, master, call)."""
from __future__ import annotations

from kmfwire.errors import KmfError


class ShellError(KmfError):
    """Base of the shell's errors: the scheduler shell's KmfError area."""


class StoreError(ShellError):
    """ZooKeeper state that cannot be read or written: corrupt, unknown, or unreachable.

    `path` is the znode concerned (None when the error is not about one node).
    """

    def __init__(self, message: str, path: str | None = None) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path


class StoreConflict(StoreError):
    """A versioned write lost a race: somebody else changed the znode (or the leader lock is gone)."""


class MesosError(ShellError):
    """The Mesos master refused the framework or a call could not be performed."""
