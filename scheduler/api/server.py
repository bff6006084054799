"""The scheduler's HTTP API (DC/OS SDK style), /metrics and the web page.

Every answer is JSON (but /metrics, the page and the artifacts); every error is
``{"error": "...", "where": "..."}`` with a 4xx/5xx code. HEAD is answered for every GET route.
Mutating calls need ``Authorization: Bearer <token>`` when a token is configured (compared in
constant time). A standby answers reads from ZooKeeper and redirects mutations to the leader.
Commands go through the decision loop, so nothing is half-applied: the core accepts or refuses.
"""
from __future__ import annotations

import hmac
import json
import logging
import re
import shutil
import threading
import time
import urllib.parse
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol
from urllib.parse import urlsplit

import attrs
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from kmfwire.errors import KmfError
from scheduler.api import sandbox, security, topics, views
from scheduler.api.scrape_targets import metrics_targets
from scheduler.core.events import CommandKind
from scheduler.core.refusals import Refusal
from scheduler.core.state import State
from scheduler.core.views import placement, plans

log = logging.getLogger(__name__)

MAX_BODY = 256 * 1024
DRAIN_LIMIT = 16 * 1024 * 1024  # an oversized body up to this is read and dropped before the 413
PAGE = Path(__file__).with_name("page.html")
# GET /v1/endpoints/<name>: the brokers' client addresses, the brokers' metrics targets (file-SD)
ENDPOINTS = ("broker", "metrics")


class Backend(Protocol):
    def role(self) -> str: ...
    def leader_url(self) -> str | None: ...
    def state(self) -> State: ...
    def zk_connected(self) -> bool: ...
    def mesos_master(self) -> str | None: ...  # host:port of the leading master, when known
    def uninstalled(self) -> dict[str, Any] | None: ...  # the tombstone of an uninstalled service
    def submit(self, kind: str, args: dict) -> Any: ...  # a core Reply
    def configurations(self) -> dict[str, Any]: ...
    def parse_config(self, text: str) -> Any: ...  # a ServiceSpec, or raises config.ConfigError
    def declared_status(self) -> dict[str, Any]: ...  # the reconciliation of declared topics and users


@attrs.frozen
class FileBody:
    """A file answered by streaming it (an artifact of tens of MB is never read into memory)."""

    path: Path
    size: int
    name: str = ""


class ApiError(KmfError):
    def __init__(self, status: int, message: str, where: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.where = where


SANDBOX_RETRY_S = 10.0  # a failed sandbox lookup of a task is asked again after this long

Route = tuple[str, re.Pattern, str, bool]  # method, path pattern, handler name, mutating
ROUTES: list[Route] = [
    ("GET", re.compile(r"/v1/health"), "get_health", False),
    ("GET", re.compile(r"/v1/plans"), "get_plans", False),
    ("GET", re.compile(r"/v1/plans/(?P<plan>[^/]+)"), "get_plan", False),
    ("POST", re.compile(r"/v1/plans/(?P<plan>[^/]+)/(?P<cmd>interrupt|continue|restart|force-complete)"),
     "post_plan", True),
    ("GET", re.compile(r"/v1/pod"), "get_pods", False),
    ("GET", re.compile(r"/v1/pod/(?P<pod>[^/]+)/info"), "get_pod", False),
    ("GET", re.compile(r"/v1/pod/(?P<pod>[^/]+)/placement"), "get_pod_placement", False),
    ("GET", re.compile(r"/v1/pod/(?P<pod>[^/]+)/logs"), "get_pod_logs", False),
    ("POST", re.compile(r"/v1/pod/(?P<pod>[^/]+)/(?P<cmd>restart|replace|decommission)"), "post_pod", True),
    ("GET", re.compile(r"/v1/endpoints"), "get_endpoints", False),
    ("GET", re.compile(r"/v1/endpoints/(?P<name>[^/]+)"), "get_endpoint", False),
    ("GET", re.compile(r"/v1/config/target"), "get_target", False),
    ("GET", re.compile(r"/v1/configurations"), "get_configurations", False),
    ("GET", re.compile(r"/v1/configurations/(?P<cid>[^/]+)"), "get_configuration", False),
    ("PUT", re.compile(r"/v1/config"), "put_config", True),
    ("GET", re.compile(r"/v1/state/properties"), "get_properties", False),
    ("GET", re.compile(r"/v1/declared"), "get_declared", False),
    ("POST", re.compile(r"/v1/scale"), "post_scale", True),
    ("POST", re.compile(r"/v1/rebalance"), "post_rebalance", True),
    ("POST", re.compile(r"/v1/tls/rotate-ca"), "post_rotate_ca", True),
    ("POST", re.compile(r"/v1/uninstall"), "post_uninstall", True),
    ("GET", re.compile(r"/v1/topics"), "get_topics", False),
    ("GET", re.compile(r"/v1/topics/(?P<topic>[^/]+)"), "get_topic", False),
    ("POST", re.compile(r"/v1/topics"), "post_topic", True),
    ("DELETE", re.compile(r"/v1/topics/(?P<topic>[^/]+)"), "delete_topic", True),
    ("PUT", re.compile(r"/v1/topics/(?P<topic>[^/]+)/config"), "put_topic_config", True),
    ("GET", re.compile(r"/v1/users"), "get_users", False),
    ("POST", re.compile(r"/v1/users"), "post_user", True),
    ("DELETE", re.compile(r"/v1/users/(?P<user>[^/]+)"), "delete_user", True),
    ("GET", re.compile(r"/v1/artifacts/(?P<sha256>[^/]+)/(?P<filename>[^/]+)"), "get_artifact", False),
    ("GET", re.compile(r"/v1/lag"), "get_lag", False),
    ("GET", re.compile(r"/metrics"), "get_metrics", False),
    ("GET", re.compile(r"/"), "get_page", False),
]

QUERY_HANDLERS = {"get_pod_logs"}  # the handlers that read the query string


# The one place a refusal of the core (or of the shell on its behalf) becomes an HTTP code.
REFUSAL_HTTP: dict[Refusal, int] = {
    Refusal.INVALID: 400,
    Refusal.NOT_FOUND: 404,
    Refusal.CONFLICT: 409,
    Refusal.INTERNAL: 500,
    Refusal.UNAVAILABLE: 503,
}


def _reply_body(reply: Any) -> tuple[int, Any]:
    result = dict(reply.result or {})
    refusal = result.pop("refusal", Refusal.CONFLICT)  # a refusal that says nothing more is a conflict
    if reply.ok:
        return 200, result
    status = REFUSAL_HTTP[Refusal(refusal)]
    return status, {"error": result.get("message", "refused"), **{k: v for k, v in result.items() if k != "message"}}


class Api:
    """Request handling, independent of the HTTP server (one instance per scheduler)."""

    def __init__(self, backend: Backend, registry: Any, token: str | None = None,
                 clock: Callable[[], float] = time.time,
                 ca_cert: Callable[[], str | None] = lambda: None,
                 artifacts: Mapping[str, Any] | None = None,
                 lag: Callable[[], dict[str, Any] | None] = lambda: None) -> None:
        self.backend = backend
        self.lag = lag  # the latest consumer-group lag sample (scheduler.shell.lag_watch), None: none yet
        self.registry = registry
        self.token = token
        self.clock = clock
        self.ca_cert = ca_cert  # the Kafka CA certificate (PEM) clients get from the endpoints
        # sha256 → scheduler.shell.artifacts.ArtifactFile: what agents' fetchers may download
        self.artifacts = dict(artifacts or {})
        self.artifact_requests: dict[str, int] = {}
        self._sandboxes: dict[str, dict[str, str]] = {}  # task id → where Mesos says its sandbox is
        # task id → (when, why) a lookup failed: not asked again for SANDBOX_RETRY_S, so that a slow or
        # unreachable master does not slow every /info (kmf pods asks one per pod)
        self._sandbox_misses: dict[str, tuple[float, str]] = {}

    def handle(self, method: str, path: str, headers: Any, body: bytes,
               query: str = "") -> tuple[int, str, bytes, dict]:
        try:
            status, payload = self._dispatch(method, path, headers, body, query)
        except ApiError as exc:
            status, payload = exc.status, {"error": exc.message, "where": exc.where or path}
        except Exception as exc:  # noqa: BLE001 - never a traceback to the client
            log.exception("API %s %s", method, path)
            status, payload = 500, {"error": f"internal error: {exc}", "where": path}
        extra: dict[str, str] = {}
        if isinstance(payload, tuple):  # (content type, bytes)
            ctype, data = payload
            return status, ctype, data, extra
        if status == 307:
            extra["Location"] = payload["location"]
        return status, "application/json", (json.dumps(payload, indent=1) + "\n").encode(), extra

    def _dispatch(self, method: str, path: str, headers: Any, body: bytes, query: str = "") -> tuple[int, Any]:
        matched_path = False
        for verb, pattern, name, mutating in ROUTES:
            m = pattern.fullmatch(path.rstrip("/") or "/")
            if not m:
                continue
            matched_path = True
            if verb != method:
                continue
            if mutating:
                self._authorize(headers)
                gone = self._uninstalled()
                if gone is not None:
                    raise ApiError(410, gone["message"])
                if self.backend.role() != "leader":
                    leader = self.backend.leader_url()
                    if not leader:
                        raise ApiError(503, "no leader elected right now; try again shortly")
                    return 307, {"error": "this instance is a standby", "location": leader.rstrip("/") + path}
            kwargs = m.groupdict()
            if name in QUERY_HANDLERS:
                kwargs["query"] = query
            return getattr(self, name)(body=body, **kwargs)
        if matched_path:
            raise ApiError(405, f"method {method} not allowed here")
        raise ApiError(404, f"no such endpoint: {path}")

    def _uninstalled(self) -> dict[str, Any] | None:
        probe = getattr(self.backend, "uninstalled", None)  # backends of tests may lack it
        return probe() if probe is not None else None

    def _authorize(self, headers: Any) -> None:
        if not self.token:
            return
        given = headers.get("Authorization") or ""
        if not given.startswith("Bearer "):
            raise ApiError(401, "this call needs 'Authorization: Bearer <token>'")
        if not hmac.compare_digest(given[7:].strip().encode(), self.token.encode()):
            raise ApiError(401, "wrong API token")

    @staticmethod
    def _json(body: bytes, required: bool = True) -> dict:
        if not body.strip():
            if required:
                raise ApiError(400, "a JSON object body is required", "body")
            return {}
        try:
            doc = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ApiError(400, f"malformed JSON: {exc}", "body") from None
        except RecursionError:
            raise ApiError(400, "malformed JSON: nested too deeply", "body") from None
        if not isinstance(doc, dict):
            raise ApiError(400, f"expected a JSON object, got {type(doc).__name__}", "body")
        return doc

    def _submit(self, kind: CommandKind, args: dict) -> tuple[int, Any]:
        return _reply_body(self.backend.submit(kind, args))

    # reads -----------------------------------------------------------------------------------

    def get_health(self, body: bytes) -> tuple[int, Any]:
        doc = views.health(self.backend.state(), self.backend.role(), self.backend.zk_connected(), self.clock(),
                           self.backend.mesos_master(), self._uninstalled())
        return (200 if doc["healthy"] else 503), doc

    def get_plans(self, body: bytes) -> tuple[int, Any]:
        return 200, sorted(plans(self.backend.state(), self.clock()))

    def get_plan(self, body: bytes, plan: str) -> tuple[int, Any]:
        doc = plans(self.backend.state(), self.clock()).get(plan)
        if doc is None:
            raise ApiError(404, f"plan {plan!r} does not exist (plans: deploy, recovery, update, and "
                                "rebalance or ca-rotation once one has started)", "plan")
        # like the DC/OS SDK: 200 when complete, 202 while in progress
        return (200 if doc["status"] == "COMPLETE" else 202), doc

    def get_pods(self, body: bytes) -> tuple[int, Any]:
        return 200, views.pod_names(self.backend.state())

    def get_pod(self, body: bytes, pod: str) -> tuple[int, Any]:
        doc = views.pod_info(self.backend.state(), pod, time.time())
        if doc is None:
            raise ApiError(404, f"pod {pod!r} does not exist", "pod")
        if doc.get("task_id"):
            missed = self._sandbox_misses.get(doc["task_id"])
            if missed is not None and time.monotonic() - missed[0] < SANDBOX_RETRY_S:
                doc["sandbox"] = {"unknown": missed[1]}
                return 200, doc
            try:
                doc["sandbox"] = self._sandbox(doc)
            except (sandbox.SandboxUnknown, sandbox.AgentUnreachable, ApiError) as exc:
                why = getattr(exc, "message", None) or str(exc)
                if len(self._sandbox_misses) > 1000:
                    self._sandbox_misses.clear()
                self._sandbox_misses[doc["task_id"]] = (time.monotonic(), why)
                doc["sandbox"] = {"unknown": why}
        return 200, doc

    def _sandbox(self, doc: dict[str, Any]) -> dict[str, str]:
        """Where Mesos says the pod's task's sandbox is (looked up once per task id)."""
        task_id = doc["task_id"]
        found = self._sandboxes.get(task_id)
        if found is not None:
            return found
        master = self._master()
        framework_id = self.backend.state().framework_id
        if not framework_id or not doc.get("agent_id"):
            raise ApiError(409, f"pod {doc['name']!r} has no task on an agent yet", "pod")
        found = sandbox.locate(master, doc["agent_id"], framework_id, task_id)
        if len(self._sandboxes) > 1000:
            self._sandboxes.clear()
        self._sandboxes[task_id] = found
        return found

    def _master(self) -> str:
        probe = getattr(self.backend, "mesos_master", None)
        master = probe() if probe is not None else None
        if not master:
            if self.backend.role() != "leader":
                leader = self.backend.leader_url()
                raise ApiError(503, "this scheduler is a standby and knows no Mesos master; ask the leader"
                                    + (f" at {leader.rstrip('/')} (--api)" if leader else " (none elected now)"),
                               "mesos")
            raise ApiError(503, "the Mesos master is not known yet (not subscribed); try again shortly", "mesos")
        return master

    def get_pod_logs(self, body: bytes, pod: str, query: str = "") -> tuple[int, Any]:
        """A slice of a file of the pod's sandbox, read through its agent's /files/read:
        ?file=stdout|stderr|<relative path>&offset=N (-1: only the size)&length=N.
        Answers {"data", "offset", "size"?, "task_id", "sandbox"}."""
        params = urllib.parse.parse_qs(query)
        name = (params.get("file") or ["stdout"])[0]
        if not name or name.startswith("/") or ".." in name.split("/"):
            raise ApiError(400, f"file {name!r} is not a path inside the sandbox", "file")
        try:
            offset = int((params.get("offset") or ["-1"])[0])
            length = int(params["length"][0]) if params.get("length") else None
        except ValueError:
            raise ApiError(400, "offset and length are integers", "offset") from None
        if offset < -1 or (length is not None and length < 0):
            raise ApiError(400, "offset is -1 (the size) or ≥ 0; length ≥ 0", "offset")
        doc = views.pod_info(self.backend.state(), pod, time.time())
        if doc is None:
            raise ApiError(404, f"pod {pod!r} does not exist", "pod")
        if not doc.get("task_id"):
            raise ApiError(409, f"pod {pod!r} has no task yet (state {doc.get('state')}): no sandbox to read", "pod")
        try:
            where = self._sandbox(doc)
            got = sandbox.read(where["agent_url"], f"{where['directory']}/{name}", offset, length)
        except sandbox.AgentUnreachable as exc:
            self._sandboxes.pop(doc["task_id"], None)
            raise ApiError(502, f"cannot read the sandbox of pod {pod!r}: {exc}", "agent") from None
        except sandbox.SandboxUnknown as exc:
            raise ApiError(409, f"pod {pod!r}: {exc}", "sandbox") from None
        if got is None:
            raise ApiError(404, f"pod {pod!r} has no file {name!r} in its sandbox {where['directory']}", "file")
        return 200, {"data": got.get("data", ""), "offset": got.get("offset", 0), "file": name,
                     "task_id": doc["task_id"], "sandbox": where}

    def get_pod_placement(self, body: bytes, pod: str) -> tuple[int, Any]:
        """Why the pod is (not) placed: the outcome of the last offer round that considered it."""
        doc = placement(self.backend.state(), pod)
        if doc is None:
            raise ApiError(404, f"pod {pod!r} does not exist", "pod")
        return 200, doc

    def get_endpoints(self, body: bytes) -> tuple[int, Any]:
        return 200, list(ENDPOINTS)

    def get_endpoint(self, body: bytes, name: str) -> tuple[int, Any]:
        if name not in ENDPOINTS:
            raise ApiError(404, f"endpoint {name!r} does not exist (endpoints: {', '.join(ENDPOINTS)})", "name")
        state = self.backend.state()
        if name == "metrics":  # Prometheus file-SD JSON: a list, as Prometheus reads it
            return 200, metrics_targets(state)
        return 200, {**views.broker_endpoint(state), **security.endpoint_extras(state, self.ca_cert())}

    def get_target(self, body: bytes) -> tuple[int, Any]:
        return 200, views.config_target(self.backend.state())

    def get_configurations(self, body: bytes) -> tuple[int, Any]:
        return 200, sorted(self.backend.configurations())

    def get_configuration(self, body: bytes, cid: str) -> tuple[int, Any]:
        doc = self.backend.configurations().get(cid)
        if doc is None:
            raise ApiError(404, f"configuration {cid!r} does not exist", "cid")
        return 200, doc

    def get_properties(self, body: bytes) -> tuple[int, Any]:
        props = self.backend.state().properties
        return 200, {k: v for k, v in props.items() if not k.startswith("unsaved.")}

    def get_lag(self, body: bytes) -> tuple[int, Any]:
        """The latest consumer-group lag sample (taken by the leader every ~10 s) and each stream
        app's group with its total lag (None: the group has no committed offset in the sample)."""
        sample = self.lag()
        spec = self.backend.state().spec
        apps = {a.name: a.consumer_group(spec.name) for a in spec.apps}
        if sample is None:
            return 200, {"sampled_at": None, "age_s": None, "groups": {},
                         "apps": {n: {"group": g, "lag": None} for n, g in apps.items()},
                         "message": "no lag sample yet (the leader samples every ~10 s once a broker serves; "
                                    "a standby samples none)"}
        groups = sample["groups"]
        return 200, {**sample, "age_s": round(max(0.0, self.clock() - sample["sampled_at"]), 3),
                     "apps": {n: {"group": g, "lag": groups[g]["lag"] if g in groups and groups[g]["topics"]
                                  else None} for n, g in apps.items()}}

    def get_metrics(self, body: bytes) -> tuple[int, Any]:
        return 200, (CONTENT_TYPE_LATEST, generate_latest(self.registry))

    def get_artifact(self, body: bytes, sha256: str, filename: str) -> tuple[int, Any]:
        """A kmf bundle or Kafka archive, by its content's sha256: no token (a read; the bundle holds
        no secret), and a URI whose content never changes, so the fetchers' caches stay right."""
        item = self.artifacts.get(sha256)
        if item is None or item.name != filename:
            raise ApiError(404, f"no artifact {sha256[:80]}/{filename[:200]} here (this scheduler serves "
                                f"{', '.join(sorted(a.name for a in self.artifacts.values())) or 'none'})",
                           "sha256")
        return 200, ("application/gzip" if filename.endswith(".gz") else "application/octet-stream",
                     FileBody(item.reader(), item.size, item.name))

    def artifact_sent(self, name: str, size: int, client: str) -> None:
        """A whole artifact went out (GETs only: Mesos' fetcher asks HEAD first for the size)."""
        self.artifact_requests[name] = self.artifact_requests.get(name, 0) + 1
        log.info("sent artifact %s (%d bytes) to %s, download %d of it", name, size, client,
                 self.artifact_requests[name])

    def get_page(self, body: bytes) -> tuple[int, Any]:
        return 200, ("text/html; charset=utf-8", PAGE.read_bytes())

    # commands --------------------------------------------------------------------------------

    def post_plan(self, body: bytes, plan: str, cmd: str) -> tuple[int, Any]:
        doc = self._json(body, required=False)
        for key in ("phase", "step"):
            if key in doc and not isinstance(doc[key], str):
                raise ApiError(400, f"{key} must be a string", key)
        for key in doc:
            if key not in ("phase", "step"):
                raise ApiError(400, f"unknown field {key!r} (fields: phase, step)", key)
        if cmd == "force-complete" and "step" not in doc:
            raise ApiError(400, "force-complete needs the step (pod) it completes", "step")
        kind = {"interrupt": CommandKind.PLAN_INTERRUPT, "continue": CommandKind.PLAN_CONTINUE,
                "restart": CommandKind.PLAN_RESTART, "force-complete": CommandKind.PLAN_FORCE_COMPLETE}[cmd]
        return self._submit(kind, {"plan": plan, "phase": doc.get("phase"), "step": doc.get("step")})

    POD_FLAGS: dict[str, tuple[str, ...]] = {"restart": ("force",), "replace": ("confirm", "force"),
                                             "decommission": ()}

    def post_pod(self, body: bytes, pod: str, cmd: str) -> tuple[int, Any]:
        """Optional body: restart {"force": bool}; replace {"confirm": bool, "force": bool}. A broker
        stops only when the core's gate allows it (409 with the reason, unless force); replacing a
        broker needs confirm (409 with "confirm_required" and what is lost)."""
        doc = self._json(body, required=False)
        allowed = self.POD_FLAGS[cmd]
        for key, value in doc.items():
            if key not in allowed:
                raise ApiError(400, f"unknown field {key!r} for {cmd} (fields: {', '.join(allowed)})", key)
            if not isinstance(value, bool):
                raise ApiError(400, f"{key} must be true or false, got {value!r}", key)
        return self._submit(CommandKind(f"{cmd}_pod"), {"pod": pod, **{k: doc.get(k, False) for k in allowed}})

    def put_config(self, body: bytes) -> tuple[int, Any]:
        import config
        text = body.decode("utf-8", "replace")
        confirm = confirm_delete = False
        if text.lstrip().startswith("{"):
            doc = self._json(body)
            if not isinstance(doc.get("yaml"), str):
                raise ApiError(400, "send the YAML as the body, or JSON {\"yaml\": \"...\", \"confirm\": bool, "
                                    "\"confirm_delete\": bool}", "yaml")
            for flag in ("confirm", "confirm_delete"):
                if not isinstance(doc.get(flag, False), bool):
                    raise ApiError(400, f"{flag} must be true or false", flag)
            text, confirm, confirm_delete = doc["yaml"], doc.get("confirm", False), doc.get("confirm_delete", False)
        try:
            spec = self.backend.parse_config(text)
        except config.ConfigError as exc:
            return 400, {"error": "invalid configuration", "problems": [str(p) for p in exc.problems]}
        return self._submit(CommandKind.UPDATE_CONFIG, {"spec": spec, "confirm": confirm,
                                                        "confirm_delete": confirm_delete})

    def get_declared(self, body: bytes) -> tuple[int, Any]:
        """How Kafka matches the declared topics and users: state, what was applied, refused, failed.
        Only the leader reconciles and knows; a standby (also a scheduler still starting, which its
        election may name as the leader already: no redirect to itself) says so and names it."""
        return 200, self.backend.declared_status()

    def post_scale(self, body: bytes) -> tuple[int, Any]:
        doc = self._json(body)
        kind, count = doc.get("kind"), doc.get("count")
        if kind == "app" and "auto" in doc:  # resume an app's autoscaling: no count
            if doc["auto"] is not True:
                raise ApiError(400, "auto must be true (an app's count pauses its autoscaling)", "auto")
            if "count" in doc:
                raise ApiError(400, "give a count or auto, not both", "count")
            if not isinstance(doc.get("name"), str):
                raise ApiError(400, "name of the app is required", "name")
            return self._submit(CommandKind.SCALE_APP, {"app": doc["name"], "count": None, "auto": True})
        if not isinstance(count, int) or isinstance(count, bool):
            raise ApiError(400, f"count must be a whole number, got {count!r}", "count")
        for flag in ("confirm", "drain"):
            if flag in doc and not isinstance(doc[flag], bool):
                raise ApiError(400, f"{flag} must be true or false", flag)
        if kind == "brokers":
            return self._submit(CommandKind.SCALE_BROKERS, {"count": count, "confirm": doc.get("confirm", False),
                                                            "drain": doc.get("drain", False)})
        if "drain" in doc:
            raise ApiError(400, "drain is for brokers only", "drain")
        if kind == "app":
            if not isinstance(doc.get("name"), str):
                raise ApiError(400, "name of the app is required", "name")
            return self._submit(CommandKind.SCALE_APP, {"app": doc["name"], "count": count})
        raise ApiError(400, f"kind must be 'brokers' or 'app', got {kind!r}", "kind")

    def post_rebalance(self, body: bytes) -> tuple[int, Any]:
        """Optional body {"dry_run": bool}: balance replicas and leaders over every broker."""
        doc = self._json(body, required=False)
        for key, value in doc.items():
            if key != "dry_run":
                raise ApiError(400, f"unknown field {key!r} (fields: dry_run)", key)
            if not isinstance(value, bool):
                raise ApiError(400, "dry_run must be true or false", "dry_run")
        return self._submit(CommandKind.REBALANCE, {"dry_run": doc.get("dry_run", False)})

    def post_rotate_ca(self, body: bytes) -> tuple[int, Any]:
        """Rotate kmf's own Kafka CA now, with a trust overlap (plan ca-rotation)."""
        if self._json(body, required=False):
            raise ApiError(400, "rotate-ca takes no fields")
        return self._submit(CommandKind.ROTATE_CA, {})

    def post_uninstall(self, body: bytes) -> tuple[int, Any]:
        return self._submit(CommandKind.UNINSTALL, {})

    # topics ----------------------------------------------------------------------------------

    def _bootstrap(self) -> str:
        servers = views.broker_endpoint(self.backend.state())["bootstrap_servers"]
        if not servers:
            raise ApiError(503, "no broker has an address yet")
        return servers

    def get_topics(self, body: bytes) -> tuple[int, Any]:
        try:
            return 200, topics.list_topics(self._bootstrap())
        except topics.KafkaUnavailable as exc:
            raise ApiError(503, str(exc)) from None

    def get_topic(self, body: bytes, topic: str) -> tuple[int, Any]:
        try:
            doc = topics.describe(self._bootstrap(), topic)
        except topics.KafkaUnavailable as exc:
            raise ApiError(503, str(exc)) from None
        if doc is None:
            raise ApiError(404, f"topic {topic!r} does not exist", "topic")
        return 200, doc

    def post_topic(self, body: bytes) -> tuple[int, Any]:
        doc = self._json(body)
        try:
            req = topics.CreateRequest.from_json(doc)
        except ValueError as exc:
            raise ApiError(400, str(exc), "body") from None
        return topics.create(self._bootstrap(), req)

    def delete_topic(self, body: bytes, topic: str) -> tuple[int, Any]:
        return topics.delete(self._bootstrap(), topic)

    def put_topic_config(self, body: bytes, topic: str) -> tuple[int, Any]:
        doc = self._json(body)
        if not doc or not all(isinstance(k, str) and topics.is_setting_value(v) for k, v in doc.items()):
            raise ApiError(400, "expected {\"config.name\": \"value\", ...}", "body")
        return topics.alter_config(self._bootstrap(), topic, {k: str(v) for k, v in doc.items()})

    # SASL/SCRAM users (logic in scheduler.api.security) -------------------------------------

    def _sasl(self) -> str:
        sasl = self.backend.state().spec.kafka.sasl
        if not sasl.enabled:
            raise ApiError(409, "SASL is not enabled (kafka.sasl.enabled)", "kafka.sasl.enabled")
        return sasl.mechanism

    def get_users(self, body: bytes) -> tuple[int, Any]:
        self._sasl()
        return security.list_users(self._bootstrap())

    def post_user(self, body: bytes) -> tuple[int, Any]:
        mechanism = self._sasl()
        try:
            name, password = security.parse_user(self._json(body))
        except ValueError as exc:
            raise ApiError(400, str(exc), "body") from None
        return security.create_user(self._bootstrap(), mechanism, name, password)

    def delete_user(self, body: bytes, user: str) -> tuple[int, Any]:
        mechanism = self._sasl()
        try:
            security.check_name(user)
        except ValueError as exc:
            raise ApiError(400, str(exc), "user") from None
        return security.delete_user(self._bootstrap(), mechanism, user)


class ApiServer:
    def __init__(self, api: Api, host: str, port: int, tls: tuple[str, str] | None = None) -> None:
        handler = _handler_class(api)
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True
        if tls is not None:
            import ssl
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*tls)
            # the handshake happens in each request's thread (Handler.setup), not in accept():
            # a client that connects and says nothing must not stop the server accepting others
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True,
                                                do_handshake_on_connect=False)
            # a refused handshake (plain HTTP, an untrusting client) is the client's problem
            self.httpd.handle_error = lambda request, client_address: log.debug(  # type: ignore[method-assign]
                "api connection from %s failed", client_address, exc_info=True)
        self.scheme = "https" if tls else "http"
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="kmf-api", daemon=True)

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    def start(self) -> "ApiServer":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _handler_class(api: Api) -> type:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        default_request_version = "HTTP/1.0"  # answers to broken request lines get a status line
        server_version = "kmf"

        def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
            """http.server's own refusals (broken request line or headers, unknown method) in
            the API's JSON shape; a method no route has is a 405, not a 501."""
            if code == HTTPStatus.NOT_IMPLEMENTED:
                code, message = HTTPStatus.METHOD_NOT_ALLOWED, f"method {self.command} not allowed"
            status = HTTPStatus(code) if code in HTTPStatus._value2member_map_ else None
            text = message or (status.phrase if status else "refused")
            body = b"" if self.command == "HEAD" else (json.dumps({"error": text}) + "\n").encode()
            self.close_connection = True
            self.send_response(code, status.phrase if status else "")
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            if body:
                self.wfile.write(body)

        timeout = 60  # seconds a connection may stay silent (TLS handshake included)

        def setup(self) -> None:
            super().setup()
            do_handshake = getattr(self.connection, "do_handshake", None)
            if do_handshake is not None:
                do_handshake()  # a plain-HTTP or wrong client fails here, in this thread only

        def log_message(self, fmt: str, *args: Any) -> None:
            log.debug("api %s - " + fmt, self.address_string(), *args)

        def _serve(self) -> None:
            length = self.headers.get("Content-Length")
            try:
                size = int(length) if length else 0
            except ValueError:
                size = -1
            if size < 0:
                self._send(400, "application/json", b'{"error": "bad Content-Length"}\n', {})
                return
            if size > MAX_BODY:
                if size <= DRAIN_LIMIT:  # read it away, or closing resets and the client never sees the 413
                    while size > 0:
                        chunk = self.rfile.read(min(size, 65536))
                        if not chunk:
                            break
                        size -= len(chunk)
                self._send(413, "application/json",
                           json.dumps({"error": f"body larger than {MAX_BODY} bytes"}).encode(), {"Connection": "close"})
                self.close_connection = True
                return
            body = self.rfile.read(size) if size else b""
            path = urlsplit(self.path).path
            method = "GET" if self.command == "HEAD" else self.command  # the same answer, headers only
            status, ctype, data, extra = api.handle(method, path, self.headers, body, urlsplit(self.path).query)
            self._send(status, ctype, data, extra)

        def _send(self, status: int, ctype: str, data: bytes | FileBody, extra: dict) -> None:
            file = data if isinstance(data, FileBody) else None  # streamed from disk
            body = data if isinstance(data, bytes) else b""
            try:
                source = open(file.path, "rb") if file is not None else None
            except OSError as exc:  # removed since the scheduler started: say so, as JSON
                assert file is not None  # only opening a file fails
                log.warning("artifact %s cannot be read: %s", file.path, exc)
                status, ctype, source, file = 410, "application/json", None, None
                body = (json.dumps({"error": f"the artifact is gone from the scheduler's disk: {exc.strerror}"})
                        + "\n").encode()
            self.send_response(status, HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "")
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(file.size if file is not None else len(body)))
            if file is not None:
                self.send_header("Cache-Control", "public, max-age=31536000, immutable")
            for k, v in extra.items():
                self.send_header(k, v)
            self.end_headers()
            if self.command == "HEAD":
                if source is not None:
                    source.close()
                return
            if source is None or file is None:  # both or neither
                self.wfile.write(body)
                return
            with source:
                shutil.copyfileobj(source, self.wfile, 1 << 20)
            api.artifact_sent(file.name or file.path.name, file.size, self.client_address[0])

        do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _serve  # noqa: N815

    return Handler
