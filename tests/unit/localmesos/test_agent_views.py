"""The agent's /state pieces as pure functions: the role a task or executor runs as, Mesos' Task
JSON of a task (a command task names no executor) and the agent's view of a framework (roles for
MULTI_ROLE frameworks, role otherwise)."""
from __future__ import annotations

from pathlib import Path

from localmesos.agent.model import ExecutorEntry, TaskEntry
from localmesos.agent.views import framework_view, role_of, task_view


def test_the_role_is_the_allocation_role_else_the_frameworks():
    allocated = [{"name": "cpus"}, {"name": "mem", "allocation_info": {"role": "kafka"}}]
    assert role_of({"roles": ["a", "b"]}, allocated) == "kafka"
    assert role_of({"roles": ["a", "b"]}, []) == "a"
    assert role_of({"role": "old"}, []) == "old"
    assert role_of({}, []) == "*"


def test_a_command_tasks_view_names_no_executor():
    fw = {"roles": ["r"]}
    task = TaskEntry("fw", "t1", {"task_id": {"value": "t1"}, "name": "n",
                                  "labels": {"labels": [{"key": "k", "value": "v"}]}}, state="TASK_RUNNING")
    command = ExecutorEntry("fw", "t1", {}, fw, Path("/sb"), "c", command_task=True)
    custom = ExecutorEntry("fw", "t1", {}, fw, Path("/sb"), "c")
    view = task_view("fw", task, "a1", command)
    assert view["executor_id"] == "" and task_view("fw", task, "a1", custom)["executor_id"] == "t1"
    assert view["id"] == "t1" and view["slave_id"] == "a1" and view["role"] == "r"
    assert view["state"] == "TASK_RUNNING" and view["labels"] == [{"key": "k", "value": "v"}]
    assert "labels" not in task_view("fw", TaskEntry("fw", "e", {"task_id": {"value": "t2"}}), "a1", custom)


def test_a_multi_role_framework_shows_roles_and_others_their_role():
    multi = framework_view({"id": {"value": "f"}, "roles": ["a"], "capabilities": [{"type": "MULTI_ROLE"}]})
    single = framework_view({"id": {"value": "f"}, "checkpoint": True})
    assert multi["roles"] == ["a"] and "role" not in multi
    assert single["role"] == "*" and "roles" not in single and single["checkpoint"] is True
    assert single["executors"] == [] and single["completed_executors"] == []
