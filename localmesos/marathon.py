"""Run a Marathon app definition the way Marathon would, on this machine (for the local cluster).

`python -m localmesos.marathon --app config/marathon.json --work_dir DIR [--port P] [--env K=V]
[--fetch NAME=PATH]` keeps the app's instances running: each in a fresh sandbox with the fetched
files, the environment Marathon gives (`PORT0`…, `PORT`, `PORTS`, `HOST`, `MESOS_SANDBOX`,
`MARATHON_APP_ID`, `MARATHON_APP_RESOURCE_CPUS/MEM`, the app's `env`), started with `sh -c cmd`;
its MESOS_HTTP health check polled after the grace period, an instance that fails it
`maxConsecutiveFailures` times killed; an instance that exits restarted with backoff (1 s doubling
to 60 s, reset after a minute up). Fetch URIs this machine cannot reach are given as local files
with `--fetch <basename>=<path>` (Marathon's fetcher would download them).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Mapping, Sequence

import attrs

from localmesos import procs


class AppError(ValueError):
    """An app definition kmf cannot run; the message names the field."""


@attrs.frozen
class HealthCheck:
    path: str
    port_index: int = 0
    grace_s: float = 300.0
    interval_s: float = 60.0
    timeout_s: float = 20.0
    max_failures: int = 3


@attrs.frozen
class AppDefinition:
    id: str
    cmd: str
    env: Mapping[str, str]
    ports: int
    fetch: tuple[str, ...]
    cpus: float
    mem: float
    health: HealthCheck | None

    @classmethod
    def load(cls, path: Path) -> "AppDefinition":
        try:
            doc = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise AppError(f"{path}: cannot read the app definition: {exc}") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("id"), str) or not isinstance(doc.get("cmd"), str):
            raise AppError(f"{path}: an app needs a string 'id' and 'cmd'")
        env = doc.get("env") or {}
        if not isinstance(env, dict) or not all(isinstance(v, str) for v in env.values()):
            raise AppError(f"{path}: env must map names to strings (secrets go in 'secrets')")
        checks = [c for c in doc.get("healthChecks") or [] if c.get("protocol") in ("HTTP", "MESOS_HTTP")]
        health = None
        if checks:
            c = checks[0]
            health = HealthCheck(c.get("path", "/"), int(c.get("portIndex", 0)), float(c.get("gracePeriodSeconds", 300)),
                                 float(c.get("intervalSeconds", 60)), float(c.get("timeoutSeconds", 20)),
                                 int(c.get("maxConsecutiveFailures", 3)))
        return cls(doc["id"], doc["cmd"], env, len(doc.get("portDefinitions") or []) or 1,
                   tuple(f["uri"] for f in doc.get("fetch") or []), float(doc.get("cpus", 1)),
                   float(doc.get("mem", 128)), health)


class Runner:
    def __init__(self, app: AppDefinition, work_dir: Path, host: str = "127.0.0.1",
                 ports: Sequence[int] = (), env: Mapping[str, str] | None = None,
                 fetch: Mapping[str, Path] | None = None, health_scale: float = 1.0) -> None:
        self.app = app
        self.work_dir = Path(work_dir)
        self.host = host
        self.ports = list(ports) or [procs.free_port(host) for _ in range(app.ports)]
        self.env = dict(env or {})
        self.fetch = dict(fetch or {})
        self.health_scale = health_scale
        self.proc: subprocess.Popen | None = None
        self.runs = 0
        self.healthy: bool | None = None
        self.stopped = threading.Event()
        self.log = self.work_dir / "marathon.log"

    def note(self, text: str) -> None:
        with open(self.log, "a") as f:
            f.write(f"{time.strftime('%H:%M:%S')} {self.app.id}: {text}\n")

    def _sandbox(self) -> Path:
        sandbox = self.work_dir / "sandboxes" / f"run-{self.runs}"
        sandbox.mkdir(parents=True, exist_ok=True)
        for uri in self.app.fetch:
            name = Path(urllib.parse.urlsplit(uri).path).name
            source = self.fetch.get(name) or (Path(urllib.parse.urlsplit(uri).path) if uri.startswith("file://") else None)
            if source is None or not Path(source).exists():
                raise AppError(f"fetch {uri}: not reachable here; give it with --fetch {name}=PATH")
            shutil.copy(source, sandbox / name)
        return sandbox

    def _launch(self) -> None:
        self.runs += 1
        sandbox = self._sandbox()
        env = {**os.environ, **self.app.env, **self.env, "HOST": self.host, "MESOS_SANDBOX": str(sandbox),
               "MARATHON_APP_ID": self.app.id, "MARATHON_APP_RESOURCE_CPUS": str(self.app.cpus),
               "MARATHON_APP_RESOURCE_MEM": str(self.app.mem), "PORT": str(self.ports[0]),
               "PORTS": ",".join(map(str, self.ports))}
        env.update({f"PORT{i}": str(p) for i, p in enumerate(self.ports)})
        with open(sandbox / "stdout", "ab") as out, open(sandbox / "stderr", "ab") as err:
            self.proc = subprocess.Popen(["/bin/sh", "-c", self.app.cmd], cwd=str(sandbox), env=env,
                                         stdin=subprocess.DEVNULL, stdout=out, stderr=err, start_new_session=True)
        self.healthy = None
        self.note(f"instance {self.runs} started (pid {self.proc.pid}) on port(s) {self.ports} in {sandbox}")

    def _check(self) -> bool:
        h = self.app.health
        url = f"http://{self.host}:{self.ports[h.port_index]}{h.path}"
        try:
            with urllib.request.urlopen(url, timeout=h.timeout_s) as resp:
                return 200 <= resp.status < 400
        except OSError:
            return False

    def _kill(self, grace: float = 10.0) -> None:
        if self.proc is not None and self.proc.poll() is None:
            procs.stop_group(self.proc.pid, grace=grace)

    def run(self) -> None:
        backoff = 1.0
        while not self.stopped.is_set():
            self._launch()
            started = time.monotonic()
            failures = 0
            h = self.app.health
            next_check = started + (h.grace_s * self.health_scale if h else 0)
            while self.proc.poll() is None and not self.stopped.wait(0.2):
                if h is None or time.monotonic() < next_check:
                    continue
                ok = self._check()
                failures = 0 if ok else failures + 1
                if ok != self.healthy:
                    self.healthy = ok
                    self.note("healthy" if ok else "health check failing")
                if failures >= h.max_failures:
                    self.note(f"{failures} health checks failed: killing the instance")
                    self._kill()
                    break
                next_check = time.monotonic() + h.interval_s * self.health_scale
            if self.stopped.is_set():
                break
            code = self.proc.wait()
            up = time.monotonic() - started
            backoff = 1.0 if up > 60 else min(60.0, backoff * 2 if self.runs > 1 else backoff)
            self.note(f"instance {self.runs} exited with {code} after {up:.0f}s; restarting in {backoff:.0f}s")
            if self.stopped.wait(backoff):
                break
        self._kill()
        self.note("stopped")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m localmesos.marathon", description=__doc__.split("\n\n")[0])
    p.add_argument("--app", required=True, type=Path)
    p.add_argument("--work_dir", required=True, type=Path)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", action="append", type=int, default=[], help="ports to give (PORT0, PORT1, …)")
    p.add_argument("--env", action="append", default=[], metavar="NAME=VALUE")
    p.add_argument("--fetch", action="append", default=[], metavar="NAME=PATH")
    p.add_argument("--health_scale", type=float, default=1.0,
                   help="scale the health check's grace and interval (tests use short ones)")
    args = p.parse_args(argv)
    try:
        app = AppDefinition.load(args.app)
        env = dict(item.split("=", 1) for item in args.env)
        fetch = {k: Path(v) for k, v in (item.split("=", 1) for item in args.fetch)}
    except (AppError, ValueError) as exc:
        print(f"marathon: {exc}", file=sys.stderr)
        return 2
    args.work_dir.mkdir(parents=True, exist_ok=True)
    runner = Runner(app, args.work_dir, args.host, args.port, env, fetch, args.health_scale)
    signal.signal(signal.SIGTERM, lambda *_: runner.stopped.set())
    signal.signal(signal.SIGINT, lambda *_: runner.stopped.set())
    try:
        runner.run()
    except AppError as exc:
        print(f"marathon: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
