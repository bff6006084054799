"""The project's one wait/retry helper: ask until something is true or a deadline passes.

Pure apart from its defaults: the clock (`time.monotonic`), the sleep (`time.sleep`) and the chance
for jitter (`random.random`) are arguments, so tests pass fakes instead of sleeping. No threads: a
caller that must wake early passes an event's ``wait`` as the sleep.
"""
from __future__ import annotations

import random
import time
from typing import Callable, TypeVar

T = TypeVar("T")


def wait_until(done: Callable[[], T], timeout: float | None, interval: float, *,
               jitter: float = 0.0,
               clock: Callable[[], float] = time.monotonic,
               sleep: Callable[[float], object] = time.sleep,
               chance: Callable[[], float] = random.random) -> T | None:
    """Call ``done()`` until it returns something true, which is returned; None once ``timeout``
    seconds have passed (``None``: no limit).

    ``done`` is called at once, then after each pause of ``interval`` seconds plus up to ``jitter``
    more (``jitter * chance()``, spreading callers that start together). A pause never runs past the
    deadline: the last one is cut short so that ``done`` is asked a last time at the deadline, and
    not again after it. An exception from ``done`` ends the wait.
    """
    deadline = None if timeout is None else clock() + timeout
    while True:
        value = done()
        if value:
            return value
        pause = interval + (jitter * chance() if jitter > 0 else 0.0)
        if deadline is not None:
            left = deadline - clock()
            if left <= 0:
                return None
            pause = min(pause, left)
        sleep(pause)
