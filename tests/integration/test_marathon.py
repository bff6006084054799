"""localmesos.marathon runs an app definition as Marathon would: ports and env, fetched files,
health checks, and restarts with backoff when the instance exits or turns unhealthy."""
from __future__ import annotations

import json
import os
import signal
import sys
import urllib.request

import pytest

from localmesos import procs
from tests.helpers.wait import wait_for

pytestmark = pytest.mark.timeout(120)


def test_app_gets_marathon_env_fetches_and_is_restarted(tmp_path):
    app = {
        "id": "/web", "cpus": 0.1, "mem": 64,
        "cmd": f"cat $MESOS_SANDBOX/greeting.txt > $MESOS_SANDBOX/seen && env | grep -E '^(PORT0|HOST|MARATHON_APP_ID|GREETING)=' > env.txt && exec {sys.executable} -m http.server $PORT0 --bind $HOST",
        "env": {"GREETING": "hi"},
        "fetch": [{"uri": "https://config.example.internal/greeting.txt"}],
        "portDefinitions": [{"port": 0}],
        "healthChecks": [{"protocol": "MESOS_HTTP", "path": "/", "portIndex": 0, "gracePeriodSeconds": 1,
                          "intervalSeconds": 1, "timeoutSeconds": 2, "maxConsecutiveFailures": 2}],
    }
    (tmp_path / "app.json").write_text(json.dumps(app))
    (tmp_path / "greeting.txt").write_text("hello\n")
    port = procs.free_port("127.0.0.1")
    runner = procs.spawn([sys.executable, "-m", "localmesos.marathon", "--app", str(tmp_path / "app.json"),
                          "--work_dir", str(tmp_path / "m"), "--port", str(port),
                          "--fetch", f"greeting.txt={tmp_path / 'greeting.txt'}"], log_path=tmp_path / "runner.log")
    try:
        wait_for(lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).status == 200,
                 timeout=30, what="the app serving on PORT0")
        run1 = tmp_path / "m" / "sandboxes" / "run-1"
        assert (run1 / "seen").read_text() == "hello\n"
        env = dict(line.split("=", 1) for line in (run1 / "env.txt").read_text().split())
        assert env == {"PORT0": str(port), "HOST": "127.0.0.1", "MARATHON_APP_ID": "/web", "GREETING": "hi"}
        wait_for(lambda: "healthy" in (tmp_path / "m" / "marathon.log").read_text(), timeout=20, what="healthy")
        # the instance dies: Marathon starts another one
        pid = next(p for p in procs.pids_under(run1))
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: (tmp_path / "m" / "sandboxes" / "run-2" / "seen").exists(), timeout=30,
                 what="a second instance")
        assert "restarting in" in (tmp_path / "m" / "marathon.log").read_text()
    finally:
        procs.stop_group(runner.pid, grace=5)
    wait_for(lambda: not procs.pids_under(tmp_path / "m"), timeout=15, what="no instance left")


def test_bad_definitions_are_refused(tmp_path):
    import subprocess
    (tmp_path / "bad.json").write_text(json.dumps({"id": "/x"}))
    out = subprocess.run([sys.executable, "-m", "localmesos.marathon", "--app", str(tmp_path / "bad.json"),
                          "--work_dir", str(tmp_path / "w")], capture_output=True, text=True, timeout=30)
    assert out.returncode == 2 and "needs a string 'id' and 'cmd'" in out.stderr


def test_fetch_goes_through_the_agents_fetcher_and_secrets_become_env(tmp_path):
    import tarfile
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "run.sh").write_text("echo from-the-archive\n")
    with tarfile.open(tmp_path / "pkg-1.0.tar.gz", "w:gz") as tf:
        tf.add(tmp_path / "pkg", arcname="pkg-1.0")
    (tmp_path / "secret").write_text("s3cret\n")
    app = {"id": "/x", "cmd": "sh pkg-1.0/run.sh > out.txt && echo \"$FW_SECRET\" > secret.txt && ls > ls.txt "
                               "&& sleep 60",
           "fetch": [{"uri": "https://repo.example.internal/pkg-1.0.tar.gz", "extract": True, "cache": False}],
           "env": {"FW_SECRET": {"secret": "fw"}}, "secrets": {"fw": {"source": "x/fw"}}}
    (tmp_path / "app.json").write_text(json.dumps(app))
    runner = procs.spawn([sys.executable, "-m", "localmesos.marathon", "--app", str(tmp_path / "app.json"),
                          "--work_dir", str(tmp_path / "m"), "--fetch", f"pkg-1.0.tar.gz={tmp_path / 'pkg-1.0.tar.gz'}",
                          "--secret", f"fw={tmp_path / 'secret'}"], log_path=tmp_path / "runner.log")
    try:
        run1 = tmp_path / "m" / "sandboxes" / "run-1"
        wait_for(lambda: (run1 / "ls.txt").exists(), timeout=30, what="the app ran")
        assert (run1 / "out.txt").read_text() == "from-the-archive\n"
        assert (run1 / "secret.txt").read_text() == "s3cret\n"
        # extracted, the archive kept under the URI's name, the fetch logged as Mesos does
        assert set((run1 / "ls.txt").read_text().split()) >= {"pkg-1.0", "pkg-1.0.tar.gz", "stderr"}
        assert "Fetching URI 'file://" in (run1 / "stderr").read_text()
    finally:
        procs.stop_group(runner.pid, grace=5)
    wait_for(lambda: not procs.pids_under(tmp_path / "m"), timeout=15, what="no instance left")
    bad = dict(app, env={"FW_SECRET": {"secret": "missing"}})
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    import subprocess
    out = subprocess.run([sys.executable, "-m", "localmesos.marathon", "--app", str(tmp_path / "bad.json"),
                          "--work_dir", str(tmp_path / "w")], capture_output=True, text=True, timeout=30)
    assert out.returncode == 2 and "refers to the secret 'missing', which is not in secrets" in out.stderr
