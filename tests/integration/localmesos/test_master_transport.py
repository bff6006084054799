"""localmesos master, scheduler API transport and subscription,
driven through raw HTTP and unmodified pymesos."""
from __future__ import annotations

import http.client
import json
import re
import time

import pytest

from tests.helpers.wait import wait_for

pytestmark = pytest.mark.timeout(60)

SUBSCRIBE = {"type": "SUBSCRIBE",
             "subscribe": {"framework_info": {"user": "kmf", "name": "t", "failover_timeout": 60}}}


def conn(lm) -> http.client.HTTPConnection:
    return http.client.HTTPConnection(lm.ip, lm.port, timeout=10)


def post(lm, body, headers=None, method="POST"):
    c = conn(lm)
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    c.request(method, "/api/v1/scheduler", body=data, headers=headers or {})
    resp = c.getresponse()
    text = resp.read().decode()
    c.close()
    return resp, text


JSON = {"Content-Type": "application/json"}


class Stream:
    """A raw SUBSCRIBE stream: RecordIO records read one by one."""

    def __init__(self, lm, body=None, headers=None):
        self.conn = conn(lm)
        hdrs = {"Content-Type": "application/json", "Accept": "application/json",
                "Connection": "close"}
        hdrs.update(headers or {})
        self.conn.request("POST", "/api/v1/scheduler",
                          body=json.dumps(body or SUBSCRIBE).encode(), headers=hdrs)
        self.resp = self.conn.getresponse()
        self.stream_id = self.resp.getheader("Mesos-Stream-Id")

    def next(self):
        size = b""
        while True:
            ch = self.resp.read(1)
            if not ch:
                return None
            if ch == b"\n":
                break
            size += ch
        return json.loads(self.resp.read(int(size)))

    def next_of(self, kind, limit=50):
        for _ in range(limit):
            event = self.next()
            if event is None or event["type"] == kind:
                return event
        return None

    def close(self):
        self.conn.close()


def call(lm, stream, body, fid):
    body = dict(body)
    body["framework_id"] = {"value": fid}
    return post(lm, body, {**JSON, "Mesos-Stream-Id": stream.stream_id})


def test_http_checks_before_parsing(lm_master):
    resp, text = post(lm_master, SUBSCRIBE)
    assert (resp.status, text) == (400, "Expecting 'Content-Type' to be present")
    resp, _ = post(lm_master, SUBSCRIBE, {"Content-Type": "text/plain"})
    assert resp.status == 415
    resp, _ = post(lm_master, b"", method="GET")
    assert resp.status == 405 and resp.getheader("Allow") == "POST"


def test_subscribe_rejections(lm_master):
    resp, text = post(lm_master, SUBSCRIBE, {**JSON, "Mesos-Stream-Id": "x"})
    assert (resp.status, text) == (400, "Subscribe calls should not include the 'Mesos-Stream-Id' header")
    resp, text = post(lm_master, b"{nope", JSON)
    assert resp.status == 400 and text.startswith("Failed to parse body into JSON")
    body = {"type": "SUBSCRIBE", "subscribe": {"framework_info": {"name": "t"}}}
    resp, text = post(lm_master, body, JSON)
    assert resp.status == 400
    assert text == "Failed to convert JSON into Call protobuf: Missing required fields: subscribe.framework_info.user"
    resp, text = post(lm_master, {"type": 1, **{k: v for k, v in SUBSCRIBE.items() if k != "type"}}, JSON)
    assert resp.status == 400 and text.startswith("Failed to convert JSON into Call protobuf")


def test_subscribe_stream_format(lm_factory):
    lm = lm_factory(master_flags=())  # default 15 s heartbeat
    stream = Stream(lm)
    try:
        assert stream.resp.status == 200
        assert stream.resp.getheader("Content-Type") == "application/json"
        assert stream.resp.getheader("Transfer-Encoding") == "chunked"
        assert stream.resp.getheader("Content-Length") is None
        assert len(stream.stream_id) == 36
        first = stream.next()
        assert first["type"] == "SUBSCRIBED"
        sub = first["subscribed"]
        assert re.fullmatch(r"[0-9a-f-]{36}-0000", sub["framework_id"]["value"])
        assert sub["heartbeat_interval_seconds"] == 15.0
        assert sub["master_info"]["address"] == {"hostname": lm.ip, "ip": lm.ip, "port": lm.port}
        assert sub["framework_id"]["value"].startswith(sub["master_info"]["id"])
    finally:
        stream.close()


def test_heartbeats_reach_pymesos(lm_master, lm_driver):
    sched, _ = lm_driver(lm_master.address)
    sched.wait("registered")
    sched.wait("heartbeat", count=3, timeout=6)


def test_stream_id_and_framework_checks(lm_master):
    stream = Stream(lm_master)
    fid = stream.next()["subscribed"]["framework_id"]["value"]
    resp, text = post(lm_master, {"type": "REVIVE", "framework_id": {"value": fid}}, JSON)
    assert (resp.status, text) == (400, "All non-subscribe calls should include the 'Mesos-Stream-Id' header")
    resp, text = post(lm_master, {"type": "REVIVE", "framework_id": {"value": fid}},
                      {**JSON, "Mesos-Stream-Id": "stale"})
    assert resp.status == 400
    assert text == ("The stream ID 'stale' included in this request didn't match the stream ID "
                    f"currently associated with framework ID {fid}")
    resp, text = call(lm_master, stream, {"type": "REVIVE"}, fid + "x")
    assert (resp.status, text) == (400, "Framework cannot be found")
    resp, text = call(lm_master, stream, {"type": "REVIVE"}, fid)
    assert (resp.status, text) == (202, "")
    resp, text = call(lm_master, stream, {"type": "ACCEPT"}, fid)
    assert (resp.status, text) == (400, "Failed to validate scheduler::Call: Expecting 'accept' to be present")
    resp, text = post(lm_master, {"type": "REVIVE"}, {**JSON, "Mesos-Stream-Id": stream.stream_id})
    assert (resp.status, text) == (400, "Failed to validate scheduler::Call: Expecting 'framework_id' to be present")
    resp, text = call(lm_master, stream, {"type": "MESSAGE", "message": {
        "agent_id": {"value": "a"}, "executor_id": {"value": "e"}, "data": "not base64!"}}, fid)
    assert resp.status == 400 and "base64" in text
    resp, text = call(lm_master, stream, {"type": "ACKNOWLEDGE", "acknowledge": {
        "agent_id": {"value": "a"}, "task_id": {"value": "t"}, "uuid": "AAAA"}}, fid)
    assert resp.status == 400 and text.startswith("Failed to validate scheduler::Call")
    stream.close()
    frameworks = wait_for(
        lambda: (lambda f: f if f and not f[0]["connected"] else None)(
            lm_master.get("/master/frameworks")["frameworks"]), timeout=5)
    assert frameworks[0]["active"] is False
    resp, text = call(lm_master, stream, {"type": "REVIVE"}, fid)
    assert (resp.status, text) == (403, "Framework is not subscribed")


def test_idle_keepalive_connection_stays_usable(lm_master, lm_driver):
    sched, driver = lm_driver(lm_master.address)
    sched.wait("registered")
    driver.reviveOffers()
    time.sleep(3)  # idle keep-alive connection; the master must not drop it silently
    driver.reviveOffers()
    driver.suppressOffers()
    assert not sched.of("error")


def test_failover_to_a_second_scheduler(lm_master, lm_driver):
    first, driver1 = lm_driver(lm_master.address)
    fid = first.wait("registered")[0]["value"]
    # Keep the first driver from re-subscribing in a ping-pong (pymesos-notes item 12).
    first.error = lambda driver, message: (first._add("error", message), driver.stop(failover=True))
    second, _ = lm_driver(lm_master.address, framework={"id": {"value": fid}})
    second.wait("reregistered")  # pymesos: a driver started with an id re-registers
    assert first.wait("error")[0] == "Framework failed over"
    frameworks = lm_master.get("/master/frameworks")["frameworks"]
    assert [f["id"] for f in frameworks] == [fid]
    assert frameworks[0]["connected"] is True
    assert "reregistered_time" in frameworks[0]


def test_reconnect_within_failover_timeout(lm_master):
    stream = Stream(lm_master)
    fid = stream.next()["subscribed"]["framework_id"]["value"]
    stream.close()
    wait_for(lambda: not lm_master.get("/master/frameworks")["frameworks"][0]["connected"], timeout=5)
    body = json.loads(json.dumps(SUBSCRIBE))
    body["framework_id"] = {"value": fid}
    body["subscribe"]["framework_info"]["id"] = {"value": fid}
    body["subscribe"]["framework_info"]["failover_timeout"] = 30
    again = Stream(lm_master, body)
    assert again.next()["subscribed"]["framework_id"]["value"] == fid
    fw = lm_master.get("/master/frameworks")["frameworks"][0]
    assert fw["connected"] and fw["active"] and "reregistered_time" in fw
    again.close()


def test_failover_timeout_removes_framework(lm_master):
    body = json.loads(json.dumps(SUBSCRIBE))
    body["subscribe"]["framework_info"]["failover_timeout"] = 1
    stream = Stream(lm_master, body)
    fid = stream.next()["subscribed"]["framework_id"]["value"]
    stream.close()
    wait_for(lambda: lm_master.get("/master/frameworks")["completed_frameworks"], timeout=6)
    body["framework_id"] = {"value": fid}
    body["subscribe"]["framework_info"]["id"] = {"value": fid}
    again = Stream(lm_master, body)
    assert again.resp.status == 200
    assert again.next() == {"type": "ERROR", "error": {"message": "Framework has been removed"}}
    assert again.next() is None  # stream ended


def test_mismatched_ids_and_principal_change(lm_master):
    body = json.loads(json.dumps(SUBSCRIBE))
    body["framework_id"] = {"value": "a"}
    resp, text = post(lm_master, body, JSON)
    assert (resp.status, text) == (400, "Failed to validate scheduler::Call: 'framework_id' differs from 'subscribe.framework_info.id'")
    body = json.loads(json.dumps(SUBSCRIBE))
    body["subscribe"]["framework_info"]["principal"] = "p1"
    stream = Stream(lm_master, body)
    fid = stream.next()["subscribed"]["framework_id"]["value"]
    body["framework_id"] = {"value": fid}
    body["subscribe"]["framework_info"]["id"] = {"value": fid}
    body["subscribe"]["framework_info"]["principal"] = "p2"
    other = Stream(lm_master, body)
    assert other.next() == {"type": "ERROR", "error": {"message": "Changing framework's principal is not allowed."}}
    assert other.next() is None
    stream.close()


def test_invalid_framework_info_gets_error_event(lm_master):
    body = json.loads(json.dumps(SUBSCRIBE))
    body["subscribe"]["framework_info"]["role"] = "/bad"
    stream = Stream(lm_master, body)
    assert stream.resp.status == 200
    event = stream.next()
    assert event["type"] == "ERROR"
    assert event["error"]["message"].startswith("'FrameworkInfo.role' is not a valid role")
    assert stream.next() is None


def test_teardown_ends_stream_and_completes_framework(lm_master):
    stream = Stream(lm_master)
    fid = stream.next()["subscribed"]["framework_id"]["value"]
    resp, _ = call(lm_master, stream, {"type": "TEARDOWN"}, fid)
    assert resp.status == 202
    assert stream.next_of("NEVER") is None  # ends without another event
    frameworks = lm_master.get("/master/frameworks")
    assert frameworks["frameworks"] == []
    assert frameworks["completed_frameworks"][0]["id"] == fid


def test_state_endpoints_jsonp_and_keys(lm_master):
    c = conn(lm_master)
    c.request("GET", "/master/state?jsonp=cb")
    resp = c.getresponse()
    text = resp.read().decode()
    assert resp.getheader("Content-Type") == "text/javascript"
    assert text.startswith("cb(") and text.endswith(")")
    state = json.loads(text[3:-1])
    for key in ("version", "id", "pid", "hostname", "leader", "leader_info", "slaves",
                "frameworks", "completed_frameworks", "flags", "start_time", "elected_time",
                "activated_slaves", "unreachable_slaves", "orphan_tasks"):
        assert key in state, key
    assert state["leader"] == f"master@{lm_master.ip}:{lm_master.port}"
    version = lm_master.get("/version")["version"]
    assert all(part.isdigit() for part in version.split("."))
    metrics = lm_master.get("/metrics/snapshot")
    assert metrics["master/elected"] == 1.0 and "master/tasks_running" in metrics
    c.request("GET", "/master/health")
    assert c.getresponse().status == 200
    c.close()


def test_web_ui_page_is_served(lm_master):
    c = conn(lm_master)
    c.request("GET", "/")
    resp = c.getresponse()
    body = resp.read().decode()
    assert resp.status == 200 and resp.getheader("Content-Type").startswith("text/html")
    assert "/master/state" in body and 'id="agents"' in body and 'id="tasks"' in body
    c.close()


def test_fault_injection_switches(lm_master):
    assert lm_master.set_faults(drop_status_updates=2) == {
        "drop_status_updates": 2, "delay_status_updates_secs": 0.0}
    assert lm_master.set_faults(drop_status_updates=0, delay_status_updates_secs=1.5)[
        "delay_status_updates_secs"] == 1.5
