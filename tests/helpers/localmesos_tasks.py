"""TaskInfos for driving a localmesos master from a test framework."""
from __future__ import annotations

from mesoslib.resources import parse_resources_flag


def command_task(tid, offer, resources="cpus:1;mem:32", cmd="sleep 100"):
    return {
        "name": tid,
        "task_id": {"value": tid},
        "agent_id": offer["agent_id"],
        "resources": parse_resources_flag(resources).to_json("pre"),
        "command": {"value": cmd},
    }
