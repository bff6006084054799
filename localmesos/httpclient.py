"""The HTTP client calls localmesos makes: a POST of JSON on the internal master↔agent protocol
(docs/localmesos-internal.md), a GET of a JSON endpoint, and a health probe. Every process of the
local cluster (master, agents, command executors, the CLI) uses these; none hand-rolls its own.
"""
from __future__ import annotations

import http.client
import json
import urllib.parse
import urllib.request
from typing import Any


def post_json(url: str, name: str, body: dict[str, Any], timeout: float) -> tuple[int, dict[str, Any]]:
    """POST ``/internal/<name>``; returns (status, JSON answer). Raises OSError on I/O trouble."""
    parts = urllib.parse.urlsplit(url)
    if not parts.hostname:
        raise OSError(f"no host in {url!r}")
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        payload = json.dumps(body).encode()
        conn.request(
            "POST",
            f"/internal/{name}",
            body=payload,
            headers={"Content-Type": "application/json", "Connection": "close"},
        )
        resp = conn.getresponse()
        raw = resp.read()
        try:
            answer = json.loads(raw.decode() or "{}")
        except ValueError:
            answer = {"error": raw.decode(errors="replace")}
        return resp.status, answer if isinstance(answer, dict) else {}
    except (http.client.HTTPException, ValueError) as exc:
        raise OSError(str(exc)) from exc
    finally:
        conn.close()


def get_json(url: str, timeout: float = 2.0) -> Any:
    """GET ``url`` (redirects followed) and parse its JSON. Raises OSError (an HTTP error status
    included) or ValueError."""
    with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - local URLs only
        return json.loads(resp.read().decode())


def answers_ok(url: str, timeout: float | None) -> bool:
    """A health probe: does a GET of ``url`` answer 2xx or 3xx (as Mesos' and Marathon's HTTP
    health checks count it) within ``timeout``?"""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - local URLs only
            return 200 <= resp.status < 400
    except OSError:
        return False
