"""The operator CLI as a subprocess (`python -m kmf ...`) against small real HTTP servers that
answer like the scheduler's API (standby redirects, refusals, plans that wait or fail) and record
what the CLI sent: exit codes are honest, redirects are followed with method, body and token,
messages are readable, the request bodies follow the API contract. No Kafka needed; the same
commands against a running service are in tests/integration/e2e/test_cli_operator_paths.py."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

pytestmark = pytest.mark.timeout(120)


class ApiDouble:
    """A real HTTP server on 127.0.0.1: canned answers per (method, path), given in order (the
    last one repeats), and every request it got as (method, path, headers, body)."""

    def __init__(self) -> None:
        self.answers: dict[tuple[str, str], list[tuple[int, Any, dict[str, str]]]] = {}
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        double = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                size = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(size) if size else b""
                double.requests.append((self.command, self.path, dict(self.headers), body))
                queue = double.answers.get((self.command, self.path))
                if not queue:
                    status, doc, extra = 404, {"error": f"no such endpoint: {self.path}"}, {}
                else:
                    status, doc, extra = queue.pop(0) if len(queue) > 1 else queue[0]
                data = doc if isinstance(doc, bytes) else (json.dumps(doc) + "\n").encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in extra.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _serve  # noqa: N815

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def answer(self, method: str, path: str, *answers: tuple) -> None:
        self.answers[(method, path)] = [(a[0], a[1], a[2] if len(a) > 2 else {}) for a in answers]

    def sent(self, method: str, path: str) -> list[tuple[dict[str, str], bytes]]:
        return [(h, b) for m, p, h, b in self.requests if (m, p) == (method, path)]

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def api():
    doubles: list[ApiDouble] = []

    def make() -> ApiDouble:
        doubles.append(ApiDouble())
        return doubles[-1]
    yield make
    for d in doubles:
        d.stop()


def kmf(*argv: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in ("KMF_API", "KMF_TOKEN_FILE")}
    return subprocess.run([sys.executable, "-m", "kmf", *argv], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL, env={**base, **(env or {})})


def no_traceback(out: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in out.stderr + out.stdout, out.stderr


# ------------------------------------------------------------------------ defect 5: standby

@pytest.mark.parametrize("argv, method, path, body", [
    (["scale", "app", "sleeper", "2"], "POST", "/v1/scale", {"kind": "app", "name": "sleeper", "count": 2}),
    (["uninstall", "--yes"], "POST", "/v1/uninstall", None),
    (["topic", "delete", "t1"], "DELETE", "/v1/topics/t1", None),
    (["config", "update", "{file}"], "PUT", "/v1/config", "name: x\n"),
])
def test_a_mutation_answered_307_by_a_standby_is_sent_to_the_leader(api, tmp_path, argv, method, path, body):
    standby, leader = api(), api()
    standby.answer(method, path, (307, {"error": "this instance is a standby", "location": leader.url + path},
                                  {"Location": leader.url + path}))
    leader.answer(method, path, (200, {"message": "done by the leader"}))
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    (tmp_path / "new.yaml").write_text("name: x\n")
    argv = [a.replace("{file}", str(tmp_path / "new.yaml")) for a in argv]
    out = kmf(*argv, "--api", standby.url, "--token-file", str(token))
    assert out.returncode == 0, out.stderr
    # the leader got the same call: method, body and token
    [(headers, sent)] = leader.sent(method, path)
    assert headers.get("Authorization") == "Bearer s3cret"
    if isinstance(body, dict):
        assert json.loads(sent) == body
    elif isinstance(body, str):
        assert sent.decode() == body
    assert "done by the leader" in out.stdout
    assert "standby" in out.stderr and leader.url in out.stderr  # where it went is said


def test_a_redirect_without_location_or_a_redirect_loop_is_not_success(api):
    lost, loop = api(), api()
    lost.answer("POST", "/v1/pod/broker-0/restart", (307, {"error": "this instance is a standby"}))
    out = kmf("pod", "restart", "broker-0", "--api", lost.url)
    assert out.returncode == 1 and "Location" in out.stderr, out
    loop.answer("POST", "/v1/uninstall", (307, {"error": "standby"}, {"Location": loop.url + "/v1/uninstall"}))
    out = kmf("uninstall", "--yes", "--api", loop.url)
    assert out.returncode == 1 and "redirects" in out.stderr, out
    assert len(loop.sent("POST", "/v1/uninstall")) == 4  # the first call and 3 hops, then it gives up
    no_traceback(out)


def test_a_standby_whose_leader_is_unreachable_exits_3(api):
    standby = api()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    standby.answer("POST", "/v1/scale", (307, {"error": "standby"}, {"Location": dead + "/v1/scale"}))
    out = kmf("scale", "app", "x", "1", "--api", standby.url)
    assert out.returncode == 3 and dead in out.stderr, out


# ------------------------------------------------------------------------ honest exit codes

def test_pods_exits_1_naming_the_pod_whose_info_failed(api):
    a = api()
    a.answer("GET", "/v1/pod", (200, ["broker-0", "broker-1"]))
    a.answer("GET", "/v1/pod/broker-0/info", (200, {"name": "broker-0", "state": "TASK_RUNNING", "ready": True}))
    a.answer("GET", "/v1/pod/broker-1/info", (404, {"error": "pod 'broker-1' does not exist"}))
    out = kmf("pods", "--api", a.url)
    no_traceback(out)
    assert out.returncode == 1 and "broker-0" in out.stdout
    assert "pod broker-1: not found: pod 'broker-1' does not exist" in out.stderr


def test_pods_shows_a_stream_app_pods_consumer_group_lag(api):
    a = api()
    a.answer("GET", "/v1/pod", (200, ["broker-0", "wordcount-0", "other-1"]))
    for name in ("broker-0", "wordcount-0", "other-1"):
        a.answer("GET", f"/v1/pod/{name}/info", (200, {"name": name, "state": "TASK_RUNNING", "ready": True}))
    a.answer("GET", "/v1/lag", (200, {"apps": {"wordcount": {"group": "wordcount", "lag": 42},
                                               "other": {"group": "g2", "lag": None}}}))
    out = kmf("pods", "--api", a.url)
    no_traceback(out)
    assert out.returncode == 0, out.stderr
    lines = {line.split()[0]: line.split() for line in out.stdout.splitlines()}
    assert lines["POD"][5] == "LAG"
    assert lines["wordcount-0"][5] == "42" and lines["other-1"][5] == "?" and lines["broker-0"][5] == "-"


def test_a_2xx_that_is_not_json_or_reports_a_partial_failure_is_not_success(api):
    a = api()
    a.answer("POST", "/v1/scale", (200, b"<html>proxy</html>"))
    out = kmf("scale", "app", "x", "1", "--api", a.url)
    no_traceback(out)
    assert out.returncode == 1 and "not JSON" in out.stderr
    a.answer("PUT", "/v1/config", (200, {"message": "configuration updated", "live_applied": [],
                                         "live_error": "Invalid ConfigResource(4,)"}))
    out = kmf("config", "update", "/dev/null", "--api", a.url)
    assert out.returncode == 1 and "Invalid ConfigResource" in out.stderr, out


def plan(status: str, steps: list[tuple], errors: list[str] | None = None) -> dict:
    return {"name": "deploy", "strategy": "serial", "status": status, "errors": errors or [],
            "phases": [{"name": "brokers", "strategy": "serial", "status": status,
                        "steps": [{"name": s[0], "status": s[1], "message": "",
                                   **({"unplaceable": s[2]} if len(s) > 2 else {})} for s in steps]}]}


def test_plan_wait_stops_on_waiting_error_unplaceable_and_timeout(api):
    a = api()
    # without --wait a plan in progress (answered 202) is shown: done, exit 0
    a.answer("GET", "/v1/plans/deploy", (202, plan("IN_PROGRESS", [("broker-0", "STARTING")])))
    out = kmf("plan", "show", "deploy", "--api", a.url)
    assert out.returncode == 0 and "deploy (serial) IN_PROGRESS" in out.stdout

    a.answer("GET", "/v1/plans/deploy", (202, plan("WAITING", [("broker-0", "PENDING")])))
    started = time.monotonic()
    out = kmf("plan", "show", "deploy", "--wait", "--api", a.url)
    assert out.returncode == 1 and "WAITING" in out.stderr and "kmf plan continue deploy" in out.stderr, out
    assert time.monotonic() - started < 20

    a.answer("GET", "/v1/plans/deploy", (202, plan("ERROR", [("broker-0", "ERROR")],
                                                   errors=["broker-0: exited 1 five times"])))
    out = kmf("plan", "show", "deploy", "--wait", "--api", a.url)
    assert out.returncode == 1 and "broker-0: exited 1 five times" in out.stderr, out

    # unplaceable for 3 polls in a row (a first poll with it cleared does not count)
    a.answer("GET", "/v1/plans/deploy",
             (202, plan("IN_PROGRESS", [("broker-1", "PENDING", "no offer has 4 cpus")])),
             (202, plan("IN_PROGRESS", [("broker-1", "PENDING", None)])),
             (202, plan("IN_PROGRESS", [("broker-1", "PENDING", "no offer has 4 cpus")])))
    started = time.monotonic()
    out = kmf("plan", "show", "deploy", "--wait", "--api", a.url)
    took = time.monotonic() - started
    assert out.returncode == 1 and "broker-1 cannot be placed: no offer has 4 cpus" in out.stderr, out
    assert 3 <= took < 20, took
    assert len(a.sent("GET", "/v1/plans/deploy")) >= 5  # 1 + 1 cleared + 3 unplaceable ... polls

    a.answer("GET", "/v1/plans/deploy", (202, plan("IN_PROGRESS", [("broker-0", "STARTING")])))
    out = kmf("plan", "show", "deploy", "--wait", "--wait-timeout", "2", "--api", a.url)
    assert out.returncode == 1 and "timed out after 2s" in out.stderr, out


def test_plan_wait_without_a_terminal_writes_one_line_per_change_and_no_carriage_returns(api):
    a = api()
    a.answer("GET", "/v1/plans/deploy",
             (202, plan("IN_PROGRESS", [("broker-0", "STARTING"), ("broker-1", "PENDING")])),
             (202, plan("IN_PROGRESS", [("broker-0", "STARTING"), ("broker-1", "PENDING")])),
             (202, plan("IN_PROGRESS", [("broker-0", "COMPLETE"), ("broker-1", "STARTING")])),
             (200, plan("COMPLETE", [("broker-0", "COMPLETE"), ("broker-1", "COMPLETE")])))
    out = kmf("plan", "show", "deploy", "--wait", "--api", a.url)
    assert out.returncode == 0, out.stderr
    assert "\r" not in out.stdout
    bars = [line for line in out.stdout.splitlines() if line.startswith("[")]
    assert [b.split("] ")[1] for b in bars] == ["0/2 IN_PROGRESS", "1/2 IN_PROGRESS", "2/2 COMPLETE"]


# ------------------------------------------------------------------------ readable refusals

def test_refusals_are_said_once_readably_and_name_yes(api):
    a = api()
    a.answer("PUT", "/v1/config", (409, {"error": "refused: kafka.disk_mb: cannot shrink a volume",
                                         "reasons": ["kafka.disk_mb: cannot shrink a volume"]}))
    out = kmf("config", "update", "/dev/null", "--api", a.url)
    assert out.returncode == 1 and out.stderr.count("refused") == 1, out.stderr
    assert "refused: kafka.disk_mb: cannot shrink a volume" in out.stderr

    a.answer("GET", "/v1/pod/nope/info", (404, {"error": "pod 'nope' does not exist", "where": "pod"}))
    out = kmf("pod", "info", "nope", "--api", a.url)
    assert out.returncode == 1 and "not found: pod 'nope' does not exist" in out.stderr
    assert "refused" not in out.stderr and "404" not in out.stderr

    # today's server sentence, and the flag replies that need a confirmation will carry
    a.answer("POST", "/v1/scale", (409, {"error": "scaling in kills broker-2 and deletes their data; "
                                                  "send confirm: true to go ahead"}))
    out = kmf("scale", "brokers", "2", "--api", a.url)
    assert out.returncode == 1 and "re-run with --yes to confirm" in out.stderr
    assert "send confirm" not in out.stderr and "kills broker-2 and deletes their data" in out.stderr
    a.answer("POST", "/v1/pod/broker-1/replace", (409, {"error": "replacing broker-1 deletes its data",
                                                        "confirm_required": True}))
    out = kmf("pod", "replace", "broker-1", "--api", a.url)
    assert out.returncode == 1 and "re-run with --yes to confirm" in out.stderr, out.stderr

    # a Kafka error as an older API passes it on: Kafka's sentence and code, not the repr
    a.answer("POST", "/v1/topics", (409, {"error": 'KafkaError{code=TOPIC_ALREADY_EXISTS,val=36,'
                                                   'str="Topic \'t1\' already exists."}'}))
    out = kmf("topic", "create", "t1", "--api", a.url)
    assert out.returncode == 1 and "KafkaError{" not in out.stderr
    assert "refused: Topic 't1' already exists. (TOPIC_ALREADY_EXISTS)" in out.stderr


def test_pod_info_is_a_key_value_view_without_python_reprs(api):
    a = api()
    a.answer("GET", "/v1/pod/broker-0/info", (200, {
        "name": "broker-0", "kind": "broker", "roles": ["broker", "controller"], "ready": True,
        "healthy": None, "ports": [31000, 31001], "message": "",
        "reservation": {"agent_id": "a1", "hostname": "127.0.2.10", "broker_port": 31000}}))
    out = kmf("pod", "info", "broker-0", "--api", a.url)
    assert out.returncode == 0
    for repr_bit in ("{'", "['", "None", "True", "False"):
        assert repr_bit not in out.stdout, out.stdout
    lines = out.stdout.splitlines()
    assert "roles:       broker, controller" in lines and "ports:       31000, 31001" in lines
    assert "reservation:" in lines and "  hostname:    127.0.2.10" in lines, out.stdout


# ------------------------------------------------------------------------ the API contract

def test_pod_restart_replace_and_config_update_send_force_and_confirm(api, tmp_path):
    a = api()
    for path in ("/v1/pod/broker-0/restart", "/v1/pod/broker-0/replace"):
        a.answer("POST", path, (200, {"message": "ok"}))
    a.answer("PUT", "/v1/config", (200, {"message": "nothing changed"}))
    assert kmf("pod", "restart", "broker-0", "--force", "--api", a.url).returncode == 0
    assert kmf("pod", "restart", "broker-0", "--api", a.url).returncode == 0
    assert [json.loads(b) for _, b in a.sent("POST", "/v1/pod/broker-0/restart")] == [{"force": True},
                                                                                       {"force": False}]
    assert kmf("pod", "replace", "broker-0", "--yes", "--force", "--api", a.url).returncode == 0
    assert kmf("pod", "replace", "broker-0", "--api", a.url).returncode == 0
    assert [json.loads(b) for _, b in a.sent("POST", "/v1/pod/broker-0/replace")] == [
        {"confirm": True, "force": True}, {"confirm": False, "force": False}]
    new = tmp_path / "new.yaml"
    new.write_text("name: kafka\nkafka: {brokers: 2}\n")
    assert kmf("config", "update", str(new), "--yes", "--api", a.url).returncode == 0
    assert kmf("config", "update", str(new), "--api", a.url).returncode == 0
    (_, with_yes), (_, without) = a.sent("PUT", "/v1/config")
    assert json.loads(with_yes) == {"yaml": new.read_text(), "confirm": True}
    assert without.decode() == new.read_text()


def test_config_update_sends_yes_delete_and_says_what_a_refusal_would_delete(api, tmp_path):
    a = api()
    a.answer("PUT", "/v1/config", (409, {"error": "this update deletes from Kafka topic orders (declared before, "
                                                   "not in the new config)", "delete_confirm_required": True,
                                          "would_delete": ["topic orders"]}))
    new = tmp_path / "new.yaml"
    new.write_text("name: kafka\n")
    out = kmf("config", "update", str(new), "--api", a.url)
    assert out.returncode == 1
    assert "re-run with --yes-delete to delete topic orders from Kafka" in out.stderr, out.stderr
    assert "re-run with --yes to confirm" not in out.stderr
    kmf("config", "update", str(new), "--yes-delete", "--api", a.url)
    assert json.loads(a.sent("PUT", "/v1/config")[-1][1]) == {"yaml": new.read_text(), "confirm": False,
                                                              "confirm_delete": True}


def test_common_options_work_before_and_after_the_sub_command(api, tmp_path):
    a = api()
    a.answer("GET", "/v1/pod", (200, []))
    a.answer("POST", "/v1/scale", (200, {"message": "x: 1 → 2"}))
    token = tmp_path / "token"
    token.write_text("t0k\n")
    assert kmf("--api", a.url, "pods").returncode == 0
    assert kmf("pods", "--api", a.url).returncode == 0
    out = kmf("--api", a.url, "--token-file", str(token), "scale", "app", "x", "2")
    assert out.returncode == 0, out.stderr
    out = kmf("scale", "--api", a.url, "app", "x", "2", "--token-file", str(token))
    assert out.returncode == 0, out.stderr
    assert [h.get("Authorization") for h, _ in a.sent("POST", "/v1/scale")] == ["Bearer t0k"] * 2
    out = kmf("--api", a.url, "--json", "pods")
    assert out.returncode == 0 and json.loads(out.stdout) == []


# ------------------------------------------------------------------------ usage, no server

@pytest.mark.parametrize("group, actions", [
    ("pod", ("info", "restart", "replace")),
    ("scale", ("brokers", "app")),
    ("topic", ("list", "describe", "create", "delete")),
])
def test_group_help_lists_each_action_with_a_help_line(group, actions):
    out = kmf(group, "--help")
    assert out.returncode == 0
    lines = out.stdout.splitlines()
    for action in actions:
        line = next((x for x in lines if x.split()[:1] == [action]), None)
        assert line is not None and len(line.split()) > 1, f"{action} not listed with help:\n{out.stdout}"


def test_without_api_or_kmf_api_the_default_is_named_and_unreachable_exits_3():
    out = kmf("pods", "--timeout", "3")
    assert "using http://127.0.0.1:8080 (no --api or KMF_API)" in out.stderr, out.stderr
    no_traceback(out)
    with socket.socket() as s:
        listening = s.connect_ex(("127.0.0.1", 8080)) == 0
    if not listening:  # something else (a demo) may be serving there on this machine
        assert out.returncode == 3 and "cannot reach the kmf API at http://127.0.0.1:8080" in out.stderr
        assert "--api" in out.stderr
    out = kmf("pods", env={"KMF_API": "http://127.0.0.1:9"})
    assert out.returncode == 3 and "using" not in out.stderr and "http://127.0.0.1:9" in out.stderr


def test_bad_usage_exits_2_naming_what_and_sends_nothing(api):
    a = api()
    out = kmf("topic", "create", "t1", "--config", "retention.ms", "--api", a.url)
    no_traceback(out)
    assert out.returncode == 2 and "'retention.ms' is not KEY=VALUE" in out.stderr, out.stderr
    out = kmf("pods", "--token-file", "/nope", "--api", a.url)
    no_traceback(out)
    assert out.returncode == 2 and "--token-file /nope: No such file or directory" in out.stderr, out.stderr
    out = kmf("pods", "--api", a.url, env={"KMF_TOKEN_FILE": "/nope"})
    assert out.returncode == 2 and "KMF_TOKEN_FILE /nope" in out.stderr
    assert a.requests == []


def test_uninstall_without_a_terminal_refuses_and_names_yes(api):
    a = api()
    a.answer("POST", "/v1/uninstall", (200, {"message": "uninstalling"}))
    out = kmf("uninstall", "--api", a.url)  # stdin is /dev/null
    no_traceback(out)
    assert out.returncode == 1 and "--yes" in out.stderr, out.stderr
    assert a.sent("POST", "/v1/uninstall") == []
