"""Actions and events in words, one line each, for the messages of failed expectations."""
from __future__ import annotations

from typing import Any, Iterable, Mapping

from mesoslib.resources import Resources
from scheduler.core import actions as act
from scheduler.core import events as ev

LABEL_POD, LABEL_RESERVATION = "kmf.pod", "kmf.reservation"


def pod_of(task_id: str) -> str:
    return task_id.split("__", 1)[0]


def _short(task_id: str | None) -> str:
    if not task_id:
        return "-"
    pod, _, rest = task_id.partition("__")
    return f"{pod}__{rest[:8]}" if rest else pod


def _labelled(docs: Any) -> str:
    try:
        found = []
        for res in Resources.from_json(docs):
            labels = dict(res.reservations[-1].labels) if res.reservations else {}
            rid = labels.get(LABEL_RESERVATION) or (res.disk.persistence_id if res.disk else "?")
            item = f"{labels.get(LABEL_POD, '?')} [{rid}]"
            if item not in found:
                found.append(item)
        return ", ".join(found)
    except Exception:  # noqa: BLE001 - a description never fails a test by itself
        return "?"


def describe_operation(op: Mapping[str, Any]) -> str:
    kind = op.get("type")
    if kind == "LAUNCH":
        return "LAUNCH " + ", ".join(_short(t["task_id"]["value"]) for t in op["launch"]["task_infos"])
    if kind == "RESERVE":
        return f"RESERVE {_labelled(op['reserve']['resources'])}"
    if kind == "CREATE":
        return f"CREATE {_labelled(op['create']['volumes'])}"
    if kind == "DESTROY":
        return f"DESTROY {_labelled(op['destroy']['volumes'])}"
    if kind == "UNRESERVE":
        return f"UNRESERVE {_labelled(op['unreserve']['resources'])}"
    return str(kind)


def describe_action(a: Any) -> str:
    if isinstance(a, act.Persist):
        parts = []
        for kind, key, value in a.puts:
            if kind == "tasks" and isinstance(value, Mapping):
                res = (value.get("reservation") or {}).get("persistence_id")
                what = [f"task {_short(value.get('task_id'))}" if value.get("task_id") else "no task"]
                if value.get("state"):
                    what.append(str(value["state"]))
                if value.get("goal") not in (None, "RUNNING"):
                    what.append(f"goal {value['goal']}")
                if res:
                    what.append(f"reserved {res}")
                parts.append(f"tasks/{key} ({', '.join(what)})")
            else:
                parts.append(f"{kind}/{key}={value!r}"[:80])
        parts += [f"delete {kind}/{key}" for kind, key in a.deletes]
        return "Persist " + ("; ".join(parts) or "nothing")
    if isinstance(a, act.Accept):
        return f"Accept {', '.join(a.offer_ids)}: " + ", ".join(describe_operation(op) for op in a.operations)
    if isinstance(a, act.Decline):
        return f"Decline {', '.join(a.offer_ids)} (refuse {a.refuse_seconds:g}s)"
    if isinstance(a, act.Kill):
        return f"Kill {_short(a.task_id)} on {a.agent_id}" + (f" ({a.reason})" if a.reason else "")
    if isinstance(a, act.Reconcile):
        return ("Reconcile " + ", ".join(_short(t) for t, _ in a.tasks)) if a.tasks else "Reconcile (implicit)"
    if isinstance(a, act.Acknowledge):
        st = a.status if isinstance(a.status, Mapping) else {}
        return f"Acknowledge {_short((st.get('task_id') or {}).get('value'))} {st.get('state')}"
    if isinstance(a, act.Reply):
        result = a.result if isinstance(a.result, Mapping) else {"result": a.result}
        extra = {k: v for k, v in result.items() if k != "message"}
        return f"Reply {a.command_id} ok={a.ok}: {result.get('message', '')!s}" + (f" {extra}" if extra else "")
    if isinstance(a, act.SetTargetConfig):
        return f"SetTargetConfig {a.config_id[:12]}"
    return type(a).__name__


def describe_event(e: Any) -> str:
    if isinstance(e, str):  # several steps read as one
        return e
    at = f" at t={e.now:g}" if isinstance(getattr(e, "now", None), (int, float)) else ""
    if isinstance(e, ev.Offers):
        ids = [str(((d.get("id") or {}) if isinstance(d, Mapping) else {}).get("value")) for d in e.offers]
        return f"Offers{at}: {', '.join(ids) or 'none'}"
    if isinstance(e, ev.Status):
        st = e.status if isinstance(e.status, Mapping) else {}
        tid = (st.get("task_id") or {}).get("value") if isinstance(st.get("task_id"), Mapping) else st.get("task_id")
        return f"Status{at}: {_short(tid) if isinstance(tid, str) else tid!r} {st.get('state')} ({st.get('source')})"
    if isinstance(e, ev.Command):
        return f"Command{at}: {e.kind} {dict(e.args)}"[:160]
    return f"{type(e).__name__}{at}"


def describe(actions: Iterable[Any], event: Any = None) -> str:
    """One line per action, numbered; headed by the event when known."""
    lines = [f"  {i} {describe_action(a)}" for i, a in enumerate(actions)]
    head = "the actions:" if event is None else f"the step ({describe_event(event)}) did:"
    return head + "\n" + ("\n".join(lines) or "  nothing")
