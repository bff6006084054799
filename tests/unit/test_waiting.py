"""kmfwire.waiting.wait_until, the project's one wait/retry helper, on a fake clock: the first true
answer ends the wait, the deadline is respected, the last check falls on the deadline, and jitter
stays within its bound."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kmfwire.waiting import wait_until

pytestmark = pytest.mark.timeout(60)


class FakeClock:
    """A clock that only moves when slept on."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_the_first_true_answer_is_returned():
    clock, answers = FakeClock(), iter([0, None, "up"])
    assert wait_until(lambda: next(answers), 10.0, 0.5, clock=clock, sleep=clock.sleep) == "up"
    assert clock.sleeps == [0.5, 0.5]


def test_it_gives_up_after_a_last_check_at_the_deadline():
    clock, calls = FakeClock(), []
    assert wait_until(lambda: calls.append(clock.now), 1.0, 0.3, clock=clock, sleep=clock.sleep) is None
    assert calls == pytest.approx([0.0, 0.3, 0.6, 0.9, 1.0])
    assert clock.now == pytest.approx(1.0)


def test_a_zero_timeout_asks_once_and_never_sleeps():
    clock, calls = FakeClock(), []
    assert wait_until(lambda: calls.append(clock.now), 0.0, 1.0, clock=clock, sleep=clock.sleep) is None
    assert calls == [0.0] and clock.sleeps == []


def test_without_a_timeout_it_waits_as_long_as_it_takes():
    clock = FakeClock()
    assert wait_until(lambda: clock.now >= 1000, None, 1.0, clock=clock, sleep=clock.sleep)
    assert clock.now == 1000


def test_an_error_from_the_check_ends_the_wait():
    clock = FakeClock()

    def broken() -> bool:
        raise KeyError("gone")

    with pytest.raises(KeyError):
        wait_until(broken, 5.0, 1.0, clock=clock, sleep=clock.sleep)
    assert clock.sleeps == []


def test_jitter_adds_its_share_of_chance_to_each_pause():
    clock, chances = FakeClock(), iter([0.0, 0.5, 1.0])
    wait_until(lambda: len(clock.sleeps) == 3, None, 1.0, jitter=0.2, clock=clock, sleep=clock.sleep,
               chance=lambda: next(chances))
    assert clock.sleeps == pytest.approx([1.0, 1.1, 1.2])


@given(timeout=st.floats(0.0, 100.0), interval=st.floats(0.01, 10.0), jitter=st.floats(0.0, 5.0),
       chance=st.floats(0.0, 1.0, exclude_max=True))
def test_the_deadline_is_respected_and_jitter_bounded(timeout, interval, jitter, chance):
    clock, calls = FakeClock(), []
    assert wait_until(lambda: calls.append(clock.now), timeout, interval, jitter=jitter, clock=clock,
                      sleep=clock.sleep, chance=lambda: chance) is None
    assert clock.now == pytest.approx(timeout)  # never waits past the deadline
    assert calls[-1] == pytest.approx(timeout)  # and asks a last time there
    assert all(0 < pause <= interval + jitter for pause in clock.sleeps)
    assert all(pause >= interval for pause in clock.sleeps[:-1])  # only the last pause is cut short
