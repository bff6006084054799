"""Where a client looks, localmesos answers as Apache Mesos does: media types of the v1 APIs,
JSONP on every JSON endpoint of the agent, the executor HEARTBEAT interval. Each test runs against
both engines (the Apache side skips without an install) unless it checks a documented difference."""
from __future__ import annotations

import http.client
import json
import sys
import textwrap
from urllib.parse import urlsplit

import pytest

from localmesos.agent.main import parse as parse_agent_flags
from tests.helpers.v1client import V1Scheduler, http_request
from tests.helpers.wait import wait_for

pytestmark = pytest.mark.timeout(120)

SCHEDULER = "/api/v1/scheduler"
EXECUTOR_API = "/api/v1/executor"


def _post(url: str, ctype: str | None, body: bytes) -> tuple[int, str]:
    """POST with exactly this Content-Type, or none (urllib would add a form type)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.putrequest("POST", parts.path)
        if ctype:
            conn.putheader("Content-Type", ctype)
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        return resp.status, resp.read().decode(errors="replace")
    finally:
        conn.close()


def test_master_refuses_other_media_types_with_415(cluster):
    lm = cluster(agents=1)  # with an agent registered, Apache's master has surely recovered
    status, _ = _post(lm.url + SCHEDULER, "text/plain", b"{}")
    assert status == 415


def test_master_415_for_protobuf_says_localmesos_is_json_only(lm_factory):
    """Mesos parses application/x-protobuf; localmesos cannot (no v1 protobuf messages here), and
    its answer must not claim it accepts what it refuses."""
    lm = lm_factory()
    status, message = _post(lm.url + SCHEDULER, "application/x-protobuf", b"\x08\x01")
    assert status == 415
    assert "JSON-only" in message and "application/x-protobuf is not supported" in message
    assert "or application/x-protobuf" not in message


def test_agent_executor_api_checks_the_content_type_first(cluster):
    """src/slave/http.cpp: no Content-Type is 400, a type it does not speak 415, before the body
    is parsed (localmesos parsed any body as JSON and answered 400)."""
    lm = cluster(agents=1)
    agent = lm.agents[0].url
    body = json.dumps({"type": "HEARTBEAT", "framework_id": {"value": "f"},
                       "executor_id": {"value": "e"}}).encode()
    assert _post(agent + EXECUTOR_API, "text/plain", body)[0] == 415
    status, message = _post(agent + EXECUTOR_API, None, body)
    assert (status, message) == (400, "Expecting 'Content-Type' to be present")


def test_agent_answers_protobuf_with_415_saying_json_only(lm_factory):
    lm = lm_factory(agents=1)
    status, message = _post(lm.agents[0].url + EXECUTOR_API, "application/x-protobuf", b"\x08\x01")
    assert status == 415 and "JSON-only" in message


@pytest.mark.parametrize("path", ["/state", "/metrics/snapshot", "/flags",
                                  "/version", "/files/debug", "/monitor/statistics"])
def test_agent_json_endpoints_honour_jsonp(cluster, path):
    """libprocess' OK(json, jsonp): ``callback(<json>)`` as text/javascript."""
    lm = cluster(agents=1)
    status, headers, body = http_request(lm.agents[0].url + path + "?jsonp=cb")
    assert status == 200, body
    assert headers["Content-Type"] == "text/javascript"
    text = body.decode()
    assert text.startswith("cb(") and text.endswith(")")
    json.loads(text[3:-1])


def test_agent_files_endpoints_honour_jsonp(lm_factory):
    """/files/browse and /files/read are JSON (with jsonp); /files/download is the file itself."""
    lm = lm_factory(agents=1)
    agent = lm.agents[0]
    (agent.work_dir / "note.txt").write_text("hello")
    for op in ("browse", "read"):
        target = agent.work_dir if op == "browse" else agent.work_dir / "note.txt"
        query = f"?path={target}&jsonp=cb" + ("&offset=0" if op == "read" else "")
        status, headers, body = http_request(f"{agent.url}/files/{op}{query}")
        assert status == 200 and headers["Content-Type"] == "text/javascript", body
        assert body.startswith(b"cb(") and body.endswith(b")")
    status, headers, body = http_request(
        f"{agent.url}/files/download?path={agent.work_dir / 'note.txt'}&jsonp=cb")
    assert status == 200 and body == b"hello"


def test_executor_heartbeat_interval_is_mesos_default_30_minutes():
    flags = parse_agent_flags(["--master=127.0.0.1:5050", "--work_dir=/tmp/x"])
    assert flags.localmesos_executor_heartbeat_interval == 30 * 60


# An executor that subscribes to the v1 executor API itself and writes the event types it gets.
RAW_EXECUTOR = textwrap.dedent("""
    import http.client, json, os, sys
    host, port = os.environ["MESOS_AGENT_ENDPOINT"].split(":")
    conn = http.client.HTTPConnection(host, int(port))
    call = {"type": "SUBSCRIBE", "framework_id": {"value": os.environ["MESOS_FRAMEWORK_ID"]},
            "executor_id": {"value": os.environ["MESOS_EXECUTOR_ID"]}, "subscribe": {}}
    conn.request("POST", "/api/v1/executor", json.dumps(call),
                 {"Content-Type": "application/json", "Accept": "application/json"})
    resp = conn.getresponse()
    while True:
        size = int(resp.readline())
        event = json.loads(resp.read(size))
        with open("events", "a") as f:
            f.write(event["type"] + "\\n")
""")


def test_agent_heartbeat_interval_flag_shortens_executor_heartbeats(lm_factory):
    lm = lm_factory(agents=1, agent_flags=["--localmesos_executor_heartbeat_interval=1secs"])
    sched = V1Scheduler(lm.url).subscribe()
    offer = sched.offer()
    task = {"name": "hb", "task_id": {"value": "hb"}, "agent_id": offer["agent_id"],
            "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}},
                          {"name": "mem", "type": "SCALAR", "scalar": {"value": 32}}],
            "executor": {"executor_id": {"value": "hb-exec"}, "type": "CUSTOM",
                         "command": {"shell": False, "value": sys.executable,
                                     "arguments": [sys.executable, "-c", RAW_EXECUTOR]},
                         "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}},
                                       {"name": "mem", "type": "SCALAR", "scalar": {"value": 32}}]}}
    sched.accept(offer["id"], [{"type": "LAUNCH", "launch": {"task_infos": [task]}}])

    def heartbeats() -> bool:
        found = [p.read_text().split() for p in lm.agents[0].work_dir.glob(
            "slaves/*/frameworks/*/executors/hb-exec/runs/latest/events")]
        return sum(kinds.count("HEARTBEAT") for kinds in found) >= 2
    assert wait_for(heartbeats, timeout=20, what="two HEARTBEAT events")
    sched.call("TEARDOWN", expect=None)
    sched.close()


def test_master_with_log_dir_serves_its_log(cluster, engine, tmp_path):
    """Mesos' master attaches its log file as /master/log when it has --log_dir (Apache's
    helpers give it one; localmesos gets the same)."""
    flags = None
    if engine == "local":
        from tests.helpers.fixtures_localmesos import FAST_MASTER_FLAGS
        flags = list(FAST_MASTER_FLAGS) + [f"--log_dir={tmp_path / 'master-log'}"]
    lm = cluster(agents=1, master_flags=flags)
    log_dir = json.loads(http_request(lm.url + "/master/flags")[2])["flags"]["log_dir"]
    assert json.loads(http_request(lm.url + "/master/state")[2])["log_dir"] == log_dir
    assert "/master/log" in json.loads(http_request(lm.url + "/files/debug")[2])
    status, headers, body = http_request(lm.url + "/files/read?path=/master/log&offset=0&length=64")
    assert status == 200, body
    page = json.loads(body)
    assert page["offset"] == 0 and 0 < len(page["data"]) <= 64
    status, _, body = http_request(lm.url + "/files/read?path=/master/log")  # no offset: the size
    assert status == 200 and json.loads(body)["data"] == ""
    assert http_request(lm.url + "/files/read?path=/master/nothing&offset=0")[0] == 404


def test_roles_allocated_counts_executors(cluster):
    lm = cluster(agents=1)
    sched = V1Scheduler(lm.url, role="ex").subscribe(timeout=60)
    try:
        offer = sched.offer(timeout=60)

        def res(cpus: float, mem: float) -> list[dict]:
            return [{"name": n, "type": "SCALAR", "scalar": {"value": v},
                     "allocation_info": {"role": "ex"}} for n, v in (("cpus", cpus), ("mem", mem))]
        task = {"name": "e", "task_id": {"value": "e"}, "agent_id": offer["agent_id"],
                "resources": res(0.2, 64),
                "executor": {"executor_id": {"value": "ex-1"}, "type": "CUSTOM",
                             "command": {"value": "sleep 1000"}, "resources": res(0.1, 32)}}
        sched.accept(offer["id"], [{"type": "LAUNCH", "launch": {"task_infos": [task]}}])

        def allocated() -> dict | None:
            roles = json.loads(http_request(lm.url + "/master/roles")[2])["roles"]
            found = [r["allocated"] for r in roles if r["name"] == "ex" and r["allocated"]]
            return found[0] if found else None
        got = wait_for(allocated, timeout=20, what="the role's allocation")
        assert got["cpus"] == pytest.approx(0.3) and got["mem"] == pytest.approx(96)
        roles = json.loads(http_request(lm.url + "/master/roles")[2])["roles"]
        quota = [r["quota"] for r in roles if r["name"] == "ex"][0]
        assert quota["role"] == "ex" and quota["consumed"]["cpus"] == pytest.approx(0.3)
    finally:
        sched.call("TEARDOWN", expect=None)
        sched.close()


def test_agent_files_serve_attached_sandboxes_and_log(cluster, engine, tmp_path):
    """Mesos attaches each sandbox (real path, runs/latest, /frameworks/F/executors/E/runs/latest)
    and, with --log_dir, /slave/log; browse answers in the namespace asked for; JSONP works."""
    extra = [f"--log_dir={tmp_path / 'agent-log'}"] if engine == "local" else []
    lm = cluster(agents=1, agent_flags=extra)
    sched = V1Scheduler(lm.url, role="f").subscribe(timeout=60)
    try:
        offer = sched.offer(timeout=60)
        res = [{"name": n, "type": "SCALAR", "scalar": {"value": v}, "allocation_info": {"role": "f"}}
               for n, v in (("cpus", 0.1), ("mem", 32))]
        sched.accept(offer["id"], [{"type": "LAUNCH", "launch": {"task_infos": [{
            "name": "f", "task_id": {"value": "f"}, "agent_id": offer["agent_id"], "resources": res,
            "command": {"value": "echo hello-sandbox; sleep 1000"}}]}}])
        sched.wait_state("f", "TASK_RUNNING", timeout=60)
        agent = lm.agents[0].url
        debug = json.loads(http_request(agent + "/files/debug")[2])
        virtual = f"/frameworks/{sched.framework_id}/executors/f/runs/latest"
        assert virtual in debug and "/slave/log" in debug
        listing = json.loads(http_request(f"{agent}/files/browse?path={virtual}")[2])
        assert {e["path"] for e in listing} >= {virtual + "/stdout", virtual + "/stderr"}
        assert {"path", "nlink", "size", "mtime", "mode", "uid", "gid"} <= set(listing[0])

        def stdout() -> bool:
            body = http_request(f"{agent}/files/read?path={virtual}/stdout&offset=0&jsonp=cb")[2]
            return body.startswith(b"cb(") and b"hello-sandbox" in body
        wait_for(stdout, timeout=10, what="the task's stdout through /files/read")
        # past the end: Mesos 1.12 answers the offset asked for with no data (a follower cannot
        # tell a shrunk file from this: it asks offset=-1); length=-1 reads to the end (at most 16 pages)
        size = json.loads(http_request(f"{agent}/files/read?path={virtual}/stdout&offset=-1")[2])["offset"]
        assert size == len("hello-sandbox\n")
        past = json.loads(http_request(f"{agent}/files/read?path={virtual}/stdout&offset={size + 100}")[2])
        assert past == {"offset": size + 100, "data": ""}
        whole = json.loads(http_request(f"{agent}/files/read?path={virtual}/stdout&offset=0&length=-1")[2])
        assert whole == {"offset": 0, "data": "hello-sandbox\n"}
        assert http_request(f"{agent}/files/read?path=/slave/log&offset=0&length=10")[0] == 200
        assert http_request(f"{agent}/files/read?path=/nonexistent&offset=0")[0] == 404
        assert _get_status(agent + "/files/browse") == (400, "Expecting 'path=value' in query.\n")
    finally:
        sched.call("TEARDOWN", expect=None)
        sched.close()


def _get_status(url: str) -> tuple[int, str]:
    status, _, body = http_request(url)
    return status, body.decode(errors="replace")
