"""The agent's resources: its total (the ``--resources`` flag with the checkpointed reservations
and persistent volumes the master applied), what an executor holds, and the persistent volumes'
directories and their links into sandboxes.

The arithmetic is pure (:func:`total_resources`, :func:`volume_role`); :class:`AgentResources`
is the agent's part that keeps the checkpointed resources and the volume directories.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from localmesos.agent.model import AgentState, ExecutorEntry
from kmfwire.task_states import is_terminal
from mesoslib.resources import Resources, parse_resources_flag

# Mesos' command executor runs with DEFAULT_EXECUTOR_CPUS and DEFAULT_EXECUTOR_MEM on top of its
# task's resources (src/slave/constants.hpp); the agent reports them as the executor's.
COMMAND_EXECUTOR_OVERHEAD = "cpus:0.1;mem:32"


def total_resources(base: Resources, checkpointed: Resources) -> Resources:
    """The agent's total: each checkpointed resource (a dynamic reservation, a volume) replaces
    its unreserved, volume-less counterpart in ``base``.

    Pure."""
    total = base
    for res in checkpointed:
        plain = res.without_volume() if res.is_volume else res
        while plain.is_reserved and plain.is_dynamically_reserved:
            plain = plain.pop_reservation()
        total = total - Resources([plain]) + Resources([res])
    return total


def volume_role(resource: dict) -> str:
    """The role a persistent volume's directory is kept under: its role (pre-refinement
    format), else its innermost reservation's, else ``*``.

    Pure."""
    return resource.get("role") or next(
        (r.get("role") for r in reversed(resource.get("reservations") or [])), "*")


class AgentResources(AgentState):
    """The agent's total and allocated resources (a part of :class:`localmesos.agent.agent.Agent`)."""

    def total(self) -> Resources:
        return total_resources(self.base_resources, self.checkpointed)

    def allocated(self, ex: ExecutorEntry) -> Resources:
        """Mesos' Executor::allocatedResources: the executor's own and its live tasks'."""
        total = Resources.from_json(ex.info.get("resources") or [])
        if ex.command_task:
            total = total + parse_resources_flag(COMMAND_EXECUTOR_OVERHEAD)
        for (fid, _), t in self.tasks.items():
            if fid == ex.framework_id and t.executor_id == ex.executor_id and not is_terminal(t.state):
                total = total + t.resources
        return total

    def volume_dir(self, role: str, persistence_id: str) -> Path:
        return self.work_dir / "volumes" / "roles" / role.replace("/", "_") / persistence_id

    def apply_resources(self, body: dict) -> dict:
        """The master's checkpointed resources (after RESERVE, CREATE, ...): kept in meta/, volume
        directories made and removed to match."""
        new = Resources.from_json(body.get("checkpointed_resources") or [], "checkpointed_resources")
        with self.lock:
            old_vols = {(r.role, r.disk.persistence_id) for r in self.checkpointed.volumes()
                        if r.disk is not None and r.disk.persistence_id is not None}
            new_vols = {(r.role, r.disk.persistence_id) for r in new.volumes()
                        if r.disk is not None and r.disk.persistence_id is not None}
            self.checkpointed = new
            self.meta.write("resources", json.dumps(new.to_json("endpoint")))
        for role, pid in new_vols - old_vols:
            self.volume_dir(role, pid).mkdir(parents=True, exist_ok=True)
        for role, pid in old_vols - new_vols:
            shutil.rmtree(self.volume_dir(role, pid), ignore_errors=True)
        return {}

    def link_volumes(self, task: dict, sandbox: Path) -> None:
        """Each persistent volume of the task appears in the sandbox at its container path."""
        for res in task.get("resources") or []:
            disk = res.get("disk") or {}
            pid = (disk.get("persistence") or {}).get("id")
            path = (disk.get("volume") or {}).get("container_path")
            if not pid or not path:
                continue
            target = self.volume_dir(volume_role(res), pid)
            target.mkdir(parents=True, exist_ok=True)
            link = sandbox / path
            if not link.exists() and not link.is_symlink():
                link.parent.mkdir(parents=True, exist_ok=True)
                link.symlink_to(target)
