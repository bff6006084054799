"""`pod restart` (in place) and `pod replace` (a new reservation and a fresh volume).

A broker stops only when the `StopGate` lets it, unless the operator forces it; replacing a
broker with a volume needs the operator's confirmation, as its data is destroyed.
"""
from __future__ import annotations

import attrs

from scheduler.core import actions as act
from scheduler.core import events as ev
from scheduler.core import zk_migration
from scheduler.core.command_types import ReplacePod, RestartPod
from scheduler.core.offer_control import offer_control
from scheduler.core.pods import PodDef, desired_pods
from scheduler.core.records import Result, put, replace, with_records
from scheduler.core.refusals import Refusal, accept, refuse
from scheduler.core.state import KillReason, PodKind, State, TaskRecord
from scheduler.core.stop_gate import StopGate


def _what_replace_loses(state: State, pod: PodDef, rec: TaskRecord) -> tuple[str, str] | None:
    """(host of its volume, its replicas in words) when replacing the pod destroys data."""
    if pod.kind != PodKind.BROKER or rec.reservation is None:
        return None
    health: ev.KafkaHealth | None = state.kafka
    held_n = health.replicas_by_broker.get(pod.node_id, 0) if health is not None else None
    return rec.reservation.hostname, (f"its {held_n} partition replicas" if held_n is not None
                                      else "its partition replicas")


def restart_or_replace(state: State, command: RestartPod | ReplacePod, cmd: ev.Command) -> Result:
    """Kill the pod's task so that it comes back in place (restart) or anew (replace)."""
    now = cmd.now
    pods = desired_pods(state.spec)
    name = command.pod
    pod = next((p for p in pods if p.name == name), None)
    rec = state.tasks.get(name) if isinstance(name, str) else None
    if pod is None or rec is None:
        return state, (refuse(cmd, Refusal.NOT_FOUND, f"pod {name!r} does not exist"),)
    is_replace = isinstance(command, ReplacePod)
    if is_replace and zk_migration.active(state.properties):
        # a node formatted anew mid-migration: a controller with an empty log rejoins the quorum as
        # the same voter (Raft's votes and records lost), a broker registers without its data
        return state, (refuse(cmd, Refusal.CONFLICT, f"replacing {name} is refused while a ZooKeeper → KRaft "
                                                     "migration is under way (kmf plan show migration); restart it "
                                                     "in place instead, or replace it once the migration is done"),)
    if not is_replace and (not rec.active or not rec.task_id):
        return state, (refuse(cmd, Refusal.CONFLICT, f"pod {name} has no running task to restart"),)
    lost = _what_replace_loses(state, pod, rec) if is_replace else None
    if lost and isinstance(command, ReplacePod) and not command.confirm:  # lost: a replace
        host, replicas = lost
        return state, (refuse(cmd, Refusal.CONFLICT,
                              f"replacing {name} destroys its volume on {host} and the data on "
                              f"it; Kafka then copies {replicas} again from the other brokers "
                              f"to the new {name}. Send confirm: true to go ahead",
                              confirm_required=True, volume_host=host),)
    blocker = StopGate(state, pods, now).blocker(pod, moving=is_replace)
    verb = "replace" if is_replace else "restart"
    if blocker and not command.force:
        return state, (refuse(cmd, Refusal.CONFLICT, f"refused: {name} may not stop now: {blocker}; "
                                                     f"force: true {verb}s it anyway",
                              reason=blocker, force_required=True),)
    forced = f" (forced although {blocker})" if blocker else ""
    kill_why = f"{verb} of {name} requested{forced}"
    if not is_replace:
        assert rec.task_id is not None  # a restart without a task was refused above
        new = attrs.evolve(rec, kill_reason=KillReason.RESTART, message=f"restart requested{forced}")
        out: list[act.Action] = [put(new), act.Kill(rec.task_id, rec.agent_id, kill_why)]
        new_state = with_records(state, new)
        done = f"restarting {name} in place{forced}"
    else:
        releasing = dict(state.releasing)
        if rec.active and rec.task_id:
            new = attrs.evolve(rec, kill_reason=KillReason.REPLACE, message=f"replace requested{forced}")
            out = [put(new), act.Kill(rec.task_id, rec.agent_id, kill_why)]
        else:
            new = replace(rec, releasing, f"replace requested{forced}")
            out = [put(new)]
        new_state = attrs.evolve(with_records(state, new), releasing=releasing)
        gone = (f"; its volume on {lost[0]} is destroyed and Kafka copies {lost[1]} to it again"
                if lost else "")
        where = "on a new reservation" if pod.kind == PodKind.BROKER else "anew"
        done = f"replacing {name}: placing it {where}, possibly on the same agent{gone}{forced}"
    if pod.kind == PodKind.BROKER:
        new_state = attrs.evolve(new_state, last_roll_kill=now)  # health asked before this is stale
    return offer_control(new_state, now, out + [accept(cmd, done)])
