"""What the scheduler's launch file means at start-up (issue 12: a restart must undo nothing).

The stored target config in ZooKeeper is the service's truth. The launch file (the YAML Marathon
fetched) only seeds a new service. For a service that exists it is read as an operator's request
only when it differs from the launch file the service last started with: then it goes to the
decision loop as an ``update_config`` command, through exactly the checks of `kmf config update`
(safe changes, the broker-count check, live settings), and its diff is logged. A launch file that
did not change since the last start is ignored, so a ``kmf config update`` or ``kmf scale`` made
since then survives any number of scheduler restarts.
"""
from __future__ import annotations

import attrs

from config import ServiceSpec

LAUNCH_ID = "launch.config_id"  # property: config id of the launch file last adopted
LAUNCH_REFUSED = "launch.refused"  # property: why the last changed launch file was refused


@attrs.frozen
class Start:
    spec: ServiceSpec  # the target the decision loop starts with
    config_id: str
    seed: bool  # a new service: the launch file becomes its first target
    update: bool  # the launch file changed since the last start: submit it as an update


def start(stored: ServiceSpec | None, stored_id: str | None, launch: ServiceSpec, launch_id: str,
          last_launch_id: str | None) -> Start:
    if stored is None or stored_id is None:
        return Start(launch, launch_id, seed=True, update=False)
    changed = launch_id not in (last_launch_id, stored_id)
    return Start(stored, stored_id, seed=False, update=changed)
