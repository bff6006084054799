"""The rebalance plan in the decision core: batches handed to Kafka only while it is safe, each
waiting for Kafka's own view of the one before; drain, scale-out, interrupt, failure, restart."""
from __future__ import annotations

import pytest

from scheduler.core import actions as act
from scheduler.core import events as ev
from scheduler.core.rebalance import KEY, SCALE_OUT_KEY, current
from tests.helpers.core_kit import BASE, deployed

FOUR = BASE.replace("brokers: 3,", "brokers: 4,").replace(
    "disk_mb: 1000,", "disk_mb: 1000, rebalance: {max_moves: 2, throttle_mb_s: 5},")
THREE = BASE.replace("disk_mb: 1000,", "disk_mb: 1000, rebalance: {max_moves: 2, throttle_mb_s: 5},")


def _health(sim, assignment, brokers=None, **fields):
    isr = {tp: frozenset(r) for tp, r in assignment.items()}
    held: dict[int, int] = {}
    for r in assignment.values():
        for b in r:
            held[b] = held.get(b, 0) + 1
    return sim.send.kafka_health(brokers=brokers, assignment=dict(assignment), isr=isr,
                                 replicas_by_broker=held, **fields)


def _reassigns(outcome) -> list[act.Reassign]:
    return outcome.of(act.Reassign)


def _apply(assignment, reassign: act.Reassign) -> dict:
    out = dict(assignment)
    for topic, partition, replicas in reassign.moves:
        out[(topic, partition)] = replicas
    return out


def _four_with_an_empty_broker():
    """4 brokers, broker 3 empty (as after a scale-out), Kafka's view sampled: (sim, layout)."""
    sim = deployed(FOUR, agents=4)
    layout = {("t", p): (p % 3, (p + 1) % 3) for p in range(6)}
    _health(sim, layout)
    return sim, layout


def _rebalancing():
    """A rebalance started on `_four_with_an_empty_broker`: (sim, layout, its first batch)."""
    sim, layout = _four_with_an_empty_broker()
    sim.send.command("rebalance")
    (batch,) = _reassigns(sim.expect)
    return sim, layout, batch


def _run_to_end(sim, layout, out, check=lambda batch: None, **health):
    """Kafka carries out each batch handed over, until the rebalance ends: the final layout."""
    while not out.of(act.EndReassign):
        assert not out.kills
        (batch,) = _reassigns(out)
        check(batch)
        layout = _apply(layout, batch)
        sim.now += 5
        out = _health(sim, layout, **health)
    return layout


def test_a_rebalance_moves_in_batches_each_after_kafka_shows_the_last_done() -> None:
    sim = deployed(FOUR, agents=4)
    layout = {("t", p): (p % 3, (p + 1) % 3) for p in range(6)}  # broker 3 holds nothing
    _health(sim, layout)
    dry = sim.send.command("rebalance", dry_run=True).replied(ok=True)
    assert dry.reply.result["after"] == {0: 3, 1: 3, 2: 3, 3: 3}
    assert not _reassigns(dry) and KEY not in sim.state.properties
    sim.send.command("rebalance").replied(ok=True, contains="rebalancing")
    first = _reassigns(sim.expect)
    assert len(first) == 1 and len(first[0].moves) == 2 and first[0].throttle == 5_000_000
    sim.expect.persisted(f"properties/{KEY}")
    sim.now += 5
    # Kafka shows the moves under way (old and new replicas together): nothing more goes
    under_way = {tp: tuple(dict.fromkeys(r + new)) for (t, p, new) in first[0].moves for tp, r in [((t, p), layout[(t, p)])]}
    moving = {**layout, **under_way}
    assert not _reassigns(_health(sim, moving))
    assert sim.plans()["rebalance"]["status"] == "IN_PROGRESS"
    layout = _apply(layout, first[0])
    sim.now += 5
    batches = [first[0]]
    while True:
        out = _health(sim, layout)
        if out.of(act.EndReassign):
            break
        (nxt,) = _reassigns(out)
        batches.append(nxt)
        layout = _apply(layout, nxt)
        sim.now += 5
    counts = {b: sum(b in r for r in layout.values()) for b in range(4)}
    assert counts == {0: 3, 1: 3, 2: 3, 3: 3}
    assert sim.plans()["rebalance"]["status"] == "COMPLETE"
    assert sum(len(b.moves) for b in batches) == sim.plans()["rebalance"]["moves"]


def test_no_batch_goes_while_a_broker_is_down_or_partitions_are_under_replicated() -> None:
    sim, layout = _four_with_an_empty_broker()
    _health(sim, layout, under_replicated=1)
    sim.send.command("rebalance").replied(ok=True)
    assert not _reassigns(sim.expect)
    assert "under-replicated" in sim.plans()["rebalance"]["message"]
    sim.now += 5
    sim.send.status("broker-1", "TASK_FAILED")
    assert not _reassigns(_health(sim, layout))
    assert "broker-1" in sim.plans()["rebalance"]["message"]


def test_drain_moves_everything_off_then_removes_the_broker() -> None:
    sim = deployed(FOUR, agents=4)
    layout = {("t", p): (p % 4, (p + 1) % 4) for p in range(8)}
    _health(sim, layout)
    sim.send.command("scale_brokers", count=3).replied(ok=False, contains="confirm")
    sim.send.command("scale_brokers", count=3, confirm=True).replied(ok=False, contains="--drain")
    sim.send.command("scale_brokers", count=3, drain=True).replied(ok=True, contains="draining broker-3")
    assert sim.state.spec.kafka.brokers == 4  # the count changes only once broker-3 is empty
    layout = _run_to_end(sim, layout, sim.expect,
                         lambda batch: all(3 not in new for _, _, new in batch.moves) or pytest.fail(batch))
    assert not any(3 in r for r in layout.values())
    sim.now += 5
    _health(sim, layout).killed("broker-3")
    assert sim.state.spec.kafka.brokers == 3


def test_a_topic_created_on_a_draining_broker_is_moved_too() -> None:
    sim = deployed(FOUR, agents=4)
    layout = {("t", 0): (3, 0)}
    _health(sim, layout)
    sim.send.command("scale_brokers", count=3, drain=True).replied(ok=True)
    (batch,) = _reassigns(sim.expect)
    layout = _apply(layout, batch)
    sim.now += 5
    _health(sim, layout).of(act.EndReassign)
    layout[("late", 0)] = (3, 1)
    sim.now += 5
    out = _health(sim, layout)
    assert not out.kills and sim.state.spec.kafka.brokers == 4
    sim.now += 5
    (batch,) = _reassigns(_health(sim, layout))
    assert batch.moves[0][:2] == ("late", 0) and 3 not in batch.moves[0][2]


def test_scale_out_ends_with_a_rebalance_onto_the_new_broker() -> None:
    sim = deployed(THREE, agents=4)
    layout = {("t", p): (p % 3, (p + 1) % 3) for p in range(6)}
    _health(sim, layout)
    sim.send.command("scale_brokers", count=4).replied(ok=True)
    sim.expect.persisted(f"properties/{SCALE_OUT_KEY}")
    sim.run_all_ready()
    assert sim.record("broker-3").serving
    sim.now += 5
    assert not _reassigns(_health(sim, layout, brokers={0, 1, 2}))  # not in Kafka's metadata yet
    sim.now += 5
    (batch,) = _reassigns(_health(sim, layout, brokers={0, 1, 2, 3}))
    assert any(3 in new for _, _, new in batch.moves)
    assert current(sim.state).reason == "scale-out" and SCALE_OUT_KEY not in sim.state.properties


def test_interrupt_holds_the_next_batch_and_continue_lets_it_go() -> None:
    sim, layout, batch = _rebalancing()
    sim.send.command("plan_interrupt", plan="rebalance").replied(ok=True)
    layout = _apply(layout, batch)
    sim.now += 5
    assert not _reassigns(_health(sim, layout))
    assert sim.plans()["rebalance"]["status"] == "WAITING"
    sim.send.command("plan_continue", plan="rebalance", step="x").replied(ok=False, contains="as a whole")
    sim.now += 1
    assert _reassigns(sim.send.command("plan_continue", plan="rebalance").replied(ok=True))


def test_a_failed_batch_stops_in_error_and_continue_retries_it() -> None:
    sim, layout, batch = _rebalancing()
    sim.send.event(ev.ReassignFailed("broker 7 does not exist", sim.now))
    view = sim.plans()["rebalance"]
    assert view["status"] == "ERROR" and "broker 7" in view["errors"][0]
    sim.now += 5
    assert not _reassigns(_health(sim, layout))
    sim.send.command("rebalance").replied(ok=True)  # a new plan replaces the failed one
    assert _reassigns(sim.expect)


def test_a_second_rebalance_is_refused_while_one_runs_and_an_impossible_one_says_why() -> None:
    sim = deployed(FOUR, agents=4)
    _health(sim, {("t", p): (p % 3, (p + 1) % 3) for p in range(6)})
    sim.send.command("rebalance").replied(ok=True)
    sim.send.command("rebalance").replied(ok=False, contains="is running")
    sim.send.command("scale_brokers", count=3, drain=True).replied(ok=False, contains="is running")
    other = deployed(FOUR, agents=4)
    _health(other, {("t", 0): (0, 1, 2, 3)})
    other.send.command("scale_brokers", count=3, drain=True).replied(ok=False, contains="has 4 replicas")


def test_a_restarted_scheduler_goes_on_with_the_stored_rebalance() -> None:
    sim, layout, batch = _rebalancing()
    sim.restart(dict(sim.store.tasks), dict(sim.store.properties))
    sim.send.subscribed()
    sim.run_all_ready(2)
    assert current(sim.state).submitted == 2
    layout = _apply(layout, batch)
    sim.now += 5
    (nxt,) = _reassigns(_health(sim, layout))
    assert nxt.moves != batch.moves


def test_a_batch_kafka_never_saw_is_handed_over_again() -> None:
    sim, layout, batch = _rebalancing()
    sim.now += 30
    assert not _reassigns(_health(sim, layout))
    sim.now += 40
    (again,) = _reassigns(_health(sim, layout))
    assert again.moves == batch.moves


FIVE = BASE.replace("brokers: 3,", "brokers: 5,").replace(
    "disk_mb: 1000,", "disk_mb: 1000, rebalance: {max_moves: 4},")


def test_decommission_empties_one_broker_and_keeps_every_other_node_id() -> None:
    sim = deployed(FIVE, agents=5)
    layout = {("t", p): (p % 5, (p + 1) % 5) for p in range(10)}
    _health(sim, layout)
    sim.send.command("decommission_pod", pod="broker-1").replied(ok=False, contains="KRaft controller")
    sim.send.command("decommission_pod", pod="wc-0").replied(ok=False, contains="not a broker")
    sim.send.command("decommission_pod", pod="broker-3").replied(ok=True, contains="decommissioning broker-3")
    layout = _run_to_end(sim, layout, sim.expect,
                         lambda batch: all(3 not in new for _, _, new in batch.moves) or pytest.fail(batch),
                         brokers={0, 1, 2, 3, 4})
    sim.now += 5
    _health(sim, layout, brokers={0, 1, 2, 3, 4}).killed("broker-3")
    k = sim.state.spec.kafka
    assert k.brokers == 4 and k.retired == (3,) and k.broker_ids == (0, 1, 2, 4)
    assert "broker-4" in sim.state.tasks and sim.record("broker-4").kill_reason is None
    # a file without the retired id would bring broker-3 back and drop broker-4: refused
    from config import load_text
    stale = load_text(FIVE.replace("brokers: 5,", "brokers: 4,"), "f.yaml", env={})
    sim.send.command("update_config", spec=stale).replied(ok=False, contains="kafka.retired")
    # a later scale-out takes the next free id
    sim.send.command("scale_brokers", count=5).replied(ok=True)
    assert sim.state.spec.kafka.broker_ids == (0, 1, 2, 4, 5)


def test_a_drain_after_a_decommission_removes_the_highest_ids_and_forgets_a_trailing_retired_one() -> None:
    sim = deployed(FIVE, agents=5)
    layout = {("t", p): (p % 5, (p + 1) % 5) for p in range(10)}
    _health(sim, layout)
    sim.send.command("decommission_pod", pod="broker-3").replied(ok=True)
    layout = _run_to_end(sim, layout, sim.expect)
    sim.now += 5
    _health(sim, layout)
    assert sim.state.spec.kafka.broker_ids == (0, 1, 2, 4)
    sim.send.command("scale_brokers", count=3, drain=True).replied(ok=True, contains="draining broker-4")
    layout = _run_to_end(sim, layout, sim.expect)
    sim.now += 5
    _health(sim, layout).killed("broker-4")
    assert sim.state.spec.kafka.broker_ids == (0, 1, 2) and sim.state.spec.kafka.retired == ()


def test_the_plan_counts_the_bytes_it_copies_from_the_sizes_kafka_reported() -> None:
    sim, layout, batch = _rebalancing()
    sim.send.event(ev.PartitionSizes({(t, p): 1_000_000 for t, p, _ in batch.moves} | {("other", 0): 5}, sim.now))
    view = sim.plans()["rebalance"]
    assert view["bytes_copied"] == 0 and view["bytes_to_copy"] == 2_000_000
    assert "(1.0 MB)" in view["phases"][0]["steps"][0]["message"]
    layout = _apply(layout, batch)
    sim.now += 5
    _health(sim, layout)
    assert sim.plans()["rebalance"]["bytes_copied"] == 2_000_000


def test_nothing_moves_once_the_service_is_being_uninstalled() -> None:
    sim, layout, batch = _rebalancing()
    sim.send.command("uninstall").replied(ok=True)
    sim.now += 5
    assert not _reassigns(_health(sim, _apply(layout, batch)))
    sim.send.command("rebalance").replied(ok=False, contains="uninstalled")
