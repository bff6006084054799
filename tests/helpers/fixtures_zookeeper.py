"""A real ZooKeeper server (Debian package) per test session, and a fresh chroot per test.

Faults for tests that need them (see tests/chaos): :func:`restart_zookeeper` crashes the server and
starts it again on the same address and data dir (sessions survive if they reconnect within their
timeout, as with a real restart); the server is serving again before it returns.

:class:`ZooKeeperEnsemble` (fixture ``zk_ensemble``, one per module) is three members on their own
loopback addresses, for faults that kill one member, the leading member, or a quorum.
"""
from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid
from typing import Iterator

import pytest
from kazoo.client import KazooClient

from localmesos import procs
from localmesos.zookeeper import ZooKeeperServer, four_letter


def restart_zookeeper(server: ZooKeeperServer, down_s: float = 0.0) -> float:
    """Kill -9 `server` and start it again on the same host, port and data dir, after `down_s`
    seconds down. Returns the seconds it was not serving. Leaves the server running even when
    a caller's later step fails (a session fixture: other tests use it)."""
    if server.proc is None:
        raise RuntimeError("ZooKeeper is not running")
    stopped = time.monotonic()
    try:
        os.killpg(server.proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    server.proc.wait(timeout=30)
    server.proc = None
    if down_s:
        time.sleep(down_s)
    server.start(timeout=60)
    return time.monotonic() - stopped


@contextlib.contextmanager
def zk_session(connect: str, digest: str | None = None) -> Iterator[KazooClient]:
    """A client of the test's own (with digest credentials ``user:password`` when given: the
    service's owner; without: a stranger to its ACLs), stopped afterwards."""
    client = KazooClient(hosts=connect, auth_data=[("digest", digest)] if digest else None)
    client.start(timeout=15)
    try:
        yield client
    finally:
        client.stop()
        client.close()


def node_texts(client: KazooClient, path: str, skip: tuple[str, ...] = ()) -> list[str]:
    """The data of `path` and every node below it, as text (nodes whose path ends with one of
    `skip` left out)."""
    data, _ = client.get(path)
    out = [] if path.endswith(skip) else [data.decode(errors="replace")]
    for child in client.get_children(path):
        out += node_texts(client, f"{path}/{child}", skip)
    return out


@pytest.fixture(scope="session")
def zookeeper(tmp_path_factory) -> ZooKeeperServer:
    server = ZooKeeperServer(tmp_path_factory.mktemp("zookeeper"), host=procs.loopback_ip())
    server.start()
    yield server
    server.stop()


def chroot_on(connect: str) -> Iterator[str]:
    """For a fixture: `connect` with a chroot of its own (`…/kmftest-<uuid>`), removed afterwards."""
    root = f"/kmftest-{uuid.uuid4().hex[:12]}"
    client = KazooClient(hosts=connect)
    client.start(timeout=30)
    client.ensure_path(root)
    try:
        yield f"{connect}{root}"
    finally:
        try:
            client.delete(root, recursive=True)
        finally:
            client.stop()
            client.close()


@pytest.fixture
def zk_chroot(zookeeper) -> Iterator[str]:
    """A connect string with a chroot of its own (`host:port/kmftest-<uuid>`), removed afterwards."""
    yield from chroot_on(zookeeper.connect_string)


@pytest.fixture
def zk_client(zk_chroot) -> KazooClient:
    client = KazooClient(hosts=zk_chroot)
    client.start(timeout=15)
    yield client
    client.stop()
    client.close()


# ---------------------------------------------------------------------------- a 3-node ensemble


class EnsembleMember(ZooKeeperServer):
    """One member of a ZooKeeper ensemble: the single-server config plus every member's quorum and
    election ports (each member on its own loopback address) and this member's id."""

    def __init__(self, workdir, host: str, myid: int) -> None:
        super().__init__(workdir, host=host)
        self.myid = myid
        self.quorum_port, self.election_port = procs.free_port(host), procs.free_port(host)
        self.peers: list["EnsembleMember"] = []

    def write_config(self):
        cfg = super().write_config()
        (self.workdir / "data" / "myid").write_text(f"{self.myid}\n")
        servers = [f"server.{m.myid}={m.host}:{m.quorum_port}:{m.election_port}" for m in self.peers]
        # ticks of 500 ms: a member that stops answering is left after syncLimit ticks (2.5 s)
        cfg.write_text(cfg.read_text() + "\n".join(["initLimit=20", "syncLimit=5", *servers, ""]))
        return cfg

    def launch(self) -> None:
        """Start the process without waiting: a member serves only once a quorum has formed."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc = procs.spawn(self.argv(), log_path=self.log_path, cwd=self.workdir)

    def kill(self) -> None:
        """kill -9 (its data dir stays for the restart)."""
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
            self.proc = None

    def mode(self) -> str:
        """'leader', 'follower', or '' when it does not serve (down, or no quorum)."""
        for line in four_letter(self.host, self.port, "srvr").splitlines():
            if line.startswith("Mode: "):
                return line[len("Mode: "):].strip()
        return ""


class ZooKeeperEnsemble:
    """Three :class:`EnsembleMember` s. Faults: :meth:`kill` and :meth:`restart` of members;
    :meth:`leader` names the member that leads now."""

    def __init__(self, workdir, size: int = 3) -> None:
        hosts: list[str] = []
        while len(hosts) < size:
            host = procs.loopback_ip()
            if host not in hosts:
                hosts.append(host)
        self.members = [EnsembleMember(workdir / f"zk{i + 1}", hosts[i], i + 1) for i in range(size)]
        for member in self.members:
            member.peers = self.members

    @property
    def connect_string(self) -> str:
        return ",".join(m.connect_string for m in self.members)

    def start(self, timeout: float = 90.0) -> "ZooKeeperEnsemble":
        for member in self.members:
            member.launch()
        self.wait_serving(self.members, timeout)
        return self

    def wait_serving(self, members, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while not all(m.is_serving() for m in members):
            for m in members:
                if m.proc is not None and m.proc.poll() is not None:
                    raise RuntimeError(f"ZooKeeper member {m.myid} exited with {m.proc.returncode}; see {m.log_path}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"ZooKeeper members {[m.myid for m in members if not m.is_serving()]} "
                                   f"not serving after {timeout:g}s")
            time.sleep(0.2)

    def leader(self) -> EnsembleMember | None:
        return next((m for m in self.members if m.mode() == "leader"), None)

    def restart(self, members, timeout: float = 90.0) -> None:
        """Start killed `members` again (same address, ports and data) and wait until all serve."""
        for m in members:
            m.launch()
        self.wait_serving(self.members, timeout)

    def stop(self) -> None:
        for member in self.members:
            member.stop()


@pytest.fixture(scope="module")
def zk_ensemble(tmp_path_factory) -> Iterator[ZooKeeperEnsemble]:
    """A 3-member ensemble for one test module (a test that kills members leaves it to itself)."""
    ensemble = ZooKeeperEnsemble(tmp_path_factory.mktemp("zk-ensemble"))
    try:
        ensemble.start()
        yield ensemble
    finally:
        ensemble.stop()
