"""A real ZooKeeper server (Debian package) per test session, and a fresh chroot per test.

Faults for tests that need them (see tests/chaos): :func:`restart_zookeeper` crashes the server and
starts it again on the same address and data dir (sessions survive if they reconnect within their
timeout, as with a real restart); the server is serving again before it returns.
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
from localmesos.zookeeper import ZooKeeperServer


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


@pytest.fixture
def zk_chroot(zookeeper) -> str:
    """A connect string with a chroot of its own (`host:port/kmftest-<uuid>`), removed afterwards."""
    root = f"/kmftest-{uuid.uuid4().hex[:12]}"
    client = KazooClient(hosts=zookeeper.connect_string)
    client.start(timeout=15)
    client.ensure_path(root)
    try:
        yield f"{zookeeper.connect_string}{root}"
    finally:
        client.delete(root, recursive=True)
        client.stop()
        client.close()


@pytest.fixture
def zk_client(zk_chroot) -> KazooClient:
    client = KazooClient(hosts=zk_chroot)
    client.start(timeout=15)
    yield client
    client.stop()
    client.close()
