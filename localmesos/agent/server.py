"""HTTP side of the agent: the internal master protocol, the v1 executor API (SUBSCRIBE stream in
RecordIO, chunked), state, flags, health, version, metrics and sandbox file endpoints."""
from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import queue
import stat
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from localmesos.agent.agent import Agent
from localmesos.agent.model import id_of
from localmesos.agent.views import attached, metrics_snapshot, monitor_statistics, resolve_file
from kmfwire.task_states import is_terminal
from localmesos.version import VERSION

log = logging.getLogger("localmesos.agent.http")

JSON_ONLY = ("Expecting 'Content-Type' of application/json (localmesos' v1 APIs are JSON-only: "
             "application/x-protobuf is not supported)")
MAX_READ = 16 * 4096
INTERNAL = ("ping", "run_task", "run_task_group", "kill_task", "shutdown_executor", "shutdown_framework",
            "acknowledge", "framework_message", "apply_resources", "reconcile_tasks", "shutdown",
            "drain", "undrain")


def serve(agent: Agent) -> ThreadingHTTPServer:
    handler = type("AgentHandler", (Handler,), {"agent": agent})
    server = ThreadingHTTPServer((agent.ip, agent.port), handler)
    server.daemon_threads = True
    return server


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    agent: Agent
    jsonp: str | None = None

    def log_message(self, fmt: str, *args: Any) -> None:
        log.debug(fmt, *args)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _reply(self, code: int, body: Any = None, ctype: str = "application/json") -> None:
        if isinstance(body, (dict, list)):
            data = json.dumps(body).encode()
            callback = getattr(self, "jsonp", None)
            if callback and code == 200:  # Mesos' OK(json, jsonp): `callback(json)` as JavaScript
                data = callback.encode() + b"(" + data + b")"
                ctype = "text/javascript"
        elif isinstance(body, str):
            data = body.encode()
        else:
            data = body or b""
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Access-Control-Allow-Origin", "*")  # the master's web UI reads /state and files
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:  # noqa: N802
        self.jsonp = None
        path = urlsplit(self.path).path
        if path.startswith("/slave(1)"):
            path = path[len("/slave(1)"):]
        raw = self._body()
        if path == "/api/v1/executor":  # Mesos checks the Content-Type before parsing the body
            ctype = self.headers.get("Content-Type")
            if ctype is None:
                return self._reply(400, "Expecting 'Content-Type' to be present", "text/plain")
            if ctype.split(";")[0].strip().lower() != "application/json":
                return self._reply(415, JSON_ONLY, "text/plain")
        try:
            body = json.loads(raw or b"{}")
            if not isinstance(body, dict):
                raise ValueError("not an object")
        except ValueError as exc:
            return self._reply(400, f"Failed to parse body into JSON: {exc}", "text/plain")
        if path.startswith("/internal/"):
            name = path[len("/internal/"):]
            if name not in INTERNAL:
                return self._reply(404, {"error": f"unknown call {name}"})
            try:
                answer = getattr(self.agent, "on_ping" if name == "ping" else name)(body)
            except Exception as exc:  # noqa: BLE001 - a bad call must not kill the agent
                log.exception("internal %s", name)
                return self._reply(400, {"error": str(exc)})
            return self._reply(200, answer or {})
        if path == "/api/v1/executor":
            return self._executor_call(body)
        return self._reply(404, "")

    # -- executor API --------------------------------------------------------------------------

    def _executor_call(self, body: dict) -> None:
        agent = self.agent
        kind = body.get("type")
        fid, eid = id_of(body.get("framework_id")), id_of(body.get("executor_id"))
        if not fid or not eid:
            return self._reply(400, "Expecting 'framework_id' and 'executor_id' to be present", "text/plain")
        with agent.lock:
            ex = agent.executors.get((fid, eid))
        if ex is None:
            known = any(f == fid for f, _ in agent.executors)
            return self._reply(400, "Executor cannot be found" if known else "Framework cannot be found",
                               "text/plain")
        if kind == "SUBSCRIBE":
            return self._subscribe(ex, body.get("subscribe") or {})
        if not ex.subscribed:
            return self._reply(403, "Executor is not subscribed", "text/plain")
        if kind == "UPDATE":
            status = dict((body.get("update") or {}).get("status") or {})
            problem = _update_problem(status, eid)
            if problem:
                agent.counters["invalid_status_updates"] += 1
                return self._reply(400, problem, "text/plain")
            status["source"] = "SOURCE_EXECUTOR"
            # as Mesos' agent does for an executor's update: the container it runs in
            status["container_status"] = {
                "container_id": {"value": ex.container_id},
                "network_infos": [{"ip_addresses": [{"ip_address": agent.ip, "protocol": "IPv4"}]}],
                **({"executor_pid": ex.pid} if ex.pid else {})}
            tid = id_of(status.get("task_id")) or ""
            agent.enqueue_update(fid, tid, status)
            self._reply(202)
            agent.send_event(ex, {"type": "ACKNOWLEDGED",
                                  "acknowledged": {"task_id": {"value": tid}, "uuid": status["uuid"]}})
            return None
        if kind == "MESSAGE":
            data = (body.get("message") or {}).get("data", "")
            self._reply(202)
            try:
                agent.call_master("executor_message", {"framework_id": {"value": fid},
                                                       "executor_id": {"value": eid}, "data": data})
            except OSError:
                pass
            return None
        if kind == "HEARTBEAT":
            return self._reply(202)
        return self._reply(400, f"Unknown call type {kind!r}", "text/plain")

    def _subscribe(self, ex: Any, subscribe: dict) -> None:
        agent = self.agent
        events: "queue.Queue[Any]" = queue.Queue()
        with agent.lock:
            if ex.events is not None:
                ex.events.put(None)  # close the older stream
            if ex.shutting_down:
                events.put({"type": "SHUTDOWN"})
            agent_info = {"id": {"value": agent.agent_id}, "hostname": agent.hostname, "port": agent.port,
                          "resources": agent.total().to_json("pre")}
            events.put({"type": "SUBSCRIBED", "subscribed": {
                "executor_info": ex.info, "framework_info": agent.frameworks.get(ex.framework_id, ex.framework_info),
                "agent_info": agent_info, "container_id": {"value": ex.container_id}}})
            for update in subscribe.get("unacknowledged_updates") or []:
                status = dict(update.get("status") or {})
                if status.get("uuid") and not _update_problem(status, ex.executor_id):
                    agent.enqueue_update(ex.framework_id, id_of(status.get("task_id")) or "", status)
            for event in ex.queued:
                events.put(event)
            for (fid, tid), t in agent.tasks.items():
                if fid == ex.framework_id and t.executor_id == ex.executor_id and not is_terminal(t.state):
                    t.launched = True
            ex.queued = []
            ex.events = events
            ex.subscribed = True
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        log.info("executor %s subscribed", ex.executor_id)
        try:
            while True:
                try:
                    event = events.get(timeout=agent.executor_heartbeat_interval)
                except queue.Empty:
                    event = {"type": "HEARTBEAT"}
                if event is None:
                    break
                record = json.dumps(event).encode()
                payload = str(len(record)).encode() + b"\n" + record
                self.wfile.write(f"{len(payload):x}\r\n".encode() + payload + b"\r\n")
                self.wfile.flush()
                if event.get("type") == "SHUTDOWN":
                    pass
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError:
            pass
        finally:
            with agent.lock:
                if ex.events is events:
                    ex.events = None
                    ex.subscribed = False
            self.close_connection = True

    # -- reads ---------------------------------------------------------------------------------

    def do_GET(self) -> None:  # noqa: N802
        parts = urlsplit(self.path)
        path = parts.path
        if path.startswith("/slave(1)"):
            path = path[len("/slave(1)"):]
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        # Every JSON answer honours ?jsonp= as Mesos' OK(json, jsonp) does (see _reply)
        self.jsonp = query.get("jsonp") or None
        agent = self.agent
        if path in ("/state", "/state.json"):
            return self._reply(200, agent.state_json())
        if path == "/flags":
            return self._reply(200, {"flags": agent.flags_json()})
        if path == "/health":
            return self._reply(200, "", "text/plain")
        if path == "/version":
            return self._reply(200, {"version": VERSION, "build_user": "localmesos"})
        if path == "/metrics/snapshot":
            return self._reply(200, metrics_snapshot(agent))
        if path == "/files/debug":  # attached path -> real path
            return self._reply(200, attached(agent))
        if path.startswith("/files/"):
            return self._files(path[len("/files/"):], query)
        if path == "/monitor/statistics":
            return self._reply(200, monitor_statistics(agent))
        return self._reply(404, "")

    def _files(self, op: str, query: dict) -> None:
        raw = query.get("path")
        if not raw:
            return self._reply(400, "Expecting 'path=value' in query.\n", "text/plain")
        resolved = resolve_file(self.agent, raw)
        if resolved is None or not resolved.exists():
            return self._reply(404, "", "text/plain")
        path = resolved
        if op == "browse":
            if not path.is_dir():
                return self._reply(200, [])  # as Mesos: browsing a file lists nothing
            entries = []
            for child in sorted(path.iterdir()):
                try:
                    st = child.stat()
                except OSError:
                    continue
                # paths are given in the namespace asked for (virtual or real), as Mesos does
                entries.append({"path": raw.rstrip("/") + "/" + child.name, "nlink": st.st_nlink,
                                "size": st.st_size, "mtime": float(int(st.st_mtime)),
                                "mode": stat.filemode(st.st_mode),
                                "uid": _user(st.st_uid), "gid": _group(st.st_gid)})
            return self._reply(200, entries)
        if op == "read":
            if path.is_dir():
                return self._reply(400, "Cannot read a directory", "text/plain")
            size = path.stat().st_size
            try:
                offset = int(query.get("offset", -1))
                length = int(query.get("length", MAX_READ))
            except ValueError:
                return self._reply(400, "offset and length must be integers", "text/plain")
            if offset < 0:
                return self._reply(200, {"offset": size, "data": ""})
            if length < 0:  # as Mesos: length=-1 (or none) reads to the end, at most 16 pages
                length = MAX_READ
            with open(path, "rb") as f:
                f.seek(offset)
                data = f.read(min(length, MAX_READ))
            return self._reply(200, {"offset": offset, "data": data.decode("utf-8", "replace")})
        if op == "download":
            if path.is_dir():
                return self._reply(400, "Cannot download a directory", "text/plain")
            return self._reply(200, path.read_bytes(), "application/octet-stream")
        return self._reply(404, "")


def _update_problem(status: dict, eid: str) -> str | None:
    try:
        raw = base64.b64decode(status.get("uuid") or "", validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 16:
        return "Status update must have a 16 byte 'uuid'"
    if status.get("state") == "TASK_STAGING":
        return "Status update must not be TASK_STAGING"
    if not status.get("state") or not id_of(status.get("task_id")):
        return "Status update needs 'task_id' and 'state'"
    if status.get("executor_id") and id_of(status["executor_id"]) != eid:
        return "Status update names another executor"
    return None


def _user(uid: int) -> str:
    try:
        import pwd
        return pwd.getpwuid(uid).pw_name
    except (KeyError, ImportError):
        return str(uid)


def _group(gid: int) -> str:
    try:
        import grp
        return grp.getgrgid(gid).gr_name
    except (KeyError, ImportError):
        return str(gid)


__all__ = ["serve", "os"]
