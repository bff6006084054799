"""A stream app with `state_volume_mb`: each instance reserves its resources and a persistent
volume (mounted at the sandbox's streams-state, Kafka Streams' state.dir) on the agent the spread
picks, relaunches there on the same volume, and gives it back when placed anew, scaled away or
uninstalled. An app without one keeps launching on unreserved resources; the size cannot change
under a running app."""
from __future__ import annotations

import pytest

from config import ConfigError, load_text
from config.rules import check_update
from kmfwire.taskdata import STREAM_STATE_DIR
from tests.helpers.core_kit import ONE_BROKER, Scenario, spec

APP = ONE_BROKER + """\
apps:
  - {name: st, count: %d, cpus: 0.5, mem_mb: 256, command: ['-m', 'x'], state_volume_mb: %d}
policies: {backoff_initial_s: 1, backoff_max_s: 8, permanent_failure_timeout_s: 30, deploy_strategy: parallel}
"""


def _deployed(count: int = 3, volume: int = 500, agents: int = 3) -> Scenario:
    sim = Scenario(spec(APP % (count, volume)), agents=agents)
    sim.send.subscribed()
    sim.run_all_ready()
    return sim


def _volume_of(task: dict) -> list[dict]:
    return [r for r in task["info"]["resources"] if r.get("disk", {}).get("persistence")]


def _task_of(sim: Scenario, pod: str) -> dict:
    return sim.tasks[sim.record(pod).task_id]


def test_each_instance_reserves_a_volume_mounted_as_its_state_dir_spread_over_the_agents():
    sim = _deployed()
    agents = []
    for i in range(3):
        rec = sim.record(f"st-{i}")
        assert rec.ready and rec.reservation is not None, rec
        assert rec.agent_id == rec.reservation.agent_id
        (volume,) = _volume_of(_task_of(sim, f"st-{i}"))
        assert volume["scalar"]["value"] == 500
        assert volume["disk"]["persistence"]["id"] == rec.reservation.persistence_id
        assert volume["disk"]["volume"]["container_path"] == STREAM_STATE_DIR
        agents.append(rec.agent_id)
    assert len(set(agents)) == 3, agents  # spread as instances without a volume are
    assert sim.record("broker-0").reservation is not None


def test_an_app_without_a_volume_reserves_nothing():
    sim = _deployed(volume=0)
    for i in range(3):
        assert sim.record(f"st-{i}").reservation is None and sim.record(f"st-{i}").ready
        assert _volume_of(_task_of(sim, f"st-{i}")) == []


def test_a_failed_instance_relaunches_on_its_agent_and_volume():
    sim = _deployed()
    before = sim.record("st-1")
    sim.send.status("st-1", "TASK_FAILED")
    sim.send.tick(5)  # past the first backoff
    sim.send.offers().launched("st-1").nothing_reserved()
    after = sim.record("st-1")
    assert after.task_id != before.task_id and after.agent_id == before.agent_id
    assert after.reservation == before.reservation
    (volume,) = _volume_of(_task_of(sim, "st-1"))
    assert volume["disk"]["persistence"]["id"] == before.reservation.persistence_id


def test_replace_places_the_instance_anew_and_destroys_its_old_volume():
    sim = _deployed()
    old = sim.record("st-0").reservation
    sim.send.command("replace_pod", pod="st-0", confirm=True).replied(ok=True).killed("st-0")
    sim.send.status("st-0", "TASK_KILLED")
    sim.run_all_ready(3)
    assert old.persistence_id not in sim.cluster.reservation_ids()
    new = sim.record("st-0")
    assert new.ready and new.reservation is not None and new.reservation.persistence_id != old.persistence_id


def test_scaling_the_app_in_releases_the_removed_instances_volumes():
    sim = _deployed()
    gone = sim.record("st-2").reservation.persistence_id
    kept = {sim.record(f"st-{i}").reservation.persistence_id for i in range(2)}
    sim.send.command("scale_app", app="st", count=2).replied(ok=True).killed("st-2")
    sim.send.status("st-2", "TASK_KILLED")
    sim.run_all_ready(3)
    held = sim.cluster.reservation_ids()
    assert gone not in held and kept <= held


def test_uninstall_releases_every_volume():
    sim = _deployed()
    sim.send.command("uninstall").replied(ok=True)
    for pod in ["broker-0", "st-0", "st-1", "st-2"]:
        sim.send.status(pod, "TASK_KILLED")
    sim.run_all_ready(3)
    assert not (sim.cluster.reservation_ids() - {None})


def test_an_agent_without_room_for_the_volume_is_passed_over():
    # 5500 MB of disk per agent: the broker's agent has 4500 left, too little for a 5000 MB
    # volume; the other agent takes one instance, and the second waits, saying why
    sim = Scenario(spec(APP % (2, 5000)), agents=2, resources="cpus:4;mem:8192;disk:5500;ports:[31000-31100]")
    sim.send.subscribed()
    sim.run_all_ready()
    broker_agent = sim.record("broker-0").agent_id
    ready = [p for p in ("st-0", "st-1") if p in sim.state.tasks and sim.record(p).ready]
    assert len(ready) == 1 and sim.record(ready[0]).agent_id != broker_agent, ready
    waiting = ({"st-0", "st-1"} - set(ready)).pop()
    assert waiting not in sim.state.tasks or sim.record(waiting).reservation is None
    assert "disk" in sim.state.last_placement.get(waiting, ""), sim.state.last_placement


@pytest.mark.parametrize("old,new,refused", [(0, 0, False), (500, 500, False), (0, 500, True), (500, 1000, True),
                                             (500, 0, True)])
def test_an_update_cannot_change_a_running_apps_volume(old, new, refused):
    problems = check_update(spec(APP % (2, old)), spec(APP % (2, new)))
    assert bool(problems) == refused, problems
    if refused:
        assert "apps[0].state_volume_mb" in problems[0] and f"{old} → {new}" in problems[0]


def test_a_new_app_may_come_with_a_volume():
    without = load_text(ONE_BROKER, "t.yaml", env={})
    assert check_update(without, spec(APP % (2, 500))) == []


def test_a_negative_volume_is_refused_naming_the_field_and_its_line():
    with pytest.raises(ConfigError, match=r"test.yaml:6: apps\[0\].state_volume_mb: must be 0 \(no volume\) or more"):
        spec(APP % (1, -1))


def test_a_roll_restarts_each_instance_in_place_on_its_volume():
    versioned = APP.replace("state_volume_mb: %d}", "state_volume_mb: %d, env: {V: '%s'}}")
    sim = Scenario(spec(versioned % (2, 500, "1")), agents=3)
    sim.send.subscribed()
    sim.run_all_ready()
    before = {p: sim.record(p) for p in ("st-0", "st-1")}
    sim.send.command("update_config", spec=spec(versioned % (2, 500, "2"))).replied(ok=True).killed("st-0")
    sim.send.status("st-0", "TASK_KILLED")
    sim.run_all_ready(2)
    after = sim.record("st-0")
    assert after.task_id != before["st-0"].task_id and after.ready
    assert after.reservation == before["st-0"].reservation and after.agent_id == before["st-0"].agent_id
    (volume,) = _volume_of(_task_of(sim, "st-0"))
    assert volume["disk"]["persistence"]["id"] == before["st-0"].reservation.persistence_id

