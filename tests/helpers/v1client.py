"""A raw v1 scheduler API client for conformance tests: what a client on the wire sees, with no
driver in between, so the same script runs against localmesos and Apache Mesos.

``V1Scheduler(master_url, name).subscribe()`` opens the SUBSCRIBE stream (RecordIO over chunked
HTTP) in a thread that records every event; ``call(type, **body)`` posts any other call with the
stream id; ``wait(type, pred)`` polls the recorded events.
"""
from __future__ import annotations

import http.client
import json
import threading
import time
import urllib.error
import urllib.request
from typing import Any, Callable
from urllib.parse import urlsplit

from tests.helpers.wait import wait_for


def http_request(url: str, method: str = "GET", body: bytes | None = None,
                 headers: dict[str, str] | None = None, timeout: float = 10.0
                 ) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of one request; HTTP errors are answers, not exceptions."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - local URLs
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def post_json(url: str, doc: Any, timeout: float = 10.0) -> tuple[int, bytes]:
    status, _, body = http_request(url, "POST", json.dumps(doc).encode(),
                                   {"Content-Type": "application/json",
                                    "Accept": "application/json"}, timeout)
    return status, body


class V1Scheduler:
    def __init__(self, master_url: str, name: str = "conformance", role: str = "*",
                 principal: str | None = None, capabilities: tuple[str, ...] = ()) -> None:
        self.url = master_url.rstrip("/") + "/api/v1/scheduler"
        self.info: dict[str, Any] = {"user": "root", "name": name, "roles": [role],
                                     "capabilities": [{"type": "MULTI_ROLE"}]
                                     + [{"type": c} for c in capabilities],
                                     "failover_timeout": 0.0}
        if principal:
            self.info["principal"] = principal
        self.events: list[dict[str, Any]] = []
        self.framework_id: str | None = None
        self.stream_id: str | None = None
        self._conn: http.client.HTTPConnection | None = None
        self._lock = threading.Lock()
        self._offer_mark = 0  # index of the first event offer() still looks at

    # ------------------------------------------------------------------ stream
    def subscribe(self, timeout: float = 30.0) -> "V1Scheduler":
        parts = urlsplit(self.url)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
        body = json.dumps({"type": "SUBSCRIBE", "subscribe": {"framework_info": self.info}})
        conn.request("POST", parts.path, body, {"Content-Type": "application/json",
                                                "Accept": "application/json"})
        resp = conn.getresponse()
        if resp.status != 200:
            raise AssertionError(f"SUBSCRIBE answered {resp.status}: {resp.read()!r}")
        self._conn = conn
        self.stream_id = resp.getheader("Mesos-Stream-Id")
        threading.Thread(target=self._read, args=(resp,), daemon=True).start()
        subscribed = self.wait("SUBSCRIBED", timeout=timeout)[0]
        self.framework_id = subscribed["subscribed"]["framework_id"]["value"]
        return self

    def _read(self, resp: http.client.HTTPResponse) -> None:
        try:
            while True:
                line = resp.readline()
                if not line:
                    return
                size = int(line.strip())
                event = json.loads(resp.read(size))
                with self._lock:
                    self.events.append(event)
        except (OSError, ValueError, AttributeError, http.client.HTTPException):
            return  # the stream ended (AttributeError: http.client after close())

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # ------------------------------------------------------------------ calls
    def call(self, kind: str, body: dict[str, Any] | None = None, expect: int | None = 202) -> int:
        call: dict[str, Any] = {"type": kind, "framework_id": {"value": self.framework_id}}
        if body is not None:
            call[kind.lower()] = body
        status, _, answer = http_request(
            self.url, "POST", json.dumps(call).encode(),
            {"Content-Type": "application/json", "Mesos-Stream-Id": self.stream_id or ""})
        if expect is not None and status != expect:
            raise AssertionError(f"{kind} answered {status}: {answer!r}")
        return status

    def accept(self, offer_id: dict[str, Any], operations: list[dict[str, Any]]) -> None:
        self.call("ACCEPT", {"offer_ids": [offer_id], "operations": operations,
                             "filters": {"refuse_seconds": 0.0}})

    def acknowledge(self, status: dict[str, Any]) -> None:
        if status.get("uuid"):
            self.call("ACKNOWLEDGE", {"agent_id": status["agent_id"], "task_id": status["task_id"],
                                      "uuid": status["uuid"]})

    # ------------------------------------------------------------------ reading events
    def of(self, kind: str) -> list[dict[str, Any]]:
        with self._lock:
            return [e for e in self.events if e.get("type") == kind]

    def types(self) -> list[str]:
        with self._lock:
            return [e["type"] for e in self.events]

    def wait(self, kind: str, pred: Callable[[dict[str, Any]], bool] = lambda e: True,
             timeout: float = 30.0, count: int = 1) -> list[dict[str, Any]]:
        def probe() -> list[dict[str, Any]] | None:
            found = [e for e in self.of(kind) if pred(e)]
            return found if len(found) >= count else None
        return wait_for(probe, timeout=timeout, what=f"{count} {kind} event(s)")

    def updates(self, task_id: str | None = None) -> list[dict[str, Any]]:
        return [e["update"]["status"] for e in self.of("UPDATE")
                if task_id is None or e["update"]["status"]["task_id"]["value"] == task_id]

    def wait_state(self, task_id: str, state: str, timeout: float = 60.0,
                   ack: bool = True) -> dict[str, Any]:
        """The first update of ``task_id`` into ``state``, acknowledging every update on the way."""
        acked: set[str] = set()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for status in self.updates(task_id):
                if ack and status.get("uuid") and status["uuid"] not in acked:
                    acked.add(status["uuid"])
                    self.acknowledge(status)
                if status["state"] == state:
                    return status
            time.sleep(0.1)
        raise AssertionError(f"task {task_id} never reached {state}: "
                             f"{[s['state'] for s in self.updates(task_id)]}")

    def offer(self, timeout: float = 30.0, pred: Callable[[dict[str, Any]], bool] = lambda o: True
              ) -> dict[str, Any]:
        """The first offer that ``pred`` accepts among those that came after the offer returned
        last time (older ones may be stale: used, declined or rescinded). Every other offer on
        the way is declined, as a well-behaved scheduler does, so nothing stays held."""
        def probe() -> tuple[int, dict[str, Any]] | None:
            with self._lock:
                events = list(enumerate(self.events))[self._offer_mark:]
            for index, event in events:
                if event.get("type") != "OFFERS":
                    continue
                for offer in event["offers"].get("offers", []):
                    if pred(offer):
                        return index, offer
            return None
        index, offer = wait_for(probe, timeout=timeout, what="an offer")
        with self._lock:
            skipped = [o["id"] for e in self.events[self._offer_mark:index + 1]
                       if e.get("type") == "OFFERS" for o in e["offers"].get("offers", [])
                       if o["id"] != offer["id"]]
        if skipped:
            self.call("DECLINE", {"offer_ids": skipped, "filters": {"refuse_seconds": 0.0}},
                      expect=None)
        self._offer_mark = index + 1
        return offer
