"""kmf.bootstrap_env, the launcher of apps kmf does not run: it waits for kmf's broker endpoint to
list a broker, then execs the command with the bootstrap servers (env and properties file)."""
from __future__ import annotations

import pytest

from kmf import bootstrap_env as be
from kmfio.httpjson import HttpError

pytestmark = pytest.mark.timeout(30)

URL = "http://kmf.test:8080/v1/endpoints/broker"
ONE = {"address": ["10.0.0.1:9092"], "bootstrap_servers": "10.0.0.1:9092", "broker_ids": [0]}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def sleep(self, s: float) -> None:
        self.slept.append(s)
        self.now += s


def answers(*docs):
    """A fetch that gives each of `docs` in turn (an exception is raised), the last one forever."""
    seen = []

    def fetch(url: str):
        seen.append(url)
        doc = docs[min(len(seen), len(docs)) - 1]
        if isinstance(doc, Exception):
            raise doc
        return doc
    return fetch, seen


def test_it_asks_again_while_kmf_is_unreachable_or_has_no_broker():
    clock = Clock()
    empty = {"address": [], "bootstrap_servers": ""}
    fetch, seen = answers(HttpError("Connection refused"), empty, empty, ONE)
    notes: list[str] = []
    assert be.wait_for_brokers(URL, 30, 2, fetch, lambda: clock.now, clock.sleep, notes.append) == "10.0.0.1:9092"
    assert seen == [URL] * 4 and clock.slept == [2, 2, 2]
    # each reason once
    assert notes == [f"waiting for {URL}: HttpError: Connection refused",
                     f"waiting for {URL}: it lists no broker yet (the service is still deploying?)"]


@pytest.mark.parametrize("doc, reason", [
    (HttpError("<urlopen error [Errno 111] Connection refused>"), "Connection refused"),
    ({"address": [], "bootstrap_servers": "", "broker_ids": []}, "lists no broker yet"),
    (ValueError("Expecting value: line 1 column 1"), "ValueError"),
])
def test_after_the_deadline_the_error_names_the_url_and_the_last_reason(doc, reason):
    clock = Clock()
    fetch, seen = answers(doc)
    with pytest.raises(be.NoBrokers) as err:
        be.wait_for_brokers(URL, 5, 2, fetch, lambda: clock.now, clock.sleep)
    assert f"no broker address from {URL} after 5 s" in str(err.value) and reason in str(err.value)
    assert clock.now == 5 and len(seen) == 4  # at 0, 2, 4 and the deadline


def test_the_properties_file_carries_kmfs_addresses_whatever_the_extra_ones_say():
    text = be.app_properties("h:1,h:2", be.parse_sets(["application.id=wc", "bootstrap.servers=stale:9092"]))
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    assert lines == ["application.id=wc", r"bootstrap.servers=h\:1,h\:2"]  # Java properties escape ':'
    with pytest.raises(ValueError, match="'state.dir' is not key=value"):
        be.parse_sets(["state.dir"])


def test_main_execs_the_command_with_the_env_and_the_properties_path(tmp_path, monkeypatch):
    monkeypatch.setattr(be, "wait_for_brokers", lambda url, *a, **k: {URL: "10.0.0.1:9092"}[url])
    monkeypatch.chdir(tmp_path)
    execs = []
    code = be.main(["--set", "application.id=wc", "--", "java", "Main", "{properties}"],
                   {"KMF_API": "http://kmf.test:8080/", "HOME": "/h"}, lambda *a: execs.append(a))
    assert code == 0
    (file, argv, env), = execs
    assert (file, argv) == ("java", ["java", "Main", "streams.properties"])
    assert env == {"KMF_API": "http://kmf.test:8080/", "HOME": "/h", "KAFKA_BOOTSTRAP_SERVERS": "10.0.0.1:9092"}
    assert "application.id=wc" in (tmp_path / "streams.properties").read_text()


def test_main_without_a_command_prints_the_servers_and_without_an_api_is_a_usage_error(capsys, monkeypatch):
    monkeypatch.setattr(be, "wait_for_brokers", lambda url, *a, **k: "10.0.0.1:9092")
    assert be.main(["--api", "http://kmf.test"], {}) == 0
    assert capsys.readouterr().out == "10.0.0.1:9092\n"
    with pytest.raises(SystemExit) as exit_:
        be.main(["--", "true"], {})
    assert exit_.value.code == 2 and "give --api URL or set KMF_API" in capsys.readouterr().err
