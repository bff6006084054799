"""The master's pure core: offers, ACCEPT operations, status updates, agent loss, reconciliation.

No sockets: the core's effects are inspected directly. The hypothesis test drives random
sequences of operations and checks that offers never exceed what an agent has.
"""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from localmesos.master import agents_core, allocator
from localmesos.master.core import MasterCore, refuse_seconds
from localmesos.master.model import AgentCall, Close
from mesoslib.resources import Resources, parse_resources_flag
from tests.helpers.localmesos_master import RES, Harness, launch, task, uuid_b64


def test_offer_is_whole_agent_with_role_star():
    h = Harness()
    aid = h.add_agent()
    h.subscribe()
    h.allocate()
    [offer] = h.offers()
    assert offer["agent_id"] == {"value": aid}
    assert offer["url"]["path"] == "/slave(1)"
    assert "allocation_info" not in offer
    assert all(r["role"] == "*" for r in offer["resources"])
    assert Resources.from_json(offer["resources"]) == parse_resources_flag(RES)


def test_launch_takes_resources_and_terminal_update_returns_them():
    h = Harness()
    aid = h.add_agent()
    fw = h.subscribe()
    h.allocate()
    [offer] = h.offers()
    h.clear()
    h.accept(fw, [offer["id"]["value"]],
             [launch(task("t1", aid, "cpus:1;mem:128;ports:[31000-31000]"))],
             filters={"refuse_seconds": 0})
    calls = [e for e in h.effects if isinstance(e, AgentCall)]
    assert [c.name for c in calls] == ["run_task"]
    assert calls[0].body["task"]["task_id"] == {"value": "t1"}
    assert not h.updates()
    h.allocate()
    [again] = h.offers()
    res = Resources.from_json(again["resources"])
    assert res.scalar("cpus") == 3.0
    assert res.ranges_of("ports") == ((31001, 32000),)
    h.clear()
    u = uuid_b64()
    h.run(agents_core.status_update, h.core, {
        "framework_id": {"value": fw.id},
        "status": {"task_id": {"value": "t1"}, "state": "TASK_FINISHED", "uuid": u,
                   "agent_id": {"value": aid}, "source": "SOURCE_EXECUTOR", "timestamp": 2.0},
        "latest_state": "TASK_FINISHED"}, h.now)
    assert h.updates()[0]["uuid"] == u
    h.run(h.core.decline, fw, {"offer_ids": [again["id"]], "filters": {"refuse_seconds": 0}}, h.now)
    h.allocate()
    [full] = h.offers()
    assert Resources.from_json(full["resources"]).scalar("cpus") == 4.0
    assert "t1" in fw.tasks  # terminal but unacknowledged
    h.run(h.core.acknowledge, fw, {"agent_id": {"value": aid}, "task_id": {"value": "t1"}, "uuid": u})
    assert "t1" not in fw.tasks and fw.completed_tasks[-1].id == "t1"


def test_invalid_launches_get_task_error_without_uuid():
    h = Harness()
    aid = h.add_agent()
    fw = h.subscribe()
    h.allocate()
    [offer] = h.offers()
    h.clear()
    too_big = task("big", aid, "cpus:5;mem:128")
    both = task("both", aid, executor={"executor_id": {"value": "e"}, "command": {"value": "x"}})
    h.accept(fw, [offer["id"]["value"]], [launch(too_big, both, task("ok", aid), task("ok", aid))])
    by_id = {}
    for u in h.updates():
        by_id.setdefault(u["task_id"]["value"], []).append(u)
    assert by_id["big"][0]["state"] == "TASK_ERROR"
    assert by_id["big"][0]["reason"] == "REASON_TASK_INVALID"
    assert "more than available" in by_id["big"][0]["message"]
    assert "uuid" not in by_id["big"][0]
    assert by_id["both"][0]["message"] == (
        "Task should have at least one (but not both) of CommandInfo or ExecutorInfo present")
    assert by_id["ok"][0]["message"] == "Task has duplicate ID: ok"


def test_accept_of_declined_offer_loses_tasks():
    h = Harness()
    aid = h.add_agent()
    fw = h.subscribe()
    pa = h.subscribe("s2", capabilities=[{"type": "PARTITION_AWARE"}])
    h.allocate()
    offers = h.offers("s1") + h.offers("s2")
    assert len(offers) == 1  # the whole agent went to one of them
    oid = offers[0]["id"]["value"]
    h.run(h.core.decline, h.core.frameworks[offers[0]["framework_id"]["value"]],
          {"offer_ids": [{"value": oid}]}, h.now)
    h.clear()
    h.accept(fw, [oid], [launch(task("t", aid))])
    h.accept(pa, [oid], [launch(task("t", aid))])
    [lost] = h.updates("s1")
    [dropped] = h.updates("s2")
    assert lost["state"] == "TASK_LOST" and dropped["state"] == "TASK_DROPPED"
    for u in (lost, dropped):
        assert u["reason"] == "REASON_INVALID_OFFERS" and u["source"] == "SOURCE_MASTER"
        assert u["message"] == f"Task launched with invalid offers: Offer {oid} is no longer valid"
        assert "uuid" not in u


def test_decline_filter_hides_agent_until_expiry_and_revive_clears_it():
    h = Harness()
    h.add_agent()
    fw = h.subscribe()
    h.allocate()
    [offer] = h.offers()
    h.run(h.core.decline, fw, {"offer_ids": [offer["id"]], "filters": {"refuse_seconds": 30}}, h.now)
    h.clear()
    h.now += 29
    h.allocate()
    assert not h.offers()
    h.now += 2
    h.allocate()
    assert len(h.offers()) == 1
    h.run(h.core.decline, fw, {"offer_ids": [h.offers()[0]["id"]]}, h.now)
    h.clear()
    h.run(h.core.revive, fw, None)
    h.allocate()
    assert len(h.offers()) == 1


def test_suppress_stops_offers():
    h = Harness()
    h.add_agent()
    fw = h.subscribe()
    h.run(h.core.suppress, fw, None)
    h.allocate()
    assert not h.offers()
    h.run(h.core.revive, fw, {})
    h.allocate()
    assert h.offers()


def test_multi_role_offers_carry_allocation_info():
    h = Harness()
    h.add_agent()
    h.add_agent("127.0.0.3")
    h.subscribe(roles=["a", "b"], capabilities=[{"type": "MULTI_ROLE"}])
    h.allocate()
    offers = h.offers()
    assert len(offers) == 2
    for offer in offers:
        role = offer["allocation_info"]["role"]
        assert role in ("a", "b")
        assert all(r["allocation_info"] == {"role": role} for r in offer["resources"])


def test_reserve_create_launch_and_volume_lifecycle():
    h = Harness()
    aid = h.add_agent()
    fw = h.subscribe(role="kafka", principal="kmf")
    other = h.subscribe("s2")
    h.allocate()
    [offer] = h.offers("s1") or h.offers("s2")
    if offer["framework_id"]["value"] != fw.id:  # make sure the kafka framework holds the agent
        h.run(h.core.decline, other, {"offer_ids": [offer["id"]], "filters": {"refuse_seconds": 1000}}, h.now)
        h.clear()
        h.allocate()
        [offer] = h.offers("s1")
    reserved = parse_resources_flag("cpus:1;mem:512;disk:1024").to_json("pre")
    for r in reserved:
        r["role"], r["reservation"] = "kafka", {"principal": "kmf"}
    volume = dict(next(r for r in reserved if r["name"] == "disk"))
    volume["disk"] = {"persistence": {"id": "b0", "principal": "kmf"},
                      "volume": {"container_path": "data", "mode": "RW"}}
    t = task("t", aid, "cpus:0.5;mem:128")
    t["resources"] += [volume]
    h.clear()
    h.accept(fw, [offer["id"]["value"]], [
        {"type": "RESERVE", "reserve": {"resources": reserved}},
        {"type": "CREATE", "create": {"volumes": [volume]}},
        launch(t),
    ], filters={"refuse_seconds": 0})
    names = [e.name for e in h.effects if isinstance(e, AgentCall)]
    assert names == ["apply_resources", "apply_resources", "run_task"]  # volume before task
    agent = h.core.agents[aid]
    assert agent.total.reserved("kafka").scalar("cpus") == 1.0
    assert len(agent.total.volumes()) == 1
    assert not h.updates()
    # The volume is in use: not offered; the reserved rest is, only to the kafka role.
    h.allocate()
    kafka_offer = h.offers("s1")[0]
    kres = Resources.from_json(kafka_offer["resources"])
    assert not kres.volumes()
    assert kres.reserved("kafka").scalar("cpus") == 1.0
    # the unreserved rest went to the other framework (lower share), reserved ones never do
    other_res = Resources.from_json(h.offers("s2")[0]["resources"])
    assert other_res.unreserved().scalar("cpus") == 2.5 and not other_res.reserved()
    assert all(r["reservation"] == {"principal": "kmf"} for r in kafka_offer["resources"]
               if r["role"] == "kafka")
    assert not [o for o in h.offers("s2") if Resources.from_json(o["resources"]).reserved()]
    # DESTROY of a volume in use: no change.
    h.clear()
    h.accept(fw, [kafka_offer["id"]["value"]], [{"type": "DESTROY", "destroy": {"volumes": [volume]}}],
             filters={"refuse_seconds": 0})
    assert len(agent.total.volumes()) == 1
    # Task ends: the volume is offered again with its persistence id.
    h.run(agents_core.status_update, h.core, {
        "framework_id": {"value": fw.id},
        "status": {"task_id": {"value": "t"}, "state": "TASK_FINISHED", "uuid": uuid_b64(),
                   "agent_id": {"value": aid}, "source": "SOURCE_EXECUTOR"},
        "latest_state": "TASK_FINISHED"}, h.now)
    h.clear()
    h.allocate()
    offer = h.offers("s1")[0]
    vols = Resources.from_json(offer["resources"]).volumes()
    assert [v.disk.persistence_id for v in vols] == ["b0"]
    # UNRESERVE of the volume's disk is refused; DESTROY then UNRESERVE returns it to '*'.
    h.clear()
    h.accept(fw, [offer["id"]["value"]], [
        {"type": "UNRESERVE", "unreserve": {"resources": [volume]}},
        {"type": "DESTROY", "destroy": {"volumes": [volume]}},
        {"type": "UNRESERVE", "unreserve": {"resources": reserved}},
    ])
    assert not agent.total.reserved() and not agent.total.volumes()
    assert agent.total == parse_resources_flag(RES)


def test_reserve_from_star_framework_does_nothing():
    h = Harness()
    aid = h.add_agent()
    fw = h.subscribe()
    h.allocate()
    [offer] = h.offers()
    reserved = parse_resources_flag("cpus:1").to_json("pre")
    reserved[0]["role"], reserved[0]["reservation"] = "*", {}
    h.accept(fw, [offer["id"]["value"]], [{"type": "RESERVE", "reserve": {"resources": reserved}}])
    assert not h.core.agents[aid].total.reserved()


def test_agent_loss_unreachable_for_pa_lost_for_others_and_return():
    h = Harness()
    aid = h.add_agent()
    npa = h.subscribe()
    pa = h.subscribe("s2", capabilities=[{"type": "PARTITION_AWARE"}])
    h.core.frameworks[npa.id].tasks  # noqa: B018
    for fw, tid in ((npa, "a"), (pa, "b")):
        h.clear()
        h.run(h.core.revive, fw, None)
        h.allocate()
        offers = h.offers(fw.stream_id)
        if not offers:
            continue
        h.accept(fw, [offers[0]["id"]["value"]], [launch(task(tid, aid, "cpus:1;mem:32"))],
                 filters={"refuse_seconds": 0})
    # Whoever got the agent first launched; give the other one a chance too.
    for fw, tid in ((npa, "a"), (pa, "b")):
        if tid not in fw.tasks:
            h.clear()
            h.allocate()
            offers = h.offers(fw.stream_id)
            h.accept(fw, [offers[0]["id"]["value"]], [launch(task(tid, aid, "cpus:1;mem:32"))])
    assert "a" in npa.tasks and "b" in pa.tasks
    h.allocate()
    h.clear()
    for _ in range(5):
        h.run(agents_core.ping_result, h.core, aid, False, h.now)
    assert aid not in h.core.agents and aid in h.core.unreachable
    [lost] = h.updates("s1")
    [unreach] = h.updates("s2")
    assert lost["state"] == "TASK_LOST" and unreach["state"] == "TASK_UNREACHABLE"
    assert "unreachable_time" in unreach
    for u in (lost, unreach):
        assert u["reason"] == "REASON_AGENT_REMOVED" and "uuid" not in u
    assert [e["failure"] for e in h.events("FAILURE", "s1")] == [{"agent_id": {"value": aid}}]
    assert h.events("RESCIND")  # the outstanding offer on that agent
    assert "b" in pa.unreachable_tasks
    # Explicit reconciliation while unreachable; then the agent comes back.
    h.clear()
    h.run(h.core.reconcile, pa, {"tasks": [{"task_id": {"value": "b"}}]}, h.now)
    assert h.updates("s2")[0]["state"] == "TASK_UNREACHABLE"
    h.clear()
    h.add_agent(agent_id=aid, tasks=[
        {"framework_id": {"value": pa.id}, "task": task("b", aid, "cpus:1;mem:32"), "state": "TASK_RUNNING"},
        {"framework_id": {"value": npa.id}, "task": task("a", aid, "cpus:1;mem:32"), "state": "TASK_RUNNING"},
    ])
    back = h.updates("s2")
    assert back[0]["state"] == "TASK_RUNNING"
    assert back[0]["reason"] == "REASON_AGENT_REREGISTERED"
    assert "b" in pa.tasks and "b" not in pa.unreachable_tasks


def test_reconciliation_answers():
    h = Harness()
    aid = h.add_agent()
    npa = h.subscribe()
    pa = h.subscribe("s2", capabilities=[{"type": "PARTITION_AWARE"}])
    h.clear()
    h.run(h.core.reconcile, npa, {"tasks": [{"task_id": {"value": "x"}}]}, h.now)
    h.run(h.core.reconcile, pa, {"tasks": [{"task_id": {"value": "x"}},
                                          {"task_id": {"value": "y"}, "agent_id": {"value": aid}}]}, h.now)
    h.run(h.core.kill, pa, {"task_id": {"value": "z"}}, h.now)
    [n] = h.updates("s1")
    assert (n["state"], n["reason"], n["source"]) == ("TASK_LOST", "REASON_RECONCILIATION", "SOURCE_MASTER")
    states = [u["state"] for u in h.updates("s2")]
    assert states == ["TASK_UNKNOWN", "TASK_GONE", "TASK_UNKNOWN"]
    assert all("uuid" not in u for u in h.updates("s2"))


def test_recovered_agents_silence_unknown_reconciliation():
    h = Harness()
    h.core = MasterCore("M2", {"id": "M2"}, recovered_agents={"old-S0": {"hostname": "h"}}, now=0.0)
    fw = h.subscribe()
    h.clear()
    h.run(h.core.reconcile, fw, {"tasks": [{"task_id": {"value": "x"}}]}, h.now)
    assert not h.updates()
    h.add_agent(agent_id="old-S0")
    assert "old-S0" in h.core.agents and not h.core.recovered
    h.run(h.core.reconcile, fw, {"tasks": [{"task_id": {"value": "x"}}]}, h.now)
    assert h.updates()[0]["state"] == "TASK_LOST"


def test_failover_discards_offers_without_rescind_and_errors_old_stream():
    h = Harness()
    h.add_agent()
    fw = h.subscribe()
    h.allocate()
    assert h.core.offers
    h.clear()
    h.run(h.core.subscribe, {"type": "SUBSCRIBE", "framework_id": {"value": fw.id}, "subscribe": {
        "framework_info": {"user": "u", "name": "n", "id": {"value": fw.id}}}}, "s9", None, h.now)
    assert h.events("ERROR", "s1") == [{"type": "ERROR", "error": {"message": "Framework failed over"}}]
    assert Close("s1") in h.effects
    assert not h.events("RESCIND")
    assert not h.core.offers
    assert h.events("SUBSCRIBED", "s9")


def test_refuse_seconds_rules():
    assert refuse_seconds(None) == 5.0
    assert refuse_seconds({"refuse_seconds": -1}) == 5.0
    assert refuse_seconds({"refuse_seconds": 0}) == 0.0
    assert refuse_seconds({"refuse_seconds": 0.2}) == 1.0
    assert refuse_seconds({"refuse_seconds": 1e12}) == 365 * 24 * 3600.0


# --------------------------------------------------------------------------- property


ops = st.lists(
    st.tuples(
        st.sampled_from(["launch", "finish", "reserve", "unreserve", "create", "destroy",
                         "decline", "lose", "return", "revive", "allocate"]),
        st.integers(0, 2),
        st.integers(1, 4),
    ),
    max_size=60,
)


def _check_no_overcommit(core):
    fws = list(core.frameworks.values())
    for agent in core.agents.values():
        used = allocator.used_by_agent(agent.id, fws)
        offered = allocator.offered_on_agent(agent.id, core.offers.values())
        assert agent.total.contains(used + offered), (agent.id, used, offered, agent.total)


@settings(max_examples=200, deadline=None)
@given(ops)
def test_random_operations_never_offer_more_than_an_agent_has(sequence):
    h = Harness()
    agents = [h.add_agent(f"127.0.0.{i + 2}", "cpus:4;mem:1024;disk:1000;ports:[1-10]")
              for i in range(3)]
    totals = {aid: h.core.agents[aid].total for aid in agents}
    fw = h.subscribe(role="kafka", principal="kmf")
    counter = 0
    for kind, which, amount in sequence:
        h.now += 1
        if kind != "allocate":
            h.allocate()  # the master allocates every second
        aid = agents[which]
        held = [o for o in h.core.offers.values() if o.agent_id == aid and o.framework_id == fw.id]
        if kind == "allocate":
            h.allocate()
        elif kind == "revive":
            h.run(h.core.revive, fw, None)
        elif kind == "lose":
            for _ in range(5):
                h.run(agents_core.ping_result, h.core, aid, False, h.now)
        elif kind == "return" and aid in h.core.unreachable:
            live = [{"framework_id": {"value": fw.id}, "task": t.info, "state": "TASK_RUNNING"}
                    for t in fw.unreachable_tasks.values() if t.agent_id == aid]
            info_res = h.core.unreachable[aid].total.to_json("endpoint")
            h.run(agents_core.register_agent, h.core, {
                "agent_info": {"id": {"value": aid}, "hostname": "h", "port": 1,
                               "resources": info_res},
                "agent_url": "http://127.0.0.9:1", "tasks": live}, h.now)
        elif kind == "finish":
            running = [t for t in fw.tasks.values() if t.agent_id == aid and t.uses_resources]
            if running and aid in h.core.agents:
                t = running[0]
                h.run(agents_core.status_update, h.core, {
                    "framework_id": {"value": fw.id},
                    "status": {"task_id": {"value": t.id}, "state": "TASK_KILLED",
                               "uuid": uuid_b64(), "agent_id": {"value": aid}},
                    "latest_state": "TASK_KILLED"}, h.now)
        elif held:
            offer = held[0]
            free = offer.resources
            oid = offer.id
            if kind == "decline":
                h.run(h.core.decline, fw, {"offer_ids": [{"value": oid}], "filters": {"refuse_seconds": amount}}, h.now)
            elif kind == "launch":
                counter += 1
                cpus = [r for r in free if r.name == "cpus"]
                if cpus:
                    # amount 4 asks for more than offered: TASK_ERROR, nothing taken
                    want = cpus[0].value + 1000 if amount == 4 else min(cpus[0].value, amount * 500)
                    t = {"name": "t", "task_id": {"value": f"t{counter}"},
                         "agent_id": {"value": aid},
                         "resources": [cpus[0].with_value(want).to_json("pre")],
                         "command": {"value": "x"}}
                    h.accept(fw, [oid], [launch(t)], filters={"refuse_seconds": 0})
            elif kind == "reserve":
                cpus = [r for r in free.unreserved() if r.name == "cpus"]
                if cpus:
                    res = parse_resources_flag("cpus:1").to_json("pre")
                    res[0]["role"], res[0]["reservation"] = "kafka", {"principal": "kmf"}
                    h.accept(fw, [oid], [{"type": "RESERVE", "reserve": {"resources": res}}],
                             filters={"refuse_seconds": 0})
            elif kind == "unreserve":
                res = [r.to_json("pre") for r in free.reserved("kafka") if not r.is_volume]
                if res:
                    h.accept(fw, [oid], [{"type": "UNRESERVE", "unreserve": {"resources": res}}],
                             filters={"refuse_seconds": 0})
            elif kind in ("create", "destroy"):
                disk = parse_resources_flag("disk:100").to_json("pre")[0]
                disk["role"], disk["reservation"] = "kafka", {"principal": "kmf"}
                volume = {**disk, "disk": {"persistence": {"id": f"v{which}", "principal": "kmf"},
                                           "volume": {"container_path": "d", "mode": "RW"}}}
                ops_ = ([{"type": "RESERVE", "reserve": {"resources": [disk]}},
                         {"type": "CREATE", "create": {"volumes": [volume]}}]
                        if kind == "create" else
                        [{"type": "DESTROY", "destroy": {"volumes": [volume]}},
                         {"type": "UNRESERVE", "unreserve": {"resources": [disk]}}])
                h.accept(fw, [oid], ops_, filters={"refuse_seconds": 0})
        _check_no_overcommit(h.core)
        # Reservations and volumes only move resources around: the flattened total is constant.
        for a in agents:
            agent = h.core.agents.get(a) or h.core.unreachable.get(a)
            assert agent.total.flatten() == totals[a].flatten()
    # End: every task finishes, every offer goes back: the agents are whole again.
    for t in list(fw.tasks.values()):
        if t.agent_id in h.core.agents and t.uses_resources:
            h.run(agents_core.status_update, h.core, {
                "framework_id": {"value": fw.id},
                "status": {"task_id": {"value": t.id}, "state": "TASK_KILLED", "uuid": uuid_b64(),
                           "agent_id": {"value": t.agent_id}},
                "latest_state": "TASK_KILLED"}, h.now)
    for offer in list(h.core.offers.values()):
        h.run(h.core.decline, fw, {"offer_ids": [{"value": offer.id}]}, h.now)
    for agent in h.core.agents.values():
        assert allocator.available(agent, h.core.frameworks.values(), h.core.offers.values()) == agent.total


def test_custom_executor_resources_counted_once_and_freed_on_exit():
    h = Harness()
    aid = h.add_agent()
    fw = h.subscribe()
    h.allocate()
    [offer] = h.offers()
    executor = {"executor_id": {"value": "e1"}, "command": {"value": "run-executor"},
                "resources": parse_resources_flag("cpus:0.5;mem:64").to_json("pre")}
    t1 = task("t1", aid, executor=executor)
    del t1["command"]
    t2 = task("t2", aid, executor=executor)
    del t2["command"]
    h.clear()
    h.accept(fw, [offer["id"]["value"]], [launch(t1, t2)], filters={"refuse_seconds": 0})
    assert not h.updates()
    calls = [e for e in h.effects if isinstance(e, AgentCall)]
    assert [c.body["task"]["executor"]["framework_id"] for c in calls] == [{"value": fw.id}] * 2
    used = allocator.used_by_agent(aid, h.core.frameworks.values())
    assert used.scalar("cpus") == 2.5  # two tasks + one executor
    h.allocate()
    assert h.offers()[-1]["executor_ids"] == [{"value": "e1"}]
    h.clear()
    h.run(agents_core.executor_exited, h.core,
          {"framework_id": {"value": fw.id}, "executor_id": {"value": "e1"}, "status": 256}, h.now)
    [failure] = h.events("FAILURE")
    assert failure["failure"] == {"agent_id": {"value": aid}, "executor_id": {"value": "e1"},
                                  "status": 256}
    assert allocator.used_by_agent(aid, h.core.frameworks.values()).scalar("cpus") == 2.0


def test_launch_group_is_refused_as_unsupported_with_a_message_saying_so():
    """localmesos has no default executor: every task of a group gets TASK_ERROR saying that
    LAUNCH_GROUP is unsupported (before, a valid group passed and its executor, with no command,
    failed at once), and nothing is launched or held."""
    h = Harness()
    aid = h.add_agent()
    fw = h.subscribe()
    h.allocate()
    [offer] = h.offers()
    executor = {"executor_id": {"value": "g"}, "type": "DEFAULT", "framework_id": {"value": fw.id},
                "resources": parse_resources_flag("cpus:0.1;mem:32").to_json("pre")}
    a, b = task("a", aid), task("b", aid)
    del a["command"], b["command"]
    h.clear()
    h.accept(fw, [offer["id"]["value"]], [{"type": "LAUNCH_GROUP", "launch_group": {
        "executor": executor, "task_group": {"tasks": [a, b]}}}], filters={"refuse_seconds": 0})
    updates = h.updates()
    assert [(u["task_id"]["value"], u["state"], u["reason"], u["source"]) for u in updates] == [
        ("a", "TASK_ERROR", "REASON_TASK_GROUP_INVALID", "SOURCE_MASTER"),
        ("b", "TASK_ERROR", "REASON_TASK_GROUP_INVALID", "SOURCE_MASTER")]
    assert all("LAUNCH_GROUP is not supported by localmesos" in u["message"] for u in updates)
    assert not fw.tasks and not fw.executors
    assert not [e for e in h.effects if isinstance(e, AgentCall)]


def test_teardown_and_failover_timeout_remove_frameworks():
    h = Harness()
    aid = h.add_agent()
    fw = h.subscribe()
    h.allocate()
    [offer] = h.offers()
    h.accept(fw, [offer["id"]["value"]], [launch(task("t", aid))])
    h.clear()
    h.run(h.core.teardown, fw, h.now)
    assert Close("s1") in h.effects
    assert [e.name for e in h.effects if isinstance(e, AgentCall)] == ["shutdown_framework"]
    assert fw.id not in h.core.frameworks
    done = h.core.completed_frameworks[-1]
    assert done.completed_tasks[-1].state == "TASK_KILLED"
    # failover timeout
    fw2 = h.subscribe("s2", failover_timeout=10.0)
    h.run(h.core.stream_closed, "s2", h.now)
    assert not fw2.connected and fw2.id in h.core.frameworks
    h.run(h.core.tick, h.now + 9)
    assert fw2.id in h.core.frameworks
    h.run(h.core.tick, h.now + 11)
    assert fw2.id not in h.core.frameworks and fw2.id in h.core.removed_framework_ids


def test_framework_message_and_executor_message_routing():
    h = Harness()
    aid = h.add_agent()
    fw = h.subscribe()
    h.clear()
    h.run(h.core.message, fw, {"agent_id": {"value": aid}, "executor_id": {"value": "e"}, "data": "aGk="})
    [call] = [e for e in h.effects if isinstance(e, AgentCall)]
    assert call.name == "framework_message" and call.body["data"] == "aGk="
    h.run(agents_core.executor_message, h.core, {"framework_id": {"value": fw.id},
          "executor_id": {"value": "e"}, "agent_id": {"value": aid}, "data": "aGk="})
    [msg] = h.events("MESSAGE")
    assert msg["message"] == {"agent_id": {"value": aid}, "executor_id": {"value": "e"}, "data": "aGk="}


def test_executor_message_without_agent_id_names_the_executors_agent():
    h = Harness()
    aid = h.add_agent()
    fw = h.subscribe()
    h.allocate()
    [offer] = h.offers()
    t = task("t1", aid, executor={"executor_id": {"value": "e9"}, "command": {"value": "x"}})
    del t["command"]
    h.accept(fw, [offer["id"]["value"]], [launch(t)])
    h.clear()
    h.run(agents_core.executor_message, h.core, {"framework_id": {"value": fw.id},
          "executor_id": {"value": "e9"}, "data": "aGk="})
    assert h.events("MESSAGE")[0]["message"]["agent_id"] == {"value": aid}


def test_agent_marked_gone_by_operator():
    h = Harness()
    aid = h.add_agent()
    npa = h.subscribe()
    h.allocate()
    [offer] = h.offers()
    h.accept(npa, [offer["id"]["value"]], [launch(task("g", aid))])
    h.clear()
    h.run(agents_core.mark_gone, h.core, aid, h.now)
    [u] = h.updates()
    assert (u["state"], u["reason"]) == ("TASK_LOST", "REASON_AGENT_REMOVED_BY_OPERATOR")
    assert "g" not in npa.tasks and npa.completed_tasks[-1].state == "TASK_GONE_BY_OPERATOR"
    h.clear()
    h.run(h.core.reconcile, npa, {"tasks": [{"task_id": {"value": "x"}, "agent_id": {"value": aid}}]}, h.now)
    assert h.updates()[0]["state"] == "TASK_LOST"
    try:
        h.add_agent(agent_id=aid)
    except agents_core.AgentError as exc:
        assert "marked gone" in str(exc)
    else:
        raise AssertionError("a gone agent must not re-register")


def test_offer_timeout_rescinds_held_offers():
    h = Harness()
    h.core.offer_timeout = 10.0
    h.add_agent()
    h.subscribe()
    h.allocate()
    [offer] = h.offers()
    h.clear()
    h.run(h.core.tick, h.now + 5)
    assert not h.events("RESCIND")
    h.run(h.core.tick, h.now + 10)
    assert h.events("RESCIND") == [{"type": "RESCIND", "rescind": {"offer_id": offer["id"]}}]
    assert not h.core.offers


def test_a_capability_without_type_does_not_break_the_framework_view():
    # mypy found it: `capabilities` held None for an entry without "type", and the state
    # endpoint's sorted() of the set then raised TypeError (None against the strings)
    from localmesos.master import views
    h = Harness()
    fw = h.subscribe(capabilities=[{"type": "MULTI_ROLE"}, {}])
    assert fw.capabilities == {"MULTI_ROLE"}
    assert views.framework_json(h.core, fw)["capabilities"] == ["MULTI_ROLE"]
