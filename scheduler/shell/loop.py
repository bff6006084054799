"""The one thread that decides: events in, `decide`, actions performed in order.

pymesos callbacks, API commands, the Kafka health watcher and a 1 s tick all put events on one
queue. After each decision the new State is published (`snapshot`) for readers; it is immutable,
so the API never locks. A Persist that fails ends the loop at once (a deposed leader must not act
on decisions it could not record) and nothing after it in that decision is performed.
"""
from __future__ import annotations

import itertools
import os
import logging
import queue
import threading
import time
from typing import Any, Callable

from config import spec_to_json
from kmfwire.errors import KmfError
from scheduler.core import actions as act
from scheduler.core import events as ev
from scheduler.core import zk_migration
from scheduler.core.decide import decide
from scheduler.core.refusals import Refusal
from scheduler.core.state import State
from scheduler.shell import mesos_events as mev
from scheduler.shell.errors import StoreError
from scheduler.shell.store import Delete, Put, StateStore

log = logging.getLogger(__name__)

TICK_S = 1.0


def uninstall_tombstone(state: State, now: float) -> dict[str, Any]:
    """What a restarted scheduler of an uninstalled service reports (and the operator removes)."""
    return {"at": now, "framework_id": state.framework_id, "service": state.spec.name,
            "marathon_app_id": os.environ.get("MARATHON_APP_ID")}


class LoopEnded(KmfError):
    pass


class _Pending:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.reply: act.Reply | None = None


class Loop:
    def __init__(self, state: State, store: StateStore, adapter: Any,
                 on_decision: Callable[[float, Any, tuple], None] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.snapshot = state
        self.store = store
        self.adapter = adapter
        self.on_decision = on_decision
        self.clock = clock
        self.events: "queue.Queue[Any]" = queue.Queue()
        self.pending: dict[str, _Pending] = {}
        self.ids = itertools.count(1)
        self.ended = threading.Event()
        self.end_reason: str | None = None
        self.exit_code = 0
        self.torn_down = False
        self.fault = None  # test hook: a callable(action) run before each action
        self.master: str | None = None  # host:port of the master of the last SUBSCRIBED (the UI's)
        self.data_mover: Any = None  # performs Reassign/EndReassign (shell.data_moves.DataMover)
        self.deciding = threading.Event()  # cleared while paused: events wait in the queue
        self.deciding.set()

    # inputs ----------------------------------------------------------------------------------

    def put(self, event: Any) -> None:
        self.events.put(event)

    def from_mesos(self, e: mev.MesosEvent) -> None:
        """The adapter's emit: translate driver events into core events."""
        now = self.clock()
        if isinstance(e, mev.Subscribed):
            self.master = e.master
            self.put(ev.Subscribed(e.framework_id, now))
        elif isinstance(e, mev.Disconnected):
            self.put(ev.Disconnected(now))
        elif isinstance(e, mev.OffersReceived):
            self.put(ev.Offers(tuple(e.offers), now))
        elif isinstance(e, mev.OfferRescinded):
            self.put(ev.OfferRescinded(e.offer_id, now))
        elif isinstance(e, mev.StatusUpdate):
            self.put(ev.Status(e.status, now))
        elif isinstance(e, mev.AgentLost):
            self.put(ev.AgentLost(e.agent_id, now))
        elif isinstance(e, mev.InverseOffersReceived):
            self.put(ev.InverseOffers(tuple(e.offers), now))
        elif isinstance(e, mev.InverseOfferRescinded):
            self.put(ev.InverseOfferRescinded(e.inverse_offer_id, now))
        elif isinstance(e, mev.DriverStopped):
            self.stop(f"Mesos driver stopped: {e.reason}", code=1)
        # ExecutorLost: the agent's TASK_FAILED follows; framework messages: none are sent

    def submit(self, kind: str, args: dict, timeout: float = 30.0) -> act.Reply:
        """Run an operator command through the loop and wait for its answer."""
        if self.ended.is_set():
            return act.Reply("", False, {"message": "this scheduler is stopping", "refusal": Refusal.UNAVAILABLE})
        cid = f"cmd-{next(self.ids)}"
        pending = self.pending[cid] = _Pending()
        self.put(ev.Command(cid, kind, args, self.clock()))
        if not pending.done.wait(timeout):
            self.pending.pop(cid, None)
            return act.Reply(cid, False, {"message": f"no decision within {timeout}s", "refusal": Refusal.UNAVAILABLE})
        return pending.reply  # type: ignore[return-value]

    def pause(self) -> bool:
        """Decide nothing until `resume` (the leader's ZooKeeper connection is suspended). A
        decision under way finishes; its Persist fails if the connection is gone, which ends the loop."""
        self.deciding.clear()
        log.warning("deciding paused")
        return True

    def resume(self) -> None:
        log.warning("deciding resumed")
        self.deciding.set()

    def stop(self, reason: str, code: int = 0) -> None:
        if not self.ended.is_set():
            self.end_reason = reason
            self.exit_code = code
            self.ended.set()
            self.events.put(None)

    # the loop --------------------------------------------------------------------------------

    def run(self) -> None:
        next_tick = self.clock() + TICK_S
        try:
            while not self.ended.is_set():
                if not self.deciding.is_set():
                    self.deciding.wait(0.2)
                    continue
                timeout = max(0.0, next_tick - self.clock())
                try:
                    event = self.events.get(timeout=timeout)
                except queue.Empty:
                    event = None
                if self.ended.is_set():
                    break
                if event is None:
                    now = self.clock()
                    if now < next_tick:
                        continue
                    event = ev.Tick(now)
                    next_tick = now + TICK_S
                self.step(event)
        except LoopEnded:
            pass
        except Exception as exc:  # noqa: BLE001 - a bug in a decision: stop deciding, say why
            log.exception("decision loop failed")
            self.stop(f"decision loop failed: {exc}", code=1)
        finally:
            for pending in list(self.pending.values()):
                pending.reply = act.Reply("", False, {"message": "scheduler stopped", "refusal": Refusal.UNAVAILABLE})
                pending.done.set()

    def step(self, event: Any) -> None:
        started = time.perf_counter()
        before = self.snapshot
        state, actions = decide(before, event)
        self.snapshot = state
        phase = zk_migration.phase(state.properties)
        if phase != zk_migration.phase(before.properties):
            log.info("ZooKeeper → KRaft migration: phase %s", phase)
        if isinstance(event, ev.LagSampled):  # what the autoscaler made of the sample, when it changed
            for app, note in state.autoscale_notes.items():
                if before.autoscale_notes.get(app) != note:
                    log.info("autoscale %s: %s", app, note)
        for action in actions:
            if self.fault is not None:
                self.fault(action)
            self.perform(action)
        if self.on_decision is not None:
            self.on_decision(time.perf_counter() - started, event, actions)

    def perform(self, a: Any) -> None:
        if isinstance(a, act.Persist):
            changes = [Put(k, key, v) for k, key, v in a.puts] + [Delete(k, key) for k, key in a.deletes]
            try:
                self.store.commit(changes)
            except StoreError as exc:
                self.stop(f"could not persist state ({exc}); stopping so that nothing unrecorded "
                          "is sent", code=1)
                raise LoopEnded from exc
        elif isinstance(a, act.Accept):
            self.adapter.accept(a.offer_ids, a.operations, a.refuse_seconds)
        elif isinstance(a, act.Decline):
            self.adapter.decline(a.offer_ids, a.refuse_seconds)
        elif isinstance(a, act.Kill):
            log.info("killing task %s%s", a.task_id, f" ({a.reason})" if a.reason else "")
            self.adapter.kill(a.task_id, a.agent_id)
        elif isinstance(a, act.Reconcile):
            self.adapter.reconcile(list(a.tasks))
        elif isinstance(a, act.Suppress):
            self.adapter.suppress()
        elif isinstance(a, act.Revive):
            self.adapter.revive()
        elif isinstance(a, act.Acknowledge):
            self.adapter.acknowledge(a.status)
        elif isinstance(a, act.Reply):
            pending = self.pending.pop(a.command_id, None)
            if pending is not None:
                pending.reply = a
                pending.done.set()
        elif isinstance(a, act.SetTargetConfig):
            if a.why:
                log.info("new target config %s: %s", a.config_id, a.why)
            try:
                self.store.apply_config(a.config_id, spec_to_json(a.spec))
            except StoreError as exc:
                self.stop(f"could not store the new target config ({exc})", code=1)
                raise LoopEnded from exc
        elif isinstance(a, (act.Reassign, act.EndReassign, act.FinalizeFeatures, act.UnregisterBrokers)):
            if self.data_mover is None:
                if isinstance(a, act.Reassign):
                    self.put(ev.ReassignFailed("this scheduler cannot move partitions (no data mover)", self.clock()))
                elif isinstance(a, act.FinalizeFeatures):
                    self.put(ev.KafkaFeatures(None, "this scheduler cannot run Kafka's tools (no data mover)",
                                              self.clock()))
                elif isinstance(a, act.UnregisterBrokers):
                    self.put(ev.BrokersUnregistered(a.ids, "this scheduler cannot run Kafka's tools (no data mover)",
                                                    self.clock()))
            else:
                self.data_mover.submit(a)
        elif isinstance(a, (act.AcceptInverseOffers, act.DeclineInverseOffers)):
            accept = isinstance(a, act.AcceptInverseOffers)
            log.info("%s inverse offers %s (Mesos maintenance)", "accepting" if accept else "declining",
                     list(a.inverse_offer_ids))
            self.adapter.answer_inverse_offers(a.inverse_offer_ids, accept, a.refuse_seconds)
        elif isinstance(a, act.CaStep):
            try:  # the adapter is shell.tls.TlsLaunches (the core asks for CA steps only with TLS on)
                self.adapter.ca_step(a.step, a.not_after)
            except KmfError as exc:
                # what follows records the step as done: stop before it, a restart does it again
                self.stop(f"CA rotation step {a.step} failed ({exc})", code=1)
                raise LoopEnded from exc
        elif isinstance(a, act.Teardown):
            log.warning("uninstall complete: tearing down the framework and deleting its state")
            try:
                self.store.mark_uninstalled(uninstall_tombstone(self.snapshot, self.clock()))
            except StoreError as exc:
                self.stop(f"could not record the uninstall ({exc}); not tearing down", code=1)
                raise LoopEnded from exc
            self.adapter.teardown()
            self.store.delete_all()
            self.torn_down = True
            self.stop("uninstalled", code=0)
            raise LoopEnded
        else:  # pragma: no cover - decide only returns the actions above
            raise TypeError(f"unknown action {a!r}")
