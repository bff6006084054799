"""The project's one HTTP-JSON client: a request with a timeout whose error statuses come back as
answers, JSON GET and POST on top of it, a health probe and the auth headers.

Two transports, so that what each caller puts on the wire stays as it was: `request` goes through
urllib (redirects followed unless asked not to; urllib's own headers such as ``User-Agent``), and
`post` through http.client (exactly the headers the caller gives). Streams (the Mesos v1 subscribe
stream, the fetcher's downloads) are not this module's business.

A request that gets no HTTP answer raises `HttpError`, which is also an OSError, so that existing
``except OSError`` handlers keep catching it; its text is the text of the error underneath.
"""
from __future__ import annotations

import base64
import http.client
import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import attrs

from kmfwire.errors import KmfError


class HttpError(KmfError, OSError):
    """A request without a usable answer: refused, timed out, a broken response, or (`get_json`) an
    error status. ``reason`` is what urllib gave as the reason (else the error itself)."""

    def __init__(self, message: str, reason: object = None) -> None:
        super().__init__(message)
        self.reason = reason if reason is not None else message


@attrs.frozen
class Reply:
    """An HTTP answer: its status, its body as bytes, its ``Location`` header and reason phrase."""

    status: int
    body: bytes
    location: str | None = None
    reason: str = ""

    def json_or_text(self) -> Any:
        """The body decoded as JSON; its text when it is not JSON."""
        text = self.body.decode(errors="replace")
        try:
            return json.loads(text)
        except ValueError:
            return text


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Hand every 3xx back as an answer: urllib refuses to follow a 307 on POST/PUT/DELETE and
    follows one on GET without the body, so a caller that follows them itself asks for this."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def] # noqa: ANN001, ANN201
        return None


_FOLLOWING = urllib.request.build_opener()
_NOT_FOLLOWING = urllib.request.build_opener(_NoRedirect)


def request(url: str, method: str = "GET", data: bytes | None = None, headers: dict[str, str] | None = None,
            timeout: float | None = 5.0, follow_redirects: bool = True) -> Reply:
    """One request through urllib; any HTTP status (4xx/5xx, and 3xx when not following) is
    returned as a `Reply`. Raises `HttpError` when no answer comes."""
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    opener = _FOLLOWING if follow_redirects else _NOT_FOLLOWING
    try:
        with opener.open(req, timeout=timeout) as resp:
            return Reply(resp.status, resp.read(), resp.headers.get("Location"), resp.reason)
    except urllib.error.HTTPError as exc:
        return Reply(exc.code, exc.read(), exc.headers.get("Location") if exc.headers else None, str(exc.reason))
    except OSError as exc:  # URLError, a timeout, a reset
        raise HttpError(str(exc), getattr(exc, "reason", None) or exc) from exc


def get_json(url: str, timeout: float = 2.0) -> Any:
    """GET ``url`` (redirects followed) and parse its JSON. Raises `HttpError` (an OSError) when no
    answer comes or the status is not 2xx, ValueError when the body is not JSON."""
    reply = request(url, timeout=timeout)
    if not 200 <= reply.status < 300:
        raise HttpError(f"HTTP Error {reply.status}: {reply.reason}")
    return json.loads(reply.body.decode())


def answers_ok(url: str, timeout: float | None) -> bool:
    """A health probe: does a GET of ``url`` answer 2xx within ``timeout`` (3xx followed, as Mesos'
    and Marathon's HTTP health checks count a redirect)?"""
    try:
        return 200 <= request(url, timeout=timeout).status < 300
    except OSError:
        return False


def post(host: str, port: int | None, path: str, body: bytes, headers: dict[str, str], timeout: float,
         limit: int | None = None) -> Reply:
    """POST ``body`` to ``path`` on ``host:port`` through http.client, with exactly ``headers``;
    reads at most ``limit`` bytes of the answer (all without one). A failed connection raises its
    own OSError (e.g. ConnectionRefusedError); a broken answer raises `HttpError`."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        try:
            conn.request("POST", path, body=body, headers=headers)
            resp = conn.getresponse()
            return Reply(resp.status, resp.read() if limit is None else resp.read(limit), resp.getheader("Location"),
                         resp.reason)
        finally:
            conn.close()
    except (http.client.HTTPException, ValueError) as exc:
        raise HttpError(str(exc)) from exc


def post_json(url: str, name: str, body: dict[str, Any], timeout: float) -> tuple[int, dict[str, Any]]:
    """POST JSON to ``/internal/<name>`` (localmesos' master↔agent protocol,
    docs/localmesos-internal.md); returns (status, JSON answer). Raises OSError on I/O trouble."""
    parts = urllib.parse.urlsplit(url)
    if not parts.hostname:
        raise HttpError(f"no host in {url!r}")
    reply = post(parts.hostname, parts.port, f"/internal/{name}", json.dumps(body).encode(),
                 {"Content-Type": "application/json", "Connection": "close"}, timeout)
    try:
        answer = json.loads(reply.body.decode() or "{}")
    except ValueError:
        answer = {"error": reply.body.decode(errors="replace")}
    return reply.status, answer if isinstance(answer, dict) else {}


def bearer(token: str) -> dict[str, str]:
    """The header of a bearer token (kmf's API)."""
    return {"Authorization": f"Bearer {token}"}


def basic(principal: str, secret: str) -> dict[str, str]:
    """The header of HTTP basic authentication (a Mesos master's framework credentials)."""
    pair = f"{principal}:{secret}".encode()
    return {"Authorization": "Basic " + base64.b64encode(pair).decode()}
