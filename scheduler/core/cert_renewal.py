"""Broker certificates renewed before they expire, by a gated restart.

The shell issues a broker's TLS certificate when its task is launched (shell.tls.TlsLaunches), valid
for `kafka.tls.cert_days` from that moment; the task record's `launched_at` is that moment, so the
core knows each certificate's expiry without reading it. A broker whose certificate expires within
`kafka.tls.renew_before_days` is restarted in place, which issues it a new one. The restart goes
through the one broker-stop gate (stop_gate.StopGate), so renewals run one broker at a time, each
only while no partition would fall below min.insync.replicas; a broker that has to wait says why in
its record's message. The oldest certificate goes first.
"""
from __future__ import annotations

import attrs

from scheduler.core import actions as act
from scheduler.core.pods import desired_pods
from scheduler.core.records import put, with_records
from scheduler.core.state import KillReason, State, TaskRecord
from scheduler.core.stop_gate import StopGate

DAY_S = 86400.0


def expires_at(state: State, rec: TaskRecord) -> float | None:
    """When the certificate of `rec`'s running task expires (None: no TLS, or never launched)."""
    tls = state.spec.kafka.tls
    if not tls.enabled or rec.launched_at is None or rec.kind != "broker" or not rec.active:
        return None
    return rec.launched_at + tls.cert_days * DAY_S


def renew(state: State, now: float) -> tuple[State, list[act.Action]]:
    """Restart (at most) one broker whose certificate is due for renewal, when the gate lets it."""
    tls = state.spec.kafka.tls
    if not tls.enabled or state.uninstalling:
        return state, []
    pods = [p for p in desired_pods(state.spec) if p.group == "kafka"]
    due = []
    for pod in pods:
        rec = state.tasks.get(pod.name)
        expiry = expires_at(state, rec) if rec is not None else None
        if rec is None or expiry is None or rec.kill_reason or not rec.serving or not rec.task_id:
            continue
        if now >= expiry - tls.renew_margin_days * DAY_S:
            due.append((expiry, pod, rec))
    if not due:
        return state, []
    gate = StopGate(state, pods, now)
    for expiry, pod, rec in sorted(due, key=lambda d: d[0]):
        blocker = gate.blocker(pod)
        if blocker is not None:
            continue
        why = f"certificate renewal: it expires in {max(0.0, expiry - now):.0f}s"
        assert rec.task_id is not None  # only serving tasks are due
        new = attrs.evolve(rec, kill_reason=KillReason.RESTART, message=why)
        state = attrs.evolve(with_records(state, new), last_roll_kill=now)
        return state, [put(new), act.Kill(rec.task_id, rec.agent_id, f"{pod.name}: {why}")]
    return state, []
