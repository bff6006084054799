"""The address-block allocator of local clusters (localmesos.addresses): claims are exclusive even
when several processes claim at once, live exactly as long as some holder of the lock runs (a
dead holder's block is free again, with no pid to check), and are given back on release.

Each test uses its own lock folder (tmp_path) so that it neither sees nor takes the blocks of
clusters running on the machine."""
from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from localmesos import addresses, procs
from localmesos.addresses import AddressError, claim

pytestmark = pytest.mark.timeout(60)

REPO = Path(__file__).resolve().parents[3]


def test_a_block_names_its_master_and_agent_addresses(tmp_path):
    with claim("w", blocks=[42], folder=tmp_path) as block:
        assert block.cidr == "127.0.42.0/24"
        assert block.master_ip == "127.0.42.1"
        assert [block.agent_ip(i) for i in range(3)] == ["127.0.42.10", "127.0.42.11", "127.0.42.12"]
        assert block.agent_ip(addresses.MAX_AGENTS - 1) == "127.0.42.254"
        with pytest.raises(AddressError, match="agents 0..244"):
            block.agent_ip(addresses.MAX_AGENTS)
        assert addresses.holder(42, tmp_path)["owner"] == "w"
        assert addresses.holder(42, tmp_path)["pid"] == os.getpid()
    with pytest.raises(AddressError, match="outside"):
        claim("w", blocks=[2], folder=tmp_path)  # 127.0.2.x was the old fixed range: never given


def test_the_default_range_avoids_the_addresses_other_code_uses(tmp_path):
    taken = []
    try:
        for _ in range(20):
            taken.append(claim("w", folder=tmp_path))
        indexes = [b.index for b in taken]
        assert len(set(indexes)) == 20
        assert all(addresses.FIRST_BLOCK <= i <= addresses.LAST_BLOCK for i in indexes)
        assert addresses.FIRST_BLOCK > 2  # 127.0.0.x: random test addresses; 127.0.1.1 and 127.0.2.x: old kmf
    finally:
        for block in taken:
            block.release()


def test_a_held_block_is_refused_and_released_blocks_are_claimed_again(tmp_path):
    first = claim("first", blocks=[20, 21], folder=tmp_path)
    second = claim("second", blocks=[20, 21], folder=tmp_path)  # same process, still exclusive
    assert {first.index, second.index} == {20, 21}
    with pytest.raises(AddressError, match=r"every local cluster address block is taken .*by first"):
        claim("third", blocks=[20, 21], folder=tmp_path)
    index = first.index
    first.release()
    first.release()  # twice is harmless
    assert first.pass_fds == ()
    third = claim("third", blocks=[20, 21], folder=tmp_path)
    assert third.index == index
    assert addresses.holder(index, tmp_path)["owner"] == "third"
    second.release()
    third.release()


def _claim_together(folder, blocks, barrier, results, done) -> None:
    barrier.wait(timeout=20)
    try:
        block = claim(f"pid {os.getpid()}", blocks=blocks, folder=folder)
    except AddressError:
        results.put(None)
        return
    results.put(block.index)
    done.wait(timeout=30)  # hold the claim until every claimant has answered
    block.release()


def test_concurrent_claims_from_many_processes_never_share_a_block(tmp_path):
    """9 processes released at one barrier race for 8 blocks: 8 distinct blocks, one refusal."""
    ctx = multiprocessing.get_context("fork")
    blocks = list(range(100, 108))
    claimants = len(blocks) + 1
    barrier, results, done = ctx.Barrier(claimants), ctx.Queue(), ctx.Event()
    workers = [ctx.Process(target=_claim_together, args=(tmp_path, blocks, barrier, results, done))
               for _ in range(claimants)]
    for w in workers:
        w.start()
    try:
        got = [results.get(timeout=30) for _ in range(claimants)]
    finally:
        done.set()
        for w in workers:
            w.join(timeout=10)
    claimed = [i for i in got if i is not None]
    assert sorted(claimed) == blocks  # each block exactly once
    assert got.count(None) == 1


HOLDER = """
import sys, time
from pathlib import Path
from localmesos.addresses import claim
block = claim("holder", blocks=[int(sys.argv[2])], folder=Path(sys.argv[1]))
print(block.index, flush=True)
time.sleep(60)
"""


def test_a_dead_holders_block_is_claimed_again(tmp_path):
    """kill -9 of the claiming process (no release, its lock file still names it) frees the block."""
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path), "77"], stdout=subprocess.PIPE,
                              text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert holder.stdout.readline().strip() == "77"
        with pytest.raises(AddressError, match="by holder"):
            claim("me", blocks=[77], folder=tmp_path)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
    assert addresses.holder(77, tmp_path)["pid"] == holder.pid  # the stale record is still there
    with claim("me", blocks=[77], folder=tmp_path) as block:
        assert block.index == 77
        record = addresses.holder(77, tmp_path)
        assert (record["owner"], record["pid"]) == ("me", os.getpid())


def test_the_cluster_processes_keep_the_block_after_the_claimant_lets_go(tmp_path):
    """What `kmf local up` relies on: it exits, the master and agents it started hold the block."""
    block = claim("up", blocks=[50], folder=tmp_path)
    child = procs.spawn(["sleep", "60"], log_path=tmp_path / "child.log", pass_fds=block.pass_fds)
    block.release()
    try:
        with pytest.raises(AddressError):
            claim("other", blocks=[50], folder=tmp_path)
    finally:
        procs.stop_group(child.pid, grace=1.0)
    deadline = time.monotonic() + 5
    while True:  # the kernel drops the lock as soon as the last holder is gone
        try:
            again = claim("other", blocks=[50], folder=tmp_path)
            break
        except AddressError:
            assert time.monotonic() < deadline, "the block stayed claimed after its holder stopped"
            time.sleep(0.05)
    again.release()
