"""GET/HEAD /v1/artifacts/<sha256>/<file> through the real HTTP server: content-addressed, streamed
with a right Content-Length, no token needed, 404 for what it does not serve."""
from __future__ import annotations

import hashlib
import http.client
import os
import time

import pytest
from prometheus_client import CollectorRegistry

from kmfwire import artifacts as names
from scheduler.api.server import Api, ApiServer
from scheduler.shell import artifacts as served_artifacts
from tests.helpers.api_backend import Backend
from tests.helpers.wait import wait_for

pytestmark = pytest.mark.timeout(60)
TOKEN = "secret-token"


@pytest.fixture
def files(tmp_path):
    bundle = tmp_path / names.bundle_file()
    bundle.write_bytes(os.urandom(3 << 20) + b"end")  # larger than one streamed chunk
    kafka = tmp_path / "kafka-4.3.1.tar.gz"
    kafka.write_bytes(b"kafka archive")
    (tmp_path / "other.txt").write_text("not served")
    return tmp_path


@pytest.fixture
def server(files):
    table = served_artifacts.find(files)
    api = Api(Backend(), CollectorRegistry(), TOKEN, artifacts=table)
    srv = ApiServer(api, "127.0.0.1", 0).start()
    srv.api = api  # the tests read its download counts
    yield srv, table
    srv.stop()


def request(srv, method, path):
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    conn.request(method, path)
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp, body


def test_find_serves_the_bundle_for_this_python_and_every_kafka_archive(files):
    table = served_artifacts.find(files)
    assert sorted(f.name for f in table.values()) == sorted([names.bundle_file(), "kafka-4.3.1.tar.gz"])
    for sha, item in table.items():
        assert hashlib.sha256(item.path.read_bytes()).hexdigest() == sha


def test_get_streams_the_file_by_its_sha256_without_a_token(server, files):
    srv, table = server
    for sha, item in table.items():
        resp, body = request(srv, "GET", f"/v1/artifacts/{sha}/{item.name}")
        assert resp.status == 200
        assert int(resp.getheader("Content-Length")) == item.size == len(body)
        assert hashlib.sha256(body).hexdigest() == sha
        assert "immutable" in resp.getheader("Cache-Control")


def test_head_gives_the_headers_only_and_only_gets_count_as_downloads(server):
    srv, table = server
    sha, item = next((s, i) for s, i in table.items() if i.name == names.bundle_file())
    resp, body = request(srv, "HEAD", f"/v1/artifacts/{sha}/{item.name}")
    assert resp.status == 200 and body == b"" and int(resp.getheader("Content-Length")) == item.size
    assert srv.api.artifact_requests == {}
    request(srv, "GET", f"/v1/artifacts/{sha}/{item.name}")
    # counted once the last byte went out, on the server's thread: the client may have it first
    wait_for(lambda: srv.api.artifact_requests == {item.name: 1}, timeout=10, what="the download counted")
    assert srv.api.artifact_requests == {item.name: 1}


@pytest.mark.parametrize("path", [
    "/v1/artifacts/" + "0" * 64 + "/kafka-4.3.1.tar.gz",  # unknown hash
    "/v1/artifacts/{kafka}/other.txt",  # a known hash under another name
    "/v1/artifacts/not-a-hash/kafka-4.3.1.tar.gz",
])
def test_unknown_is_404(server, path):
    srv, table = server
    kafka = next(s for s, i in table.items() if i.name == "kafka-4.3.1.tar.gz")
    resp, body = request(srv, "GET", path.format(kafka=kafka))
    assert resp.status == 404 and b"no artifact" in body
    resp, body = request(srv, "HEAD", path.format(kafka=kafka))
    assert resp.status == 404 and body == b""


def test_a_file_replaced_or_removed_since_the_start_is_served_as_it_was(server):
    srv, table = server
    sha, item = next((s, i) for s, i in table.items() if i.name == "kafka-4.3.1.tar.gz")
    new = item.path.with_name("new.tmp")
    new.write_bytes(b"rebuilt by make setup")
    os.replace(new, item.path)  # as tools/artifacts.sh replaces an archive
    resp, body = request(srv, "GET", f"/v1/artifacts/{sha}/{item.name}")
    assert resp.status == 200 and body == b"kafka archive" and hashlib.sha256(body).hexdigest() == sha
    item.path.unlink()
    resp, body = request(srv, "GET", f"/v1/artifacts/{sha}/{item.name}")
    assert resp.status == 200 and body == b"kafka archive"


def test_the_sha256_file_of_setup_is_trusted_only_when_not_older(files):
    kafka = files / "kafka-4.3.1.tar.gz"
    side = files / "kafka-4.3.1.tar.gz.sha256"
    side.write_text(f"{'f' * 64}  kafka-4.3.1.tar.gz\n")
    assert served_artifacts.sha256_of(kafka) == "f" * 64  # written after the file: not hashed again
    past = time.time() - 100
    os.utime(side, (past, past))
    assert served_artifacts.sha256_of(kafka) == hashlib.sha256(kafka.read_bytes()).hexdigest()


def test_served_urls_use_the_advertised_address(files):
    table = served_artifacts.find(files)
    view = served_artifacts.served(table, "http://10.1.2.3:31000/")
    assert view.bundle.uri.startswith("http://10.1.2.3:31000/v1/artifacts/")
    assert view.bundle.folder == names.bundle_name() and view.kafka["4.3.1"].folder == "kafka"
    assert view.kafka["4.3.1"].uri.endswith("/kafka-4.3.1.tar.gz")
