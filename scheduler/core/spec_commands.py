"""Commands that change the target spec (scale brokers, scale an app, update the config), the
autoscaler's changes of an app's count (`on_lag_sampled`, policy in `app_autoscale`), and
uninstall. A new target is adopted whole (`set_spec`); pods it no longer has are killed and their
records removed, and the rolling update brings the others to it.
"""
from __future__ import annotations

from typing import Any

import attrs

import config
from config import ServiceSpec
from config.rules import declared_removals, migration_refusals, validate
from scheduler.core import actions as act
from scheduler.core import (app_autoscale, broker_count, broker_registrations, commit_watch, declared_deletes,
                            kafka_features, launch_config, time_lag, zk_migration, zk_migration_plan)
from scheduler.core import events as ev
from scheduler.core.command_types import ScaleApp, ScaleBrokers, Uninstall, UpdateConfig
from scheduler.core.offer_control import offer_control
from scheduler.core.pods import desired_pods
from scheduler.core.records import Result
from scheduler.core.refusals import Refusal, accept, refuse
from scheduler.core.rolling import roll
from scheduler.core.state import Goal, KillReason, State

# Most instances a command may ask for (brokers, or one app's): a count beyond it would only stall
# the decision loop building pods (the benchmarks' 10,000 task records stay within it).
MAX_INSTANCES = config.MAX_INSTANCES


def set_spec(state: State, spec: ServiceSpec, now: float) -> tuple[State, list[act.Action]]:
    """Adopt a new target spec: pods it no longer has are killed and removed."""
    cid = config.config_id(spec)
    names = {p.name for p in desired_pods(spec)}
    out: list[act.Action] = [act.SetTargetConfig(cid, spec)]
    tasks = dict(state.tasks)
    releasing = dict(state.releasing)
    deletes = []
    changed = []
    for rec in state.tasks.values():
        if rec.pod in names or rec.goal == Goal.GONE:
            continue
        if rec.active and rec.task_id:
            gone = attrs.evolve(rec, goal=Goal.GONE, kill_reason=KillReason.SCALE, message="removed from the config")
            tasks[rec.pod] = gone
            changed.append(gone)
            out.append(act.Kill(rec.task_id, rec.agent_id))
        else:
            if rec.reservation is not None:
                releasing[rec.reservation.persistence_id] = rec.reservation.agent_id
            del tasks[rec.pod]
            deletes.append(("tasks", rec.pod))
    if changed or deletes:
        out.insert(1, act.Persist(puts=tuple(("tasks", r.pod, r.to_json()) for r in changed),
                                  deletes=tuple(deletes)))
    new_state, unregister = broker_registrations.remember(state, state.spec, spec)
    return attrs.evolve(new_state, spec=spec, config_id=cid, tasks=tasks, releasing=releasing), out + list(unregister)


def _bad_count(count: Any, least: int) -> str | None:
    """Why `count` is not an instance count from `least` to MAX_INSTANCES, or None."""
    if not isinstance(count, int) or isinstance(count, bool) or not least <= count <= MAX_INSTANCES:
        return f"count must be a whole number from {least} to {MAX_INSTANCES}, got {count!r}"
    return None


def scale_brokers(state: State, command: ScaleBrokers, cmd: ev.Command) -> Result:
    """A new broker count: checked by `broker_count` and by the config's rules, against the Kafka
    versions the shell read at start (`State.kafka_versions`)."""
    count, now = command.count, cmd.now
    bad = _bad_count(count, 1)
    if bad:
        return state, (refuse(cmd, Refusal.INVALID, bad),)
    spec = state.spec
    current = spec.kafka.brokers
    no = broker_count.refusal(spec.kafka.mode, spec.kafka.broker_ids, count, state.kafka, command.confirm)
    if no is not None:
        return state, (refuse(cmd, no.refusal, no.message, **no.fields()),)
    new_spec = attrs.evolve(spec, kafka=attrs.evolve(spec.kafka, brokers=count))
    issues = validate(new_spec, False, None if state.kafka_versions is None else dict(state.kafka_versions))
    if issues:
        return state, (refuse(cmd, Refusal.INVALID, "; ".join(f"{p}: {m}" for p, m in issues)),)
    new_state, out = set_spec(state, new_spec, now)
    return offer_control(new_state, now, out + [accept(cmd, f"brokers: {current} → {count}")])


def scale_app(state: State, command: ScaleApp, cmd: ev.Command) -> Result:
    """A new instance count for one app (0 stops them all); on an autoscaled app it pauses the
    autoscaling until `auto` resumes it."""
    name, count, now = command.app, command.count, cmd.now
    app = state.spec.app(name) if isinstance(name, str) else None
    if app is None:
        return state, (refuse(cmd, Refusal.NOT_FOUND, f"app {name!r} does not exist"),)
    if command.auto is not False:
        return _resume_autoscale(state, app, command, cmd)
    bad = _bad_count(count, 0)
    if bad:
        return state, (refuse(cmd, Refusal.INVALID, bad),)
    out: list[act.Action] = []
    note = ""
    if app.autoscale is not None:
        # the pause is stored before the count: a scheduler dying in between leaves the autoscaler
        # paused at the count it had, never undoing the operator's
        mem = app_autoscale.memory(state.properties, name)
        props, persist = app_autoscale.stored(state.properties, name, attrs.evolve(mem, manual=True))
        state = attrs.evolve(state, properties=props)
        out.append(persist)
        note = f" (autoscaling paused until kmf scale app {name} --auto)"
    apps = tuple(attrs.evolve(a, count=count) if a.name == name else a for a in state.spec.apps)
    new_state, more = set_spec(state, attrs.evolve(state.spec, apps=apps), now)
    return offer_control(new_state, now, out + more + [accept(cmd, f"{name}: {app.count} → {count}{note}")])


def _resume_autoscale(state: State, app: config.AppSpec, command: ScaleApp, cmd: ev.Command) -> Result:
    if command.auto is not True:
        return state, (refuse(cmd, Refusal.INVALID, f"auto must be true, got {command.auto!r}"),)
    if command.count is not None:
        return state, (refuse(cmd, Refusal.INVALID, "give a count or auto, not both"),)
    if app.autoscale is None:
        return state, (refuse(cmd, Refusal.CONFLICT, f"app {app.name!r} has no autoscale in its config"),)
    mem = app_autoscale.memory(state.properties, app.name)
    if not mem.manual:
        return state, (accept(cmd, f"{app.name}: autoscaling was not paused"),)
    props, persist = app_autoscale.stored(state.properties, app.name, attrs.evolve(mem, manual=False))
    return attrs.evolve(state, properties=props), (persist, accept(
        cmd, f"{app.name}: autoscaling resumed at {app.count} instances (from {app.autoscale.min} to {app.autoscale.max})"))


def on_lag_sampled(state: State, event: ev.LagSampled) -> Result:
    """After a lag sample: stream instances that stopped committing while behind are ended
    (`commit_watch`), and each autoscaled app's count follows its lag (policy:
    `app_autoscale.decide`); a change is adopted like an operator's count and kept with the lag
    that caused it."""
    if state.uninstalling:
        return state, ()
    now = event.now
    at = event.sampled_at if event.sampled_at is not None else now
    # the apps' groups only: a time lag is kept for what kmf runs, not for every group on the cluster
    names = {a.consumer_group(state.spec.name) for a in state.spec.apps}
    mine = {g: lag for g, lag in event.groups.items() if g in names}
    lines = time_lag.observe(state.end_offsets_seen, mine, at)
    groups_seen = time_lag.with_seconds(lines, mine, at)
    state = attrs.evolve(state, end_offsets_seen=lines)
    state, ended = commit_watch.on_sample(state, groups_seen, now)
    spec = state.spec
    low = dict(state.autoscale_low_since)
    notes = dict(state.autoscale_notes)
    props = dict(state.properties)
    out: list[act.Action] = list(ended)
    for app in state.spec.apps:
        if app.autoscale is None:
            continue
        mem = app_autoscale.memory(props, app.name)
        lag = groups_seen.get(app.consumer_group(spec.name))
        verdict = app_autoscale.decide(app.autoscale, app.count, lag, mem, low.get(app.name),
                                       app_autoscale.settled(state, app), now)
        notes[app.name] = verdict.note
        if verdict.low_since is None:
            low.pop(app.name, None)
        else:
            low[app.name] = verdict.low_since
        if verdict.count is None or verdict.count == app.count:
            continue
        decision = app_autoscale.Decision(now, app.count, verdict.count, verdict.lag, verdict.note,
                                          lag.seconds if lag is not None and verdict.lag is not None else None)
        props, persist = app_autoscale.stored(props, app.name, mem.with_decision(decision))
        out.append(persist)
        low.pop(app.name, None)
        spec = attrs.evolve(spec, apps=tuple(attrs.evolve(a, count=verdict.count) if a.name == app.name else a
                                             for a in spec.apps))
    # the autoscaler changes counts only, never an app's group: the groups seen are the apps' still
    state = attrs.evolve(state, properties=props, autoscale_low_since=low, autoscale_notes=notes,
                         app_groups=groups_seen, app_groups_at=at)
    if spec == state.spec:
        return state, tuple(out)
    new_state, more = set_spec(state, spec, now)
    before = {a.name: a.count for a in state.spec.apps}
    why = "; ".join(f"autoscale {a.name}: {before[a.name]} → {a.count}, {notes[a.name]}"
                    for a in spec.apps if a.count != before[a.name])
    more = [attrs.evolve(a, why=why) if isinstance(a, act.SetTargetConfig) else a for a in more]
    return offer_control(new_state, now, out + more)


def update_config(state: State, command: UpdateConfig, cmd: ev.Command) -> Result:
    """A new target spec (already valid by config's rules): refused when the update itself is not
    allowed; a refused launch file is remembered (``launch.refused``) for /v1/health."""
    spec, launch_id, now = command.spec, command.launch_id, cmd.now
    if not isinstance(spec, ServiceSpec):
        return state, (refuse(cmd, Refusal.INVALID, "no valid spec given"),)
    spec = app_autoscale.kept_counts(state.spec, spec, state.properties)
    if zk_migration.active(state.properties):
        return state, (refuse(cmd, Refusal.CONFLICT, "a ZooKeeper → KRaft migration is under way (phase "
                              f"{zk_migration.phase(state.properties)}): change the config once it is done "
                              "(kmf plan show migration)"),)
    refused = config.check_update(state.spec, spec)
    too_old = kafka_features.refusal(state, spec)
    if too_old is not None:
        refused = [*refused, too_old]
    gone_topics, gone_users = declared_removals(state.spec, spec)
    deleting: list[str] = [*(f"topic {t}" for t in gone_topics), *(f"user {u}" for u in gone_users)]
    delete_refused = bool(deleting) and not command.confirm_delete
    if delete_refused:
        refused = [*refused, f"this update deletes from Kafka {', '.join(deleting)} (declared before, not in the new "
                             "config); confirm with --yes-delete (API: \"confirm_delete\": true), or keep them declared"]
    no = broker_count.refusal(spec.kafka.mode, state.spec.kafka.broker_ids, spec.kafka.brokers, state.kafka,
                              command.confirm)
    if no is not None:
        refused = [*refused, no.message]
    if refused:
        extra = {"delete_confirm_required": True, "would_delete": deleting} if delete_refused else {}
        reply = refuse(cmd, Refusal.CONFLICT, "; ".join(refused), reasons=refused,
                       **(no.fields() if no is not None else {}), **extra)
        if not isinstance(launch_id, str):
            return state, (reply,)
        props = {**state.properties, launch_config.LAUNCH_REFUSED: "; ".join(refused)}
        return attrs.evolve(state, properties=props), (
            act.Persist(puts=((("properties", launch_config.LAUNCH_REFUSED, "; ".join(refused)),))), reply)
    if migration_refusals(state.spec, spec) == []:  # zookeeper → kraft: a plan of its own
        return zk_migration_plan.start(state, spec, cmd)
    diff = config.describe_update(state.spec, spec)
    new_state, out = set_spec(state, spec, now)
    new_state, forgotten = app_autoscale.forget(new_state, spec)
    out += forgotten
    new_state, pending = declared_deletes.pending_after_update(new_state, gone_topics, gone_users)
    # the deletions are stored before the target that no longer declares them: a scheduler that
    # dies in between still deletes them (a name still declared is never deleted)
    out = pending + out
    if isinstance(launch_id, str):
        props = {k: v for k, v in new_state.properties.items() if k != launch_config.LAUNCH_REFUSED}
        new_state = attrs.evolve(new_state, properties={**props, launch_config.LAUNCH_ID: launch_id})
        out.append(act.Persist(puts=(("properties", launch_config.LAUNCH_ID, launch_id),),
                               deletes=(("properties", launch_config.LAUNCH_REFUSED),)
                               if launch_config.LAUNCH_REFUSED in state.properties else ()))
    new_state, more = roll(new_state, now)
    return offer_control(new_state, now, out + more + [accept(
        cmd, ("configuration updated" if diff else "nothing changed") + _declared_note(spec, deleting),
        diff=diff, deleting=deleting,
        live=config.live_broker_settings(state.spec, spec),
        restart=config.broker_restart_required(state.spec, spec))])


def _declared_note(spec: ServiceSpec, deleting: list[str]) -> str:
    """What the reply says of declared topics and users: the leader applies them after the reply."""
    if not (spec.topics or spec.users or deleting):
        return ""
    gone = f", deleting {', '.join(deleting)}" if deleting else ""
    return f"; Kafka follows the declared topics and users{gone} (kmf config declared --wait, GET /v1/declared)"


def uninstall(state: State, command: Uninstall, cmd: ev.Command) -> Result:
    """Kill every task and release every reservation; `Teardown` follows once all are gone."""
    changed, out = [], []
    for rec in state.tasks.values():
        gone = attrs.evolve(rec, goal=Goal.GONE, kill_reason=KillReason.UNINSTALL, message="uninstalling")
        changed.append(gone)
        if rec.active and rec.task_id:
            out.append(act.Kill(rec.task_id, rec.agent_id))
    tasks = {r.pod: r for r in changed}
    releasing = dict(state.releasing)
    deletes = []
    for r in changed:  # records with nothing running go at once
        if not r.active:
            if r.reservation is not None:
                releasing[r.reservation.persistence_id] = r.reservation.agent_id
            del tasks[r.pod]
            deletes.append(("tasks", r.pod))
    persist = act.Persist(puts=(("properties", "uninstall", "true"),)
                          + tuple(("tasks", r.pod, r.to_json()) for r in changed if r.pod in tasks),
                          deletes=tuple(deletes))
    new_state = attrs.evolve(state, tasks=tasks, releasing=releasing, uninstalling=True,
                             properties={**state.properties, "uninstall": "true"})
    return new_state, (persist, *out, accept(cmd, "uninstalling: killing every task and releasing every reservation; "
                                              "then the framework is torn down and the service stays uninstalled "
                                              "(a restarted scheduler only reports it in /v1/health): remove its "
                                              "Marathon app"))
