"""Chaos with ZooKeeper as a 3-member ensemble (issue 15): the scheduler keeps or regains its
leadership safely while members die, the leader member dies, and the quorum is gone for 20 s.

The same service, workload and invariants as tests/chaos/test_faults.py (its `Chaos` does the
measuring and checking), with the scheduler's ZooKeeper being an ensemble. When its ZooKeeper
connection is suspended, kmf's leading scheduler pauses its decisions; back with the same session
(kazoo reconnects to another member) it resumes, otherwise its term ends and it exits 1
(scheduler/shell/leader.py). Here, as under Marathon, an exited scheduler is started again, and
the run counts resumed terms and restarts. An exit for any other reason, or with another code,
fails the run. `stop_leader` (SIGSTOP the leading
scheduler past its session, a standby takes over, the old one woken) runs on the ensemble too: no
decision of the stale leader may land.

`make test` runs the leader member's death alone; `make chaos` (KMF_CHAOS_FULL=1) every ensemble
fault, then seeded random ones mixed with process faults (KMF_CHAOS_SEED replays one).
"""
from __future__ import annotations

import os
import platform
import random
import re
import time
from datetime import datetime, timezone

import pytest

from tests.chaos.test_faults import DOC, Chaos, run_faults, start_service
from tests.helpers.wait import wait_for
from tests.helpers.zk_ensemble import Ensemble

pytestmark = [pytest.mark.kafka]
FULL = os.environ.get("KMF_CHAOS_FULL") == "1"
QUORUM_LOST_S = 20.0

# the scheduler's own lines when it stops on a ZooKeeper fault: as leader, as a standby, or a
# fresh one started while there is no quorum
RESUMED = "back with the same session: leadership at"  # scheduler/shell/leader.py's line
ZK_EXITS = ("leadership lost", "cannot connect to ZooKeeper", "ZooKeeper session")


@pytest.fixture
def ensemble(tmp_path_factory):
    e = Ensemble(tmp_path_factory.mktemp("zk-ensemble")).start()
    yield e
    e.stop()


@pytest.fixture
def zk_chroot(ensemble):
    """kmf_env's ZooKeeper: the ensemble, under a chroot of the test's own."""
    from kazoo.client import KazooClient
    root = "/kmftest-ensemble"
    client = KazooClient(hosts=ensemble.connect_string)
    client.start(timeout=30)
    client.ensure_path(root)
    client.stop()
    client.close()
    return f"{ensemble.connect_string}{root}"


class EnsembleChaos(Chaos):
    def __init__(self, env, scheduler, ensemble: Ensemble) -> None:
        super().__init__(env, scheduler, None, None)
        self.ensemble = ensemble
        self.restarts: list[str] = []
        self.master_restarts = 0

    def healthy(self) -> bool:
        """As Marathon would: a scheduler that stopped on a ZooKeeper fault is started again. And
        as the master's supervisor would: a master that aborted on losing its ZooKeeper session
        (Apache Mesos does the same; localmesos follows it) is started again."""
        lm = self.env.lm
        if lm.master_proc is not None and lm.master_proc.poll() is not None:
            assert "lost ZooKeeper membership" in lm.master_log(), lm.master_log()[-1500:]
            self.master_restarts += 1
            lm.master_proc = None  # it exited (and was reaped): start it again on its address and work dir
            lm.start_master()
            return False
        old = self.s
        if old.proc.poll() is not None:
            log = old.log(20000)
            assert old.proc.returncode == 1 and any(why in log for why in ZK_EXITS), \
                f"scheduler exited with {old.proc.returncode} for another reason: {old.log(1500)}"
            self.restarts.append(next(why for why in ZK_EXITS if why in log))
            self.s = self.env.start_scheduler(config=old.config)
            return False
        return super().healthy()

    def resumed(self) -> int:
        """Terms resumed after a suspension, by every scheduler this run started (their logs)."""
        return sum(s.log(10 ** 7).count(RESUMED) for s in self.env.schedulers)

    # faults ------------------------------------------------------------------------------------
    def kill_zk_member(self, rng) -> None:
        """A follower member dies and comes back 5 s later."""
        member = rng.choice([m for m in self.ensemble.members if m.mode() == "follower"])
        member.kill()
        time.sleep(5)
        self.ensemble.restart(member)

    def kill_zk_leader_member(self, rng) -> None:
        """The ensemble's leader dies: the others elect one; the dead one rejoins as a follower."""
        leader = self.ensemble.leader()
        assert leader is not None, "no ZooKeeper leader before the fault"
        leader.kill()
        wait_for(lambda: (lambda new: new is not None and new is not leader)(self.ensemble.leader()),
                 timeout=60, interval=0.2, what="a new ZooKeeper leader")
        self.ensemble.restart(leader)

    def zk_quorum_lost(self, rng) -> None:
        """Two of three members die: no quorum for 20 s, then both come back."""
        gone = rng.sample(self.ensemble.members, 2)
        for m in gone:
            m.kill()
        time.sleep(QUORUM_LOST_S)
        for m in gone:
            m.spawn()
        self.ensemble.wait_quorum(3)


def write_section(rows: list[str], seed: int, faults: list[str], restarts: list[str], resumed: int,
                  master_restarts: int, line: str) -> None:
    """The ensemble's table as its own section of docs/chaos.md (test_faults.py keeps it when it
    rewrites the rest)."""
    runs = os.environ.get("KMF_CHAOS_RUNS", "3")
    section = "\n".join([
        SECTION_START,
        "## ZooKeeper as a 3-member ensemble",
        "",
        "Written by `tests/chaos/test_zk_ensemble.py` under `KMF_CHAOS_FULL=1`: the same service, workload",
        "and invariants, with the scheduler's ZooKeeper a 3-member ensemble. A leading scheduler whose",
        "ZooKeeper connection is suspended pauses its decisions and resumes its term when kazoo is back with",
        "the same session; otherwise the term ends and it exits 1, and the test starts it again as Marathon",
        "would. Resumed terms and restarts are counted; any other exit fails the run.",
        "",
        f"- date: {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- command: `KMF_CHAOS_FULL=1 KMF_CHAOS_SEED={seed} KMF_CHAOS_RUNS={runs} "
        ".venv/bin/python -m pytest tests/chaos/test_zk_ensemble.py -s`",
        f"- machine: {os.cpu_count()} cores, {platform.system()} {platform.release()}, Python {platform.python_version()}",
        f"- faults in order: {', '.join(faults)}",
        f"- terms resumed with the same session: {resumed}; "
        f"scheduler restarts after ZooKeeper faults: {len(restarts)} ({', '.join(restarts) or 'none'}); "
        f"master restarts after it lost its ZooKeeper session: {master_restarts}",
        f"- workload: {line}",
        "",
        *rows,
        SECTION_END,
    ])
    text = DOC.read_text() if DOC.exists() else ""
    pattern = re.compile(re.escape(SECTION_START) + ".*?" + re.escape(SECTION_END), re.S)
    DOC.write_text(pattern.sub(lambda _: section, text) if pattern.search(text)
                   else text.rstrip("\n") + "\n\n" + section + "\n")


SECTION_START = "<!-- zookeeper-ensemble: written by tests/chaos/test_zk_ensemble.py -->"
SECTION_END = "<!-- /zookeeper-ensemble -->"
ENSEMBLE = ["kill_zk_member", "kill_zk_leader_member", "zk_quorum_lost", "stop_leader"]
MIXED = ENSEMBLE + ["kill_broker_jvm", "kill_scheduler", "restart_master", "kill_app_instance"]


@pytest.mark.timeout(1800 if FULL else 600)
def test_scheduler_leads_safely_through_zookeeper_ensemble_faults(kmf_env, ensemble):
    seed = int(os.environ.get("KMF_CHAOS_SEED") or random.randrange(1 << 30))
    rng = random.Random(seed)
    faults = list(ENSEMBLE) + [rng.choice(MIXED) for _ in range(int(os.environ.get("KMF_CHAOS_RUNS", "3")))] \
        if FULL else ["kill_zk_leader_member"]
    print(f"chaos (ZooKeeper ensemble {ensemble.connect_string}) seed {seed}: {', '.join(faults)}", flush=True)
    env, s, boot = start_service(kmf_env, 3, None)
    chaos = EnsembleChaos(env, s, ensemble)
    rows, summary = run_faults(chaos, faults, boot, rng)
    print(f"chaos: terms resumed with the same session {chaos.resumed()}; scheduler restarts (as Marathon "
          f"would) after ZooKeeper faults: {len(chaos.restarts)} {chaos.restarts}; master restarts "
          f"{chaos.master_restarts}", flush=True)
    if FULL and not os.environ.get("KMF_CHAOS_FAULTS"):
        write_section(rows, seed, faults, chaos.restarts, chaos.resumed(), chaos.master_restarts, summary.line())
    assert summary.lost == (), f"acknowledged records lost: {summary.lost[:20]}"
    assert summary.acknowledged > 0 and len(chaos.runs) == len(faults)
