"""What the scheduler's launch file means at start-up (issue 12: a restart must undo nothing).

The stored target config in ZooKeeper is the service's truth. The launch file (the YAML Marathon
fetched) only seeds a new service. For a service that exists it is read as an operator's request
only when it differs from the launch file the service last started with: then it goes to the
decision loop as an ``update_config`` command, through exactly the checks of `kmf config update`
(safe changes, the broker-count check, live settings), and its diff is logged. A launch file that
did not change since the last start is ignored, so a ``kmf config update`` or ``kmf scale`` made
since then survives any number of scheduler restarts.

What a launch file asks of the *service* is compared, not the scheduler process's own settings:
the ``api`` section (the port, address, token and certificate files of this scheduler's listener)
is read from each instance's own launch file at start-up and differs between a leader and its
standbys (each Marathon instance gets its own port). Compared whole, a standby's launch file looked
changed, so on every takeover it was submitted as an update that reverted whatever the operator had
changed since (a scale, a config update) and rolled brokers for it (found on Apache Mesos, issue 13).
"""
from __future__ import annotations

import attrs

from config import ServiceSpec, config_id
from config.models import ApiSpec

LAUNCH_ID = "launch.config_id"  # property: config id of the launch file last adopted
LAUNCH_REFUSED = "launch.refused"  # property: why the last changed launch file was refused


@attrs.frozen
class Start:
    spec: ServiceSpec  # the target the decision loop starts with
    config_id: str
    seed: bool  # a new service: the launch file becomes its first target
    update: bool  # the launch file changed since the last start: submit it as an update


def launch_id(spec: ServiceSpec) -> str:
    """The identity of what a launch file asks of the service: its config id without the ``api``
    section (this scheduler instance's own listener, which standbys set differently)."""
    return config_id(attrs.evolve(spec, api=ApiSpec()))


def start(stored: ServiceSpec | None, stored_id: str | None, launch: ServiceSpec, launch_key: str,
          last_launch_id: str | None) -> Start:
    """``launch_key`` is :func:`launch_id` of the launch file; the stored target is the truth unless
    the launch file asks the service for something else than it did at the last start."""
    if stored is None or stored_id is None:
        return Start(launch, stored_id or config_id(launch), seed=True, update=False)
    changed = launch_key not in (last_launch_id, launch_id(stored))
    return Start(stored, stored_id, seed=False, update=changed)
