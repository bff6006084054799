"""A stream app's state from its output (executor.app_state, kmfwire.app_state): Kafka Streams'
client state lines and kmf's KMF_APP_STATE protocol, readiness, health and the stuck rule with an
injected clock; and the executor's AppWatch following a growing stdout file."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from executor.app_state import JAVA_READY_AFTER_S, READY_AFTER_S, AppState, healthy, ready
from executor.policy import stuck_outcome
from executor.workloads import AppWatch, prepare
from kmfwire.app_state import (
    ERROR, PROTOCOL_PREFIX, REBALANCING, RUNNING, STATES, parse_line, state_line,
)
from kmfwire.ready import READY_MARKER
from kmfwire.taskdata import DEFAULT_STUCK_LIMIT_S, StreamTask, TaskData, TaskDataError

pytestmark = pytest.mark.timeout(60)


def streams(client: str, old: str, new: str) -> str:
    """A line as Kafka Streams 4.3.1 logs it through kmf's log4j2 console layout."""
    return (f"[2026-12-07 13:02:05,524] INFO stream-client [{client}] State transition from {old} to {new} "
            f"(org.apache.kafka.streams.KafkaStreams)")


def feed(lines: list[tuple[str, float]], app: AppState | None = None) -> AppState:
    app = app or AppState()
    for line, now in lines:
        app = app.feed(line, now)
    return app


def test_kafka_streams_client_lines_are_read_and_thread_lines_are_not():
    assert parse_line(streams("wcj-0", "REBALANCING", "RUNNING")) == ("wcj-0", RUNNING)
    thread = ("[2026-12-07 13:02:05,529] INFO stream-thread [wcj-0-StreamThread-1] State transition from "
              "CREATED to STARTING (org.apache.kafka.streams.processor.internals.StreamThread)")
    assert parse_line(thread) is None
    assert parse_line(streams("c", "RUNNING", "DANCING")) is None  # not a KafkaStreams.State
    assert parse_line("some other line") is None


def test_the_protocol_line_round_trips_and_rejects_unknown_states():
    for state in STATES:
        assert parse_line(state_line(state)) == ("", state)
        assert parse_line(state_line(state) + "\r") == ("", state)
    with pytest.raises(ValueError):
        state_line("DANCING")
    assert parse_line(f"{PROTOCOL_PREFIX} DANCING") is None
    assert parse_line(f"echo {PROTOCOL_PREFIX} RUNNING") is None  # the line itself, not a mention


def test_a_java_app_is_ready_only_once_streams_says_running():
    app = feed([(streams("c", "CREATED", "REBALANCING"), 1.0)])
    assert app.state == REBALANCING
    # long past the old 3 s "staying up" rule, and even with the marker: not while rebalancing
    assert not ready("java", app, marker_seen=True, up_for_s=600)
    app = app.feed(streams("c", "REBALANCING", "RUNNING"), 5.0)
    assert ready("java", app, marker_seen=False, up_for_s=5) and app.state == RUNNING


def test_without_state_lines_the_old_rules_hold():
    none = AppState()
    assert ready("command", none, marker_seen=False, up_for_s=READY_AFTER_S)
    assert ready("python", none, marker_seen=True, up_for_s=0)
    assert not ready("python", none, marker_seen=False, up_for_s=READY_AFTER_S - 0.1)
    assert not ready("java", none, marker_seen=False, up_for_s=READY_AFTER_S)
    assert ready("java", none, marker_seen=False, up_for_s=JAVA_READY_AFTER_S)
    # a command app keeps the old rule even when it prints state lines
    assert ready("command", feed([(state_line(REBALANCING), 0.0)]), marker_seen=True, up_for_s=0)


def test_stuck_counts_from_leaving_running_through_every_other_state():
    app = feed([(streams("c", "CREATED", "REBALANCING"), 10.0), (streams("c", "REBALANCING", "RUNNING"), 12.0),
                (streams("c", "RUNNING", "REBALANCING"), 100.0), (streams("c", "REBALANCING", "PENDING_ERROR"), 120.0),
                (streams("c", "PENDING_ERROR", "ERROR"), 121.0)])
    assert app.state == ERROR and not healthy(app)
    assert app.stuck(30, 129.9) is None
    why = app.stuck(30, 130.0)
    assert why is not None and "stream-client [c] stuck out of RUNNING for 30s, now in ERROR" in why
    assert "stuck_limit_s 30" in why
    outcome = stuck_outcome(why, -15)
    assert outcome.state == "TASK_FAILED" and outcome.message.startswith(why) and "SIGTERM" in outcome.message
    # back to RUNNING: never stuck, however long
    assert feed([(streams("c", "ERROR", "RUNNING"), 131.0)], app).stuck(30, 10_000) is None


def test_the_app_is_running_only_when_every_client_is():
    app = feed([(streams("a", "REBALANCING", "RUNNING"), 1.0), (streams("b", "CREATED", "REBALANCING"), 2.0)])
    assert app.state == REBALANCING and healthy(app)  # a rebalance is healthy until the limit
    assert app.stuck(10, 12.0) is not None and "[b]" in (app.stuck(10, 12.0) or "")
    assert feed([(streams("b", "REBALANCING", "RUNNING"), 3.0)], app).state == RUNNING


def test_a_repeated_state_keeps_its_time():
    app = feed([(state_line(REBALANCING), 0.0)] + [(state_line(REBALANCING), float(t)) for t in range(1, 20)])
    assert app.stuck(20, 20.0) is not None and "the app stuck out of RUNNING for 20s" in (app.stuck(20, 20.0) or "")


LINES = st.one_of(
    st.sampled_from(STATES).map(state_line),
    st.tuples(st.sampled_from(["a", "b", "wcj-0"]), st.sampled_from(STATES), st.sampled_from(STATES)).map(
        lambda t: streams(t[0], t[2], t[1])),
    st.text(max_size=60),
)


@settings(max_examples=300)
@given(st.lists(st.tuples(LINES, st.floats(0, 50)), max_size=40), st.floats(1, 100), st.floats(0, 200))
def test_any_line_sequence(steps, limit, extra):
    """Whatever the app prints: the state is the last one announced by every client (RUNNING only
    if all are), ready means RUNNING once a line was seen, and stuck holds exactly when some client
    has been out of RUNNING for the limit (times only move forward)."""
    now, app, last = 0.0, AppState(), {}
    left_running: dict[str, float] = {}
    for line, dt in steps:
        now += dt
        app = app.feed(line, now)
        parsed = parse_line(line)
        if parsed is not None:
            client, new = parsed
            if new == RUNNING:
                left_running.pop(client, None)
            elif last.get(client) != new and client not in left_running:
                left_running[client] = now
            last[client] = new
    at = now + extra
    if not last:
        assert app.state is None and app.stuck(limit, at) is None
        return
    assert (app.state == RUNNING) == all(s == RUNNING for s in last.values())
    assert app.state in last.values()
    assert ready("python", app, marker_seen=True, up_for_s=1e9) == (app.state == RUNNING)
    expect_stuck = any(at - t >= limit for t in left_running.values())
    assert (app.stuck(limit, at) is not None) == expect_stuck


# --- the executor's half: a growing stdout file, an injected clock ------------------------------

class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_watch_reads_only_what_the_app_writes_after_it_started(tmp_path):
    out = tmp_path / "stdout"
    out.write_text(state_line(RUNNING) + "\n" + READY_MARKER + "\n")  # an earlier run's lines
    clock = Clock()
    watch = AppWatch(out, "python", 20.0, clock)
    assert watch.state() is None and not watch.ready()
    with open(out, "a") as f:
        f.write(state_line(REBALANCING) + "\n" + "KMF_APP_ST")  # a line half written
    assert watch.state() == REBALANCING and not watch.ready()
    with open(out, "a") as f:
        f.write("ATE RUNNING\n")
    assert watch.state() == RUNNING and watch.ready() and watch.healthy()
    with open(out, "a") as f:
        f.write(state_line(ERROR) + "\n")
    assert not watch.healthy() and watch.stuck() is None
    clock.now += 20
    assert "stuck out of RUNNING for 20s, now in ERROR" in (watch.stuck() or "")


def test_a_stream_workload_carries_the_watch_and_its_limit(tmp_path):
    data = TaskData(kind="stream", service="svc", stream=StreamTask(
        app="wc", instance=0, runtime="python", command=("-m", "wc"), stuck_limit_s=42))
    w = prepare(data, tmp_path, {"KMF_PYTHON": "py"})
    (tmp_path / "stdout").write_text(state_line(REBALANCING) + "\n")
    assert w.app_state() == REBALANCING and w.stuck() is None and not w.ready()
    assert data.to_json()["stream"]["stuck_limit_s"] == 42
    # the default stays out of the payload (an older executor reads it), and back it comes
    default = TaskData(kind="stream", service="svc", stream=StreamTask(app="wc", instance=0, runtime="python",
                                                                        command=("x",)))
    assert "stuck_limit_s" not in default.to_json()["stream"]
    assert TaskData.decode(default.encode()).stream.stuck_limit_s == DEFAULT_STUCK_LIMIT_S
    with pytest.raises(TaskDataError, match="stuck_limit_s"):
        TaskData(kind="stream", service="svc", stream=StreamTask(app="wc", instance=0, runtime="python",
                                                                 command=("x",), stuck_limit_s=0))

