"""The one gate of every voluntary broker stop (rolling update, `pod restart`, `pod replace`).

It reads Kafka's health as the shell last sampled it (`events.KafkaHealth` in `State.kafka`) and
the task records; it is pure and never asks Kafka itself.
"""
from __future__ import annotations

from scheduler.core import events as ev
from scheduler.core.pods import PodDef
from scheduler.core.state import PodKind, State, TaskRecord

# Kafka metadata older than this is not trusted to let a broker stop (the watcher asks every 5 s)
HEALTH_MAX_AGE_S = 30.0


def _names(names: tuple[str, ...], count: int) -> str:
    shown = ", ".join(names)
    return f"{shown}, …" if shown and count > len(names) else shown


def not_serving(rec: TaskRecord | None) -> str | None:
    """Why a pod does not count as up for the gate (None: serving, nothing asked of it)."""
    if rec is None or not rec.active:
        return "not running"
    if rec.kill_reason:
        return f"stopping ({rec.kill_reason})"
    if not rec.serving:
        return "not ready" if rec.state == "TASK_RUNNING" else f"starting ({rec.state or 'launched'})"
    return None


class StopGate:
    """The one gate of every voluntary broker stop (rolling update, `pod restart`, `pod replace`),
    pure; what does not depend on the broker asked about is worked out once.

    A broker may stop only when no other broker or controller is starting, stopping or not ready;
    the KRaft voters left running stay a majority; Kafka metadata asked after the last broker stop,
    launch and readiness (and at most HEALTH_MAX_AGE_S ago) shows no under-replicated partition
    and none that would fall below min.insync.replicas without it. A broker that recent metadata
    does not list (fenced or unregistered: it serves nothing) may restart in place whatever the
    partitions' state. A lone broker is not gated: there is nothing to keep available, as the
    rolling update always had it (with dedicated controllers too: they only keep their majority,
    and a quorum of one restarts in place)."""

    def __init__(self, state: State, pods: list[PodDef], now: float) -> None:
        self.state, self.now = state, now
        self.members = [p for p in pods if p.group == "kafka"]
        self.down = {p.name: why for p in self.members if (why := not_serving(state.tasks.get(p.name)))}
        kraft = state.spec.kafka.mode == "kraft"
        self.voters = [p.name for p in self.members if kraft and p.is_controller]
        # the same for every broker asked about: metadata too old to judge by, or partitions
        # under-replicated
        self.stale_blocker = self._stale()
        self.health_blocker = self.stale_blocker or self._under_replicated()

    def _stale(self) -> str | None:
        state, now = self.state, self.now
        health: ev.KafkaHealth | None = state.kafka
        if health is None:
            return "Kafka's partition state is not known yet (no metadata from the brokers)"
        recs = [state.tasks.get(p.name) for p in self.members]
        settled = max([state.last_roll_kill, *(t for r in recs if r for t in (r.launched_at, r.ready_at) if t)])
        if health.now <= settled:
            # an older sample can show every replica in sync although a broker was just stopped
            # or has only now come back and not caught up yet
            return ("waiting for Kafka metadata asked after the last broker stop or start "
                    f"(the last sample was asked {now - health.now:.1f}s ago)")
        if now - health.now > HEALTH_MAX_AGE_S:
            return f"the last Kafka metadata was asked {now - health.now:.0f}s ago (more than {HEALTH_MAX_AGE_S:.0f}s)"
        return None

    def _under_replicated(self) -> str | None:
        health = self.state.kafka
        if health is not None and health.under_replicated:
            return (f"{health.under_replicated} partitions are under-replicated: "
                    f"{_names(health.under_replicated_names, health.under_replicated)}")
        return None

    def blocker(self, pod: PodDef, moving: bool = False) -> str | None:
        """Why `pod` must not stop now, or None when it may (`moving`: its data goes too)."""
        if pod.kind != PodKind.BROKER or len(self.members) <= 1:
            return None
        rec = self.state.tasks.get(pod.name)
        if rec is not None and rec.active and rec.kill_reason:
            return f"{pod.name} is already stopping ({rec.kill_reason} requested)"
        # a quorum of one has no majority to keep: its voter restarts in place (metadata changes
        # wait the seconds it takes; brokers keep serving), or nothing in it could ever roll
        if pod.name in self.voters and len(self.voters) > 1:
            voters_down = [v for v in self.voters if v in self.down and v != pod.name]
            if len(voters_down) + 1 > (len(self.voters) - 1) // 2:
                left = len(self.voters) - len(voters_down) - 1
                return (f"stopping {pod.name} would leave {left} of {len(self.voters)} KRaft controllers "
                        "running, not a majority" + (f" ({', '.join(voters_down)} down)" if voters_down else ""))
        others = len(self.down) - (pod.name in self.down)
        if others:
            first = min(n for n in self.down if n != pod.name)
            more = f" (and {others - 1} more)" if others > 1 else ""
            return f"{first} is {self.down[first]}{more}: one broker at a time"
        if "broker" in pod.roles and sum("broker" in m.roles for m in self.members) == 1:
            return None  # the only broker (beside its controllers): nothing to keep available
        if self.stale_blocker:
            return self.stale_blocker
        health = self.state.kafka
        assert health is not None  # else stale_blocker says it is not known
        node = pod.node_id
        if not moving and "broker" in pod.roles and node not in health.brokers_in_metadata:
            # Kafka's metadata lists only live, unfenced brokers, and the controller takes a fenced
            # broker out of every ISR: one it does not list serves no partition, so a restart in
            # place (its data kept) costs no replica. And it may be the only way back: a broker left
            # with stale controller addresses (a voter moved to another address) stays fenced until
            # restarted, while partitions whose last in-sync copy it holds stay offline; holding
            # its restart until nothing is under-replicated was a deadlock (found by the chaos suite)
            return None
        if self.health_blocker:
            return self.health_blocker
        at_risk = health.under_min_isr_if_down.get(node, 0)
        if at_risk:
            return (f"{at_risk} partitions would fall below min.insync.replicas "
                    f"({self.state.spec.kafka.min_isr}) without broker {node}: "
                    f"{_names(health.at_risk_names.get(node, ()), at_risk)}")
        if moving and health.under_min_isr_without.get(node, 0):
            return (f"{health.under_min_isr_without[node]} partitions of broker {node} have fewer than "
                    f"min.insync.replicas in-sync replicas on other brokers: its data is needed")
        return None


def broker_stop_blocker(state: State, pod: PodDef, pods: list[PodDef], now: float,
                        moving: bool = False) -> str | None:
    """Why broker `pod` must not stop now, or None when it may (see `StopGate`)."""
    return StopGate(state, pods, now).blocker(pod, moving)