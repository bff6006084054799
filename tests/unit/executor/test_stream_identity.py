"""What the executor gives a stream instance: its static identity (group.instance.id, client id,
session timeout) in the environment of a Python app and in a Kafka Streams app's properties, and
its fetched code on PYTHONPATH or the classpath."""
from __future__ import annotations

import os
import socket

import attrs
import pytest

from executor.workloads import agent_host, prepare, python_path, streams_properties
from kmfwire.taskdata import StreamTask, TaskData

pytestmark = pytest.mark.timeout(60)


def app(runtime: str = "python", timeout: int | None = 31_000, artifacts: tuple[str, ...] = (),
        command: tuple[str, ...] = ("-m", "wc")) -> TaskData:
    return TaskData(kind="stream", service="svc", stream=StreamTask(
        app="wc", instance=2, runtime=runtime, command=command, bootstrap_servers="h:1",
        session_timeout_ms=timeout, artifacts=artifacts))


def test_a_python_instance_gets_its_static_identity_in_its_environment(tmp_path):
    env = prepare(app(), tmp_path, {"KMF_PYTHON": "py"}).env
    assert env["KMF_GROUP_INSTANCE_ID"] == "svc-wc-2"
    assert env["KMF_CLIENT_ID"] == "wc-2"
    assert env["KMF_SESSION_TIMEOUT_MS"] == "31000"


def test_a_payload_without_a_session_timeout_joins_as_a_dynamic_member(tmp_path):
    env = prepare(app(timeout=None), tmp_path, {"KMF_PYTHON": "py"}).env
    assert not {"KMF_GROUP_INSTANCE_ID", "KMF_CLIENT_ID", "KMF_SESSION_TIMEOUT_MS"} & set(env)


def test_kafka_streams_properties_carry_the_identity(tmp_path):
    props = streams_properties(app("java", command=("Main", "{properties}")), tmp_path, "10.0.0.7")
    assert props["application.id"] == "svc-wc"
    assert props["group.instance.id"] == "svc-wc-2" and props["client.id"] == "wc-2"
    assert props["session.timeout.ms"] == "31000"
    assert "group.instance.id" not in streams_properties(app("java", timeout=None), tmp_path, "10.0.0.7")


def test_the_apps_own_properties_come_with_the_agents_tag_for_standby_placement(tmp_path):
    data = app("java", command=("Main", "{properties}"))
    data = TaskData(kind="stream", service="svc", stream=attrs.evolve(
        data.stream, properties={"num.standby.replicas": "1", "commit.interval.ms": "100"}))
    props = streams_properties(data, tmp_path, "10.0.0.7")
    assert props["num.standby.replicas"] == "1" and props["commit.interval.ms"] == "100"
    # standbys go to instances with another tag value: on another agent (KIP-708)
    assert props["rack.aware.assignment.tags"] == "agent" and props["client.tag.agent"] == "10.0.0.7"
    assert props["state.dir"] == str(tmp_path / "streams-state")
    # an app that chose its own assignment tags keeps them
    own = TaskData(kind="stream", service="svc", stream=attrs.evolve(
        data.stream, properties={"rack.aware.assignment.tags": "zone", "client.tag.zone": "a"}))
    props = streams_properties(own, tmp_path, "10.0.0.7")
    assert props["rack.aware.assignment.tags"] == "zone" and "client.tag.agent" not in props


def test_the_agent_is_the_address_mesos_gives_the_executor():
    assert agent_host({"MESOS_AGENT_ENDPOINT": "127.0.3.12:5051"}) == "127.0.3.12"
    assert agent_host({}) == socket.gethostname()


def test_the_properties_survive_the_wire_and_an_app_without_them_keeps_the_old_payload():
    data = app("java", command=("Main", "{properties}"))
    assert "properties" not in data.to_json()["stream"]
    with_props = TaskData(kind="stream", service="svc", stream=attrs.evolve(data.stream, properties={"a.b": "1"}))
    assert TaskData.decode(with_props.encode()).stream.properties == {"a.b": "1"}


def test_fetched_wheels_then_the_sandbox_then_the_bundle_on_pythonpath(tmp_path):
    (tmp_path / "e-1.0-py3-none-any.whl").write_bytes(b"PK")
    data = app(artifacts=("http://repo/e-1.0-py3-none-any.whl?x=1", "http://repo/util.py"))
    env = prepare(data, tmp_path, {"KMF_PYTHON": "py", "PYTHONPATH": "/sandbox/kmf-bundle"}).env
    assert env["PYTHONPATH"].split(os.pathsep) == [
        str(tmp_path / "e-1.0-py3-none-any.whl"), str(tmp_path), "/sandbox/kmf-bundle"]
    assert python_path(("http://repo/missing.whl",), tmp_path) == [str(tmp_path)]  # not fetched: not listed


def test_what_the_executor_writes_over_an_apps_properties_is_what_config_refuses_in_them(tmp_path):
    # config.app_rules.KMF_PROPERTIES is the refusal list; the executor's own keys must stay in it,
    # or an app's value would be silently replaced
    from config.app_rules import KMF_PROPERTIES

    mine = {"bootstrap.servers": "mine", "state.dir": "mine"}
    data = app("java", command=("Main", "{properties}"))
    data = attrs.evolve(data, stream=attrs.evolve(data.stream, properties=mine))
    written = streams_properties(data, tmp_path, "10.0.0.7")
    tags = {"rack.aware.assignment.tags", "client.tag.agent"}  # defaults an app may replace
    assert set(written) - tags == set(KMF_PROPERTIES)
