"""The pending deletions of declared topics and users, kept in the `declared.deleting` property.

A confirmed update that removes declared topics or users adds them (`pending_after_update`) in
the same decision that stores the new target, so a scheduler restarted before Kafka deleted them
still does; the reconciler reports what it deleted (`DeclaredDeleted`) and they are dropped.
Names declared again leave the list: a declared name is never deleted.
"""
from __future__ import annotations

from typing import Sequence

import attrs

from scheduler.core import actions as act
from scheduler.core.declared import DELETING, Deleting, deleting_of, deleting_text
from scheduler.core.events import DeclaredDeleted
from scheduler.core.records import Result
from scheduler.core.state import State


def _store(state: State, deleting: Deleting) -> tuple[State, list[act.Action]]:
    before = state.properties.get(DELETING, "")
    text = deleting_text(deleting)
    if text == before:
        return state, []
    if text:
        props = {**state.properties, DELETING: text}
        persist = act.Persist(puts=(("properties", DELETING, text),))
    else:
        props = {k: v for k, v in state.properties.items() if k != DELETING}
        persist = act.Persist(deletes=(("properties", DELETING),))
    return attrs.evolve(state, properties=props), [persist]


def pending_after_update(state: State, topics: Sequence[str], users: Sequence[str]) -> tuple[State, list[act.Action]]:
    """`state` has its new spec: add the removed names, drop the ones declared again."""
    now = deleting_of(state.properties)
    declared_topics = {t.name for t in state.spec.topics}
    declared_users = {u.name for u in state.spec.users}
    return _store(state, Deleting((now.topics | set(topics)) - declared_topics,
                                  (now.users | set(users)) - declared_users))


def on_declared_deleted(state: State, event: DeclaredDeleted) -> Result:
    now = deleting_of(state.properties)
    new_state, out = _store(state, Deleting(now.topics - set(event.topics), now.users - set(event.users)))
    return new_state, tuple(out)
