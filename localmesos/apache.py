"""Apache Mesos as the engine of a local cluster, beside localmesos.

kmf does not vendor Mesos: an install is found through ``KMF_MESOS_HOME`` (a user's own, laid out as
``sbin/ bin/ libexec/mesos/ share/mesos/webui``) or the shared build that ``make setup`` extracts
into ``.cache/mesos``. These helpers build the master's and the agents' command lines with the flags
that work on one machine as root on loopback (see ../shared/mesos/README.md for why each is needed);
``kmf local up --mesos apache``, ``kmf demo --mesos apache`` and the test fixtures all use them, so
the Apache Mesos tier runs exactly what a user runs.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Sequence

from kmfwire.errors import KmfError

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_BUILD = REPO_ROOT / ".cache" / "mesos"

# What the agents of a local Apache cluster need that Mesos' defaults get wrong on this kind of host:
# the default linux launcher probes cgroups and exits; systemd is installed but not PID 1; every
# loopback address resolves to one host name, so each agent reports its IP instead.
AGENT_HOST_FLAGS = ("--launcher=posix", "--isolation=posix/cpu,posix/mem", "--no-systemd_enable_support",
                    "--no-hostname_lookup")


class MesosNotFound(KmfError, RuntimeError):
    """No usable Apache Mesos install; the message says where kmf looked and why it is not usable."""


def find_home(explicit: str | Path | None = None) -> Path:
    """The Apache Mesos install to use: ``explicit``, else ``KMF_MESOS_HOME``, else the shared
    build in ``.cache/mesos``. Raises :class:`MesosNotFound` saying what is missing where."""
    if explicit:
        candidates = [(Path(explicit), "--mesos-home")]
    elif os.environ.get("KMF_MESOS_HOME"):
        candidates = [(Path(os.environ["KMF_MESOS_HOME"]), "KMF_MESOS_HOME")]
    else:
        candidates = [(SHARED_BUILD, "the shared build extracted by `make setup`")]
    home, origin = candidates[0]
    master = home / "sbin" / "mesos-master"
    if not master.is_file():
        raise MesosNotFound(f"no Apache Mesos at {home} ({origin}): {master} does not exist; set "
                            "KMF_MESOS_HOME to an install, or put the build beside the checkout "
                            "(../shared/mesos) and run `make setup`")
    try:
        out = subprocess.run([str(master), "--version"], capture_output=True, text=True, timeout=20)
    except OSError as exc:
        raise MesosNotFound(f"{master} does not run: {exc}") from None
    if out.returncode != 0:
        tail = (out.stderr or out.stdout).strip().splitlines()[-1:] or ["no output"]
        raise MesosNotFound(f"{master} --version exited with {out.returncode}: {tail[0]} "
                            "(its runtime libraries: see RUNTIME-DEPS.txt)")
    return home.resolve()


def version(home: Path) -> str:
    out = subprocess.run([str(home / "sbin" / "mesos-master"), "--version"], capture_output=True,
                         text=True, timeout=20)
    return out.stdout.strip()


def master_argv(home: Path, ip: str, port: int, work_dir: Path, zk: str | None = None,
                extra: Sequence[str] = ()) -> list[str]:
    """``mesos-master`` on ``ip:port``; registered in ZooKeeper (replicated log, quorum 1) when
    ``zk`` is given, with an in-memory registry otherwise."""
    argv = [str(home / "sbin" / "mesos-master"), f"--ip={ip}", f"--port={port}",
            f"--work_dir={work_dir}", "--no-hostname_lookup",
            f"--webui_dir={home / 'share' / 'mesos' / 'webui'}", f"--log_dir={work_dir / 'log'}"]
    argv += [f"--zk={zk}", "--quorum=1"] if zk else ["--registry=in_memory"]
    return argv + list(extra)


def agent_argv(home: Path, master: str, ip: str, port: int, work_dir: Path, resources: str,
               attributes: str = "", extra: Sequence[str] = ()) -> list[str]:
    """``mesos-agent`` on ``ip:port``. Its runtime dir and fetcher cache live in its work dir, so
    two agents (or two clusters) on one machine never share them (Mesos' defaults are global
    paths under /var/run and /tmp)."""
    argv = [str(home / "sbin" / "mesos-agent"), f"--master={master}", f"--ip={ip}", f"--port={port}",
            f"--work_dir={work_dir}", f"--runtime_dir={work_dir / 'run'}",
            f"--fetcher_cache_dir={work_dir / 'fetch'}", f"--log_dir={work_dir / 'log'}",
            f"--launcher_dir={home / 'libexec' / 'mesos'}", f"--resources={resources}",
            *AGENT_HOST_FLAGS]
    if attributes:
        argv.append(f"--attributes={attributes}")
    return argv + list(extra)


def duration_flag(seconds: float) -> str:
    """A Mesos Duration flag value (``1secs``, ``500ms``)."""
    return f"{int(seconds)}secs" if float(seconds).is_integer() else f"{int(seconds * 1000)}ms"


__all__ = ["AGENT_HOST_FLAGS", "MesosNotFound", "agent_argv", "duration_flag", "find_home", "master_argv",
           "version"]
