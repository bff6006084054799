"""Kafka TLS and SASL/SCRAM end to end: one broker with kmf's own CA, clients over TLS with the CA
from the endpoints API (a client with another CA is refused), a SCRAM user created through the API
and the CLI (a wrong password is refused), the API itself over HTTPS, no password or key where it
does not belong, and a broker moved to another agent serving a certificate for its new address."""
from __future__ import annotations

import datetime
import json
import os
import socket
import ssl
import stat
import subprocess
import sys
import time
import urllib.request

import pytest
from kazoo.exceptions import NoAuthError

from scheduler.shell.tls import CertificateAuthority
from tests.helpers.fixtures_scheduler import SchedulerProc
from tests.helpers.kafka_clients import produce_consume
from tests.helpers.fixtures_zookeeper import node_texts, zk_session
from tests.helpers.wait import wait_for

pytestmark = [pytest.mark.timeout(420), pytest.mark.kafka]

TOKEN, ZK_PASSWORD, SCRAM_PASSWORD = "api-t0ken-5e1", "zk-passw0rd-8d2", "scram-Pa55word-c41f"


def _client(bootstrap: str, cafile: str, **extra: str) -> dict:
    return {"bootstrap.servers": bootstrap, "security.protocol": "SSL", "ssl.ca.location": cafile,
            "log_level": 0, "socket.connection.setup.timeout.ms": 5000, **extra}


def refused(conf: dict) -> str:
    """Kafka's complaint for a client that must not get in (fails the test if it gets in)."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient
    errors: list[str] = []
    admin = AdminClient({**conf, "error_cb": lambda e: errors.append(str(e))})
    with pytest.raises(KafkaException) as exc:
        admin.list_topics(timeout=8)
    admin.poll(1)  # serves the error callback
    return " ".join([str(exc.value), *errors])


def peer_alt_names(host: str, port: int, cafile: str) -> tuple:
    """The broker's certificate names, verified against `cafile` and checked for `host`."""
    ctx = ssl.create_default_context(cafile=cafile)
    with socket.create_connection((host, port), timeout=10) as raw, \
            ctx.wrap_socket(raw, server_hostname=host) as tls:
        return tls.getpeercert()["subjectAltName"]


def kmf_cli(s: SchedulerProc, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kmf", *argv, "--api", s.url, "--json",
                           "--token-file", str(s.base / "token")],
                          capture_output=True, text=True, timeout=60, env=os.environ.copy())


def _remove_state(env, s: SchedulerProc) -> None:
    """The chroot fixture has no digest to remove the service's ACL'd nodes: do it here."""
    s.stop()
    with zk_session(env.zk_connect, f"kmf:{ZK_PASSWORD}") as owner:
        try:
            owner.delete(f"{env.zk_root}/{env.name}", recursive=True)
        except Exception:  # noqa: BLE001 - already gone
            pass


def test_tls_and_scram_clients_relaunch_and_no_secret_leaks(kmf_env, tmp_path, monkeypatch, request):
    now = datetime.datetime.now(datetime.timezone.utc)
    (tmp_path / "token").write_text(TOKEN + "\n")
    (tmp_path / "zkpass").write_text(ZK_PASSWORD + "\n")
    # the API over HTTPS, with a certificate from a CA of the test's own
    api_ca = CertificateAuthority.create("api", now)
    chain, key = api_ca.issue("127.0.0.1", now)
    (tmp_path / "api.pem").write_text(chain)
    (tmp_path / "api.key").write_text(key)
    (tmp_path / "api-ca.pem").write_text(api_ca.cert_pem)
    # urllib here, in the CLI and in the agents' fetchers, which download the executor from the
    # API (a Mesos agent's fetcher, libcurl, must trust the API's CA the same way)
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "api-ca.pem"))
    env = kmf_env(agents=2)

    cfg = env.config(brokers=1, tls={"enabled": True, "inter_broker": True}, sasl={"enabled": True})
    cfg["zookeeper"].update(digest_user="kmf", digest_password_file=str(tmp_path / "zkpass"))
    cfg["api"].update(token_file=str(tmp_path / "token"), tls_cert_file=str(tmp_path / "api.pem"),
                      tls_key_file=str(tmp_path / "api.key"))
    s = SchedulerProc(env.base, cfg, len(env.schedulers))
    env.schedulers.append(s)
    s.url = s.url.replace("http://", "https://")
    request.addfinalizer(lambda: _remove_state(env, s))
    started = time.monotonic()
    s.start()
    s.wait_deployed()
    print(f"deployed 1 TLS+SASL broker in {time.monotonic() - started:.1f}s")
    with pytest.raises(OSError):  # the API answers nothing over plain HTTP
        urllib.request.urlopen(s.url.replace("https://", "http://") + "/v1/plans", timeout=10).read()

    ep = s.get("/v1/endpoints/broker")
    assert ep["tls"]["security_protocol"] == "SSL" and ep["sasl"]["security_protocol"] == "SASL_SSL"
    cafile = tmp_path / "kafka-ca.pem"
    cafile.write_text(ep["tls"]["ca_cert"])
    tls_boot, sasl_boot = ep["tls"]["bootstrap_servers"], ep["sasl"]["bootstrap_servers"]
    host, port = tls_boot.split(":")
    assert ("IP Address", host) in peer_alt_names(host, int(port), str(cafile))

    # TLS clients with the CA from the endpoints API produce and consume
    assert s.request("POST", "/v1/topics", {"name": "tls-t", "partitions": 1}, token=TOKEN)[0] == 200
    assert produce_consume(_client(tls_boot, str(cafile)), "tls-t", 50) == set(range(50))
    # a client that trusts another CA is refused
    (tmp_path / "other-ca.pem").write_text(CertificateAuthority.create("other", now).cert_pem)
    assert "verify failed" in refused(_client(tls_boot, str(tmp_path / "other-ca.pem"))).lower()

    # SCRAM users: created through the API (token needed) and the CLI
    user = {"name": "alice", "password": SCRAM_PASSWORD}
    assert s.request("POST", "/v1/users", user)[0] == 401
    code, doc = s.request("POST", "/v1/users", user, token=TOKEN)
    assert code == 200, doc
    sasl = _client(sasl_boot, str(cafile), **{"security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512",
                                             "sasl.username": "alice", "sasl.password": SCRAM_PASSWORD})
    assert produce_consume(sasl, "tls-t", 50) == set(range(50))
    assert "uthentication" in refused({**sasl, "sasl.password": "not-the-password"})
    assert "uthentication" in refused({**sasl, "sasl.username": "mallory"})
    # an app kmf does not run (its own Marathon app) started by kmf.bootstrap_env --listener sasl:
    # the CA and the SCRAM user reach a librdkafka client (environment) and a Java client
    # (properties file: PEM trust store, JAAS) that both talk to the broker over SASL_SSL
    work = tmp_path / "outside-app"
    work.mkdir()
    launcher = [sys.executable, "-m", "kmf.bootstrap_env", "--api", s.url, "--listener", "sasl", "--timeout", "30", "--"]
    outside = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "KMF_SASL_USERNAME": "alice",
               "KMF_SASL_PASSWORD": SCRAM_PASSWORD}
    py_client = ("import os; from confluent_kafka.admin import AdminClient; "
                 "e = os.environ; print(sorted(AdminClient({'bootstrap.servers': e['KAFKA_BOOTSTRAP_SERVERS'], "
                 "'security.protocol': e['KAFKA_SECURITY_PROTOCOL'], 'ssl.ca.location': e['KAFKA_SSL_CA_LOCATION'], "
                 "'sasl.mechanism': e['KAFKA_SASL_MECHANISM'], 'sasl.username': e['KMF_SASL_USERNAME'], "
                 "'sasl.password': e['KMF_SASL_PASSWORD']}).list_topics(timeout=20).topics))")
    run = subprocess.run(launcher + [sys.executable, "-c", py_client], cwd=work, env=outside, capture_output=True,
                         text=True, timeout=90)
    assert run.returncode == 0 and "tls-t" in run.stdout, run.stdout + run.stderr
    from executor.runtime.kafka_dist import Mode
    from tests.helpers.fixtures_kafka import kafka_runtime
    java_client = ["java", "-cp", kafka_runtime(Mode.KRAFT).classpath, "org.apache.kafka.tools.ClusterTool",
                   "cluster-id", "--bootstrap-server", sasl_boot, "--config", "{properties}"]
    run = subprocess.run(launcher + java_client, cwd=work, env=outside, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and "Cluster ID:" in run.stdout, run.stdout + run.stderr
    assert stat.S_IMODE((work / "streams.properties").stat().st_mode) == 0o600  # it holds the password
    (tmp_path / "bob-password").write_text("bob-Pa55word-77\n")
    run = kmf_cli(s, "user", "create", "bob", "--password-file", str(tmp_path / "bob-password"))
    assert run.returncode == 0, run.stderr
    run = kmf_cli(s, "user", "list")
    assert run.returncode == 0, run.stderr
    assert {u["name"]: u["mechanisms"] for u in json.loads(run.stdout)} == \
        {"alice": ["SCRAM-SHA-512"], "bob": ["SCRAM-SHA-512"]}
    assert kmf_cli(s, "user", "delete", "bob").returncode == 0
    assert [u["name"] for u in s.get("/v1/users")] == ["alice"]

    # the broker's key and trust stores are private to the sandbox's owner
    stores = list(env.lm.base.glob("**/tls/keystore.pem")) + list(env.lm.base.glob("**/tls/truststore.pem"))
    assert len(stores) == 2 and all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in stores)
    broker_key = stores[0].read_text().split("-----END PRIVATE KEY-----")[0]

    # the CA key in ZooKeeper is the service's: no one else reads it
    base = f"{env.zk_root}/{env.name}"
    with zk_session(env.zk_connect) as stranger, pytest.raises(NoAuthError):
        stranger.get(f"{base}/tls/ca_key")

    # a broker moved to another agent gets a certificate for its new address
    old_host = s.pod("broker-0")["hostname"]
    env.lm.kill_agent(env.agent_index(old_host))
    moved_at = time.monotonic()

    def moved():
        p = s.pod("broker-0")
        return p if p.get("ready") and p["hostname"] != old_host else None
    new = wait_for(moved, timeout=180, interval=1, what="broker-0 ready on the other agent")
    print(f"broker-0 serving on the other agent {time.monotonic() - moved_at:.1f}s after its agent was killed")
    ep = s.get("/v1/endpoints/broker")
    new_boot = ep["tls"]["bootstrap_servers"]
    new_host, new_port = new_boot.split(":")
    assert new_host == new["hostname"] != old_host and ep["tls"]["ca_cert"] == cafile.read_text()
    assert ("IP Address", new_host) in peer_alt_names(new_host, int(new_port), str(cafile))
    assert s.request("POST", "/v1/topics", {"name": "moved-t", "partitions": 1}, token=TOKEN)[0] == 200
    assert produce_consume(_client(new_boot, str(cafile)), "moved-t", 20) == set(range(20))

    # no password or private key where kmf writes or shows things
    texts = {
        "master state": json.dumps(env.lm.get("/master/state")) + json.dumps(env.lm.get("/master/tasks")),
        "web page and API": urllib.request.urlopen(s.url + "/", timeout=10).read().decode()
        + json.dumps([s.get(p) for p in ("/v1/config/target", "/v1/pod/broker-0/info", "/v1/users",
                                         "/v1/state/properties", "/v1/endpoints/broker")]),
    }
    with zk_session(env.zk_connect, f"kmf:{ZK_PASSWORD}") as owner:
        ca_key = owner.get(f"{base}/tls/ca_key")[0].decode()
        # all but the CA key itself, behind the ACLs checked above
        dumps = node_texts(owner, base, skip=("/tls/ca_key",))
    texts["zookeeper"] = "\n".join(dumps)
    texts["scheduler log"] = s.log(10**7)
    texts["sandbox logs"] = "\n".join(p.read_text(errors="replace") for p in env.lm.base.glob("**/*")
                                      if p.is_file() and (p.name in ("stdout", "stderr")
                                                          or "kafka-logs" in p.parts))
    assert "BEGIN PRIVATE KEY" in broker_key and "BEGIN PRIVATE KEY" in ca_key
    for where, text in texts.items():
        for secret in (SCRAM_PASSWORD, "bob-Pa55word-77", TOKEN, ZK_PASSWORD, broker_key, ca_key):
            assert secret not in text, f"a secret ({secret[:12]}...) leaked into the {where}"
        assert "PRIVATE KEY" not in text, f"a private key leaked into the {where}"
