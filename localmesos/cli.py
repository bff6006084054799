"""``kmf local up|status|down``: a local Mesos cluster (ZooKeeper, one master, N agents), of
localmesos or (``--mesos apache``) Apache Mesos, started by the same code.

The state of a running local cluster lives in one work folder: ``cluster.json`` there records every
process (pid, address) so ``down`` stops exactly those, by process group. Its addresses come from a
block claimed with :func:`claim_addresses` (``localmesos.addresses``), so that two clusters never
share one. The launch helpers (:func:`master_argv`, :func:`agent_argv`, :func:`wait_registered`,
:func:`claim_addresses`) are shared with the test fixtures in
``tests/helpers/fixtures_localmesos.py``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from kmfio.httpjson import get_json
from kmfwire.errors import KmfError
from kmfwire.waiting import wait_until
from localmesos import addresses, procs

DEFAULT_RESOURCES = "cpus:4;mem:4096;disk:20000;ports:[31000-32000]"
ZONES = "abcdefghijklmnopqrstuvwxyz"


class ClusterError(KmfError, RuntimeError):
    pass


def master_argv(ip: str, port: int, work_dir: Path, zk: str | None = None,
                extra: Sequence[str] = ()) -> list[str]:
    argv = [sys.executable, "-m", "localmesos", "master", f"--ip={ip}", f"--port={port}",
            f"--work_dir={work_dir}"]
    if zk:
        argv.append(f"--zk={zk}")
    return argv + list(extra)


def agent_argv(master: str, ip: str, port: int, work_dir: Path, resources: str = DEFAULT_RESOURCES,
               attributes: str = "", extra: Sequence[str] = ()) -> list[str]:
    argv = [sys.executable, "-m", "localmesos", "agent", f"--master={master}", f"--ip={ip}",
            f"--port={port}", f"--work_dir={work_dir}", f"--resources={resources}"]
    if attributes:
        argv.append(f"--attributes={attributes}")
    return argv + list(extra)


def wait_serving(url: str, proc: Any, timeout: float, log_path: Path) -> None:
    def serving() -> bool:
        if proc is not None and proc.poll() is not None:
            raise ClusterError(f"process exited with {proc.returncode}; see {log_path}")
        try:
            get_json(url + "/version", timeout=0.5)
            return True
        except OSError:
            return False
    if not wait_until(serving, timeout, 0.05):
        raise ClusterError(f"{url} did not answer within {timeout}s; see {log_path}")


def wait_registered(master_url: str, count: int, timeout: float) -> list[dict[str, Any]]:
    """Poll ``/master/slaves`` until ``count`` agents are registered; returns them."""
    slaves: list[dict[str, Any]] = []

    def registered() -> bool:
        nonlocal slaves
        try:
            slaves = get_json(master_url + "/master/slaves")["slaves"]
            return len(slaves) >= count
        except (OSError, ValueError, KeyError):
            return False
    if wait_until(registered, timeout, 0.1):
        return slaves
    raise ClusterError(
        f"only {len(slaves)} of {count} agents registered with {master_url} within {timeout}s"
    )


# --------------------------------------------------------------------------- kmf local


def _default_workdir() -> Path:
    return Path(os.environ.get("KMF_LOCAL_DIR", f"/tmp/kmf-local-{os.getuid()}"))


def _state_path(workdir: Path) -> Path:
    return workdir / "cluster.json"


def _load(workdir: Path) -> dict[str, Any] | None:
    try:
        return json.loads(_state_path(workdir).read_text())
    except FileNotFoundError:
        return None


def _save(workdir: Path, state: dict[str, Any]) -> None:
    _state_path(workdir).write_text(json.dumps(state, indent=1))


def ensure_not_running(workdir: Path) -> None:
    existing = _load(workdir.resolve())
    if existing and any(procs.pid_alive(p["pid"]) for p in existing.get("processes", [])):
        raise ClusterError(f"a local cluster already runs from {workdir}; `kmf local down` first")


def claim_addresses(owner: Path | str) -> addresses.AddressBlock:
    """The address block of a new local cluster (see :mod:`localmesos.addresses`): every entry
    point that starts one (``kmf local up``, ``kmf demo``, the test fixtures) claims it here."""
    try:
        return addresses.claim(str(owner))
    except addresses.AddressError as exc:
        raise ClusterError(str(exc)) from None


ENGINES = ("local", "apache")
ArgvBuilder = Callable[..., list[str]]


def engine_argvs(engine: str, mesos_home: Path | None) -> tuple[ArgvBuilder, ArgvBuilder, float]:
    """(master argv builder, agent argv builder, start-up timeout) of an engine, with the
    signatures of :func:`master_argv` and :func:`agent_argv`. Apache Mesos' install is looked up
    here (``--mesos-home``, ``KMF_MESOS_HOME``, the shared build), so a missing one fails before
    anything starts, saying where kmf looked."""
    if engine == "local":
        return master_argv, agent_argv, 20.0
    if engine != "apache":
        raise ClusterError(f"--mesos must be one of {', '.join(ENGINES)}, got {engine!r}")
    from localmesos import apache

    try:
        home = apache.find_home(mesos_home)
    except apache.MesosNotFound as exc:
        raise ClusterError(str(exc)) from None

    def master(ip: str, port: int, work_dir: Path, zk: str | None = None, extra: Sequence[str] = ()) -> list[str]:
        return apache.master_argv(home, ip, port, work_dir, zk, extra)

    def agent(master_uri: str, ip: str, port: int, work_dir: Path, resources: str = DEFAULT_RESOURCES,
              attributes: str = "", extra: Sequence[str] = ()) -> list[str]:
        return apache.agent_argv(home, master_uri, ip, port, work_dir, resources, attributes, extra)

    # an unoptimised Mesos build on a busy machine takes a while to recover its registry
    return master, agent, 60.0


def up(agents: int, workdir: Path, out=sys.stdout, engine: str = "local",
       mesos_home: Path | None = None) -> dict[str, Any]:
    """ZooKeeper, a master registered in it and ``agents`` agents (zone/rack attributes) on a
    claimed address block; ``engine`` is ``local`` (localmesos) or ``apache`` (Apache Mesos from
    ``mesos_home`` or the usual places, see :func:`localmesos.apache.find_home`)."""
    from localmesos.zookeeper import ZooKeeperServer

    if not 1 <= agents <= addresses.MAX_AGENTS:
        raise ClusterError(f"--agents must be between 1 and {addresses.MAX_AGENTS}, got {agents}")
    make_master, make_agent, timeout = engine_argvs(engine, mesos_home)
    workdir = workdir.resolve()
    ensure_not_running(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    state: dict[str, Any] = {"processes": [], "engine": engine}
    # The master and the agents inherit the block's lock, so the block stays claimed while they
    # run and is free once they stop; this process lets go of its own hold when `up` returns.
    with claim_addresses(workdir) as block:
        state["addresses"] = block.cidr
        host = block.master_ip
        state["host"] = host
        zk = ZooKeeperServer(workdir / "zookeeper", host=host)
        zk.start()
        assert zk.proc is not None  # started
        state["processes"].append({"name": "zookeeper", "pid": zk.proc.pid})
        _save(workdir, state)
        zk_url = f"zk://{zk.connect_string}/mesos"
        port = procs.free_port(host)
        master_dir = workdir / "master"
        proc = procs.spawn(make_master(host, port, master_dir, zk_url), log_path=master_dir / "master.log",
                           pass_fds=block.pass_fds)
        state["processes"].append({"name": "master", "pid": proc.pid})
        _save(workdir, state)
        master_url = f"http://{host}:{port}"
        wait_serving(master_url, proc, timeout, master_dir / "master.log")
        for i in range(agents):
            ip = block.agent_ip(i)
            aport = procs.free_port(ip)
            adir = workdir / f"agent-{i}"
            attributes = f"zone:{ZONES[i % len(ZONES)]};rack:r{i}"
            aproc = procs.spawn(make_agent(zk_url, ip, aport, adir, attributes=attributes),
                                log_path=adir / "agent.log", pass_fds=block.pass_fds)
            state["processes"].append({"name": f"agent-{i}", "pid": aproc.pid, "ip": ip, "port": aport})
    state.update({"master_url": master_url, "ui_url": master_url + "/", "zk_url": zk_url,
                  "zk": zk.connect_string, "agents": agents})
    _save(workdir, state)
    wait_registered(master_url, agents, timeout + 10)
    print(f"mesos:  {'Apache Mesos' if engine == 'apache' else 'localmesos'}\n"
          f"master: {master_url}\nui:     {master_url}/\nzk:     {zk_url}\naddresses: {block.cidr}",
          file=out)
    return state


def _kill_all_under(folder: Path, timeout: float = 15.0) -> int:
    """SIGKILL what runs in `folder` (executors and their children in the agents' sandboxes) until
    nothing does: Apache Mesos' executors are not in their agent's process group, and a child
    forked while the first sweep ran would escape one pass. Returns how many were killed."""
    seen: set[int] = set()

    def swept() -> bool:
        pids = procs.pids_under(folder)
        seen.update(pids)
        if pids:
            procs.kill_under(folder)
        return not pids
    wait_until(swept, timeout, 0.1)  # SIGKILLed processes leave /proc a moment later
    return len(seen)


def down(workdir: Path, out=sys.stdout) -> int:
    state = _load(workdir.resolve())
    if state is None:
        print(f"no local cluster recorded in {workdir}", file=out)
        return 0
    for entry in reversed(state.get("processes", [])):
        if procs.pid_alive(entry["pid"]):
            procs.stop_group(entry["pid"], grace=5.0)
        print(f"stopped {entry['name']} (pid {entry['pid']})", file=out)
    left = _kill_all_under(workdir.resolve())
    if left:
        print(f"stopped {left} executor processes left in agents' sandboxes", file=out)
    _state_path(workdir.resolve()).unlink()
    return 0


def status(workdir: Path, out=sys.stdout) -> int:
    state = _load(workdir.resolve())
    if state is None:
        print(f"no local cluster recorded in {workdir}", file=out)
        return 1
    for entry in state.get("processes", []):
        alive = "running" if procs.pid_alive(entry["pid"]) else "stopped"
        print(f"{entry['name']:<10} pid {entry['pid']:<8} {alive}", file=out)
    if "master_url" in state:
        try:
            slaves = get_json(state["master_url"] + "/master/slaves")["slaves"]
            engine = "Apache Mesos" if state.get("engine") == "apache" else "localmesos"
            print(f"{engine} master {state['master_url']}: {len(slaves)} agents registered"
                  + (f" (addresses {state['addresses']})" if "addresses" in state else ""), file=out)
        except OSError as exc:
            print(f"master {state['master_url']} does not answer: {exc}", file=out)
            return 1
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    local = subparsers.add_parser("local", help="a local Mesos cluster (localmesos or Apache Mesos)")
    sub = local.add_subparsers(dest="local_command", metavar="ACTION", required=True)
    for name, helptext in (("up", "start ZooKeeper, a master and agents"),
                           ("status", "show the local cluster"),
                           ("down", "stop everything `up` started")):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("--work-dir", "--workdir", dest="workdir", type=Path, default=_default_workdir(),
                       help="work folder of the local cluster (default: %(default)s)")
        if name == "up":
            p.add_argument("--agents", type=int, default=3, help="number of agents")
            add_engine_options(p)
        p.set_defaults(func=_run)


def add_engine_options(parser: argparse.ArgumentParser) -> None:
    """``--mesos local|apache`` and ``--mesos-home DIR`` (shared with ``kmf demo``)."""
    parser.add_argument("--mesos", choices=ENGINES, default="local",
                        help="the Mesos to run: localmesos (default) or Apache Mesos")
    parser.add_argument("--mesos-home", type=Path, default=None, metavar="DIR",
                        help="the Apache Mesos install (sbin/, libexec/mesos, share/mesos/webui); default: "
                             "$KMF_MESOS_HOME, else the build `make setup` extracts into .cache/mesos")


def _run(args: argparse.Namespace) -> int:
    try:
        if args.local_command == "up":
            if not 1 <= args.agents <= addresses.MAX_AGENTS:
                raise ClusterError(f"--agents must be between 1 and {addresses.MAX_AGENTS}")
            ensure_not_running(args.workdir)
            engine_argvs(args.mesos, args.mesos_home)  # no install: say so before starting anything
            started = time.monotonic()
            try:
                up(args.agents, args.workdir, engine=args.mesos, mesos_home=args.mesos_home)
            except Exception:
                down(args.workdir, out=sys.stderr)
                raise
            print(f"up in {time.monotonic() - started:.1f}s; work folder {args.workdir}")
            return 0
        if args.local_command == "down":
            return down(args.workdir)
        return status(args.workdir)
    except ClusterError as exc:
        print(f"kmf local {args.local_command}: {exc}", file=sys.stderr)
        return 1
