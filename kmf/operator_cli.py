"""Operator commands that talk to a running scheduler's HTTP API.

`kmf plan show|interrupt|continue|restart|force-complete`, `kmf pods`, `kmf pod info|logs|restart|replace`,
`kmf endpoints`, `kmf scale brokers [--drain]|app`, `kmf rebalance [--dry-run]`, `kmf topic list|describe|create|delete`,
`kmf user create|list|delete` (SASL/SCRAM users; a password only ever from a file), `kmf tls rotate-ca`, `kmf uninstall`
(and `kmf config target|update`, registered by kmf.config_cli). Human output by default, `--json` for
scripts. The common options (--api, --token-file, --json, --timeout) go before or after the
sub-command. Exit codes: 0 done, 1 refused or failed (or not confirmed), 2 bad usage, 3 the API
cannot be reached. A standby answers a mutation with a 307 to the leader: the call is sent there
(same method, body and token), so 0 means the leader did it.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any, Callable
from urllib.parse import quote, urlencode, urljoin, urlsplit

from kmf.logtail import CHUNK, as_bytes, read_exact, tail_offset
from kmfio.httpjson import bearer, request
from kmfwire.errors import KmfError

EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3
DEFAULT_API = "http://127.0.0.1:8080"
MAX_REDIRECTS = 3  # standby → leader is one hop; a leader change mid-call may add one
UNPLACEABLE_POLLS = 3  # `plan show --wait` stops when a step stays unplaceable this many polls
POLL_S = 1.0
FOLLOW_POLL_S = 0.5  # `pod logs --follow` asks for new bytes this often
# what the common options are when given nowhere (sub-parsers use SUPPRESS so that a value given
# before the sub-command is not overwritten by the sub-parser's default)
COMMON_DEFAULTS: dict[str, Any] = {"api": None, "token_file": None, "json": False, "timeout": 30.0}


class Unreachable(KmfError):
    """The API (or the leader it redirected to) did not answer."""


class UsageError(KmfError):
    """Bad input found before anything was sent."""


class Failed(KmfError):
    """An answer that is neither a result nor a refusal (a redirect loop, a body that is not JSON)."""


# ------------------------------------------------------------------------------------ HTTP

def api_url(args: argparse.Namespace) -> str:
    """The API URL: --api, else $KMF_API, else the default (said on stderr once: a silent default
    has sent operators' commands to the wrong place)."""
    given = getattr(args, "api", None) or os.environ.get("KMF_API") or None
    if given:
        return given.rstrip("/")
    if not getattr(args, "_default_noted", False):
        print(f"using {DEFAULT_API} (no --api or KMF_API)", file=sys.stderr)
        args._default_noted = True
    return DEFAULT_API


def _api_defaulted(args: argparse.Namespace) -> bool:
    return not (getattr(args, "api", None) or os.environ.get("KMF_API"))


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _send(args: argparse.Namespace, method: str, url: str, data: bytes | None,
          headers: dict[str, str]) -> tuple[int, bytes, str | None]:
    timeout = getattr(args, "timeout", COMMON_DEFAULTS["timeout"])
    try:
        # `call` follows every 3xx itself: urllib refuses to follow a 307 on POST/PUT/DELETE
        reply = request(url, method, data, headers, timeout, follow_redirects=False)
        return reply.status, reply.body, reply.location
    except OSError as exc:
        reason = getattr(exc, "reason", None) or exc
        hint = " (no --api or KMF_API given: pass --api URL or set KMF_API)" if _api_defaulted(args) else ""
        raise Unreachable(f"cannot reach the kmf API at {_origin(url)}: {reason}{hint}") from None


def call(args: argparse.Namespace, method: str, path: str, body: Any = None,
         raw: bytes | None = None) -> tuple[int, Any]:
    """One API call: (HTTP status, JSON body). Redirects (a standby's 307 to the leader) are
    followed with the same method, body and token, at most MAX_REDIRECTS times."""
    url = api_url(args) + path
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    headers = {"Content-Type": "application/json"} if body is not None and raw is None else {}
    token = _token(args)
    if token:
        headers.update(bearer(token))
    for hop in range(MAX_REDIRECTS + 1):
        status, text, location = _send(args, method, url, data, headers)
        if not 300 <= status < 400:
            break
        if not location:
            raise Failed(f"{url} answered {status} without saying where to go (no Location)")
        if hop == MAX_REDIRECTS:
            raise Failed(f"gave up after {MAX_REDIRECTS} redirects (the last to {location}); "
                         "is a leader elected?")
        target = urljoin(url, location)
        print(f"{_origin(url)} is a standby; sending {method} {urlsplit(target).path} to the leader at "
              f"{_origin(target)}", file=sys.stderr)
        url = target
    try:
        return status, json.loads(text or b"null")
    except ValueError:
        shown = text.decode(errors="replace").strip()
        if status < 300:
            raise Failed(f"{url} answered {status} with a body that is not JSON: {shown[:200]!r}") from None
        return status, {"error": shown or f"HTTP {status}"}


def _token(args: argparse.Namespace) -> str | None:
    """The API token from --token-file or $KMF_TOKEN_FILE (read once); a missing or empty file
    is a usage error, found before anything is sent."""
    if hasattr(args, "_token"):
        return args._token
    given = getattr(args, "token_file", None)
    path, origin = (given, "--token-file") if given else (os.environ.get("KMF_TOKEN_FILE"), "KMF_TOKEN_FILE")
    token = None
    if path:
        try:
            token = Path(path).read_text().strip()
        except OSError as exc:
            raise UsageError(f"{origin} {path}: {exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise UsageError(f"{origin} {path}: not a text file") from None
        if not token:
            raise UsageError(f"{origin} {path}: the file is empty")
    args._token = token
    return token


# ------------------------------------------------------------------------------------ output

_KAFKA_ERROR = re.compile(r'KafkaError\{code=(?P<code>[A-Z_]+),val=-?\d+,str="(?P<text>.*?)"\}')
_CONFIRM = re.compile(r"[;,.]?\s*send\s+confirm:\s*true(\s+to\s+go\s+ahead)?", re.IGNORECASE)
_REFUSED_PREFIX = re.compile(r"^(\s*refused\s*:\s*)+", re.IGNORECASE)


def readable(message: str) -> str:
    """A server message for people: Kafka's raw `KafkaError{code=X,val=N,str="..."}` as
    `... (X)`, a leading "refused: " dropped (the CLI says it once itself)."""
    message = _KAFKA_ERROR.sub(lambda m: f"{m['text'].rstrip()} ({m['code']})", message)
    return _REFUSED_PREFIX.sub("", message).strip()


def needs_confirmation(doc: Any) -> bool:
    if not isinstance(doc, dict):
        return False
    return doc.get("confirm_required") is True or bool(_CONFIRM.search(str(doc.get("error") or "")))


def error_text(status: int, doc: Any) -> str:
    """One line saying what the API refused or failed, with the kind of answer first."""
    if isinstance(doc, dict):
        message = doc.get("error") or doc.get("message") or f"HTTP {status}"
    else:
        message = doc if isinstance(doc, str) and doc else f"HTTP {status}"
    message = _CONFIRM.sub("", readable(str(message))).rstrip(" ;,")
    if status == 404:
        label = "not found"
    elif status in (401, 403):
        label = "not authorized"
    elif status >= 500:
        label = "failed"
    else:
        label = "refused"
    return f"{label}: {message}"


def _print(args: argparse.Namespace, doc: Any, human: str) -> None:
    print(json.dumps(doc, indent=2) if args.json else human)


def _fail(args: argparse.Namespace, status: int, doc: Any) -> int:
    """A refusal: the JSON on stdout with --json; the reason on stderr always."""
    if args.json:
        print(json.dumps(doc, indent=2))
    print(error_text(status, doc), file=sys.stderr)
    for problem in (doc.get("problems") or []) if isinstance(doc, dict) else []:
        print(f"  {problem}", file=sys.stderr)
    if needs_confirmation(doc):
        print("re-run with --yes to confirm", file=sys.stderr)
    if isinstance(doc, dict) and doc.get("delete_confirm_required") is True:
        print(f"re-run with --yes-delete to delete {', '.join(doc.get('would_delete') or [])} from Kafka",
              file=sys.stderr)
    return EXIT_REFUSED


def _partial_failure(doc: Any) -> str | None:
    """A 2xx answer that still says part of the work failed (e.g. live broker settings Kafka
    did not take): that is not done, so not exit 0."""
    if not isinstance(doc, dict):
        return None
    for key in ("error", "live_error"):
        if doc.get(key):
            return readable(str(doc[key]))
    return None


def _result(args: argparse.Namespace, status: int, doc: Any) -> int:
    if status >= 300:
        return _fail(args, status, doc)
    partial = _partial_failure(doc)
    message = doc.get("message") if isinstance(doc, dict) else None
    _print(args, doc, readable(message) if message else json.dumps(doc))
    for line in (doc.get("diff") or []) if isinstance(doc, dict) else []:
        if not args.json:
            print(f"  {line}")
    if partial:
        print(f"failed: {partial}", file=sys.stderr)
        return EXIT_REFUSED
    return EXIT_OK


def table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join([fmt.format(*header)] + [fmt.format(*(str(c) for c in r)) for r in rows])


def _value(value: Any) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(_value(v) for v in value) or "-"
    return str(value)


def key_values(doc: dict, indent: int = 0) -> list[str]:
    """`key: value` lines, nested objects indented under their key (no Python reprs)."""
    pad = " " * indent
    width = max((len(str(k)) for k in doc), default=0) + 1
    lines: list[str] = []
    for key, value in doc.items():
        if isinstance(value, dict) and value:
            lines.append(f"{pad}{key}:")
            lines += key_values(value, indent + 2)
        elif isinstance(value, list) and any(isinstance(v, dict) for v in value):
            lines.append(f"{pad}{key}:")
            for item in value:
                sub = key_values(item, indent + 4) if isinstance(item, dict) else [" " * (indent + 4) + _value(item)]
                lines.append(" " * (indent + 2) + "- " + sub[0].lstrip())
                lines += sub[1:]
        else:
            lines.append(f"{pad}{str(key) + ':':<{width}} {_value(value)}")
    return lines


def plan_text(plan: dict) -> str:
    lines = [f"{plan['name']} ({plan['strategy']}) {plan['status']}"]
    for phase in plan.get("phases", []):
        said = f"  {phase['message']}" if phase.get("message") else ""  # the autoscale plan's last evaluation
        lines.append(f"├─ {phase['name']} ({phase['strategy']}) {phase['status']}{said}")
        for step in phase.get("steps", []):
            # a done step says nothing more, except an autoscaling decision (why it was taken)
            msg = f"  {step['message']}" if step.get("message") and (step["status"] != "COMPLETE" or "lag" in step) else ""
            if step.get("unplaceable"):
                msg += f"  (cannot be placed: {step['unplaceable']})"
            lines.append(f"│  ├─ {step['name']} {step['status']}{msg}")
    return "\n".join(lines)


def progress(plan: dict, width: int = 30) -> str:
    steps = [s for ph in plan.get("phases", []) for s in ph.get("steps", [])]
    done = sum(1 for s in steps if s["status"] == "COMPLETE")
    filled = int(width * done / len(steps)) if steps else width
    return f"[{'#' * filled}{'.' * (width - filled)}] {done}/{len(steps)} {plan['status']}"


# ------------------------------------------------------------------------------------ commands

def plan_show(args: argparse.Namespace) -> int:
    if args.plan is None:
        status, names = call(args, "GET", "/v1/plans")
        if status >= 300:
            return _fail(args, status, names)
        docs = []
        for name in names:
            status, doc = call(args, "GET", f"/v1/plans/{name}")
            if status >= 300:  # 202 is a plan in progress, shown like any other
                return _fail(args, status, doc)
            docs.append(doc)
        _print(args, docs, "\n".join(plan_text(d) for d in docs))
        return EXIT_OK
    status, doc = call(args, "GET", f"/v1/plans/{args.plan}")
    if status >= 300:
        return _fail(args, status, doc)
    if not args.wait:
        _print(args, doc, plan_text(doc))  # shown is done, whatever the plan's status
        return EXIT_OK
    return _follow(args, doc)


def _stuck_steps(doc: dict, seen: dict[str, int]) -> list[str]:
    """Steps whose "unplaceable" reason has been set for UNPLACEABLE_POLLS polls in a row
    (`seen` counts per step and is updated)."""
    now = {s["name"]: s["unplaceable"] for ph in doc.get("phases", []) for s in ph.get("steps", [])
           if s.get("unplaceable")}
    for name in list(seen):
        if name not in now:
            del seen[name]
    for name in now:
        seen[name] = seen.get(name, 0) + 1
    return [f"{name} cannot be placed: {reason}" for name, reason in now.items() if seen[name] >= UNPLACEABLE_POLLS]


def _follow(args: argparse.Namespace, doc: dict) -> int:
    """`plan show PLAN --wait`: follow until COMPLETE (exit 0), or stop with exit 1 and the reason:
    WAITING (interrupted: nothing will move until continued), ERROR, a step that cannot be placed,
    or the wait timeout."""
    started = time.monotonic()
    frames = sys.stdout.isatty() and not args.json  # \r redraws only on a terminal, not into logs
    last_line: str | None = None
    seen: dict[str, int] = {}
    while True:
        line = progress(doc)
        if not args.json and line != last_line:
            print("\r" + line if frames else line, end="" if frames else "\n", flush=True)
        last_line = line
        stuck = _stuck_steps(doc, seen)
        status, why = doc["status"], None
        if status == "COMPLETE":
            pass
        elif status == "WAITING":
            why = (f"plan {args.plan} is WAITING (interrupted); nothing moves until it is continued: "
                   f"kmf plan continue {args.plan}")
        elif status == "ERROR":
            why = f"plan {args.plan} is in ERROR: " + ("; ".join(doc.get("errors") or []) or "see the steps above")
        elif stuck:
            why = f"plan {args.plan} is stuck: " + "; ".join(stuck)
        elif time.monotonic() - started >= args.wait_timeout:
            why = f"timed out after {args.wait_timeout:g}s; plan {args.plan} is {status}"
        if status == "COMPLETE" or why:
            if frames:
                print()
            _print(args, doc, plan_text(doc))
            if why:
                print(why, file=sys.stderr)
                return EXIT_REFUSED
            return EXIT_OK
        time.sleep(max(0.0, min(POLL_S, args.wait_timeout - (time.monotonic() - started))))
        code, doc = call(args, "GET", f"/v1/plans/{args.plan}")
        if code >= 300:
            if frames:
                print()
            return _fail(args, code, doc)


def plan_command(args: argparse.Namespace) -> int:
    body = {k: v for k, v in (("phase", args.phase), ("step", args.step)) if v}
    status, doc = call(args, "POST", f"/v1/plans/{args.plan}/{args.plan_command}", body)
    return _result(args, status, doc)


def pod_lag(name: str, lag: dict) -> str:
    """LAG of `kmf pods`: a stream app pod's consumer-group total lag (its app's `group`) from the
    scheduler's latest sample; "?" while the group has no committed offset in it; "-" for a broker."""
    app = name.rsplit("-", 1)[0] if name.rsplit("-", 1)[-1].isdigit() else name
    found = (lag.get("apps") or {}).get(app)
    if found is None:
        return "-"
    return "?" if found.get("lag") is None else str(found["lag"])


def pod_row(info: dict, lag: dict | None = None) -> list[str]:
    """One line of `kmf pods`. HEALTHY is yes/no as the executor last said, "unknown" for a task
    whose health nobody can tell now (unreachable, or not reported yet), "-" without a task.
    APP_STATE is a stream app's Kafka Streams state (RUNNING, REBALANCING, ERROR...) as its
    executor last read it from the app's output; "-" for a broker or before the app said one."""
    healthy_text: dict[Any, str] = {True: "yes", False: "no"}
    healthy = healthy_text.get(info.get("healthy"), "unknown" if info.get("task_id") else "-")
    maint = info.get("maintenance") or {}
    message = info.get("not_placed_because") or info.get("message") or ""
    if maint:  # Mesos maintenance of its agent: the window, then what the pod waits for
        message = f"[{maint.get('text')}] " + (maint.get("waiting") or message)
    return [info.get("name", "?"), info.get("state", ""), "yes" if info.get("ready") else "no", healthy,
            info.get("hostname") or "-", pod_lag(info.get("name", "?"), lag or {}), info.get("app_state") or "-",
            message]


def pods(args: argparse.Namespace) -> int:
    status, names = call(args, "GET", "/v1/pod")
    if status >= 300:
        return _fail(args, status, names)
    infos, failures = [], []
    for name in names:
        code, info = call(args, "GET", f"/v1/pod/{name}/info")
        if code >= 300 or not isinstance(info, dict):
            failures.append(f"pod {name}: {error_text(code, info)}")
        else:
            infos.append(info)
    code, lag = call(args, "GET", "/v1/lag")  # an older scheduler has none: LAG "-"
    lag = lag if code < 300 and isinstance(lag, dict) else {}
    rows = [pod_row(i, lag) for i in infos]
    _print(args, infos, table(rows, ["POD", "STATE", "READY", "HEALTHY", "HOST", "LAG", "APP_STATE", "MESSAGE"]))
    for line in failures:  # a list with holes is not the list asked for
        print(line, file=sys.stderr)
    return EXIT_REFUSED if failures else EXIT_OK


def pod_command(args: argparse.Namespace) -> int:
    if args.pod_command == "info":
        status, doc = call(args, "GET", f"/v1/pod/{args.name}/info")
        if status >= 300:
            return _fail(args, status, doc)
        _print(args, doc, "\n".join(key_values(doc)) if isinstance(doc, dict) else json.dumps(doc))
        return EXIT_OK
    if args.pod_command == "decommission":
        status, doc = call(args, "POST", f"/v1/pod/{args.name}/decommission", {})
        if status >= 300 or not args.wait:
            return _result(args, status, doc)
        _print(args, doc, readable(doc["message"]))
        return _follow_rebalance(args)
    if args.pod_command == "restart":
        body = {"force": args.force}
    else:
        body = {"confirm": args.yes, "force": args.force}
    return _result(args, *call(args, "POST", f"/v1/pod/{args.name}/{args.pod_command}", body))


class AgentUnreachable(Unreachable):
    """The scheduler answered but the pod's agent did not (502)."""


def _logs_page(args: argparse.Namespace, offset: int, length: int | None) -> dict:
    """One slice of the pod's sandbox file through the scheduler (which reads the agent's
    /files/read): {"data", "offset", "task_id", ...}. Raises on any refusal."""
    query = {"file": args.file, "offset": str(offset)}
    if length is not None:
        query["length"] = str(length)
    status, doc = call(args, "GET", f"/v1/pod/{quote(args.name, safe='')}/logs?{urlencode(query)}")
    if status == 502:
        raise AgentUnreachable(error_text(status, doc).replace("failed: ", "", 1))
    if status >= 300:
        raise _Refused(status, doc)
    return doc


class _Refused(KmfError):
    def __init__(self, status: int, doc: Any) -> None:
        super().__init__(error_text(status, doc))
        self.status, self.doc = status, doc


def pod_logs(args: argparse.Namespace) -> int:
    """`kmf pod logs NAME [--tail N] [--stderr | --file F] [--follow]`: the pod's sandbox file, read
    through the scheduler from the agent's /files/read (as `dcos task log`)."""
    if args.stderr:
        args.file = "stderr"
    if args.tail is not None and args.tail < 0:
        raise UsageError(f"--tail {args.tail}: a number of lines, 0 or more")
    try:
        return _pod_logs(args)
    except _Refused as exc:
        return _fail(args, exc.status, exc.doc)
    except KeyboardInterrupt:  # Ctrl-C ends --follow: done
        return EXIT_OK


def _write(data: bytes) -> None:
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


def _pod_logs(args: argparse.Namespace) -> int:
    def read(offset: int, length: int) -> bytes:
        return as_bytes(_logs_page(args, offset, length)["data"])

    head = _logs_page(args, -1, None)
    size, task_id = head["offset"], head["task_id"]
    start = tail_offset(size, read, args.tail) if args.tail is not None else 0
    offset = start
    while offset < size:
        data = read_exact(read, offset, min(CHUNK, size - offset))
        if not data:
            break
        _write(data)
        offset += len(data)
    if not args.follow:
        return EXIT_OK
    waiting: str | None = None
    while True:
        time.sleep(FOLLOW_POLL_S)
        try:
            page = _logs_page(args, offset, CHUNK)
        except (_Refused, Unreachable) as exc:
            # a relaunch in progress (no task, its sandbox not listed yet, its file not written yet)
            # or an agent that does not answer for a while: say so once and keep following; a pod
            # that is gone ends it
            if isinstance(exc, _Refused) and exc.status not in (409, 502, 503) and not (
                    exc.status == 404 and isinstance(exc.doc, dict) and exc.doc.get("where") == "file"):
                raise
            if str(exc) != waiting:
                waiting = str(exc)
                print(f"waiting: {waiting}", file=sys.stderr)
            continue
        waiting = None
        if page["task_id"] != task_id:
            task_id, offset = page["task_id"], 0
            print(f"pod {args.name} was relaunched (task {task_id}, sandbox "
                  f"{(page.get('sandbox') or {}).get('directory', '?')}); following its new {args.file}",
                  file=sys.stderr)
            continue
        data = as_bytes(page["data"])
        if data:
            _write(data)
            offset += len(data)
            continue
        size = _logs_page(args, -1, None)["offset"]
        if size < offset:  # the file shrank (rotated or truncated): from its start again
            print(f"{args.file} of pod {args.name} shrank to {size} bytes; reading it from the start",
                  file=sys.stderr)
            offset = 0


def endpoints(args: argparse.Namespace) -> int:
    status, doc = call(args, "GET", f"/v1/endpoints/{args.name}" if args.name else "/v1/endpoints")
    if status >= 300:
        return _fail(args, status, doc)
    if isinstance(doc, dict):
        human = doc.get("bootstrap_servers", "")
    elif all(isinstance(group, dict) for group in doc):  # metrics: Prometheus file-SD target groups
        human = "\n".join(f"{g['labels'].get('pod', '')}  {' '.join(g['targets'])}" for g in doc)
    else:  # the endpoint names
        human = "\n".join(doc)
    if isinstance(doc, dict) and ("tls" in doc or "sasl" in doc):
        lines = [f"PLAINTEXT  {human}"]
        lines += [f"{doc[k]['security_protocol']:<10} {doc[k]['bootstrap_servers']}" for k in ("tls", "sasl") if k in doc]
        ca = (doc.get("tls") or {}).get("ca_cert")
        if ca and getattr(args, "ca_file", None):
            with open(args.ca_file, "w") as f:
                f.write(ca)
            lines.append(f"CA certificate written to {args.ca_file}")
        human = "\n".join(lines)
    _print(args, doc, human)
    return EXIT_OK


def scale(args: argparse.Namespace) -> int:
    if args.what == "app" and getattr(args, "auto", False) == (args.count is not None):
        print("kmf scale app: give the instance count, or --auto to resume autoscaling (not both)", file=sys.stderr)
        return EXIT_USAGE
    body = {"kind": "brokers", "count": args.count, "confirm": bool(getattr(args, "yes", False)),
            "drain": bool(getattr(args, "drain", False))} \
        if args.what == "brokers" else \
        ({"kind": "app", "name": args.name, "auto": True} if getattr(args, "auto", False)
         else {"kind": "app", "name": args.name, "count": args.count})
    status, doc = call(args, "POST", "/v1/scale", body)
    if status >= 300 or not getattr(args, "drain", False) or not getattr(args, "wait", False) \
            or "draining" not in str(doc.get("message", "")):
        return _result(args, status, doc)
    _print(args, doc, readable(doc["message"]))
    return _follow_rebalance(args)


def moves_text(doc: dict) -> str:
    """What a rebalance moves: each partition from/to, and the replicas per broker before and after."""
    lines = [readable(doc.get("message", ""))]
    for m in doc.get("moves", []):
        lines.append(f"  {m['partition']}: {m['from']} → {m['to']}")
    if doc.get("before"):
        lines.append("  replicas per broker: " + ", ".join(
            f"{b}: {n} → {doc['after'].get(b, n)}" for b, n in sorted(doc["before"].items(), key=lambda i: int(i[0]))))
    return "\n".join(lines)


def _follow_rebalance(args: argparse.Namespace) -> int:
    args.plan = "rebalance"
    status, doc = call(args, "GET", "/v1/plans/rebalance")
    if status >= 300:
        return _fail(args, status, doc)
    return _follow(args, doc)


def rebalance(args: argparse.Namespace) -> int:
    status, doc = call(args, "POST", "/v1/rebalance", {"dry_run": bool(args.dry_run)})
    if status >= 300:
        return _fail(args, status, doc)
    _print(args, doc, moves_text(doc))
    if args.wait and not args.dry_run and doc.get("moves"):
        return _follow_rebalance(args)
    return EXIT_OK


def tls(args: argparse.Namespace) -> int:
    """`kmf tls rotate-ca [--wait]`: a new CA of kmf's own, rolled in with a trust overlap."""
    status, doc = call(args, "POST", "/v1/tls/rotate-ca")
    if status >= 300 or not args.wait:
        return _result(args, status, doc)
    _print(args, doc, readable(doc.get("message", "")))
    args.plan = "ca-rotation"
    status, doc = call(args, "GET", "/v1/plans/ca-rotation")
    if status >= 300:
        return _fail(args, status, doc)
    return _follow(args, doc)


def topic(args: argparse.Namespace) -> int:
    if args.topic_command == "list":
        status, doc = call(args, "GET", "/v1/topics")
        if status >= 300:
            return _fail(args, status, doc)
        _print(args, doc, "\n".join(doc))
        return EXIT_OK
    if args.topic_command == "describe":
        status, doc = call(args, "GET", f"/v1/topics/{args.name}")
        if status >= 300:
            return _fail(args, status, doc)
        rows = [[p["partition"], p["leader"], ",".join(map(str, p["replicas"])), ",".join(map(str, p["isr"])),
                 "yes" if p["under_replicated"] else "", "yes" if p["offline"] else ""] for p in doc["partitions"]]
        _print(args, doc, table(rows, ["PARTITION", "LEADER", "REPLICAS", "ISR", "UNDER-REPLICATED", "OFFLINE"]))
        return EXIT_OK
    if args.topic_command == "create":
        config = dict(args.config or [])
        body = {"name": args.name, "partitions": args.partitions, "replication": args.replication, "config": config}
        return _result(args, *call(args, "POST", "/v1/topics", body))
    return _result(args, *call(args, "DELETE", f"/v1/topics/{args.name}"))


def key_value(item: str) -> tuple[str, str]:
    """argparse type of `--config KEY=VALUE`: anything else is a usage error naming the item."""
    key, sep, value = item.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"{item!r} is not KEY=VALUE (e.g. retention.ms=60000)")
    return key.strip(), value


def user(args: argparse.Namespace) -> int:
    if args.user_command == "list":
        status, doc = call(args, "GET", "/v1/users")
        if status >= 300:
            return _fail(args, status, doc)
        _print(args, doc, table([[u["name"], ",".join(u["mechanisms"])] for u in doc], ["USER", "MECHANISMS"]))
        return EXIT_OK
    if args.user_command == "create":
        # from a file (or stdin with -), never from argv: command lines are visible to every user
        try:
            text = sys.stdin.read() if args.password_file == "-" else Path(args.password_file).read_text()
        except OSError as exc:
            print(f"{args.password_file}: {exc.strerror}", file=sys.stderr)
            return EXIT_USAGE
        password = text.rstrip("\r\n")
        return _result(args, *call(args, "POST", "/v1/users", {"name": args.name, "password": password}))
    return _result(args, *call(args, "DELETE", f"/v1/users/{args.name}"))


UNINSTALL_WARNING = "Uninstall kills every broker and app and deletes their data."


def uninstall(args: argparse.Namespace) -> int:
    if not args.yes:
        if not sys.stdin.isatty():
            print(f"not uninstalled: {UNINSTALL_WARNING} There is no terminal to ask on; "
                  "re-run with --yes to confirm", file=sys.stderr)
            return EXIT_REFUSED
        try:
            answer = input(f"{UNINSTALL_WARNING} Type 'yes': ")
        except (EOFError, KeyboardInterrupt):
            print()
            answer = ""
        if answer.strip() != "yes":
            print("not uninstalled (re-run with --yes to confirm without the question)", file=sys.stderr)
            return EXIT_REFUSED
    return _result(args, *call(args, "POST", "/v1/uninstall"))


def config_target(args: argparse.Namespace) -> int:
    status, doc = call(args, "GET", "/v1/config/target")
    if status >= 300:
        return _fail(args, status, doc)
    import yaml
    _print(args, doc, f"# config {doc['id']}\n" + yaml.safe_dump(doc["config"], sort_keys=False))
    return EXIT_OK


def config_update(args: argparse.Namespace) -> int:
    try:
        raw = Path(args.file).read_bytes()
    except OSError as exc:
        raise UsageError(f"{args.file}: {exc.strerror or exc}") from None
    confirm, confirm_delete = bool(getattr(args, "yes", False)), bool(getattr(args, "yes_delete", False))
    if not (confirm or confirm_delete):
        return _result(args, *call(args, "PUT", "/v1/config", raw=raw))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{args.file}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    body = {"yaml": text, "confirm": confirm, **({"confirm_delete": True} if confirm_delete else {})}
    return _result(args, *call(args, "PUT", "/v1/config", body))


def _declared_text(doc: dict) -> str:
    lines = [f"declared topics and users: {doc.get('state')} (config {doc.get('config_id', '?')})"]
    for key in ("topics", "users"):
        if doc.get(key):
            lines.append(f"  {key}: {', '.join(doc[key])}")
    deleting = doc.get("deleting") or {}
    if deleting.get("topics") or deleting.get("users"):
        lines.append(f"  deleting: {', '.join([*deleting.get('topics', []), *deleting.get('users', [])])}")
    lines += [f"  applied: {a}" for a in doc.get("applied") or []]
    lines += [f"  not done: {p}" for p in doc.get("problems") or []]
    lines += [f"  failed: {e}" for e in doc.get("errors") or []]
    return "\n".join(lines)


def config_declared(args: argparse.Namespace) -> int:
    """How Kafka matches the declared topics and users; with --wait, until it does for the
    current target config (exit 1 on an error of the reconciler, or on --wait-timeout)."""
    started = time.monotonic()
    while True:
        status, doc = call(args, "GET", "/v1/declared")
        if status >= 300:
            return _fail(args, status, doc)
        if not args.wait:
            _print(args, doc, _declared_text(doc))
            return EXIT_OK
        t_status, target = call(args, "GET", "/v1/config/target")
        if t_status >= 300:
            return _fail(args, t_status, target)
        current = doc.get("config_id") == target.get("id")
        if current and doc.get("state") in ("in sync", "nothing declared"):
            _print(args, doc, _declared_text(doc))
            return EXIT_OK
        if current and doc.get("state") in ("error", "not applied"):
            _print(args, doc, _declared_text(doc))
            print("failed: the declared topics and users are not all applied (see above"
                  + ("; kmf retries)" if doc["state"] == "error" else ")"), file=sys.stderr)
            return EXIT_REFUSED
        if time.monotonic() - started >= args.wait_timeout:
            print(f"failed: timed out after {args.wait_timeout:g}s; declared: {doc.get('state')}", file=sys.stderr)
            return EXIT_REFUSED
        time.sleep(1.0)


def _guard(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Run an API command: common options filled in, the token file checked before anything is
    sent, and each way of not getting a result turned into its exit code and one clear line."""
    def run(args: argparse.Namespace) -> int:
        for key, value in COMMON_DEFAULTS.items():
            if not hasattr(args, key):
                setattr(args, key, value)
        try:
            _token(args)
            return func(args)
        except UsageError as exc:
            print(f"kmf: {exc}", file=sys.stderr)
            return EXIT_USAGE
        except Unreachable as exc:
            print(str(exc), file=sys.stderr)
            return EXIT_UNREACHABLE
        except Failed as exc:
            print(f"failed: {exc}", file=sys.stderr)
            return EXIT_REFUSED
    return run


def common(parser: argparse.ArgumentParser, top: bool = False) -> None:
    """The options every API command takes; on the top-level and group parsers too, so that they
    work before or after the sub-command (`top` has the defaults, the others SUPPRESS so that they
    do not overwrite a value given earlier)."""
    dflt = (lambda key: COMMON_DEFAULTS[key]) if top else (lambda key: argparse.SUPPRESS)
    parser.add_argument("--api", default=dflt("api"), metavar="URL",
                        help=f"the scheduler's API URL (default: $KMF_API, else {DEFAULT_API})")
    parser.add_argument("--token-file", default=dflt("token_file"), metavar="FILE",
                        help="file with the API token (default: $KMF_TOKEN_FILE)")
    parser.add_argument("--json", action="store_true", default=dflt("json"), help="JSON output for scripts")
    parser.add_argument("--timeout", type=float, default=dflt("timeout"), metavar="S",
                        help="HTTP timeout in seconds (default 30)")


def _group(subparsers: argparse._SubParsersAction, name: str, help: str, dest: str) -> argparse._SubParsersAction:
    parser = subparsers.add_parser(name, help=help, description=help)
    common(parser)
    return parser.add_subparsers(dest=dest, required=True, metavar="ACTION")


def _leaf(sub: argparse._SubParsersAction, action: str, help: str,
          func: Callable[[argparse.Namespace], int], **defaults: Any) -> argparse.ArgumentParser:
    parser = sub.add_parser(action, help=help, description=help)
    parser.set_defaults(func=_guard(func), **defaults)
    return parser


def register(subparsers: argparse._SubParsersAction) -> None:
    psub = _group(subparsers, "plan", "show or steer plans (deploy, recovery, update, rebalance)", "plan_command")
    show = _leaf(psub, "show", "show one plan or all; with --wait follow one until it is COMPLETE", plan_show)
    show.add_argument("plan", nargs="?")
    show.add_argument("--wait", action="store_true",
                      help="follow the plan until COMPLETE (exit 0); stop with exit 1 when it is WAITING, "
                           "in ERROR, has a step that cannot be placed, or on --wait-timeout")
    show.add_argument("--wait-timeout", type=float, default=1800.0, metavar="S")
    common(show)
    for name, what in (("interrupt", "pause a plan (or one phase/step of it)"),
                       ("continue", "resume an interrupted plan (or one phase/step of it)"),
                       ("restart", "restart one step of a plan (--step POD)"),
                       ("force-complete", "mark one step of a plan complete (--step POD)")):
        p = _leaf(psub, name, what, plan_command)
        p.add_argument("plan")
        p.add_argument("--phase")
        p.add_argument("--step", help="pod name of the step")
        common(p)

    p = subparsers.add_parser("pods", help="list pods with their state")
    common(p)
    p.set_defaults(func=_guard(pods))
    podsub = _group(subparsers, "pod", "one pod: info, restart (in place), replace (elsewhere) or decommission "
                                       "(a broker, for good)", "pod_command")
    p = _leaf(podsub, "info", "everything kmf knows about one pod", pod_command)
    p.add_argument("name")
    common(p)
    p = _leaf(podsub, "restart", "restart a pod in place (brokers: only when the cluster can spare it, "
                                 "unless --force)", pod_command)
    p.add_argument("name")
    p.add_argument("--force", action="store_true", help="skip the safety gate (min ISR, quorum, one at a time)")
    common(p)
    p = _leaf(podsub, "replace", "place a pod anew (any agent, possibly the same); its data is lost (needs --yes)", pod_command)
    p.add_argument("name")
    p.add_argument("--yes", action="store_true", help="confirm that the pod's data is deleted")
    p.add_argument("--force", action="store_true", help="skip the safety gate (min ISR, quorum, one at a time)")
    common(p)

    p = _leaf(podsub, "logs", "the pod's sandbox stdout (or --stderr, --file), read through the scheduler "
                              "from its agent's /files/read", pod_logs)
    p.add_argument("name")
    p.add_argument("--tail", type=int, metavar="N", help="only the last N lines")
    p.add_argument("--follow", "-f", action="store_true", help="keep printing what is appended until Ctrl-C "
                                                             "(a relaunched task's new sandbox is followed)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--stderr", action="store_true", help="the sandbox's stderr instead of stdout")
    which.add_argument("--file", default="stdout", metavar="NAME",
                       help="any file of the sandbox, by its path inside it (default stdout)")
    common(p)

    p = _leaf(podsub, "decommission", "remove one broker for good: its replicas move to the others first, the "
                                      "other brokers keep their node ids (plan rebalance)", pod_command)
    p.add_argument("name")
    p.add_argument("--wait", action="store_true", help="follow until the broker is empty and removed")
    p.add_argument("--wait-timeout", type=float, default=3600.0, metavar="S")
    common(p)

    p = subparsers.add_parser("endpoints", help="bootstrap servers and broker addresses; metrics: the "
                              "brokers' Prometheus targets (--json: a file-SD file)")
    p.add_argument("name", nargs="?", help="broker or metrics (none: the endpoint names)")
    p.add_argument("--ca-file", help="with kafka.tls: write the CA certificate (PEM) clients trust here")
    common(p)
    p.set_defaults(func=_guard(endpoints))

    scsub = _group(subparsers, "scale", "change the number of brokers or of an app's instances", "what")
    p = _leaf(scsub, "brokers", "set the broker count (a scale-in needs --drain, or --yes and empty brokers)",
              scale, name=None)
    p.add_argument("count", type=int)
    p.add_argument("--yes", action="store_true", help="confirm a scale-in (it deletes the removed brokers' data)")
    p.add_argument("--drain", action="store_true",
                   help="scale in safely: move every replica off the brokers to remove first (plan rebalance)")
    p.add_argument("--wait", action="store_true", help="with --drain: follow the drain until it is done")
    p.add_argument("--wait-timeout", type=float, default=3600.0, metavar="S")
    common(p)
    p = _leaf(scsub, "app", "set the instance count of a stream app (it pauses the app's autoscaling), "
                            "or resume its autoscaling (--auto)", scale)
    p.add_argument("name")
    p.add_argument("count", type=int, nargs="?")
    p.add_argument("--auto", action="store_true", help="resume the app's lag autoscaling (no count)")
    common(p)

    p = subparsers.add_parser("rebalance", help="balance partition replicas and leaders over every broker "
                                                "(rack-aware, throttled, in batches: plan rebalance)")
    p.add_argument("--dry-run", action="store_true", help="only show the moves")
    p.add_argument("--wait", action="store_true", help="follow the rebalance until it is done")
    p.add_argument("--wait-timeout", type=float, default=3600.0, metavar="S")
    common(p)
    p.set_defaults(func=_guard(rebalance))

    lsub = _group(subparsers, "tls", "Kafka TLS of kmf's own CA", "tls_command")
    p = _leaf(lsub, "rotate-ca", "replace the CA now: brokers trust both, then get certificates of the new one, "
                                 "then the old is dropped (plan ca-rotation)", tls)
    p.add_argument("--wait", action="store_true", help="follow the rotation until it is done")
    p.add_argument("--wait-timeout", type=float, default=3600.0, metavar="S")
    common(p)

    tsub = _group(subparsers, "topic", "Kafka topics through the scheduler", "topic_command")
    p = _leaf(tsub, "list", "topic names (internal ones left out)", topic)
    common(p)
    for name, what in (("describe", "partitions of a topic: leader, replicas, ISR"), ("delete", "delete a topic")):
        p = _leaf(tsub, name, what, topic)
        p.add_argument("name")
        common(p)
    p = _leaf(tsub, "create", "create a topic", topic)
    p.add_argument("name")
    p.add_argument("--partitions", type=int, default=1)
    p.add_argument("--replication", type=int, default=-1, help="replication factor (default: the brokers')")
    p.add_argument("--config", action="append", metavar="KEY=VALUE", type=key_value,
                   help="a topic setting (repeatable)")
    common(p)

    usub = _group(subparsers, "user", "SASL/SCRAM users of the brokers (kafka.sasl)", "user_command")
    p = _leaf(usub, "create", "create a user or set a new password", user)
    p.add_argument("name")
    p.add_argument("--password-file", required=True, help="file holding the password (- for stdin)")
    common(p)
    p = _leaf(usub, "list", "users and their mechanisms", user)
    common(p)
    p = _leaf(usub, "delete", "delete a user", user)
    p.add_argument("name")
    common(p)

    p = subparsers.add_parser("uninstall", help="kill everything, release reservations, remove the framework")
    p.add_argument("--yes", action="store_true", help="confirm (without it kmf asks on a terminal, "
                                                      "and refuses when there is none)")
    common(p)
    p.set_defaults(func=_guard(uninstall))
