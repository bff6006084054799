"""The workload gets the environment Mesos gave the executor, not whatever os.environ holds."""
from __future__ import annotations

import pytest

import executor.main as executor_main
from executor.main import KmfExecutor, TaskRunner
from executor.workloads import WorkloadError, prepare
from kmfwire.taskdata import StreamTask, TaskData

pytestmark = pytest.mark.timeout(60)


def python_app() -> TaskData:
    return TaskData(kind="stream", service="svc", stream=StreamTask(
        app="a", instance=2, runtime="python", command=("app.py",), bootstrap_servers="h:1"))


def test_stream_workload_env_comes_from_the_given_mapping(tmp_path, monkeypatch):
    monkeypatch.setenv("ONLY_IN_OS_ENVIRON", "1")
    env = {"KMF_PYTHON": "/opt/py/bin/python", "FROM_MESOS": "yes", "MESOS_SANDBOX": str(tmp_path)}
    work = prepare(python_app(), tmp_path, env)
    assert work.argv == ("/opt/py/bin/python", "app.py")
    assert work.env["FROM_MESOS"] == "yes" and work.env["KMF_APP"] == "a"
    assert "ONLY_IN_OS_ENVIRON" not in work.env  # nothing leaks in from the executor's process
    assert not any(k.startswith("MESOS_") for k in work.env)


def test_the_task_runner_passes_the_executor_environment_to_prepare(tmp_path, monkeypatch):
    seen = []

    def fake_prepare(data, sandbox, env=None):
        seen.append(env)
        raise WorkloadError("stop here")
    monkeypatch.setattr(executor_main, "prepare", fake_prepare)
    env = {"MESOS_SANDBOX": str(tmp_path), "KMF_KAFKA_CACHE": "/cache/from/mesos"}
    owner = KmfExecutor(env)
    sent = []
    owner.send_update = lambda task_id, state, *a, **kw: sent.append(state)  # no driver here
    runner = TaskRunner(owner, {"task_id": {"value": "t-1"}}, python_app(), tmp_path)
    runner._supervise()
    assert seen == [env]
    assert sent == ["TASK_STARTING", "TASK_FAILED"]
