"""Run a Marathon app definition the way Marathon would, on this machine (for the local cluster).

`python -m localmesos.marathon --app config/marathon.json --work_dir DIR [--port P] [--env K=V]
[--fetch NAME=PATH] [--secret NAME=FILE]` keeps the app's instances running: each in a fresh
sandbox with the app's `fetch` URIs fetched by the agent's fetcher (`localmesos.agent.fetcher`:
extract, executable, cache, output_file as Mesos does; one cache for the runner, so a restart does
not fetch again), the environment Marathon gives (`PORT0`…, `PORT`, `PORTS`, `HOST`,
`MESOS_SANDBOX`, `MARATHON_APP_ID`, `MARATHON_APP_RESOURCE_CPUS/MEM`, the app's `env`, its secret
references `{"secret": "<name>"}` set from `--secret <name>=FILE`, unset without one), started
with `sh -c cmd`; its MESOS_HTTP health check polled after the grace period, an instance that fails
it `maxConsecutiveFailures` times killed; an instance that exits restarted with backoff (1 s
doubling to 60 s, reset after a minute up). A fetch URI this machine cannot reach (the example
repository of config/marathon.json) is given as a local file with `--fetch <basename>=<path>`: it is
fetched as ``file://<path>`` instead, through the same fetcher, keeping the URI's flags.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any, Mapping, Sequence

import attrs

from kmfio.httpjson import answers_ok
from kmfwire.errors import KmfError
from localmesos import procs
from localmesos.agent.fetcher import FetcherCache, FetchError, fetch_all, parse_bytes


class AppError(KmfError, ValueError):
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
    fetch: tuple[Mapping[str, Any], ...]  # Marathon's fetch entries: uri, extract, executable, cache, outputFile
    cpus: float
    mem: float
    health: HealthCheck | None
    secret_env: Mapping[str, str] = attrs.field(factory=dict)  # env var → secret name

    @classmethod
    def load(cls, path: Path) -> "AppDefinition":
        try:
            doc = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise AppError(f"{path}: cannot read the app definition: {exc}") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("id"), str) or not isinstance(doc.get("cmd"), str):
            raise AppError(f"{path}: an app needs a string 'id' and 'cmd'")
        env = doc.get("env") or {}
        secrets = doc.get("secrets") or {}
        if not isinstance(env, dict) or not isinstance(secrets, dict):
            raise AppError(f"{path}: env and secrets must be objects")
        secret_env = {}
        for name, value in env.items():
            if isinstance(value, dict) and set(value) == {"secret"}:
                if value["secret"] not in secrets:
                    raise AppError(f"{path}: env.{name} refers to the secret {value['secret']!r}, "
                                   f"which is not in secrets")
                secret_env[name] = value["secret"]
            elif not isinstance(value, str):
                raise AppError(f"{path}: env.{name} must be a string or {{\"secret\": \"<name>\"}}")
        fetch = doc.get("fetch") or []
        if not all(isinstance(f, dict) and isinstance(f.get("uri"), str) for f in fetch):
            raise AppError(f"{path}: every fetch entry needs a string 'uri'")
        checks = [c for c in doc.get("healthChecks") or [] if c.get("protocol") in ("HTTP", "MESOS_HTTP")]
        health = None
        if checks:
            c = checks[0]
            health = HealthCheck(c.get("path", "/"), int(c.get("portIndex", 0)), float(c.get("gracePeriodSeconds", 300)),
                                 float(c.get("intervalSeconds", 60)), float(c.get("timeoutSeconds", 20)),
                                 int(c.get("maxConsecutiveFailures", 3)))
        return cls(doc["id"], doc["cmd"], {k: v for k, v in env.items() if isinstance(v, str)},
                   len(doc.get("portDefinitions") or []) or 1, tuple(fetch), float(doc.get("cpus", 1)),
                   float(doc.get("mem", 128)), health, secret_env)

    def uris(self, local: Mapping[str, Path]) -> list[dict[str, Any]]:
        """The fetch entries as CommandInfo.URIs (Marathon's translation), with the URIs given
        locally by basename replaced by ``file://`` ones."""
        out = []
        for f in self.fetch:
            uri = f["uri"]
            name = Path(urllib.parse.urlsplit(uri).path).name
            item: dict[str, Any] = {"value": uri, "extract": bool(f.get("extract", True)),
                                    "executable": bool(f.get("executable", False)),
                                    "cache": bool(f.get("cache", False))}
            if name in local:  # the sandbox gets the name the real URI gives, whatever the local file's
                item["value"] = Path(local[name]).resolve().as_uri()
                item["output_file"] = name
            if f.get("outputFile"):
                item["output_file"] = f["outputFile"]
            out.append(item)
        return out


class Runner:
    def __init__(self, app: AppDefinition, work_dir: Path, host: str = "127.0.0.1",
                 ports: Sequence[int] = (), env: Mapping[str, str] | None = None,
                 fetch: Mapping[str, Path] | None = None, health_scale: float = 1.0,
                 secrets: Mapping[str, str] | None = None) -> None:
        self.app = app
        self.work_dir = Path(work_dir)
        self.host = host
        self.ports = list(ports) or [procs.free_port(host) for _ in range(app.ports)]
        self.env = dict(env or {})
        self.fetch = dict(fetch or {})
        self.secrets = dict(secrets or {})
        self.cache = FetcherCache(self.work_dir / "fetch", parse_bytes("2GB"))
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
        try:
            with open(sandbox / "stderr", "a") as err:
                fetch_all(self.app.uris(self.fetch), sandbox, self.cache, err)
        except FetchError as exc:
            raise AppError(f"{exc} (a URI this machine cannot reach is given with --fetch NAME=PATH)") from None
        return sandbox

    def _launch(self) -> None:
        self.runs += 1
        sandbox = self._sandbox()
        env = {**os.environ, **self.app.env, **self.env, "HOST": self.host, "MESOS_SANDBOX": str(sandbox),
               "MARATHON_APP_ID": self.app.id, "MARATHON_APP_RESOURCE_CPUS": str(self.app.cpus),
               "MARATHON_APP_RESOURCE_MEM": str(self.app.mem), "PORT": str(self.ports[0]),
               "PORTS": ",".join(map(str, self.ports))}
        for var, secret in self.app.secret_env.items():
            if secret in self.secrets:
                env[var] = self.secrets[secret]
        env.update({f"PORT{i}": str(p) for i, p in enumerate(self.ports)})
        with open(sandbox / "stdout", "ab") as out, open(sandbox / "stderr", "ab") as err:
            self.proc = subprocess.Popen(["/bin/sh", "-c", self.app.cmd], cwd=str(sandbox), env=env,
                                         stdin=subprocess.DEVNULL, stdout=out, stderr=err, start_new_session=True)
        self.healthy = None
        self.note(f"instance {self.runs} started (pid {self.proc.pid}) on port(s) {self.ports} in {sandbox}")

    def _check(self) -> bool:
        h = self.app.health
        assert h is not None  # checked only for an app with a health check
        url = f"http://{self.host}:{self.ports[h.port_index]}{h.path}"
        return answers_ok(url, h.timeout_s)

    def _kill(self, grace: float = 10.0) -> None:
        if self.proc is not None and self.proc.poll() is None:
            procs.stop_group(self.proc.pid, grace=grace)

    def run(self) -> None:
        backoff = 1.0
        while not self.stopped.is_set():
            self._launch()
            assert self.proc is not None  # _launch started it
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
    p.add_argument("--secret", action="append", default=[], metavar="NAME=FILE",
                   help="the value of the app's secret NAME (Marathon's secret store), read from FILE")
    p.add_argument("--health_scale", type=float, default=1.0,
                   help="scale the health check's grace and interval (tests use short ones)")
    args = p.parse_args(argv)
    try:
        app = AppDefinition.load(args.app)
        env = dict(item.split("=", 1) for item in args.env)
        fetch = {k: Path(v) for k, v in (item.split("=", 1) for item in args.fetch)}
        secrets = {k: Path(v).read_text().strip() for k, v in (item.split("=", 1) for item in args.secret)}
    except (AppError, ValueError, OSError) as exc:
        print(f"marathon: {exc}", file=sys.stderr)
        return 2
    args.work_dir.mkdir(parents=True, exist_ok=True)
    runner = Runner(app, args.work_dir, args.host, args.port, env, fetch, args.health_scale, secrets)
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
