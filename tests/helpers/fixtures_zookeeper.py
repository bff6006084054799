"""A real ZooKeeper server (Debian package) per test session, and a fresh chroot per test."""
from __future__ import annotations

import uuid

import pytest
from kazoo.client import KazooClient

from localmesos import procs
from localmesos.zookeeper import ZooKeeperServer


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
