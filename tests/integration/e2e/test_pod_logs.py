"""`kmf pod logs` and `kmf pod info`'s sandbox on localmesos: the lines are the sandbox file's own,
as read straight from the sandbox directory on disk (the agents are local here)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers.operator_cli import kmf
from tests.helpers.wait import wait_for

pytestmark = [pytest.mark.timeout(420), pytest.mark.kafka]


def test_pod_logs_tail_stderr_follow_and_info_sandbox(kmf_env):
    env = kmf_env(agents=1)
    s = env.start_scheduler(config=env.config(brokers=1))
    s.wait_deployed()
    api = s.url

    # info: where Mesos says the sandbox is (the agent's /state), a directory on disk here
    info = kmf(api, "pod", "info", "broker-0")
    assert info.returncode == 0, info.stderr
    sandbox = s.pod("broker-0")["sandbox"]
    directory = Path(sandbox["directory"])
    assert directory.is_dir() and (directory / "stdout").is_file()
    assert "directory:" in info.stdout and str(directory) in info.stdout
    assert sandbox["agent_url"] in info.stdout and sandbox["agent_url"] == env.lm.agents[0].url.rstrip("/")

    # the broker's own lines are in the sandbox's stdout
    wait_for(lambda: b"Kafka Server started" in (directory / "stdout").read_bytes(), timeout=60,
             what="Kafka's 'Kafka Server started' in the sandbox stdout")
    whole = kmf(api, "pod", "logs", "broker-0")
    assert whole.returncode == 0, whole.stderr
    assert "Kafka Server started" in whole.stdout

    started = time.monotonic()
    tail = kmf(api, "pod", "logs", "broker-0", "--tail", "20")
    took = time.monotonic() - started
    assert tail.returncode == 0, tail.stderr
    on_disk = (directory / "stdout").read_text(errors="replace").splitlines()
    got = tail.stdout.splitlines()
    assert len(got) == 20, tail.stdout
    # the file may have grown between the two reads: the 20 lines are 20 consecutive lines of it,
    # ending where the file ended when kmf read it
    at = len(on_disk) - 20
    while at >= 0 and on_disk[at:at + 20] != got:
        at -= 1
    assert at >= 0, f"not the file's lines:\n{tail.stdout}"
    assert any("INFO" in line and ("kafka" in line.lower()) for line in got), got
    print(f"kmf pod logs broker-0 --tail 20 took {took:.2f}s")

    err = kmf(api, "pod", "logs", "broker-0", "--stderr", "--tail", "5")
    assert err.returncode == 0, err.stderr
    stderr_lines = (directory / "stderr").read_text(errors="replace").splitlines()
    assert err.stdout.splitlines() == stderr_lines[-5:]

    # --follow prints what is appended, and Ctrl-C ends it with 0
    follow = subprocess.Popen([sys.executable, "-m", "kmf", "pod", "logs", "broker-0", "--tail", "1",
                               "--follow", "--api", api], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        marker = f"kmf-follow-marker-{time.time_ns()}"
        time.sleep(2)
        with open(directory / "stdout", "a") as f:
            f.write(marker + "\n")
        seen = b""
        deadline = time.monotonic() + 20
        os.set_blocking(follow.stdout.fileno(), False)
        while marker.encode() not in seen and time.monotonic() < deadline:
            chunk = follow.stdout.read() or b""
            seen += chunk
            time.sleep(0.2)
        assert marker.encode() in seen, seen[-2000:]
        # a relaunched task: said on stderr, and the new sandbox's stdout is followed
        before = s.pod("broker-0")["task_id"]
        code, doc = s.request("POST", "/v1/pod/broker-0/restart", {"force": True})
        assert code == 200, doc
        os.set_blocking(follow.stderr.fileno(), False)
        said, seen = b"", b""
        deadline = time.monotonic() + 120
        while not (b"was relaunched" in said and b"Kafka Server started" in seen) and time.monotonic() < deadline:
            said += follow.stderr.read() or b""
            seen += follow.stdout.read() or b""
            time.sleep(0.3)
        after = s.pod("broker-0")
        assert after["task_id"] != before and after["sandbox"]["directory"] != str(directory)
        assert f"was relaunched (task {after['task_id']}".encode() in said, said
        assert b"Kafka Server started" in seen and follow.poll() is None, said
        follow.send_signal(signal.SIGINT)
        assert follow.wait(timeout=10) == 0, follow.stderr.read()
    finally:
        if follow.poll() is None:
            follow.kill()

    # refusals
    unknown = kmf(api, "pod", "logs", "nope", "--tail", "3")
    assert unknown.returncode == 1 and "not found: pod 'nope' does not exist" in unknown.stderr
    missing = kmf(api, "pod", "logs", "broker-0", "--file", "no-such-file")
    assert missing.returncode == 1 and "no-such-file" in missing.stderr
    assert kmf(api, "pod", "logs", "broker-0", "--tail", "-1").returncode == 2

    # the agent does not answer: said like an unreachable API, exit 3
    env.lm.kill_agent(0)
    gone = kmf(api, "pod", "logs", "broker-0", "--tail", "1")
    assert gone.returncode == 3 and "cannot read the sandbox of pod 'broker-0'" in gone.stderr, gone.stderr
