"""Chaos with ZooKeeper as a 3-member ensemble (`make chaos` only): one member killed, the leading
member killed, quorum lost for 20 s, alone and in a seeded random sequence mixed with the
process faults of tests/chaos/test_faults.py, under the same load and invariants.

The scheduler keeps or regains leadership safely: either its ZooKeeper connection never broke
(it still leads, the same process), or its connection was suspended, it ended its term at once
and exited 1 (`leadership lost`), and a fresh scheduler leads (what Marathon would do). A stale
leader's decisions are covered by stop_leader (SIGSTOP past its session, then the check that
nothing changed between its SIGCONT and its exit).
"""
from __future__ import annotations

import os
import random
import time

import pytest

from tests.chaos.test_faults import (
    FULL,
    PAUSES,
    RANDOM,
    Chaos,
    append_doc,
    assert_load_intact,
    run_faults,
    start_service,
)
from tests.helpers.fixtures_zookeeper import EnsembleMember, ZooKeeperEnsemble, chroot_on
from tests.helpers.wait import wait_for

# skipped before any fixture starts (no ensemble started just to skip) outside make chaos
pytestmark = [pytest.mark.kafka, pytest.mark.skipif(
    not FULL, reason="make chaos only (KMF_CHAOS_FULL=1): a 3-member ZooKeeper ensemble under faults")]
ZK_FAULTS = ["kill_zk_member", "kill_zk_leader_member", "zk_quorum_lost_20s"]
# restart_zookeeper is the single server's fault; the rest mix in
MIXED = [f for f in RANDOM if f != "restart_zookeeper"] + PAUSES


@pytest.fixture
def zk_chroot(zk_ensemble: ZooKeeperEnsemble):
    """This module's services (master, scheduler) use the ensemble: a chroot of their own on it."""
    yield from chroot_on(zk_ensemble.connect_string)


class EnsembleChaos(Chaos):
    zookeeper: ZooKeeperEnsemble

    def _members_down(self, members: list[EnsembleMember], seconds: float) -> None:
        old = self.s
        print(f"chaos: ZooKeeper members {[m.myid for m in members]} killed for {seconds:g}s "
              f"(modes {[m.mode() for m in members]})", flush=True)
        for m in members:
            m.kill()
        try:
            time.sleep(seconds)
        finally:
            self.zookeeper.restart(members)
        self.after_zk_fault(old)

    def after_zk_fault(self, old) -> None:
        """Either the scheduler still leads (its session's connection held), or it ended its term
        and exited 1 and a new one is started."""
        lm = self.env.lm

        def settled() -> bool:
            if lm.master_proc is not None and lm.master_proc.poll() is not None:
                # the Mesos master aborts when its ZooKeeper session is lost (as Mesos does) and
                # its supervisor starts it again: that is the harness's job here, not kmf's
                print(f"chaos: the Mesos master exited ({lm.master_proc.returncode}) after losing "
                      "ZooKeeper; started again", flush=True)
                lm.start_master(timeout=60)
            if old.proc.poll() is not None:
                return True
            h = self.health()
            return h.get("role") == "leader" and bool(h.get("zookeeper_connected"))
        wait_for(settled, timeout=90, interval=0.5, what="the scheduler leads again or stops")
        if old.proc.poll() is not None:
            self.relaunch_after_exit(old, "its ZooKeeper connection was suspended")
            print("chaos: the scheduler ended its term and a new one leads", flush=True)
        else:
            print("chaos: the scheduler kept its leadership", flush=True)

    def kill_zk_member(self, rng) -> None:
        """kill -9 one follower for 10 s: a quorum of 2 serves on."""
        follower = rng.choice([m for m in self.zookeeper.members if m.mode() == "follower"])
        self._members_down([follower], 10.0)

    def kill_zk_leader_member(self, rng) -> None:
        """kill -9 the leading member for 10 s: the other two elect a new leader."""
        leader = self.zookeeper.leader()
        assert leader is not None, "no ZooKeeper member leads"
        self._members_down([leader], 10.0)
        assert self.zookeeper.leader() is not None

    def zk_quorum_lost_20s(self, rng) -> None:
        """kill -9 two of three members for 20 s: no quorum, nobody can decide; then regained."""
        self._members_down(rng.sample(self.zookeeper.members, 2), 20.0)


@pytest.mark.timeout(2400)
def test_leadership_kept_or_regained_safely_when_zookeeper_members_fail(kmf_env, zk_ensemble, partitions):
    seed = int(os.environ.get("KMF_CHAOS_SEED") or random.randrange(1 << 30))
    rng = random.Random(seed)
    print(f"chaos (ZooKeeper ensemble) seed {seed}")
    env, s, boot, _ = start_service(kmf_env, 3, partitions)
    chaos = EnsembleChaos(env, s, zk_ensemble, partitions)
    runs = int(os.environ.get("KMF_CHAOS_RUNS", "4"))
    faults = ZK_FAULTS + [rng.choice(ZK_FAULTS + MIXED) for _ in range(runs)]
    if os.environ.get("KMF_CHAOS_ZK_FAULTS"):  # replay or debug a chosen sequence
        faults = os.environ["KMF_CHAOS_ZK_FAULTS"].split(",")
    print(f"chaos faults: {', '.join(faults)}", flush=True)
    rows, summary = run_faults(chaos, faults, boot, rng)
    if not os.environ.get("KMF_CHAOS_ZK_FAULTS"):
        append_doc("ZooKeeper as a 3-member ensemble", rows, seed, summary, faults)
    assert_load_intact(summary)
    assert len(chaos.runs) == len(faults)
