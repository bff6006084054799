"""The scheduler→executor task payload: round trips and errors that name the field."""
from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given, strategies as st

from kmfwire.taskdata import BrokerTask, StreamTask, TaskData, TaskDataError, Voter


def kraft_broker(**changes) -> TaskData:
    broker = dict(node_id=1, mode="kraft", kafka_version="4.3.1", roles=("broker", "controller"),
                  host="127.0.1.1", broker_port=31000, controller_port=31001,
                  cluster_id="MkU3OEVBNTcwNTJENDM2Qk", voters=(Voter(1, "127.0.1.1", 31001),),
                  rack="a", overrides={"num.io.threads": 4})
    broker.update(changes)
    return TaskData(kind="broker", service="kafka", broker=BrokerTask(**broker))


def test_broker_round_trip_through_base64_and_raw_json():
    data = kraft_broker()
    assert TaskData.decode(data.encode()) == data
    assert TaskData.decode(json.dumps(data.to_json()).encode()) == data
    assert data.broker.overrides == {"num.io.threads": "4"}


@given(app=st.text(min_size=1, max_size=20), instance=st.integers(0, 1000),
       env=st.dictionaries(st.text(max_size=10), st.text(max_size=10), max_size=5))
def test_stream_round_trip(app, instance, env):
    data = TaskData(kind="stream", service="s", stream=StreamTask(
        app=app, instance=instance, runtime="python", command=("python", "-m", "x"), env=env,
        bootstrap_servers="h:1"))
    assert TaskData.decode(data.encode()) == data


@pytest.mark.parametrize("changes, field", [
    (dict(mode="raft"), "broker.mode"),
    (dict(roles=()), "broker.roles"),
    (dict(broker_port=70000), "broker.broker_port"),
    (dict(cluster_id=None), "broker.cluster_id"),
    (dict(voters=()), "broker.voters"),
    (dict(controller_port=None), "broker.controller_port"),
    (dict(mode="zookeeper", roles=("broker",), zookeeper_connect=None), "broker.zookeeper_connect"),
])
def test_bad_broker_fields_are_named(changes, field):
    with pytest.raises(TaskDataError, match=field.replace(".", r"\.")):
        kraft_broker(**changes)


def test_decode_rejects_garbage_and_other_versions():
    with pytest.raises(TaskDataError, match="neither JSON nor base64"):
        TaskData.decode("%%%")
    doc = kraft_broker().to_json() | {"version": 99}
    with pytest.raises(TaskDataError, match="version: 99"):
        TaskData.decode(base64.b64encode(json.dumps(doc).encode()))
    doc = kraft_broker().to_json()
    del doc["service"]
    with pytest.raises(TaskDataError, match="missing field 'service'"):
        TaskData.from_json(doc)
