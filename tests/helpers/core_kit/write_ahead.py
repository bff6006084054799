"""The write-ahead rule of a decision, checked on an action tuple.

How the shell runs a decision (scheduler/shell/loop.py ``Loop.step``/``perform``): the actions of
one ``decide`` call are performed one by one, in tuple order; a ``Persist`` is one ZooKeeper
transaction, and when it fails the loop stops at once, so nothing after it in the tuple is
performed. After a crash or a failed Persist, a restarted scheduler knows only what the store
holds. Hence, with STORE(i) = the store as every earlier decision left it, with the Persists at
positions < i of this decision's tuple applied in order:

* Persist before Accept. For every ``Accept`` at position i, each of its operations depends only
  on records already in STORE(i):

  - ``LAUNCH`` of task T of pod P: ``tasks/P`` in STORE(i) has ``task_id`` T, and when T runs on
    a persistent volume with id R, that record's ``reservation.persistence_id`` is R (so a
    restarted scheduler reconciles T instead of launching a second task for P). And every
    property of the state the decision started from, but the ``unsaved.*`` markers themselves, is
    in STORE(i) with the same value: a task is configured from them (the KRaft cluster id above
    all, which ``initial_state`` marks unsaved until the first subscription persists it).
  - ``RESERVE`` of resources labelled ``kmf.pod`` P and ``kmf.reservation`` R, and ``CREATE`` of a
    volume with persistence id R: ``tasks/P`` in STORE(i) holds reservation R (so a restarted
    scheduler does not take R for an orphan and release it).
  - ``DESTROY``/``UNRESERVE`` of reservation R: no record in STORE(i) that still wants to run
    (``goal`` RUNNING) holds R (so a restarted scheduler never waits for, or launches on, a volume
    that was destroyed).

* Persist before Acknowledge (scheduler/core/actions.py): an ``Acknowledge`` of a status of task T
  comes after every Persist of the same decision that records that status, that is a put of a
  record with ``task_id`` T and that ``state``, or a delete of T's pod (Mesos does not send an
  acknowledged update again, so an acknowledged but unrecorded status would be lost).

* Nothing unrecorded: after every decision, the task records of the new state are exactly those
  of the store (as JSON), and its properties are the store's, but for a property marked
  ``unsaved.<key>`` (and the marker), which the first subscription persists. What a restarted
  scheduler loads is then what this one believed.

`StoreModel` is the store as these rules see it: records and properties by key, changed only by
Persist actions. `check` and `check_recorded` raise `WriteAheadViolation` naming the action or
record and what the store lacked.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from mesoslib.resources import Resources
from scheduler.core import actions as act

LABEL_POD, LABEL_RESERVATION = "kmf.pod", "kmf.reservation"


class WriteAheadViolation(AssertionError):
    """An action of a decision depends on something no Persist before it recorded."""


class StoreModel:
    """What ZooKeeper holds for the scheduler: task records (JSON) by pod, properties by key."""

    def __init__(self, tasks: Mapping[str, Any] | None = None, properties: Mapping[str, str] | None = None):
        self.data: dict[str, dict[str, Any]] = {
            "tasks": {pod: (rec.to_json() if hasattr(rec, "to_json") else dict(rec))
                      for pod, rec in (tasks or {}).items()},
            "properties": dict(properties or {}),
        }

    @property
    def tasks(self) -> dict[str, Any]:
        return self.data["tasks"]

    @property
    def properties(self) -> dict[str, Any]:
        return self.data["properties"]

    def apply(self, persist: act.Persist) -> None:
        for kind, key, value in persist.puts:
            self.data.setdefault(kind, {})[key] = value
        for kind, key in persist.deletes:
            self.data.setdefault(kind, {}).pop(key, None)

    def copy(self) -> "StoreModel":
        new = StoreModel()
        new.data = {kind: dict(values) for kind, values in self.data.items()}
        return new


def _labels(resource: Any) -> dict[str, str]:
    return dict(resource.reservations[-1].labels) if resource.reservations else {}


def _reservation_of(record: Mapping[str, Any] | None) -> str | None:
    res = (record or {}).get("reservation") or {}
    return res.get("persistence_id")


def _problems_of_accept(accept: act.Accept, store: StoreModel, before_properties: Mapping[str, str],
                        deleted: frozenset[str] = frozenset()) -> list[str]:
    problems: list[str] = []
    tasks = store.tasks
    for op in accept.operations:
        kind = op.get("type")
        if kind == "LAUNCH":
            for info in op["launch"]["task_infos"]:
                tid = info["task_id"]["value"]
                pod = tid.split("__", 1)[0]
                rec = tasks.get(pod)
                if rec is None or rec.get("task_id") != tid:
                    stored = "no record" if rec is None else f"task_id {rec.get('task_id')!r}"
                    problems.append(f"LAUNCH of {tid}: the store has {stored} for {pod}")
                    continue
                for vol in Resources.from_json(info.get("resources") or []).volumes():
                    rid = vol.disk.persistence_id
                    if _reservation_of(rec) != rid:
                        problems.append(f"LAUNCH of {tid} on volume {rid}: the stored {pod} holds "
                                        f"reservation {_reservation_of(rec)!r}")
                # a property this decision deleted (e.g. a maintenance hold that ended) is not missing
                missing = {k: v for k, v in before_properties.items()
                           if not k.startswith("unsaved.") and store.properties.get(k) != v and k not in deleted}
                if missing:
                    problems.append(f"LAUNCH of {tid}: properties not stored yet: {sorted(missing)}")
        elif kind in ("RESERVE", "CREATE"):
            docs = op["reserve"]["resources"] if kind == "RESERVE" else op["create"]["volumes"]
            for res in Resources.from_json(docs):
                labels = _labels(res)
                rid = res.disk.persistence_id if kind == "CREATE" and res.disk else labels.get(LABEL_RESERVATION)
                pod = labels.get(LABEL_POD)
                held = _reservation_of(tasks.get(pod)) if pod else None
                if rid is None or held != rid:
                    problems.append(f"{kind} of reservation {rid} for {pod}: the store's {pod} holds {held!r}")
        elif kind in ("DESTROY", "UNRESERVE"):
            docs = op["destroy"]["volumes"] if kind == "DESTROY" else op["unreserve"]["resources"]
            for res in Resources.from_json(docs):
                rid = _labels(res).get(LABEL_RESERVATION) or (res.disk.persistence_id if res.disk else None)
                owners = sorted(pod for pod, rec in tasks.items()
                                if rec.get("goal", "RUNNING") == "RUNNING" and _reservation_of(rec) == rid)
                if owners:
                    problems.append(f"{kind} of reservation {rid}: the store's {', '.join(owners)} still holds it")
    return sorted(set(problems), key=problems.index)


def _records_status(persist: act.Persist, task_id: str, state: Any) -> bool:
    pod = task_id.split("__", 1)[0]
    return (any(kind == "tasks" and isinstance(v, Mapping) and v.get("task_id") == task_id
                and v.get("state") == state for kind, _, v in persist.puts)
            or ("tasks", pod) in persist.deletes)


def violations(actions: Sequence[Any], store: StoreModel, before_properties: Mapping[str, str]) -> list[str]:
    """Every breach of the rules above in one decision's `actions`; `store` (the store before the
    decision) is brought up to date with its Persists."""
    found: list[str] = []
    deleted: set[str] = set()
    for i, a in enumerate(actions):
        if isinstance(a, act.Persist):
            store.apply(a)
            deleted |= {key for kind, key in a.deletes if kind == "properties"}
        elif isinstance(a, act.Accept):
            found += [f"action {i} (Accept {', '.join(a.offer_ids)}): {p}"
                      for p in _problems_of_accept(a, store, before_properties, frozenset(deleted))]
        elif isinstance(a, act.Acknowledge):
            tid = ((a.status.get("task_id") or {}).get("value")) if isinstance(a.status, Mapping) else None
            if isinstance(tid, str) and tid:
                late = [j for j in range(i + 1, len(actions)) if isinstance(actions[j], act.Persist)
                        and _records_status(actions[j], tid, a.status.get("state"))]
                if late:
                    found.append(f"action {i} (Acknowledge {tid} {a.status.get('state')}): the Persist "
                                 f"recording that status comes after it (action {late[0]})")
    return found


def unrecorded(state: Any, store: StoreModel) -> list[str]:
    """How the state differs from the store (see "Nothing unrecorded" above)."""
    found = []
    mine = {pod: rec.to_json() for pod, rec in state.tasks.items()}
    for pod in sorted(set(mine) | set(store.tasks)):
        if mine.get(pod) != store.tasks.get(pod):
            if pod not in store.tasks or pod not in mine:
                found.append(f"tasks/{pod}: {'only in the state' if pod in mine else 'only in the store'}")
            else:
                fields = sorted(k for k in mine[pod] if mine[pod][k] != store.tasks[pod].get(k))
                found.append(f"tasks/{pod}: the state's {', '.join(fields)} not stored")
    props = {k: v for k, v in state.properties.items()
             if not k.startswith("unsaved.") and f"unsaved.{k}" not in state.properties}
    for key in sorted(set(props) | set(store.properties)):
        if props.get(key) != store.properties.get(key):
            found.append(f"properties/{key}: state {props.get(key)!r}, store {store.properties.get(key)!r}")
    return found


def check_recorded(state: Any, store: StoreModel, shown: str = "") -> None:
    """Raise `WriteAheadViolation` if the state holds anything the store does not."""
    found = unrecorded(state, store)
    if found:
        raise WriteAheadViolation("not recorded:\n  " + "\n  ".join(found) + ("\n" + shown if shown else ""))


def check(actions: Sequence[Any], store: StoreModel, before_properties: Mapping[str, str],
          describe: Any = None) -> None:
    """Raise `WriteAheadViolation` if `actions` break the write-ahead rule (see the module)."""
    found = violations(actions, store, before_properties)
    if found:
        shown = describe(actions) if describe is not None else "the actions:\n" + "\n".join(
            f"  {i} {a!r}" for i, a in enumerate(actions))
        raise WriteAheadViolation("write-ahead broken:\n  " + "\n  ".join(found) + "\n" + shown)
