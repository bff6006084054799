"""The executor's workloads and supervisor against real processes and a real KRaft broker."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from executor.supervisor import Supervised, describe_exit, tail
from executor.workloads import WorkloadError, prepare
from kmfwire.taskdata import BrokerTask, StreamTask, TaskData, Voter
from localmesos import procs
from tests.helpers.wait import wait_for

pytestmark = pytest.mark.timeout(180)


def test_graceful_stop_then_kill_of_the_whole_group(tmp_path):
    script = "import signal,subprocess,sys,time\n" \
             "subprocess.Popen([sys.executable,'-c','import time; time.sleep(600)'])\n" \
             "signal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint('up', flush=True)\ntime.sleep(600)\n"
    proc = Supervised([sys.executable, "-c", script], dict(os.environ), tmp_path,
                      tmp_path / "stdout", tmp_path / "stderr").start()
    wait_for(lambda: b"up" in (tmp_path / "stdout").read_bytes(), timeout=10, what="child up")
    started = time.monotonic()
    status = proc.stop(grace_s=1.0)
    assert status == -signal.SIGKILL and time.monotonic() - started >= 1.0
    assert describe_exit(status) == "killed by SIGKILL"

    def group_gone() -> bool:  # the orphaned grandchild is reaped by init shortly after
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return True
        return False
    wait_for(group_gone, timeout=10, what="nothing of the group left")


def test_exit_code_and_stderr_tail(tmp_path):
    proc = Supervised([sys.executable, "-c", "import sys; print('boom', file=sys.stderr); sys.exit(3)"],
                      dict(os.environ), tmp_path, tmp_path / "stdout", tmp_path / "stderr").start()
    assert proc.wait(10) == 3 and describe_exit(3) == "exited with code 3"
    assert tail(tmp_path / "stderr") == "boom"


def test_workload_dies_with_its_executor(tmp_path):
    # a stand-in executor process that supervises a sleeper, then is killed -9
    code = textwrap.dedent(f"""
        import os, sys, time
        from pathlib import Path
        from executor.supervisor import Supervised
        p = Supervised([sys.executable, '-c', 'import time; time.sleep(600)'], dict(os.environ),
                       Path({str(tmp_path)!r}), Path({str(tmp_path / 'o')!r}), Path({str(tmp_path / 'e')!r})).start()
        print(p.pid, flush=True)
        time.sleep(600)
    """)
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, cwd=os.getcwd())
    child = int(parent.stdout.readline())
    parent.kill()
    parent.wait()

    def gone() -> bool:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            return True
        return False
    wait_for(gone, timeout=10, what="the workload to die with its executor")


def broker_task(host: str, broker_port: int, controller_port: int, cluster_id: str) -> TaskData:
    return TaskData(kind="broker", service="t", broker=BrokerTask(
        node_id=0, mode="kraft", kafka_version="4.3.1", roles=("broker", "controller"), host=host,
        broker_port=broker_port, controller_port=controller_port, cluster_id=cluster_id,
        voters=(Voter(0, host, controller_port),), volume="kafka-data", heap_mb=256,
        overrides={"group.initial.rebalance.delay.ms": "0"}))


def test_broker_workload_ready_restart_keeps_data(tmp_path):
    from confluent_kafka import Consumer, Producer
    from kmfwire.cluster_id import new_cluster_id

    host = procs.loopback_ip()
    ports = procs.free_port(host), procs.free_port(host)
    cluster_id = new_cluster_id()
    data = broker_task(host, ports[0], ports[1] if ports[1] != ports[0] else procs.free_port(host), cluster_id)

    def run_once():
        work = prepare(data, tmp_path)
        proc = Supervised(work.argv, work.env, tmp_path, tmp_path / "stdout", tmp_path / "stderr").start()
        try:
            wait_for(work.ready, timeout=90, interval=0.5, what="broker in the metadata")
        except BaseException:
            proc.stop(0)
            raise
        return proc

    proc = run_once()
    try:
        p = Producer({"bootstrap.servers": f"{host}:{ports[0]}"})
        for i in range(100):
            p.produce("kept", str(i).encode())
        assert p.flush(30) == 0
    finally:
        assert proc.stop(20) is not None
    meta = (tmp_path / "kafka-data" / "logs" / "meta.properties").read_text()
    proc = run_once()  # same volume: not formatted again, data still there
    try:
        assert (tmp_path / "kafka-data" / "logs" / "meta.properties").read_text() == meta
        c = Consumer({"bootstrap.servers": f"{host}:{ports[0]}", "group.id": "g",
                      "auto.offset.reset": "earliest"})
        c.subscribe(["kept"])
        seen = set()
        deadline = time.monotonic() + 60
        while len(seen) < 100 and time.monotonic() < deadline:
            m = c.poll(1)
            if m is not None and not m.error():
                seen.add(int(m.value()))
        c.close()
        assert seen == set(range(100))
    finally:
        proc.stop(20)


def test_volume_of_another_cluster_is_refused(tmp_path):
    from kmfwire.cluster_id import new_cluster_id
    host = procs.loopback_ip()
    data = broker_task(host, procs.free_port(host), procs.free_port(host), new_cluster_id())
    prepare(data, tmp_path)
    other = broker_task(host, data.broker.broker_port, data.broker.controller_port, new_cluster_id())
    with pytest.raises(WorkloadError, match="storage of node 0"):
        prepare(other, tmp_path)


def test_stream_workload_marker_readiness(tmp_path):
    data = TaskData(kind="stream", service="t", stream=StreamTask(
        app="echo", instance=1, runtime="command",
        command=("sh", "-c", "echo \"$KMF_APP-$KMF_INSTANCE $KAFKA_BOOTSTRAP_SERVERS\"; echo 'kmf: ready'; sleep 60"),
        bootstrap_servers="h:1"))
    work = prepare(data, tmp_path)
    proc = Supervised(work.argv, work.env, tmp_path, tmp_path / "stdout", tmp_path / "stderr").start()
    try:
        wait_for(work.ready, timeout=2.5, what="ready marker")  # sooner than the fallback
        assert "echo-1 h:1" in (tmp_path / "stdout").read_text()
    finally:
        proc.stop(1)
