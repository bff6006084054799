"""kmf's list of live broker settings against Kafka's own rules, on real brokers of both runtimes
kmf runs (Kafka 4.x KRaft, 3.9 ZooKeeper mode), and the live apply/verify/undo shell on them.

Kafka's describe_configs on a BROKER resource marks a config ``is_read_only`` false exactly when
the broker can change it dynamically; a key kmf applies live must be one of those, so the list can
never drift from Kafka again."""
from __future__ import annotations

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType

from config.rules import LIVE_BROKER_SETTINGS
from scheduler.shell import live_config
from tests.helpers.fixtures_kafka import RunningBroker

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(150)]


def broker_configs(broker: RunningBroker) -> dict:
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    resource = ConfigResource(ResourceType.BROKER, str(broker.broker_id))
    return admin.describe_configs([resource], request_timeout=30)[resource].result(timeout=30)


@pytest.fixture(params=["kraft", "zookeeper"])
def broker(request) -> RunningBroker:
    return request.getfixturevalue("kafka_kraft" if request.param == "kraft" else "kafka_zk")


def test_every_live_setting_is_dynamic_in_kafka(broker):
    configs = broker_configs(broker)
    missing = sorted(LIVE_BROKER_SETTINGS - set(configs))
    assert not missing, f"Kafka {broker.runtime.version} has no broker configs {missing}"
    read_only = sorted(k for k in LIVE_BROKER_SETTINGS if configs[k].is_read_only)
    assert not read_only, f"Kafka {broker.runtime.version} cannot change {read_only} without a restart"
    # the key that was listed as live by mistake: Kafka only has log.retention.ms dynamically
    assert configs["log.retention.hours"].is_read_only


def test_apply_verifies_and_undo_restores_the_brokers_values(broker):
    boot = broker.bootstrap
    before = broker_configs(broker)
    applied = live_config.apply(boot, {"log.retention.ms": "7200000", "log.cleaner.threads": "2"},
                                expected=[broker.broker_id])
    assert applied.brokers == {broker.broker_id: {"log.retention.ms": "7200000", "log.cleaner.threads": "2"}}
    now = broker_configs(broker)
    assert now["log.retention.ms"].value == "7200000" and now["log.cleaner.threads"].value == "2"
    applied.undo()
    after = broker_configs(broker)
    for key in ("log.retention.ms", "log.cleaner.threads"):
        assert (after[key].value, after[key].source) == (before[key].value, before[key].source), key


# num.io.threads=0: Kafka's reason names the key; log.cleaner.threads=0: its reason is "/ by zero"
@pytest.mark.parametrize("key", ["num.io.threads", "log.cleaner.threads"])
def test_a_value_kafka_refuses_is_reported_and_nothing_stays_applied(broker, key):
    before = broker_configs(broker)
    with pytest.raises(live_config.LiveConfigError) as caught:
        live_config.apply(broker.bootstrap, {"log.retention.ms": "3600000", key: "0"},
                          expected=[broker.broker_id])
    err = caught.value
    assert err.broker == broker.broker_id and err.key == key and err.reason and not err.undo_problems
    assert key in str(err) and f"broker {broker.broker_id}" in str(err)
    after = broker_configs(broker)
    for name in ("log.retention.ms", key):
        assert (after[name].value, after[name].source) == (before[name].value, before[name].source), name


def test_a_broker_missing_from_the_metadata_is_refused_before_anything_changes(broker):
    before = broker_configs(broker)
    with pytest.raises(live_config.LiveConfigError) as caught:
        live_config.apply(broker.bootstrap, {"log.retention.ms": "3600000"},
                          expected=[broker.broker_id, 7])
    assert caught.value.broker == 7 and "not in the cluster" in str(caught.value)
    assert broker_configs(broker)["log.retention.ms"].value == before["log.retention.ms"].value
