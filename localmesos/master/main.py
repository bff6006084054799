"""``python -m localmesos master``: flags (Mesos' names), wiring, signal handling."""
from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Sequence

log = logging.getLogger("localmesos.master")
_UNITS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "secs": 1.0, "mins": 60.0, "hrs": 3600.0,
          "days": 86400.0, "weeks": 604800.0}


def _duration(text: str) -> float:
    """Mesos durations (``15secs``, ``1.5mins``) or plain seconds."""
    try:
        return float(text)
    except ValueError:
        pass
    for unit in sorted(_UNITS, key=len, reverse=True):
        if text.endswith(unit):
            try:
                return float(text[: -len(unit)]) * _UNITS[unit]
            except ValueError:
                break
    raise argparse.ArgumentTypeError(
        f"{text!r} is not a duration (number + ns|us|ms|secs|mins|hrs|days|weeks)"
    )


def _bool(text: str) -> bool:
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"{text!r} is not true/false")


def load_credentials(path: str) -> dict[str, str]:
    """Mesos ``--credentials``: JSON ``{"credentials":[{"principal","secret"}]}`` or ``p s`` lines
    (``file://`` prefix allowed)."""
    if path.startswith("file://"):
        path = path[len("file://"):]
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise SystemExit(f"master: --credentials {path}: {exc.strerror}") from None
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            data = json.loads(stripped)
            return {c["principal"]: c.get("secret", "") for c in data["credentials"]}
        except (ValueError, KeyError, TypeError) as exc:
            raise SystemExit(f"master: --credentials {path}: not a credentials JSON ({exc})") from None
    out = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2:
            raise SystemExit(f"master: --credentials {path} line {lineno}: expected 'principal secret'")
        out[parts[0]] = parts[1]
    return out


LOG_FILE = "mesos-master.INFO"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="localmesos master", description="localmesos master")
    p.add_argument("--ip", default="127.0.0.1")
    p.add_argument("--port", type=int, default=5050)
    p.add_argument("--hostname", default=None)
    p.add_argument("--zk", default=None, help="zk://host:port/path for leader election")
    p.add_argument("--work_dir", required=True)
    p.add_argument("--zk_session_timeout", type=_duration, default=10.0)
    p.add_argument("--quorum", type=int, default=1, help="accepted for compatibility")
    p.add_argument("--cluster", default=None)
    p.add_argument("--agent_ping_timeout", type=_duration, default=15.0)
    p.add_argument("--max_agent_ping_timeouts", type=int, default=5)
    p.add_argument("--agent_reregister_timeout", type=_duration, default=600.0)
    p.add_argument("--offer_timeout", type=_duration, default=None)
    p.add_argument("--authenticate_http_frameworks", type=_bool, nargs="?", const=True,
                   default=False)
    p.add_argument("--authenticate_frameworks", type=_bool, nargs="?", const=True, default=False)
    p.add_argument("--http_framework_authenticators", default="basic")
    p.add_argument("--credentials", default=None)
    p.add_argument("--log_dir", default=None)
    p.add_argument("--registry", default="replicated_log", help="accepted for compatibility")
    p.add_argument("--localmesos_heartbeat_interval", type=_duration, default=15.0,
                   help="localmesos only (tests): scheduler heartbeat interval")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if args.log_dir:  # as Mesos: the log also goes to <log_dir>/mesos-master.INFO (/master/log)
        Path(args.log_dir).mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(Path(args.log_dir) / LOG_FILE)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logging.getLogger().addHandler(handler)
    auth = args.authenticate_http_frameworks or args.authenticate_frameworks
    if auth and not args.credentials:
        raise SystemExit("master: --authenticate_http_frameworks needs --credentials")
    if args.http_framework_authenticators != "basic":
        raise SystemExit(
            f"master: --http_framework_authenticators={args.http_framework_authenticators}: "
            "only 'basic' is supported"
        )
    from .server import MasterServer

    flags = {k: v for k, v in vars(args).items() if v is not None and k != "verbose"}
    server = MasterServer(
        {
            "ip": args.ip,
            "port": args.port,
            "hostname": args.hostname,
            "zk": args.zk,
            "zk_session_timeout": args.zk_session_timeout,
            "work_dir": args.work_dir,
            "agent_ping_timeout": args.agent_ping_timeout,
            "max_agent_ping_timeouts": args.max_agent_ping_timeouts,
            "agent_reregister_timeout": args.agent_reregister_timeout,
            "offer_timeout": args.offer_timeout,
            "heartbeat_interval": args.localmesos_heartbeat_interval,
            "credentials": load_credentials(args.credentials) if auth else None,
            "flags": flags,
        }
    )
    server.start()

    def stop(signum: int, _frame: object) -> None:
        log.info("signal %s: stopping", signum)
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server.serve_forever()
    return 0
