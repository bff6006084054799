"""The chaos samplers' bookkeeping, without Kafka: which ISR dips a fault window explains."""
from __future__ import annotations

import time

from tests.helpers.chaos_invariants import GRACE_S, IsrSampler


def test_a_dip_is_explained_only_inside_the_window_of_a_fault_that_touches_a_broker():
    isr = IsrSampler(lambda: "", ("t",))
    t0 = time.monotonic()
    isr.fault("kill_broker_jvm", at=t0)
    assert isr.explained(t0 + 1) == "kill_broker_jvm"  # still open
    isr.healed()
    end = isr.windows[-1].end
    assert isr.explained(end + GRACE_S / 2) == "kill_broker_jvm"
    assert isr.explained(end + GRACE_S + 1) is None  # after recovery: kmf's doing
    assert isr.explained(t0 - 1) is None
    isr.fault("kill_scheduler", at=end + 10, explains=False)
    assert isr.explained(end + 11) is None  # a scheduler fault takes no replica out of sync
