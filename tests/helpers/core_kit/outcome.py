"""What one decision (or several in a row) did: the actions as a tuple, with queries that read
them (`launches`, `kills`, `reply`, ...) and expectations that fail with the whole step shown.

Every expectation returns the outcome, so they chain: ``send.offers().launched("broker-0")
.declined("O4", "O5")``. An expectation names what it wanted and lists what the step did, e.g.::

    expected launched: broker-0; launched: nothing
    the step (Offers at t=1001: O3, O4, O5) did:
      0 Persist tasks/broker-0 (no task, reserved r-1)
      1 Accept O3: RESERVE broker-0 [r-1], CREATE broker-0 [r-1]
      2 Decline O4, O5 (refuse 5s)
"""
from __future__ import annotations

from collections import Counter
from typing import Any, Iterable, Mapping

from mesoslib.resources import Resources
from scheduler.core import actions as act
from scheduler.core import events as ev
from scheduler.core.decide import plans
from tests.helpers.core_kit.describe import LABEL_POD, describe, describe_event, pod_of


# ------------------------------------------------------------------------------- the outcome

class Outcome(tuple):
    """The actions of a step (a tuple, so ``out == (...)`` and ``out[-1]`` work), the event that
    caused them and the state after."""

    event: Any
    state: Any
    now: float | None

    def __new__(cls, actions: Iterable[Any] = (), event: Any = None, state: Any = None, now: float | None = None):
        self = super().__new__(cls, tuple(actions))
        self.event, self.state, self.now = event, state, now
        return self

    def __add__(self, other: Any) -> "Outcome":  # several steps read as one
        state = getattr(other, "state", None) or self.state
        now = getattr(other, "now", None) or self.now
        return Outcome(tuple(self) + tuple(other), "several steps", state, now)

    def __repr__(self) -> str:
        return describe(self, self.event)

    def fail(self, what: str, saw: str = "") -> None:
        raise AssertionError(f"expected {what}" + (f"; {saw}" if saw else "") + "\n" + describe(self, self.event))

    # queries -----------------------------------------------------------------------------

    def of(self, *types: type) -> list[Any]:
        """The actions of these types (act.Kill, act.Persist, ...), in order."""
        return [a for a in self if isinstance(a, types)]

    @property
    def persists(self) -> list[act.Persist]:
        return self.of(act.Persist)

    @property
    def accepts(self) -> list[act.Accept]:
        return self.of(act.Accept)

    @property
    def kills(self) -> list[act.Kill]:
        return self.of(act.Kill)

    @property
    def killed_pods(self) -> list[str]:
        return [pod_of(k.task_id) for k in self.kills]

    @property
    def reconciles(self) -> list[act.Reconcile]:
        return self.of(act.Reconcile)

    @property
    def explicit_reconciles(self) -> list[act.Reconcile]:
        return [r for r in self.reconciles if r.tasks]

    @property
    def acks(self) -> list[act.Acknowledge]:
        return self.of(act.Acknowledge)

    @property
    def replies(self) -> list[act.Reply]:
        return self.of(act.Reply)

    @property
    def reply(self) -> act.Reply:
        """The one Reply of the step."""
        if len(self.replies) != 1:
            self.fail("exactly one Reply", f"{len(self.replies)} replies")
        return self.replies[0]

    def operations(self, *kinds: str) -> list[Mapping[str, Any]]:
        """ACCEPT operations (of these types: "RESERVE", "LAUNCH", ...), in order."""
        return [op for a in self.accepts for op in a.operations if not kinds or op.get("type") in kinds]

    @property
    def launches(self) -> list[dict[str, Any]]:
        """The TaskInfos launched."""
        return [t for op in self.operations("LAUNCH") for t in op["launch"]["task_infos"]]

    @property
    def launched_pods(self) -> list[str]:
        return [t["name"] for t in self.launches]

    @property
    def accepted_offers(self) -> list[str]:
        return [o for a in self.accepts for o in a.offer_ids]

    @property
    def declined_offers(self) -> list[str]:
        return [o for a in self.of(act.Decline) for o in a.offer_ids]

    @property
    def offers_answered(self) -> Counter:
        """How many times each offer id was accepted or declined."""
        return Counter(self.accepted_offers + self.declined_offers)

    def _labelled_pods(self, *kinds: str) -> list[str]:
        pods = []
        for op in self.operations(*kinds):
            docs = op.get("reserve", {}).get("resources") or op.get("unreserve", {}).get("resources") \
                or op.get("create", {}).get("volumes") or op.get("destroy", {}).get("volumes") or []
            for res in Resources.from_json(docs):
                pod = dict(res.reservations[-1].labels).get(LABEL_POD) if res.reservations else None
                if pod not in pods:
                    pods.append(pod)
        return pods

    @property
    def reserved_pods(self) -> list[str]:
        return self._labelled_pods("RESERVE")

    def plans(self) -> dict[str, Any]:
        return plans(self.state, self.now)

    # expectations ------------------------------------------------------------------------

    def launched(self, *pods: str) -> "Outcome":
        """Exactly these pods were launched (in any order; a pod named twice, twice)."""
        if sorted(self.launched_pods) != sorted(pods):
            self.fail(f"launched: {', '.join(sorted(pods))}",
                      f"launched: {', '.join(sorted(self.launched_pods)) or 'nothing'}")
        return self

    def nothing_launched(self) -> "Outcome":
        if self.launches:
            self.fail("nothing launched", f"launched: {', '.join(self.launched_pods)}")
        return self

    def killed(self, *who: str, count: int | None = None) -> "Outcome":
        """Exactly these were killed, each named by pod or task id; or `count` kills of anything."""
        if count is not None and len(self.kills) != count:
            self.fail(f"{count} kill(s)", f"{len(self.kills)}")
        if who:
            left = list(self.kills)
            for w in who:
                match = next((k for k in left if w in (k.task_id, pod_of(k.task_id))), None)
                if match is None:
                    self.fail(f"killed: {', '.join(who)}",
                              f"killed: {', '.join(k.task_id for k in self.kills) or 'nothing'}")
                left.remove(match)
            if left:
                self.fail(f"killed only: {', '.join(who)}", f"also killed: {', '.join(k.task_id for k in left)}")
        if not who and count is None and not self.kills:
            self.fail("a kill", "none")
        return self

    def nothing_killed(self) -> "Outcome":
        if self.kills:
            self.fail("nothing killed", f"killed: {', '.join(k.task_id for k in self.kills)}")
        return self

    def reserved(self, *pods: str) -> "Outcome":
        """Resources were reserved for exactly these pods (for some pod when none is named)."""
        got = self.reserved_pods
        if (pods and sorted(got) != sorted(pods)) or (not pods and not got):
            self.fail(f"reserved for: {', '.join(pods) or 'some pod'}",
                      f"reserved for: {', '.join(map(str, got)) or 'nobody'}")
        return self

    def nothing_reserved(self) -> "Outcome":
        if self.operations("RESERVE", "CREATE"):
            self.fail("nothing reserved", f"reserved for: {', '.join(map(str, self.reserved_pods))}")
        return self

    def released(self, *pods: str, volumes: bool = True) -> "Outcome":
        """The reservations of these pods (of some pod when none is named) were unreserved, and
        their volumes destroyed when `volumes`."""
        unreserved, destroyed = self._labelled_pods("UNRESERVE"), self._labelled_pods("DESTROY")
        for pod in pods or ([unreserved[0]] if unreserved else [None]):
            if pod not in unreserved or (volumes and pod not in destroyed):
                wanted = f"the reservation of {pod or 'some pod'} released" + (" (volume destroyed)" if volumes else "")
                self.fail(wanted,
                          f"unreserved: {unreserved or 'nothing'}, destroyed: {destroyed or 'nothing'}")
        return self

    def nothing_released(self) -> "Outcome":
        if self.operations("UNRESERVE", "DESTROY"):
            self.fail("nothing released")
        return self

    def _offer_ids(self) -> list[str]:
        if not isinstance(self.event, ev.Offers):
            self.fail("a step of an Offers event", describe_event(self.event))
        return [d["id"]["value"] for d in self.event.offers
                if isinstance(d, Mapping) and isinstance(d.get("id"), Mapping) and d["id"].get("value")]

    def declined(self, *offer_ids: str) -> "Outcome":
        """Exactly these offers were declined."""
        if sorted(self.declined_offers) != sorted(offer_ids):
            self.fail(f"declined: {', '.join(sorted(offer_ids))}",
                      f"declined: {', '.join(sorted(self.declined_offers)) or 'none'}")
        return self

    def declined_all(self) -> "Outcome":
        """Every offer of the step was declined, none accepted."""
        ids = self._offer_ids()
        if self.accepts or sorted(self.declined_offers) != sorted(ids):
            self.fail(f"every offer declined ({', '.join(ids)})",
                      f"accepted {self.accepted_offers or 'none'}, declined {self.declined_offers or 'none'}")
        return self

    def accepted(self, *offer_ids: str) -> "Outcome":
        """Exactly these offers were accepted."""
        if sorted(self.accepted_offers) != sorted(offer_ids):
            self.fail(f"accepted: {', '.join(sorted(offer_ids)) or 'none'}",
                      f"accepted: {', '.join(sorted(self.accepted_offers)) or 'none'}")
        return self

    def nothing_accepted(self) -> "Outcome":
        return self.accepted()

    def each_offer_answered_once(self) -> "Outcome":
        """Every offer of the step was accepted or declined exactly once, nothing else was."""
        ids = self._offer_ids()
        answered = self.offers_answered
        if answered != Counter(ids):
            self.fail(f"each of {', '.join(ids)} answered once", f"answered {dict(answered)}")
        return self

    def no_offer_answered(self) -> "Outcome":
        if self.accepts or self.of(act.Decline):
            self.fail("no offer accepted or declined")
        return self

    def suppressed(self) -> "Outcome":
        if not self.of(act.Suppress):
            self.fail("a Suppress")
        return self

    def revived(self) -> "Outcome":
        if not self.of(act.Revive):
            self.fail("a Revive")
        return self

    def torn_down(self) -> "Outcome":
        if not self.of(act.Teardown):
            self.fail("a Teardown")
        return self

    def nothing_persisted(self) -> "Outcome":
        if self.persists:
            self.fail("nothing persisted")
        return self

    def persisted(self, *keys: str) -> "Outcome":
        """These "kind/key" entries were put or deleted by a Persist of the step."""
        touched = {f"{k}/{key}" for p in self.persists for k, key, _ in p.puts} | \
            {f"{k}/{key}" for p in self.persists for k, key in p.deletes}
        missing = [k for k in keys if k not in touched]
        if missing or not self.persists:
            self.fail(f"persisted: {', '.join(keys) or 'something'}",
                      f"persisted: {', '.join(sorted(touched)) or 'nothing'}")
        return self

    def acknowledged(self, status: Mapping[str, Any] | None = None) -> "Outcome":
        """The status (some status when None) was acknowledged."""
        if (status is not None and act.Acknowledge(status) not in self) or (status is None and not self.acks):
            self.fail("the status acknowledged")
        return self

    def only_acknowledged(self) -> "Outcome":
        """Nothing but acknowledgements (none at all is fine)."""
        if len(self.acks) != len(self):
            self.fail("only acknowledgements")
        return self

    def replied(self, ok: bool | None = None, contains: str | Iterable[str] = (), **fields: Any) -> "Outcome":
        """The one Reply is `ok` (or not), its message contains every text of `contains`, and its
        result has these field values."""
        reply = self.reply
        result = reply.result if isinstance(reply.result, Mapping) else {}
        texts = [contains] if isinstance(contains, str) else list(contains)
        wrong = []
        if ok is not None and reply.ok != ok:
            wrong.append(f"ok={ok}")
        wrong += [f"message containing {t!r}" for t in texts if t not in str(result.get("message", ""))]
        wrong += [f"{k}={v!r} (is {result.get(k, '<missing>')!r})" for k, v in fields.items() if result.get(k) != v]
        if wrong:
            self.fail("a reply with " + ", ".join(wrong))
        return self

    def reconciled(self, *task_ids: str) -> "Outcome":
        """An explicit reconciliation of exactly these task ids (any when none is named)."""
        asked = [{t for t, _ in r.tasks} for r in self.explicit_reconciles]
        if (task_ids and set(task_ids) not in asked) or (not task_ids and not asked):
            self.fail(f"explicit reconciliation of {', '.join(task_ids) or 'some task'}",
                      f"asked: {asked or 'nothing'}")
        return self

    def reconciled_implicitly(self) -> "Outcome":
        if act.Reconcile(()) not in self:
            self.fail("an implicit reconciliation")
        return self

    def plan_status(self, plan: str, status: str) -> "Outcome":
        """The plan's status in the state after the step."""
        got = self.plans()[plan]["status"]
        if got != status:
            self.fail(f"plan {plan} {status}", f"it is {got}")
        return self

    def step_status(self, plan: str, step: str, status: str) -> "Outcome":
        got = {s["name"]: s["status"] for ph in self.plans()[plan]["phases"] for s in ph["steps"]}
        if got.get(step) != status:
            self.fail(f"step {step} of plan {plan} {status}", f"steps: {got}")
        return self
