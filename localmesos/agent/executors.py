"""The agent's executors as processes: sandboxes, fetching, the environment and command line an
executor starts with, its exit (its live tasks fail), and killing it when it does not subscribe.

What an executor starts with and how its exit is reported are pure functions
(:func:`executor_environment`, :func:`launch_argv`, :func:`wait_status`); :class:`Executors` is
the agent's part that starts, watches and stops the processes.
"""
from __future__ import annotations

import logging
import os
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Callable, Mapping

from localmesos.agent.fetcher import FetchError, fetch_all
from localmesos.agent.model import AgentState, ExecutorEntry, id_of
from localmesos.procs import kill_group
from kmfwire.task_states import is_terminal
from kmfwire.waiting import wait_until

log = logging.getLogger("localmesos.agent")

REGISTRATION_TIMEOUT_S = 60.0  # Mesos' --executor_registration_timeout default


def executor_environment(base: Mapping[str, str], ex: ExecutorEntry, *, ip: str, port: int,
                         agent_id: str | None, shutdown_grace_s: float,
                         recovery_timeout_s: float) -> dict[str, str]:
    """The environment Mesos' agent gives an executor: ``base`` (the agent's own, less
    MESOS_LOCAL), the MESOS_* variables of the v1 executor API, then the executor's own.

    Pure."""
    env = dict(base)
    env.pop("MESOS_LOCAL", None)
    env.update({
        "MESOS_FRAMEWORK_ID": ex.framework_id, "MESOS_EXECUTOR_ID": ex.executor_id,
        "MESOS_AGENT_ENDPOINT": f"{ip}:{port}", "MESOS_DIRECTORY": str(ex.sandbox),
        "MESOS_SANDBOX": str(ex.sandbox), "MESOS_SLAVE_ID": agent_id or "",
        "MESOS_AGENT_ID": agent_id or "", "MESOS_SLAVE_PID": f"slave(1)@{ip}:{port}",
        "MESOS_CHECKPOINT": "1" if ex.checkpoint else "0",
        "MESOS_HTTP_COMMAND_EXECUTOR": "1" if ex.command_task else "0",
        "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD": f"{shutdown_grace_s}secs",
        "LIBPROCESS_PORT": "0",
    })
    if ex.checkpoint:
        env["MESOS_RECOVERY_TIMEOUT"] = f"{recovery_timeout_s}secs"
        env["MESOS_SUBSCRIPTION_BACKOFF_MAX"] = "2secs"
    else:
        env.pop("MESOS_RECOVERY_TIMEOUT", None)
    for var in ((ex.info.get("command") or {}).get("environment") or {}).get("variables") or []:
        env[str(var.get("name"))] = str(var.get("value", ""))
    return env


def launch_argv(command: dict) -> tuple[list[str], str | None]:
    """CommandInfo → (argv, executable): ``sh -c value`` for a shell command (the default), else
    ``arguments`` run as ``value``.

    Pure."""
    if command.get("shell", True):
        return ["/bin/sh", "-c", command.get("value", "")], None
    return list(command.get("arguments") or [command.get("value", "")]), command.get("value") or None


def wait_status(returncode: int) -> int:
    """Popen's returncode (negative: killed by that signal) as the wait(2) status Mesos reports
    in an executor's FAILURE event.

    Pure."""
    return (-returncode) & 0x7F if returncode < 0 else (returncode & 0xFF) << 8


def alive(pid: int | None) -> bool:
    """Whether process ``pid`` runs (a zombie counts as gone)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def later(delay: float, action: Callable[..., None], *args: Any) -> None:
    """Run ``action(*args)`` after ``delay`` seconds on a timer that does not keep a stopping
    agent alive."""
    timer = threading.Timer(delay, action, args=args)
    timer.daemon = True
    timer.start()


class Executors(AgentState):
    """The agent's executor processes (a part of :class:`localmesos.agent.agent.Agent`)."""

    def sandbox_for(self, fid: str, eid: str, container: str) -> Path:
        root = self.work_dir / "slaves" / (self.agent_id or "unregistered") / "frameworks" / fid / "executors" / eid
        run = root / "runs" / container
        run.mkdir(parents=True, exist_ok=True)
        latest = root / "runs" / "latest"
        try:
            if latest.is_symlink():
                latest.unlink()
            latest.symlink_to(container)
        except OSError:
            pass
        return run

    def executor_env(self, ex: ExecutorEntry) -> dict[str, str]:
        return executor_environment(os.environ, ex, ip=self.ip, port=self.port, agent_id=self.agent_id,
                                    shutdown_grace_s=self.flags.executor_shutdown_grace_period,
                                    recovery_timeout_s=self.flags.recovery_timeout)

    def launch_container(self, ex: ExecutorEntry) -> None:
        """Fetch the executor's URIs, then start it: in a thread of its own, as downloads of tens
        of MB must not hold up the agent's HTTP server (run_task answers the master at once) or
        other launches."""
        threading.Thread(target=self._fetch_and_start, args=(ex,), name=f"launch-{ex.executor_id}",
                         daemon=True).start()

    def _fetch_and_start(self, ex: ExecutorEntry) -> None:
        uris = (ex.info.get("command") or {}).get("uris") or []
        if uris:
            started = time.monotonic()
            try:
                with open(ex.sandbox / "stderr", "a") as err:
                    fetch_all(uris, ex.sandbox, self.fetcher_cache, err)
            except FetchError as exc:
                log.warning("fetching for executor %s failed: %s", ex.executor_id, exc)
                # Mesos' words: the containerizer's failure, wrapped by the agent's launch failure
                # (src/slave/containerizer/fetcher.cpp, Slave::executorLaunched)
                self.executor_failed_to_start(
                    ex, f"Failed to fetch all URIs for container '{ex.container_id}': exited with status 1")
                return
            log.info("fetched %d URIs for executor %s in %.2fs", len(uris), ex.executor_id,
                     time.monotonic() - started)
        with self.lock:
            current = self.executors.get(ex.key) is ex
        if not current or ex.shutting_down:
            # its tasks were killed while it was fetching: end it as one that exited at once
            log.info("executor %s was shut down while fetching: not started", ex.executor_id)
            if current:
                self.executor_exited(ex, 0)
            return
        self.start_executor(ex)
        later(REGISTRATION_TIMEOUT_S, self.kill_unless_subscribed, ex,
              f"did not subscribe within {REGISTRATION_TIMEOUT_S}s")

    def start_executor(self, ex: ExecutorEntry) -> None:
        argv, exe = launch_argv(ex.info.get("command") or {})
        with open(ex.sandbox / "stdout", "ab") as out, open(ex.sandbox / "stderr", "ab") as err:
            try:
                proc = subprocess.Popen(argv, executable=exe, cwd=str(ex.sandbox), env=self.executor_env(ex),
                                        stdin=subprocess.DEVNULL, stdout=out, stderr=err, start_new_session=True)
            except OSError as exc:
                log.warning("executor %s failed to start: %s", ex.executor_id, exc)
                self.executor_failed_to_start(ex, str(exc))
                return
        ex.proc, ex.pid = proc, proc.pid
        log.info("started executor %s (pid %s) in %s", ex.executor_id, proc.pid, ex.sandbox)
        if ex.checkpoint:
            self.checkpoint_executor(ex)
        self.watch_executor(ex)

    def executor_failed_to_start(self, ex: ExecutorEntry, why: str) -> None:
        with self.lock:
            self.executors.pop(ex.key, None)
            for event in ex.queued:
                for task in tasks_of_event(event):
                    tid = id_of(task["task_id"])
                    assert tid is not None  # the master validated the task
                    self.agent_update(ex.framework_id, tid, "TASK_FAILED",
                                      "REASON_CONTAINER_LAUNCH_FAILED", f"Failed to launch container: {why}",
                                      ex.executor_id)
        self._report_exit(ex, 1 << 8)

    def watch_executor(self, ex: ExecutorEntry) -> None:
        """Wait for the executor's exit on a thread of its own."""
        threading.Thread(target=self._wait_executor, args=(ex,), daemon=True).start()

    def _wait_executor(self, ex: ExecutorEntry) -> None:
        if ex.proc is not None:
            status = ex.proc.wait()
        else:  # recovered after an agent restart: not our child
            wait_until(lambda: not alive(ex.pid) or self.stopped.is_set(), None, 0.5)
            status = 0
        kill_group(ex.pid)  # whatever it left in its group
        if not self.stopped.is_set():
            self.executor_exited(ex, status)

    def executor_exited(self, ex: ExecutorEntry, status: int) -> None:
        log.info("executor %s exited with %s", ex.executor_id, status)
        with self.lock:
            if self.executors.get(ex.key) is not ex:
                return
            del self.executors[ex.key]
            self.completed_executors.append(ex)
            if ex.events is not None:
                ex.events.put(None)
            for (fid, tid), t in list(self.tasks.items()):
                if fid == ex.framework_id and t.executor_id == ex.executor_id and not is_terminal(t.state):
                    self.agent_update(fid, tid, "TASK_FAILED", "REASON_EXECUTOR_TERMINATED",
                                      "Executor terminated", ex.executor_id)
            self.meta.forget_executor(ex)
        self._report_exit(ex, wait_status(status))

    def _report_exit(self, ex: ExecutorEntry, status: int) -> None:
        """Tell the master, which counts a custom executor's resources until it hears it is gone
        (a command executor's go with its task)."""
        if ex.command_task:
            return
        try:
            self.call_master("executor_exited", {"framework_id": {"value": ex.framework_id},
                                                 "executor_id": {"value": ex.executor_id},
                                                 "agent_id": {"value": self.agent_id}, "status": status})
        except OSError:
            pass

    def send_event(self, ex: ExecutorEntry, event: dict) -> None:
        if ex.subscribed and ex.events is not None:
            ex.events.put(event)
        else:
            ex.queued.append(event)

    def kill_executor_later(self, ex: ExecutorEntry, grace: float) -> None:
        later(grace, lambda: kill_group(ex.pid) if alive(ex.pid) else None)

    def kill_unless_subscribed(self, ex: ExecutorEntry, why: str) -> None:
        """Kill the executor unless it subscribed (or is gone already)."""
        with self.lock:
            if ex.subscribed or self.executors.get(ex.key) is not ex:
                return
        log.warning("executor %s %s: killing it", ex.executor_id, why)
        kill_group(ex.pid)

    def shutdown_executor_entry(self, ex: ExecutorEntry) -> None:
        ex.shutting_down = True
        self.send_event(ex, {"type": "SHUTDOWN"})
        self.kill_executor_later(ex, float(self.flags.executor_shutdown_grace_period) + 1.0)


def tasks_of_event(event: dict) -> list[dict]:
    """The tasks a LAUNCH or LAUNCH_GROUP event carries (none for other events).

    Pure."""
    if event.get("type") == "LAUNCH":
        return [event["launch"]["task"]]
    if event.get("type") == "LAUNCH_GROUP":
        return list(event["launch_group"]["task_group"]["tasks"])
    return []
