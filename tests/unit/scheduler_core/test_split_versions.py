"""`scale brokers` checks the new spec against the Kafka versions the shell read at start
(`State.kafka_versions`); the core itself reads no file."""
from __future__ import annotations

import attrs
import pytest

from scheduler.core.refusals import Refusal
from tests.helpers.core_kit import BASE, Scenario, spec


@pytest.fixture
def no_file_reads(monkeypatch):
    """Loading the spec (the shell's part) may read the versions file; once this is called,
    reading it (from the core) fails the test."""
    import kmfwire.kafka_versions as dist

    def refuse(*_a, **_k):
        raise AssertionError("the core read the Kafka versions file")
    return lambda: monkeypatch.setattr(dist, "read_versions", refuse)


def scale(no_file_reads, versions, count=4):
    sim = Scenario(spec(BASE), agents=4)
    sim.state = attrs.evolve(sim.state, kafka_versions=versions)
    no_file_reads()
    sim.send.subscribed()
    return sim, sim.send.command("scale_brokers", count=count).reply


def test_a_known_version_scales(no_file_reads):
    sim, reply = scale(no_file_reads, {"4.3.1": ("kraft",)})
    assert reply.ok and reply.result["message"] == "brokers: 3 → 4" and sim.state.spec.kafka.brokers == 4


def test_a_version_the_shell_did_not_find_is_refused_as_invalid(no_file_reads):
    sim, reply = scale(no_file_reads, {"3.9.2": ("kraft", "zookeeper")})
    assert not reply.ok and reply.result["refusal"] is Refusal.INVALID
    assert "4.3.1" in reply.result["message"] and "3.9.2" in reply.result["message"]
    assert sim.state.spec.kafka.brokers == 3


def test_without_known_versions_the_rule_is_skipped(no_file_reads):
    _, reply = scale(no_file_reads, None)
    assert reply.ok
