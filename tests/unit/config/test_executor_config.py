"""executor: where the executor and Kafka come from (served, urls, preinstalled), and the errors an
operator sees, each as file:line: field: message."""
from __future__ import annotations

import pytest

from config import ConfigError, load_text
from kmfwire import artifacts as names

pytestmark = pytest.mark.timeout(30)

HEAD = """\
name: kafka
mesos: {master: 'zk://127.0.0.1:2181/mesos'}
zookeeper: {connect: '127.0.0.1:2181'}
"""


def problems(text: str, check_files: bool = False) -> list[str]:
    with pytest.raises(ConfigError) as err:
        load_text(text, "svc.yaml", env={}, check_files=check_files)
    return [str(p) for p in err.value.problems]


def test_default_is_served_with_the_agents_python3():
    e = load_text(HEAD, "svc.yaml", env={}).executor
    assert (e.artifacts, e.python, e.pythonpath, e.kafka_cache) == ("served", "python3", None, None)


def test_served_without_archives_says_where_it_looked_and_what_builds_them(tmp_path, monkeypatch):
    monkeypatch.delenv(names.ENV_DIR, raising=False)
    text = HEAD + f"executor:\n  artifacts: served\n  artifacts_dir: {tmp_path}\n"
    [msg] = problems(text, check_files=True)
    assert msg.startswith("svc.yaml:5: executor.artifacts: served, but the kmf bundle")
    assert names.bundle_file() in msg and "kafka-4.3.1.tar.gz" in msg and str(tmp_path) in msg
    assert "make setup" in msg
    (tmp_path / names.bundle_file()).write_bytes(b"b")
    (tmp_path / "kafka-4.3.1.tar.gz").write_bytes(b"k")
    assert load_text(text, "svc.yaml", env={}, check_files=True).executor.artifacts_dir == str(tmp_path)


def test_served_dir_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(names.ENV_DIR, str(tmp_path))
    [msg] = problems(HEAD, check_files=True)
    assert f"not found in {tmp_path} (${names.ENV_DIR})" in msg
    (tmp_path / names.bundle_file()).write_bytes(b"b")
    (tmp_path / "kafka-4.3.1.tar.gz").write_bytes(b"k")
    load_text(HEAD, "svc.yaml", env={}, check_files=True)


def test_urls_need_the_bundle_and_the_kafka_version_as_fetchable_archives():
    out = problems(HEAD + """executor:
  artifacts: urls
  kafka_uris:
    3.9.2: ftp://repo/kafka-3.9.2.tar.gz
    4.3.1: https://repo/kafka-4.3.1.jar
""")
    assert any(p.startswith("svc.yaml:") and "executor.bundle_uri: executor.artifacts: urls needs" in p for p in out)
    assert any("executor.kafka_uris.3.9.2: 'ftp://repo/kafka-3.9.2.tar.gz' must be an http(s)://" in p for p in out)
    assert any("executor.kafka_uris.4.3.1: 'https://repo/kafka-4.3.1.jar' must be an archive" in p for p in out)
    ok = load_text(HEAD + """executor:
  artifacts: urls
  bundle_uri: file:///srv/kmf/kmf-0.1.0-py3.11-linux-x86_64.tar.gz
  kafka_uris: {4.3.1: 'https://repo/kafka-4.3.1.tar.gz'}
""", "svc.yaml", env={}, check_files=True)
    assert ok.executor.kafka_uris == {"4.3.1": "https://repo/kafka-4.3.1.tar.gz"}


def test_a_field_of_another_mode_is_named():
    out = problems(HEAD + "executor:\n  artifacts: served\n  pythonpath: /opt/kmf\n  bundle_uri: /x.tar.gz\n")
    assert "svc.yaml:6: executor.pythonpath: is only used with executor.artifacts: preinstalled " \
           "(this service has served)" in out
    assert any(p.startswith("svc.yaml:7: executor.bundle_uri: is only used with executor.artifacts: urls") for p in out)


def test_preinstalled_paths_are_not_checked_on_the_schedulers_host():
    spec = load_text(HEAD + "executor: {artifacts: preinstalled, python: /nonexistent/python3, "
                            "pythonpath: /nonexistent/kmf}\n", "svc.yaml", env={}, check_files=True)
    assert spec.executor.python == "/nonexistent/python3"
