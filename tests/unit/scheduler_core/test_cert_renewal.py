"""Broker certificates renewed before expiry: a gated restart, one broker at a time, oldest first."""
from __future__ import annotations

import pytest

from config import ConfigError
from scheduler.core import actions as act
from scheduler.core import cert_renewal
from tests.helpers.core_kit import deployed
from tests.helpers.core_kit.runner import BASE, spec

TLS = BASE.replace("placement: ['hostname:UNIQUE']}",
                   "placement: ['hostname:UNIQUE'], tls: {enabled: true, cert_days: 1, renew_before_days: 0.25}}")
DAY = 86400.0


def _kills(outcome) -> list[act.Kill]:
    return [k for k in outcome.kills if k.task_id.startswith("broker-")]


def test_nothing_is_renewed_before_the_margin_and_without_tls():
    sim = deployed(TLS)
    sim.now += 0.7 * DAY
    assert _kills(sim.send.kafka_healthy(controller_id=0) + sim.send.tick()) == []
    plain = deployed(BASE)
    plain.now += 400 * DAY
    assert _kills(plain.send.kafka_healthy(controller_id=0) + plain.send.tick()) == []


def test_due_certificates_are_renewed_one_broker_at_a_time_through_the_gate():
    sim = deployed(TLS)
    first = {p: r.launched_at for p, r in sim.state.tasks.items() if p.startswith("broker-")}
    sim.now += 0.8 * DAY  # within 0.25 days of expiry: all three are due
    sim.send.kafka_healthy(controller_id=0)
    out = sim.send.tick()
    kills = _kills(out)
    assert len(kills) == 1 and "certificate renewal" in kills[0].reason
    renewed = kills[0].task_id.split("__")[0]
    # while it is away, no other broker is restarted for its certificate
    sim.send.kafka_healthy(controller_id=0)
    assert _kills(sim.send.tick()) == []
    sim.send.status(kills[0].task_id, "TASK_KILLED")
    sim.run_all_ready(rounds=2)
    assert sim.state.tasks[renewed].launched_at > first[renewed]  # relaunched in place, a new certificate
    assert sim.state.tasks[renewed].reservation is not None
    # the next one goes only after Kafka's metadata asked after the relaunch
    sim.now += 1
    sim.send.kafka_healthy(controller_id=0)
    nxt = _kills(sim.send.tick())
    assert len(nxt) == 1 and not nxt[0].task_id.startswith(renewed)


def test_a_partition_at_risk_holds_the_renewal():
    sim = deployed(TLS)
    sim.now += 0.8 * DAY
    sim.send.kafka_healthy(controller_id=0, under_replicated=2, under_replicated_names=("t-0", "t-1"))
    assert _kills(sim.send.tick()) == []


def test_expiry_is_launch_time_plus_validity():
    sim = deployed(TLS)
    rec = sim.state.tasks["broker-0"]
    assert cert_renewal.expires_at(sim.state, rec) == rec.launched_at + DAY


@pytest.mark.parametrize("tls, path", [
    ("{enabled: true, cert_days: 0}", "kafka.tls.cert_days"),
    ("{enabled: true, cert_days: 1, renew_before_days: 1}", "kafka.tls.renew_before_days"),
    ("{enabled: true, cert_days: 1, renew_before_days: 0}", "kafka.tls.renew_before_days"),
])
def test_bad_validity_settings_are_named(tls, path):
    with pytest.raises(ConfigError, match=path.replace(".", r"\.")):
        spec(BASE.replace("placement: ['hostname:UNIQUE']}", f"placement: ['hostname:UNIQUE'], tls: {tls}}}"))
