"""The scenario kit (tests/helpers/core_kit) can fail: every expectation, given a step that does
not do what it expects, raises with what was wanted and every action of the step; the
write-ahead check catches an ACCEPT (or an acknowledgement) ahead of the Persist it depends on."""
from __future__ import annotations

from scheduler.core.refusals import Refusal

import attrs
import pytest

from scheduler.core import actions as act
from scheduler.core import events as ev
from scheduler.core.decide import decide
from tests.helpers import core_kit
from tests.helpers.core_kit import (
    Outcome,
    Scenario,
    StoreModel,
    WriteAheadViolation,
    deployed,
    spec,
    subscribed,
)
from tests.helpers.core_kit import runner, write_ahead


# ------------------------------------------------------------------------- steps to expect of

def first_round() -> Outcome:
    """Reserves and launches the quorum: broker-0..2 on A0..A2."""
    return subscribed().send.offers()


def idle_round() -> Outcome:
    """Everything deployed: every offer is declined."""
    return deployed().send.offers()


def restart() -> Outcome:
    """A restart of broker-0: Persist, Kill, Reply."""
    return deployed().send.command("restart_pod", pod="broker-0")


def refused() -> Outcome:
    return deployed().send.command("restart_pod", pod="nope")


def tick() -> Outcome:
    return deployed().send.tick(1)


def resubscribed() -> Outcome:
    return deployed().send.subscribed()


def release_round() -> Outcome:
    """broker-1 replaced: its task killed, then the round that destroys and unreserves its old
    reservation."""
    sim = deployed(agents=4)
    kill = sim.send.command("replace_pod", pod="broker-1", confirm=True, force=True).kills[0]
    sim.send.status(kill.task_id, "TASK_KILLED")
    sim.now += 1
    return sim.send.offers()


def status_step() -> Outcome:
    sim = deployed()
    return sim.send.status("wc-0", "TASK_FAILED")


def hand_made_offers() -> Outcome:
    docs = tuple({"id": {"value": oid}} for oid in ("H1", "H2"))
    return Outcome((act.Decline(("H1",), 5.0), act.Decline(("H1",), 5.0)), ev.Offers(docs, 1.0))


CASES = [
    # (step, expectation, texts the failure shows)
    (idle_round, lambda o: o.launched("broker-0"), ["expected launched: broker-0", "launched: nothing", "Decline O"]),
    (first_round, lambda o: o.nothing_launched(), ["expected nothing launched", "LAUNCH broker-0__"]),
    (first_round, lambda o: o.launched("broker-0"), ["launched: broker-0, broker-1, broker-2", "Accept O0"]),
    (restart, lambda o: o.killed("broker-1"), ["expected killed: broker-1", "killed: broker-0__",
                                               "Kill broker-0__"]),
    (restart, lambda o: o.killed(count=2), ["expected 2 kill(s)", "Kill broker-0__"]),
    (tick, lambda o: o.killed(), ["expected a kill", "Tick at t="]),
    (restart, lambda o: o.nothing_killed(), ["expected nothing killed", "(restart of broker-0 requested)"]),
    (first_round, lambda o: o.reserved("wc-0"), ["reserved for: broker-0, broker-1, broker-2", "RESERVE broker-0 ["]),
    (idle_round, lambda o: o.reserved(), ["expected reserved for: some pod", "reserved for: nobody"]),
    (first_round, lambda o: o.nothing_reserved(), ["expected nothing reserved", "CREATE broker-1 ["]),
    (first_round, lambda o: o.released("broker-0"), ["the reservation of broker-0 released", "unreserved: nothing"]),
    (release_round, lambda o: o.nothing_released(), ["expected nothing released", "DESTROY broker-1 [",
                                                      "UNRESERVE broker-1 ["]),
    (first_round, lambda o: o.declined_all(), ["expected every offer declined (O0, O1, O2)", "accepted ['O0', 'O1', 'O2']"]),
    (idle_round, lambda o: o.declined("O0"), ["expected declined: O0", "declined: O30, O31, O32"]),
    (idle_round, lambda o: o.accepted("O30"), ["expected accepted: O30", "accepted: none"]),
    (tick, lambda o: o.declined_all(), ["expected a step of an Offers event", "Tick"]),
    (hand_made_offers, lambda o: o.each_offer_answered_once(), ["each of H1, H2 answered once", "{'H1': 2}"]),
    (first_round, lambda o: o.no_offer_answered(), ["expected no offer accepted or declined", "Accept O0"]),
    (restart, lambda o: o.suppressed(), ["expected a Suppress", "Reply c ok=True"]),
    (tick, lambda o: o.revived(), ["expected a Revive"]),
    (tick, lambda o: o.torn_down(), ["expected a Teardown"]),
    (restart, lambda o: o.nothing_persisted(), ["expected nothing persisted", "Persist tasks/broker-0 (task broker-0__"]),
    (restart, lambda o: o.persisted("tasks/wc-0"), ["expected persisted: tasks/wc-0", "persisted: tasks/broker-0"]),
    (restart, lambda o: o.acknowledged(), ["expected the status acknowledged"]),
    (status_step, lambda o: o.only_acknowledged(), ["expected only acknowledgements", "Acknowledge wc-0__",
                                                    "Status at t="]),
    (restart, lambda o: o.replied(ok=False), ["a reply with ok=False", "Reply c ok=True: restarting broker-0"]),
    (refused, lambda o: o.replied(contains="restarting", refusal=Refusal.CONFLICT),
     ["message containing 'restarting'", "refusal=<Refusal.CONFLICT: 'conflict'> (is <Refusal.NOT_FOUND: 'not_found'>)", "pod 'nope' does not exist"]),
    (tick, lambda o: o.replied(), ["expected exactly one Reply", "0 replies"]),
    (resubscribed, lambda o: o.reconciled("broker-0__x"), ["explicit reconciliation of broker-0__x",
                                                           "Reconcile broker-0__"]),
    (restart, lambda o: o.reconciled_implicitly(), ["expected an implicit reconciliation"]),
    (first_round, lambda o: o.plan_status("deploy", "COMPLETE"), ["expected plan deploy COMPLETE", "it is IN_PROGRESS"]),
    (first_round, lambda o: o.step_status("deploy", "wc-0", "COMPLETE"), ["step wc-0 of plan deploy COMPLETE",
                                                                          "'wc-0': 'PENDING'"]),
]


@pytest.mark.parametrize("step, expectation, shown", CASES,
                         ids=[f"{c[0].__name__}-{i}" for i, c in enumerate(CASES)])
def test_each_expectation_fails_on_a_wrong_step_showing_what_happened(step, expectation, shown):
    out = step()
    with pytest.raises(AssertionError) as err:
        expectation(out)
    message = str(err.value)
    assert "the step (" in message and " did:" in message, message
    for text in shown:
        assert text in message, f"{text!r} not in:\n{message}"


def test_expectations_pass_and_chain_on_the_right_step():
    first_round().reserved("broker-0", "broker-1", "broker-2").launched("broker-2", "broker-1", "broker-0") \
        .accepted("O0", "O1", "O2").each_offer_answered_once().plan_status("deploy", "IN_PROGRESS")
    restart().killed("broker-0").killed(count=1).persisted("tasks/broker-0").replied(
        ok=True, contains="restarting broker-0").nothing_launched()
    idle_round().declined_all().nothing_launched().nothing_reserved().nothing_released()
    release_round().released("broker-1")
    tick().nothing_killed().nothing_persisted()
    resubscribed().reconciled_implicitly().revived()


def test_send_offer_offers_one_agent_or_one_document():
    sim = subscribed()
    sim.send.offer("A1").reserved("broker-0").nothing_launched().accepted("O0")  # the quorum is not complete
    doc = sim.cluster.offer_docs("D", only="A0")[0]
    sim.send.offer(doc).reserved("broker-1").accepted("D1")
    # the quorum is complete: broker-2 launches at once, the others when their agents offer again
    sim.send.offer("A2").reserved("broker-2").launched("broker-2")
    sim.send.offers().nothing_reserved().launched("broker-0", "broker-1")
    sim.send.status("broker-1", "TASK_RUNNING", ready=True).acknowledged()
    assert sim.record("broker-1").ready


def test_the_description_of_a_step_is_one_line_per_action():
    text = repr(restart())
    assert text.splitlines() == [
        text.splitlines()[0], *[line for line in text.splitlines()[1:] if line.startswith("  ")]]
    assert text.startswith("the step (Command at t=") and "restart_pod {'pod': 'broker-0'}" in text
    assert "  1 Kill broker-0__" in text and "  2 Reply c ok=True" in text


# ------------------------------------------------------------------------- the write-ahead rule

def _first_round_with_store() -> tuple[Outcome, StoreModel, dict]:
    sim = subscribed()
    before = dict(sim.state.properties)
    store = sim.store.copy()
    return sim.send.offers(), store, before


def test_an_accept_before_the_persist_of_its_records_is_caught():
    out, store, props = _first_round_with_store()
    persist, accepts = out.persists[0], out.accepts
    assert write_ahead.violations(out, store.copy(), props) == []  # as decided: in order
    swapped = (*accepts, persist)
    with pytest.raises(WriteAheadViolation) as err:
        write_ahead.check(swapped, store.copy(), props, core_kit.describe)
    message = str(err.value)
    assert "action 0 (Accept O0): RESERVE of reservation" in message and "the store's broker-0 holds None" in message
    assert "LAUNCH of broker-0__" in message and "the store has no record for broker-0" in message
    assert "1 Accept O1:" in message  # the decision's actions, readably


def test_the_runner_checks_every_step(monkeypatch):
    """A core that puts its ACCEPTs first: the runner stops the step before the cluster sees it."""
    sim = subscribed()

    def accepts_first(state, event):
        new, actions = decide(state, event)
        return new, tuple(sorted(actions, key=lambda a: not isinstance(a, act.Accept)))  # stable

    monkeypatch.setattr(runner, "decide", accepts_first)
    with pytest.raises(WriteAheadViolation) as err:
        sim.send.offers()
    assert "LAUNCH of broker-0__" in str(err.value)
    assert not sim.tasks  # nothing reached the cluster


def test_a_launch_with_an_older_task_id_in_the_store_is_caught():
    out, store, props = _first_round_with_store()
    rec = dict(out.persists[0].puts[0][2], task_id="broker-0__older")
    stale = attrs.evolve(out.persists[0], puts=(("tasks", "broker-0", rec), *out.persists[0].puts[1:]))
    found = write_ahead.violations((stale, *out.accepts), store, props)
    assert any("LAUNCH of broker-0__" in f and "task_id 'broker-0__older'" in f for f in found), found


def test_a_launch_before_the_cluster_id_is_stored_is_caught():
    """Offers before the framework subscribed: the KRaft cluster id a launch carries is in the
    state but not stored yet (it is persisted on subscription)."""
    sim = Scenario(spec())
    with pytest.raises(WriteAheadViolation) as err:
        sim.send.offers()
    assert "properties not stored yet: ['cluster_id']" in str(err.value)


def test_a_release_of_a_reservation_the_store_still_gives_a_running_pod_is_caught():
    sim = deployed(agents=4)
    old = sim.record("broker-1")
    kill = sim.send.command("replace_pod", pod="broker-1", confirm=True, force=True).kills[0]
    sim.send.status(kill.task_id, "TASK_KILLED")
    sim.now += 1
    store = sim.store.copy()
    out = sim.send.offers().released("broker-1")
    assert write_ahead.violations(out, store.copy(), sim.state.properties) == []
    store.tasks["broker-1"] = old.to_json()  # as if the replacement had not been recorded
    found = write_ahead.violations(out.accepts, store, sim.state.properties)
    rid = old.reservation.persistence_id
    assert f"DESTROY of reservation {rid}: the store's broker-1 still holds it" in " ".join(found), found
    assert f"UNRESERVE of reservation {rid}" in " ".join(found), found


def test_an_acknowledgement_before_the_persist_of_its_status_is_caught():
    sim = deployed()
    store = sim.store.copy()
    out = sim.send.status("wc-0", "TASK_FAILED")
    persist, ack = out.persists[0], out.acks[0]
    assert write_ahead.violations((persist, ack), store.copy(), {}) == []
    found = write_ahead.violations((ack, persist), store.copy(), {})
    assert found and "Acknowledge wc-0__" in found[0] and "TASK_FAILED" in found[0] and "action 1" in found[0]


def test_a_change_to_a_record_that_no_persist_wrote_is_caught(monkeypatch):
    sim = deployed()
    rec, before = sim.record("wc-0"), sim.state
    assert write_ahead.unrecorded(before, sim.store) == []

    def forgetful(state, event):  # decides, then changes a record without persisting it
        new, actions = decide(state, event)
        return attrs.evolve(new, tasks={**new.tasks, "wc-0": attrs.evolve(rec, attempts=3)}), actions

    monkeypatch.setattr(runner, "decide", forgetful)
    with pytest.raises(WriteAheadViolation) as err:
        sim.send.tick(1)
    assert "tasks/wc-0: the state's attempts not stored" in str(err.value)
    state = attrs.evolve(before, properties={**before.properties, "forced.wc-1": "true"})
    assert write_ahead.unrecorded(state, sim.store) == ["properties/forced.wc-1: state 'true', store None"]


def test_the_store_model_follows_the_persists():
    """The store model follows the Persists: after a deploy it holds what the state holds."""
    sim = deployed()
    assert {pod: rec.to_json() for pod, rec in sim.state.tasks.items()} == sim.store.tasks
    assert sim.store.properties["cluster_id"] == core_kit.CLUSTER_ID
