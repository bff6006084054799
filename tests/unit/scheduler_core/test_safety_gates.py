"""Issue 12, defects 4, 7 and 8, through `decide` alone: every voluntary broker stop (pod restart,
pod replace, rolling update) passes one gate; replace asks for confirmation; a waiting update step
says what it waits for and turns ERROR after policies.update_step_timeout_s; a plan is COMPLETE only
with every broker ready and in sync; interrupt/continue steer exactly the named phase or step."""
from __future__ import annotations

from hypothesis import HealthCheck, given, settings, strategies as st

from scheduler.core import actions as act
from scheduler.shell.kafka_watch import health_from_metadata
from tests.helpers.core_kit import BASE, Outcome, Scenario, deployed, spec, subscribed

NODES = frozenset({0, 1, 2})


def command(sim: Scenario, kind: str, **args) -> tuple[act.Reply, list[act.Kill]]:
    out = sim.send.command(kind, **args)
    return out.reply, out.kills  # `reply` fails unless the step has exactly one Reply


def steps(sim: Scenario, plan: str) -> dict[str, dict]:
    return {s["name"]: s for ph in sim.plans()[plan]["phases"] for s in ph["steps"]}


def come_back(sim: Scenario, killed: str, in_sync: bool = True) -> str:
    """The killed task ends, its pod relaunches and becomes ready; then a Kafka sample."""
    sim.send.status(killed, "TASK_KILLED")
    sim.now += 1
    pod = killed.split("__")[0]
    sim.send.offers().launched(pod)
    new = sim.record(pod).task_id
    assert new != killed
    sim.send.status(new, "TASK_RUNNING", ready=True)
    sim.now += 1
    if in_sync:
        sim.send.kafka_healthy()
    return new


# ------------------------------------------------------------------------------ defect 4

def test_a_second_quick_restart_is_refused_naming_the_broker_and_force_overrides():
    sim = deployed()
    reply, kills = command(sim, "restart_pod", pod="broker-0")
    assert reply.ok and len(kills) == 1
    reply, kills = command(sim, "restart_pod", pod="broker-2")
    assert not reply.ok and not kills
    assert reply.result["refusal"] == "conflict" and reply.result["force_required"] is True
    assert "would leave 1 of 3 KRaft controllers running, not a majority (broker-0 down)" in reply.result["message"]
    # a fresh sample does not help while broker-0 is down
    sim.now += 1
    sim.send.kafka_healthy()
    reply, kills = command(sim, "restart_pod", pod="broker-2")
    assert not reply.ok and "KRaft controllers" in reply.result["message"]
    assert reply.result["reason"] in reply.result["message"]
    reply, kills = command(sim, "restart_pod", pod="broker-2", force=True)
    assert reply.ok and len(kills) == 1 and "forced although" in reply.result["message"]


def test_restart_waits_for_metadata_asked_after_the_previous_broker_came_back():
    sim = deployed()
    _, kills = command(sim, "restart_pod", pod="broker-0")
    come_back(sim, kills[0].task_id, in_sync=False)
    reply, _ = command(sim, "restart_pod", pod="broker-1")
    assert not reply.ok and "asked after the last broker stop or start" in reply.result["message"]
    sim.send.kafka_healthy(under_replicated=4, under_replicated_names=("t-0", "t-1", "t-2", "t-3", "t-4"))
    reply, _ = command(sim, "restart_pod", pod="broker-1")
    assert not reply.ok and "4 partitions are under-replicated: t-0, t-1" in reply.result["message"]
    sim.now += 1
    sim.send.kafka_healthy()
    reply, kills = command(sim, "restart_pod", pod="broker-1")
    assert reply.ok and len(kills) == 1


def test_restart_refused_when_partitions_would_fall_below_min_isr_and_an_old_sample_is_not_trusted():
    sim = deployed()
    sim.send.kafka_healthy(under_min_isr_if_down={1: 2}, at_risk_names={1: ("orders-0", "orders-3")})
    reply, kills = command(sim, "restart_pod", pod="broker-1")
    assert not reply.ok and not kills
    assert "2 partitions would fall below min.insync.replicas (2) without broker 1: orders-0, orders-3" \
        in reply.result["message"]
    sim.now += 31
    reply, kills = command(sim, "restart_pod", pod="broker-2")
    assert not reply.ok and "31s ago" in reply.result["message"]
    sim.send.kafka_healthy(under_min_isr_if_down={1: 2})
    reply, kills = command(sim, "restart_pod", pod="broker-2")
    assert reply.ok and len(kills) == 1


def test_stream_pods_are_not_gated_by_kafka_health():
    sim = subscribed()
    sim.run_all_ready()  # no Kafka sample at all
    reply, kills = command(sim, "restart_pod", pod="wc-0")
    assert reply.ok and len(kills) == 1
    reply, _ = command(sim, "restart_pod", pod="broker-0")
    assert not reply.ok and "not known yet" in reply.result["message"]


def test_replace_needs_confirm_says_what_is_lost_and_passes_the_gate():
    sim = deployed(agents=4)
    sim.send.kafka_healthy(replicas_by_broker={0: 7, 1: 7, 2: 7})
    host = sim.record("broker-1").reservation.hostname
    reply, kills = command(sim, "replace_pod", pod="broker-1")
    assert not reply.ok and not kills and reply.result["confirm_required"] is True
    assert reply.result["refusal"] == "conflict" and reply.result["volume_host"] == host
    assert f"destroys its volume on {host}" in reply.result["message"]
    assert "its 7 partition replicas" in reply.result["message"]
    assert sim.record("broker-1").reservation is not None  # nothing happened
    _, restart = command(sim, "restart_pod", pod="broker-0")
    reply, kills = command(sim, "replace_pod", pod="broker-1", confirm=True)
    assert not reply.ok and not kills and "(broker-0 down)" in reply.result["message"]
    come_back(sim, restart[0].task_id)
    reply, kills = command(sim, "replace_pod", pod="broker-1", confirm=True)
    assert reply.ok and len(kills) == 1
    assert "new reservation, possibly on the same agent" in reply.result["message"]
    assert "another agent" not in reply.result["message"]
    # an app instance has no volume: nothing to confirm
    reply, kills = command(sim, "replace_pod", pod="wc-0")
    assert reply.ok and len(kills) == 1


# ------------------------------------------------------------------------------ defect 7

HEAP = BASE.replace("heap_mb: 256", "heap_mb: 300")
TIMEOUT = BASE.replace("permanent_failure_timeout_s: 30", "permanent_failure_timeout_s: 30, update_step_timeout_s: 60")


def test_a_waiting_update_step_says_why_and_turns_error_after_the_timeout_then_goes_on():
    sim = deployed(TIMEOUT)
    sim.send.kafka_healthy(under_replicated=7, under_replicated_names=("a-0", "a-1", "a-2", "a-3", "b-0"))
    reply, kills = command(sim, "update_config", spec=spec(TIMEOUT.replace("heap_mb: 256", "heap_mb: 300")))
    assert reply.ok and not kills
    first = steps(sim, "update")["broker-2"]  # the first in line (not a controller going last)
    assert first["status"] == "PENDING"
    assert "7 partitions are under-replicated: a-0, a-1, a-2, a-3, b-0, …" in first["message"]
    assert "Reconciliation" not in first["message"]
    for _ in range(61):
        sim.now += 1
        sim.send.tick()
    sim.send.kafka_healthy(under_replicated=7, under_replicated_names=("a-0",))
    view = sim.plans()["update"]
    assert view["status"] == "ERROR"
    assert any(e.startswith("broker-2: waited") and "update_step_timeout_s" in e and "under-replicated" in e
               for e in view["errors"]), view["errors"]
    sim.now += 1
    sim.send.kafka_healthy().killed()  # the step goes on by itself once the partitions are in sync
    assert sim.plans()["update"]["status"] == "IN_PROGRESS"


def test_the_update_plan_is_complete_only_once_the_last_restarted_broker_is_ready_and_in_sync():
    sim = deployed()
    _, kills = command(sim, "update_config", spec=spec(HEAP))
    rolled = []
    while kills:
        rolled.append(kills[0].task_id.split("__")[0])
        assert sim.plans()["update"]["status"] != "COMPLETE"
        new = come_back(sim, kills[0].task_id, in_sync=False)
        kills = []
        if len(rolled) < 3:
            sim.send.kafka_healthy()
            kills = sim.expect.kills
    assert sorted(rolled) == ["broker-0", "broker-1", "broker-2"]
    last = rolled[-1]
    node = int(last.split("-")[1])
    # relaunched and ready, but no Kafka sample since: not complete
    assert steps(sim, "update")[last]["status"] == "STARTED"
    assert sim.plans()["update"]["status"] != "COMPLETE"
    assert sim.plans()["deploy"]["status"] != "COMPLETE"
    sim.send.kafka_healthy(out_of_sync={node: 3}, under_replicated=3)
    step = steps(sim, "update")[last]
    assert step["status"] == "STARTED" and "not yet in the ISR of 3" in step["message"]
    sim.now += 1
    sim.send.kafka_healthy()
    assert sim.plans()["update"]["status"] == "COMPLETE"
    assert sim.plans()["deploy"]["status"] == "COMPLETE"
    assert sim.record(last).task_id == new


def test_the_update_plan_is_not_complete_while_the_last_broker_is_starting():
    sim = deployed()
    _, kills = command(sim, "update_config", spec=spec(HEAP))
    for _ in range(2):
        come_back(sim, kills[0].task_id, in_sync=False)
        sim.now += 1
        kills = sim.send.kafka_healthy().kills
    sim.send.status(kills[0].task_id, "TASK_KILLED")
    sim.now += 1
    pod = kills[0].task_id.split("__")[0]
    sim.send.offers().launched(pod)
    sim.send.status(pod, "TASK_RUNNING")  # running, not ready
    sim.now += 1
    sim.send.kafka_healthy()
    assert steps(sim, "update")[pod]["status"] == "STARTED"
    assert sim.plans()["update"]["status"] == "IN_PROGRESS"


# ------------------------------------------------------------------------------ defect 8

def test_continue_one_step_of_an_interrupted_update_lets_only_that_step_go():
    sim = deployed()
    reply, _ = command(sim, "plan_interrupt", plan="update")
    assert reply.ok
    reply, kills = command(sim, "update_config", spec=spec(HEAP))
    assert reply.ok and not kills
    assert {s["status"] for n, s in steps(sim, "update").items() if n.startswith("broker")} == {"WAITING"}
    assert sim.plans()["update"]["status"] == "WAITING"
    reply, kills = command(sim, "plan_continue", plan="update", step="broker-1")
    assert reply.ok and [k.task_id.split("__")[0] for k in kills] == ["broker-1"]
    come_back(sim, kills[0].task_id)
    sim.now += 1
    sim.send.kafka_healthy().nothing_killed()  # the rest of the plan stays interrupted
    st_ = steps(sim, "update")
    assert st_["broker-1"]["status"] == "COMPLETE"
    assert st_["broker-0"]["status"] == st_["broker-2"]["status"] == "WAITING"
    assert "update plan interrupted" in st_["broker-0"]["message"]
    reply, kills = command(sim, "plan_continue", plan="update")
    assert reply.ok and len(kills) == 1 and not sim.state.properties.get("plan.update.step.broker-1.continued")


def test_interrupt_one_step_holds_only_that_step():
    sim = deployed()
    reply, _ = command(sim, "plan_interrupt", plan="update", step="broker-0")
    assert reply.ok and "step broker-0 of plan update interrupted" in reply.result["message"]
    _, kills = command(sim, "update_config", spec=spec(HEAP))
    assert [k.task_id.split("__")[0] for k in kills] == ["broker-1"]  # broker-0 would go first
    assert steps(sim, "update")["broker-0"]["status"] == "WAITING"
    assert "step broker-0 of the update plan interrupted" in steps(sim, "update")["broker-0"]["message"]
    assert sim.plans()["update"]["status"] == "IN_PROGRESS"


def test_interrupt_a_phase_of_the_deploy_plan_holds_only_that_phase():
    sim = subscribed()
    reply, _ = command(sim, "plan_interrupt", plan="deploy", phase="app:wc")
    assert reply.ok
    sim.run_all_ready()
    sim.send.kafka_healthy()
    assert not sim.state.tasks.get("wc-0") or not sim.record("wc-0").task_id
    view = sim.plans()["deploy"]
    assert {ph["name"]: ph["status"] for ph in view["phases"]} == {"quorum": "COMPLETE", "app:wc": "WAITING"}
    assert view["status"] == "WAITING"
    reply, _ = command(sim, "plan_continue", plan="deploy", phase="app:wc")
    sim.run_all_ready()
    assert sim.record("wc-0").serving and sim.record("wc-1").serving


def test_unknown_phase_or_step_is_refused_with_what_exists_and_nothing_changes():
    sim = deployed()
    before = sim.state
    for kind in ("plan_interrupt", "plan_continue"):
        reply, _ = command(sim, kind, plan="update", step="nosuch")
        assert not reply.ok and reply.result["refusal"] == "not_found"
        assert "no step 'nosuch'" in reply.result["message"] and "broker-0, broker-1, broker-2, wc-0" in reply.result["message"]
        reply, _ = command(sim, kind, plan="update", phase="nosuch")
        assert not reply.ok and reply.result["refusal"] == "not_found"
        assert "no phase 'nosuch' (phases: quorum, app:wc)" in reply.result["message"]
        reply, _ = command(sim, kind, plan="deploy", phase="app:wc", step="broker-0")
        assert not reply.ok and "phase app:wc of plan deploy has no step 'broker-0' (steps: wc-0, wc-1)" \
            in reply.result["message"]
    assert sim.state == before


def test_every_step_says_whether_the_last_offer_round_could_place_it():
    text = BASE.replace("{name: wc, count: 2, cpus: 0.5", "{name: wc, count: 2, cpus: 9")
    sim = subscribed(text)
    sim.run_all_ready()
    sim.send.kafka_healthy()
    st_ = steps(sim, "deploy")
    assert st_["broker-0"]["unplaceable"] is None
    assert "agent 10.0.0.1" in st_["wc-0"]["unplaceable"] and "cpus" in st_["wc-0"]["unplaceable"]
    assert all("unplaceable" in s for plan in ("deploy", "recovery", "update") for s in steps(sim, plan).values())


# ------------------------------------------------------------------------------ property

class Metadata:
    """Just what kafka_watch.health_from_metadata reads of AdminClient's ClusterMetadata."""

    def __init__(self, layout: list[tuple[int, ...]], isr: list[set[int]], brokers: set[int]) -> None:
        part = type("P", (), {})
        self.topics = {"t": type("T", (), {"partitions": {}})()}
        for i, (replicas, in_sync) in enumerate(zip(layout, isr)):
            p = part()
            p.replicas, p.isrs = list(replicas), sorted(in_sync)
            self.topics["t"].partitions[i] = p
        self.brokers = {b: None for b in brokers}
        self.controller_id = 0
        self.orig_broker_id = min(brokers) if brokers else -1


LAYOUTS = st.lists(st.sampled_from([(0, 1, 2), (1, 2, 0), (2, 0, 1), (0, 1), (1, 2), (0, 2)]),
                   min_size=1, max_size=6)
ACTIONS = st.lists(st.one_of(
    st.tuples(st.sampled_from(["restart", "replace"]), st.integers(0, 2)),
    st.tuples(st.sampled_from(["end", "relaunch", "ready", "catch_up", "fail"]), st.integers(0, 2)),
    st.tuples(st.sampled_from(["sample", "ask", "answer", "tick", "update"]), st.just(0)),
), max_size=60)


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(layout=LAYOUTS, actions=ACTIONS)
def test_no_command_sequence_stops_a_broker_that_would_put_a_partition_under_min_isr(layout, actions):
    """Kafka is modelled: a broker is in the ISR of its partitions only from a `catch_up` after it
    became ready until it is told to stop or fails; samples are what AdminClient would say then,
    stamped when asked (an `answer` can come late, after the cluster changed).
    Whatever happens, no kill kmf sends without force stops a broker whose partitions then have
    fewer than min.insync.replicas (2) in sync, nor leaves a minority of KRaft voters."""
    sim = deployed()
    in_sync = {0: True, 1: True, 2: True}
    heap = 256

    def isr() -> list[set[int]]:
        return [{b for b in replicas if in_sync[b]} for replicas in layout]

    def ask() -> tuple:
        brokers = {b for b in (0, 1, 2) if sim.record(f"broker-{b}").serving}
        return health_from_metadata(Metadata(layout, isr(), brokers), 2, sim.now)

    def sample() -> tuple:
        return sim.send.event(ask())

    asked = None

    def check(out) -> None:
        for kill in out.kills:
            pod = kill.task_id.split("__")[0]
            if not pod.startswith("broker-"):
                continue
            b = int(pod.split("-")[1])
            for replicas, members in zip(layout, isr()):
                if b in members:
                    assert len(members - {b}) >= min(2, len(replicas)), (pod, layout, isr(), kill.reason)
            up = [o for o in (0, 1, 2) if o != b and sim.record(f"broker-{o}").serving]
            assert len(up) >= 2, (pod, in_sync)  # KRaft voters: broker-0..2
            in_sync[b] = False  # told to stop: out of the ISR from now on

    sample()
    for what, b in actions:
        pod = f"broker-{b}"
        rec = sim.record(pod)
        out = Outcome()
        if what == "restart":
            out = sim.send.command("restart_pod", pod=pod)
        elif what == "replace":
            out = sim.send.command("replace_pod", pod=pod, confirm=True)
        elif what == "end" and rec.active and rec.kill_reason:
            out = sim.send.status(rec.task_id, "TASK_KILLED")
        elif what == "fail" and rec.active:
            in_sync[b] = False
            out = sim.send.status(rec.task_id, "TASK_FAILED")
        elif what == "relaunch":
            sim.now += 2
            out = sim.send.offers()
        elif what == "ready" and rec.active and not rec.ready and rec.task_id in sim.tasks:
            out = sim.send.status(rec.task_id, "TASK_RUNNING", ready=True)
        elif what == "catch_up" and rec.serving:
            in_sync[b] = True
        elif what == "sample":
            sim.now += 0.5
            out = sample()
        elif what == "ask":
            sim.now += 0.5
            asked = ask()
        elif what == "answer" and asked is not None:
            out = sim.send.event(asked)
        elif what == "tick":
            out = sim.send.tick(1)
        elif what == "update":
            heap = 300 if heap == 256 else 256
            out = sim.send.command("update_config", "u", spec=spec(BASE.replace("heap_mb: 256", f"heap_mb: {heap}")))
        check(out)


def test_the_model_of_the_property_test_lets_brokers_restart_when_kafka_is_in_sync():
    """The property test is not vacuous: with every replica in sync, a restart goes through."""
    sim = deployed()
    layout = [(0, 1, 2)] * 3
    sim.send.event(health_from_metadata(Metadata(layout, [{0, 1, 2}] * 3, {0, 1, 2}), 2, sim.now))
    reply, kills = command(sim, "restart_pod", pod="broker-1")
    assert reply.ok and len(kills) == 1
    sim.now += 1
    sim.send.event(health_from_metadata(Metadata(layout, [{0, 2}] * 3, {0, 2}), 2, sim.now))
    health = sim.state.kafka
    assert health.under_replicated_names == ("t-0", "t-1", "t-2") and health.out_of_sync == {1: 3}
    assert health.at_risk_names[0] == ("t-0", "t-1", "t-2")


def test_a_negative_update_step_timeout_is_refused_by_the_config_rules():
    import pytest
    from config import ConfigError
    with pytest.raises(ConfigError) as err:
        spec(BASE.replace("permanent_failure_timeout_s: 30", "update_step_timeout_s: -1"))
    assert "policies.update_step_timeout_s" in str(err.value.problems)


def test_a_broker_kafka_does_not_list_is_restarted_by_the_roll_though_partitions_are_under_replicated():
    """Found by the chaos suite: broker-2 kept the old address of a moved KRaft voter, could not
    reach the active controller and stayed fenced, and the partitions whose last in-sync copy it
    held were offline. The roll that would restart it with the new voters waited for no partition
    to be under-replicated: a deadlock. A broker Kafka does not list serves nothing and is in no
    ISR, so it restarts in place; the listed ones still wait, and a move (its data going) still waits."""
    sim = deployed()
    sim.send.kafka_healthy(brokers={0, 1}, under_replicated=3, under_replicated_names=("chaos-0",))
    reply, kills = command(sim, "update_config", spec=spec(BASE.replace("heap_mb: 256", "heap_mb: 300")))
    assert reply.ok
    assert [k.task_id.split("__")[0] for k in kills] == ["broker-2"], kills
    waiting = steps(sim, "update")
    assert waiting["broker-0"]["status"] == waiting["broker-1"]["status"] == "PENDING"
    # the same broker is not moved while it may hold the last copy
    sim = deployed()
    sim.send.kafka_healthy(brokers={0, 1}, under_replicated=3, under_replicated_names=("chaos-0",))
    reply, kills = command(sim, "replace_pod", pod="broker-2", confirm=True)
    assert not reply.ok and not kills and "under-replicated" in reply.result["message"]
