"""A 3-member ZooKeeper ensemble (Debian's zookeeper, one JVM per member) for the chaos suite.

Members share one loopback address with ports chosen at run time: a client port, a quorum port and
a leader-election port each. A member answers `srvr` with its mode (leader or follower) only while
it is part of a quorum, so "serving" also means "a majority is up".
"""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from kmfwire.waiting import wait_until
from localmesos import procs
from localmesos.zookeeper import ZooKeeperError, ZooKeeperServer, four_letter


class Member(ZooKeeperServer):
    """One member: `myid` `number`, the ensemble's `peers` lines (``server.N=host:quorum:election``)."""

    def __init__(self, workdir: Path, host: str, number: int, peers: list[str]) -> None:
        super().__init__(workdir, host=host)
        self.number = number
        self.peers = peers

    def write_config(self) -> Path:
        cfg = super().write_config()
        data = self.workdir / "data"
        (data / "myid").write_text(f"{self.number}\n")
        # ticks of 500 ms: a follower syncs within 5 s, a dead leader is noticed within ~2.5 s
        cfg.write_text(cfg.read_text() + "initLimit=10\nsyncLimit=5\n" + "\n".join(self.peers) + "\n")
        return cfg

    def spawn(self) -> None:
        """Start the JVM without waiting: a member serves only once a majority runs."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc = procs.spawn(self.argv(), log_path=self.log_path, cwd=self.workdir)

    def mode(self) -> str | None:
        """'leader' or 'follower' while in a quorum; None otherwise (down, or no majority)."""
        for line in four_letter(self.host, self.port, "srvr").splitlines():
            if line.startswith("Mode: "):
                return line.split(": ", 1)[1].strip()
        return None

    def kill(self) -> None:
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=30)
            self.proc = None


class Ensemble:
    def __init__(self, base: Path, size: int = 3) -> None:
        host = procs.loopback_ip()
        ports = [(procs.free_port(host), procs.free_port(host)) for _ in range(size)]
        peers = [f"server.{n + 1}={host}:{q}:{e}" for n, (q, e) in enumerate(ports)]
        self.members = [Member(base / f"zk-{n + 1}", host, n + 1, peers) for n in range(size)]

    @property
    def connect_string(self) -> str:
        return ",".join(m.connect_string for m in self.members)

    def start(self, timeout: float = 90.0) -> "Ensemble":
        for m in self.members:
            m.spawn()
        self.wait_quorum(len(self.members), timeout)
        return self

    def stop(self) -> None:
        for m in self.members:
            m.stop()

    def leader(self) -> Member | None:
        return next((m for m in self.members if m.mode() == "leader"), None)

    def wait_quorum(self, serving: int, timeout: float = 90.0) -> None:
        """Until `serving` members are in a quorum with one leader among them."""
        def ready() -> bool:
            for m in self.members:
                if m.proc is not None and m.proc.poll() is not None:
                    raise ZooKeeperError(f"ZooKeeper member {m.number} exited; see {m.log_path}")
            modes = [m.mode() for m in self.members]
            return modes.count("leader") == 1 and sum(x is not None for x in modes) >= serving
        if not wait_until(ready, timeout, 0.2):
            raise ZooKeeperError(f"the ensemble {self.connect_string} had no quorum of {serving} in {timeout}s: "
                                 f"{[m.mode() for m in self.members]}")

    def restart(self, member: Member) -> float:
        """Start a killed member again (same data dir, same ports); seconds until it is back in the quorum."""
        t0 = time.monotonic()
        member.spawn()
        if not wait_until(lambda: member.mode() is not None, 60.0, 0.2):
            raise ZooKeeperError(f"ZooKeeper member {member.number} did not rejoin; see {member.log_path}")
        return time.monotonic() - t0
