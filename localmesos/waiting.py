"""The one poll-until-deadline loop of localmesos: wait for a process to serve, exit or register,
with the clock and the sleep injectable (tests pass fakes instead of sleeping)."""
from __future__ import annotations

import time
from typing import Callable, TypeVar

T = TypeVar("T")


def wait_until(done: Callable[[], T], timeout: float | None, interval: float, *,
               clock: Callable[[], float] = time.monotonic,
               sleep: Callable[[float], None] = time.sleep) -> T | None:
    """Call ``done()`` every ``interval`` seconds until it returns something true, which is
    returned; None once ``timeout`` seconds have passed (``None``: no limit). ``done`` is not
    called again after the deadline; an exception from it ends the wait."""
    deadline = None if timeout is None else clock() + timeout
    while deadline is None or clock() < deadline:
        value = done()
        if value:
            return value
        sleep(interval)
    return None
