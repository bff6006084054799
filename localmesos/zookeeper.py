"""A standalone ZooKeeper server from Debian's `zookeeper` package, for the local cluster and tests."""
from __future__ import annotations

import socket
import subprocess
from pathlib import Path

from kmfwire.errors import KmfError
from kmfwire.waiting import wait_until
from localmesos import procs

JARS = (
    "/etc/zookeeper/conf",
    "/usr/share/java/zookeeper.jar",
    "/usr/share/java/slf4j-log4j12.jar",
    "/usr/share/java/log4j-1.2.jar",
    "/usr/share/java/slf4j-api.jar",
)


class ZooKeeperError(KmfError, RuntimeError):
    pass


def four_letter(host: str, port: int, word: str, timeout: float = 1.0) -> str:
    """Send a ZooKeeper four-letter command and return the answer ('' if it did not answer)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(word.encode())
            chunks = []
            while True:
                data = sock.recv(4096)
                if not data:
                    break
                chunks.append(data)
        return b"".join(chunks).decode(errors="replace")
    except OSError:
        return ""


class ZooKeeperServer:
    """One ZooKeeper process listening on `host:port`, with its data and log under `workdir`."""

    def __init__(self, workdir: Path, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.workdir = Path(workdir)
        self.host = host
        self.port = port or procs.free_port(host)
        self.proc: subprocess.Popen | None = None

    @property
    def connect_string(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "zookeeper.log"

    def write_config(self) -> Path:
        data = self.workdir / "data"
        data.mkdir(parents=True, exist_ok=True)
        cfg = self.workdir / "zoo.cfg"
        cfg.write_text(
            "\n".join(
                [
                    "tickTime=500",
                    # Sessions as short as 2 ticks: tests expire sessions quickly.
                    "minSessionTimeout=1000",
                    "maxSessionTimeout=60000",
                    f"dataDir={data}",
                    f"clientPort={self.port}",
                    f"clientPortAddress={self.host}",
                    "admin.enableServer=false",
                    "4lw.commands.whitelist=ruok,srvr,stat,mntr",
                    "maxClientCnxns=0",
                    "",
                ]
            )
        )
        return cfg

    def argv(self) -> list[str]:
        missing = [jar for jar in JARS[1:4] if not Path(jar).exists()]
        if missing:
            raise ZooKeeperError(
                f"ZooKeeper jars missing ({', '.join(missing)}): run `make setup` "
                "(it installs Debian's zookeeper package)"
            )
        return [
            "java",
            "-Xmx256m",
            "-cp",
            ":".join(JARS),
            f"-Dzookeeper.log.dir={self.workdir}",
            "-Dzookeeper.root.logger=INFO,CONSOLE",
            "-Dzookeeper.jmx.log4j.disable=true",
            "org.apache.zookeeper.server.quorum.QuorumPeerMain",
            str(self.write_config()),
        ]

    def start(self, timeout: float = 30.0) -> "ZooKeeperServer":
        self.workdir.mkdir(parents=True, exist_ok=True)
        proc = self.proc = procs.spawn(self.argv(), log_path=self.log_path, cwd=self.workdir)

        def serving() -> bool:
            if proc.poll() is not None:
                raise ZooKeeperError(
                    f"ZooKeeper exited with {proc.returncode}; see {self.log_path}"
                )
            return self.is_serving()
        if wait_until(serving, timeout, 0.1):
            return self
        self.stop()
        raise ZooKeeperError(f"ZooKeeper did not answer on {self.connect_string} in {timeout}s")

    def stop(self) -> None:
        if self.proc is not None:
            procs.stop_group(self.proc.pid, grace=5.0)
            self.proc = None

    def is_serving(self) -> bool:
        # `ruok` answers `imok` before the server takes sessions; `srvr` tells its mode only then.
        return "Mode: " in four_letter(self.host, self.port, "srvr")
