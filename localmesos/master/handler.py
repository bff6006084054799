"""HTTP request handling of the master: scheduler API (with its SUBSCRIBE stream), internal
agent API, read-only endpoints and the web UI. Decisions go to the core through
:meth:`MasterServer.run`."""
from __future__ import annotations

import base64
import json
import logging
import queue
import select
import socket
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable
from urllib.parse import parse_qs, urlsplit

from . import accept as accept_ops
from . import agents_core, maintenance, views
from .calls import parse_call, validate_call
from .core import refuse_seconds
from .model import id_of

if TYPE_CHECKING:
    from .server import MasterServer

log = logging.getLogger(__name__)
WEB_DIR = Path(__file__).resolve().parent.parent / "web"
CLOSE = object()
MAINTENANCE_ENDPOINTS = {"/maintenance/schedule": ("GET", "POST"), "/maintenance/status": ("GET",),
                         "/machine/down": ("POST",), "/machine/up": ("POST",)}
# localmesos' v1 APIs speak JSON only (no v1 protobuf messages are available to it), so unlike
# Mesos it refuses application/x-protobuf too, and says so.
JSON_ONLY = ("Expecting 'Content-Type' of application/json (localmesos' v1 APIs are JSON-only: "
             "application/x-protobuf is not supported)")


def record(event: dict[str, Any]) -> bytes:
    data = json.dumps(event, separators=(",", ":")).encode()
    return str(len(data)).encode() + b"\n" + data



class MasterHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    master: MasterServer


class MasterHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: MasterHTTPServer

    def log_message(self, fmt: str, *args: Any) -> None:  # noqa: D401 - quiet access log
        log.debug("%s %s", self.address_string(), fmt % args)

    @property
    def master(self) -> MasterServer:
        return self.server.master

    # ------------------------------------------------------------------ plumbing
    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _reply(self, status: int, body: bytes = b"", ctype: str | None = None,
               headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        if ctype and body:
            self.send_header("Content-Type", ctype)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def _text(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        self._reply(status, message.encode(), "text/plain; charset=utf-8", headers)

    def _json(self, data: Any, query: dict[str, str]) -> None:
        text = json.dumps(data)
        callback = query.get("jsonp")
        if callback:
            self._reply(200, f"{callback}({text})".encode(), "text/javascript")
        else:
            self._reply(200, text.encode(), "application/json")

    def _redirect_or_503(self, path: str) -> bool:
        """False when this master leads; otherwise answers 307 / 503 and returns True."""
        master = self.master
        if master.elected:
            return False
        leader = master.leader
        if leader is None:
            self._text(503, "No leader elected")
            return True
        address = leader.get("address") or {}
        host = leader.get("hostname") or address.get("hostname") or address.get("ip")
        self._reply(307, headers={"Location": f"//{host}:{leader.get('port')}{path}"})
        return True

    def _authenticated(self) -> tuple[bool, str | None]:
        creds = self.master.credentials
        if creds is None:
            return True, None
        header = self.headers.get("Authorization", "")
        if header.startswith("Basic "):
            try:
                user, _, secret = base64.b64decode(header[6:]).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return False, None
            if creds.get(user) == secret:
                return True, user
        return False, None

    # ------------------------------------------------------------------ dispatch
    def do_GET(self) -> None:
        self._route()

    def do_POST(self) -> None:
        self._route()

    def do_PUT(self) -> None:
        self._route()

    def do_DELETE(self) -> None:
        self._route()

    def do_HEAD(self) -> None:
        self._route()

    def _route(self) -> None:
        parts = urlsplit(self.path)
        path = parts.path
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        try:
            if path in ("/api/v1/scheduler", "/master/api/v1/scheduler"):
                self._scheduler()
            elif path in ("/api/v1", "/master/api/v1"):
                self._operator()
            elif path.startswith("/internal/"):
                self._internal(path[len("/internal/"):])
            else:
                self._readonly(path, query)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    # ------------------------------------------------------------------ read-only endpoints
    def _readonly(self, path: str, query: dict[str, str]) -> None:
        master = self.master
        if path == "/version":
            return self._json(
                {"version": views.VERSION, **views.BUILD, "git_tag": views.VERSION}, query
            )
        if path in ("/master/health", "/health"):
            return self._reply(200)
        if path in ("/metrics/snapshot",):
            with master.lock:
                data = views.metrics(master.core, master.elected, time.time())
            return self._json(data, query)
        if path in ("/master/redirect", "/redirect"):
            leader = master.leader
            if leader is None:
                return self._text(503, "No leader elected")
            host = leader.get("hostname") or leader.get("address", {}).get("ip")
            return self._reply(307, headers={"Location": f"//{host}:{leader.get('port')}"})
        if path.startswith("/files/"):
            return self._files(path[len("/files/"):], query)
        name = path[len("/master"):] if path.startswith("/master/") else path
        if name == "/" or name == "/index.html" or name.startswith("/static/"):
            return self._web(name)
        if name in MAINTENANCE_ENDPOINTS:
            return self._maintenance(name, query)
        endpoints = {
            "/state": lambda: views.state(master.core, master.leader, master.flags,
                                          master.elected_time),
            "/state.json": lambda: views.state(master.core, master.leader, master.flags,
                                               master.elected_time),
            "/frameworks": lambda: views.frameworks(master.core, query.get("framework_id")),
            "/slaves": lambda: views.slaves(master.core, query.get("slave_id")),
            "/tasks": lambda: views.tasks(master.core, query),
            "/state-summary": lambda: views.state_summary(master.core),
            "/roles": lambda: views.roles(master.core),
            "/flags": lambda: {"flags": master.flags},
        }
        if name not in endpoints:
            return self._text(404, f"No endpoint {path} on this master")
        if name not in ("/flags",) and self._redirect_or_503(self.path):
            return None
        try:
            with master.lock:
                data = endpoints[name]()
        except ValueError as exc:
            return self._text(400, str(exc))
        return self._json(data, query)

    def _files(self, op: str, query: dict[str, str]) -> None:
        """Mesos' files endpoints on the master: the one attached file, ``/master/log`` (the
        master's log in ``--log_dir``; without the flag nothing is attached, as in Mesos)."""
        log_dir = self.master.flags.get("log_dir")
        attached = {"/master/log": str(Path(log_dir) / "mesos-master.INFO")} if log_dir else {}
        if op == "debug":
            return self._json(attached, query)
        if op not in ("read", "download", "browse"):
            return self._text(404, f"No endpoint /files/{op} on this master")
        raw = query.get("path")
        if not raw:
            return self._text(400, "Expecting 'path=value' in query")
        real = attached.get(raw.rstrip("/"))
        if real is None or not Path(real).is_file():
            return self._text(404, "File not found")
        if op == "browse":
            return self._text(400, "Cannot browse a file")
        data = Path(real).read_bytes()
        if op == "download":
            return self._reply(200, data, "application/octet-stream")
        try:
            offset = int(query.get("offset", -1))
            length = int(query.get("length", -1))
        except ValueError:
            return self._text(400, "Failed to parse offset or length")
        if offset < 0:  # Mesos: the size, with no data, for a reader to start tailing from
            return self._json({"data": "", "offset": len(data)}, query)
        end = len(data) if length < 0 else min(len(data), offset + length)
        return self._json({"data": data[offset:end].decode("utf-8", "replace"), "offset": offset},
                          query)

    def _maintenance(self, name: str, query: dict[str, str]) -> None:
        """/master/maintenance/{schedule,status}, /master/machine/{down,up} (Mesos' words)."""
        master = self.master
        body = self._body() if self.command in ("POST", "PUT") else b""
        if self._redirect_or_503(self.path):
            return None
        allowed = MAINTENANCE_ENDPOINTS[name]
        if self.command not in allowed:
            listed = ", ".join(f"'{m}'" for m in allowed)
            return self._text(405, f"Expecting one of {{ {listed} }}, but received '{self.command}'",
                              {"Allow": ", ".join(allowed)})
        if self.command == "GET":
            with master.lock:
                data = (maintenance.get_schedule(master.core) if name == "/maintenance/schedule"
                        else maintenance.status(master.core))
            return self._json(data, query)
        try:
            doc = json.loads(body.decode() or "null")
        except ValueError as exc:
            return self._text(400, str(exc))
        try:
            if name == "/maintenance/schedule":
                master.run(maintenance.update_schedule, master.core, doc, time.time())
            else:
                keys = maintenance.machine_keys(doc)
                if name == "/machine/down":
                    master.run(maintenance.machine_down, master.core, keys, time.time())
                else:
                    master.run(maintenance.machine_up, master.core, keys)
        except maintenance.MaintenanceError as exc:
            return self._text(400, str(exc))
        return self._reply(200)

    def _web(self, name: str) -> None:
        rel = "index.html" if name in ("/", "/index.html") else name[len("/static/"):]
        target = (WEB_DIR / rel).resolve()
        if WEB_DIR.resolve() not in target.parents or not target.is_file():
            return self._text(404, f"No file {name} in the web UI")
        ctype = {".html": "text/html; charset=utf-8", ".js": "text/javascript",
                 ".css": "text/css"}.get(target.suffix, "application/octet-stream")
        self._reply(200, target.read_bytes(), ctype)

    # ------------------------------------------------------------------ internal agent API
    def _internal(self, name: str) -> None:
        master = self.master
        body_raw = self._body()
        if self.command != "POST":
            return self._reply(405, headers={"Allow": "POST"})
        if not master.elected:
            return self._reply(
                503, json.dumps({"error": "not the leading master"}).encode(), "application/json"
            )
        try:
            body = json.loads(body_raw or b"{}")
            if not isinstance(body, dict):
                raise ValueError("body must be a JSON object")
        except ValueError as exc:
            return self._reply(400, json.dumps({"error": f"bad JSON: {exc}"}).encode(),
                               "application/json")
        now = time.time()
        try:
            if name == "register_agent":
                answer = master.register_agent(body)
            elif name == "status_update":
                answer = {}
                with master.lock:
                    drop = master.faults["drop_status_updates"] > 0
                    if drop:
                        master.faults["drop_status_updates"] -= 1
                    delay = master.faults["delay_status_updates_secs"]
                if drop:
                    log.info("fault injection: status update dropped")
                elif delay > 0:
                    threading.Timer(delay, lambda: master.run(
                        agents_core.status_update, master.core, body, time.time())).start()
                else:
                    master.run(agents_core.status_update, master.core, body, now)
            elif name == "faults":
                with master.lock:
                    for key in master.faults:
                        if key in body:
                            master.faults[key] = type(master.faults[key])(body[key])
                    answer = dict(master.faults)
            elif name == "agent_check":
                # an agent that has not been pinged lately asks whether this master still knows it
                with master.lock:
                    known = (body.get("agent_id") or {}).get("value") in master.core.agents
                answer = {"master_id": master.master_id, "known": known}
            elif name == "executor_exited":
                master.run(agents_core.executor_exited, master.core, body, now)
                answer = {}
            elif name == "executor_message":
                master.run(agents_core.executor_message, master.core, body)
                answer = {}
            else:
                return self._reply(404, json.dumps({"error": f"unknown call {name}"}).encode(),
                                   "application/json")
        except agents_core.AgentError as exc:
            return self._reply(409, json.dumps({"error": str(exc)}).encode(), "application/json")
        self._reply(200, json.dumps(answer).encode(), "application/json")

    # ------------------------------------------------------------------ operator API (subset)
    def _operator(self) -> None:
        """``POST /api/v1``: MARK_AGENT_GONE, DRAIN_AGENT, REACTIVATE_AGENT and the maintenance
        calls (the rest answer 501)."""
        master = self.master
        body = self._body()
        if self._redirect_or_503(self.path):
            return None
        if self.command != "POST":
            return self._text(405, f"Expecting one of {{ 'POST' }}, but received '{self.command}'",
                              {"Allow": "POST"})
        ctype = self.headers.get("Content-Type")
        if ctype is None:
            return self._text(400, "Expecting 'Content-Type' to be present")
        if ctype.split(";")[0].strip().lower() != "application/json":
            return self._text(415, JSON_ONLY)
        try:
            call = json.loads(body.decode() or "{}")
        except ValueError as exc:
            return self._text(400, f"Failed to parse body into JSON: {exc}")
        kind = call.get("type") if isinstance(call, dict) else None
        now = time.time()
        core = master.core
        try:
            if kind == "MARK_AGENT_GONE":
                aid = id_of((call.get("mark_agent_gone") or {}).get("agent_id"))
                if not aid:
                    return self._text(400, "Failed to validate master::Call: Expecting "
                                           "'mark_agent_gone.agent_id' to be present")
                master.run(agents_core.mark_gone, core, aid, now)
            elif kind == "GET_MAINTENANCE_SCHEDULE":
                with master.lock:
                    schedule = maintenance.get_schedule(core)
                return self._operator_answer(kind, {"schedule": schedule})
            elif kind == "GET_MAINTENANCE_STATUS":
                with master.lock:
                    cluster = maintenance.status(core)
                return self._operator_answer(kind, {"status": cluster})
            elif kind == "UPDATE_MAINTENANCE_SCHEDULE":
                wanted = (call.get("update_maintenance_schedule") or {}).get("schedule")
                master.run(maintenance.update_schedule, core, wanted or {}, now)
            elif kind in ("START_MAINTENANCE", "STOP_MAINTENANCE"):
                machines = (call.get(kind.lower()) or {}).get("machines") or []
                keys = maintenance.machine_keys(machines)
                if kind == "START_MAINTENANCE":
                    master.run(maintenance.machine_down, core, keys, now)
                else:
                    master.run(maintenance.machine_up, core, keys)
            elif kind == "DRAIN_AGENT":
                master.run(maintenance.drain_agent, core, call.get("drain_agent") or {}, now)
            elif kind == "REACTIVATE_AGENT":
                master.run(maintenance.reactivate_agent, core, call.get("reactivate_agent") or {})
            else:
                return self._text(501, f"localmesos does not implement operator call {kind!r}")
        except agents_core.AgentError as exc:
            return self._text(404, str(exc))
        except maintenance.MaintenanceError as exc:
            return self._text(400, str(exc))
        return self._reply(200)

    def _operator_answer(self, kind: str, payload: dict[str, Any]) -> None:
        data = json.dumps({"type": kind, kind.lower(): payload}).encode()
        self._reply(200, data, "application/json")

    # ------------------------------------------------------------------ scheduler API
    def _scheduler(self) -> None:
        master = self.master
        body = self._body() if self.command in ("POST", "PUT") else b""
        ok, principal = self._authenticated()
        if not ok:
            return self._text(
                401, "Unauthorized",
                {"WWW-Authenticate": 'Basic realm="mesos-master-scheduler"'},
            )
        if self._redirect_or_503(self.path):
            return None
        if self.command != "POST":
            return self._text(
                405, f"Expecting one of {{ 'POST' }}, but received '{self.command}'",
                {"Allow": "POST"},
            )
        ctype = self.headers.get("Content-Type")
        if ctype is None:
            return self._text(400, "Expecting 'Content-Type' to be present")
        if ctype.split(";")[0].strip().lower() != "application/json":
            return self._text(415, JSON_ONLY)
        call, problem = parse_call(body)
        if problem is None:
            assert call is not None  # parse_call gives the call or the problem
            problem = validate_call(call, principal)
        if problem is not None:
            return self._text(*problem)
        assert call is not None
        if call["type"] == "SUBSCRIBE":
            return self._subscribe(call, principal)
        fid = id_of(call.get("framework_id"))
        with master.lock:
            fw = master.core.frameworks.get(fid) if fid is not None else None
            if fw is None:
                return self._text(400, "Framework cannot be found")
            if principal is not None and fw.principal != principal:
                return self._text(
                    400,
                    f"Authenticated principal '{principal}' does not match principal "
                    f"'{fw.principal}' set in `FrameworkInfo`",
                )
            if not fw.connected:
                return self._text(403, "Framework is not subscribed")
            stream = self.headers.get("Mesos-Stream-Id")
            if stream is None:
                return self._text(
                    400, "All non-subscribe calls should include the 'Mesos-Stream-Id' header"
                )
            if stream != fw.stream_id:
                return self._text(
                    400,
                    f"The stream ID '{stream}' included in this request didn't match the stream "
                    f"ID currently associated with framework ID {fid}",
                )
            self._dispatch(call, fw)
        self._reply(200 if call["type"] == "UPDATE_FRAMEWORK" else 202)

    def _dispatch(self, call: dict[str, Any], fw: Any) -> None:
        master, core, now = self.master, self.master.core, time.time()
        kind = call["type"]
        body = call.get(kind.lower()) or {}
        handlers: dict[str, Callable[[], Any]] = {
            "TEARDOWN": lambda: core.teardown(fw, now),
            "ACCEPT": lambda: accept_ops.accept(core, fw, body, now),
            "DECLINE": lambda: core.decline(fw, body, now),
            "REVIVE": lambda: core.revive(fw, body),
            "SUPPRESS": lambda: core.suppress(fw, body),
            "KILL": lambda: core.kill(fw, body, now),
            "SHUTDOWN": lambda: core.shutdown(fw, body),
            "ACKNOWLEDGE": lambda: core.acknowledge(fw, body),
            "RECONCILE": lambda: core.reconcile(fw, body, now),
            "MESSAGE": lambda: core.message(fw, body),
            "ACCEPT_INVERSE_OFFERS": lambda: maintenance.answer_inverse_offers(
                core, fw, body, True, _refuse(body), now),
            "DECLINE_INVERSE_OFFERS": lambda: maintenance.answer_inverse_offers(
                core, fw, body, False, _refuse(body), now),
        }
        handler = handlers.get(kind)
        if handler is None:
            return  # REQUEST, operations, UPDATE_FRAMEWORK: accepted, ignored
        master.run(handler)

    def _subscribe(self, call: dict[str, Any], principal: str | None) -> None:
        accept = self.headers.get("Accept")
        if accept is not None and not any(
            a.split(";")[0].strip() in ("application/json", "*/*", "application/*")
            for a in accept.split(",")
        ):
            return self._text(406, "Expecting 'Accept' to allow 'application/json'")
        if "Mesos-Stream-Id" in self.headers:
            return self._text(400, "Subscribe calls should not include the 'Mesos-Stream-Id' header")
        master = self.master
        stream_id = str(uuid.uuid4())
        q: queue.Queue = queue.Queue()
        with master.lock:
            master.streams[stream_id] = q
            master.run(master.core.subscribe, call, stream_id, principal, time.time())
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Mesos-Stream-Id", stream_id)
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        self.close_connection = True
        self._pump(stream_id, q)

    def _pump(self, stream_id: str, q: queue.Queue) -> None:
        master = self.master
        interval = master.core.heartbeat_interval
        next_beat = time.monotonic() + interval
        sock = self.connection
        heartbeat = record({"type": "HEARTBEAT"})
        try:
            while not master.stopping.is_set():
                wait = max(0.0, min(0.25, next_beat - time.monotonic()))
                try:
                    item = q.get(timeout=wait)
                except queue.Empty:
                    item = None
                if item is CLOSE:
                    break
                if item is not None:
                    self._chunk(item)
                    continue
                if time.monotonic() >= next_beat:
                    self._chunk(heartbeat)
                    next_beat += interval
                if _peer_closed(sock):
                    break
            try:
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
            except OSError:
                pass
        except OSError:
            pass
        finally:
            with master.lock:
                master.streams.pop(stream_id, None)
                master.run(master.core.stream_closed, stream_id, time.time())

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()


def _refuse(body: dict[str, Any]) -> float | None:
    """An inverse offer answer's ``filters.refuse_seconds`` (None: Mesos' default)."""
    filters = body.get("filters")
    if not isinstance(filters, dict) or "refuse_seconds" not in filters:
        return None
    return refuse_seconds(filters)


def _peer_closed(sock: socket.socket) -> bool:
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        if not readable:
            return False
        data = sock.recv(4096, socket.MSG_PEEK)
        if data:
            sock.recv(len(data))  # a client has nothing to say on a stream: drop it
            return False
        return True
    except (OSError, ValueError):
        return True
