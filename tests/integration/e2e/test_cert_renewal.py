"""Broker certificates renewed before they expire: a service with short-lived certificates restarts
each broker (gated) for a new one before the old one expires; the certificate each broker serves is
never expired, TLS clients running throughout never fail verification, and
kmf_certificate_expiry_seconds shows each certificate's remaining time.

`make test` runs it on one broker; `make chaos` (KMF_CHAOS_FULL=1) on three."""
from __future__ import annotations

import os
import socket
import ssl
import threading
import time
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers.wait import wait_for

pytestmark = [pytest.mark.timeout(600), pytest.mark.kafka]
FULL = os.environ.get("KMF_CHAOS_FULL") == "1"
# brokers: (validity, renew_before) in seconds. Renewal starts validity - renew_before after a
# launch; renew_before must cover renewing every broker one at a time (about 30 s each here), or
# the last one would wait past its expiry
TIMES = {1: (90.0, 60.0), 3: (300.0, 240.0)}


def served_certificate(host: str, port: int, cafile: str) -> tuple[str, float]:
    """(serial, notAfter as epoch seconds) of the certificate the broker serves, verified with `cafile`."""
    ctx = ssl.create_default_context(cafile=cafile)
    with socket.create_connection((host, port), timeout=5) as raw, ctx.wrap_socket(raw, server_hostname=host) as tls:
        cert = tls.getpeercert()
    return cert["serialNumber"], ssl.cert_time_to_seconds(cert["notAfter"])


@pytest.mark.parametrize("brokers", [
    1, pytest.param(3, marks=pytest.mark.skipif(not FULL, reason="part of make chaos (KMF_CHAOS_FULL=1)"))])
def test_certificates_are_renewed_before_expiry_with_clients_never_failing_verification(kmf_env, tmp_path, brokers):
    from confluent_kafka import Producer
    validity, renew_before = TIMES[brokers]
    env = kmf_env(agents=brokers)
    config = env.config(brokers=brokers, tls={"enabled": True, "inter_broker": True,
                                             "cert_days": validity / 86400, "renew_before_days": renew_before / 86400})
    s = env.start_scheduler(config=config)
    s.wait_deployed()
    ep = s.get("/v1/endpoints/broker")["tls"]
    cafile = tmp_path / "ca.pem"
    cafile.write_text(ep["ca_cert"])
    addresses = [(h, int(p)) for h, p in (a.split(":") for a in ep["bootstrap_servers"].split(","))]
    code, doc = s.request("POST", "/v1/topics", {"name": "renew", "partitions": 3, "replication": brokers})
    assert code == 200, doc

    seen: dict[tuple[str, int], list[tuple[float, str, float]]] = {a: [] for a in addresses}  # (asked, serial, notAfter)
    tls_errors: list[str] = []
    acked = [0]
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            for addr in addresses:
                try:
                    serial, not_after = served_certificate(*addr, str(cafile))
                    seen[addr].append((time.time(), serial, not_after))
                except ssl.SSLCertVerificationError as exc:  # what must never happen
                    tls_errors.append(f"{addr}: {exc}")
                except OSError:
                    pass  # the broker is restarting (refused, reset, or EOF in the handshake)
            time.sleep(1)

    def produce() -> None:
        def on_error(err) -> None:
            # a broker restarting mid-handshake is a transport error; a certificate the client
            # does not accept (expired, or signed by another CA) fails verification
            text = str(err).lower()
            if "verify failed" in text or "certificate" in text and "expired" in text:
                tls_errors.append(str(err))
        p = Producer({"bootstrap.servers": ep["bootstrap_servers"], "security.protocol": "SSL",
                      "ssl.ca.location": str(cafile), "acks": "all", "enable.idempotence": True,
                      "error_cb": on_error, "log_level": 0})
        while not stop.is_set():
            p.produce("renew", b"x", on_delivery=lambda e, m: e is None and acked.__setitem__(0, acked[0] + 1))
            p.poll(0.05)
        p.flush(30)
    threads = [threading.Thread(target=f, daemon=True) for f in (watch, produce)]
    for t in threads:
        t.start()
    first = {f"broker-{i}": s.pod(f"broker-{i}")["task_id"] for i in range(brokers)}
    try:
        def all_renewed() -> bool:
            return all(len({serial for _, serial, _ in seen[a]}) >= 2 for a in addresses)
        wait_for(all_renewed, timeout=validity + 60 * brokers + 120, interval=2, what="every broker serving a renewed certificate")
    finally:
        stop.set()
        for t in threads:
            t.join(40)
    assert not tls_errors, tls_errors[:5]
    for addr, samples in seen.items():
        expired = [(asked, not_after) for asked, _, not_after in samples if not_after <= asked]
        assert not expired, f"{addr} served an expired certificate: {expired[:3]}"
        serials = [serial for _, serial, _ in samples]
        old, new = serials[0], serials[-1]
        assert old != new
        old_after = max(na for _, sr, na in samples if sr == old)
        new_seen = min(asked for asked, sr, _ in samples if sr != old)
        assert new_seen < old_after, f"{addr}: the new certificate came only after the old one expired"
    assert acked[0] > 0
    assert all(s.pod(p)["task_id"] != tid for p, tid in first.items())  # restarted in place for it

    def expiry_metrics() -> dict[str, float] | None:
        # a broker between two tasks (renewed again already: the certificates are short-lived
        # here) serves no certificate and has no sample until its next task is launched
        text = urllib.request.urlopen(s.url + "/metrics", timeout=10).read().decode()
        found = {x.labels["pod"]: x.value for fam in text_string_to_metric_families(text) for x in fam.samples
                 if x.name == "kmf_certificate_expiry_seconds"}
        return found if set(found) == {*(f"broker-{i}" for i in range(brokers)), "ca"} else None
    expiry = wait_for(expiry_metrics, timeout=60, interval=1, what="kmf_certificate_expiry_seconds of every broker and the CA")
    assert all(0 < v <= validity for p, v in expiry.items() if p != "ca") and expiry["ca"] > 86400 * 365
    print(f"certificate renewal e2e ({brokers} broker(s)): {acked[0]} records acknowledged over TLS, "
          f"{sum(len(v) for v in seen.values())} certificate samples, none expired")
