"""kmf demo: its stages one by one (what can run today), and the whole story once the scheduler
deploys end to end."""
from __future__ import annotations

import http.server
import io
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from kmf import demo
from localmesos import procs
from streams.counting import words
from tests.helpers.wait import wait_for

pytestmark = pytest.mark.timeout(240)

REPO = Path(__file__).resolve().parents[2]


def narrator() -> tuple[demo.Narrator, io.StringIO]:
    out = io.StringIO()
    return demo.Narrator(out), out


# ---------------------------------------------------------------------------- pure helpers


def test_parse_bootstrap_accepts_the_shapes_of_the_endpoints_document():
    assert demo.parse_bootstrap({"bootstrap_servers": "a:1,b:2"}) == "a:1,b:2"
    assert demo.parse_bootstrap({"bootstrap": ["a:1", "b:2"]}) == "a:1,b:2"
    assert demo.parse_bootstrap({"address": ["10.0.0.1:1025"], "dns": ["x"]}) == "10.0.0.1:1025"
    assert demo.parse_bootstrap({"addresses": [{"host": "h", "port": 9, "broker_id": 0}]}) == "h:9"
    with pytest.raises(demo.DemoError, match="no bootstrap servers in"):
        demo.parse_bootstrap({"address": []})


def test_progress_line_counts_complete_steps():
    plan = {"status": "IN_PROGRESS", "phases": [
        {"name": "quorum", "steps": [{"name": "broker-0", "status": "COMPLETE"},
                                     {"name": "broker-1", "status": "STARTING"}]},
        {"name": "apps", "steps": [{"name": "wordcount-0", "status": "PENDING"}]}]}
    assert demo.plan_steps(plan)[1] == ("quorum", "broker-1", "STARTING")
    line = demo.progress_line(plan, width=6)
    assert line.startswith("[##....] 1/3 steps, plan IN_PROGRESS")
    assert "broker-1 STARTING" in line and "wordcount-0 PENDING" in line and "broker-0" not in line


def test_pod_tasks_finds_tasks_whatever_the_nesting():
    doc = [{"info": {"name": "broker-1", "task_id": {"value": "broker-1__a"},
                     "agent_id": {"value": "S1"}},
            "status": {"task_id": {"value": "broker-1__a"}, "state": "TASK_RUNNING"}}]
    assert demo.pod_tasks(doc) == [{"task_id": "broker-1__a", "state": "TASK_RUNNING", "agent": "S1"}]
    assert demo.pod_tasks({"tasks": [{"taskId": "x", "state": "TASK_FAILED", "agent": "S2"}]}) == [
        {"task_id": "x", "state": "TASK_FAILED", "agent": "S2"}]


def test_broker_jvms_picks_the_pods_kafka_jvm_under_the_work_dir(tmp_path):
    sandbox = tmp_path / "agent-1/slaves/S1/frameworks/F/executors/broker-1__u1/runs/latest"
    other = tmp_path / "agent-2/slaves/S2/frameworks/F/executors/broker-2__u2/runs/latest"
    processes = [
        demo.ProcessInfo(10, ("java", "-cp", "x", "kafka.Kafka", f"{sandbox}/server.properties"), str(sandbox)),
        demo.ProcessInfo(11, ("java", "kafka.Kafka", f"{other}/server.properties"), str(other), "broker-2__u2"),
        demo.ProcessInfo(12, ("python", "-m", "executor"), str(sandbox), "broker-1__u1"),
        demo.ProcessInfo(13, ("java", "kafka.Kafka", "/elsewhere/server.properties"), "/elsewhere", "broker-1__z"),
    ]
    assert demo.broker_jvms(processes, tmp_path, "broker-1") == [10]
    assert demo.broker_jvms(processes, tmp_path, "broker-2") == [11]
    assert demo.broker_jvms(processes, tmp_path) == [10, 11]
    assert demo.broker_jvms(processes, tmp_path, "broker-3") == []


def test_counts_table_flags_wrong_counts():
    lines = demo.counts_table({"kafka": 2, "mesos": 1}, {"kafka": 2, "mesos": 2})
    assert lines == ["kafka     2", "mesos     1  (expected 2)"]


def test_check_config_names_a_missing_file(tmp_path):
    with pytest.raises(demo.DemoError, match="does not exist"):
        demo.check_config(tmp_path / "nope.yaml")


# ---------------------------------------------------------------------------- deploy polling


class PlanServer:
    """A stand-in for the scheduler's API that serves a scripted sequence of deploy plans."""

    def __init__(self, plans: list[dict]) -> None:
        self.plans = list(plans)
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                plan = owner.plans.pop(0) if len(owner.plans) > 1 else owner.plans[0]
                body = json.dumps(plan).encode()
                self.send_response(200 if plan.get("status") == "COMPLETE" else 202)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        host = procs.loopback_ip()
        self.server = http.server.ThreadingHTTPServer((host, procs.free_port(host)), Handler)
        self.url = f"http://{host}:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def plan(status: str, *steps: str) -> dict:
    return {"status": status, "phases": [{"name": "brokers", "steps": [
        {"name": f"broker-{i}", "status": s} for i, s in enumerate(steps)]}]}


def test_wait_for_deploy_shows_progress_until_complete():
    server = PlanServer([plan("IN_PROGRESS", "STARTING", "PENDING"), plan("IN_PROGRESS", "COMPLETE", "STARTING"),
                         plan("COMPLETE", "COMPLETE", "COMPLETE")])
    try:
        n, out = narrator()
        final = demo.wait_for_deploy(server.url, n, timeout=30)
    finally:
        server.close()
    assert final["status"] == "COMPLETE"
    text = out.getvalue()
    assert "0/2 steps" in text and "1/2 steps" in text and "2/2 steps, plan COMPLETE" in text


def test_wait_for_deploy_fails_on_error_and_on_a_dead_scheduler(tmp_path):
    server = PlanServer([plan("ERROR", "COMPLETE", "ERROR")])
    try:
        with pytest.raises(demo.DemoError, match="in ERROR") as info:
            demo.wait_for_deploy(server.url, narrator()[0], timeout=30, log_path=tmp_path / "s.log")
        assert info.value.log_path == tmp_path / "s.log"
        with pytest.raises(demo.DemoError, match="scheduler exited"):
            demo.wait_for_deploy(server.url, narrator()[0], timeout=30, alive=lambda: False)
    finally:
        server.close()


# ---------------------------------------------------------------------------- Kafka stage


@pytest.mark.kafka
def test_data_stages_count_sentences_through_the_wordcount_app(kafka_kraft, tmp_path):
    bootstrap = kafka_kraft.bootstrap
    created = demo.create_topics(bootstrap, {demo.INPUT_TOPIC: {}, demo.OUTPUT_TOPIC: {"cleanup.policy": "compact"}},
                                 partitions=3)
    assert sorted(created) == sorted([demo.INPUT_TOPIC, demo.OUTPUT_TOPIC])
    assert demo.create_topics(bootstrap, {demo.INPUT_TOPIC: {}}) == []  # already there: fine

    log_path = tmp_path / "wordcount.log"
    app = procs.spawn([sys.executable, "-m", "streams.wordcount", "--input", demo.INPUT_TOPIC,
                       "--output", demo.OUTPUT_TOPIC], log_path=log_path, cwd=REPO,
                      env={**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "KMF_INSTANCE": "0",
                           "PYTHONPATH": str(REPO)})
    try:
        wait_for(lambda: "kmf: ready" in log_path.read_text(), timeout=60, what="wordcount ready")
        assert demo.produce_sentences(bootstrap, demo.INPUT_TOPIC, demo.SENTENCES) == len(demo.SENTENCES)
        expected = demo.expected_counts(demo.SENTENCES)
        assert expected["kafka"] == 2 and expected["the"] == sum(words(s).count("the") for s in demo.SENTENCES)
        counts = demo.read_counts(bootstrap, demo.OUTPUT_TOPIC, expected, timeout=90)
        assert counts == expected
        assert all("expected" not in line for line in demo.counts_table(counts, expected))
    finally:
        procs.stop_group(app.pid, grace=10.0)

    # The broker's JVM is found the way the demo finds a pod's broker before killing it.
    assert demo.broker_jvms(demo.list_processes(), kafka_kraft.work_dir) == [kafka_kraft.pid]


@pytest.mark.kafka
def test_read_counts_times_out_with_what_is_missing(kafka_kraft):
    demo.create_topics(kafka_kraft.bootstrap, {"empty-counts": {}}, partitions=1)
    with pytest.raises(demo.DemoError, match=r"incomplete after 2s .*'kafka': \(0, 1\)"):
        demo.read_counts(kafka_kraft.bootstrap, "empty-counts", {"kafka": 1}, timeout=2)


# ---------------------------------------------------------------------------- local cluster stage


def test_local_cluster_stage_starts_and_teardown_stops_everything(tmp_path):
    work_dir = tmp_path / "demo"
    n, out = narrator()
    state = demo.start_local_cluster(work_dir, 3, n)
    pids = [p["pid"] for p in state["processes"]]
    try:
        assert len(pids) == 5  # zookeeper, master, 3 agents
        sleeper = procs.spawn(["sleep", "300"], log_path=work_dir / "sleeper.log")
        demo.record_process(work_dir, "scheduler", sleeper.pid)
        assert "master:" in out.getvalue()
        with pytest.raises(demo.DemoError, match="already runs"):
            demo.start_local_cluster(work_dir, 3, n)
    finally:
        demo.teardown(work_dir, n)
    assert not any(procs.pid_alive(pid) for pid in pids + [sleeper.pid])
    assert "stopped scheduler" in out.getvalue()


# ---------------------------------------------------------------------------- the whole demo


def test_kmf_demo_cli_refuses_bad_arguments():
    done = subprocess.run([sys.executable, "-m", "kmf", "demo", "--agents", "0"], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "--agents must be at least 1" in done.stderr


@pytest.mark.slow
@pytest.mark.kafka
@pytest.mark.timeout(480)
def test_the_whole_demo_runs_and_tears_down(tmp_path, fresh_artifacts):
    out = io.StringIO()
    rc = demo.run_demo(demo.DemoOptions(work_dir=tmp_path / "demo"), out=out)
    text = out.getvalue()
    assert rc == 0, text
    assert "plan COMPLETE" in text and "time to recover" in text and "kmf web page" in text
    # the burst: the autoscaler scaled the word count out (its decision with the lag shown), and the
    # counts after it are exact
    assert "kmf's autoscaler adds word-count instances" in text and "autoscaler: 1 → " in text
    assert "every word counted exactly once across the scaling" in text
    # the order pipeline (a jar fetched by URI) and the alert service: every order in its region's
    # totals once, one alert per large order, as read read_committed from Kafka
    assert "every order totalled once and every alert raised once" in text
    assert all(f"{region}: " in text for region in ("emea", "americas", "apac")), text
    assert not (tmp_path / "demo" / "cluster.json").exists()
