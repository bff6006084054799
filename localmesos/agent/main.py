"""`python -m localmesos agent`: flags (Mesos' names), master detection, start-up and recovery.

Flags: ``--master`` (``host:port``, ``http://host:port`` or ``zk://host:port/path``), ``--ip``,
``--port``, ``--work_dir``, ``--resources`` (``cpus:4;mem:4096;disk:20000;ports:[31000-32000]``),
``--attributes`` (``zone:a;rack:r1``), ``--hostname`` (default: ``--ip``, since every localmesos
agent of a machine has its own loopback address), ``--executor_shutdown_grace_period`` and
``--recovery_timeout`` (seconds, or a Mesos duration), ``--fetcher_cache_size`` (Mesos bytes, e.g.
``2GB``) and ``--fetcher_cache_dir`` (default ``<work_dir>/fetch``; cleared at start, as Mesos does);
localmesos' own ``--localmesos_executor_heartbeat_interval`` (default 30 mins, as Mesos).
"""
from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Sequence

from localmesos.agent.agent import Agent
from localmesos.agent.server import serve

log = logging.getLogger("localmesos.agent")

UNITS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "secs": 1, "mins": 60, "hrs": 3600, "days": 86400, "weeks": 604800}


def duration(text: str) -> float:
    text = text.strip()
    for unit in sorted(UNITS, key=len, reverse=True):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * UNITS[unit]
    return float(text)


class MasterDetector:
    """The leading master's URL: fixed, or followed in ZooKeeper (smallest json.info_ child)."""

    def __init__(self, master: str) -> None:
        self.url: str | None = None
        self.zk = None
        if master.startswith("zk://"):
            from kazoo.client import KazooClient
            hosts, _, path = master[len("zk://"):].partition("/")
            self.path = "/" + path.strip("/")
            self.zk = KazooClient(hosts=hosts, timeout=10.0)
            self.zk.start(timeout=15)
            self.zk.ensure_path(self.path)
            self.zk.ChildrenWatch(self.path, self._children)
        else:
            rest = master.split("://", 1)[-1].rstrip("/")
            self.url = f"http://{rest}"

    def _children(self, children: list[str]) -> bool:
        assert self.zk is not None  # a ZooKeeper watch calls it
        nodes = sorted(c for c in children if c.startswith("json.info_"))
        if not nodes:
            self.url = None
            return True
        try:
            data, _ = self.zk.get(f"{self.path}/{nodes[0]}")
            info = json.loads(data)
            address = info.get("address") or {}
            host = address.get("ip") or info.get("hostname")
            port = address.get("port") or info.get("port")
            self.url = f"http://{host}:{port}"
        except Exception as exc:  # noqa: BLE001 - a node that vanished or is unreadable: wait
            log.warning("cannot read the leading master from %s: %s", nodes[0], exc)
        return True

    def current(self) -> str | None:
        return self.url


def parse(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="localmesos agent")
    p.add_argument("--master", required=True)
    p.add_argument("--ip", default="127.0.0.1")
    p.add_argument("--port", type=int, default=5051)
    p.add_argument("--work_dir", required=True)
    p.add_argument("--resources", default="cpus:4;mem:4096;disk:20000;ports:[31000-32000]")
    p.add_argument("--attributes", default="")
    p.add_argument("--hostname", default=None)
    p.add_argument("--executor_shutdown_grace_period", type=duration, default=5.0)
    p.add_argument("--recovery_timeout", type=duration, default=900.0)
    p.add_argument("--fetcher_cache_size", default="2GB")
    p.add_argument("--fetcher_cache_dir", default=None)
    p.add_argument("--log_level", default="INFO")
    p.add_argument("--log_dir", default=None)
    # Mesos sends executors a HEARTBEAT every DEFAULT_EXECUTOR_HEARTBEAT_INTERVAL (30 mins) and has
    # no flag for it; this localmesos-only one lets tests shorten it.
    p.add_argument("--localmesos_executor_heartbeat_interval", type=duration, default=30 * 60.0)
    return p.parse_args(list(argv))


def main(argv: Sequence[str] | None = None) -> int:
    flags = parse(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=flags.log_level.upper(),
                        format="%(asctime)s agent %(levelname)s %(name)s: %(message)s")
    if flags.log_dir:  # as Mesos: the log also goes to <log_dir>/mesos-agent.INFO
        Path(flags.log_dir).mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(Path(flags.log_dir) / "mesos-agent.INFO")
        handler.setFormatter(logging.Formatter("%(asctime)s agent %(levelname)s %(name)s: %(message)s"))
        logging.getLogger().addHandler(handler)
    agent = Agent(flags)
    agent.recover()
    server = serve(agent)
    threading.Thread(target=server.serve_forever, name="agent-http", daemon=True).start()
    agent.detector = MasterDetector(flags.master)
    for target in (agent.registrar, agent.forwarder):
        threading.Thread(target=target, name=target.__name__, daemon=True).start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    log.info("agent on %s:%s, work_dir %s, master %s", flags.ip, flags.port, flags.work_dir, flags.master)
    while not stop.wait(0.5) and not agent.stopped.is_set():
        pass
    agent.stopped.set()
    server.shutdown()
    return 0
