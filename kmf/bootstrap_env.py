"""Start a client app that kmf does not run (e.g. its own Marathon app) with kmf's brokers.

    python3 -m kmf.bootstrap_env --api http://<scheduler>:<port> [--properties FILE] [--set K=V]...
        -- <command> [args...]

GETs ``<api>/v1/endpoints/broker`` until it lists a broker, then execs the command with
``KAFKA_BOOTSTRAP_SERVERS`` set (the variable kmf's own stream apps get). For a Kafka Streams (Java)
app, ``{properties}`` in the command becomes a properties file with ``bootstrap.servers`` and the
``--set`` ones, as in the commands of the apps kmf runs. Without a command it prints the bootstrap
servers (``export KAFKA_BOOTSTRAP_SERVERS=$(python3 -m kmf.bootstrap_env --api URL)``).

kmf unreachable, or no broker in the endpoint yet: asked again every ``--interval`` seconds until
``--timeout``, then exit 1 with a message naming the URL, so that Marathon restarts the instance
(with its backoff) rather than the app starting against no broker. Clients need the brokers only to
bootstrap: once connected they follow Kafka's metadata, so the addresses are read once, at start.
Only the PLAINTEXT listener's addresses are used (``kmf endpoints broker`` gives the TLS/SASL ones).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from executor.runtime.broker_config import render_properties
from kmfio.httpjson import get_json
from kmfwire.errors import KmfError

ENDPOINT = "/v1/endpoints/broker"
PLACEHOLDER = "{properties}"  # the same placeholder as in the commands of the apps kmf runs


class NoBrokers(KmfError, RuntimeError):
    """The endpoint gave no broker address before the deadline; the message names the URL."""


def endpoint_url(api: str) -> str:
    return api.rstrip("/") + ENDPOINT


def bootstrap_servers(doc: Any) -> str | None:
    """The PLAINTEXT bootstrap servers in an endpoint answer; None while it lists no broker (a
    service still deploying answers with an empty list)."""
    if not isinstance(doc, dict):
        return None
    servers = doc.get("bootstrap_servers")
    return servers if isinstance(servers, str) and servers else None


def wait_for_brokers(url: str, timeout_s: float, interval_s: float = 2.0,
                     fetch: Callable[[str], Any] = lambda u: get_json(u, timeout=5.0),
                     clock: Callable[[], float] = time.monotonic,
                     sleep: Callable[[float], None] = time.sleep,
                     note: Callable[[str], None] = lambda _text: None) -> str:
    """The bootstrap servers from `url`, asked again until `timeout_s` has passed. Raises
    `NoBrokers` naming the URL and the last reason (unreachable, an error status, no broker yet).
    `note` hears each new reason to wait once (the sandbox's stderr says why the app has not
    started, without a line every `interval_s`)."""
    deadline = clock() + timeout_s
    last = None
    while True:
        try:
            servers = bootstrap_servers(fetch(url))
            if servers:
                return servers
            reason = "it lists no broker yet (the service is still deploying?)"
        except (OSError, ValueError) as exc:  # HttpError is an OSError; a body that is not JSON
            reason = f"{type(exc).__name__}: {exc}"
        if clock() >= deadline:
            raise NoBrokers(f"no broker address from {url} after {timeout_s:g} s: {reason}")
        if reason != last:
            note(f"waiting for {url}: {reason}")
            last = reason
        sleep(max(0.0, min(interval_s, deadline - clock())))


def parse_sets(items: Sequence[str]) -> dict[str, str]:
    """``--set key=value`` items as properties; raises ValueError naming an item without '='."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set {item!r} is not key=value")
        out[key] = value
    return out


def app_properties(servers: str, extra: Mapping[str, str]) -> str:
    """The properties file's text: bootstrap.servers (the extra ones may not override it: the file
    exists to carry kmf's live addresses), then the extra ones in their order."""
    return render_properties({**extra, "bootstrap.servers": servers},
                             "written by kmf.bootstrap_env from kmf's broker endpoint")


def with_properties(command: Sequence[str], path: Path) -> list[str]:
    return [str(path) if arg == PLACEHOLDER else arg for arg in command]


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None,
         execvpe: Callable[[str, list[str], dict[str, str]], Any] = os.execvpe) -> int:
    environ = os.environ if environ is None else environ
    p = argparse.ArgumentParser(prog="python3 -m kmf.bootstrap_env", description=__doc__.split("\n\n")[0],
                                epilog="kmf unreachable or without a broker until --timeout: exit 1.")
    p.add_argument("--api", default=environ.get("KMF_API"), help="kmf's API URL (default: $KMF_API)")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds to keep asking (default 60)")
    p.add_argument("--interval", type=float, default=2.0, help="seconds between two asks (default 2)")
    p.add_argument("--properties", type=Path, default=None,
                   help=f"write the properties file here (default: ./streams.properties when the command "
                        f"has {PLACEHOLDER})")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="one more property for the file (application.id, state.dir, ...)")
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- the command to exec")
    args = p.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not args.api:
        p.error("no kmf API: give --api URL or set KMF_API")
    try:
        extra = parse_sets(args.set)
    except ValueError as exc:
        p.error(str(exc))
    url = endpoint_url(args.api)
    try:
        servers = wait_for_brokers(url, args.timeout, args.interval,
                                   note=lambda text: print(f"kmf.bootstrap_env: {text}", file=sys.stderr, flush=True))
    except NoBrokers as exc:
        print(f"kmf.bootstrap_env: {exc}", file=sys.stderr)
        return 1
    if not command:
        print(servers)
        return 0
    props = args.properties or (Path("streams.properties") if PLACEHOLDER in command else None)
    if props is not None:
        props.write_text(app_properties(servers, extra))
        command = with_properties(command, props)
    print(f"kmf.bootstrap_env: KAFKA_BOOTSTRAP_SERVERS={servers} (from {url})"
          + (f", properties in {props}" if props else ""), file=sys.stderr, flush=True)
    execvpe(command[0], command, {**environ, "KAFKA_BOOTSTRAP_SERVERS": servers})
    return 0  # only a test's execvpe returns


if __name__ == "__main__":
    sys.exit(main())
