"""kazoo against the real ZooKeeper server that the fixtures start."""
import threading

import pytest
from kazoo.exceptions import BadVersionError, NodeExistsError

from localmesos.zookeeper import four_letter

pytestmark = pytest.mark.timeout(60)


def test_server_answers_four_letter_words(zookeeper):
    assert four_letter(zookeeper.host, zookeeper.port, "ruok") == "imok"
    assert "Zookeeper version: 3.8" in four_letter(zookeeper.host, zookeeper.port, "srvr")


def test_create_read_and_versioned_transaction(zk_client):
    zk_client.create("/a", b"one", makepath=True)
    data, stat = zk_client.get("/a")
    assert data == b"one" and stat.version == 0

    txn = zk_client.transaction()
    txn.check("/a", stat.version)
    txn.set_data("/a", b"two")
    txn.create("/b", b"new")
    assert not [r for r in txn.commit() if isinstance(r, Exception)]
    assert zk_client.get("/a")[0] == b"two"
    assert zk_client.exists("/b")

    # A transaction with a stale version changes nothing at all.
    stale = zk_client.transaction()
    stale.check("/a", stat.version)
    stale.set_data("/a", b"three")
    stale.create("/c", b"never")
    results = stale.commit()
    assert isinstance(results[0], BadVersionError)
    assert zk_client.get("/a")[0] == b"two"
    assert zk_client.exists("/c") is None
    with pytest.raises(NodeExistsError):
        zk_client.create("/b", b"again")


def test_watch_sees_change(zk_client):
    seen = threading.Event()
    zk_client.create("/w", b"0")

    @zk_client.DataWatch("/w")
    def _watch(data, stat):
        if data == b"1":
            seen.set()

    zk_client.set("/w", b"1")
    assert seen.wait(10)


def test_chroots_are_isolated(zk_client, zookeeper):
    from kazoo.client import KazooClient

    zk_client.create("/only-here", b"x")
    other = KazooClient(hosts=zookeeper.connect_string)
    other.start(timeout=15)
    try:
        assert other.exists("/only-here") is None
    finally:
        other.stop()
        other.close()
