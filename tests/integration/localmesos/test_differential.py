"""Differential conformance: one scripted v1 scheduler scenario (tests/helpers/scenario.py) runs
against localmesos and against Apache Mesos; what a client sees must be the same: the task's
status sequence, the statuses' source/reason/message, the event types, and the key sets
(recursively) of master /state, /roles and agent /state, /monitor/statistics. A new field on one
side only fails here, unless it is on the commented allow-list below.

Skipped, saying why, without an Apache Mesos install.
"""
from __future__ import annotations

from typing import Any

import pytest

from tests.helpers import scenario
from tests.helpers.fixtures_localmesos import FAST_MASTER_FLAGS
from tests.helpers.keysets import shape_diff

pytestmark = pytest.mark.timeout(240)

# Paths present on one side only that are not a difference of behaviour. Each says why.
ALLOW_LOCAL_ONLY = (
    # Outstanding offers at the moment of a snapshot depend on allocator timing (localmesos
    # re-offers at once, Mesos batches every second), so either side may show none.
    "frameworks[].offers", "frameworks[].offered_resources", "frameworks[].resources",
    "slaves[].offered_resources", "roles[].offered", "roles[].resources",
)
ALLOW_APACHE_ONLY = (
    # Only in a build made from a git checkout (the shared Apache build is one; a release is not).
    "git_branch", "git_sha",
    # Same timing as above, the other way round.
    "frameworks[].offers", "frameworks[].offered_resources", "frameworks[].resources",
    "slaves[].offered_resources", "roles[].offered", "roles[].resources",
)
# The documents compared, by the name the scenario stores them under.
DOCUMENTS = ("master_state", "master_roles", "agent_state", "agent_monitor",
             "master_state_after", "agent_state_after")


def _run(lm: Any, extra_agent_flags: list[str]) -> dict[str, Any]:
    lm.add_agent(extra=extra_agent_flags)
    lm.wait_agents(timeout=60)
    return scenario.run(lm)


def _summary(status: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(status.get(k) for k in ("state", "source", "reason", "message"))


def test_scenario_matches_apache_mesos(apache_factory, lm_factory, tmp_path):
    apache = _run(apache_factory(agents=0, zk=False), [])
    # Apache's helpers pass --log_dir to master and agents; localmesos gets the same
    logs = tmp_path / "local-logs"
    local = _run(lm_factory(master_flags=list(FAST_MASTER_FLAGS) + [f"--log_dir={logs / 'master'}"]),
                 [f"--log_dir={logs / 'agent'}"])
    assert local["task_states"] == apache["task_states"] == [
        "TASK_STARTING", "TASK_RUNNING", "TASK_KILLED", "TASK_LOST"]
    assert set(local["event_types"]) == set(apache["event_types"])
    assert [t for t in local["event_types"] if t == "UPDATE"] == \
        [t for t in apache["event_types"] if t == "UPDATE"]
    for key in ("killed", "reconciled", "reconciled_unknown"):
        assert _summary(local[key]) == _summary(apache[key]), key
    problems = []
    for doc in DOCUMENTS:
        ours, theirs = shape_diff(local[doc], apache[doc], ALLOW_LOCAL_ONLY, ALLOW_APACHE_ONLY)
        if ours or theirs:
            problems.append(f"{doc}: only localmesos {ours}; only Apache {theirs}")
    assert not problems, "\n".join(problems)
    # a few values a client computes with
    for engine in (local, apache):
        executor = engine["agent_state"]["frameworks"][0]["executors"][0]
        assert executor["resources"]["cpus"] == pytest.approx(0.6)  # task + command executor
        assert executor["tasks"][0]["executor_id"] == ""  # a command task names no executor
        role = engine["master_roles"]["roles"][0]
        assert role["quota"]["consumed"] == {"cpus": 0.5, "disk": 32.0, "mem": 64.0}
