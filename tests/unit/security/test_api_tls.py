"""The API over HTTPS when a certificate is configured: a client that trusts its CA is served,
plain HTTP and untrusting clients are refused, and a silent client blocks nobody."""
from __future__ import annotations

import datetime
import socket
import ssl
import time
import urllib.error
import urllib.request

import pytest
from prometheus_client import CollectorRegistry

from scheduler.api.server import Api, ApiServer
from scheduler.shell.tls import CertificateAuthority
from tests.helpers.api_backend import Backend

pytestmark = pytest.mark.timeout(60)
NOW = datetime.datetime.now(datetime.timezone.utc)


@pytest.fixture
def https(tmp_path):
    ca = CertificateAuthority.create("api", NOW)
    chain, key = ca.issue("127.0.0.1", NOW)
    (tmp_path / "cert.pem").write_text(chain)
    (tmp_path / "key.pem").write_text(key)
    (tmp_path / "ca.pem").write_text(ca.cert_pem)
    server = ApiServer(Api(Backend(), CollectorRegistry(), "tok"), "127.0.0.1", 0,
                       tls=(str(tmp_path / "cert.pem"), str(tmp_path / "key.pem"))).start()
    yield server, str(tmp_path / "ca.pem")
    server.stop()


def test_api_is_served_over_tls_to_clients_that_trust_its_ca(https):
    server, cafile = https
    assert server.scheme == "https"
    ctx = ssl.create_default_context(cafile=cafile)
    with urllib.request.urlopen(f"https://127.0.0.1:{server.port}/v1/plans", context=ctx, timeout=10) as resp:
        assert resp.status == 200
    with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
        urllib.request.urlopen(f"https://127.0.0.1:{server.port}/v1/plans",
                               context=ssl.create_default_context(), timeout=10)
    with pytest.raises(OSError):  # plain HTTP gets no answer
        urllib.request.urlopen(f"http://127.0.0.1:{server.port}/v1/plans", timeout=10).read()


def test_a_silent_client_does_not_block_the_api(https):
    server, cafile = https
    silent = socket.create_connection(("127.0.0.1", server.port))
    try:
        started = time.monotonic()
        ctx = ssl.create_default_context(cafile=cafile)
        with urllib.request.urlopen(f"https://127.0.0.1:{server.port}/v1/health", context=ctx, timeout=10) as r:
            assert r.status in (200, 503)
        assert time.monotonic() - started < 5
    finally:
        silent.close()
