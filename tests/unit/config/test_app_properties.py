"""A java app's own Kafka Streams `properties`: carried to its task data (the executor adds them
to the properties file, with the agent's client tag for standby placement); the ones kmf sets
itself, and properties of an app that reads no properties file, are refused naming the field."""
from __future__ import annotations

import re

import pytest

from config import ConfigError
from tests.helpers.core_kit import ONE_BROKER, spec

JAVA = ONE_BROKER + """\
apps:
  - name: j
    runtime: java
    command: [Main, '{properties}']
    properties: %s
"""


def test_a_java_apps_properties_reach_its_task_data():
    from scheduler.core.pods import pods_by_name
    from scheduler.core.taskinfo import task_data
    s = spec(JAVA % "{num.standby.replicas: '1'}")
    data = task_data(s, pods_by_name(s)["j-0"], None, {}, None, "h:1")
    assert data.stream.properties == {"num.standby.replicas": "1"}


@pytest.mark.parametrize("props,field,words", [
    ("{application.id: mine}", "apps[0].properties.application.id", "kmf sets application.id itself"),
    ("{state.dir: /tmp/x}", "apps[0].properties.state.dir", "kmf sets state.dir itself"),
])
def test_properties_kmf_sets_itself_are_refused(props, field, words):
    with pytest.raises(ConfigError, match=rf"{re.escape(field)}: {words}"):
        spec(JAVA % props)


def test_properties_of_an_app_that_reads_no_properties_file_are_refused():
    text = ONE_BROKER + "apps:\n  - {name: p, command: ['-m', 'x'], properties: {a: b}}\n"
    with pytest.raises(ConfigError, match=r"apps\[0\]\.properties: only a java app given"):
        spec(text)
