"""What the agent makes of the master's task calls, as pure functions: the command executor of a
task without one, the kill a drain sends (the shorter grace period wins), the answer to the
reconciliation of an unknown task; and the agent's resource arithmetic (checkpointed reservations
and volumes replace their plain counterparts in the total)."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from localmesos.agent.resources import total_resources, volume_role
from localmesos.agent.tasks import command_executor_info, drain_kill, unknown_task_state
from mesoslib.resources import Resources, parse_resources_flag


def test_a_command_task_gets_mesos_command_executor_with_the_tasks_uris():
    task = {"command": {"value": "echo " + "x" * 100, "uris": [{"value": "http://u/a.tgz"}]}}
    info = command_executor_info("fw", "t1", task, "/py")
    assert info["executor_id"] == {"value": "t1"} and info["framework_id"] == {"value": "fw"}
    assert info["name"] == f"Command Executor (Task: t1) (Command: sh -c '{('echo ' + 'x' * 100)[:60]}')"
    assert info["source"] == "t1"
    assert info["command"] == {"shell": False, "value": "/py",
                               "arguments": ["/py", "-m", "localmesos.agent.command_executor"],
                               "uris": [{"value": "http://u/a.tgz"}]}


def grace(seconds: float) -> dict:
    return {"grace_period": {"nanoseconds": int(seconds * 1e9)}}


@pytest.mark.parametrize("own, cap, expected", [
    (None, None, None),
    (None, 2.0, 2.0),   # no policy of its own: the drain's cap
    (10.0, 2.0, 2.0),   # the cap is shorter
    (1.0, 2.0, None),   # the task's own is shorter: kept (no policy sent)
    (10.0, None, None),
])
def test_a_drain_kills_within_the_shorter_grace_period(own, cap, expected):
    info = {"kill_policy": grace(own)} if own is not None else {}
    kill = drain_kill("fw", "t1", info, grace(cap)["grace_period"] if cap is not None else None)
    assert kill["framework_id"] == {"value": "fw"} and kill["task_id"] == {"value": "t1"}
    assert kill.get("kill_policy") == (grace(expected) if expected is not None else None)


@given(st.none() | st.integers(0, 10**12), st.none() | st.integers(0, 10**12))
def test_a_drain_never_lengthens_a_tasks_grace_period(own, cap):
    info = {"kill_policy": {"grace_period": {"nanoseconds": own}}} if own is not None else {}
    kill = drain_kill("fw", "t", info, {"nanoseconds": cap} if cap is not None else None)
    sent = kill.get("kill_policy", {}).get("grace_period", {}).get("nanoseconds")
    effective = sent if sent is not None else own  # what the executor will use
    if cap is None:
        assert "kill_policy" not in kill
    else:
        assert effective is not None and effective <= cap
    if own is not None:
        assert effective <= own


def test_an_unknown_task_is_dropped_for_partition_aware_frameworks_and_lost_for_others():
    assert unknown_task_state({"capabilities": [{"type": "PARTITION_AWARE"}]}) == "TASK_DROPPED"
    assert unknown_task_state({"capabilities": [{"type": "MULTI_ROLE"}]}) == "TASK_LOST"


def test_the_total_swaps_plain_resources_for_their_reservations_and_volumes():
    base = parse_resources_flag("cpus:4;mem:1024;disk:1000")
    reserved = Resources.from_json([
        {"name": "cpus", "type": "SCALAR", "scalar": {"value": 1},
         "reservations": [{"type": "DYNAMIC", "role": "r"}]},
        {"name": "disk", "type": "SCALAR", "scalar": {"value": 100},
         "reservations": [{"type": "DYNAMIC", "role": "r"}],
         "disk": {"persistence": {"id": "v1"}, "volume": {"container_path": "data", "mode": "RW"}}},
    ])
    total = total_resources(base, reserved)
    assert total.scalar("cpus") == 4 and total.scalar("disk") == 1000 and total.scalar("mem") == 1024
    assert total.unreserved().scalar("cpus") == 3 and total.unreserved().scalar("disk") == 900
    assert total_resources(base, Resources()) == base


def test_a_volume_directory_role():
    assert volume_role({"role": "old"}) == "old"
    assert volume_role({"reservations": [{"role": "a"}, {"role": "a/b"}]}) == "a/b"
    assert volume_role({}) == "*"
