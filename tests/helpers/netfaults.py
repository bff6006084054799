"""Network partitions between the processes of one test cluster on loopback (nftables).

Every process here talks over 127.x, and a socket that is not bound before it connects gets
source address 127.0.0.1 whoever opens it (the master, an agent, a broker, the scheduler, a
client): the source address cannot tell them apart. What can is the socket's cgroup: each process
the test starts is put, before it runs (``sh -c 'echo $$ > cgroup.procs; exec …'``), into a cgroup
v2 of its own under ``/sys/fs/cgroup/unified/<run>/`` (no controller is enabled there: it only
labels), its children (an agent's executors and brokers) inherit it, and nft matches a packet's
sending socket with ``socket cgroupv2 level 2 "unified/<run>/<name>"`` in an output chain. A cut
of A from B drops what A's sockets send to B's listening address and what B's sockets send to
A's: every connection between them stalls in both directions, whoever opened it.

:class:`Partitions` owns ONE nft table named after the run (``kmf_chaos_<hex>``, so runs never
collide) and the cgroup directory; :meth:`Partitions.close` deletes both, also on failure
(the fixture ``partitions`` calls it). :func:`unavailable` says why partitions cannot be made
here (no ``nft``, not permitted, no cgroup v2 socket matching), for a skip with a reason.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path
from typing import Sequence

CGROUP2 = Path("/sys/fs/cgroup/unified")
ROOT_FOR_NFT = Path("/sys/fs/cgroup")  # nft resolves cgroupv2 paths relative to this


def _nft(*args: str, script: str | None = None) -> subprocess.CompletedProcess:
    cmd = ["nft", *args] if script is None else ["nft", "-f", "-"]
    return subprocess.run(cmd, input=script, capture_output=True, text=True, timeout=20)


class Partitions:
    def __init__(self, name: str | None = None) -> None:
        run = name or uuid.uuid4().hex[:10]
        self.table = f"kmf_chaos_{run}"
        self.cgroups = CGROUP2 / f"kmf-chaos-{run}"
        self.cgroups.mkdir(parents=True, exist_ok=True)
        self._rules: dict[str, list[int]] = {}  # cut name → nft rule handles
        done = _nft(script=f"add table inet {self.table}\n"
                           f"add chain inet {self.table} out {{ type filter hook output priority 0; policy accept; }}\n")
        if done.returncode != 0:
            raise RuntimeError(f"nft: {done.stderr.strip()}")

    # processes ---------------------------------------------------------------------------------
    def group(self, name: str) -> Path:
        path = self.cgroups / name
        path.mkdir(exist_ok=True)
        return path

    def wrap(self, name: str, argv: Sequence[str]) -> list[str]:
        """`argv` started inside cgroup `name` (created if needed); the pid stays the same."""
        procs_file = self.group(name) / "cgroup.procs"
        return ["sh", "-c", 'echo $$ > "$0" && exec "$@"', str(procs_file), *argv]

    def _match(self, name: str) -> str:
        rel = (self.cgroups / name).relative_to(ROOT_FOR_NFT)
        level = len((self.cgroups / name).relative_to(CGROUP2).parts)
        return f'socket cgroupv2 level {level} "{rel}"'

    # cuts --------------------------------------------------------------------------------------
    def cut(self, cut: str, pairs: Sequence[tuple[str, str, str]]) -> None:
        """Add the rules of one cut: each (cgroup, daddr, ports) drops what the cgroup's sockets
        send to daddr at those ports (``"31000-31999"``, ``"5050"``; ``""`` any port)."""
        handles = self._rules.setdefault(cut, [])
        for group, daddr, ports in pairs:
            self.group(group)
            port = f" tcp dport {ports}" if ports else ""
            rule = f"{self._match(group)} ip daddr {daddr}{port} drop"
            done = subprocess.run(["nft", "--echo", "--handle", "add", "rule", "inet", self.table, "out",
                                   *rule.split()], capture_output=True, text=True, timeout=20)
            if done.returncode != 0:
                raise RuntimeError(f"nft add rule {rule}: {done.stderr.strip()}")
            handles.append(int(done.stdout.rsplit("# handle", 1)[1].split()[0]))

    def heal(self, cut: str | None = None) -> None:
        """Remove the rules of `cut` (every cut when None)."""
        for name in [cut] if cut else list(self._rules):
            for handle in self._rules.pop(name, []):
                _nft("delete", "rule", "inet", self.table, "out", "handle", str(handle))

    def rules(self) -> str:
        return _nft("list", "table", "inet", self.table).stdout

    def close(self) -> None:
        """Delete the table (every rule) and the cgroups; a process still in one goes back to the root."""
        _nft("delete", "table", "inet", self.table)
        if not self.cgroups.exists():
            return
        for sub in sorted(self.cgroups.rglob("*"), key=lambda p: len(p.parts), reverse=True) + [self.cgroups]:
            if not sub.is_dir():
                continue
            for _ in range(20):
                try:
                    for pid in (sub / "cgroup.procs").read_text().split():
                        try:
                            (CGROUP2 / "cgroup.procs").write_text(pid)
                        except OSError:
                            pass
                    sub.rmdir()
                    break
                except OSError:
                    time.sleep(0.1)


def unavailable() -> str | None:
    """Why network partitions cannot be made here, or None when they can (checked for real: a
    rule must cut a connection from a process in a cgroup and let the same one from outside through)."""
    if shutil.which("nft") is None:
        return "nft is not installed (tools/setup.sh installs nftables)"
    if os.geteuid() != 0:
        return "nft rules need root"
    if not (CGROUP2 / "cgroup.procs").exists():
        return f"no cgroup v2 hierarchy at {CGROUP2} (nft matches a process's sockets by their cgroup)"
    try:
        parts = Partitions()
    except (OSError, RuntimeError) as exc:
        return f"cannot make an nft table and cgroup: {exc}"
    listener = socket.socket()
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        port = listener.getsockname()[1]
        parts.cut("probe", [("probe", "127.0.0.1", str(port))])
        probe = ("import socket,sys\ntry:\n socket.create_connection(('127.0.0.1',%d),timeout=1)\n"
                 "except OSError: sys.exit(3)\n" % port)
        inside = subprocess.run(parts.wrap("probe", ["python3", "-c", probe]), timeout=20).returncode
        outside = subprocess.run(["python3", "-c", probe], timeout=20).returncode
        if inside != 3 or outside != 0:
            return f"an nft cgroupv2 rule does not cut as it should here (inside exit {inside}, outside {outside})"
    except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
        return f"nft rules not permitted here: {exc}"
    finally:
        listener.close()
        parts.close()
    return None

