"""The kmf executor: pymesos' executor driver around one supervised workload per task.

Traps of pymesos' executor driver (0.3.15) handled here:

* ``MESOS_CHECKPOINT="0"`` is read by pymesos as true; the driver's flag is corrected from the
  environment, and the executor keeps its own recovery timer: an agent that stays away longer than
  ``MESOS_RECOVERY_TIMEOUT`` (or at once without checkpointing) means the workload is stopped and
  the executor exits, so nothing is orphaned.
* pymesos SIGKILLs the executor's process group after the shutdown grace period; workloads run in
  their own session (`executor.supervisor`), and `shutdown` stops them inside that grace.
* pymesos never records sent updates and drops those sent while disconnected: the executor keeps an
  outbox of updates not yet ACKNOWLEDGED and re-sends them when it re-subscribes.
* A LAUNCH with an invalid payload fails that task (TASK_FAILED with the reason), never the executor.
"""
from __future__ import annotations

import logging
import os
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Mapping

from pymesos import Executor, MesosExecutorDriver, decode_data, encode_data

from executor.policy import (
    HEALTH_REASON, DurationError, HealthCounter, StatusGate, exit_outcome, parse_duration, stuck_outcome,
    volume_full_note,
)
from executor.supervisor import Supervised, tail
from executor.workloads import Workload, WorkloadError, prepare
from kmfwire.taskdata import TaskData, TaskDataError
from kmfwire.waiting import wait_until

log = logging.getLogger("executor")

READY_LABEL = "kmf.ready"
APP_STATE_LABEL = "kmf.app_state"
DEFAULT_RECOVERY_TIMEOUT_S = 900.0
ACK_WAIT_S = 30.0


def _duration(env: Mapping[str, str], name: str, default: float) -> float:
    """`name` from the environment in seconds; `default` if unset or empty.

    Raises `DurationError` for anything else that is not a Mesos duration: guessing a default
    would silently change how long a broker gets to stop (the shutdown grace) or how long the
    executor waits for its agent (the recovery timeout).
    """
    raw = env.get(name)
    if not raw:
        return default
    return parse_duration(name, raw)


def checkpointing(env: Mapping[str, str]) -> bool:
    return env.get("MESOS_CHECKPOINT", "0").strip().lower() in ("1", "true")


class _Driver(MesosExecutorDriver):
    """Tells the executor about ACKNOWLEDGED events, which pymesos keeps to itself."""

    def on_acknowledged(self, event: dict) -> None:
        super().on_acknowledged(event)
        try:
            self.executor.acknowledged(event["task_id"]["value"], decode_data(event["uuid"]))
        except Exception:  # noqa: BLE001 - never let an exception reach pymesos' IO thread
            log.exception("handling ACKNOWLEDGED")


class TaskRunner:
    """Runs one task's workload in its own thread and reports its states."""

    def __init__(self, owner: "KmfExecutor", task: Mapping[str, Any], data: TaskData, sandbox: Path) -> None:
        self.owner = owner
        self.task = task
        self.task_id = task["task_id"]["value"]
        self.data = data
        self.sandbox = sandbox
        self.grace_s = _kill_grace(task, data.grace_period_s)
        self.kill_requested = threading.Event()
        self.done = threading.Event()
        self.ready = False
        self.healthy: bool | None = None
        self.app_state: str | None = None  # a stream app's, as its output says
        self.proc: Supervised | None = None
        # one terminal status per task: the kill path (pymesos' thread) and the supervising thread
        # both send, so the gate's decision and the send happen under one lock, which also keeps
        # a TASK_KILLING from overtaking the TASK_FINISHED that raced it
        self._gate = StatusGate()
        self._status_lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, name=f"task-{self.task_id}", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def update(self, state: str, message: str = "", healthy: bool | None = None, reason: str | None = None) -> bool:
        """Sends a status unless the task already sent its terminal one; True if it was sent."""
        with self._status_lock:
            if not self._gate.admit(state):
                log.warning("task %s: %s not sent, the task already ended with %s (%s)", self.task_id,
                            state, self._gate.terminal, message.splitlines()[0] if message else "")
                return False
            labels = [{"key": READY_LABEL, "value": "true"}] if self.ready else []
            if self.app_state is not None:
                labels.append({"key": APP_STATE_LABEL, "value": self.app_state})
            self.owner.send_update(self.task_id, state, message, healthy, reason, labels)
            return True

    def kill(self, grace_s: float | None = None) -> None:
        if grace_s is not None:
            self.grace_s = min(self.grace_s, grace_s)
        if not self.kill_requested.is_set() and not self.done.is_set():
            self.kill_requested.set()
            # `done` is set only after the terminal status went out, so the check above can pass
            # for a task that just finished: the gate drops the TASK_KILLING then
            self.update("TASK_KILLING", "kill requested")

    def _run(self) -> None:
        try:
            self._supervise()
        except Exception as exc:  # noqa: BLE001 - report any bug as a failed task, not a hang
            log.exception("task %s", self.task_id)
            if self.proc is not None:
                self.proc.stop(0)
            self.update("TASK_FAILED", f"kmf executor error: {exc}")
        finally:
            self.done.set()
            self.owner.task_done(self)

    def _supervise(self) -> None:
        self.update("TASK_STARTING", "preparing")
        try:
            workload = prepare(self.data, self.sandbox, self.owner.env)
        except (WorkloadError, ValueError, OSError) as exc:
            self.update("TASK_FAILED", f"cannot start: {exc}")
            return
        if self.kill_requested.is_set():
            self.update("TASK_KILLED", "killed before it started")
            return
        self.proc = Supervised(workload.argv, workload.env, self.sandbox,
                               self.sandbox / "stdout", self.sandbox / "stderr").start()
        self.update("TASK_RUNNING", f"{workload.description}: started (pid {self.proc.pid})")
        health = HealthCounter(self.data.health_consecutive_failures)
        next_check = time.monotonic() + 0.5
        next_health = 0.0
        stuck: str | None = None
        while self.proc.poll() is None and not self.kill_requested.wait(0.2):
            now = time.monotonic()
            if now < next_check:
                continue
            # readiness, and a stream app's state (which ends it when stuck), every second; the
            # health check once ready, then every health_interval_s
            next_check = now + 1.0
            stuck = workload.stuck()
            if stuck is not None:
                break
            app_state = workload.app_state()
            if app_state != self.app_state:
                self.app_state = app_state
                self.update("TASK_RUNNING", f"{workload.description}: {app_state}", healthy=self.healthy)
            if not self.ready:
                if workload.ready():
                    self.ready, self.healthy = True, True
                    self.update("TASK_RUNNING", f"{workload.description}: ready", healthy=True)
                    next_health = now + 1.0  # the first health check a second after ready, as before
                continue
            if now < next_health:
                continue
            health = health.observe(workload.healthy())
            if health.healthy != self.healthy:
                self.healthy = health.healthy
                self.update("TASK_RUNNING", f"{workload.description}: {health.change_message()}",
                            healthy=health.healthy, reason=HEALTH_REASON)
            next_health = time.monotonic() + self.data.health_interval_s
        if self.kill_requested.is_set():
            outcome = exit_outcome(self.proc.stop(self.grace_s), kill_requested=True)
        elif stuck is not None:
            log.warning("task %s: %s", self.task_id, stuck)
            outcome = stuck_outcome(stuck, self.proc.stop(self.grace_s))
        else:
            code = self.proc.wait()
            self.proc.stop(0)  # the leader exited: take the rest of its group with it
            outcome = exit_outcome(code, kill_requested=False,
                                   stderr_tail=tail(self.sandbox / "stderr", 8) if code != 0 else "",
                                   volume_note=self._volume_note(workload) if code != 0 else None)
        self.update(outcome.state, outcome.message, reason=outcome.reason)

    def _volume_note(self, workload: Workload) -> str | None:
        """A full data volume, from its free space and the end of the workload's output."""
        if workload.volume is None:
            return None
        try:
            st = os.statvfs(workload.volume)
        except OSError:
            return None
        log_tail = tail(self.sandbox / "stdout", 40) + tail(self.sandbox / "stderr", 20)
        # resolved: where the space is on the agent (a symlink to the volume on some agents)
        return volume_full_note(str(workload.volume.resolve()), st.f_bavail * st.f_frsize,
                                st.f_blocks * st.f_frsize, log_tail)


def _kill_grace(task: Mapping[str, Any], default: float) -> float:
    try:
        return task["kill_policy"]["grace_period"]["nanoseconds"] / 1e9
    except (KeyError, TypeError):
        return default


class KmfExecutor(Executor):
    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.sandbox = Path(env.get("MESOS_SANDBOX") or env.get("MESOS_DIRECTORY") or os.getcwd())
        self.checkpoint = checkpointing(env)
        self.recovery_timeout_s = _duration(env, "MESOS_RECOVERY_TIMEOUT", DEFAULT_RECOVERY_TIMEOUT_S)
        self.shutdown_grace_s = _duration(env, "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD", 5.0)
        self.driver: _Driver | None = None
        self.agent_id: dict | None = None
        self.executor_id = {"value": env.get("MESOS_EXECUTOR_ID", "")}
        self.runners: dict[str, TaskRunner] = {}
        # gates of tasks that never got a runner (invalid payload, kill of an unknown id): their
        # statuses are sent here, and a kill after the invalid payload's TASK_FAILED must not add
        # a TASK_LOST
        self._runnerless: dict[str, StatusGate] = {}
        self.outbox: dict[bytes, dict] = {}  # uuid → status, insertion-ordered
        self.lock = threading.RLock()
        self.connected = threading.Event()
        self.finished = threading.Event()
        self._recovery_timer: threading.Timer | None = None

    # -- updates -------------------------------------------------------------------------------

    def send_update(self, task_id: str, state: str, message: str = "", healthy: bool | None = None,
                    reason: str | None = None, labels: list | None = None) -> None:
        raw_uuid = uuid.uuid4().bytes
        status: dict[str, Any] = {
            "task_id": {"value": task_id}, "state": state, "message": message[:4000],
            "uuid": encode_data(raw_uuid), "source": "SOURCE_EXECUTOR",
            "executor_id": self.executor_id, "timestamp": time.time(),
        }
        if self.agent_id:
            status["agent_id"] = self.agent_id
        if healthy is not None:
            status["healthy"] = healthy
        if reason:
            status["reason"] = reason
        if labels:
            status["labels"] = {"labels": labels}
        log.info("task %s: %s %s", task_id, state, message.splitlines()[0] if message else "")
        with self.lock:
            self.outbox[raw_uuid] = status
        self._deliver(status)

    def _deliver(self, status: dict) -> None:
        if self.driver is None or not self.connected.is_set():
            return  # kept in the outbox; re-sent on re-subscription
        try:
            self.driver.sendStatusUpdate(dict(status))
        except Exception as exc:  # noqa: BLE001 - "Not connected yet" and HTTP errors
            log.warning("update %s for %s not sent now (%s); will re-send", status["state"],
                        status["task_id"]["value"], exc)

    def acknowledged(self, task_id: str, raw_uuid: bytes) -> None:
        with self.lock:
            self.outbox.pop(raw_uuid, None)
        self._maybe_finish()

    def _resend_outbox(self) -> None:
        with self.lock:
            pending = list(self.outbox.values())
        for status in pending:
            self._deliver(status)

    # -- pymesos callbacks ---------------------------------------------------------------------

    def registered(self, driver, executor_info, framework_info, agent_info) -> None:  # noqa: ANN001
        self.agent_id = dict(agent_info.get("id") or {}) or None
        self._connected()
        log.info("registered with agent %s (checkpoint=%s, recovery timeout %ss)",
                 (self.agent_id or {}).get("value"), self.checkpoint, self.recovery_timeout_s)

    def reregistered(self, driver, agent_info) -> None:  # noqa: ANN001
        self.agent_id = dict(agent_info.get("id") or {}) or self.agent_id
        self._connected()
        log.info("re-registered with the agent; re-sending %d unacknowledged updates", len(self.outbox))
        self._resend_outbox()

    def _connected(self) -> None:
        self.connected.set()
        if self._recovery_timer is not None:
            self._recovery_timer.cancel()
            self._recovery_timer = None

    def disconnected(self, driver) -> None:  # noqa: ANN001
        self.connected.clear()
        if not self.checkpoint:
            return  # pymesos calls shutdown() right after this
        log.warning("agent connection lost; waiting %ss for it to come back", self.recovery_timeout_s)
        timer = threading.Timer(self.recovery_timeout_s, self._recovery_expired)
        timer.daemon = True
        self._recovery_timer = timer
        timer.start()

    def _recovery_expired(self) -> None:
        if self.connected.is_set():
            return
        log.error("agent did not come back within %ss: stopping the workload and exiting",
                  self.recovery_timeout_s)
        self._kill_all(min(self.shutdown_grace_s, 10.0))
        self.finished.set()
        if self.driver is not None:
            self.driver.stop()

    def launchTask(self, driver, task) -> None:  # noqa: ANN001,N802
        task_id = task["task_id"]["value"]
        try:
            data = TaskData.decode(task.get("data") or "")
        except TaskDataError as exc:
            self._send_runnerless(task_id, "TASK_FAILED", f"invalid kmf task data: {exc}",
                                  reason="REASON_TASK_INVALID")
            self._maybe_finish()
            return
        runner = TaskRunner(self, task, data, self.sandbox)
        with self.lock:
            self.runners[task_id] = runner
        runner.start()

    def launchTaskGroup(self, driver, tasks) -> None:  # noqa: ANN001,N802
        for task in tasks:
            self.launchTask(driver, task)

    def killTask(self, driver, task_id) -> None:  # noqa: ANN001,N802
        runner = self.runners.get(task_id["value"])
        if runner is None:
            self._send_runnerless(task_id["value"], "TASK_LOST", "unknown to this executor")
            return
        runner.kill()

    def _send_runnerless(self, task_id: str, state: str, message: str, reason: str | None = None) -> None:
        with self.lock:
            admitted = self._runnerless.setdefault(task_id, StatusGate()).admit(state)
        if not admitted:
            log.warning("task %s: %s not sent, the task already ended", task_id, state)
            return
        self.send_update(task_id, state, message, reason=reason)

    def frameworkMessage(self, driver, message) -> None:  # noqa: ANN001,N802
        log.info("framework message: %r", decode_data(message)[:200])

    def shutdown(self, driver) -> None:  # noqa: ANN001
        # inside pymesos' grace period: leave a second for the last updates
        self._kill_all(max(0.5, self.shutdown_grace_s - 1.5))
        self.finished.set()

    def error(self, driver, message) -> None:  # noqa: ANN001
        log.error("error from the agent: %s", message)

    # -- life cycle ----------------------------------------------------------------------------

    def _kill_all(self, grace_s: float) -> None:
        runners = list(self.runners.values())
        for runner in runners:
            runner.kill(grace_s)
        for runner in runners:
            runner.done.wait(grace_s + 5)

    def task_done(self, runner: TaskRunner) -> None:
        self._maybe_finish()

    def _maybe_finish(self) -> None:
        with self.lock:
            busy = any(not r.done.is_set() for r in self.runners.values())
            if busy or self.outbox:
                return
        self.finished.set()


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s kmf-executor %(levelname)s %(message)s")
    env = dict(os.environ)
    try:
        executor = KmfExecutor(env)
    except DurationError as exc:
        # Before registering there is no task to fail and no driver to report through: exiting
        # non-zero with the reason on stderr (the sandbox's stderr file) is what an operator can
        # see, and the agent itself ends the tasks of an executor that exits. Running on with a
        # guessed grace or recovery timeout would hide the misconfiguration.
        print(f"kmf executor: {exc}", file=sys.stderr, flush=True)
        return 2
    driver = _Driver(executor, use_addict=True)
    driver.checkpoint = executor.checkpoint  # pymesos reads "0" as true
    executor.driver = driver
    driver.start()
    # every task ended and its last update was acknowledged, or the agent is gone for good
    while not executor.finished.wait(0.5):
        pass
    wait_until(lambda: not (executor.outbox and executor.connected.is_set()), ACK_WAIT_S, 0.1)
    log.info("executor done (%d updates unacknowledged)", len(executor.outbox))
    driver.stop()
    return 0
