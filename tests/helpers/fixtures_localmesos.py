"""localmesos processes for tests: a lone master, or ZooKeeper + master + 3 agents, with fault
injection (kill / pause / resume an agent, restart the master). Everything is stopped by pid.

Fixtures:
* ``lm_master`` — one master without ZooKeeper (heartbeat 1 s, agent ping 1 s × 3). A
  :class:`LocalMesos` with no agents.

Every :class:`LocalMesos` claims its own address block with ``localmesos.cli.claim_addresses``
(the allocator ``kmf local up`` and ``kmf demo`` use): master at 127.0.B.1, agent *i* at
127.0.B.(10+i), so it never shares an agent address (and so broker ports) with another cluster on
the machine, another test run's or a demo's.
* ``lm_cluster`` — ZooKeeper (session server, own chroot) + master registered there + 3 agents
  (zones a, b, c; ``cpus:4;mem:4096;disk:20000;ports:[31000-32000]``). Skips while
  ``localmesos.agent`` does not exist yet.
* ``lm_factory`` — builds either with custom flags: ``lm_factory(agents=1, master_flags=[...])``.
"""
from __future__ import annotations

import os
import signal
import subprocess
import uuid
from pathlib import Path
from typing import Any, Sequence

import pytest

from localmesos import apache, procs
from localmesos.cli import (
    DEFAULT_RESOURCES,
    agent_argv,
    claim_addresses,
    get_json,
    master_argv,
    wait_registered,
    wait_serving,
)
from tests.helpers.wait import wait_for

FAST_MASTER_FLAGS = (
    "--localmesos_heartbeat_interval=1",
    "--agent_ping_timeout=1",
    "--max_agent_ping_timeouts=3",
)
# Apache Mesos (an unoptimised build on 2 busy cores) gets a little more slack before it calls an
# agent unreachable: a few seconds instead of its default 75 s.
APACHE_FAST_MASTER_FLAGS = (
    "--agent_ping_timeout=2secs",
    "--max_agent_ping_timeouts=3",
)


class AgentProc:
    def __init__(self, index: int, ip: str, port: int, work_dir: Path, argv: list[str],
                 pass_fds: Sequence[int] = ()) -> None:
        self.index, self.ip, self.port, self.work_dir, self.argv = index, ip, port, work_dir, argv
        self.pass_fds = tuple(pass_fds)
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://{self.ip}:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None, "agent not started"
        return self.proc.pid

    def start(self) -> "AgentProc":
        self.proc = procs.spawn(self.argv, log_path=self.work_dir / "agent.log", pass_fds=self.pass_fds)
        return self

    def log(self) -> str:
        path = self.work_dir / "agent.log"
        return path.read_text(errors="replace") if path.exists() else ""


class LocalMesos:
    """A running set of Mesos processes and the faults a test can inject into them: localmesos by
    default, Apache Mesos itself with ``engine="apache"`` (``mesos_home`` is its install)."""

    def __init__(self, base: Path, zk_url: str | None = None,
                 master_flags: Sequence[str] | None = None, engine: str = "local",
                 mesos_home: Path | None = None, wrap=None) -> None:
        assert engine in ("local", "apache"), engine
        self.base = base
        self.zk_url = zk_url
        self.engine = engine
        self.mesos_home = mesos_home
        if master_flags is None:
            master_flags = FAST_MASTER_FLAGS if engine == "local" else APACHE_FAST_MASTER_FLAGS
        self.master_flags = list(master_flags)
        # Held by this object (agents and masters restarted later need it) and inherited by every
        # process it starts; released in stop().
        self.block = claim_addresses(base)
        self.ip = self.block.master_ip
        self.port = procs.free_port(self.ip)
        self.master_dir = base / "master"
        self.master_proc: subprocess.Popen | None = None
        self.agents: list[AgentProc] = []
        # wrap(name, argv) -> argv: how each process is started ("master", "agent-<i>"); the
        # chaos suite's network partitions put each in a cgroup of its own (tests/helpers/netfaults)
        self.wrap = wrap or (lambda name, argv: list(argv))

    # master ------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://{self.ip}:{self.port}"

    @property
    def address(self) -> str:
        """``ip:port`` as pymesos takes it."""
        return f"{self.ip}:{self.port}"

    @property
    def master_uri(self) -> str:
        """What drivers and agents should use: the zk:// URL when there is one."""
        return self.zk_url or self.address

    def start_master(self, timeout: float = 20.0, wait_elected: bool = True) -> "LocalMesos":
        if self.engine == "apache":
            argv = apache.master_argv(self.mesos_home, self.ip, self.port, self.master_dir, self.zk_url,
                                      self.master_flags)
        else:
            argv = master_argv(self.ip, self.port, self.master_dir, self.zk_url, self.master_flags)
        self.master_proc = procs.spawn(self.wrap("master", argv), log_path=self.master_dir / "master.log",
                                       pass_fds=self.block.pass_fds)
        wait_serving(self.url, self.master_proc, timeout, self.master_dir / "master.log")
        if self.zk_url and wait_elected:
            wait_for(lambda: get_json(self.url + "/metrics/snapshot")["master/elected"] == 1.0,
                     timeout=timeout, what="master elected")
        return self

    def stop_master(self, sig: int = signal.SIGKILL) -> None:
        """Stop the master (SIGKILL by default: a crash, its ZK node lingers until expiry)."""
        if self.master_proc is not None:
            if sig == signal.SIGKILL:
                os.killpg(self.master_proc.pid, signal.SIGKILL)
            procs.stop_group(self.master_proc.pid, grace=5.0)
            self.master_proc = None

    def restart_master(self, timeout: float = 30.0) -> "LocalMesos":
        """Crash the master and start it again on the same address and work_dir."""
        self.stop_master()
        return self.start_master(timeout)

    def set_faults(self, drop_status_updates: int | None = None,
                   delay_status_updates_secs: float | None = None) -> dict[str, Any]:
        """Master-side fault injection: the next ``drop_status_updates`` status updates from
        agents are answered but thrown away (the agent retries them, as Mesos agents do); every update is
        processed ``delay_status_updates_secs`` late."""
        body: dict[str, Any] = {}
        if drop_status_updates is not None:
            body["drop_status_updates"] = drop_status_updates
        if delay_status_updates_secs is not None:
            body["delay_status_updates_secs"] = delay_status_updates_secs
        from localmesos.master.links import post_json

        status, answer = post_json(self.url, "faults", body, 5.0)
        assert status == 200, answer
        return answer

    def mark_agent_gone(self, agent_id: str) -> int:
        """Operator API MARK_AGENT_GONE; returns the HTTP status."""
        import http.client
        import json as _json

        conn = http.client.HTTPConnection(self.ip, self.port, timeout=10)
        body = {"type": "MARK_AGENT_GONE", "mark_agent_gone": {"agent_id": {"value": agent_id}}}
        conn.request("POST", "/api/v1", body=_json.dumps(body),
                     headers={"Content-Type": "application/json"})
        status = conn.getresponse().status
        conn.close()
        return status

    def master_log(self) -> str:
        path = self.master_dir / "master.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def state(self) -> dict[str, Any]:
        return get_json(self.url + "/master/state")

    def get(self, path: str) -> Any:
        return get_json(self.url + path)

    # agents ------------------------------------------------------------------------------------
    def add_agent(self, resources: str = DEFAULT_RESOURCES, attributes: str | None = None,
                  extra: Sequence[str] = ()) -> AgentProc:
        index = len(self.agents)
        ip = self.block.agent_ip(index)
        port = procs.free_port(ip)
        work_dir = self.base / f"agent-{index}"
        attributes = attributes if attributes is not None else f"zone:{'abcdefgh'[index % 8]}"
        if self.engine == "apache":
            argv = apache.agent_argv(self.mesos_home, self.master_uri, ip, port, work_dir, resources,
                                     attributes, extra)
        else:
            argv = agent_argv(self.master_uri, ip, port, work_dir, resources, attributes, extra)
        agent = AgentProc(index, ip, port, work_dir, self.wrap(f"agent-{index}", argv), self.block.pass_fds).start()
        self.agents.append(agent)
        return agent

    def wait_agents(self, count: int | None = None, timeout: float = 20.0) -> list[dict[str, Any]]:
        return wait_registered(self.url, len(self.agents) if count is None else count, timeout)

    def kill_agent(self, index: int) -> None:
        """SIGKILL an agent's process group (its executors die with it only if in its group)."""
        agent = self.agents[index]
        os.kill(agent.pid, signal.SIGKILL)
        agent.proc.wait(timeout=10)

    def pause_agent(self, index: int) -> None:
        """SIGSTOP the agent process only: it stops answering pings, its tasks keep running."""
        os.kill(self.agents[index].pid, signal.SIGSTOP)

    def resume_agent(self, index: int) -> None:
        os.kill(self.agents[index].pid, signal.SIGCONT)

    def restart_agent(self, index: int) -> AgentProc:
        agent = self.agents[index]
        if agent.proc is not None and agent.proc.poll() is None:
            procs.stop_group(agent.pid, grace=5.0)
        return agent.start()

    # teardown ----------------------------------------------------------------------------------
    def stop(self) -> None:
        for agent in self.agents:
            if agent.proc is not None:
                try:
                    os.kill(agent.pid, signal.SIGCONT)
                except ProcessLookupError:
                    pass
                procs.stop_group(agent.pid, grace=3.0)
        if self.master_proc is not None:
            procs.stop_group(self.master_proc.pid, grace=3.0)
            self.master_proc = None
        procs.kill_under(self.base)  # executors and what they run, wherever their agent went
        self.block.release()


@pytest.fixture
def lm_factory(tmp_path, request):
    """Build LocalMesos setups: ``lm_factory(agents=3, zk=True, master_flags=..., resources=...)``."""
    made: list[LocalMesos] = []

    def make(agents: int = 0, zk: bool = False, master_flags: Sequence[str] | None = None,
             resources: str = DEFAULT_RESOURCES, agent_flags: Sequence[str] = (), wrap=None) -> LocalMesos:
        zk_url = None
        if zk:
            chroot = request.getfixturevalue("zk_chroot")
            zk_url = f"zk://{chroot}/mesos"
        lm = LocalMesos(tmp_path / f"lm-{uuid.uuid4().hex[:6]}", zk_url, master_flags, wrap=wrap)
        made.append(lm)
        lm.start_master()
        for _ in range(agents):
            lm.add_agent(resources=resources, extra=agent_flags)
        if agents:
            lm.wait_agents()
        return lm

    yield make
    for lm in made:
        lm.stop()


def apache_home_or_reason() -> tuple[Path | None, str]:
    """The Apache Mesos install the tier runs on, or None and why it is skipped."""
    try:
        home = apache.find_home()
    except apache.MesosNotFound as exc:
        return None, str(exc)
    return home, apache.version(home)


def pytest_report_header(config) -> str:
    home, what = apache_home_or_reason()
    if home is None:
        return f"Apache Mesos tier: SKIPPED: {what}"
    return f"Apache Mesos tier: runs on {what} at {home}"


@pytest.fixture(scope="session")
def apache_home() -> Path:
    """The Apache Mesos install (skips the test, saying why, when there is none)."""
    home, what = apache_home_or_reason()
    if home is None:
        pytest.skip(f"Apache Mesos tier: {what}")
    return home


def start_apache_cluster(base: Path, home: Path, zk_url: str | None, agents: int,
                         master_flags: Sequence[str] | None = None, resources: str = DEFAULT_RESOURCES,
                         agent_flags: Sequence[str] = ()) -> LocalMesos:
    """An Apache Mesos master (registered in ``zk_url`` when given) and ``agents`` agents with the
    zone/rack attributes ``kmf local up`` gives them; stopped with ``.stop()`` even when a start
    fails half way (the caller gets it only once it runs)."""
    lm = LocalMesos(base, zk_url, master_flags, engine="apache", mesos_home=home)
    try:
        lm.start_master(timeout=60)
        for i in range(agents):
            lm.add_agent(resources=resources, attributes=f"zone:{'abcdefgh'[i % 8]};rack:r{i}",
                         extra=agent_flags)
        if agents:
            lm.wait_agents(timeout=60)
    except BaseException:
        lm.stop()
        raise
    return lm


@pytest.fixture
def apache_factory(tmp_path, request, apache_home):
    """Like ``lm_factory`` but Apache Mesos: ``apache_factory(agents=3, zk=True)``; agents get the
    zone/rack attributes ``kmf local up`` gives them."""
    made: list[LocalMesos] = []

    def make(agents: int = 0, zk: bool = True, master_flags: Sequence[str] | None = None,
             resources: str = DEFAULT_RESOURCES, agent_flags: Sequence[str] = (), wrap=None) -> LocalMesos:
        zk_url = None
        if zk:
            chroot = request.getfixturevalue("zk_chroot")
            zk_url = f"zk://{chroot}/mesos"
        lm = start_apache_cluster(tmp_path / f"am-{uuid.uuid4().hex[:6]}", apache_home, zk_url, agents,
                                  master_flags, resources, agent_flags)
        made.append(lm)
        return lm

    yield make
    for lm in made:
        lm.stop()


@pytest.fixture
def lm_master(lm_factory) -> LocalMesos:
    return lm_factory()


@pytest.fixture
def lm_cluster(lm_factory) -> LocalMesos:
    return lm_factory(agents=3, zk=True)


# --------------------------------------------------------------------------- pymesos drivers


class RecordingScheduler:
    """A pymesos Scheduler that records every callback as ``(name, payload)`` for assertions."""

    def __init__(self) -> None:
        import threading

        self.events: list[tuple[str, Any]] = []
        self.cond = threading.Condition()
        self.decline_offers = False

    def _add(self, name: str, payload: Any) -> None:
        with self.cond:
            self.events.append((name, payload))
            self.cond.notify_all()

    def registered(self, driver, framework_id, master_info):
        self._add("registered", framework_id)

    def reregistered(self, driver, master_info):
        self._add("reregistered", master_info)

    def disconnected(self, driver):
        self._add("disconnected", None)

    def resourceOffers(self, driver, offers):
        for offer in offers:
            self._add("offer", offer)

    def offerRescinded(self, driver, offer_id):
        self._add("rescind", offer_id)

    def statusUpdate(self, driver, status):
        self._add("update", status)

    def frameworkMessage(self, driver, executor_id, agent_id, data):
        self._add("message", {"executor_id": executor_id, "agent_id": agent_id, "data": data})

    def slaveLost(self, driver, agent_id):
        self._add("agent_lost", agent_id)

    def executorLost(self, driver, executor_id, agent_id, status):
        self._add("executor_lost", {"executor_id": executor_id, "agent_id": agent_id,
                                    "status": status})

    def error(self, driver, message):
        self._add("error", message)

    def processHeartBeat(self, driver=None):
        self._add("heartbeat", None)

    def of(self, name: str) -> list[Any]:
        with self.cond:
            return [p for n, p in self.events if n == name]

    def wait(self, name: str, pred=lambda p: True, timeout: float = 10.0, count: int = 1) -> list[Any]:
        """Wait until ``count`` recorded ``name`` events satisfy ``pred``; returns them."""
        return wait_for(
            lambda: (lambda found: found if len(found) >= count else None)(
                [p for p in self.of(name) if pred(p)]
            ),
            timeout=timeout,
            interval=0.05,
            what=f"{count} {name} event(s)",
        )


@pytest.fixture
def lm_driver():
    """Start pymesos drivers: ``sched, driver = lm_driver(master_uri, framework=dict, **kw)``;
    all are stopped with failover (no TEARDOWN) afterwards."""
    from pymesos import MesosSchedulerDriver

    started = []

    def make(master_uri: str, framework: dict[str, Any] | None = None, scheduler=None, **kwargs):
        sched = scheduler or RecordingScheduler()
        info = {"user": "kmf", "name": "kmf-test", "failover_timeout": 60.0}
        info.update(framework or {})
        kwargs.setdefault("failover", True)
        driver = MesosSchedulerDriver(sched, info, master_uri, **kwargs)
        driver.start()
        started.append(driver)
        return sched, driver

    yield make
    for driver in started:
        try:
            driver.stop(failover=True)
            driver.join()
        except Exception:  # noqa: BLE001 - teardown goes on
            pass
