"""The pymesos adapter against a real localmesos master: registration, failover, the traps."""
from __future__ import annotations

import os
import queue
import signal
import threading
import time

import pytest

from scheduler.shell import mesos_events as ev
from scheduler.shell.mesos import ONE_WEEK, FrameworkSettings, MesosAdapter
from scheduler.shell.store import StateStore
from tests.helpers.wait import wait_for

pytestmark = pytest.mark.timeout(120)


class Harness:
    """One scheduler instance's adapter, its store and the events it emitted."""

    def __init__(self, master_uri: str, store: StateStore, name: str = "kmf-test",
                 emit_hook=None, may_subscribe=None, **settings) -> None:
        self.events: "queue.Queue[ev.MesosEvent]" = queue.Queue()
        self.seen: list[ev.MesosEvent] = []
        self.store = store
        self.emit_hook = emit_hook
        self.adapter = MesosAdapter(
            FrameworkSettings(name=name, user="kmf", **settings), master_uri, self._emit,
            store.set_framework_id, **({"may_subscribe": may_subscribe} if may_subscribe else {}))

    def _emit(self, event) -> None:
        self.seen.append(event)
        if self.emit_hook is not None:
            self.emit_hook(event)
        self.events.put(event)

    def start(self) -> "Harness":
        self.adapter.start(self.store.load().framework_id)
        return self

    def of(self, kind) -> list:
        return [e for e in list(self.seen) if isinstance(e, kind)]

    def wait(self, kind, timeout: float = 20.0, count: int = 1) -> list:
        return wait_for(lambda: len(self.of(kind)) >= count and self.of(kind), timeout=timeout,
                        interval=0.05, what=f"{count} {kind.__name__}")


@pytest.fixture
def harnesses(zk_client):
    made: list[Harness] = []

    def make(master_uri: str, **kw) -> Harness:
        store = StateStore(zk_client, "kafka", root="/kmf")
        store.initialize()
        h = Harness(master_uri, store, **kw)
        made.append(h)
        return h

    yield make
    for h in made:
        h.adapter.stop("test over")
        h.adapter.join(10)


def frameworks(lm) -> list[dict]:
    return lm.state()["frameworks"]


def test_registers_with_framework_info_and_stores_the_id_at_once(lm_master, harnesses):
    h = harnesses(lm_master.address, webui_url="http://127.0.0.1:1/", labels={"app": "kmf"},
                  role="kafka-role").start()
    (sub,) = h.wait(ev.Subscribed)
    assert not sub.reregistered
    assert h.store.load().framework_id == sub.framework_id
    (fw,) = frameworks(lm_master)
    assert fw["id"] == sub.framework_id
    assert fw["failover_timeout"] == ONE_WEEK
    assert fw["checkpoint"] is True
    assert {"PARTITION_AWARE", "TASK_KILLING_STATE"} <= set(fw["capabilities"])
    assert fw["webui_url"] == "http://127.0.0.1:1/"
    assert fw["role"] == "kafka-role"
    assert fw["labels"] == [{"key": "app", "value": "kmf"}]


def test_restart_fails_over_to_the_stored_framework_id(lm_master, harnesses):
    first = harnesses(lm_master.address).start()
    (sub,) = first.wait(ev.Subscribed)
    first.adapter.stop("restart")
    first.adapter.join(10)
    wait_for(lambda: not frameworks(lm_master)[0]["connected"], timeout=10,
             what="framework disconnected")
    # a stop with failover keeps the framework: no TEARDOWN reached the master
    assert [f["id"] for f in frameworks(lm_master)] == [sub.framework_id]
    second = harnesses(lm_master.address).start()
    (again,) = second.wait(ev.Subscribed)
    assert again.framework_id == sub.framework_id and again.reregistered
    (fw,) = frameworks(lm_master)
    assert fw["id"] == sub.framework_id and fw["connected"]
    assert lm_master.state()["completed_frameworks"] == []


def test_failed_over_instance_stops_instead_of_stealing_back(lm_master, harnesses):
    old = harnesses(lm_master.address).start()
    (sub,) = old.wait(ev.Subscribed)
    new = harnesses(lm_master.address).start()
    new.wait(ev.Subscribed)
    (stopped,) = old.wait(ev.DriverStopped)
    assert "failed over" in stopped.reason and not stopped.forget_framework_id
    # without the handling, pymesos re-subscribes at once and the new instance is failed over
    # in turn (ping-pong); give it the time to happen
    old.adapter.join(10)
    deadline = time.monotonic() + 4
    while time.monotonic() < deadline:
        assert not new.of(ev.DriverStopped), "the new leader was failed over: ping-pong"
        time.sleep(0.2)
    assert len(old.of(ev.Subscribed)) == 1
    (fw,) = frameworks(lm_master)
    assert fw["id"] == sub.framework_id and fw["connected"]
    assert new.store.load().framework_id == sub.framework_id


def test_a_scheduler_that_lost_its_leadership_never_subscribes_again(lm_master, harnesses):
    """Found by the chaos suite's stop_leader: a leader paused past its ZooKeeper session woke up,
    its watchdog forced a reconnect and its SUBSCRIBE failed the new leader over to it."""
    leading = threading.Event()
    leading.set()
    old = harnesses(lm_master.address, may_subscribe=leading.is_set).start()
    old.wait(ev.Subscribed)
    leading.clear()  # its session ended; the scheduler has not stopped the driver yet
    old.adapter.force_reconnect("test: silent master")
    new = harnesses(lm_master.address).start()
    new.wait(ev.Subscribed)
    time.sleep(3)  # time enough for a re-subscription to oust the new leader
    assert len(old.of(ev.Subscribed)) == 1 and not new.of(ev.DriverStopped)
    old.adapter.stop("leadership lost")
    old.adapter.join(10)
    assert not new.of(ev.DriverStopped) and frameworks(lm_master)[0]["connected"]


def test_exception_while_handling_an_event_keeps_the_framework(lm_master, harnesses):
    def explode(event):
        if isinstance(event, ev.Subscribed):
            raise RuntimeError("bug in event handling")

    h = harnesses(lm_master.address, emit_hook=explode).start()
    wait_for(lambda: frameworks(lm_master) and frameworks(lm_master)[0]["connected"],
             timeout=20, what="framework connected")
    fid = frameworks(lm_master)[0]["id"]
    time.sleep(1.5)  # a torn-down framework would be gone from the master by now
    assert [f["id"] for f in frameworks(lm_master)] == [fid]
    assert frameworks(lm_master)[0]["active"]
    assert h.adapter.connected and h.store.load().framework_id == fid


def test_heartbeat_watchdog_reconnects_a_silent_connection(lm_master, harnesses):
    h = harnesses(lm_master.address).start()
    h.wait(ev.Subscribed)
    os.kill(lm_master.master_proc.pid, signal.SIGSTOP)  # socket stays open, heartbeats stop
    try:
        wait_for(lambda: h.adapter.forced_reconnects >= 1, timeout=20, what="forced reconnect")
    finally:
        os.kill(lm_master.master_proc.pid, signal.SIGCONT)
    (_, again) = h.wait(ev.Subscribed, count=2, timeout=40)
    assert again.reregistered and again.framework_id == h.store.load().framework_id
    wait_for(lambda: frameworks(lm_master)[0]["connected"], timeout=10, what="connected again")


def test_removed_framework_forgets_its_id_and_stops(lm_master, harnesses, zk_client):
    first = harnesses(lm_master.address).start()
    (sub,) = first.wait(ev.Subscribed)
    first.adapter.teardown()  # uninstall path: TEARDOWN removes the framework
    first.adapter.join(10)
    wait_for(lambda: lm_master.state()["completed_frameworks"], timeout=10, what="removed")
    second = harnesses(lm_master.address)
    second.adapter.start(sub.framework_id)  # a stale id, as if the store still had it
    (stopped,) = second.wait(ev.DriverStopped)
    assert stopped.forget_framework_id and "removed" in stopped.reason
    assert second.store.load().framework_id is None
    second.adapter.join(10)
    assert not second.of(ev.Subscribed)


def test_calls_while_disconnected_report_not_sent(lm_master, harnesses):
    h = harnesses(lm_master.address)
    assert h.adapter.reconcile([]) is False  # not started
    h.start()
    h.wait(ev.Subscribed)
    assert h.adapter.reconcile([("nope", None)]) is True
    assert h.adapter.suppress() is True and h.adapter.revive() is True
    lm_master.stop_master()
    h.wait(ev.Disconnected)
    assert h.adapter.revive() is False


def test_zk_master_url_works_when_the_scheduler_starts_before_the_master(
        zk_chroot, lm_factory, harnesses):
    # the master path does not exist yet: without creating it first pymesos' detector would
    # stop watching silently and never find the master
    h = harnesses(f"zk://{zk_chroot}/mesos").start()
    lm = lm_factory(zk=True)
    (sub,) = h.wait(ev.Subscribed, timeout=30)
    assert [f["id"] for f in frameworks(lm)] == [sub.framework_id]


def test_a_master_that_keeps_answering_503_is_dialled_with_backoff(harnesses):
    """pymesos alone re-sends SUBSCRIBE the moment a 503 (or 307, or an ended stream) closes the
    connection: hundreds of attempts a second against a master that is not elected yet."""
    import http.server
    from localmesos import procs

    subscribes = []

    class NotElected(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - pymesos asks /version first
            body = b'{"version": "1.11.0"}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):  # noqa: N802
            subscribes.append(time.monotonic())
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = b"No leader elected"
            self.send_response(503)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", procs.free_port("127.0.0.1")), NotElected)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        h = harnesses(f"127.0.0.1:{server.server_address[1]}")
        # a watchdog limit (5 x 0.2 s) shorter than the later pauses: those pauses are ours, not
        # a silent master, and must not end the connection before its SUBSCRIBE is sent
        h.adapter._default_heartbeat = 0.2
        h.start()
        wait_for(lambda: len(subscribes) >= 4, timeout=20, what="four SUBSCRIBE attempts")
        first = subscribes[0]
        time.sleep(3.0)
        window = [t for t in subscribes if t - first <= 5.0]
        gaps = [b - a for a, b in zip(subscribes, subscribes[1:])]
        print(f"{len(subscribes)} attempts; gaps {[round(g, 2) for g in gaps]}")
        assert len(window) <= 12, f"{len(window)} SUBSCRIBE attempts in 5 s"
        assert gaps[-1] > gaps[0], "the pause between attempts grows"
        assert not h.of(ev.DriverStopped)  # still trying, not given up
        assert h.adapter.forced_reconnects == 0
    finally:
        server.shutdown()
        server.server_close()


def test_refused_credentials_are_named_even_when_pymesos_loses_the_status(lm_factory, harnesses, tmp_path):
    """pymesos raises a TypeError instead of 'HTTP 401' when the refusal's body comes after its
    headers; the adapter then asks the master itself with a call that changes nothing."""
    import json

    creds = tmp_path / "credentials"
    creds.write_text(json.dumps({"credentials": [{"principal": "kmf", "secret": "right"}]}))
    lm = lm_factory(master_flags=("--authenticate_frameworks", f"--credentials={creds}"))
    wrong = harnesses(lm.address, principal="kmf", secret="wrong")
    assert (wrong.adapter._refusal() or "").startswith("HTTP 401")
    right = harnesses(lm.address, principal="kmf", secret="right")
    assert right.adapter._refusal() is None
    assert frameworks(lm) == []  # nothing subscribed by asking
