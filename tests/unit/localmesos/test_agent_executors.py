"""What the agent starts an executor with and how it reports its exit, as pure functions: the
MESOS_* environment of the v1 executor API, the command line of a CommandInfo, the wait(2) status
of an exit, and the tasks a launch event carries; and the poll-until-deadline helper the agent
waits for a recovered executor with."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from localmesos.agent.executors import executor_environment, launch_argv, tasks_of_event, wait_status
from localmesos.agent.model import ExecutorEntry


def executor(checkpoint: bool = False, command_task: bool = False, variables=()) -> ExecutorEntry:
    info = {"executor_id": {"value": "e1"},
            "command": {"value": "run", "environment": {"variables": list(variables)}}}
    return ExecutorEntry("fw", "e1", info, {"checkpoint": checkpoint}, Path("/sb/e1"), "c1",
                         command_task=command_task)


def env_of(ex: ExecutorEntry, base=None) -> dict:
    return executor_environment(base if base is not None else {"PATH": "/bin", "MESOS_LOCAL": "1"}, ex,
                                ip="127.0.0.9", port=5051, agent_id="a1", shutdown_grace_s=5.0,
                                recovery_timeout_s=900.0)


def test_an_executor_gets_the_v1_api_variables_and_keeps_the_agents_environment():
    env = env_of(executor())
    assert env["PATH"] == "/bin" and "MESOS_LOCAL" not in env
    assert env["MESOS_FRAMEWORK_ID"] == "fw" and env["MESOS_EXECUTOR_ID"] == "e1"
    assert env["MESOS_AGENT_ENDPOINT"] == "127.0.0.9:5051"
    assert env["MESOS_SANDBOX"] == env["MESOS_DIRECTORY"] == "/sb/e1"
    assert env["MESOS_SLAVE_PID"] == "slave(1)@127.0.0.9:5051" and env["MESOS_AGENT_ID"] == "a1"
    assert env["MESOS_CHECKPOINT"] == "0" and env["MESOS_HTTP_COMMAND_EXECUTOR"] == "0"
    assert env["MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD"] == "5.0secs"


def test_only_checkpointing_executors_get_a_recovery_timeout():
    assert env_of(executor(checkpoint=True))["MESOS_RECOVERY_TIMEOUT"] == "900.0secs"
    assert "MESOS_RECOVERY_TIMEOUT" not in env_of(executor(), {"MESOS_RECOVERY_TIMEOUT": "1secs"})


def test_the_executors_own_variables_win():
    env = env_of(executor(variables=[{"name": "MESOS_SANDBOX", "value": "/x"}, {"name": "N"}]))
    assert env["MESOS_SANDBOX"] == "/x" and env["N"] == ""


def test_the_caller_environment_is_not_changed():
    base = {"MESOS_LOCAL": "1"}
    env_of(executor(), base)
    assert base == {"MESOS_LOCAL": "1"}


def test_a_shell_command_runs_under_sh_and_others_as_their_value():
    assert launch_argv({"value": "echo hi"}) == (["/bin/sh", "-c", "echo hi"], None)
    assert launch_argv({"shell": False, "value": "/bin/echo", "arguments": ["echo", "hi"]}) == \
        (["echo", "hi"], "/bin/echo")
    assert launch_argv({"shell": False, "value": "/bin/true"}) == (["/bin/true"], "/bin/true")


def test_the_wait_status_of_real_exits():
    for argv, expected in (([sys.executable, "-c", "raise SystemExit(3)"], 3 << 8),
                           ([sys.executable, "-c", "import os; os.kill(os.getpid(), 9)"], signal.SIGKILL)):
        code = subprocess.run(argv).returncode
        assert wait_status(code) == expected
        assert os.WIFEXITED(expected) or os.WIFSIGNALED(expected)


@given(st.integers(min_value=0, max_value=255))
def test_an_exit_code_round_trips_through_the_wait_status(code):
    status = wait_status(code)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == code


@given(st.integers(min_value=1, max_value=64))
def test_a_signal_round_trips_through_the_wait_status(sig):
    status = wait_status(-sig)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == sig


def test_the_tasks_of_launch_events():
    task = {"task_id": {"value": "t"}}
    assert tasks_of_event({"type": "LAUNCH", "launch": {"task": task}}) == [task]
    group = {"type": "LAUNCH_GROUP", "launch_group": {"task_group": {"tasks": [task, task]}}}
    assert tasks_of_event(group) == [task, task]
    assert tasks_of_event({"type": "KILL"}) == []
