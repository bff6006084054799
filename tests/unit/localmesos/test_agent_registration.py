"""When the agent suspects its master, as pure decisions: the ping deadline (twice the median gap
between the last pings, plus a second) and what a quiet link leads to (ask the master, or register
again)."""
from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from localmesos.agent.registration import link_check, ping_deadline

gaps = st.lists(st.floats(min_value=0.01, max_value=600.0), max_size=5)


def test_without_pings_the_deadline_assumes_mesos_default_interval():
    assert ping_deadline([]) == 31.0


def test_the_deadline_follows_the_median_gap():
    assert ping_deadline([1.0, 100.0, 2.0]) == 5.0
    assert ping_deadline([4.0, 1.0]) == 9.0  # the upper median of an even count


@given(gaps)
def test_the_deadline_lies_past_twice_some_observed_gap(observed):
    deadline = ping_deadline(observed)
    if observed:
        assert 2 * min(observed) + 1.0 <= deadline <= 2 * max(observed) + 1.0
    assert deadline > 1.0


def test_an_unregistered_agent_has_nothing_to_check():
    assert link_check(False, quiet=1e6, since_check=1e6, gaps=[]) == "ok"


def test_a_recent_ping_is_ok():
    assert link_check(True, quiet=1.5, since_check=10.0, gaps=[1.0]) == "ok"


def test_a_quiet_link_asks_the_master_at_most_once_a_second():
    assert link_check(True, quiet=2.5, since_check=1.5, gaps=[1.0, 1.0]) == "check"
    assert link_check(True, quiet=2.5, since_check=0.5, gaps=[1.0, 1.0]) == "ok"


def test_past_the_deadline_the_agent_registers_again():
    assert link_check(True, quiet=3.5, since_check=0.0, gaps=[1.0, 1.0]) == "stale"


@given(st.booleans(), st.floats(0, 1e4), st.floats(0, 1e4), gaps)
def test_stale_exactly_when_registered_and_past_the_deadline(registered, quiet, since_check, observed):
    verdict = link_check(registered, quiet, since_check, observed)
    assert (verdict == "stale") == (registered and quiet > ping_deadline(observed))
    if verdict == "check":
        assert quiet > 2.0 and since_check > 1.0
