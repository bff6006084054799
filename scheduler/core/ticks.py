"""The shell's once-a-second `Tick`: what time alone makes due.

In order: reconciliation asked again, permanent failures replaced, the rolling update's next step,
a broker certificate due for renewal (cert_renewal), the CA rotation's next step (ca_rotation), Mesos maintenance (holds ended, held brokers stopped, inverse offers answered), the end of an
uninstall (`Teardown` once no task and no reservation is left), offer control.
"""
from __future__ import annotations

from scheduler.core import actions as act
from scheduler.core import ca_rotation, cert_renewal
from scheduler.core import events as ev
from scheduler.core.maintenance import maintain
from scheduler.core.offer_control import offer_control
from scheduler.core.reconcile import reconcile_again
from scheduler.core.records import Result
from scheduler.core.recovery import permanent_failures
from scheduler.core.rolling import roll
from scheduler.core.state import State


def on_tick(state: State, event: ev.Tick) -> Result:
    """Whatever became due by `event.now` (module docstring)."""
    state, out = reconcile_again(state, event.now)
    state, more = permanent_failures(state, event.now)
    out += more
    state, more = roll(state, event.now)
    out += more
    state, more = cert_renewal.renew(state, event.now)
    out += more
    state, more = ca_rotation.progress(state, event.now)
    out += more
    state, more = maintain(state, event.now)
    out += more
    if state.uninstalling and not state.tasks and not state.releasing:
        return state, tuple(out + [act.Teardown()])
    return offer_control(state, event.now, out)
