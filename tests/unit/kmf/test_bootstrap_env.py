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
    monkeypatch.setattr(be, "wait_for_listener", lambda url, *a, **k: {URL: ONE}[url])
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
    monkeypatch.setattr(be, "wait_for_listener", lambda url, *a, **k: ONE)
    assert be.main(["--api", "http://kmf.test"], {}) == 0
    assert capsys.readouterr().out == "10.0.0.1:9092\n"
    with pytest.raises(SystemExit) as exit_:
        be.main(["--", "true"], {})
    assert exit_.value.code == 2 and "give --api URL or set KMF_API" in capsys.readouterr().err


SECURE = {**ONE, "tls": {"security_protocol": "SSL", "bootstrap_servers": "10.0.0.1:9093", "ca_cert": "CA PEM"},
          "sasl": {"security_protocol": "SASL_SSL", "mechanism": "SCRAM-SHA-512",
                   "bootstrap_servers": "10.0.0.1:9094", "ca_cert": "CA PEM"}}


def java_properties(text: str) -> dict[str, str]:
    """A properties file as Java reads it (one key=value per line, backslash escapes)."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        key, i, escaped, part = "", 0, False, ""
        for ch in line:
            if escaped:
                part += ch
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == "=" and not key and i == 0:
                key, part, i = part, "", 1
            else:
                part += ch
        out[key] = part
    return out


def _main(tmp_path, monkeypatch, listener: str, environ: dict, doc=SECURE):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(be, "get_json", lambda url, timeout: doc)
    ran = {}
    code = be.main(["--api", "http://kmf.test:8080", "--listener", listener, "--", "java", "Main", "{properties}"],
                   environ, lambda cmd, argv, env: ran.update(argv=argv, env=env))
    return code, ran


def test_a_sasl_client_gets_the_sasl_listener_the_ca_and_the_scram_user(tmp_path, monkeypatch):
    code, ran = _main(tmp_path, monkeypatch, "sasl", {"KMF_SASL_USERNAME": "alice", "KMF_SASL_PASSWORD": 'p"w\\d'})
    assert code == 0
    env, props = ran["env"], (tmp_path / "streams.properties")
    assert env["KAFKA_BOOTSTRAP_SERVERS"] == "10.0.0.1:9094" and env["KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert env["KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    assert (tmp_path / "kmf-ca.pem").read_text() == "CA PEM" and env["KAFKA_SSL_CA_LOCATION"] == str(tmp_path / "kmf-ca.pem")
    got = java_properties(props.read_text())
    assert got["bootstrap.servers"] == "10.0.0.1:9094" and got["security.protocol"] == "SASL_SSL"
    assert got["ssl.truststore.type"] == "PEM" and got["ssl.truststore.location"] == str(tmp_path / "kmf-ca.pem")
    assert got["sasl.mechanism"] == "SCRAM-SHA-512"
    # JAAS quotes the values: a quote and a backslash in the password are escaped
    assert got["sasl.jaas.config"] == ('org.apache.kafka.common.security.scram.ScramLoginModule required '
                                       'username="alice" password="p\\"w\\\\d";')
    assert props.stat().st_mode & 0o077 == 0  # the password's file: its owner's only


def test_a_tls_client_gets_the_tls_listener_and_no_user(tmp_path, monkeypatch):
    code, ran = _main(tmp_path, monkeypatch, "tls", {})
    assert code == 0 and ran["env"]["KAFKA_BOOTSTRAP_SERVERS"] == "10.0.0.1:9093"
    assert "KAFKA_SASL_MECHANISM" not in ran["env"] and "sasl" not in (tmp_path / "streams.properties").read_text()


def test_a_listener_the_service_does_not_have_fails_at_once_naming_it(tmp_path, monkeypatch, capsys):
    code, ran = _main(tmp_path, monkeypatch, "tls", {}, doc=ONE)
    assert code == 1 and not ran
    assert "no tls listener" in capsys.readouterr().err


def test_sasl_without_the_user_is_a_usage_error(tmp_path, monkeypatch, capsys):
    with pytest.raises(SystemExit) as exc:
        _main(tmp_path, monkeypatch, "sasl", {"KMF_SASL_USERNAME": "alice"})
    assert exc.value.code == 2 and "KMF_SASL_PASSWORD" in capsys.readouterr().err
