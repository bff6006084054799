"""Leader election with real ZooKeeper sessions: one leader, standby takeover, session loss."""
from __future__ import annotations

import socket
import threading

import pytest
from kazoo.client import KazooClient

from scheduler.shell.errors import StoreConflict
from scheduler.shell.leader import LeaderElection
from scheduler.shell.store import StateStore
from tests.helpers.wait import wait_for

pytestmark = pytest.mark.timeout(90)
PATH = "/kmf/kafka/leader"


@pytest.fixture
def clients(zk_chroot):
    made = []

    def make() -> KazooClient:
        client = KazooClient(hosts=zk_chroot, timeout=4.0)
        client.start(timeout=15)
        made.append(client)
        return client

    yield make
    for client in made:
        try:
            client.stop()
            client.close()
        except Exception:  # noqa: BLE001
            pass


def expire_session(client: KazooClient, hosts: str) -> None:
    """End `client`'s session from outside: a second client joins it and closes it."""
    session_id, password = client.client_id
    thief = KazooClient(hosts=hosts, client_id=(session_id, password))
    thief.start(timeout=15)
    thief.stop()
    thief.close()


class Candidate:
    def __init__(self, client: KazooClient, name: str, pausable: bool = False) -> None:
        self.events: list[str] = []
        self.lost = threading.Event()
        self.resumed = threading.Event()

        def suspended() -> bool:
            self.events.append(f"suspended (leader: {self.election.is_leader})")
            return True

        def resumed() -> None:
            self.events.append(f"resumed (leader: {self.election.is_leader})")
            self.resumed.set()
        self.election = LeaderElection(
            client, PATH, name,
            on_elected=lambda: self.events.append("elected"),
            on_lost=lambda reason: (self.events.append(f"lost: {reason}"), self.lost.set()),
            on_suspended=suspended if pausable else None,
            on_resumed=resumed if pausable else None,
        )


def test_only_one_of_three_candidates_leads(clients):
    candidates = [Candidate(clients(), f"scheduler-{i}") for i in range(3)]
    for c in candidates:
        c.election.start()
    wait_for(lambda: any(c.election.is_leader for c in candidates), timeout=15, what="a leader")
    wait_for(lambda: len(candidates[0].election.contenders()) == 3, timeout=10, what="3 in line")
    leaders = [c for c in candidates if c.election.is_leader]
    assert len(leaders) == 1
    assert leaders[0].events == ["elected"]
    assert candidates[0].election.contenders()[0] == leaders[0].election.identifier
    for c in candidates:
        c.election.stop()


def test_standby_takes_over_when_the_leaders_session_expires(clients, zk_chroot):
    first_client, second_client = clients(), clients()
    first = Candidate(first_client, "first")
    first.election.start()
    assert first.election.wait_elected(timeout=15)
    second = Candidate(second_client, "second")
    second.election.start()
    wait_for(lambda: len(second.election.contenders()) == 2, timeout=10, what="standby in line")
    assert not second.election.is_leader

    expire_session(first_client, zk_chroot)

    # the old leader stops deciding, the standby leads
    wait_for(lambda: first.lost.is_set(), timeout=15, what="old leader notices the lost session")
    assert not first.election.is_leader and first.election.ended
    assert second.election.wait_elected(timeout=20)
    assert second.events == ["elected"]
    assert first.events[-1].startswith("lost: ZooKeeper session")
    second.election.stop()


def test_suspended_connection_ends_the_term_at_once(clients):
    client = clients()
    cand = Candidate(client, "only")
    cand.election.start()
    assert cand.election.wait_elected(timeout=15)
    # drop the TCP connection without ending the session: kazoo goes SUSPENDED, then reconnects
    client._connection._socket.shutdown(socket.SHUT_RDWR)
    wait_for(lambda: cand.lost.is_set(), timeout=15, what="term ended on SUSPENDED")
    assert not cand.election.is_leader
    assert "suspended" in cand.election.lost_reason or "lost" in cand.election.lost_reason


def test_a_suspension_pauses_the_term_and_the_same_session_resumes_it(clients):
    """An owner that can pause (the scheduler's loop) keeps its term through a dropped connection:
    not a leader while suspended, the leader again once kazoo is back with the same session."""
    client = clients()
    cand = Candidate(client, "only", pausable=True)
    cand.election.start()
    assert cand.election.wait_elected(timeout=15)
    node = cand.election.lock_node
    client._connection._socket.shutdown(socket.SHUT_RDWR)
    wait_for(cand.resumed.is_set, timeout=15, what="the term resumed after the reconnect")
    assert cand.events == ["elected", "suspended (leader: False)", "resumed (leader: True)"], cand.events
    assert cand.election.is_leader and not cand.lost.is_set() and cand.election.resumed_count == 1
    assert cand.election.lock_node == node and client.exists(node).ephemeralOwner == client.client_id[0]
    cand.election.stop()


def test_a_suspended_term_ends_when_the_session_is_gone(clients, zk_chroot):
    """Suspended, then the session expired (a standby may lead by now): the term is over."""
    client, other = clients(), clients()
    cand = Candidate(client, "first", pausable=True)
    cand.election.start()
    assert cand.election.wait_elected(timeout=15)
    second = Candidate(other, "second")
    second.election.start()
    expire_session(client, zk_chroot)
    wait_for(cand.lost.is_set, timeout=20, what="the suspended term ended")
    assert not cand.resumed.is_set() and not cand.election.is_leader and cand.election.ended
    assert second.election.wait_elected(timeout=20)
    second.election.stop()


def test_fenced_store_refuses_writes_from_a_deposed_leader(clients, zk_chroot):
    old_client, new_client = clients(), clients()
    old = Candidate(old_client, "old")
    old.election.start()
    assert old.election.wait_elected(timeout=15)
    store = StateStore(old_client, "kafka", root="/kmf")
    store.initialize()
    store.set_fence(old.election.lock_node)
    store.put("properties", "next_broker_id", 1)
    new = Candidate(new_client, "new")
    new.election.start()
    expire_session(old_client, zk_chroot)
    assert new.election.wait_elected(timeout=20)
    # kazoo reconnects the old client with a new session; its lock node is gone, so the fence
    # check fails even though the client itself could write again
    wait_for(lambda: old_client.connected, timeout=20, what="old client reconnected")
    with pytest.raises(StoreConflict, match="leader lock node is gone"):
        store.put("properties", "next_broker_id", 99)
    assert StateStore(new_client, "kafka", root="/kmf").read("properties", "next_broker_id") == 1
    new.election.stop()
