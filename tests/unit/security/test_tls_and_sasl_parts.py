"""The pure and local parts of Kafka TLS and SASL: config rules, certificate issuance, how the
core gives brokers their listener ports, the payload's TLS material, server.properties."""
from __future__ import annotations

import datetime
import ipaddress
import os
import stat

import pytest
from cryptography import x509

from config import ConfigError, check_update, load_text
from executor.runtime.broker_config import (
    BrokerConfigError,
    Listener,
    Security,
    ZkBroker,
    server_properties,
)
from executor.runtime.tls_files import write_tls_files
from executor.workloads import WorkloadError, broker_node
from kmfwire.taskdata import TaskData, TlsMaterial
from scheduler.api.security import endpoint_extras, parse_user
from scheduler.core.taskinfo import fingerprint
from scheduler.core.pods import pods_by_name
from scheduler.shell.tls import CertificateAuthority, TlsError, add_certificates
from tests.helpers.core_kit import BASE, spec, subscribed

NOW = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
SECURE = BASE.replace("placement: ['hostname:UNIQUE']}",
                      "placement: ['hostname:UNIQUE'], tls: {enabled: true, inter_broker: true}, "
                      "sasl: {enabled: true}}")


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return CertificateAuthority.create("kafka", NOW)


# --------------------------------------------------------------------------------------- config

@pytest.mark.parametrize("kafka, path", [
    ("tls: {inter_broker: true}", "kafka.tls.inter_broker"),
    ("tls: {enabled: true, ca_cert_file: /x.pem}", "kafka.tls.ca_cert_file"),
    ("tls: {ca_cert_file: /x.pem, ca_key_file: /y.pem}", "kafka.tls.ca_cert_file"),
    ("tls: {enabled: true, cert_days: 0}", "kafka.tls.cert_days"),
    ("sasl: {enabled: true, mechanism: PLAIN}", "kafka.sasl.mechanism"),
])
def test_bad_tls_and_sasl_settings_name_their_field_and_line(kafka, path):
    text = BASE.replace("placement: ['hostname:UNIQUE']}", "placement: ['hostname:UNIQUE'],\n  " + kafka + "}")
    with pytest.raises(ConfigError) as err:
        load_text(text, "t.yaml", env={})
    assert any(p.path == path and p.line == 5 for p in err.value.problems), err.value


def test_api_certificate_and_key_go_together():
    with pytest.raises(ConfigError, match="api.tls_cert_file"):
        load_text(BASE + "api: {tls_cert_file: /c.pem}\n", "t.yaml", env={})


def test_listeners_cannot_be_switched_in_place():
    reasons = check_update(spec(BASE), spec(SECURE))
    assert any(r.startswith("kafka.tls.enabled") for r in reasons)
    assert any(r.startswith("kafka.sasl.enabled") for r in reasons)


# -------------------------------------------------------------------------------- certificates

def test_issued_certificate_is_for_the_host_and_signed_by_the_ca(ca):
    for host, san in (("127.0.0.7", x509.IPAddress(ipaddress.ip_address("127.0.0.7"))),
                      ("agent-3.example", x509.DNSName("agent-3.example"))):
        chain, key = ca.issue(host, NOW, days=10)
        certs = x509.load_pem_x509_certificates(chain.encode())
        leaf, issuer = certs[0], certs[1]
        assert issuer.fingerprint(issuer.signature_hash_algorithm) == \
            x509.load_pem_x509_certificate(ca.cert_pem.encode()).fingerprint(issuer.signature_hash_algorithm)
        leaf.verify_directly_issued_by(issuer)
        assert leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value == \
            x509.SubjectAlternativeName([san])
        assert leaf.not_valid_after_utc - NOW <= datetime.timedelta(days=10)
        assert "BEGIN PRIVATE KEY" in key  # PKCS#8 unencrypted: what Kafka's PEM key store reads


def test_ca_files_are_checked(ca):
    other = CertificateAuthority.create("other", NOW)
    with pytest.raises(TlsError, match="does not belong"):
        CertificateAuthority.from_pem(ca.cert_pem, other.key_pem, "ca.pem")
    leaf, key = ca.issue("h", NOW)
    with pytest.raises(TlsError, match="not a CA"):
        CertificateAuthority.from_pem(leaf.split("-----END CERTIFICATE-----")[0] + "-----END CERTIFICATE-----\n",
                                      key, "leaf.pem")
    assert "key_pem" not in repr(ca) and ca.key_pem not in repr(ca)


# ------------------------------------------------------------------------- core: ports, payload

def _deployed():
    sim = subscribed(SECURE)
    return sim, sim.send.offers().launched("broker-0", "broker-1", "broker-2").launches


def test_brokers_reserve_a_port_per_listener_and_the_payload_names_them():
    sim, infos = _deployed()
    assert pods_by_name(sim.state.spec)["broker-0"].ports_needed == 5  # and the metrics exporter's
    for info in infos:
        b = TaskData.decode(info["data"]).broker
        ports = {b.broker_port, b.controller_port, b.tls_port, b.sasl_port, b.metrics_port}
        assert None not in ports and len(ports) == 5
        assert b.inter_broker_tls and b.sasl_mechanism == "SCRAM-SHA-512"
        assert b.tls is None  # the core issues nothing: the shell adds certificates at launch
        named = {p["name"]: p["number"] for p in info["discovery"]["ports"]["ports"]}
        assert named == {"broker": b.broker_port, "controller": b.controller_port, "tls": b.tls_port,
                         "sasl": b.sasl_port, "metrics": b.metrics_port}
        # the listeners keep the ports below the metrics one (a reservation from before the
        # metrics port maps its listeners the same)
        assert max(b.tls_port, b.sasl_port) < b.metrics_port
    extras = endpoint_extras(sim.state, "CA")
    assert len(extras["tls"]["address"]) == 3 and extras["tls"]["ca_cert"] == "CA"
    assert extras["sasl"]["security_protocol"] == "SASL_SSL"


def test_certificates_are_added_per_launch_for_the_agents_address(ca):
    sim, infos = _deployed()
    ops = add_certificates([{"type": "LAUNCH", "launch": {"task_infos": infos}}], ca, NOW, 30)
    for before, after in zip(infos, ops[0]["launch"]["task_infos"]):
        b = TaskData.decode(after["data"]).broker
        leaf = x509.load_pem_x509_certificate(b.tls.cert_chain.encode())
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address(b.host)]
        assert b.tls.ca_cert == ca.cert_pem and b.tls.key not in repr(b)
        pod = pods_by_name(sim.state.spec)[after["name"]]
        # issued material is not configuration: a relaunch with a new certificate is not "outdated"
        assert fingerprint(pod, TaskData.decode(after["data"])) == fingerprint(pod, TaskData.decode(before["data"]))
    again = add_certificates([{"type": "LAUNCH", "launch": {"task_infos": infos}}], ca, NOW, 30)
    assert TaskData.decode(again[0]["launch"]["task_infos"][0]["data"]).broker.tls.key != \
        TaskData.decode(ops[0]["launch"]["task_infos"][0]["data"]).broker.tls.key


def test_brokers_without_tls_keep_their_fingerprint_fields():
    sim = subscribed(BASE)
    doc = TaskData.decode(sim.send.offers().launches[0]["data"]).to_json()["broker"]
    assert doc["tls_port"] is None and doc["sasl_port"] is None
    assert endpoint_extras(sim.state, None) == {}


# ------------------------------------------------------------------------------------ executor

def test_tls_files_are_private(tmp_path, ca):
    chain, key = ca.issue("127.0.0.1", NOW)
    old = os.umask(0)
    try:
        keystore, truststore = write_tls_files(tmp_path, TlsMaterial(ca.cert_pem, chain, key))
    finally:
        os.umask(old)
    for path in (keystore, truststore):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert keystore.read_text().startswith("-----BEGIN PRIVATE KEY-----")


def test_server_properties_of_ssl_and_sasl_listeners(tmp_path):
    sim, infos = _deployed()
    b = TaskData.decode(infos[0]["data"]).broker
    props = server_properties(broker_node(b, tmp_path, (tmp_path / "k.pem", tmp_path / "t.pem")))
    assert props["inter.broker.listener.name"] == "SSL"
    assert f"SSL://{b.host}:{b.tls_port}" in props["advertised.listeners"]
    assert f"SASL_SSL://{b.host}:{b.sasl_port}" in props["advertised.listeners"]
    assert "CONTROLLER" not in props["advertised.listeners"]
    assert props["ssl.keystore.type"] == props["ssl.truststore.type"] == "PEM"
    assert props["ssl.keystore.location"] == str(tmp_path / "k.pem")
    assert props["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert "ScramLoginModule required" in props["listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config"]
    with pytest.raises(WorkloadError, match="no certificate"):
        broker_node(b, tmp_path, None)


def test_zookeeper_mode_broker_with_sasl_plaintext_only(tmp_path):
    node = ZkBroker(0, Listener("PLAINTEXT", "h", 9092), "z:2181/k", [tmp_path],
                    security=Security([Listener("SASL_PLAINTEXT", "h", 9093, "SASL_PLAINTEXT")],
                                      sasl_mechanism="SCRAM-SHA-256"))
    props = server_properties(node)
    assert props["inter.broker.listener.name"] == "PLAINTEXT"
    assert props["listener.security.protocol.map"] == "PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT"
    assert "ssl.keystore.location" not in props


@pytest.mark.parametrize("make, match", [
    (lambda: Security([Listener("SSL", "h", 1, "SSL")]), "keystore"),
    (lambda: Security([Listener("SASL_PLAINTEXT", "h", 1, "SASL_PLAINTEXT")]), "SCRAM"),
    (lambda: Security([Listener("SASL_PLAINTEXT", "h", 1, "SASL_PLAINTEXT")], sasl_mechanism="SCRAM-SHA-512",
                      inter_broker="SASL_PLAINTEXT"), "inter_broker"),
    (lambda: ZkBroker(0, Listener("PLAINTEXT", "h", 1), "z:1", ["/d"],
                      security=Security([Listener("PLAINTEXT", "h", 2)])), "reuse"),
])
def test_bad_security_settings_are_refused(make, match):
    with pytest.raises(BrokerConfigError, match=match):
        make()


# -------------------------------------------------------------------------------------- users

@pytest.mark.parametrize("doc, where", [
    ({"name": "alice"}, "password"),
    ({"name": "alice", "password": "short"}, "password"),
    ({"name": "a b", "password": "long enough"}, "name"),
    ({"name": "alice", "password": "long enough", "role": "admin"}, "unknown"),
])
def test_bad_user_requests_name_the_field_never_the_password(doc, where):
    with pytest.raises(ValueError) as err:
        parse_user(doc)
    assert str(err.value).startswith(where) and "long enough" not in str(err.value)


# --------------------------------------------------------------------------- the CA in ZooKeeper

class _FakeZk:
    """Enough of a KazooClient for `load_or_create_ca`: a dict of znodes with their ACLs."""

    def __init__(self) -> None:
        self.nodes: dict[str, tuple[bytes, object]] = {}

    def get(self, path):
        from kazoo.exceptions import NoNodeError
        if path not in self.nodes:
            raise NoNodeError(path)
        return self.nodes[path][0], None

    def ensure_path(self, path, acl=None):
        self.nodes.setdefault(path, (b"", acl))

    def transaction(self):
        zk, ops = self, []

        class Txn:
            def create(self, path, data, acl=None):
                ops.append((path, data, acl))

            def commit(self):
                for path, data, acl in ops:
                    zk.nodes[path] = (data, acl)
                return [path for path, _, _ in ops]
        return Txn()


def test_own_ca_is_made_once_with_the_service_acls_and_warned_about_without_them(caplog):
    from config import load_text as load
    from scheduler.shell.tls import kafka_ca
    zk, acl = _FakeZk(), ["digest-acl"]
    tls_spec = load(SECURE, "t.yaml", env={})
    first = kafka_ca(tls_spec, zk, "/kmf/kafka", acl)
    assert zk.nodes["/kmf/kafka/tls/ca_key"] == (first.key_pem.encode(), acl)
    assert kafka_ca(tls_spec, zk, "/kmf/kafka", acl) == first  # kept, not made again
    assert "readable by anyone" not in caplog.text
    kafka_ca(tls_spec, _FakeZk(), "/kmf/other", None)
    assert "without zookeeper.digest_user" in caplog.text


def test_cli_endpoints_show_the_tls_and_sasl_listeners_and_write_the_ca(monkeypatch, tmp_path, capsys):
    import argparse
    from kmf import operator_cli
    doc = {"bootstrap_servers": "h:1", "tls": {"security_protocol": "SSL", "bootstrap_servers": "h:2",
                                               "ca_cert": "-----BEGIN CERTIFICATE-----\n"},
           "sasl": {"security_protocol": "SASL_SSL", "bootstrap_servers": "h:3"}}
    monkeypatch.setattr(operator_cli, "call", lambda *a, **k: (200, doc))
    args = argparse.Namespace(name="broker", json=False, ca_file=str(tmp_path / "ca.pem"))
    assert operator_cli.endpoints(args) == 0
    out = capsys.readouterr().out
    assert "SSL        h:2" in out and "SASL_SSL   h:3" in out
    assert (tmp_path / "ca.pem").read_text() == doc["tls"]["ca_cert"]


def test_the_keeper_gives_each_phase_its_signer_and_trust_bundle():
    from scheduler.shell.tls import CaKeeper, CertificateAuthority
    old, new = CertificateAuthority.create("kafka", NOW), CertificateAuthority.create("kafka", NOW)
    keeper = CaKeeper.fixed(old)
    assert keeper.trust_bundle() == old.cert_pem and keeper.pick("current", ("current",)) == (old, old.cert_pem)
    keeper.next = new
    assert keeper.trust_bundle() == old.cert_pem + new.cert_pem  # what clients are given meanwhile
    assert keeper.pick("current", ("current", "next")) == (old, old.cert_pem + new.cert_pem)
    assert keeper.pick("next", ("current", "next")) == (new, old.cert_pem + new.cert_pem)
    keeper.next = None  # promoted before a restart: the CA is the next one, trusted once
    assert keeper.pick("next", ("current", "next")) == (old, old.cert_pem)


def test_cli_rotate_ca_posts_and_follows_the_plan(monkeypatch, capsys):
    from kmf import operator_cli
    from kmf.cli import build_parser
    calls = []
    plan = {"name": "ca-rotation", "strategy": "serial", "status": "COMPLETE", "phases": [
        {"name": "trust-both", "strategy": "serial", "status": "COMPLETE", "steps": []}]}

    def call(args, method, path, body=None):
        calls.append((method, path))
        return (200, {"message": "rotating the CA"}) if method == "POST" else (200, plan)
    monkeypatch.setattr(operator_cli, "call", call)
    args = build_parser().parse_args(["tls", "rotate-ca", "--wait", "--api", "http://x"])
    assert args.func(args) == 0
    assert calls == [("POST", "/v1/tls/rotate-ca"), ("GET", "/v1/plans/ca-rotation")]
    assert "rotating the CA" in capsys.readouterr().out
