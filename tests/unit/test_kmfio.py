"""kmfio.httpjson, the project's one HTTP-JSON client, against a real HTTP server on port 0: error
statuses come back as answers, redirects are followed or handed back, a request that gets no answer
raises HttpError (an OSError and a KmfError) with the text of the error underneath, and what each
transport puts on the wire."""
from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator

import pytest

from kmfio import httpjson
from kmfio.httpjson import HttpError
from kmfwire.errors import KmfError

pytestmark = pytest.mark.timeout(60)


class Handler(BaseHTTPRequestHandler):
    seen: list[tuple[str, str, dict[str, str], bytes]] = []

    def log_message(self, *args: Any) -> None:
        pass

    def _answer(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        Handler.seen.append((self.command, self.path, dict(self.headers), body))
        if self.path == "/moved":
            self.send_response(307)
            self.send_header("Location", "/json")
            self.end_headers()
            return
        status, payload = {"/json": (200, b'{"a": 1}'), "/text": (200, b"plain"),
                           "/missing": (404, b'{"error": "no such thing"}')}.get(self.path, (500, b"boom"))
        self.send_response(status)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = _answer


@pytest.fixture
def server() -> Iterator[str]:
    Handler.seen = []
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_error_statuses_are_answers_and_redirects_are_followed_or_handed_back(server):
    assert httpjson.request(server + "/missing").status == 404
    assert httpjson.request(server + "/missing").json_or_text() == {"error": "no such thing"}
    assert httpjson.request(server + "/text").json_or_text() == "plain"
    assert httpjson.request(server + "/moved").json_or_text() == {"a": 1}
    kept = httpjson.request(server + "/moved", "POST", b"{}", follow_redirects=False)
    assert (kept.status, kept.location) == (307, "/json")


def test_get_json_raises_on_an_error_status_with_urllibs_text(server):
    assert httpjson.get_json(server + "/json") == {"a": 1}
    with pytest.raises(OSError, match=r"^HTTP Error 404: Not Found$"):
        httpjson.get_json(server + "/missing")
    with pytest.raises(ValueError):
        httpjson.get_json(server + "/text")


def test_the_health_probe(server):
    assert httpjson.answers_ok(server + "/json", 5) is True
    assert httpjson.answers_ok(server + "/missing", 5) is False
    assert httpjson.answers_ok(f"http://127.0.0.1:{closed_port()}/", 5) is False


def test_no_answer_is_an_http_error_with_the_text_and_reason_underneath():
    with pytest.raises(HttpError) as caught:
        httpjson.request(f"http://127.0.0.1:{closed_port()}/json")
    assert isinstance(caught.value, OSError) and isinstance(caught.value, KmfError)
    assert str(caught.value).startswith("<urlopen error [Errno 111]")
    assert isinstance(caught.value.reason, ConnectionRefusedError)


def test_post_json_sends_exactly_its_headers_and_keeps_connection_errors(server):
    status, answer = httpjson.post_json(server, "ping", {"x": 1}, 5)
    assert (status, answer) == (500, {"error": "boom"})
    method, path, headers, body = Handler.seen[-1]
    assert (method, path, json.loads(body)) == ("POST", "/internal/ping", {"x": 1})
    assert {k.lower() for k in headers} == {"host", "accept-encoding", "content-type", "connection", "content-length"}
    with pytest.raises(ConnectionRefusedError):
        httpjson.post_json(f"http://127.0.0.1:{closed_port()}", "ping", {}, 5)
    with pytest.raises(OSError, match="no host"):
        httpjson.post_json("/no/host", "ping", {}, 5)


def test_post_reads_at_most_its_limit_and_the_auth_headers(server):
    host, port = server.removeprefix("http://").split(":")
    reply = httpjson.post(host, int(port), "/missing", b"{}", httpjson.basic("kmf", "s3cret"), 5, limit=4)
    assert (reply.status, reply.body) == (404, b'{"er')
    assert Handler.seen[-1][2]["Authorization"] == "Basic a21mOnMzY3JldA=="
    assert httpjson.bearer("t0k") == {"Authorization": "Bearer t0k"}
