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

``--listener tls`` or ``sasl`` (a service with ``kafka.tls`` / ``kafka.sasl``) takes that
listener's addresses instead of the PLAINTEXT ones, writes the service's CA certificate from the
endpoint to ``--ca-file`` (default ./kmf-ca.pem) and gives the client its security settings: in
the properties file (``security.protocol``, a PEM trust store, and for SASL ``sasl.mechanism`` and
the SCRAM ``sasl.jaas.config``), and in the environment for librdkafka clients
(``KAFKA_SECURITY_PROTOCOL``, ``KAFKA_SSL_CA_LOCATION``, ``KAFKA_SASL_MECHANISM``). The SCRAM user
comes from ``KMF_SASL_USERNAME`` and ``KMF_SASL_PASSWORD`` (e.g. Marathon secrets), never from
the command line; a properties file holding it is readable by its owner only.
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
LISTENERS = ("plaintext", "tls", "sasl")


class NoBrokers(KmfError, RuntimeError):
    """The endpoint gave no broker address before the deadline; the message names the URL."""


class NoListener(KmfError, ValueError):
    """The service has no such listener (its config does not enable it): asking again will not help."""


def endpoint_url(api: str) -> str:
    return api.rstrip("/") + ENDPOINT


def listener_part(doc: Any, listener: str = "plaintext") -> dict[str, Any] | None:
    """The part of an endpoint answer for `listener`: the answer itself for PLAINTEXT, its "tls" or
    "sasl" object for the others (None: not an answer). Raises NoListener when the service has none."""
    if not isinstance(doc, dict):
        return None
    if listener == "plaintext":
        return doc
    part = doc.get(listener)
    if not isinstance(part, dict):
        raise NoListener(f"the service has no {listener} listener (its endpoint has no {listener!r}: "
                         f"kafka.{listener}.enabled is off in its config)")
    return part


def bootstrap_servers(doc: Any, listener: str = "plaintext") -> str | None:
    """The bootstrap servers of `listener` in an endpoint answer; None while it lists no broker (a
    service still deploying answers with an empty list)."""
    part = listener_part(doc, listener)
    servers = part.get("bootstrap_servers") if part is not None else None
    return servers if isinstance(servers, str) and servers else None


def wait_for_brokers(url: str, timeout_s: float, interval_s: float = 2.0,
                     fetch: Callable[[str], Any] = lambda u: get_json(u, timeout=5.0),
                     clock: Callable[[], float] = time.monotonic,
                     sleep: Callable[[float], None] = time.sleep,
                     note: Callable[[str], None] = lambda _text: None, listener: str = "plaintext") -> str:
    """The bootstrap servers from `url` (see `wait_for_listener`)."""
    return wait_for_listener(url, timeout_s, interval_s, fetch, clock, sleep, note, listener)["bootstrap_servers"]


def wait_for_listener(url: str, timeout_s: float, interval_s: float = 2.0,
                      fetch: Callable[[str], Any] = lambda u: get_json(u, timeout=5.0),
                      clock: Callable[[], float] = time.monotonic,
                      sleep: Callable[[float], None] = time.sleep,
                      note: Callable[[str], None] = lambda _text: None, listener: str = "plaintext") -> dict[str, Any]:
    """The endpoint's part for `listener` (`listener_part`: its bootstrap servers, CA, mechanism)
    from `url`, asked again until it lists a broker or `timeout_s` has passed. Raises `NoBrokers`
    naming the URL and the last reason (unreachable, an error status, no broker yet). `note` hears
    each new reason to wait once (the sandbox's stderr says why the app has not started, without a
    line every `interval_s`). A service without `listener` raises NoListener at once."""
    deadline = clock() + timeout_s
    last = None
    while True:
        try:
            part = listener_part(fetch(url), listener)
            if bootstrap_servers(part):
                assert part is not None
                return part
            reason = "it lists no broker yet (the service is still deploying?)"
        except NoListener:
            raise
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


def security(part: Mapping[str, Any], listener: str, ca_file: Path,
             environ: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """(properties, environment) a client needs for `listener`, given its endpoint `part`; the
    CA certificate, when the listener has one, is written to `ca_file`. The SCRAM user is
    `environ`'s KMF_SASL_USERNAME and KMF_SASL_PASSWORD (`main` refuses to start without them)."""
    if listener == "plaintext":
        return {}, {}
    protocol = str(part.get("security_protocol") or "")
    props = {"security.protocol": protocol}
    env = {"KAFKA_SECURITY_PROTOCOL": protocol}
    if part.get("ca_cert"):
        ca_file.write_text(str(part["ca_cert"]))
        props.update({"ssl.truststore.type": "PEM", "ssl.truststore.location": str(ca_file.resolve())})
        env["KAFKA_SSL_CA_LOCATION"] = str(ca_file.resolve())
    if listener == "sasl":
        user, password = environ.get("KMF_SASL_USERNAME", ""), environ.get("KMF_SASL_PASSWORD", "")
        mechanism = str(part.get("mechanism") or "")
        quoted = [str(v).replace("\\", "\\\\").replace('"', '\\"') for v in (user, password)]
        props.update({"sasl.mechanism": mechanism,
                      "sasl.jaas.config": "org.apache.kafka.common.security.scram.ScramLoginModule required "
                                          f'username="{quoted[0]}" password="{quoted[1]}";'})
        env["KAFKA_SASL_MECHANISM"] = mechanism
    return props, env


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
    p.add_argument("--listener", choices=LISTENERS, default=environ.get("KMF_LISTENER", "plaintext"),
                   help="which brokers' listener to use (default: $KMF_LISTENER, else plaintext); tls and "
                        "sasl bring the CA and, for sasl, the SCRAM user from KMF_SASL_USERNAME/KMF_SASL_PASSWORD")
    p.add_argument("--ca-file", type=Path, default=Path("kmf-ca.pem"),
                   help="where to write the service's CA certificate for tls and sasl (default ./kmf-ca.pem)")
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
    if args.listener == "sasl" and command:
        missing = [n for n in ("KMF_SASL_USERNAME", "KMF_SASL_PASSWORD") if not environ.get(n)]
        if missing:
            p.error(f"--listener sasl needs the SCRAM user in {' and '.join(missing)}")
    try:
        part = wait_for_listener(url, args.timeout, args.interval,
                                 note=lambda text: print(f"kmf.bootstrap_env: {text}", file=sys.stderr, flush=True),
                                 listener=args.listener)
    except (NoBrokers, NoListener) as exc:
        print(f"kmf.bootstrap_env: {exc} (from {url})" if not isinstance(exc, NoBrokers) else
              f"kmf.bootstrap_env: {exc}", file=sys.stderr)
        return 1
    servers = part["bootstrap_servers"]
    if not command:
        print(servers)
        return 0
    extra_props, extra_env = security(part, args.listener, args.ca_file, environ)
    props = args.properties or (Path("streams.properties") if PLACEHOLDER in command else None)
    if props is not None:
        if args.listener == "sasl":  # it holds the SCRAM password: its owner's only, before it is written
            props.touch(mode=0o600)
            props.chmod(0o600)
        props.write_text(app_properties(servers, {**extra_props, **extra}))
        command = with_properties(command, props)
    which = "" if args.listener == "plaintext" else f"the {args.listener} listener, "
    print(f"kmf.bootstrap_env: KAFKA_BOOTSTRAP_SERVERS={servers} ({which}from {url})"
          + (f", properties in {props}" if props else ""), file=sys.stderr, flush=True)
    execvpe(command[0], command, {**environ, **extra_env, "KAFKA_BOOTSTRAP_SERVERS": servers})
    return 0  # only a test's execvpe returns


if __name__ == "__main__":
    sys.exit(main())
