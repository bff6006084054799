"""localmesos' command executor (Mesos' ``mesos-executor``): runs one TaskInfo.command.

A separate process that speaks the v1 executor API through pymesos, as Mesos' own does: executor
id = task id; TASK_STARTING, TASK_RUNNING, then TASK_FINISHED (exit 0), TASK_FAILED ("Command
exited with status N" / "Command terminated with signal Terminated", strsignal's words) or
TASK_KILLED after KILL (TASK_KILLING first for frameworks with TASK_KILLING_STATE), honouring
the kill policy's grace period (default 3 s) between SIGTERM and SIGKILL of the command's group.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid

from pymesos import Executor, MesosExecutorDriver, encode_data

from kmfio.httpjson import answers_ok
from kmfwire.task_states import is_terminal
from kmfwire.waiting import wait_until

DEFAULT_GRACE_S = 3.0


class CommandExecutor(Executor):
    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None
        self.task_id: str | None = None
        self.killed = threading.Event()
        self.grace = DEFAULT_GRACE_S
        self.done = threading.Event()
        self.acked = threading.Event()
        self.last_uuid: bytes | None = None
        self.send_lock = threading.Lock()
        self.killing_state = False  # Mesos sends TASK_KILLING only to frameworks that can take it

    def registered(self, driver, executor_info, framework_info, agent_info) -> None:  # noqa: ANN001
        capabilities = (framework_info or {}).get("capabilities") or []
        self.killing_state = any(c.get("type") == "TASK_KILLING_STATE" for c in capabilities)

    def update(self, driver, state: str, message: str = "", healthy: bool | None = None) -> None:  # noqa: ANN001
        raw = uuid.uuid4().bytes
        if is_terminal(state):
            self.last_uuid = raw
        status = {"task_id": {"value": self.task_id}, "state": state,
                  "executor_id": {"value": self.task_id}, "uuid": encode_data(raw), "timestamp": time.time()}
        if message:  # as Mesos' command executor: no message on TASK_STARTING / TASK_RUNNING
            status["message"] = message
        if healthy is not None:
            status["healthy"] = healthy
            status["reason"] = "REASON_TASK_HEALTH_CHECK_STATUS_UPDATED"
        with self.send_lock:
            driver.sendStatusUpdate(status)

    def launchTask(self, driver, task) -> None:  # noqa: ANN001,N802
        self.task_id = task["task_id"]["value"]
        cmd = task.get("command") or {}
        try:
            self.grace = task["kill_policy"]["grace_period"]["nanoseconds"] / 1e9
        except (KeyError, TypeError):
            pass
        env = dict(os.environ)
        for var in (cmd.get("environment") or {}).get("variables") or []:
            env[var["name"]] = var.get("value", "")
        if cmd.get("shell", True):
            argv = ["/bin/sh", "-c", cmd.get("value", "")]
        else:
            argv = list(cmd.get("arguments") or [cmd.get("value", "")])
            argv[0:1] = [cmd.get("value") or argv[0]]
        self.update(driver, "TASK_STARTING")
        try:
            self.proc = subprocess.Popen(argv, env=env, start_new_session=True, stdin=subprocess.DEVNULL)
        except OSError as exc:
            self.update(driver, "TASK_FAILED", f"Failed to launch the command: {exc}")
            self.done.set()
            return
        self.update(driver, "TASK_RUNNING")
        threading.Thread(target=self._wait, args=(driver,), daemon=True).start()
        check = task.get("health_check")
        if isinstance(check, dict):
            threading.Thread(target=self._health, args=(driver, check, env), daemon=True).start()

    def _health(self, driver, check: dict, env: dict) -> None:  # noqa: ANN001
        """TaskInfo.health_check as Mesos' command executor runs it."""
        kind = (check.get("type") or next((k.upper() for k in ("command", "http", "tcp") if k in check), "")).upper()
        delay = float(check.get("delay_seconds", 15.0))
        interval = float(check.get("interval_seconds", 10.0))
        timeout = float(check.get("timeout_seconds", 20.0)) or None
        allowed = int(check.get("consecutive_failures", 3))
        grace = float(check.get("grace_period_seconds", 10.0))
        started = time.monotonic()
        healthy: bool | None = None
        failures = 0
        if self.done.wait(delay):
            return
        while not self.done.is_set() and not self.killed.is_set():
            ok = _probe(kind, check, timeout, env)
            if ok:
                failures = 0
                if healthy is not True:
                    healthy = True
                    self.update(driver, "TASK_RUNNING", "health check passed", healthy=True)
            elif healthy is None and time.monotonic() - started < grace:
                pass  # failures in the grace period count only after a first success
            else:
                failures += 1
                if failures >= allowed and healthy is not False:
                    healthy = False
                    self.update(driver, "TASK_RUNNING", f"{failures} health checks failed", healthy=False)
            if self.done.wait(interval):
                return

    def _wait(self, driver) -> None:  # noqa: ANN001
        assert self.proc is not None  # started by launchTask
        code = self.proc.wait()
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if self.killed.is_set():
            self.update(driver, "TASK_KILLED", _wait_message(code))
        elif code == 0:
            self.update(driver, "TASK_FINISHED", _wait_message(code))
        else:
            self.update(driver, "TASK_FAILED", _wait_message(code))
        self.done.set()

    def killTask(self, driver, task_id) -> None:  # noqa: ANN001,N802
        if self.proc is None or self.killed.is_set():
            return
        self.killed.set()
        if self.killing_state:
            self.update(driver, "TASK_KILLING")

        proc = self.proc

        def kill() -> None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                return
            wait_until(lambda: proc.poll() is not None, self.grace, 0.05)
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        threading.Thread(target=kill, daemon=True).start()

    def shutdown(self, driver) -> None:  # noqa: ANN001
        if self.proc is not None and self.proc.poll() is None:
            self.killTask(driver, {"value": self.task_id})
            self.done.wait(self.grace + 1)


def _wait_message(code: int) -> str:
    """Mesos' command executor: "Command " + WSTRINGIFY(status) (strsignal's name of a signal)."""
    if code < 0:
        return f"Command terminated with signal {signal.strsignal(-code) or -code}"
    return f"Command exited with status {code}"


def _probe(kind: str, check: dict, timeout: float | None, env: dict) -> bool:
    import socket
    try:
        if kind == "TCP":
            with socket.create_connection(("127.0.0.1", int(check["tcp"]["port"])), timeout=timeout):
                return True
        if kind == "HTTP":
            http = check["http"]
            url = f"{http.get('scheme', 'http')}://127.0.0.1:{int(http['port'])}{http.get('path', '/')}"
            return answers_ok(url, timeout)
        if kind == "COMMAND":
            cmd = check["command"]
            argv = ["/bin/sh", "-c", cmd.get("value", "")] if cmd.get("shell", True) else list(cmd.get("arguments") or [])
            return subprocess.run(argv, env=env, timeout=timeout, capture_output=True).returncode == 0
    except (OSError, ValueError, KeyError, subprocess.TimeoutExpired):
        return False
    return False


class _Driver(MesosExecutorDriver):
    def on_acknowledged(self, event: dict) -> None:
        super().on_acknowledged(event)
        from pymesos import decode_data
        if self.executor.last_uuid is not None and decode_data(event["uuid"]) == self.executor.last_uuid:
            self.executor.acked.set()


def main() -> int:
    executor = CommandExecutor()
    driver = _Driver(executor, use_addict=True)
    driver.checkpoint = os.environ.get("MESOS_CHECKPOINT") == "1"
    driver.start()
    executor.done.wait()
    executor.acked.wait(30)  # Mesos' command executor waits for the terminal update's ack
    driver.stop()
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    os._exit(code)
