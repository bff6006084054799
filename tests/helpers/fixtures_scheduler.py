"""kmf schedulers as real processes against localmesos, ZooKeeper and the kmf executor.

`kmf_env` builds a local cluster (ZooKeeper chroot, zk:// master, N agents in different zones);
`env.start_scheduler(...)` writes a config for the test and starts `python -m scheduler`; helpers
read its API. Every process is stopped by pid at teardown (executors and brokers too, by sandbox).
"""
from __future__ import annotations

import json
import os
import signal
import sys
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from localmesos import procs
from tests.helpers.wait import WaitTimeout, wait_for

AGENT_RESOURCES = "cpus:4;mem:6144;disk:20000;ports:[31000-31999]"
AGENT_FLAGS = ("--recovery_timeout=10secs", "--executor_shutdown_grace_period=5secs")


def small_config(name: str, master: str, zk_connect: str, zk_root: str, api_port: int, *,
                 brokers: int = 3, apps: list[dict] | None = None, **kafka: Any) -> dict:
    return {
        "name": name,
        "mesos": {"master": master, "role": "kafka-role", "failover_timeout_s": 600},
        "zookeeper": {"connect": zk_connect, "root": zk_root},
        "kafka": {"brokers": brokers, "cpus": 0.5, "mem_mb": 768, "heap_mb": 256, "disk_mb": 500,
                  "placement": ["hostname:UNIQUE"],
                  "overrides": {"group.initial.rebalance.delay.ms": "0"}, **kafka},
        "apps": apps or [],
        "policies": {"backoff_initial_s": 1, "backoff_max_s": 4, "permanent_failure_timeout_s": 12},
        "api": {"port": api_port, "bind": "127.0.0.1"},
    }


class SchedulerProc:
    def __init__(self, base: Path, config: dict, index: int, env: dict[str, str] | None = None,
                 wrap=None) -> None:
        self.base = base
        self.wrap = wrap or (lambda name, argv: list(argv))  # see LocalMesos.wrap
        self.config = config
        self.index = index
        self.env = env or {}
        self.path = base / f"kmf-{index}.yaml"
        self.log_path = base / f"scheduler-{index}.log"
        self.proc = None
        bind = config["api"].get("bind") or "0.0.0.0"
        host = "127.0.0.1" if bind in ("0.0.0.0", "::") else bind  # where it listens
        self.url = f"http://{host}:{config['api']['port']}"

    def start(self) -> "SchedulerProc":
        self.path.write_text(yaml.safe_dump(self.config))
        self.proc = procs.spawn(self.wrap(f"scheduler-{self.index}",
                                          [sys.executable, "-m", "scheduler", "--config", str(self.path)]),
                                log_path=self.log_path, env={**os.environ, **self.env})
        wait_for(lambda: self.proc.poll() is not None or self.reachable(), timeout=30, what="scheduler API")
        assert self.proc.poll() is None, self.log()
        return self

    def reachable(self) -> bool:
        try:
            self.get("/v1/plans")
            return True
        except OSError:
            return False

    def log(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def request(self, method: str, path: str, body: Any = None, token: str | None = None) -> tuple[int, Any]:
        data = None if body is None else (body.encode() if isinstance(body, str) else json.dumps(body).encode())
        req = urllib.request.Request(self.url + path, data=data, method=method)
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                return exc.code, json.loads(raw)
            except ValueError:
                return exc.code, raw.decode(errors="replace")

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=10) as resp:
            return json.loads(resp.read())

    def plan(self, name: str = "deploy") -> dict:
        return self.request("GET", f"/v1/plans/{name}")[1]

    def pod(self, name: str) -> dict:
        return self.get(f"/v1/pod/{name}/info")

    def wait_deployed(self, timeout: float = 240.0) -> dict:
        def complete():
            plan = self.plan()
            if self.proc.poll() is not None:
                raise AssertionError(f"scheduler exited: {self.log()}")
            return plan if plan.get("status") == "COMPLETE" else None
        try:
            return wait_for(complete, timeout=timeout, interval=1.0, what=f"deploy plan COMPLETE ({self.url})")
        except WaitTimeout as exc:
            # what was stuck, for a CI log that is all one gets
            try:
                pods = {p: self.pod(p) for p in self.get("/v1/pod")}
            except (OSError, ValueError) as err:
                pods = {"unreadable": repr(err)}
            raise WaitTimeout(f"{exc}\nplan: {json.dumps(self.plan())}\npods: {json.dumps(pods)}\n"
                              f"scheduler log (end):\n{self.log(12000)}") from None

    def kill(self, sig: int = signal.SIGKILL) -> int | None:
        if self.proc is None:
            return None
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            return self.proc.wait(timeout=30)
        except Exception:  # noqa: BLE001
            procs.stop_group(self.proc.pid, grace=1)
            return None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            procs.stop_group(self.proc.pid, grace=10)


class KmfEnv:
    def __init__(self, lm: Any, zk_connect: str, zk_root: str, base: Path, wrap=None) -> None:
        self.lm = lm
        self.wrap = wrap
        self.zk_connect = zk_connect
        self.zk_root = zk_root
        self.base = base
        self.name = f"kafka-{uuid.uuid4().hex[:6]}"
        self.schedulers: list[SchedulerProc] = []

    def config(self, **kwargs: Any) -> dict:
        host = "127.0.0.1"
        return small_config(self.name, self.lm.master_uri, self.zk_connect, self.zk_root,
                            procs.free_port(host), **kwargs)

    def start_scheduler(self, config: dict | None = None, env: dict | None = None, **kwargs: Any) -> SchedulerProc:
        proc = SchedulerProc(self.base, config or self.config(**kwargs), len(self.schedulers), env, self.wrap)
        self.schedulers.append(proc)
        return proc.start()

    def agent_index(self, agent_id_or_host: str) -> int:
        for i, a in enumerate(self.lm.agents):
            if a.ip == agent_id_or_host:
                return i
        slaves = self.lm.get("/master/slaves")["slaves"]
        host = next(s["hostname"] for s in slaves if s["id"] == agent_id_or_host)
        return next(i for i, a in enumerate(self.lm.agents) if a.ip == host)

    def stop(self) -> None:
        for s in self.schedulers:
            s.stop()
        # brokers and executors go before the ZooKeeper chroot they write to is removed
        self.lm.stop()


def pid_in_sandbox(task_id: str, is_it) -> int | None:
    """A process running in the sandbox of `task_id` whose argv satisfies `is_it(argv)`."""
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            argv = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            continue
        if argv and f"/executors/{task_id}/" in cwd + "/" and is_it(argv):
            return int(pid)
    return None


def java_pid_of(task_id: str) -> int | None:
    """The broker JVM a kmf executor started for `task_id`."""
    return pid_in_sandbox(task_id, lambda argv: argv[0].endswith(b"java"))


def executor_pid_of(task_id: str) -> int | None:
    """The kmf executor (python -m executor) of `task_id`."""
    return pid_in_sandbox(task_id, lambda argv: b"-m" in argv and b"executor" in argv)


@pytest.fixture(scope="session")
def fresh_artifacts() -> Path:
    """The kmf bundle and Kafka archives the schedulers serve, rebuilt when kmf's sources changed
    since `make setup` (executors run the bundle, not this checkout: a stale one would test old
    code). Up to date it takes a tenth of a second."""
    import subprocess
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(["bash", str(root / "tools" / "artifacts.sh"), sys.executable],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"tools/artifacts.sh failed:\n{done.stderr[-4000:]}"
    return root / ".cache" / "artifacts"


@pytest.fixture
def kmf_env(lm_factory, zk_chroot, tmp_path, request, fresh_artifacts) -> KmfEnv:
    """``kmf_env(agents=3, master_flags=(...), engine="local"|"apache")``: a local cluster of the
    given engine (Apache Mesos skips the test, saying why, when there is no install) with kmf's
    agent flags; ``master_flags`` come on top of the engine's fast-failure flags."""
    def make(agents: int = 3, master_flags: tuple[str, ...] = (), engine: str = "local", wrap=None) -> KmfEnv:
        from tests.helpers.fixtures_localmesos import (
            APACHE_FAST_MASTER_FLAGS,
            FAST_MASTER_FLAGS,
            start_apache_cluster,
        )
        if engine == "apache":
            home = request.getfixturevalue("apache_home")
            lm = start_apache_cluster(tmp_path / f"am-{uuid.uuid4().hex[:6]}", home, f"zk://{zk_chroot}/mesos",
                                      agents, APACHE_FAST_MASTER_FLAGS + tuple(master_flags),
                                      AGENT_RESOURCES, AGENT_FLAGS)
        else:
            lm = lm_factory(agents=agents, zk=True, resources=AGENT_RESOURCES, agent_flags=AGENT_FLAGS,
                            master_flags=FAST_MASTER_FLAGS + tuple(master_flags), wrap=wrap)
        connect, _, root = zk_chroot.partition("/")
        env = KmfEnv(lm, connect, "/" + root, tmp_path, wrap)
        made.append(env)
        return env
    made: list[KmfEnv] = []
    yield make
    for env in made:
        env.stop()
