"""localmesos master: ZooKeeper registration, leader detection, redirects and HTTP framework
authentication."""
from __future__ import annotations

import base64
import http.client
import json
import re

import pytest
from kazoo.client import KazooClient

from tests.helpers.fixtures_localmesos import FAST_MASTER_FLAGS, LocalMesos
from tests.helpers.wait import wait_for

pytestmark = pytest.mark.timeout(90)

SUBSCRIBE = json.dumps({"type": "SUBSCRIBE", "subscribe": {
    "framework_info": {"user": "kmf", "name": "t", "failover_timeout": 60}}}).encode()
JSON = {"Content-Type": "application/json", "Accept": "application/json"}


def request(lm, method, path, body=None, headers=None):
    c = http.client.HTTPConnection(lm.ip, lm.port, timeout=10)
    c.request(method, path, body=body, headers=headers or {})
    resp = c.getresponse()
    status, hdrs = resp.status, dict(resp.getheaders())
    text = resp.read(200) if resp.getheader("Transfer-Encoding") == "chunked" else resp.read()
    c.close()
    return status, hdrs, text.decode(errors="replace")


@pytest.fixture
def zk_path(zk_chroot):
    return f"zk://{zk_chroot}/mesos"


def _kazoo(zk_chroot):
    client = KazooClient(hosts=zk_chroot)
    client.start(timeout=15)
    return client


def test_master_registers_json_info_node_and_pymesos_finds_it(lm_factory, zk_chroot, lm_driver):
    lm = lm_factory(zk=True)
    client = _kazoo(zk_chroot)
    try:
        children = client.get_children("/mesos")
        assert len(children) == 1 and re.fullmatch(r"json\.info_\d{10}", children[0])
        data, stat = client.get("/mesos/" + children[0])
        assert stat.ephemeralOwner != 0
        info = json.loads(data)
        assert list(info)[:7] == ["id", "ip", "port", "pid", "hostname", "version", "address"]
        a, b, c, d = (int(x) for x in lm.ip.split("."))
        assert info["ip"] == a + (b << 8) + (c << 16) + (d << 24)
        assert info["address"] == {"hostname": lm.ip, "ip": lm.ip, "port": lm.port}
        assert info["pid"] == f"master@{lm.ip}:{lm.port}"
    finally:
        client.stop()
        client.close()
    sched, _ = lm_driver(lm.zk_url)
    sched.wait("registered", timeout=20)


def test_standby_redirects_to_leader(lm_factory, tmp_path, lm_driver):
    leader = lm_factory(zk=True)
    standby = LocalMesos(tmp_path / "standby", leader.zk_url, FAST_MASTER_FLAGS)
    try:
        standby.start_master(wait_elected=False)
        wait_for(lambda: standby.get("/metrics/snapshot")["master/elected"] == 0.0
                 and request(standby, "GET", "/master/redirect")[0] == 307, timeout=10)
        status, hdrs, _ = request(standby, "POST", "/api/v1/scheduler", SUBSCRIBE, JSON)
        assert status == 307
        assert hdrs["Location"] == f"//{leader.ip}:{leader.port}/api/v1/scheduler"
        for lm in (leader, standby):
            status, hdrs, _ = request(lm, "GET", "/master/redirect")
            assert (status, hdrs["Location"]) == (307, f"//{leader.ip}:{leader.port}")
        status, hdrs, _ = request(standby, "GET", "/master/state")
        assert status == 307
        # pymesos given the standby's address follows the redirect
        sched, _ = lm_driver(standby.address)
        sched.wait("registered", timeout=15)
        assert leader.get("/master/frameworks")["frameworks"]
    finally:
        standby.stop()


def test_leader_crash_hands_over_to_standby(lm_factory, tmp_path, lm_driver):
    flags = FAST_MASTER_FLAGS + ("--zk_session_timeout=2",)
    leader = lm_factory(zk=True, master_flags=flags)
    standby = LocalMesos(tmp_path / "standby", leader.zk_url, flags)
    try:
        standby.start_master(wait_elected=False)
        sched, _ = lm_driver(leader.zk_url)
        fid = sched.wait("registered", timeout=20)[0]["value"]
        leader.stop_master()
        wait_for(lambda: standby.get("/metrics/snapshot")["master/elected"] == 1.0, timeout=20,
                 what="standby elected")
        sched.wait("reregistered", timeout=20)
        frameworks = standby.get("/master/frameworks")["frameworks"]
        assert [f["id"] for f in frameworks] == [fid]
    finally:
        standby.stop()


def test_no_leader_known_gives_503(lm_factory, zk_chroot, tmp_path):
    client = _kazoo(zk_chroot)
    try:
        # A contender node with unreadable data sorts first: this master never leads and knows
        # no leader.
        client.create("/mesos/json.info_", b"not json", makepath=True, sequence=True)
        lm = LocalMesos(tmp_path / "m", f"zk://{zk_chroot}/mesos")
        try:
            lm.start_master(wait_elected=False)
            status, _, text = wait_for(
                lambda: (lambda r: r if r[0] == 503 else None)(
                    request(lm, "POST", "/api/v1/scheduler", SUBSCRIBE, JSON)), timeout=10)
            assert text == "No leader elected"
        finally:
            lm.stop()
    finally:
        client.stop()
        client.close()


def test_http_framework_authentication(lm_factory, tmp_path, lm_driver):
    creds = tmp_path / "credentials.json"
    creds.write_text(json.dumps({"credentials": [{"principal": "kmf", "secret": "s3cret"}]}))
    lm = lm_factory(master_flags=FAST_MASTER_FLAGS + (
        "--authenticate_http_frameworks", f"--credentials={creds}"))
    status, hdrs, _ = request(lm, "POST", "/api/v1/scheduler", SUBSCRIBE, JSON)
    assert status == 401
    assert hdrs["WWW-Authenticate"] == 'Basic realm="mesos-master-scheduler"'
    bad = base64.b64encode(b"kmf:wrong").decode()
    assert request(lm, "POST", "/api/v1/scheduler", SUBSCRIBE,
                   {**JSON, "Authorization": f"Basic {bad}"})[0] == 401
    sched, _ = lm_driver(lm.address, principal="kmf", secret="s3cret")
    sched.wait("registered")
    fw = lm.get("/master/frameworks")["frameworks"][0]
    assert fw["principal"] == "kmf"  # the authenticated principal fills a missing one
