"""The decision core driven through `decide` alone: deploy, recovery, replacement, commands."""
from __future__ import annotations

import attrs
import pytest
from hypothesis import given, settings, strategies as st

from kmfwire.taskdata import TaskData
from scheduler.core import actions as act
from scheduler.core import events as ev
from scheduler.core.decide import plans
from tests.unit.scheduler_core.sim import BASE, Sim, spec


def launches(actions) -> list[dict]:
    return [t for a in actions if isinstance(a, act.Accept) for op in a.operations
            if op["type"] == "LAUNCH" for t in op["launch"]["task_infos"]]


def test_subscribe_persists_the_cluster_id_and_reconciles():
    sim = Sim(spec())
    out = sim.step(ev.Subscribed("fw-1", sim.now))
    assert out[0] == act.Persist(puts=(("properties", "cluster_id", "MkU3OEVBNTcwNTJENDM2Qk"),))
    assert act.Reconcile(()) in out and act.Revive() in out


def test_quorum_reserves_then_launches_together_then_apps_after_brokers():
    sim = Sim(spec())
    sim.step(ev.Subscribed("fw-1", sim.now))
    out = sim.offer_round()
    first = launches(out)
    # all three controllers got resources on three different agents and launched in one round
    assert sorted(t["name"] for t in first) == ["broker-0", "broker-1", "broker-2"]
    hosts = {t["agent_id"]["value"] for t in first}
    assert len(hosts) == 3
    data = TaskData.decode(first[0]["data"])
    assert len(data.broker.voters) == 3 and data.broker.cluster_id == "MkU3OEVBNTcwNTJENDM2Qk"
    # write-ahead: the records were persisted before the ACCEPT
    kinds = [type(a) for a in out]
    assert kinds.index(act.Persist) < kinds.index(act.Accept)
    assert not any(t["name"].startswith("wc") for t in first)
    assert plans(sim.state, sim.now)["deploy"]["status"] == "IN_PROGRESS"
    sim.run_all_ready()
    names = {r.pod for r in sim.state.tasks.values() if r.ready}
    assert names == {"broker-0", "broker-1", "broker-2", "wc-0", "wc-1"}
    # ready is not enough for a broker: Kafka metadata asked afterwards must show it in sync
    assert plans(sim.state, sim.now)["deploy"]["status"] == "IN_PROGRESS"
    sim.kafka_healthy()
    assert plans(sim.state, sim.now)["deploy"]["status"] == "COMPLETE"
    assert sim.state.suppressed


def test_failed_broker_relaunches_in_place_with_backoff_keeping_its_volume():
    sim = Sim(spec())
    sim.step(ev.Subscribed("fw", sim.now))
    sim.run_all_ready()
    rec = sim.record("broker-1")
    sim.status(rec.task_id, "TASK_FAILED", message="exit 137")
    failed = sim.record("broker-1")
    assert failed.attempts == 1 and failed.backoff_until == sim.now + 1
    steps = {s["name"]: s["status"] for ph in plans(sim.state, sim.now)["recovery"]["phases"] for s in ph["steps"]}
    assert steps == {"broker-1": "DELAYED"}
    assert not launches(sim.offer_round())  # still backing off
    sim.now += 1.5
    out = sim.offer_round()
    again = launches(out)
    assert [t["name"] for t in again] == ["broker-1"]
    assert again[0]["agent_id"]["value"] == rec.reservation.agent_id
    vols = [r for r in again[0]["resources"] if r.get("disk", {}).get("persistence")]
    assert vols[0]["disk"]["persistence"]["id"] == rec.reservation.persistence_id
    assert TaskData.decode(again[0]["data"]).broker.node_id == 1


def test_backoff_grows_and_is_capped():
    sim = Sim(spec())
    sim.step(ev.Subscribed("fw", sim.now))
    sim.run_all_ready()
    delays = []
    for _ in range(6):
        rec = sim.record("wc-0")
        sim.status(rec.task_id, "TASK_FAILED")
        delays.append(sim.record("wc-0").backoff_until - sim.now)
        sim.now = sim.record("wc-0").backoff_until
        sim.offer_round()
    assert delays == [1, 2, 4, 8, 8, 8]


def test_lost_agent_broker_replaced_elsewhere_with_same_identity_and_old_reservation_released():
    sim = Sim(spec(BASE.replace("brokers: 3", "brokers: 3").replace("count: 2", "count: 0")), agents=4)
    sim.step(ev.Subscribed("fw", sim.now))
    sim.run_all_ready()
    rec = sim.record("broker-2")
    agent = next(a for a in sim.agents if a.id == rec.reservation.agent_id)
    agent.alive = False
    sim.step(ev.AgentLost(agent.id, sim.now))
    sim.status(rec.task_id, "TASK_UNREACHABLE")
    sim.now += 31
    # partitions of broker-2 would fall below min ISR elsewhere: it is not moved, and the pod says why
    sim.step(ev.KafkaHealth(sim.now, frozenset({0, 1}), {}, {}, 0, under_min_isr_without={2: 4}))
    out = sim.step(ev.Tick(sim.now))
    assert not any(isinstance(a, act.Kill) for a in out)
    assert "4 of its partitions" in sim.state.last_placement["broker-2"]
    sim.step(ev.KafkaHealth(sim.now, frozenset({0, 1}), {}, {}, 0, under_min_isr_without={2: 0}))
    out = sim.step(ev.Tick(sim.now))
    assert act.Kill(rec.task_id, rec.agent_id) in out
    assert sim.record("broker-2").reservation is None
    out = sim.offer_round()
    new = launches(out)
    assert [t["name"] for t in new] == ["broker-2"] and new[0]["agent_id"]["value"] != agent.id
    assert TaskData.decode(new[0]["data"]).broker.node_id == 2
    # the old agent comes back with its task: killed as stale; its reservation is released
    agent.alive = True
    out = sim.step(ev.Status({"task_id": {"value": rec.task_id}, "state": "TASK_RUNNING",
                              "agent_id": {"value": agent.id}}, sim.now))
    assert act.Kill(rec.task_id, agent.id) in out
    sim.status(rec.task_id, "TASK_KILLED")  # the agent carries out the kill
    out = sim.offer_round()
    ops = [op["type"] for a in out if isinstance(a, act.Accept) for op in a.operations]
    assert "DESTROY" in ops and "UNRESERVE" in ops


def test_unknown_running_task_is_killed_and_status_acknowledged():
    sim = Sim(spec())
    status = {"task_id": {"value": "broker-9__x"}, "state": "TASK_RUNNING", "uuid": "dQ==",
              "agent_id": {"value": "A1"}}
    out = sim.step(ev.Status(status, sim.now))
    assert out == (act.Kill("broker-9__x", "A1"), act.Acknowledge(status))


def test_restart_and_replace_commands():
    sim = Sim(spec(), agents=4)
    sim.step(ev.Subscribed("fw", sim.now))
    sim.run_all_ready()
    rec = sim.record("broker-0")
    sim.kafka_healthy()  # a broker restarts only on Kafka metadata saying it may stop
    out = sim.step(ev.Command("c1", "restart_pod", {"pod": "broker-0"}, sim.now))
    assert [(k.task_id, k.agent_id) for k in out if isinstance(k, act.Kill)] == [(rec.task_id, rec.agent_id)]
    assert out[-1].ok
    sim.status(rec.task_id, "TASK_KILLED")
    again = launches(sim.offer_round())
    assert again and again[0]["agent_id"]["value"] == rec.agent_id  # in place, no backoff
    out = sim.step(ev.Command("c2", "restart_pod", {"pod": "nope"}, sim.now))
    assert out == (act.Reply("c2", False, {"message": "pod 'nope' does not exist", "status": 404}),)


def test_scale_in_refused_while_broker_holds_replicas():
    sim = Sim(spec(BASE.replace("brokers: 3", "brokers: 4")), agents=4)
    sim.step(ev.Subscribed("fw", sim.now))
    sim.run_all_ready()
    sim.step(ev.KafkaHealth(sim.now, frozenset({0, 1, 2, 3}), {}, {3: 7}, 0))
    out = sim.step(ev.Command("c", "scale_brokers", {"count": 3}, sim.now))
    assert not out[-1].ok and out[-1].result["confirm_required"] and "--yes" in out[-1].result["message"]
    out = sim.step(ev.Command("c", "scale_brokers", {"count": 3, "confirm": True}, sim.now))
    assert not out[-1].ok and "broker-3 holds 7 partition replicas" in out[-1].result["message"]
    out = sim.step(ev.Command("c", "scale_brokers", {"count": 2, "confirm": True}, sim.now))
    assert not out[-1].ok and "controller quorum" in out[-1].result["message"]
    sim.step(ev.KafkaHealth(sim.now, frozenset({0, 1, 2, 3}), {}, {3: 0}, 0))
    out = sim.step(ev.Command("c", "scale_brokers", {"count": 3, "confirm": True}, sim.now))
    assert out[-1].ok and any(isinstance(a, act.Kill) for a in out)


def test_config_update_rolls_one_broker_at_a_time_when_isr_allows():
    sim = Sim(spec(), agents=3)
    sim.step(ev.Subscribed("fw", sim.now))
    sim.run_all_ready()
    new = spec(BASE.replace("heap_mb: 256", "heap_mb: 300"))
    sim.step(ev.KafkaHealth(sim.now, frozenset({0, 1, 2}), {0: 0, 1: 3, 2: 0}, {}, 0))
    out = sim.step(ev.Command("u", "update_config", {"spec": new}, sim.now))
    kills = [a for a in out if isinstance(a, act.Kill)]
    # one kill only; not broker-1 (partitions would fall under min ISR), not the controller (0) first
    assert len(kills) == 1 and kills[0].task_id.startswith("broker-2")
    killed = kills[0].task_id
    sim.status(killed, "TASK_KILLED")
    sim.run_all_ready(rounds=2)  # broker-2 is back and ready with the new config
    # stale health (from before the restart) or partitions still catching up: nothing more restarts
    def kills_after(health):
        return [a for a in sim.step(health) + sim.step(ev.Tick(sim.now)) if isinstance(a, act.Kill)]
    assert not kills_after(ev.KafkaHealth(sim.now - 100, frozenset({0, 1, 2}), {}, {}, 0))
    assert not kills_after(ev.KafkaHealth(sim.now, frozenset({0, 1, 2}), {}, {}, 0, under_replicated=2))
    nxt = kills_after(ev.KafkaHealth(sim.now + 1, frozenset({0, 1, 2}), {}, {}, 0, under_replicated=0))
    assert len(nxt) == 1 and nxt[0].task_id.startswith("broker-1")
    assert out[-1].ok and any("heap_mb" in d for d in out[-1].result["diff"])
    refused = spec(BASE.replace("disk_mb: 1000", "disk_mb: 500"))
    out = sim.step(ev.Command("u2", "update_config", {"spec": refused}, sim.now))
    assert not out[-1].ok and "cannot shrink" in out[-1].result["message"]


def test_rolling_update_waits_for_kafka_metadata_asked_after_the_restarted_broker_is_ready():
    # seen in CI: a sample taken while the relaunched broker was starting showed every replica in
    # sync (Kafka had not dropped it from the ISR yet); decided on when its readiness arrived, it
    # let the next broker restart while all partitions were under-replicated
    sim = Sim(spec(), agents=3)
    sim.step(ev.Subscribed("fw", sim.now))
    sim.run_all_ready()
    healthy = dict(brokers_in_metadata=frozenset({0, 1, 2}), under_min_isr_if_down={}, controller_id=0)
    sim.step(ev.KafkaHealth(sim.now, **healthy))
    out = sim.step(ev.Command("u", "update_config", {"spec": spec(BASE.replace("heap_mb: 256", "heap_mb: 300"))}, sim.now))
    first = [a for a in out if isinstance(a, act.Kill)]
    assert len(first) == 1 and "0 under-replicated" in first[0].reason
    sim.status(first[0].task_id, "TASK_KILLED")
    sim.now += 1
    sim.offer_round()
    pod = first[0].task_id.split("__")[0]
    relaunched = sim.record(pod).task_id
    assert relaunched != first[0].task_id
    sim.status(relaunched, "TASK_RUNNING")  # starting, not ready
    sim.now += 1
    assert not [a for a in sim.step(ev.KafkaHealth(sim.now, **healthy)) if isinstance(a, act.Kill)]
    sim.now += 1
    assert not [a for a in sim.status(relaunched, "TASK_RUNNING", ready=True) if isinstance(a, act.Kill)]
    assert not [a for a in sim.step(ev.Tick(sim.now)) if isinstance(a, act.Kill)]
    sim.now += 1
    nxt = [a for a in sim.step(ev.KafkaHealth(sim.now, **healthy)) if isinstance(a, act.Kill)]
    assert len(nxt) == 1 and not nxt[0].task_id.startswith(pod)


def test_uninstall_kills_everything_releases_and_tears_down():
    sim = Sim(spec())
    sim.step(ev.Subscribed("fw", sim.now))
    sim.run_all_ready()
    out = sim.step(ev.Command("x", "uninstall", {}, sim.now))
    for kill in [a for a in out if isinstance(a, act.Kill)]:
        sim.status(kill.task_id, "TASK_KILLED")
    for _ in range(3):
        sim.offer_round()
    out = sim.step(ev.Tick(sim.now))
    assert act.Teardown() in out
    assert all(not a.free.reserved() for a in sim.agents)


@settings(max_examples=25, deadline=None)
@given(seed=st.lists(st.tuples(st.sampled_from(["offer", "fail", "ready", "tick", "lose"]), st.integers(0, 9)),
                     max_size=40))
def test_properties_no_double_launch_no_overuse(seed):
    sim = Sim(spec(), agents=4)
    sim.step(ev.Subscribed("fw", sim.now))
    for what, n in seed:
        if what == "offer":
            sim.offer_round()  # Sim.apply asserts nothing is used beyond what was offered
        elif what == "tick":
            sim.now += n
            sim.step(ev.Tick(sim.now))
        elif sim.tasks:
            tid = sorted(sim.tasks)[n % len(sim.tasks)]
            if what == "fail":
                sim.status(tid, "TASK_FAILED")
            elif what == "ready":
                sim.status(tid, "TASK_RUNNING", ready=True)
            else:
                sim.status(tid, "TASK_GONE")
        # never two live tasks for one pod
        pods = [t["info"]["name"] for t in sim.tasks.values()]
        current = {r.task_id for r in sim.state.tasks.values()}
        live_current = [t["info"]["name"] for tid, t in sim.tasks.items() if tid in current]
        assert len(live_current) == len(set(live_current)), pods
    # every LAUNCH came after a Persist naming its task id
    persisted = set()
    for a in sim.actions:
        if isinstance(a, act.Persist):
            persisted |= {v.get("task_id") for k, _, v in a.puts if k == "tasks"}
        for t in launches([a]):
            assert t["task_id"]["value"] in persisted


def test_reconciliation_answers_keep_readiness():
    sim = Sim(spec())
    sim.step(ev.Subscribed("fw", sim.now))
    sim.run_all_ready()
    rec = sim.record("broker-0")
    sim.step(ev.Status({"task_id": {"value": rec.task_id}, "state": "TASK_RUNNING",
                        "source": "SOURCE_MASTER", "reason": "REASON_RECONCILIATION"}, sim.now))
    assert sim.record("broker-0").ready
    sim.step(ev.Status({"task_id": {"value": rec.task_id}, "state": "TASK_RUNNING",
                        "source": "SOURCE_EXECUTOR", "uuid": "dQ=="}, sim.now))
    assert not sim.record("broker-0").ready  # the executor says it is not (yet) ready


def test_a_slow_relaunch_in_place_is_not_taken_for_a_permanent_failure():
    sim = Sim(spec())
    sim.step(ev.Subscribed("fw", sim.now))
    sim.run_all_ready()
    rec = sim.record("broker-1")
    sim.status(rec.task_id, "TASK_FAILED")
    sim.now += 1.5
    sim.offer_round()
    again = sim.record("broker-1")
    sim.status(again.task_id, "TASK_RUNNING")  # starting, not ready yet
    sim.now += 60  # far past permanent_failure_timeout_s (30)
    sim.step(ev.Tick(sim.now))
    assert sim.record("broker-1").reservation == rec.reservation
    sim.status(again.task_id, "TASK_FAILED")  # now it is down, and has been failing for long
    sim.step(ev.KafkaHealth(sim.now, frozenset({0, 2}), {}, {}, 0, under_min_isr_without={}))
    sim.step(ev.Tick(sim.now))
    assert sim.record("broker-1").reservation is None  # replaced elsewhere


def test_live_settings_do_not_roll_brokers_but_other_overrides_do():
    # a live key's new value is set live; adding or removing the key rolls (config.rules.restart_overrides)
    sim = Sim(spec(BASE.replace("placement: ['hostname:UNIQUE']}",
                                "placement: ['hostname:UNIQUE'], overrides: {log.retention.ms: '500'}}")))
    sim.step(ev.Subscribed("fw", sim.now))
    sim.run_all_ready()
    sim.step(ev.KafkaHealth(sim.now, frozenset({0, 1, 2}), {}, {}, 0))
    live = spec(BASE.replace("placement: ['hostname:UNIQUE']}",
                             "placement: ['hostname:UNIQUE'], overrides: {log.retention.ms: '1000'}}"))
    out = sim.step(ev.Command("u", "update_config", {"spec": live}, sim.now))
    assert out[-1].ok and out[-1].result["live"] == {"log.retention.ms": "1000"}
    assert not any(isinstance(a, act.Kill) for a in out)
    other = spec(BASE.replace("placement: ['hostname:UNIQUE']}",
                              "placement: ['hostname:UNIQUE'], overrides: {num.partitions: '6'}}"))
    out = sim.step(ev.Command("u", "update_config", {"spec": other}, sim.now))
    assert out[-1].result["restart"] is True and sum(isinstance(a, act.Kill) for a in out) == 1


def test_unreachable_then_back_keeps_readiness_and_forgets_the_failure():
    sim = Sim(spec())
    sim.step(ev.Subscribed("fw", sim.now))
    sim.run_all_ready()
    rec = sim.record("broker-0")
    sim.step(ev.Status({"task_id": {"value": rec.task_id}, "state": "TASK_UNREACHABLE",
                        "source": "SOURCE_MASTER"}, sim.now))
    assert not sim.record("broker-0").serving and plans(sim.state, sim.now)["deploy"]["status"] != "COMPLETE"
    sim.now += 5
    sim.step(ev.Status({"task_id": {"value": rec.task_id}, "state": "TASK_RUNNING", "source": "SOURCE_MASTER",
                        "reason": "REASON_AGENT_REREGISTERED"}, sim.now))
    back = sim.record("broker-0")
    assert back.serving and back.failed_since is None
    sim.kafka_healthy()
    assert plans(sim.state, sim.now)["deploy"]["status"] == "COMPLETE"


def test_permanent_failure_timeout_zero_never_moves_a_task():
    sim = Sim(spec(BASE.replace("permanent_failure_timeout_s: 30", "permanent_failure_timeout_s: 0")))
    sim.step(ev.Subscribed("fw", sim.now))
    sim.run_all_ready()
    rec = sim.record("wc-0")
    sim.status(rec.task_id, "TASK_UNREACHABLE")
    sim.now += 10_000
    sim.step(ev.Tick(sim.now))
    assert sim.record("wc-0").task_id == rec.task_id


def test_explicit_reconciliation_repeats_with_backoff_until_answered():
    sim = Sim(spec())
    sim.step(ev.Subscribed("fw", sim.now))
    sim.run_all_ready()
    out = sim.step(ev.Subscribed("fw", sim.now))  # a re-subscription: all 5 tasks asked about
    assert len(next(a for a in out if isinstance(a, act.Reconcile) and a.tasks).tasks) == 5
    answered = sim.record("broker-0")
    sim.step(ev.Status({"task_id": {"value": answered.task_id}, "state": "TASK_RUNNING",
                        "source": "SOURCE_MASTER", "reason": "REASON_RECONCILIATION"}, sim.now))
    asked = []
    for _ in range(60):
        sim.now += 1
        asked += [a for a in sim.step(ev.Tick(sim.now)) if isinstance(a, act.Reconcile) and a.tasks]
    # asked again 4 s later, then after 8, 16 and 30 s (the cap): only the four not answered
    assert [len(a.tasks) for a in asked] == [4, 4, 4, 4] and answered.task_id not in {t for a in asked for t, _ in a.tasks}


def test_scheduler_dying_between_persist_and_accept_leaves_no_duplicate_and_no_ghost_reservation():
    from scheduler.core.decide import decide, initial_state
    sim = Sim(spec())
    sim.step(ev.Subscribed("fw", sim.now))
    # the first round is decided and recorded, but the process dies before any ACCEPT is sent
    _, out = decide(sim.state, ev.Offers(tuple(sim_offers(sim)), sim.now))
    records = {}
    for a in out:
        if isinstance(a, act.Persist):
            records.update({k: v for kind, k, v in a.puts if kind == "tasks"})
    assert records and not sim.tasks
    sim.state = initial_state(sim.state.spec, "c1", "fw", records, {"cluster_id": "MkU3OEVBNTcwNTJENDM2Qk"})
    out = sim.step(ev.Subscribed("fw", sim.now))
    for rec in sim.state.tasks.values():  # the master never heard of these tasks
        sim.step(ev.Status({"task_id": {"value": rec.task_id}, "state": "TASK_DROPPED", "source": "SOURCE_MASTER",
                            "reason": "REASON_RECONCILIATION"}, sim.now))
    sim.now += 20
    sim.run_all_ready(rounds=12)
    sim.kafka_healthy()
    assert plans(sim.state, sim.now)["deploy"]["status"] == "COMPLETE"
    live = [t["info"]["name"] for t in sim.tasks.values()]
    assert sorted(live) == sorted(set(live))
    owned = {rec.reservation.persistence_id for rec in sim.state.tasks.values() if rec.reservation}
    on_agents = {dict(r.reservations[-1].labels).get("kmf.reservation") for a in sim.agents
                 for r in list(a.free) if r.is_reserved}
    on_agents |= {dict(r.reservations[-1].labels).get("kmf.reservation") for t in sim.tasks.values()
                  for r in t["uses"] if r.is_reserved}
    assert on_agents == owned


def sim_offers(sim):
    docs = []
    for agent in sim.agents:
        oid = f"X{next(sim.offer_ids)}"
        sim.offers[oid] = agent
        docs.append({"id": {"value": oid}, "agent_id": {"value": agent.id}, "hostname": agent.hostname,
                     "resources": agent.free.to_json("pre"),
                     "attributes": [{"name": "zone", "type": "TEXT", "text": {"value": agent.zone}}]})
    return docs
