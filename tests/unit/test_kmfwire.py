"""kmfwire, the contract shared by scheduler, executor and localmesos: payload bytes that never
change by accident, one definition per concept, and `KmfError` under every error root."""
from __future__ import annotations

import base64

import pytest

from kmfwire import task_states
from kmfwire.errors import BrokerConfigError, KmfError
from kmfwire.taskdata import BrokerTask, StreamTask, TaskData, TaskDataError, TlsMaterial, Voter

# TaskData.encode() of two payloads, as the scheduler wrote them before the move to kmfwire: an
# executor of any version must keep reading them, so the bytes must not change
BROKER_JSON = (
    '{"broker":{"broker_port":31000,"cluster_id":"MkU3OEVBNTcwNTJENDM2Qk","controller_port":31001,"heap_mb":512,'
    '"host":"127.0.1.1","inter_broker_tls":true,"kafka_version":"4.1.0","min_insync_replicas":1,"mode":"kraft",'
    '"node_id":1,"overrides":{"x":"1"},"rack":"a","replication":1,"roles":["broker","controller"],'
    '"sasl_mechanism":"SCRAM-SHA-512","sasl_port":31004,"tls":{"ca_cert":"ca","cert_chain":"chain","key":"key"},'
    '"tls_port":31003,"volume":"data","voters":[{"host":"127.0.1.1","node_id":1,"port":31001},'
    '{"host":"h2","node_id":2,"port":31002}],"zookeeper_connect":null},"grace_period_s":30.0,'
    '"health_consecutive_failures":3,"health_interval_s":5.0,"kind":"broker","service":"kafka","stream":null,'
    '"version":1}'
)
STREAM_JSON = (
    '{"broker":null,"grace_period_s":5.5,"health_consecutive_failures":3,"health_interval_s":5.0,"kind":"stream",'
    '"service":"s","stream":{"app":"wc","bootstrap_servers":"","command":["a","b"],"env":{"K":"V"},"instance":0,'
    '"kafka_version":null,"runtime":"python"},"version":1}'
)


def broker_data() -> TaskData:
    return TaskData(kind="broker", service="kafka", broker=BrokerTask(
        node_id=1, mode="kraft", kafka_version="4.1.0", roles=("broker", "controller"), host="127.0.1.1",
        broker_port=31000, controller_port=31001, cluster_id="MkU3OEVBNTcwNTJENDM2Qk",
        voters=(Voter(1, "127.0.1.1", 31001), Voter(2, "h2", 31002)), rack="a", overrides={"x": 1},
        tls_port=31003, sasl_port=31004, sasl_mechanism="SCRAM-SHA-512", inter_broker_tls=True,
        tls=TlsMaterial("ca", "chain", "key")))


def stream_data() -> TaskData:
    return TaskData(kind="stream", service="s", grace_period_s=5.5,
                    stream=StreamTask(app="wc", instance=0, runtime="python", command=("a", "b"), env={"K": "V"}))


@pytest.mark.parametrize("make, text", [(broker_data, BROKER_JSON), (stream_data, STREAM_JSON)])
def test_payload_bytes_are_unchanged(make, text):
    data = make()
    assert base64.b64decode(data.encode()).decode() == text
    assert TaskData.decode(data.encode()) == data == TaskData.decode(text)


def test_a_payload_with_an_unreachable_voter_is_refused_as_task_data():
    bad = BROKER_JSON.replace('"host":"h2"', '"host":"h 2"')
    with pytest.raises(TaskDataError, match="voters"):
        TaskData.decode(bad)
    with pytest.raises(BrokerConfigError, match="outside 1..65535"):
        Voter(1, "h", 0)
    assert str(Voter(3, "h", 9093)) == "3@h:9093"


def test_one_voter_class_for_the_payload_and_the_broker_config():
    from executor.runtime import broker_config
    assert broker_config.Voter is Voter


def test_task_states_are_defined_once():
    from executor import policy
    from scheduler.core import state
    assert task_states.TERMINAL < set(task_states.ALL)
    assert task_states.ENDED == task_states.TERMINAL | {"TASK_UNKNOWN"}
    assert "TASK_UNREACHABLE" not in task_states.ENDED  # it may come back: the scheduler waits
    assert policy.TERMINAL_STATES is task_states.TERMINAL
    assert state.TERMINAL is task_states.ENDED


def test_attributes_read_in_mesos_text_form():
    from mesoslib.resources import ResourceError, attributes_of
    offer = {"attributes": [
        {"name": "zone", "type": "TEXT", "text": {"value": "a"}},
        {"name": "weight", "type": "SCALAR", "scalar": {"value": 2.0}},
        {"name": "share", "type": "SCALAR", "scalar": {"value": 2.5}},
        {"name": "ids", "type": "RANGES", "ranges": {"range": [{"begin": 5, "end": 7}, {"begin": 1, "end": 3}]}},
        {"name": "disks", "type": "SET", "set": {"item": ["ssd", "hdd"]}},
    ]}
    assert attributes_of(offer) == {"zone": "a", "weight": "2", "share": "2.5", "ids": "[1-3, 5-7]",
                                    "disks": "{hdd, ssd}"}
    assert attributes_of({}) == {}
    with pytest.raises(ResourceError):
        attributes_of({"attributes": [{"name": "zone", "type": "TEXT"}]})


def test_error_roots_derive_from_kmf_error_and_keep_their_builtin_base():
    from config import ConfigError
    from executor.policy import DurationError
    from executor.runtime.broker import BrokerRuntimeError
    from executor.runtime.tools import ToolOutputError
    from executor.workloads import WorkloadError
    from kmf.operator_cli import Failed, Unreachable, UsageError
    from kmfwire.kafka_versions import KafkaDistError
    from mesoslib.resources import ResourceError
    for error, builtin in [(ConfigError, ValueError), (TaskDataError, ValueError), (KafkaDistError, ValueError),
                           (BrokerConfigError, ValueError), (ResourceError, ValueError), (DurationError, ValueError),
                           (ToolOutputError, ValueError), (BrokerRuntimeError, RuntimeError),
                           (WorkloadError, RuntimeError), (Unreachable, Exception), (UsageError, Exception),
                           (Failed, Exception)]:
        assert issubclass(error, KmfError) and issubclass(error, builtin), error
