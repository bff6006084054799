"""Fixtures of the chaos tests (tests/chaos/test_faults.py, tests/chaos/test_zk_ensemble.py)."""
from __future__ import annotations

import pytest

from tests.helpers import netfaults


@pytest.fixture
def partitions():
    """One nft table and cgroup tree for this run (None, with the reason printed, when network
    partitions cannot be made here); deleted at teardown, also when the test fails."""
    why = netfaults.unavailable()
    if why:
        print(f"chaos: network partitions skipped: {why}", flush=True)
        yield None
        return
    parts = netfaults.Partitions()
    try:
        yield parts
    finally:
        parts.close()
