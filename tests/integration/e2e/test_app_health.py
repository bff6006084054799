"""A stream app's health follows its Kafka Streams state: kmf's executor reads the client's state
transitions from the app's own log, reports the app ready only once Streams says RUNNING, shows the
state in `kmf pods` and the pod's info, and ends an instance stuck out of RUNNING past its
`stuck_limit_s` (TASK_FAILED, seen in the master's /master/state), which kmf relaunches. The state
also shows on kmf's page."""
from __future__ import annotations

import re
import time
from datetime import datetime
from pathlib import Path

import pytest

from tests.helpers.operator_cli import kmf
from tests.helpers.wait import wait_for

pytestmark = [pytest.mark.timeout(480), pytest.mark.kafka]

WORDCOUNT = "org.apache.kafka.streams.examples.wordcount.WordCountDemo"
TOPICS = ("streams-plaintext-input", "streams-wordcount-output")
STUCK_LIMIT_S = 45  # a first rebalance alone took 11 s on a busy 2-core machine
RUNNING_LINE = re.compile(r"^\[(?P<ts>[\d-]+ [\d:,]+)\] INFO stream-client \[[^\]]*\] State transition from "
                          r"\w+ to RUNNING", re.M)
READY_LINE = re.compile(r"^(?P<ts>[\d-]+ [\d:,]+) kmf-executor INFO task (?P<task>\S+): TASK_RUNNING .*: ready$", re.M)


def tasks_of(env, pod: str) -> list[dict]:
    """Every task of `pod` the master knows (running or completed), oldest first as launched."""
    state = env.lm.get("/master/state")
    return [t for fw in state["frameworks"] for key in ("tasks", "completed_tasks") for t in fw[key]
            if t["name"] == pod]


def stamp(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S,%f")


def test_a_streams_app_is_ready_only_once_running_and_is_restarted_when_stuck(kmf_env, tmp_path):
    env = kmf_env(agents=2)
    app = {"name": "wcj", "count": 1, "cpus": 0.25, "mem_mb": 512, "runtime": "java",
           "command": [WORDCOUNT, "{properties}"], "stuck_limit_s": STUCK_LIMIT_S}
    s = env.start_scheduler(brokers=1, apps=[app])

    # no input topic yet: Streams cannot finish its first rebalance, so it never says RUNNING;
    # kmf shows the state it is in and does not call the app ready
    first = wait_for(lambda: (lambda p: p if p.get("task_id") and p.get("app_state") not in (None, "RUNNING")
                              else None)(s.pod("wcj-0")), timeout=180, interval=0.5,
                     what="wcj-0 reporting a state other than RUNNING")
    print(f"first task {first['task_id']}: app state {first['app_state']}")
    assert not first["ready"], first
    out = kmf(s.url, "pods")
    assert out.returncode == 0, out.stderr
    row = next(line.split() for line in out.stdout.splitlines() if line.startswith("wcj-0"))
    header = next(line.split() for line in out.stdout.splitlines() if line.startswith("POD"))
    assert row[header.index("APP_STATE")] == first["app_state"], out.stdout

    # stuck past the limit: the executor ends the task as failed and kmf launches a new one
    started = time.monotonic()
    failed = wait_for(lambda: next((t for t in tasks_of(env, "wcj-0") if t["id"] == first["task_id"]
                                    and t["state"] == "TASK_FAILED"), None),
                      timeout=STUCK_LIMIT_S + 60, interval=0.5, what="the stuck task TASK_FAILED")
    print(f"stuck task failed after {time.monotonic() - started:.1f}s more: {failed['statuses'][-1]}")
    assert not any(t["id"] == first["task_id"] and t["state"] == "TASK_RUNNING" for t in tasks_of(env, "wcj-0"))
    # the master's statuses carry no message: the executor's log in the old sandbox has it
    executor_log = (Path(first["sandbox"]["directory"]) / "stderr").read_text(errors="replace")
    said = re.search(rf"task {re.escape(first['task_id'])}: TASK_FAILED (.*)", executor_log)
    assert said and "stuck out of RUNNING for" in said[1] and f"stuck_limit_s {STUCK_LIMIT_S}" in said[1], \
        executor_log[-3000:]
    print(f"its executor said: {said[1]}")
    wait_for(lambda: any(t["id"] != first["task_id"] for t in tasks_of(env, "wcj-0")), timeout=60,
             interval=0.5, what="a new task for wcj-0")

    # with its topics there, a relaunch reaches RUNNING and only then is ready
    for topic in TOPICS:
        code, doc = s.request("POST", "/v1/topics", {"name": topic, "partitions": 2})
        assert code in (200, 409), doc
    pod = wait_for(lambda: (lambda p: p if p.get("ready") and p["task_id"] != first["task_id"] else None)(
        s.pod("wcj-0")), timeout=180, interval=0.5, what="wcj-0 relaunched and ready")
    assert pod["app_state"] == "RUNNING" and pod["healthy"] is True, pod
    s.wait_deployed(timeout=60)
    sandbox = Path(pod["sandbox"]["directory"])
    app_log = (sandbox / "stdout").read_text(errors="replace")
    executor_log = (sandbox / "stderr").read_text(errors="replace")
    running = [stamp(m["ts"]) for m in RUNNING_LINE.finditer(app_log)]
    ready = [stamp(m["ts"]) for m in READY_LINE.finditer(executor_log) if m["task"] == pod["task_id"]]
    assert running and len(ready) == 1, (running, executor_log[-3000:])
    print(f"Streams said RUNNING at {running[0]}, the executor reported ready at {ready[0]}")
    assert running[0] <= ready[0]
    out = kmf(s.url, "pods")
    row = next(line.split() for line in out.stdout.splitlines() if line.startswith("wcj-0"))
    assert row[header.index("APP_STATE")] == "RUNNING", out.stdout
    # and on the page, as a browser renders it
    from tests.helpers.browser import dump_dom
    dom = dump_dom(s.url + "/", tmp_path)
    page_row = re.search(r"<tr><td>wcj-0</td>.*?</tr>", dom, re.S)
    assert page_row and "<td>RUNNING</td>" in page_row[0], dom[-3000:]
